"""`cryograd run` for one permafrost station: a GIPL2 station folder's soil column, driven by
its daily air temperature and snow, fitted to the measured ground temperatures of a
calibration period and validated on the days after it.

Config sections: [experiment], [data], [model], [initial], [parameters.NAME],
[observations], [calibration], [validation], [fit], [uncertainty], [projection] (see
docs/experiments/permafrost_gipl_station.md).
Parameter paths are leaves of the `PermafrostColumn`: `surface.thawing`,
`surface.conductivity_scale`, `layers.0.k_frozen`, `layers.1.water_content`, ...
"""

import json
import time
from pathlib import Path
from typing import Annotated

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pydantic
import xarray as xr

from .. import assimilation as A, data as cgdata, physics as P
from . import report, typed
from .config import (
    calibrate,
    check_files,
    column_options,
    data_path,
    parameter,
    remove_checkpoint,
)
from .typed import Config, Field, Section

DAY = 86400.0
FIGURE_DEPTHS = (0.0, 0.14, 0.44, 1.15)


Experiment = typed.experiment("permafrost", seed="seed of the Laplace draws")


class Data(Section):
    station: str = Field(description="a GIPL2 station folder or sample:gipl_station")
    start: typed.Date = Field(description="the date of forcing day 1; GIPL files carry day numbers only")


class Model(typed.ColumnOptions):
    snow_conductivity: Annotated[str, typed.one_of(("prescribed", "sturm", "yen"))] = Field(
        "prescribed", description="the snow's conductivity: the station's (prescribed), Sturm's or Yen's"
    )
    snow_heat_capacity: float | None = Field(None, gt=0, description="[J m-3 K-1] (default GIPL2's)")
    snow_min_depth: float = Field(0.01, ge=0, description="[m] snow thinner than this is not resolved")
    snow_cells: int = Field(5, ge=1, description="snow cells of the implicit solve")
    geothermal_flux: float | None = Field(None, description="[W m-2] (default the station's)")


def _deep(value):
    if isinstance(value, str) and value != "calibration_mean":
        raise ValueError(f"{value!r}; give degC or 'calibration_mean'")
    return value


class Initial(Section):
    deep_depth: float = Field(10.0, description="[m] depth of deep_temperature")
    deep_temperature: Annotated[float | str, pydantic.AfterValidator(_deep)] | None = Field(
        None, description="[degC] or 'calibration_mean': below the profile, linear to this at deep_depth"
    )


class GroundTemperature(Section):
    sigma: float = Field(0.5, gt=0, description="[K] observation error")
    correlation_time: float | None = Field(
        None,
        gt=0,
        description="[day] each depth's errors serially correlated, exp(-|dt| / correlation_time) (AR(1) for "
        "daily values); not given: independent",
    )
    likelihood: Annotated[str, typed.one_of(("gaussian", "student_t"))] = Field(
        "gaussian", description="`gaussian` or `student_t` (heavy tails for sensor spikes)"
    )


class Observations(Section):
    ground_temperature: GroundTemperature = Field(description="sigma in K")


class Validation(Section):
    start: typed.Date | None = Field(None, description="first day (default: after calibration)")
    end: typed.Date | None = Field(None, description="last day (default: the forcing's last)")


class Uncertainty(Section):
    hessian: str = Field("gauss_newton", description="the Laplace approximation's Hessian: only 'gauss_newton'")
    draws: int = Field(
        10, ge=0, description="Laplace draws run over the whole record for the predictive band (0: none)"
    )

    @pydantic.field_validator("hessian")
    @classmethod
    def _gauss_newton(cls, value: str) -> str:
        if value != "gauss_newton":
            raise ValueError(
                "only 'gauss_newton' for permafrost runs (the column is differentiated in forward mode, which gives "
                "the Jacobian, not the exact Hessian)"
            )
        return value


class PermafrostConfig(Config):
    """A `permafrost` experiment (a GIPL2 station)."""

    experiment: Experiment
    data: Data
    model: Model = Model()
    initial: Initial = Initial()
    parameters: Annotated[
        dict[str, typed.ParameterTable], pydantic.AfterValidator(lambda t: typed.parameter_tables(t, "n_thawing"))
    ] = Field(description="[parameters.NAME] tables; path: a leaf of the column such as 'surface.thawing'")
    observations: Observations
    calibration: typed.DatePeriod
    validation: Validation = Validation()
    fit: typed.Fit = typed.Fit()
    uncertainty: Uncertainty = Uncertainty()
    projection: typed.Projection | None = None


MODEL = PermafrostConfig
"""The kind's typed config (docs/experiments/permafrost_gipl_station.md is tested against it)."""


def validate(config: dict) -> list[str]:
    """Every problem of a permafrost config (keys, types, files, parameters), without running."""
    return typed.problems(PermafrostConfig, config)[1] + check_files(config, ("station",))


def resolve(config: dict) -> dict:
    """The config with every default filled in (refused with every problem if it has any)."""
    return typed.resolve(PermafrostConfig, config, check_files(config, ("station",)))


def _station(config) -> xr.Dataset:
    return cgdata.open_gipl_station(data_path(config["data"]["station"]), start=config["data"]["start"])


class PermafrostExperiment:
    """The pieces of a permafrost config: column, forcing, initial state, observations."""

    def __init__(self, config: dict):
        self.config = config
        self.notes = []
        self.station = station = _station(config)
        model = config.get("model", {})
        snow = P.Snow(
            conductivity=model.get("snow_conductivity", "prescribed"),
            heat_capacity=model.get("snow_heat_capacity", cgdata._gipl.GIPL_SNOW_HEAT_CAPACITY),
            min_depth=model.get("snow_min_depth", 0.01),
            n_cells=model.get("snow_cells", 5),
        )
        column = cgdata.gipl_column(station, snow)
        if "geothermal_flux" in model or column_options(model):
            column = column.replace(
                geothermal_flux=model.get("geothermal_flux", column.geothermal_flux), **column_options(model)
            )
        self.column = column
        self.centres = np.asarray(column.grid.centres)
        variables = column.surface.forcing_variables
        from ..physics._xarray import forcing_arrays

        self.forcing, self.times = forcing_arrays(station[list(variables)], variables, DAY)
        calibration = config["calibration"]
        self.calibration = (pd.Timestamp(calibration["start"]), pd.Timestamp(calibration["end"]))
        if self.calibration[0] != self.times[0]:
            raise ValueError(
                f"calibration.start {self.calibration[0].date()}: the run starts from the station's initial profile "
                f"on its first forcing day, {self.times[0].date()}; start the calibration there"
            )
        if self.calibration[1] > self.times[-1]:
            raise ValueError(
                f"calibration.end {self.calibration[1].date()} is after the last forcing day {self.times[-1].date()}"
            )
        validation = config.get("validation", {})
        start = pd.Timestamp(validation.get("start", self.calibration[1] + pd.Timedelta(days=1)))
        end = pd.Timestamp(validation.get("end", self.times[-1]))
        if start <= self.calibration[1]:
            raise ValueError(f"validation.start {start.date()} lies inside the calibration period")
        if end < start:
            raise ValueError(f"validation: end {end.date()} is before start {start.date()}; swap them")
        if start > self.times[-1] or end > self.times[-1]:
            raise ValueError(f"validation {start.date()}-{end.date()}: the forcing ends {self.times[-1].date()}")
        self.validation = (start, end)
        self.n_calibration = int(np.searchsorted(self.times, self.calibration[1], side="right"))
        projection = config.get("projection")
        if projection:
            base = float(column.grid.edges[-1])
            if max(projection["magt_depths"]) > base:
                raise ValueError(
                    f"projection.magt_depths: {max(projection['magt_depths']):g} m lies below the column's base "
                    f"({base:g} m)"
                )
            _whole_years(self.times.size)
        self.initial = jnp.asarray(self._initial_profile())
        self.parameters = [parameter(name, spec) for name, spec in config["parameters"].items()]
        sigma = config["observations"]["ground_temperature"].get("sigma", 0.5)
        likelihood = config["observations"]["ground_temperature"].get("likelihood", "gaussian")
        measured = station.ground_temperature
        self.observation = A.ground_temperature(
            measured,
            self.times[: self.n_calibration],
            self.centres,
            sigma=sigma,
            end=str(self.calibration[1].date()),
            likelihood=likelihood,
            correlation_time=config["observations"]["ground_temperature"].get("correlation_time"),
        )
        self.validation_operator = A.ground_temperature(
            measured,
            self.times,
            self.centres,
            sigma=sigma,
            start=str(start.date()),
            end=str(end.date()),
            name="ground_temperature",
        )
        self.calibration_operator = A.ground_temperature(
            measured, self.times, self.centres, sigma=sigma, end=str(self.calibration[1].date())
        )

    def _initial_profile(self) -> np.ndarray:
        """The station's initial profile at the cell centres; below its deepest value it
        goes linearly to `initial.deep_temperature` at `initial.deep_depth` and stays there
        (without [initial] the deepest value is held, as GIPL2 does)."""
        initial = cgdata.gipl_initial_temperature(self.station)
        depth, values = initial.depth.values, initial.values
        spec = self.config.get("initial", {})
        if "deep_temperature" in spec:
            deep = spec["deep_temperature"]
            if deep == "calibration_mean":
                measured = self.station.ground_temperature.sel(time=slice(*self.calibration))
                deepest = measured.isel(depth=-1)
                deep = float(deepest.mean())
                if not np.isfinite(deep):
                    raise ValueError(
                        "initial.deep_temperature = 'calibration_mean': the deepest sensor has no value in the "
                        "calibration period; give the temperature in degC"
                    )
                self.note(
                    f"initial: below {depth[-1]:g} m the profile goes to {deep:.2f} degC at "
                    f"{spec.get('deep_depth', 10.0):g} m, the calibration period's mean at the deepest sensor "
                    f"({float(deepest.depth):g} m)"
                )
            deep_depth = float(spec.get("deep_depth", 10.0))
            if deep_depth <= depth[-1]:
                raise ValueError(f"initial.deep_depth {deep_depth} m must lie below the profile's {depth[-1]} m")
            depth, values = np.append(depth, deep_depth), np.append(values, float(deep))
        return np.interp(self.centres, depth, values)

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def forward(self, column, inputs):
        return column.run(inputs["forcing"], inputs["initial"], DAY, adjoint=diffrax.ForwardMode())

    def problem(self) -> A.Problem:
        forcing = {k: v[: self.n_calibration] for k, v in self.forcing.items()}
        return A.Problem(
            self.column, self.forward, self.parameters, [self.observation], dict(forcing=forcing, initial=self.initial)
        )

    def reference_run(self) -> np.ndarray:
        """The station's own parameters in GIPL2's set-up (snow from 1 cm, the air
        temperature on bare ground, the initial profile's deepest value held below it)."""
        initial = cgdata.gipl_initial_temperature(self.station)
        column = cgdata.gipl_column(self.station).replace(**column_options(self.config.get("model", {})))
        initial = jnp.asarray(np.interp(self.centres, initial.depth.values, initial.values))
        variables = column.surface.forcing_variables
        from ..physics._xarray import forcing_arrays

        forcing, _ = forcing_arrays(self.station[list(variables)], variables, DAY)
        return np.asarray(_temperature(column, forcing, initial))

    def full_run(self, column) -> np.ndarray:
        """Temperature (time, cell) [degC] over the whole forcing."""
        return np.asarray(_temperature(column, self.forcing, self.initial))


@eqx.filter_jit
def _temperature(column, forcing, initial):
    """Temperature (time, cell) [degC] of a daily run (compiled once per column structure)."""
    return column.run(forcing, initial, DAY)["temperature"]


def _label_depths(operator: A.GroundTemperature) -> np.ndarray:
    """The sensor depth [m] of each of the operator's values (its labels read 'DATE@DEPTHm')."""
    return np.array([float(label.split("@")[1].removesuffix("m")) for label in operator.labels])


def depth_metrics(operator: A.GroundTemperature, temperature) -> dict:
    """Per-depth metrics of a (time, cell) run against `operator`'s measurements, and the
    mean MAE over depths."""
    predicted = np.asarray(operator.predict(dict(temperature=jnp.asarray(temperature)), None))
    observed = np.asarray(operator.values)
    depths = _label_depths(operator)
    table = {f"{d:g}": report.metrics(predicted[depths == d], observed[depths == d]) for d in np.unique(depths)}
    return dict(
        mean_mae_over_depths=float(np.mean([m["mae"] for m in table.values()])),
        all=report.metrics(predicted, observed),
        by_depth=table,
    )


def laplace_draws(result, posterior, draws: int, seed: int) -> np.ndarray:
    """`draws` parameter vectors (unconstrained) from the Laplace posterior."""
    return np.asarray(
        jax.random.multivariate_normal(jax.random.key(seed + 1), result.u, posterior.covariance_u, (draws,))
    )


def predictive_band(experiment, fitted, runs, seed: int):
    """The 5-95 % predictive band of the daily temperatures at the sensors and its coverage.

    Parameters: `runs` (draw, time, cell) [degC], the Laplace draws' runs over the whole
    record. Error: for each depth, the RMS of the calibrated run's (`fitted`, (time, cell)
    [degC] over the whole record) calibration residuals (the model-data mismatch the fit
    left, bias included), drawn Gaussian and independent of the parameters. Returns
    ((lower, upper) (time, depth) [degC], coverage dict) where coverage is the share of the
    validation period's measurements inside the band, with and without the error term."""
    depths = experiment.station.ground_temperature.depth.values
    calibration = experiment.calibration_operator
    residual = np.asarray(calibration.predict(dict(temperature=jnp.asarray(fitted)), None)) - np.asarray(
        calibration.values
    )
    at = _label_depths(calibration)
    error = {float(d): float(np.sqrt(np.mean(residual[at == d] ** 2))) for d in np.unique(at)}
    at_sensors = np.stack([[np.interp(depths, experiment.centres, row) for row in run] for run in runs])
    sigma = np.array([error.get(float(d), np.nan) for d in depths])
    noise = np.random.default_rng(seed + 2).normal(size=(20, *at_sensors.shape)) * sigma
    samples = (at_sensors[None] + noise).reshape(-1, *at_sensors.shape[1:])
    lower, upper = np.percentile(samples, [5, 95], axis=0)
    parameters_only = np.percentile(at_sensors, [5, 95], axis=0)

    validation = experiment.validation_operator
    rows = np.asarray(validation.time_index)
    columns = np.searchsorted(depths, _label_depths(validation))
    observed = np.asarray(validation.values)

    def inside(band):
        return float(np.mean((band[0][rows, columns] <= observed) & (observed <= band[1][rows, columns])))

    coverage = dict(
        band="5-95 %",
        validation_share_inside=inside((lower, upper)),
        validation_share_inside_parameters_only=inside(parameters_only),
        n=int(observed.size),
        draws=len(runs),
        error_std_by_depth_K={f"{d:g}": round(v, 4) for d, v in error.items()},
        note="Laplace draws of the parameters, each run over the record; plus, per depth, Gaussian error with the "
        "RMS of the calibration residuals",
    )
    return (lower, upper), coverage


YEAR_DAYS = 365


def _whole_years(days: int) -> int:
    """The days of a record's whole years, the part a projection repeats (refused if none)."""
    if days < YEAR_DAYS:
        raise ValueError(f"projection: the record has {days} days; it needs at least one whole year to repeat")
    return YEAR_DAYS * (days // YEAR_DAYS)


def projection_forcing(experiment, spec: dict) -> tuple[dict, np.ndarray]:
    """The projection's daily forcing: the record's whole years repeated (day k after the
    record's last day takes the record's day (n + k) mod (365 x whole years), so the
    seasons continue) with `warming_per_decade` [K per decade] added to the air (or
    surface) temperature, growing linearly from the record's end; snow as recorded.
    Returns (forcing, the warming added each day [K])."""
    nt = experiment.times.size
    base = _whole_years(nt)
    days = YEAR_DAYS * int(spec["years"])
    index = (nt + np.arange(days)) % base
    warming = float(spec["warming_per_decade"]) / 10.0 * (np.arange(days) + 1) / YEAR_DAYS
    forcing = {k: np.asarray(v)[index] for k, v in experiment.forcing.items()}
    warmed = next((k for k in ("air_temperature", "surface_temperature") if k in forcing), None)
    if warmed is None:
        raise ValueError(f"projection: the surface's forcing {sorted(forcing)} has no air or surface temperature")
    forcing[warmed] = forcing[warmed] + warming
    return {k: jnp.asarray(v) for k, v in forcing.items()}, warming


@eqx.filter_jit
def _annual(dynamic, static, forcing, initial, period, periods: int):
    """Per-year largest thaw depth and mean cell temperatures of a batch of columns (the
    leading axis of `dynamic`, `forcing` and `initial`) in one call, so the native kernel
    runs them side by side on every core (`PermafrostColumn.summarize`)."""

    def one(leaves, series, start):
        out = eqx.combine(leaves, static).summarize(series, start, DAY, period, periods)
        return out["max_thaw_depth"], out["mean_temperature"]

    return jax.vmap(one)(dynamic, forcing, initial)


def project(experiment, models: list, ends: list, spec: dict) -> dict:
    """Active-layer thickness (model, year) [m] and MAGT (model, year, depth) [degC] of each
    model (the calibrated one first, then the Laplace draws), each run on from its own
    state at the record's last day (`ends`: temperature (cell,) [degC]) through
    `projection_forcing`, and again without the warming (the control: what the column
    does in the record's climate, its drift from a state that was not spun up included).
    All runs go in one batched call."""
    forcing, warming = projection_forcing(experiment, spec)
    control, _ = projection_forcing(experiment, spec | dict(warming_per_decade=0.0))
    years, n = int(spec["years"]), len(models)
    period = jnp.asarray(np.arange(YEAR_DAYS * years) // YEAR_DAYS)
    depths = np.asarray(spec["magt_depths"], dtype=float)
    parts = [eqx.partition(model, eqx.is_inexact_array) for model in models]
    static = parts[0][1]
    dynamic = jax.tree_util.tree_map(lambda *leaves: jnp.stack([*leaves, *leaves]), *(d for d, _ in parts))
    series = {k: jnp.stack([forcing[k]] * n + [control[k]] * n) for k in forcing}
    starts = jnp.stack([jnp.asarray(end) for end in ends] * 2)
    thaw, mean = (np.asarray(x) for x in _annual(dynamic, static, series, starts, period, years))
    magt = np.stack([[np.interp(depths, experiment.centres, row) for row in run] for run in mean])
    return dict(
        alt=thaw[:n],
        magt=magt[:n],
        control_alt=thaw[n:],
        control_magt=magt[n:],
        depths=depths,
        warming=warming.reshape(years, YEAR_DAYS).mean(axis=1),
        start=experiment.times[-1] + pd.Timedelta(days=1),
    )


PROJECTED = dict(alt="active_layer_thickness", magt="mean_annual_ground_temperature")


def projection_variables(ds: xr.Dataset, projected: dict) -> xr.Dataset:
    """The projection in result.nc: with the warming (`projected_*`), without it
    (`control_*`) and their difference (`projected_*_change`, the response to the
    warming), each for the calibrated parameters; with draws, the 5-95 % band of the
    Laplace draws for the projection and the response."""
    years = projected["alt"].shape[1]
    start = projected["start"]
    ds = ds.assign_coords(
        projection_year=("projection_year", np.arange(1, years + 1), dict(long_name=f"year after {start.date()}")),
        magt_depth=("magt_depth", projected["depths"], dict(units="m", positive="down", long_name="MAGT depth")),
    )
    ds["projected_warming"] = (
        "projection_year",
        projected["warming"],
        dict(units="K", long_name="air temperature added (mean over the projection year)"),
    )
    for key, quantity in PROJECTED.items():
        dims = ("projection_year",) if key == "alt" else ("projection_year", "magt_depth")
        units = "m" if key == "alt" else "degC"
        change_units = "m" if key == "alt" else "K"
        text = quantity.replace("_", " ")
        scenario, control = projected[key], projected["control_" + key]
        variables = {
            f"projected_{quantity}": (scenario, units, f"{text} with the warming"),
            f"control_{quantity}": (control, units, f"{text} without the warming (control)"),
            f"projected_{quantity}_change": (scenario - control, change_units, f"{text}: with minus without warming"),
        }
        for name, (values, unit, long_name) in variables.items():
            ds[name] = (dims, values[0], dict(units=unit, long_name=f"{long_name}, calibrated parameters"))
            if values.shape[0] > 2 and not name.startswith("control_"):
                for q, band in zip(("05", "95"), np.percentile(values[1:], [5, 95], axis=0), strict=True):
                    ds[f"{name}_p{q}"] = (dims, band, dict(units=unit, long_name=f"{long_name}, {q} % of the draws"))
    return ds


def run(config: dict, out: Path, progress: bool = True) -> dict:
    """Fit, validate, and write summary.json, result.nc and figures to `out`."""
    config = resolve(config)
    started = time.perf_counter()
    experiment = PermafrostExperiment(config)
    seed = int(config.get("experiment", {}).get("seed", 0))
    problem = experiment.problem()  # checks the parameter paths against the column
    out.mkdir(parents=True, exist_ok=True)
    result, checkpoint = calibrate(problem, config, out, progress, gradient="forward")
    report.stage(progress, "uncertainty: Laplace approximation (Gauss-Newton Hessian)")
    try:
        posterior = A.laplace(problem, result.u, hessian="gauss_newton")
    except ValueError as error:
        experiment.note(f"uncertainty: no Laplace posterior ({error})")
        posterior = None

    report.stage(progress, "whole-record runs: calibrated, start values, station parameters")
    runs = dict(
        fitted=experiment.full_run(result.model()),
        start=experiment.full_run(experiment.column),
        reference=experiment.reference_run(),
    )

    def period_metrics(run):
        return dict(
            calibration={"ground_temperature": depth_metrics(experiment.calibration_operator, run)},
            validation={"ground_temperature": depth_metrics(experiment.validation_operator, run)},
        )

    band, coverage, draw_models, draw_runs = None, None, [], []
    draws = config["uncertainty"]["draws"]
    if posterior is not None and draws > 1:
        report.stage(progress, f"predictive band: {draws} Laplace draws over the whole record")
        draw_models = [problem.fitted_model(u) for u in laplace_draws(result, posterior, draws, seed)]
        draw_runs = np.stack([experiment.full_run(m) for m in draw_models])  # compiled once already
        band, coverage = predictive_band(experiment, runs["fitted"], draw_runs, seed)
    projected = None
    if config.get("projection"):
        spec = config["projection"]
        report.stage(progress, f"projection: {spec['years']} years, {1 + len(draw_models)} runs")
        projected = project(
            experiment, [result.model(), *draw_models], [runs["fitted"][-1], *(r[-1] for r in draw_runs)], spec
        )

    metrics = period_metrics(runs["fitted"])
    metrics.update(start=period_metrics(runs["start"]), reference=period_metrics(runs["reference"]))
    metrics["reference"]["note"] = (
        "the station's own parameters in GIPL2's set-up: snow from 1 cm, air temperature on snow-free ground, "
        "initial profile's deepest value held below it"
    )

    report.stage(progress, f"writing result.nc and figures to {out}")
    dataset = _result_dataset(experiment, runs, posterior, result)
    if band is not None:
        for name, values, text in (("temperature_p05", band[0], "5"), ("temperature_p95", band[1], "95")):
            dataset[name] = (
                ("time", "depth"),
                values,
                dict(units="degC", long_name=f"{text} % predictive quantile (parameters and residual error)"),
            )
    if projected is not None:
        dataset = projection_variables(dataset, projected)
    dataset.attrs["config"] = json.dumps({k: v for k, v in config.items()})
    dataset.to_netcdf(out / "result.nc")
    _figures(out, experiment, dataset, posterior, result, metrics)
    if projected is not None:
        _projection_figure(out, experiment, dataset)

    units = {p.name: p.units for p in experiment.parameters}
    if posterior is not None:
        parameters, correlation = report.parameter_summary(posterior, units)
    else:
        values = problem.values(result.u)
        parameters = {k: dict(value=float(v), std=None, units=units.get(k, "")) for k, v in values.items()}
        correlation = None
    summary = dict(
        experiment=config.get("experiment", {}).get("name", "permafrost"),
        parameters=parameters,
        correlation=correlation,
        metrics=metrics,
        cost=result.cost(),
        periods=dict(
            calibration=[str(d.date()) for d in experiment.calibration],
            validation=[str(d.date()) for d in experiment.validation],
        ),
        sampler=None,
        predictive_coverage=coverage,
        projection=None if projected is None else projection_summary(config["projection"], dataset),
        notes=experiment.notes,
        seed=seed,
        versions=report.versions(),
        wall_time_s=round(time.perf_counter() - started, 2),
        config=config,
    )
    report.write_summary(out / "summary.json", summary)
    remove_checkpoint(checkpoint)
    return summary


def projection_summary(spec: dict, ds: xr.Dataset) -> dict:
    """The projection's first and last year in summary.json."""

    def values(name, year):
        out = dict(calibrated=ds[name].sel(projection_year=year).round(4).values.tolist())
        for q in ("p05", "p95"):
            if f"{name}_{q}" in ds:
                out[q] = ds[f"{name}_{q}"].sel(projection_year=year).round(4).values.tolist()
        return out

    first, last = int(ds.projection_year[0]), int(ds.projection_year[-1])
    table = {}
    for quantity, unit in (("active_layer_thickness", "m"), ("mean_annual_ground_temperature", "degC")):
        table[f"{quantity}_{unit}"] = {
            f"year {y}": dict(
                projected=values(f"projected_{quantity}", y),
                control=values(f"control_{quantity}", y),
                change=values(f"projected_{quantity}_change", y),
            )
            for y in (first, last)
        }
    return dict(
        years=int(spec["years"]),
        warming_per_decade_K=float(spec["warming_per_decade"]),
        start=ds.projection_year.attrs["long_name"].removeprefix("year after "),
        magt_depths_m=ds.magt_depth.values.tolist(),
        **table,
        note="the record's whole years repeated with the warming added to the air temperature (snow as recorded), "
        "from each run's state at the record's end; control: the same without the warming (its change over the "
        "years is the column's drift, e.g. from an initial state that was not spun up); change: with minus "
        "without warming; bands: the Laplace draws' 5-95 % (parameters only)",
    )


def _result_dataset(experiment, runs, posterior, result) -> xr.Dataset:
    measured = experiment.station.ground_temperature
    depths = measured.depth.values
    ds = xr.Dataset(
        coords=dict(
            time=("time", experiment.times),
            depth=("depth", depths, dict(units="m", long_name="sensor depth", positive="down")),
        )
    )
    interpolated = {}
    for name, run in runs.items():
        interpolated[name] = np.stack([np.interp(depths, experiment.centres, row) for row in run])
    ds["measured_temperature"] = (("time", "depth"), measured.values, dict(units="degC", long_name="measured"))
    ds["temperature"] = (
        ("time", "depth"),
        interpolated["fitted"],
        dict(units="degC", long_name="modelled ground temperature, calibrated parameters"),
    )
    ds["temperature_start"] = (
        ("time", "depth"),
        interpolated["start"],
        dict(units="degC", long_name="modelled ground temperature, the fit's start values"),
    )
    ds["temperature_reference"] = (
        ("time", "depth"),
        interpolated["reference"],
        dict(units="degC", long_name="modelled ground temperature, the station's own parameters (GIPL2 set-up)"),
    )
    ds["calibration"] = (
        "time",
        np.arange(experiment.times.size) < experiment.n_calibration,
        dict(long_name="day belongs to the calibration period"),
    )
    if posterior is not None:
        ds = report.posterior_variables(ds, posterior, {p.name: p.units for p in experiment.parameters})
    ds = report.loss_variable(ds, result)
    return ds


def _figures(out, experiment, ds, posterior, result, metrics) -> None:
    plt = report.pyplot()
    name = experiment.config.get("experiment", {}).get("name", "permafrost")
    station = experiment.station
    figure, axes = plt.subplots(len(FIGURE_DEPTHS) + 1, 1, figsize=(10, 12), sharex=True)
    axes[0].plot(station.time, station.air_temperature, color="0.5", lw=0.8)
    axes[0].set_ylabel("air T [°C]")
    twin = axes[0].twinx()
    twin.fill_between(station.time, station.snow_depth, color="tab:blue", alpha=0.3)
    twin.set_ylabel("snow depth [m]")
    split = experiment.times[experiment.n_calibration - 1]
    for axis, depth in zip(axes[1:], FIGURE_DEPTHS, strict=True):
        row = ds.sel(depth=depth, method="nearest")
        axis.plot(ds.time, row.measured_temperature, color="k", lw=1, label="measured")
        axis.plot(
            ds.time, row.temperature_reference, color="0.55", lw=0.9, ls="--", label="station parameters (GIPL2 set-up)"
        )
        axis.plot(ds.time, row.temperature, color="tab:red", lw=1, label="calibrated")
        axis.set_ylabel(f"T at {float(row.depth):g} m [°C]")
        axis.grid(alpha=0.3)
    for axis in axes:
        axis.axvline(split, color="tab:green", lw=1)
    axes[0].plot([], [], color="0.5", lw=0.8, label="air temperature")
    axes[0].fill_between([], [], color="tab:blue", alpha=0.3, label="snow depth (right axis)")
    axes[0].legend(loc="lower left", ncol=2)
    axes[1].legend(loc="lower left", ncol=3)
    axes[0].set_title(f"{name}: calibration until {split.date()} (green line), validation after")
    figure.tight_layout()
    figure.savefig(out / "ground_temperature.png", dpi=110)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(6, 6))
    for period, style in (("calibration", "-"), ("validation", "-")):
        for label, source, color in (
            ("calibrated", metrics[period], "tab:red" if period == "validation" else "tab:orange"),
            ("station parameters", metrics["reference"][period], "0.3" if period == "validation" else "0.65"),
        ):
            table = source["ground_temperature"]["by_depth"]
            depths = [float(d) for d in table]
            axis.plot(
                [table[d]["mae"] for d in table],
                depths,
                style,
                marker="o",
                color=color,
                label=f"{label}, {period}: mean {source['ground_temperature']['mean_mae_over_depths']:.2f} K",
            )
    axis.invert_yaxis()
    axis.set_xlabel("daily MAE [K]")
    axis.set_ylabel("depth [m]")
    axis.set_title(f"{name}: error by depth")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "error_by_depth.png", dpi=120)
    plt.close(figure)

    _trumpet_figure(out / "trumpet.png", name, ds)
    _active_layer_figure(out / "active_layer.png", name, ds)
    report.convergence_figure(out / "convergence.png", {"calibration": result}, f"{name}: convergence")
    if posterior is not None:
        report.correlation_figure(out / "posterior.png", posterior, f"{name}: Laplace posterior")


RUNS = (
    ("measured", "measured_temperature", dict(color="k", marker="o", ms=4)),
    ("calibrated", "temperature", dict(color="tab:red")),
    ("station parameters (GIPL2 set-up)", "temperature_reference", dict(color="0.5", ls="--")),
)


def _trumpet_figure(path, name, ds) -> None:
    """Minimum, mean and maximum ground temperature by depth, calibration and validation
    periods side by side (days with a measurement at every depth)."""
    plt = report.pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 6), sharey=True)
    for axis, (period, mask) in zip(
        axes, (("calibration", ds.calibration), ("validation", ~ds.calibration)), strict=True
    ):
        days = ds.isel(time=np.flatnonzero(mask.values & ds.measured_temperature.notnull().all("depth").values))
        for label, variable, style in RUNS:
            t = days[variable]
            for statistic, alpha in (("min", 0.9), ("mean", 0.9), ("max", 0.9)):
                axis.plot(
                    getattr(t, statistic)("time"),
                    ds.depth,
                    alpha=alpha,
                    lw=1.8 if statistic == "mean" else 1.0,
                    label=label if statistic == "mean" else None,
                    **style,
                )
        axis.axvline(0.0, color="tab:blue", lw=0.8)
        first, last = days.time.values[[0, -1]]
        axis.set_title(f"{period}: {str(first)[:10]} to {str(last)[:10]}")
        axis.set_xlabel("ground temperature: min, mean (thick), max [°C]")
        axis.grid(alpha=0.3)
    axes[0].invert_yaxis()
    axes[0].set_ylabel("depth [m]")
    axes[0].legend(loc="lower left", fontsize=8)
    figure.suptitle(f"{name}: trumpet curves")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def thaw_from_envelope(depth, maximum) -> float:
    """Thaw depth [m] where the maximum-temperature envelope crosses 0 degC, by linear
    interpolation between sensors (0 when the top sensor never thaws; NaN when the
    deepest one thaws too)."""
    depth, maximum = np.asarray(depth, float), np.asarray(maximum, float)
    keep = np.isfinite(maximum)
    depth, maximum = depth[keep], maximum[keep]
    if maximum.size == 0:
        return float("nan")
    if maximum[0] <= 0:
        return 0.0
    frozen = np.flatnonzero(maximum <= 0)
    if frozen.size == 0:
        return float("nan")
    i = frozen[0]
    return float(np.interp(0.0, [maximum[i], maximum[i - 1]], [depth[i], depth[i - 1]]))


def _active_layer_figure(path, name, ds) -> None:
    """Thaw depth of each calendar year from the maximum-temperature envelope, measured
    and modelled alike (a year cut short by the record is labelled with its last day)."""
    plt = report.pyplot()
    years = np.unique(ds.time.dt.year.values)
    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    width = 0.8 / len(RUNS)
    for k, (label, variable, style) in enumerate(RUNS):
        values = []
        for year in years:
            t = ds[variable].sel(time=str(year))
            values.append(thaw_from_envelope(ds.depth, t.max("time")))
        axis.bar(np.arange(years.size) + (k - 1) * width, values, width, color=style["color"], label=label)
    labels = []
    for year in years:
        t = ds.time.sel(time=str(year)).values
        first, last = str(t[0])[5:10], str(t[-1])[5:10]
        labels.append(f"{year}" if (first, last) == ("01-01", "12-31") else f"{year}\n({first} to {last})")
    axis.set_xticks(np.arange(years.size), labels)
    axis.set_ylabel("thaw depth of the year [m]")
    axis.invert_yaxis()
    axis.set_title(f"{name}: active-layer thickness (0 °C of the max envelope)")
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _projection_figure(out, experiment, ds) -> None:
    """projection.png: active layer and MAGT by projection year with and without the
    warming, and the draws' band of the projection."""
    plt = report.pyplot()
    name = experiment.config.get("experiment", {}).get("name", "permafrost")
    years = ds.projection_year.values
    figure, axes = plt.subplots(2, 1, figsize=(9, 7.5), sharex=True)
    alt = "projected_active_layer_thickness"
    axes[0].plot(years, ds[alt], color="tab:red", label="with the warming, calibrated parameters")
    if f"{alt}_p05" in ds:
        axes[0].fill_between(
            years, ds[f"{alt}_p05"], ds[f"{alt}_p95"], color="tab:red", alpha=0.25, label="5-95 % of the Laplace draws"
        )
    axes[0].plot(years, ds.control_active_layer_thickness, color="0.3", ls="--", label="without the warming (control)")
    axes[0].set_ylabel("active-layer thickness [m]")
    axes[0].invert_yaxis()
    axes[0].legend(loc="lower left", fontsize=8)
    magt = "projected_mean_annual_ground_temperature"
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.85, ds.sizes["magt_depth"]))
    for k, depth in enumerate(ds.magt_depth.values):
        axes[1].plot(years, ds[magt].isel(magt_depth=k), color=colors[k], label=f"{depth:g} m")
        axes[1].plot(years, ds.control_mean_annual_ground_temperature.isel(magt_depth=k), color=colors[k], ls="--")
        if f"{magt}_p05" in ds:
            lower, upper = (ds[f"{magt}_{q}"].isel(magt_depth=k) for q in ("p05", "p95"))
            axes[1].fill_between(years, lower, upper, color=colors[k], alpha=0.15)
    axes[1].set_ylabel("MAGT [°C] (dashed: control)")
    axes[1].set_xlabel(ds.projection_year.attrs["long_name"])
    axes[1].legend(loc="upper left", title="depth", fontsize=8)
    warming = float(ds.projected_warming[-1])
    axes[0].set_title(f"{name}: the record's climate repeated, +{warming:.2f} K in the last year")
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "projection.png", dpi=110)
    plt.close(figure)
