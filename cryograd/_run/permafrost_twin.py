"""`cryograd run` for a permafrost twin experiment: synthetic sites with known parameters,
synthetic observations of the kinds a real study has, and a fit that must find the truth.

The truth: soil columns at several sites (one shared soil and surface, each site its own
synthetic climate, `cg.data.synthetic_permafrost_forcing`) run with the parameters'
`truth` values. The observations, over the calibration period:

- clear-sky land-surface temperature (a Markov cloud mask, `cg.data.synthetic_clear_sky`)
  = the modelled surface temperature + a cold bias (the truth of the LST offset
  parameter) + Gaussian noise;
- one borehole per site: daily temperatures at fixed depths + Gaussian noise;
- active-layer thickness per site and year + Gaussian noise.

The fit starts from the parameters' `init` values; recovered means within 2 Laplace
standard deviations and 5 % of the truth. Validation: the years after the calibration,
against the noise-free truth. Config sections: [experiment], [synthetic], [model],
[parameters.NAME] (with `truth`), [observations.lst|boreholes|alt], [calibration],
[validation], [fit], [uncertainty] (see docs/experiments/permafrost_twin_lst.md).
"""

from pathlib import Path
from typing import Annotated

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pydantic
import xarray as xr

from .. import assimilation as A, data as cgdata, physics as P
from . import pipeline, report, typed
from .config import (
    in_model_units,
    parameter,
    snow_column,
)
from .typed import Config, Field, Section

DAY = 86400.0
BOREHOLE_SIGMA = 0.1  # [K], default borehole noise and error
SITE_KEYS = ("mean_air_temperature", "amplitude", "anomaly_std", "precipitation", "melt_factor")

PerSite = float | list[float]


Experiment = typed.experiment(
    "permafrost_twin", seed="seed of every random draw (weather, clouds, noise, Laplace draws)"
)


class Synthetic(Section):
    start: typed.Date = Field(description="first day of the synthetic record")
    years: int = Field(ge=1, description="its length")
    sites: list[str] = Field(min_length=1, description='site names, e.g. ["warm", "cold"]')
    mean_air_temperature: PerSite = Field(-8.0, description="[degC] number or one per site")
    amplitude: PerSite = Field(18.0, description="[K] number or one per site: half the annual range")
    anomaly_std: PerSite = Field(3.5, description="[K] number or one per site: day-to-day weather (AR(1))")
    precipitation: PerSite = Field(0.25, description="[m water yr-1] number or one per site")
    melt_factor: PerSite = Field(0.004, description="[m water K-1 day-1] number or one per site")
    initial_surface_offset: float = Field(3.0, description="[K] the initial profile: mean air temperature + this")
    initial_gradient: float = Field(0.02, description="[K m-1] ... warming by this downwards")

    @pydantic.model_validator(mode="after")
    def _one_per_site(self):
        wrong = [
            f"synthetic.{key}: {len(value)} values for {len(self.sites)} sites"
            for key in SITE_KEYS
            if isinstance(value := getattr(self, key), list) and len(value) != len(self.sites)
        ]
        if wrong:
            raise ValueError("\n".join(wrong))
        return self


class TwinParameter(typed.ParameterTable):
    truth: float = Field(description="the value the synthetic data are made with")

    @pydantic.field_validator("truth")
    @classmethod
    def _truth_in_bounds(cls, value: float, info: pydantic.ValidationInfo) -> float:
        bounds = info.data.get("bounds")
        if bounds is not None and not bounds[0] < value < bounds[1]:
            raise ValueError(f"{value} lies outside the bounds {bounds}")
        return value


class Lst(Section):
    sigma: float = Field(2.0, gt=0, description="[K] noise and assumed error of each LST retrieval")
    offset: str | None = Field(None, description='the parameter (path = "") that is the LST\'s bias')
    clear_fraction: float = Field(0.35, gt=0, le=1, description="[1] share of clear-sky days")
    persistence: float = Field(0.5, ge=0, lt=1, description="[1] lag-1 correlation of the cloud mask")


class Boreholes(Section):
    depths: list[float] = Field(min_length=1, description="the sensor depths [m]")
    sigma: float = Field(BOREHOLE_SIGMA, gt=0, description="[K] noise and error of each daily value")


class Alt(Section):
    sigma: float = Field(0.05, gt=0, description="[m] noise and error of each yearly active-layer thickness")


class Observations(Section):
    lst: Lst | None = Field(None, description="clear-sky land-surface temperature")
    boreholes: Boreholes | None = Field(None, description="daily temperatures at fixed depths")
    alt: Alt | None = Field(None, description="active-layer thickness per year")

    @pydantic.model_validator(mode="after")
    def _any(self):
        if self.lst is None and self.boreholes is None and self.alt is None:
            raise ValueError("observations: give at least one of lst, boreholes, alt")
        return self


class Calibration(Section):
    end: typed.Date = Field(description="the last day of the calibration period")


class Validation(Section):
    start: typed.Date | None = Field(None, description="first day (default: the next day)")


class Uncertainty(Section):
    hessian: str = Field("gauss_newton", description="only 'gauss_newton'")

    @pydantic.field_validator("hessian")
    @classmethod
    def _gauss_newton(cls, value: str) -> str:
        if value != "gauss_newton":
            raise ValueError("only 'gauss_newton' (the column is differentiated in forward mode)")
        return value


class TwinConfig(Config):
    """A `permafrost_twin` experiment."""

    experiment: Experiment
    synthetic: Synthetic
    model: typed.SnowColumn
    parameters: Annotated[
        dict[str, TwinParameter], pydantic.AfterValidator(lambda t: typed.parameter_tables(t, "n_thawing"))
    ] = Field(description="[parameters.NAME] tables, each with its truth")
    observations: Observations
    calibration: Calibration
    validation: Validation = Validation()
    fit: typed.Fit = typed.Fit()
    uncertainty: Uncertainty = Uncertainty()

    @pydantic.model_validator(mode="after")
    def _consistent(self):
        problems = []
        start, end = pd.Timestamp(self.synthetic.start), pd.Timestamp(self.calibration.end)
        last = start + pd.DateOffset(years=self.synthetic.years) - pd.Timedelta(days=1)
        if end <= start:
            problems.append("calibration.end: before the synthetic record starts")
        elif end >= last:
            problems.append(f"calibration.end: leaves no validation day (the record ends {last.date()})")
        if self.validation.start is not None and pd.Timestamp(self.validation.start) <= end:
            problems.append("validation.start: inside the calibration period")
        offset = self.observations.lst.offset if self.observations.lst else None
        if offset is not None and (offset not in self.parameters or self.parameters[offset].path != ""):
            problems.append(
                f'observations.lst.offset: {offset!r} must name a parameter with path = "" (read by the LST operator)'
            )
        if self.observations.boreholes is not None:
            depths, bottom = self.observations.boreholes.depths, self.model.depth
            if any(d < 0 or d >= bottom for d in depths):
                problems.append(f"observations.boreholes.depths: give depths [m] within the column (0 to {bottom} m)")
        if problems:
            raise ValueError("\n".join(problems))
        return self


MODEL = TwinConfig
"""The kind's typed config (docs/experiments/permafrost_twin_lst.md is tested against it)."""


def validate(config: dict) -> list[str]:
    """Every problem of a twin config (keys, types, parameters, truths, dates), without running."""
    return typed.problems(TwinConfig, config)[1]


def resolve(config: dict) -> dict:
    """The config with every default filled in (refused with every problem if it has any)."""
    return typed.resolve(TwinConfig, config)


class TwinExperiment(pipeline.Experiment):
    """The synthetic world of a twin config: sites, forcing, truth, observations."""

    fit_options = dict(gradient="forward")  # noqa: RUF012

    def uncertainty(self, problem, result, progress):
        report.stage(progress, "uncertainty: Laplace approximation (Gauss-Newton Hessian)")
        return A.laplace(problem, result.u, hessian="gauss_newton"), None

    def evaluate(self, problem, result, posterior, samples, out, progress):
        return _evaluate(self, problem, result, posterior, out, progress)

    def __init__(self, config: dict):
        super().__init__(config)
        seed = int(config.get("experiment", {}).get("seed", 0))
        k_forcing, k_clouds, k_lst, k_boreholes, k_alt = jax.random.split(jax.random.key(seed), 5)
        synthetic = config["synthetic"]
        self.sites = [str(s) for s in synthetic["sites"]]
        n = len(self.sites)
        climate = {k: synthetic[k] for k in SITE_KEYS if k in synthetic}
        climate = {k: v if isinstance(v, list) else [v] * n for k, v in climate.items()}
        self.forcing = cgdata.synthetic_permafrost_forcing(
            k_forcing,
            synthetic["start"],
            synthetic["years"],
            snow_density=config.get("model", {}).get("snow_density", 250.0),
            **climate,
        ).assign_coords(site=self.sites)
        self.times = pd.DatetimeIndex(self.forcing.time.values)
        end = pd.Timestamp(config["calibration"]["end"])
        self.n_calibration = int(np.searchsorted(self.times, end, side="right"))
        start = pd.Timestamp(config.get("validation", {}).get("start", end + pd.Timedelta(days=1)))
        self.validation_start = start

        self.column = snow_column(config["model"])
        grid = self.column.grid
        self.centres, self.edges = np.asarray(grid.centres), np.asarray(grid.edges)
        self.parameters = [parameter(name, spec) for name, spec in config["parameters"].items()]
        self.truth = {name: float(in_model_units(name, spec)["truth"]) for name, spec in config["parameters"].items()}
        lst = config.get("observations", {}).get("lst", {})
        self.offset = lst.get("offset")
        truth_paths = {p.path: self.truth[p.name] for p in self.parameters if p.path is not None}
        self.truth_column = A.with_leaves(self.column, truth_paths)

        mean_air = np.asarray(self.forcing.air_temperature.mean("time"))
        surface = mean_air + synthetic.get("initial_surface_offset", 3.0)
        gradient = synthetic.get("initial_gradient", 0.02)
        self.initial = jnp.asarray(surface[:, None] + gradient * self.centres[None, :])
        variables = self.column.surface.forcing_variables
        self.arrays = {k: jnp.asarray(self.forcing[k].transpose("site", "time").values) for k in variables}

        truth = self.full_run(self.truth_column)
        self.truth_run = truth
        self._observe(truth, k_clouds, k_lst, k_boreholes, k_alt)

    # --- runs ---------------------------------------------------------------------------------

    def forward(self, column, inputs):
        return column.run(inputs["forcing"], inputs["initial"], DAY, adjoint=diffrax.ForwardMode())

    def full_run(self, column) -> dict:
        """temperature, liquid fraction (site, time, cell), surface temperature and thaw depth
        (site, time) over the whole synthetic record."""

        names = ("temperature", "liquid_water_fraction", "surface_temperature", "thaw_depth")
        arrays = _full_run(column, self.arrays, self.initial)
        return {name: np.asarray(a) for name, a in zip(names, arrays, strict=True)}

    # --- synthetic observations -------------------------------------------------------------

    def _observe(self, truth, k_clouds, k_lst, k_boreholes, k_alt):
        spec = self.config["observations"]
        n, nt = len(self.sites), self.times.size
        self.observed = {}
        if "lst" in spec:
            lst = spec["lst"]
            clear = cgdata.synthetic_clear_sky(
                k_clouds,
                self.times,
                clear_fraction=lst.get("clear_fraction", 0.35),
                persistence=lst.get("persistence", 0.5),
                sites=n,
            ).values
            bias = self.truth[self.offset] if self.offset else 0.0
            noise = np.asarray(jax.random.normal(k_lst, (n, nt))) * lst.get("sigma", 2.0)
            self.observed["lst"] = np.where(clear, truth["surface_temperature"] + bias + noise, np.nan)
        if "boreholes" in spec:
            depths = np.asarray(spec["boreholes"]["depths"], dtype=float)
            self.depths = depths
            sigma = spec["boreholes"].get("sigma", BOREHOLE_SIGMA)
            noise = np.asarray(jax.random.normal(k_boreholes, (n, nt, depths.size))) * sigma
            self.observed["boreholes"] = self.at_depths(truth["temperature"]) + noise
        self.years = np.unique(self.times.year)
        if "alt" in spec:
            noise = np.asarray(jax.random.normal(k_alt, (n, self.years.size))) * spec["alt"].get("sigma", 0.05)
            self.observed["alt"] = self.annual_alt(truth["thaw_depth"]) + noise

    def at_depths(self, temperature) -> np.ndarray:
        """(site, time, cell) -> (site, time, borehole depth), linear between centres."""
        return P.interpolate_depths(temperature, self.centres, self.depths, hold_below=True)

    def annual_alt(self, thaw_depth) -> np.ndarray:
        """(site, time) -> (site, year): the yearly maximum thaw depth [m]."""
        return np.stack([thaw_depth[:, self.times.year == y].max(axis=1) for y in self.years], axis=1)

    def operators(self, times, *, start=None, truth=False) -> dict:
        """Observation operators by kind (a list with one per site) on the model `times`;
        `truth=True` builds them on the noise-free truth (for validation)."""
        spec = self.config["observations"]
        out = {}
        end = str(times[-1].date())
        if "lst" in spec:
            values = self.observed["lst"]
            if truth:  # the same clear-sky days, without noise
                bias = self.truth[self.offset] if self.offset else 0.0
                values = np.where(np.isfinite(values), self.truth_run["surface_temperature"] + bias, np.nan)
            out["lst"] = [
                A.land_surface_temperature(
                    xr.DataArray(values[s], coords=dict(time=self.times), dims="time", attrs=dict(units="degC")),
                    times,
                    sigma=spec["lst"].get("sigma", 2.0),
                    offset=self.offset,
                    member=s,
                    name=f"lst[{site}]",
                    start=start,
                    end=end,
                )
                for s, site in enumerate(self.sites)
            ]
        if "boreholes" in spec:
            values = self.at_depths(self.truth_run["temperature"]) if truth else self.observed["boreholes"]
            out["boreholes"] = [
                A.ground_temperature(
                    xr.DataArray(values[s], coords=dict(time=self.times, depth=self.depths), dims=("time", "depth")),
                    times,
                    self.centres,
                    sigma=spec["boreholes"].get("sigma", BOREHOLE_SIGMA),
                    member=s,
                    name=f"borehole[{site}]",
                    start=start,
                    end=end,
                )
                for s, site in enumerate(self.sites)
            ]
        if "alt" in spec:
            values = self.annual_alt(self.truth_run["thaw_depth"]) if truth else self.observed["alt"]
            first = max(pd.Timestamp(start), times[0]) if start is not None else times[0]
            # the years modelled whole inside the period (a yearly maximum needs the whole thaw season)
            last = times[-1]
            rows = np.array([pd.Timestamp(y, 1, 1) >= first and pd.Timestamp(y, 12, 31) <= last for y in self.years])
            if not rows.any():
                raise ValueError(f"observations.alt: no whole calendar year between {first.date()} and {last.date()}")
            out["alt"] = [
                A.active_layer_thickness(
                    xr.DataArray(values[s, rows], coords=dict(year=self.years[rows]), dims="year"),
                    times,
                    self.edges,
                    sigma=spec["alt"].get("sigma", 0.05),
                    member=s,
                    name=f"alt[{site}]",
                )
                for s, site in enumerate(self.sites)
            ]
        return out

    def problem(self) -> A.Problem:
        times = self.times[: self.n_calibration]
        operators = [o for group in self.operators(times).values() for o in group]
        inputs = dict(forcing={k: v[:, : self.n_calibration] for k, v in self.arrays.items()}, initial=self.initial)
        return A.Problem(
            self.column,
            self.forward,
            self.parameters,
            operators,
            inputs,
            members=len(self.sites),
            member_names=self.sites,
        )


@jax.jit
def _full_run(column, forcing, initial):
    """Every site's run (compiled once for columns of one structure)."""

    def one(forcing, initial):
        out = column.run(forcing, initial, DAY)
        depth = P.thaw_depth(out["temperature"], out["liquid_water_fraction"], column.grid.edges)
        return out["temperature"], out["liquid_water_fraction"], out["surface_temperature"], depth

    return jax.vmap(one)(forcing, initial)


def kind_metrics(operators: dict, outputs: dict, values: dict) -> dict:
    """Metrics of each observation kind, pooled over the sites."""
    out = {}
    for kind, group in operators.items():
        predicted = np.concatenate([np.asarray(o.predict(outputs, values)) for o in group])
        observed = np.concatenate([np.asarray(o.values) for o in group])
        out[kind] = report.metrics(predicted, observed)
    return out


def run(config: dict, out: Path, progress: bool = True) -> dict:
    """Make the synthetic world, fit it, and write summary.json, result.nc and figures to
    `out` (`pipeline.run`)."""
    return pipeline.run(TwinExperiment, resolve(config), out, progress)


def _evaluate(experiment, problem, result, posterior, out, progress) -> pipeline.Outcome:
    """Runs of the fitted and start values, metrics against the noisy observations
    (calibration) and the noise-free truth (validation), and the recovery of the truth."""
    config = experiment.config
    fitted = problem.fitted_model(result.u)
    runs = dict(fitted=experiment.full_run(fitted), start=experiment.full_run(experiment.column))
    values = {"fitted": problem.values(result.u), "start": problem.values(problem.u0)}
    calibration_times = experiment.times[: experiment.n_calibration]
    start = str(experiment.validation_start.date())
    validation_ops = experiment.operators(experiment.times, start=start, truth=True)
    observed_ops = experiment.operators(calibration_times)

    def period_metrics(name):
        run = {k: jnp.asarray(v) for k, v in runs[name].items()}
        calibration_run = {k: v[:, : experiment.n_calibration] for k, v in run.items()}
        return dict(
            calibration=kind_metrics(observed_ops, calibration_run, values[name]),
            validation=kind_metrics(validation_ops, run, values[name]),
        )

    metrics = period_metrics("fitted")
    metrics["start"] = period_metrics("start")
    metrics["note"] = (
        f"calibration: against the noisy synthetic observations; validation: against the noise-free truth from {start}"
    )
    table = report.recovery(posterior, experiment.truth)
    units = {p.name: p.units for p in experiment.parameters}
    parameters, correlation = report.parameter_summary(posterior, units)
    for label, row in table.items():
        parameters[label].update(row)
    summary = dict(
        experiment=config["experiment"]["name"],
        parameters=parameters,
        recovery=report.recovery_summary(table),
        correlation=correlation,
        observations={kind: int(sum(o.values.size for o in group)) for kind, group in observed_ops.items()},
        sites=experiment.sites,
        periods=dict(
            calibration=[str(experiment.times[0].date()), str(calibration_times[-1].date())],
            validation=[start, str(experiment.times[-1].date())],
        ),
    )
    dataset = _result_dataset(experiment, runs, posterior, result)

    def figures(out):
        _figures(out, experiment, runs, posterior, table, result, summary)

    return pipeline.Outcome(metrics, dataset, figures, summary)


def _result_dataset(experiment, runs, posterior, result) -> xr.Dataset:
    ds = xr.Dataset(coords=dict(site=experiment.sites, time=experiment.times))
    for name in ("air_temperature", "snow_depth"):
        ds[name] = experiment.forcing[name].transpose("site", "time")
    surface = dict(units="degC")
    ds["surface_temperature_truth"] = (("site", "time"), experiment.truth_run["surface_temperature"], surface)
    ds["surface_temperature"] = (("site", "time"), runs["fitted"]["surface_temperature"], surface)
    if "lst" in experiment.observed:
        ds["lst_observed"] = (
            ("site", "time"),
            experiment.observed["lst"],
            dict(units="degC", long_name="synthetic clear-sky LST (NaN: cloudy)"),
        )
    if "boreholes" in experiment.observed:
        ds = ds.assign_coords(depth=("depth", experiment.depths, dict(units="m", positive="down")))
        triple = ("site", "time", "depth")
        ds["temperature_observed"] = (triple, experiment.observed["boreholes"], dict(units="degC"))
        ds["temperature_truth"] = (triple, experiment.at_depths(experiment.truth_run["temperature"]), surface)
        ds["temperature"] = (triple, experiment.at_depths(runs["fitted"]["temperature"]), surface)
        ds["temperature_start"] = (triple, experiment.at_depths(runs["start"]["temperature"]), surface)
    ds = ds.assign_coords(year=experiment.years)
    ds["alt_truth"] = (("site", "year"), experiment.annual_alt(experiment.truth_run["thaw_depth"]), dict(units="m"))
    ds["alt"] = (("site", "year"), experiment.annual_alt(runs["fitted"]["thaw_depth"]), dict(units="m"))
    if "alt" in experiment.observed:
        ds["alt_observed"] = (("site", "year"), experiment.observed["alt"], dict(units="m"))
    ds = report.posterior_variables(
        ds,
        posterior,
        {p.name: p.units for p in experiment.parameters},
        truth=[experiment.truth[label] for label in posterior.labels],
    )
    ds["calibration"] = ("time", np.arange(experiment.times.size) < experiment.n_calibration)
    ds = report.loss_variable(ds, result)
    return ds


def _figures(out, experiment, runs, posterior, table, result, summary) -> None:
    plt = report.pyplot()
    name = summary["experiment"]
    truth, fitted, start = experiment.truth_run, runs["fitted"], runs["start"]
    sites = experiment.sites
    depths = [d for d in (0.3, 1.0, 5.0) if "boreholes" in experiment.observed and d in experiment.depths]
    split = experiment.times[experiment.n_calibration - 1]
    figure, axes = plt.subplots(
        1 + len(depths), len(sites), figsize=(5.2 * len(sites), 2.6 * (1 + len(depths)) + 0.6), sharex=True
    )
    axes = np.atleast_2d(axes).reshape(1 + len(depths), len(sites))
    t = experiment.times
    for s, site in enumerate(sites):
        axis = axes[0, s]
        if "lst" in experiment.observed:
            lst = experiment.observed["lst"][s]
            axis.plot(t, lst, ".", ms=2, color="tab:orange", label="clear-sky LST (synthetic)")
        axis.plot(t, truth["surface_temperature"][s], color="k", lw=0.7, label="surface T, truth")
        axis.set_title(f"site {site}")
        axis.set_ylabel("surface / LST [°C]")
        for row, depth in enumerate(depths, start=1):
            axis = axes[row, s]
            cell = [float(depth)]
            for run, style, label in (
                (truth, dict(color="k", lw=1.2), "truth"),
                (start, dict(color="0.6", lw=1, ls=":"), "start values"),
                (fitted, dict(color="tab:red", lw=1, ls="--"), "fitted"),
            ):
                series = P.interpolate_depths(run["temperature"][s], experiment.centres, cell, hold_below=True)[:, 0]
                axis.plot(t, series, label=label, **style)
            axis.set_ylabel(f"T at {depth:g} m [°C]")
        for axis in axes[:, s]:
            axis.axvline(split, color="tab:green", lw=1)
            axis.grid(alpha=0.3)
    import matplotlib.dates as mdates

    axes[-1, 0].xaxis.set_major_locator(mdates.YearLocator())
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    axes[0, 0].legend(loc="lower left", fontsize=8, markerscale=4)
    if depths:
        axes[1, 0].legend(loc="lower left", fontsize=8)
    figure.suptitle(f"{name}: calibration until {split.date()} (green line), validation after")
    report.save(figure, out / "ground_temperature.png", dpi=100)

    figure, axis = plt.subplots(figsize=(8, 0.45 * len(table) + 1.8))
    labels = list(table)
    y = np.arange(len(labels))
    truths = np.array([table[label]["truth"] for label in labels])
    relative = (np.asarray(posterior.mean) - truths) / np.abs(truths)
    bars = 2 * np.asarray(posterior.std) / np.abs(truths)
    colours = ["tab:blue" if table[lb]["recovered"] else "tab:red" for lb in labels]
    axis.axvspan(
        -100 * report.RECOVERY_RELATIVE, 100 * report.RECOVERY_RELATIVE, color="tab:green", alpha=0.12, label="±5 %"
    )
    axis.errorbar(100 * relative, y, xerr=100 * bars, fmt="none", ecolor="0.4", capsize=3, label="±2 Laplace std")
    axis.scatter(100 * relative, y, c=colours, zorder=3, label="fitted (red: not recovered)")
    axis.axvline(0, color="k", lw=0.8)
    axis.set_yticks(y, [f"{lb} (truth {table[lb]['truth']:g})" for lb in labels])
    axis.invert_yaxis()
    axis.set_xlabel("(fitted - truth) / |truth| [%]")
    axis.set_xlim(-100 * 2 * report.RECOVERY_RELATIVE, 100 * 2 * report.RECOVERY_RELATIVE)
    recovered = summary["recovery"]
    axis.set_title(f"{name}: {recovered['recovered']} of {recovered['parameters']} parameters recovered")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    report.save(figure, out / "recovery.png")

    report.convergence_figure(out / "convergence.png", {"calibration": result}, f"{name}: convergence")
    report.correlation_figure(out / "posterior.png", posterior, f"{name}: Laplace posterior")
