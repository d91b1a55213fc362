"""Satellite land-surface temperature (LST) as the upper boundary of a soil column.

Clear-sky LST (MODIS day and night overpasses) has cloud gaps, is sampled at overpass
times rather than as a daily mean, and differs from the ground-surface temperature
(clear-sky cold bias; under snow it is the snow surface). Two steps turn it into a
forcing, and the second one also runs backwards as an observation operator:

1. `gap_fill_lst` (arrays: `fill_lst_gaps`): a daily-mean LST series. Every clear-sky
   value is modelled as

       LST_p(t) = c_0 + sum_k (a_k cos(2 pi k t / P) + b_k sin(2 pi k t / P)) + s_p D + A(t)

   with P = 365.25 days, an annual climatology of `n_harmonics` harmonics, s_p = +1 for
   day and -1 for night overpasses (D, half the mean day-night difference, is fitted
   only when both kinds are present) and A(t) the weather anomaly. Climatology and D are a
   least-squares fit to all clear-sky values; the daily anomaly is the mean of the day's
   residuals, interpolated linearly across gaps and relaxed towards zero (the climatology)
   with e-folding distance `decay_days` from the nearest clear day. The daily mean is taken
   as the climatology plus the anomaly (the mean of the two overpasses, an approximation
   of the 24-hour mean).
2. `SatelliteLST(offset, snow_offset)`: ground-surface temperature = daily LST + offset
   + snow_offset x snow cover [degC]; `observe` is the inverse, modelled ground-surface
   temperature to daily-mean LST, for fitting the offsets to LST observations.
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._surface import AbstractSurface
from ._validation import as_float_array, is_concrete

YEAR_DAYS = 365.25


class SatelliteLST(AbstractSurface):
    """Ground-surface temperature from a gap-filled daily land-surface temperature
    (Dirichlet condition at the top edge).

    **Arguments:**

    - `offset`: ground-surface minus land-surface temperature [K] (default 0), a
      learnable leaf: clear-sky sampling biases LST cold, so fits usually give > 0.
    - `snow_offset`: extra offset [K] per unit snow cover (default 0), learnable; used
      when `snow_cover=True`.
    - `snow_cover`: whether the forcing has `snow_cover` [1] (0-1, e.g. MODIS snow cover
      or modelled snow presence).

    Forcing variables: `land_surface_temperature` [degC, or K with `units: K`], the daily
    series from `gap_fill_lst`, and `snow_cover` [1] if asked for.
    """

    offset: Float[Array, ""]
    snow_offset: Float[Array, ""]
    snow_cover: bool = eqx.field(static=True)
    fixed_temperature: ClassVar[bool] = True

    def __init__(self, offset: ArrayLike = 0.0, snow_offset: ArrayLike = 0.0, *, snow_cover: bool = False):
        for name, value in (("offset", offset), ("snow_offset", snow_offset)):
            if is_concrete(value):
                as_float_array(value, name)
        self.offset = jnp.asarray(offset, jnp.float64)
        self.snow_offset = jnp.asarray(snow_offset, jnp.float64)
        self.snow_cover = bool(snow_cover)

    @property
    def forcing_variables(self) -> tuple[str, ...]:
        """Forcing variables the surface reads: `land_surface_temperature` [degC] (and `snow_cover`)."""
        return ("land_surface_temperature", "snow_cover") if self.snow_cover else ("land_surface_temperature",)

    def _shift(self, forcing):
        cover = forcing["snow_cover"] if self.snow_cover else 0.0
        return self.offset + self.snow_offset * cover

    def boundary_value(self, forcing):
        return forcing["land_surface_temperature"] + self._shift(forcing)

    def observe(self, ground_surface_temperature, snow_cover=0.0):
        """Daily-mean LST [degC] from ground-surface temperature [degC] (the observation
        operator; add +/- `diurnal_half_range` from `gap_fill_lst` for a day or night
        overpass)."""
        shift = self.offset + self.snow_offset * (snow_cover if self.snow_cover else 0.0)
        return jnp.asarray(ground_surface_temperature, jnp.float64) - shift


def _design(days, n_harmonics):
    """Columns 1, cos(2 pi k t / P), sin(2 pi k t / P) for k = 1..n_harmonics."""
    phase = 2.0 * jnp.pi * days[:, None] * jnp.arange(1, n_harmonics + 1)[None, :] / YEAR_DAYS
    return jnp.concatenate([jnp.ones((days.shape[0], 1)), jnp.cos(phase), jnp.sin(phase)], axis=1)


def fill_lst_gaps(days, lst_day, lst_night, *, n_harmonics: int = 2, decay_days: float = 10.0):
    """Gap-filled daily-mean LST (pure JAX; NaN marks a missing overpass).

    **Arguments:** `days` (nt,) day numbers [d] (consecutive days, any origin); `lst_day`,
    `lst_night` (nt,) clear-sky LST [degC] of the two overpasses, NaN where cloudy;
    `n_harmonics` of the annual climatology; `decay_days` [d] the e-folding distance of
    the anomaly from the nearest clear day.

    **Returns:** dict with `filled`, `climatology`, `anomaly` (nt,) [degC], `observed`
    (nt,) bool, `coefficients` (1 + 2 n_harmonics,) and `diurnal_half_range` D [K].
    """
    days = jnp.asarray(days, jnp.float64)
    values = jnp.stack([jnp.asarray(lst_day, jnp.float64), jnp.asarray(lst_night, jnp.float64)])
    valid = jnp.isfinite(values)
    clean = jnp.where(valid, values, 0.0)
    both = jnp.any(valid[0]) & jnp.any(valid[1])
    design = _design(days, n_harmonics)
    sign = jnp.where(both, jnp.array([1.0, -1.0]), 0.0)
    rows = jnp.concatenate(
        [jnp.concatenate([design, jnp.full((days.shape[0], 1), s)], axis=1) for s in (sign[0], sign[1])]
    )
    weight = valid.reshape(-1).astype(jnp.float64)
    solution, *_ = jnp.linalg.lstsq(rows * weight[:, None], clean.reshape(-1) * weight)
    coefficients, diurnal = solution[:-1], solution[-1]
    climatology = design @ coefficients
    residual = jnp.where(valid, clean - climatology[None, :] - sign[:, None] * diurnal, 0.0)
    count = jnp.sum(valid, axis=0)
    observed = count > 0
    daily = jnp.sum(residual, axis=0) / jnp.maximum(count, 1)
    anomaly = _interpolate(daily, observed, decay_days)
    return dict(
        filled=climatology + anomaly,
        climatology=climatology,
        anomaly=anomaly,
        observed=observed,
        coefficients=coefficients,
        diurnal_half_range=diurnal,
    )


def _interpolate(values, observed, decay_days):
    """Linear interpolation of `values` between observed days, times exp(-d / decay) with
    d the distance to the nearest observed day (0 on observed days)."""
    n = values.shape[0]
    index = jnp.arange(n)
    before = jax.lax.cummax(jnp.where(observed, index, -1))
    after = jax.lax.cummin(jnp.where(observed, index, n), reverse=True)
    has_before, has_after = before >= 0, after < n
    low = values[jnp.clip(before, 0, n - 1)]
    high = values[jnp.clip(after, 0, n - 1)]
    span = jnp.where(has_before & has_after, after - before, 1)
    fraction = jnp.where(has_before & has_after, (index - before) / span, 0.0)
    linear = jnp.where(has_before, low, high) + jnp.where(has_before & has_after, fraction * (high - low), 0.0)
    distance = jnp.minimum(jnp.where(has_before, index - before, n), jnp.where(has_after, after - index, n))
    return jnp.where(observed, values, linear * jnp.exp(-distance / decay_days))


def gap_fill_lst(observations, *, n_harmonics: int = 2, decay_days: float = 10.0, min_observed_days: int = 30):
    """A daily ground-surface forcing series from clear-sky LST (the xarray edge of
    `fill_lst_gaps`).

    **Arguments:**

    - `observations`: `xr.Dataset` with a daily `time` coordinate and
      `land_surface_temperature_day` and/or `land_surface_temperature_night` [K with
      `units: K`, or degC], NaN where there is no clear-sky value (mask bad QC first).
    - `n_harmonics`: harmonics of the annual climatology (default 2).
    - `decay_days`: e-folding distance [d] of anomalies into gaps (default 10).
    - `min_observed_days`: fewer days with a clear-sky value raise ValueError.

    The harmonics run on days since 1 January of the first year, continuously (period
    365.25 days), so leap years shift nothing.

    **Returns:** `xr.Dataset` over `time` with `land_surface_temperature` (gap-filled
    daily mean) [degC], `land_surface_temperature_climatology` [degC],
    `land_surface_temperature_anomaly` [K], `observed` [bool], and the attribute
    `diurnal_half_range` [K]. `SatelliteLST` reads `land_surface_temperature`.
    """
    import pandas as pd
    import xarray as xr

    from .. import _units

    names = [f"land_surface_temperature_{p}" for p in ("day", "night")]
    present = [name for name in names if name in observations.data_vars]
    if not present:
        raise ValueError(f"observations need {names[0]!r} and/or {names[1]!r}; got {list(observations.data_vars)}")
    if "time" not in observations.coords:
        raise ValueError("observations have no 'time' coordinate")
    times = pd.DatetimeIndex(observations.indexes["time"])
    steps = np.diff(times.values).astype("timedelta64[s]").astype(float)
    if times.size < 2 or np.any(steps != 86400.0):
        raise ValueError("observations 'time' must be consecutive days (one value per day and overpass)")
    series = {}
    for name in names:
        if name in present:
            variable = observations[name]
            if variable.dims != ("time",):
                raise ValueError(f"{name!r} must have the single dimension 'time', got {variable.dims}")
            series[name] = _units.to_celsius(variable.values, variable.attrs.get("units"), f"forcing variable {name!r}")
        else:
            series[name] = np.full(times.size, np.nan)
    observed_days = int(np.sum(np.isfinite(series[names[0]]) | np.isfinite(series[names[1]])))
    if observed_days < max(min_observed_days, 2 * n_harmonics + 2):
        raise ValueError(
            f"{' and '.join(repr(n) for n in present)} have clear-sky values on {observed_days} days; "
            f"at least {max(min_observed_days, 2 * n_harmonics + 2)} are needed"
        )
    days = (times - times[0]).days.values.astype(float) + times[0].day_of_year - 1.0
    out = fill_lst_gaps(days, series[names[0]], series[names[1]], n_harmonics=n_harmonics, decay_days=decay_days)
    return xr.Dataset(
        dict(
            land_surface_temperature=(
                "time",
                np.asarray(out["filled"]),
                dict(units="degC", long_name="gap-filled daily mean land-surface temperature"),
            ),
            land_surface_temperature_climatology=(
                "time",
                np.asarray(out["climatology"]),
                dict(units="degC", long_name=f"annual harmonic climatology ({n_harmonics} harmonics)"),
            ),
            land_surface_temperature_anomaly=(
                "time",
                np.asarray(out["anomaly"]),
                dict(units="K", long_name="LST anomaly, interpolated across gaps"),
            ),
            observed=("time", np.asarray(out["observed"]), dict(long_name="a clear-sky value exists this day")),
        ),
        coords=dict(time=times),
        attrs=dict(
            diurnal_half_range=float(out["diurnal_half_range"]),
            diurnal_half_range_units="K",
            decay_days=float(decay_days),
        ),
    )
