"""Observation operators: a model run's outputs -> the observed quantity, with its error model.

Each operator is an `equinox.Module` holding the observed `values` and their standard
errors `sigma` (same units), and the indices it needs into the model's outputs (built at
construction from the observation's dates, depths or years, outside `jit`). `predict(outputs,
parameters)` is pure JAX: `outputs` is the dict the model's pure-JAX `run` returns (with a
leading member axis for batched problems) and `parameters` the fitted values by name (for
operator-level parameters such as an LST offset).

The error model: whitened residuals r = (predicted - observed) / sigma, or L^-1 (predicted -
observed) with L the Cholesky factor of a given covariance (correlated errors, e.g. a
geodetic or GRACE series). Gaussian: -log L = sum r^2 / 2; Student-t with `dof` nu:
-log L = (nu + 1) / 2 sum log(1 + r^2 / nu). Observation types are weighted only through
their errors.
"""

from typing import Literal

import equinox as eqx
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
import pandas as pd
import xarray as xr
from jaxtyping import Array, Float, Int

from .. import _units

Likelihood = Literal["gaussian", "student_t"]

DENSITY = 850.0
"""Volume-to-mass conversion for geodetic mass balance [kg m-3] (Huss 2013)."""
DENSITY_SIGMA = 60.0
"""Its uncertainty [kg m-3] (Huss 2013)."""


def _values(values, name, what):
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"observation {name!r}: {what} must be a non-empty 1-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"observation {name!r}: {what} has NaN or infinite entries")
    return array


class ErrorModel(eqx.Module):
    """The observed values of an operator and their errors.

    **Arguments:** `name` (label in results); `values` (n,) and `sigma` (n,) [the
    observation's units]; `labels` (n strings, e.g. the years, for reports; default
    0..n-1); `units`; `likelihood` (`"gaussian"` or `"student_t"`); `dof` (Student-t
    degrees of freedom); `covariance` (n, n) or None, kept as its Cholesky factor.

    Serially correlated errors without a dense covariance: `correlation_time` tau with
    `times` (n,) (same units, e.g. days) and optionally `series` (n,) (e.g. the sensor
    depth; errors of different series are independent) give each series the covariance
    sigma_i sigma_j exp(-|t_i - t_j| / tau) (`exponential_covariance`: AR(1) with lag-1
    correlation exp(-1 / tau) for daily values, gaps included). Its Cholesky whitening is
    sparse: in time order, e_i = (z_i - phi_i z_prev) / sqrt(1 - phi_i^2) with z = residual
    / sigma and phi_i = exp(-(t_i - t_prev) / tau); the first value of a series is z_i.
    """

    name: str = eqx.field(static=True)
    values: Float[Array, " n"]
    sigma: Float[Array, " n"]
    labels: tuple[str, ...] = eqx.field(static=True)
    units: str = eqx.field(static=True)
    likelihood: str = eqx.field(static=True)
    dof: float = eqx.field(static=True)
    covariance_cholesky: Float[Array, "n n"] | None
    previous: Int[Array, " n"] | None  # serial errors: each value's predecessor in its series (itself at a start)
    persistence: Float[Array, " n"] | None  # and phi_i = exp(-(t_i - t_prev) / tau) (0 at a start)
    correlation_time: float | None = eqx.field(static=True)

    def __init__(
        self,
        name,
        values,
        sigma,
        *,
        labels=None,
        units="",
        likelihood: Likelihood = "gaussian",
        dof=4.0,
        covariance=None,
        correlation_time=None,
        times=None,
        series=None,
    ):
        values = _values(values, name, "values")
        sigma = np.broadcast_to(np.asarray(sigma, dtype=float), values.shape).copy()
        if not np.all(np.isfinite(sigma) & (sigma > 0)):
            raise ValueError(f"observation {name!r}: sigma must be positive and finite, got min {np.nanmin(sigma)}")
        if likelihood not in ("gaussian", "student_t"):
            raise ValueError(f"observation {name!r}: likelihood must be 'gaussian' or 'student_t', got {likelihood!r}")
        if likelihood == "student_t" and not (dof is not None and dof > 0):
            raise ValueError(f"observation {name!r}: a Student-t likelihood needs dof > 0, got {dof!r}")
        cholesky = None
        if covariance is not None:
            covariance = np.asarray(covariance, dtype=float)
            if covariance.shape != (values.size, values.size):
                raise ValueError(
                    f"observation {name!r}: covariance must be ({values.size}, {values.size}), got {covariance.shape}"
                )
            try:
                cholesky = jnp.asarray(np.linalg.cholesky(covariance))
            except np.linalg.LinAlgError:
                raise ValueError(f"observation {name!r}: covariance is not positive definite") from None
        self.previous = self.persistence = None
        self.correlation_time = None
        if correlation_time is not None:
            if cholesky is not None:
                raise ValueError(f"observation {name!r}: give covariance or correlation_time, not both")
            previous, persistence = _serial(name, values.size, correlation_time, times, series)
            self.previous, self.persistence = jnp.asarray(previous), jnp.asarray(persistence)
            self.correlation_time = float(correlation_time)
        self.name = str(name)
        self.values, self.sigma, self.covariance_cholesky = jnp.asarray(values), jnp.asarray(sigma), cholesky
        self.labels = tuple(str(x) for x in (labels if labels is not None else range(values.size)))
        self.units, self.likelihood, self.dof = units, likelihood, float(dof)


def _serial(name, n, correlation_time, times, series):
    """(previous (n,) int, persistence (n,)) of serially correlated errors (see `ErrorModel`)."""
    if not (np.isscalar(correlation_time) and np.isfinite(correlation_time) and correlation_time > 0):
        raise ValueError(f"observation {name!r}: correlation_time must be a positive number, got {correlation_time!r}")
    if times is None:
        raise ValueError(f"observation {name!r}: correlation_time needs the values' times")
    t = np.asarray(times, dtype=float)
    groups = np.zeros(n) if series is None else np.asarray(series)
    if t.shape != (n,) or groups.shape != (n,):
        raise ValueError(f"observation {name!r}: times and series must have one entry per value ({n})")
    if not np.all(np.isfinite(t)):
        raise ValueError(f"observation {name!r}: times has NaN or infinite entries")
    order = np.lexsort((t, groups))  # by series, then time
    previous, persistence = np.arange(n), np.zeros(n)
    same = groups[order][1:] == groups[order][:-1]
    gap = np.diff(t[order])
    if np.any(same & (gap <= 0)):
        raise ValueError(f"observation {name!r}: a series has two values at the same time")
    later = order[1:][same]
    previous[later] = order[:-1][same]
    persistence[later] = np.exp(-gap[same] / correlation_time)
    return previous, persistence


class AbstractObservation(eqx.Module):
    """Observed values with their errors (an `ErrorModel`, field `error`), and how to
    predict them from model outputs. `name`, `values`, `sigma`, `labels`, `units` and
    `likelihood` read through to the error model."""

    error: eqx.AbstractVar[ErrorModel]

    def predict(self, outputs: dict, parameters: dict):
        """The model's value of each observation (n,) [units]."""
        raise NotImplementedError

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Fitted parameters the operator reads itself (e.g. an LST offset)."""
        return ()

    @property
    def name(self) -> str:
        """The observation's name (the key of its predictions and metrics)."""
        return self.error.name

    @property
    def values(self):
        """The observed values, in `units`."""
        return self.error.values

    @property
    def sigma(self):
        """Each value's error standard deviation (or Student-t scale), in `units`."""
        return self.error.sigma

    @property
    def labels(self) -> tuple[str, ...]:
        """One label per value (a date, year, depth or glacier), for tables and figures."""
        return self.error.labels

    @property
    def units(self) -> str:
        """Units of `values` and `sigma`, e.g. 'degC' or 'kg m-2'."""
        return self.error.units

    @property
    def likelihood(self) -> str:
        """`"gaussian"` or `"student_t"`."""
        return self.error.likelihood

    def residuals(self, predicted):
        """Whitened residuals (n,) [1]."""
        difference = predicted - self.values
        error = self.error
        if getattr(error, "previous", None) is not None:  # serially correlated (sparse whitening)
            z = difference / self.sigma
            phi = error.persistence
            return (z - phi * z[error.previous]) / jnp.sqrt(1.0 - phi**2)
        if error.covariance_cholesky is None:
            return difference / self.sigma
        return jsl.solve_triangular(error.covariance_cholesky, difference, lower=True)

    def neg_log_likelihood(self, predicted):
        """-log likelihood of the values given `predicted` (the operator's `predict` output), up to a constant."""
        r = self.residuals(predicted)
        if self.likelihood == "student_t":
            dof = self.error.dof
            return 0.5 * (dof + 1.0) * jnp.sum(jnp.log1p(r**2 / dof))
        return 0.5 * jnp.sum(r**2)


def exponential_covariance(sigma, times, correlation_time: float) -> np.ndarray:
    """Covariance s_i s_j exp(-|t_i - t_j| / tau) of a series with serially correlated errors.

    `times` and `correlation_time` in the same units (e.g. years)."""
    sigma = np.asarray(sigma, dtype=float)
    t = np.asarray(times, dtype=float)
    if not correlation_time > 0:
        raise ValueError(f"correlation_time must be positive, got {correlation_time!r}")
    return sigma[:, None] * sigma[None, :] * np.exp(-np.abs(t[:, None] - t[None, :]) / correlation_time)


def _member(value, member):
    return value if member is None else value[member]


def _glacier_areas(name, area):
    """Checked (member,) glacier areas [m2] of a regional operator."""
    area = np.asarray(area, dtype=float)
    if area.ndim != 1 or not np.all(area >= 0) or not area.sum() > 0:
        raise ValueError(f"observation {name!r}: area must be (member,) glacier areas [m2], >= 0, not all 0")
    return jnp.asarray(area)


def _year_weights(name, weights, n) -> np.ndarray:
    """Checked (n, year) weights of a period operator."""
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2 or weights.shape[0] != n:
        raise ValueError(f"observation {name!r}: weights must be (n, year), got {weights.shape}")
    return weights


class Series(AbstractObservation):
    """Entries of one model output picked by position: `outputs[variable][member][index]`.

    The operator for annual, winter and summer balances (index = positions of the
    observed years in the model's years) and for any output observed as-is. Build it with
    `glaciological_balances` for WGMS series.
    """

    error: ErrorModel
    variable: str = eqx.field(static=True)
    index: Int[Array, " n"]
    member: int | None = eqx.field(static=True)

    def __init__(
        self,
        name,
        variable,
        index,
        values,
        sigma,
        *,
        member=None,
        labels=None,
        units="",
        likelihood: Likelihood = "gaussian",
        dof=4.0,
        covariance=None,
    ):
        index = np.asarray(index, dtype=int)
        labels = labels if labels is not None else index
        self.error = ErrorModel(
            name, values, sigma, labels=labels, units=units, likelihood=likelihood, dof=dof, covariance=covariance
        )
        if index.shape != self.values.shape:
            raise ValueError(f"observation {name!r}: index has shape {index.shape}, values {self.values.shape}")
        self.variable, self.member = str(variable), member
        self.index = jnp.asarray(index)

    def predict(self, outputs, parameters):
        return _member(outputs[self.variable], self.member)[self.index]


class PeriodMean(AbstractObservation):
    """Mean of a yearly output over a period of years: a geodetic mass-balance rate.

    `outputs[variable][member][start:stop].mean()`, one value per entry (entries may be
    several glaciers or periods). Build it with `geodetic_balance`.
    """

    error: ErrorModel
    variable: str = eqx.field(static=True)
    weights: Float[Array, "n year"]
    member: tuple[int, ...] | None = eqx.field(static=True)

    def __init__(
        self,
        name,
        variable,
        weights,
        values,
        sigma,
        *,
        member=None,
        labels=None,
        units="",
        likelihood: Likelihood = "gaussian",
        dof=4.0,
        covariance=None,
    ):
        self.error = ErrorModel(
            name, values, sigma, labels=labels, units=units, likelihood=likelihood, dof=dof, covariance=covariance
        )
        weights = _year_weights(name, weights, self.values.size)
        if member is not None:
            member = tuple(int(m) for m in np.broadcast_to(member, (self.values.size,)))
        self.variable, self.member = str(variable), member
        self.weights = jnp.asarray(weights)

    def predict(self, outputs, parameters):
        values = outputs[self.variable]
        if self.member is not None:
            values = values[jnp.asarray(self.member)]  # (n, year)
        return jnp.sum(self.weights * values, axis=-1)


class RegionalMassChange(AbstractObservation):
    """A regional mass-change series (GRACE/GlaMBIE) against the sum over the glaciers.

    The model's regional mass [Gt] at the end of each mass-balance year is the cumulative
    sum of sum_g smb[g, y] area[g] (kg -> Gt); `weights` (n, year) pick or interpolate it
    to the observation dates. The series' unknown reference offset is profiled out: the
    error-weighted mean difference between model and observation is removed, which is the
    maximum-likelihood offset.
    """

    error: ErrorModel
    area: Float[Array, " member"]
    weights: Float[Array, "n year"]
    variable: str = eqx.field(static=True)

    def __init__(
        self,
        name,
        area,
        weights,
        values,
        sigma,
        *,
        variable="specific_mass_balance",
        labels=None,
        likelihood: Likelihood = "gaussian",
        dof=4.0,
        covariance=None,
    ):
        self.error = ErrorModel(
            name, values, sigma, labels=labels, units="Gt", likelihood=likelihood, dof=dof, covariance=covariance
        )
        if self.values.size < 2:
            raise ValueError(f"observation {name!r}: an anomaly series needs at least 2 values")
        self.area = jnp.asarray(np.asarray(area, dtype=float))
        self.weights = jnp.asarray(_year_weights(name, weights, self.values.size))
        self.variable = variable

    def regional_mass(self, outputs):
        """Cumulative regional mass change [Gt] at the end of each model year."""
        smb = outputs[self.variable]  # (member, year) [kg m-2]
        return jnp.cumsum(jnp.matmul(self.area, smb), axis=-1) / 1e12

    def predict(self, outputs, parameters):
        modelled = jnp.matmul(self.weights, self.regional_mass(outputs))
        w = 1.0 / self.sigma**2
        offset = jnp.sum(w * (modelled - self.values)) / jnp.sum(w)
        return modelled - offset


class RegionalBalance(AbstractObservation):
    """A region's area-weighted mean specific balance over a period [kg m-2 yr-1] against
    the glaciers of a batched problem: a regional geodetic rate (Hugonnet et al. 2021,
    GlaMBIE) compared with the modelled sample of glaciers.

    The modelled value is sum_g area[g] * mean_period(smb[g]) / sum_g area[g]; `weights`
    (n, year) average each entry's period. Build it with `regional_balance`.
    """

    error: ErrorModel
    area: Float[Array, " member"]
    weights: Float[Array, "n year"]
    variable: str = eqx.field(static=True)

    def __init__(
        self,
        name,
        area,
        weights,
        values,
        sigma,
        *,
        variable="specific_mass_balance",
        labels=None,
        likelihood: Likelihood = "gaussian",
        dof=4.0,
        covariance=None,
    ):
        self.error = ErrorModel(
            name,
            values,
            sigma,
            labels=labels,
            units="kg m-2 yr-1",
            likelihood=likelihood,
            dof=dof,
            covariance=covariance,
        )
        self.area = _glacier_areas(name, area)
        self.weights = jnp.asarray(_year_weights(name, weights, self.values.size))
        self.variable = variable

    def regional(self, outputs):
        """The area-weighted mean of `variable` over the members, per model year."""
        return jnp.matmul(self.area, outputs[self.variable]) / jnp.sum(self.area)

    def predict(self, outputs, parameters):
        return jnp.matmul(self.weights, self.regional(outputs))


class RegionalPeriodChange(AbstractObservation):
    """A region's mass change over periods [Gt] (GlaMBIE's annual changes by gravimetry,
    altimetry or DEM differencing + glaciological) against the sum over the glaciers of a
    batched problem: sum_g area[g] smb[g, y] [kg] summed over each period's model years
    with `weights` (n, year), the share of each model year inside the period. Unlike
    `RegionalMassChange` there is no reference offset: each value is a change over its own
    period, with its own error. Build it with `period_mass_change`.
    """

    error: ErrorModel
    area: Float[Array, " member"]
    weights: Float[Array, "n year"]
    variable: str = eqx.field(static=True)

    def __init__(self, name, area, weights, values, sigma, *, variable="specific_mass_balance", labels=None):
        self.error = ErrorModel(name, values, sigma, labels=labels, units="Gt")
        self.area = _glacier_areas(name, area)
        self.weights = jnp.asarray(_year_weights(name, weights, self.values.size))
        self.variable = variable

    def annual_change(self, outputs):
        """The modelled regional mass change of each model year [Gt]."""
        return jnp.matmul(self.area, outputs[self.variable]) / 1e12

    def predict(self, outputs, parameters):
        return jnp.matmul(self.weights, self.annual_change(outputs))


class ElevationChangeProfile(AbstractObservation):
    """A binned surface-elevation change over a period [m] (DEM differencing, a dh
    profile) against the ice-thickness change of a `DeltaH` run in the same bins.

    The model's change of band b over the period is thickness[end] - thickness[before],
    the rows of the year ending the period and of the year before it starts (the bed is
    fixed, so surface and thickness change alike); a bin's value is the area-weighted mean
    over the model bands whose elevation lies in it (`weights` (n, band), rows summing to
    1). Build it with `elevation_change_profile`.
    """

    error: ErrorModel
    weights: Float[Array, "n band"]
    rows: tuple[int, int] = eqx.field(static=True)
    member: int | None = eqx.field(static=True)

    def __init__(self, name, weights, rows, values, sigma, *, member=None, labels=None, likelihood="gaussian", dof=4.0):
        self.error = ErrorModel(name, values, sigma, labels=labels, units="m", likelihood=likelihood, dof=dof)
        weights = np.asarray(weights, dtype=float)
        if weights.ndim != 2 or weights.shape[0] != self.values.size:
            raise ValueError(f"observation {name!r}: weights must be (n, band), got {weights.shape}")
        self.weights = jnp.asarray(weights)
        self.rows = (int(rows[0]), int(rows[1]))
        self.member = member

    def predict(self, outputs, parameters):
        if "thickness" not in outputs:
            raise ValueError(f"observation {self.name!r} needs a glacier-evolution run (DeltaH) with 'thickness'")
        thickness = _member(outputs["thickness"], self.member)  # (year, band)
        return jnp.matmul(self.weights, thickness[self.rows[1]] - thickness[self.rows[0]])


class GroundTemperature(AbstractObservation):
    """Borehole or ground temperatures at depths and dates, interpolated between cell centres.

    `outputs["temperature"][member][time_index]` (time, cell) is interpolated linearly in
    depth (held constant above the first and below the last centre). Build it with
    `ground_temperature`.
    """

    error: ErrorModel
    time_index: Int[Array, " n"]
    cell: Int[Array, " n"]
    weight: Float[Array, " n"]
    member: int | None = eqx.field(static=True)
    variable: str = eqx.field(static=True)

    def __init__(
        self,
        name,
        time_index,
        depth,
        centres,
        values,
        sigma,
        *,
        member=None,
        variable="temperature",
        labels=None,
        likelihood: Likelihood = "gaussian",
        dof=4.0,
        correlation_time=None,
        times=None,
    ):
        depth = np.broadcast_to(np.asarray(depth, dtype=float), np.shape(values))
        serial = {} if correlation_time is None else dict(correlation_time=correlation_time, times=times, series=depth)
        self.error = ErrorModel(
            name, values, sigma, labels=labels, units="degC", likelihood=likelihood, dof=dof, **serial
        )
        centres = np.asarray(centres, dtype=float)
        if np.any(depth < 0) or np.any(depth > centres[-1] + (centres[-1] - centres[-2])):
            raise ValueError(f"observation {name!r}: depths {depth.min()}..{depth.max()} m lie outside the column")
        cell = np.clip(np.searchsorted(centres, depth) - 1, 0, centres.size - 2)
        weight = np.clip((depth - centres[cell]) / (centres[cell + 1] - centres[cell]), 0.0, 1.0)
        self.time_index = jnp.asarray(np.asarray(time_index, dtype=int))
        self.cell, self.weight = jnp.asarray(cell), jnp.asarray(weight)
        self.member, self.variable = member, variable

    def predict(self, outputs, parameters):
        temperature = _member(outputs[self.variable], self.member)[self.time_index]  # (n, nz)
        rows = jnp.arange(self.values.shape[0])
        upper = temperature[rows, self.cell]
        lower = temperature[rows, self.cell + 1]
        return upper + self.weight * (lower - upper)


class LandSurfaceTemperature(AbstractObservation):
    """Satellite land-surface temperature (LST) on clear-sky days against the model's
    surface temperature.

    `outputs[variable][member][time_index] + offset` [degC]: the temperature at the top of
    the column (`surface_temperature` from `PermafrostColumn.run`: the snow surface where
    there is snow) in the model step that holds each overpass. Only clear-sky retrievals
    are observations; cloudy days are simply absent (the clear-sky mask is applied when the
    operator is built). `offset` names a fitted parameter without a model path
    (`Parameter("lst_offset", path=None, init=0.0)`): LST minus the modelled surface
    temperature [K], typically negative (clear skies are colder than the all-sky mean;
    the radiometric skin is not the soil surface). A member-scoped offset is read at
    `member`. Day and night overpasses with different biases are two operators with two
    offsets. Build it with `land_surface_temperature`.
    """

    error: ErrorModel
    time_index: Int[Array, " n"]
    member: int | None = eqx.field(static=True)
    offset: str | None = eqx.field(static=True)
    variable: str = eqx.field(static=True)

    def __init__(
        self,
        name,
        time_index,
        values,
        sigma,
        *,
        offset=None,
        member=None,
        variable="surface_temperature",
        labels=None,
        likelihood: Likelihood = "gaussian",
        dof=4.0,
    ):
        self.error = ErrorModel(name, values, sigma, labels=labels, units="degC", likelihood=likelihood, dof=dof)
        time_index = np.asarray(time_index, dtype=int)
        if time_index.shape != self.values.shape:
            raise ValueError(
                f"observation {name!r}: time_index has shape {time_index.shape}, values {self.values.shape}"
            )
        self.time_index = jnp.asarray(time_index)
        self.member, self.offset, self.variable = member, offset, str(variable)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return () if self.offset is None else (self.offset,)

    def predict(self, outputs, parameters):
        surface = _member(outputs[self.variable], self.member)[self.time_index]
        if self.offset is None:
            return surface
        if parameters is None or self.offset not in parameters:
            raise ValueError(f"observation {self.name!r}: no fitted parameter named {self.offset!r} for its offset")
        offset = jnp.asarray(parameters[self.offset])
        if offset.ndim == 1 and self.member is not None:
            offset = offset[self.member]
        return surface + offset


class ActiveLayerThickness(AbstractObservation):
    """Active-layer thickness [m] per year: the deepest thaw of the year, the maximum over
    the year's model rows of the thaw depth (`cg.physics.thaw_depth`, the 0 degC isotherm
    below the thawed top, resolved inside cells). `rows` (n, nsave) marks each observed
    year's rows of `outputs["temperature"]`. Build it with `active_layer_thickness`.
    """

    error: ErrorModel
    edges: Float[Array, " nedges"]
    rows: Array
    member: int | None = eqx.field(static=True)

    def __init__(self, name, rows, edges, values, sigma, *, member=None, labels=None, likelihood="gaussian", dof=4.0):
        self.error = ErrorModel(name, values, sigma, labels=labels, units="m", likelihood=likelihood, dof=dof)
        rows = np.asarray(rows, dtype=bool)
        if rows.ndim != 2 or rows.shape[0] != self.values.size or not rows.any(axis=1).all():
            raise ValueError(f"observation {name!r}: rows must be (n, time) with at least one row per value")
        self.rows = jnp.asarray(rows)
        self.edges = jnp.asarray(np.asarray(edges, dtype=float))
        self.member = member

    def predict(self, outputs, parameters):
        from ..physics import thaw_depth

        temperature = _member(outputs["temperature"], self.member)
        fraction = _member(outputs["liquid_water_fraction"], self.member)
        depth = thaw_depth(temperature, fraction, self.edges)  # (time,)
        return jnp.max(jnp.where(self.rows, depth[None, :], -jnp.inf), axis=1)


# --- builders from the readers' xarray objects ------------------------------------------------


def _year_positions(model_years, years, name):
    model_years = np.asarray(model_years)
    lookup = {int(y): i for i, y in enumerate(model_years)}
    missing = [int(y) for y in years if int(y) not in lookup]
    if missing:
        raise ValueError(
            f"observation {name!r}: years {missing} are not modelled (model years "
            f"{int(model_years[0])}-{int(model_years[-1])})"
        )
    return np.array([lookup[int(y)] for y in years])


def glaciological_balances(
    table: xr.Dataset,
    model_years,
    *,
    kind: str = "annual",
    years=None,
    sigma: float = 200.0,
    glacier=None,
    member=None,
    name=None,
    likelihood: Likelihood = "gaussian",
) -> Series:
    """WGMS annual, winter or summer balances as a `Series` on the model's years.

    **Arguments:** `table` from `cg.data.open_wgms` (hydrological years labelled by their
    end, kg m-2); `model_years` the model's year labels (use `year_start_month=10`);
    `kind` `"annual"`, `"winter"` or `"summer"`; `years` to use (default: every observed
    year the model covers); `sigma` the balance error [kg m-2] (default 200, a typical
    glaciological uncertainty, Zemp et al. 2013); `glacier` the WGMS id when the table has
    several; `member` the glacier's position in a batched problem.
    """
    variable = f"{kind}_balance"
    if kind not in ("annual", "winter", "summer") or variable not in table:
        raise ValueError(f"kind must be 'annual', 'winter' or 'summer' with a '{variable}' column; got {kind!r}")
    series = table[variable]
    if "glacier" in series.dims:
        if glacier is None and series.sizes["glacier"] != 1:
            raise ValueError(f"the WGMS table holds {series.sizes['glacier']} glaciers; pass glacier=<WGMS id>")
        series = series.sel(glacier=glacier) if glacier is not None else series.isel(glacier=0)
    series = series.dropna("year")
    model_years = np.asarray(model_years)
    observed = series.year.values
    chosen = observed[np.isin(observed, model_years)] if years is None else np.asarray(years)
    chosen = np.intersect1d(chosen, observed) if years is not None else chosen
    if years is not None and len(chosen) < len(np.asarray(years)):
        absent = sorted(set(np.asarray(years).tolist()) - set(chosen.tolist()))
        raise ValueError(f"WGMS {kind} balance: no value for years {absent}")
    name = name or f"wgms_{kind}"
    if chosen.size == 0:
        raise ValueError(f"observation {name!r}: no observed {kind} balance inside the model years")
    model_variable = "specific_mass_balance" if kind == "annual" else variable
    return Series(
        name,
        model_variable,
        _year_positions(model_years, chosen, name),
        series.sel(year=chosen).values,
        sigma,
        member=member,
        labels=[str(y) for y in chosen],
        units="kg m-2",
        likelihood=likelihood,
    )


def geodetic_balance(
    value,
    sigma,
    model_years,
    start,
    end,
    *,
    member=None,
    name="geodetic",
    label=None,
) -> PeriodMean:
    """A geodetic mass-balance rate [kg m-2 yr-1] over mass-balance years start..end.

    `value`/`sigma` scalars (one glacier) or arrays (one per `member` glacier); the
    uncertainty should already include the density conversion (`geodetic_from_dh` or
    `cg.data.geodetic_mass_balance` do). `start` and `end` are the first and last model
    year labels of the period, inclusive.
    """
    values = np.atleast_1d(np.asarray(value, dtype=float))
    model_years = np.asarray(model_years)
    rows = _year_positions(model_years, np.arange(int(start), int(end) + 1), name)
    weights = np.zeros((values.size, model_years.size))
    weights[:, rows] = 1.0 / rows.size
    labels = label if label is not None else [f"{start}-{end}"] * values.size
    return PeriodMean(
        name, "specific_mass_balance", weights, values, sigma, member=member, labels=labels, units="kg m-2 yr-1"
    )


def geodetic_from_dh(dh_rate, dh_sigma, density=DENSITY, density_sigma=DENSITY_SIGMA):
    """Mass-balance rate and its error [kg m-2 yr-1] from a mean elevation-change rate and
    its error [m yr-1]: B = rho dh, sigma_B^2 = (rho sigma_dh)^2 + (dh sigma_rho)^2."""
    dh_rate, dh_sigma = np.asarray(dh_rate, dtype=float), np.asarray(dh_sigma, dtype=float)
    return density * dh_rate, np.hypot(density * dh_sigma, dh_rate * density_sigma)


def regional_mass_change(
    series: xr.Dataset,
    area,
    model_years,
    *,
    year_start_month: int = 10,
    name="grace",
    start=None,
    end=None,
    variable="mass",
    sigma_variable="mass_uncertainty",
) -> RegionalMassChange:
    """A GRACE/GlaMBIE cumulative mass series (Gt, `cg.data.open_grace`) against the model
    region's mass at the ends of its mass-balance years.

    The series is interpolated linearly in time to each year end (the first day of
    `year_start_month`), for the model years whose end lies inside the series (and within
    `start`..`end` years if given); `area` (member,) are the glacier areas [m2]. The model's
    mass at the end of year y is the sum of the balances of years <= y, so the first model
    year must start before the first compared year end.
    """
    if variable not in series or "time" not in series[variable].dims:
        raise ValueError(f"observation {name!r}: the series needs a time-dimensioned {variable!r} variable")
    times = pd.DatetimeIndex(series.indexes["time"])
    t = (times - times[0]) / pd.Timedelta(days=1)
    mass = series[variable].values.astype(float)
    error = series[sigma_variable].values.astype(float) if sigma_variable in series else None
    if error is None:
        raise ValueError(f"observation {name!r}: the series has no {sigma_variable!r}; give its uncertainties")
    model_years = np.asarray(model_years)
    ends = pd.DatetimeIndex([pd.Timestamp(int(y), year_start_month, 1) for y in model_years])
    if year_start_month == 1:
        ends = pd.DatetimeIndex([pd.Timestamp(int(y) + 1, 1, 1) for y in model_years])
    inside = (ends >= times[0]) & (ends <= times[-1])
    if start is not None:
        inside &= model_years >= int(start)
    if end is not None:
        inside &= model_years <= int(end)
    rows = np.flatnonzero(inside)
    if rows.size < 2:
        raise ValueError(f"observation {name!r}: fewer than 2 model year ends fall inside the series")
    te = (ends[rows] - times[0]) / pd.Timedelta(days=1)
    values = np.interp(te, t, mass)
    sigma = np.interp(te, t, error)
    weights = np.zeros((rows.size, model_years.size))
    weights[np.arange(rows.size), rows] = 1.0
    labels = [str(e.date()) for e in ends[rows]]
    return RegionalMassChange(name, area, weights, values, sigma, labels=labels)


def period_mass_change(
    series: xr.Dataset,
    area,
    model_years,
    *,
    source: str = "gravimetry",
    year_start_month: int = 10,
    start=None,
    end=None,
    own_variability_only: bool = True,
    model_error: float = 0.0,
    name: str | None = None,
) -> RegionalPeriodChange:
    """GlaMBIE's mass change per period of one source (`cg.data.open_grace` of a GlaMBIE
    CSV: `<source>_mass_change` [Gt] with `_uncertainty`, 1-sigma, and `time_bounds`)
    against the modelled glaciers' summed change over the same periods.

    Model year y runs from the first of `year_start_month` of year y - 1 to that of year y
    (10: hydrological years labelled by their end; 1: calendar years). Period bounds are
    taken to the start of their day (GlaMBIE's decimal year 2002.75 is 1 October 2002,
    18:00). Only periods
    inside the model years, and inside model years `start`..`end` (inclusive) if given,
    are kept. With `own_variability_only`, periods where the source does not give its own
    year-to-year change (`<source>_annual_variability` not 1: filled from the combined
    estimate, e.g. gravimetry across the 2017-2018 GRACE/GRACE-FO gap) are left out. `area`
    (member,) glacier areas [m2]. `model_error` [Gt per year] is added in quadrature to each
    period's error, scaled by the period's length in model years (the model's own error,
    e.g. from a climate taken from a few stations: without it, a Laplace posterior on
    errors the model cannot reach is overconfident).

    Raises `ValueError` for a missing source or uncertainty, a negative `model_error`, and
    when no period is left.
    """
    name = name or source
    if not (np.isfinite(model_error) and model_error >= 0):
        raise ValueError(f"observation {name!r}: model_error must be >= 0 [Gt per year], got {model_error!r}")
    variable, error = f"{source}_mass_change", f"{source}_mass_change_uncertainty"
    if variable not in series:
        groups = sorted(
            v[: -len("_mass_change")] for v in series.data_vars if v.endswith("_mass_change") and "_specific" not in v
        )
        raise ValueError(f"observation {name!r}: the series has no {variable!r}; sources: {groups}")
    if error not in series:
        raise ValueError(f"observation {name!r}: the series has no {error!r}; a series without errors cannot be fitted")
    if "time_bounds" not in series:
        raise ValueError(f"observation {name!r}: the series has no 'time_bounds' (the periods of its changes)")
    if year_start_month not in range(1, 13):
        raise ValueError(f"year_start_month must be 1..12, got {year_start_month!r}")
    model_years = np.asarray(model_years, dtype=int)
    offset = 1 if year_start_month > 1 else 0
    year_bounds = pd.DatetimeIndex(
        [pd.Timestamp(int(y) - offset, year_start_month, 1) for y in model_years]
        + [pd.Timestamp(int(model_years[-1]) + 1 - offset, year_start_month, 1)]
    )
    if np.any(np.diff(model_years) != 1):
        raise ValueError("model_years must be consecutive years")
    bounds = pd.DatetimeIndex(series["time_bounds"].values.ravel()).floor("D").values.reshape(-1, 2)
    values = series[variable].values.astype(float)
    sigma = series[error].values.astype(float)
    keep = np.isfinite(values) & np.isfinite(sigma)
    flag = f"{source}_annual_variability"
    if own_variability_only and flag in series:
        keep &= series[flag].values == 1
    first, last = year_bounds[0].to_datetime64(), year_bounds[-1].to_datetime64()
    keep &= (bounds[:, 0] >= first) & (bounds[:, 1] <= last)
    rows = np.flatnonzero(keep)
    weights = np.zeros((rows.size, model_years.size))
    starts, ends = year_bounds[:-1].values, year_bounds[1:].values
    for k, i in enumerate(rows):
        overlap = np.minimum(ends, bounds[i, 1]) - np.maximum(starts, bounds[i, 0])
        weights[k] = np.maximum(overlap / (ends - starts), 0.0)
    lo = int(start) if start is not None else int(model_years[0])
    hi = int(end) if end is not None else int(model_years[-1])
    if start is not None or end is not None:
        inside = (model_years >= lo) & (model_years <= hi)
        chosen = np.all(weights[:, ~inside] == 0.0, axis=1) & np.any(weights > 0, axis=1)
        rows, weights = rows[chosen], weights[chosen]
    if rows.size == 0:
        span = f"{pd.Timestamp(bounds[0, 0]).date()} to {pd.Timestamp(bounds[-1, 1]).date()}"
        raise ValueError(
            f"observation {name!r}: no {source} period lies inside the model years {model_years[0]}-"
            f"{model_years[-1]}{'' if start is None and end is None else f' limited to {lo}-{hi}'} "
            f"(the series spans {span})"
        )
    labels = [f"{pd.Timestamp(bounds[i, 0]).date()}/{pd.Timestamp(bounds[i, 1]).date()}" for i in rows]
    sigma = np.hypot(sigma[rows], model_error * weights.sum(axis=1))
    return RegionalPeriodChange(name, area, weights, values[rows], sigma, labels=labels)


def regional_balance(
    value,
    sigma,
    area,
    model_years,
    start,
    end,
    *,
    name="regional_geodetic",
    label=None,
    likelihood: Likelihood = "gaussian",
) -> RegionalBalance:
    """A regional mass-balance rate [kg m-2 yr-1] over mass-balance years start..end
    (inclusive) against the area-weighted mean of the problem's glaciers.

    `area` (member,) the glacier areas [m2]; `sigma` [kg m-2 yr-1] should include the
    error of letting the modelled glaciers stand for the region.
    """
    values = np.atleast_1d(np.asarray(value, dtype=float))
    if values.size != 1:
        raise ValueError(f"observation {name!r}: one regional value per operator, got {values.size}")
    model_years = np.asarray(model_years)
    rows = _year_positions(model_years, np.arange(int(start), int(end) + 1), name)
    weights = np.zeros((1, model_years.size))
    weights[0, rows] = 1.0 / rows.size
    return RegionalBalance(
        name,
        area,
        weights,
        values,
        sigma,
        labels=[label if label is not None else f"{start}-{end}"],
        likelihood=likelihood,
    )


def elevation_change_profile(
    profile: xr.Dataset,
    glacier,
    model_years,
    start,
    end,
    *,
    period=None,
    member=None,
    name="dh_profile",
    density=DENSITY,
    density_sigma=DENSITY_SIGMA,
    likelihood: Likelihood = "gaussian",
) -> ElevationChangeProfile:
    """A binned elevation-change profile (`cg.data.open_geodetic_mb` of a binned CSV or
    JSON: `elevation_change` (period, bin) [m] over the period, its uncertainty, and
    `bin_bottom`/`bin_top` [m]) against a `DeltaH` run of `glacier` (a one-glacier
    `Hypsometry`) over mass-balance years `start`..`end` (inclusive; the model must hold
    the year before `start`).

    **Errors:** the profile's own sigma, and the density convention: the model turns mass
    into thickness with one ice density, where a measured volume change stands for a mass
    with 850 +- 60 kg m-3 (Huss 2013); the relative `density_sigma / density` of each
    observed change is added in quadrature. Bins without a value are skipped; a bin that
    holds no model band is refused.
    """
    if "elevation_change" not in profile or "bin" not in profile.dims:
        raise ValueError(f"observation {name!r}: needs a binned profile with 'elevation_change' (period, bin)")
    series = profile["elevation_change"]
    error = profile.get("elevation_change_uncertainty")
    if error is None:
        raise ValueError(f"observation {name!r}: the profile has no 'elevation_change_uncertainty'")
    if "period" in series.dims:
        periods = series.period.values.tolist()
        if period is None and len(periods) != 1:
            raise ValueError(f"observation {name!r}: the profile holds periods {periods}; pass period=")
        if period is not None and period not in periods:
            raise ValueError(f"observation {name!r}: period {period!r} is not in the profile ({periods})")
        chosen = periods[0] if period is None else period
        series, error = series.sel(period=chosen), error.sel(period=chosen)
    values, sigma = series.values.astype(float), error.values.astype(float)
    keep = np.isfinite(values) & np.isfinite(sigma)
    bottom, top = profile["bin_bottom"].values[keep], profile["bin_top"].values[keep]
    values, sigma = values[keep], sigma[keep]
    sigma = np.hypot(sigma, values * density_sigma / density)
    elevation, area = np.asarray(glacier.elevation), np.asarray(glacier.area)
    if elevation.ndim != 1:
        raise ValueError(f"observation {name!r}: give the one glacier's Hypsometry (band,)")
    inside = (elevation[None, :] >= bottom[:, None]) & (elevation[None, :] < top[:, None]) & (area[None, :] > 0)
    totals = (inside * area).sum(axis=1)
    if np.any(totals == 0):
        empty = [f"{b:g}-{t:g} m" for b, t, a in zip(bottom, top, totals, strict=True) if a == 0]
        raise ValueError(f"observation {name!r}: no glacier band lies in bins {empty}")
    weights = inside * area / totals[:, None]
    model_years = np.asarray(model_years)
    first, last = _year_positions(model_years, [int(start), int(end)], name)
    if first == 0:
        raise ValueError(
            f"observation {name!r}: the model must start before {start} (the thickness at the end of "
            f"{int(start) - 1} is the period's reference)"
        )
    labels = [f"{b:g}-{t:g} m" for b, t in zip(bottom, top, strict=True)]
    return ElevationChangeProfile(
        name, weights, (first - 1, last), values, sigma, member=member, labels=labels, likelihood=likelihood
    )


def ground_temperature(
    measured: xr.DataArray,
    model_times,
    centres,
    *,
    sigma: float = 0.5,
    member=None,
    name="ground_temperature",
    start=None,
    end=None,
    likelihood: Likelihood = "gaussian",
    correlation_time: float | None = None,
) -> GroundTemperature:
    """Measured ground temperatures (time, depth) [degC] as a `GroundTemperature` operator.

    `model_times` the model's saved times (one per row of `outputs["temperature"]`);
    `centres` the cell centres [m]; only times present in the model and inside
    `start`..`end` are used; NaN entries are skipped; `sigma` [K]. `correlation_time`
    [day]: each depth's errors serially correlated, exp(-|t_i - t_j| / correlation_time)
    (AR(1) with lag-1 correlation exp(-1 / correlation_time) for daily series, gaps
    included; see `ErrorModel`), instead of independent.
    """
    if not isinstance(measured, xr.DataArray) or set(measured.dims) != {"time", "depth"}:
        raise ValueError(f"observation {name!r}: measured must be a DataArray (time, depth)")
    measured = measured.transpose("time", "depth").sel(time=slice(start, end))
    lookup = {t: i for i, t in enumerate(pd.DatetimeIndex(model_times))}
    times = pd.DatetimeIndex(measured.indexes["time"])
    keep = np.array([t in lookup for t in times])
    values = measured.values[keep]
    rows, cols = np.nonzero(np.isfinite(values))
    if rows.size == 0:
        raise ValueError(f"observation {name!r}: no measured value on a modelled day in the period")
    kept_times = times[keep]
    depth = measured.depth.values[cols]
    time_index = np.array([lookup[t] for t in kept_times[rows]])
    labels = [f"{kept_times[r].date()}@{d:g}m" for r, d in zip(rows, depth, strict=True)]
    days = np.asarray((kept_times[rows] - kept_times[0]) / pd.Timedelta(days=1), dtype=float)
    return GroundTemperature(
        name,
        time_index,
        depth,
        centres,
        values[rows, cols],
        sigma,
        member=member,
        labels=labels,
        likelihood=likelihood,
        correlation_time=correlation_time,
        times=days,
    )


def _celsius(series: xr.DataArray, name: str) -> np.ndarray:
    units = series.attrs.get("units")
    if units is None:
        raise ValueError(f"observation {name!r}: the LST series has no 'units' attribute; set it to 'K' or 'degC'")
    return _units.to_celsius(series.values, units, f"observation {name!r}: the LST series")


def land_surface_temperature(
    lst: xr.DataArray,
    model_times,
    *,
    dt: float = 86400.0,
    sigma: float = 1.0,
    offset: str | None = None,
    clear=None,
    member=None,
    name="lst",
    start=None,
    end=None,
    likelihood: Likelihood = "gaussian",
) -> LandSurfaceTemperature:
    """A clear-sky LST series of one pixel or site as a `LandSurfaceTemperature` operator.

    **Arguments:** `lst` a DataArray over `time` [K or degC, by its `units` attribute]
    with NaN where there is no clear-sky retrieval (e.g. one pixel of
    `cg.data.open_modis_lst` after `cg.data.quality_mask`); `model_times` the start of
    each model step (the forcing's times), steps of `dt` [s]; each retrieval is compared
    with the step that holds its time (give overpass times in `time` for sub-daily steps);
    `clear` an optional boolean mask over the same times (True: clear sky), applied on top
    of the NaNs; `sigma` [K]; `offset` the name of the fitted LST-minus-surface offset
    parameter, or None; `member` the site's position in a batched problem; `start`/`end`
    dates limiting the retrievals used. Retrievals outside the modelled steps are not used.
    """
    if not isinstance(lst, xr.DataArray) or lst.dims != ("time",):
        dims = getattr(lst, "dims", None)
        raise ValueError(f"observation {name!r}: lst must be a DataArray over time only, got dims {dims}")
    values = _celsius(lst, name)
    times = pd.DatetimeIndex(lst.indexes["time"])
    keep = np.isfinite(values)
    if clear is not None:
        clear = np.asarray(clear, dtype=bool)
        if clear.shape != values.shape:
            raise ValueError(f"observation {name!r}: clear has shape {clear.shape}, the LST series {values.shape}")
        keep &= clear
    if start is not None:
        keep &= times >= pd.Timestamp(start)
    if end is not None:
        keep &= times <= pd.Timestamp(end) + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    model_times = pd.DatetimeIndex(model_times)
    step = np.searchsorted(model_times, times, side="right") - 1
    inside = (step >= 0) & (times < model_times[np.maximum(step, 0)] + pd.Timedelta(seconds=dt))
    keep &= inside
    if not keep.any():
        raise ValueError(f"observation {name!r}: no clear-sky LST value inside the modelled steps and the period")
    labels = [str(t) for t in times[keep]]
    return LandSurfaceTemperature(
        name, step[keep], values[keep], sigma, offset=offset, member=member, labels=labels, likelihood=likelihood
    )


def active_layer_thickness(
    alt: xr.DataArray,
    model_times,
    edges,
    *,
    sigma: float = 0.05,
    member=None,
    name="alt",
    likelihood: Likelihood = "gaussian",
) -> ActiveLayerThickness:
    """Annual active-layer thickness (thaw probing, CALM grids, or a borehole's yearly
    maximum thaw) as an `ActiveLayerThickness` operator.

    **Arguments:** `alt` a DataArray over `year` [m] (NaN years skipped); `model_times` the
    model's saved times (one per row of `outputs["temperature"]`); `edges` the grid's cell
    edges [m]; `sigma` [m]; `member` the site's position in a batched problem. Every
    observed year must be modelled from its first to its last day, so that the model's
    yearly maximum sees the whole thaw season.
    """
    if not isinstance(alt, xr.DataArray) or alt.dims != ("year",):
        raise ValueError(f"observation {name!r}: alt must be a DataArray over year only")
    alt = alt.dropna("year")
    if alt.size == 0:
        raise ValueError(f"observation {name!r}: no active-layer thickness value")
    model_times = pd.DatetimeIndex(model_times)
    spacing = model_times[1] - model_times[0] if model_times.size > 1 else pd.Timedelta(days=1)
    rows, missing = [], []
    for year in alt.year.values.astype(int):
        mask = model_times.year == year
        chosen = model_times[mask]
        if (
            not mask.any()
            or chosen[0] - pd.Timestamp(year, 1, 1) >= spacing
            or pd.Timestamp(year + 1, 1, 1) - chosen[-1] > spacing
        ):
            missing.append(int(year))
        rows.append(mask)
    if missing:
        raise ValueError(
            f"observation {name!r}: years {missing} are not modelled from January to December "
            f"(model {model_times[0].date()} to {model_times[-1].date()})"
        )
    return ActiveLayerThickness(
        name,
        np.stack(rows),
        edges,
        alt.values,
        sigma,
        member=member,
        labels=[str(int(y)) for y in alt.year.values],
        likelihood=likelihood,
    )
