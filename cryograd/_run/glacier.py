"""`cryograd run` for one glacier: monthly temperature index fitted to WGMS glaciological
balances and a geodetic (period-mean) rate, with leave-years-out validation.

Config sections: [experiment], [data], [model], [parameters.NAME], [observations],
[calibration], [validation], [fit], [uncertainty] (see docs/experiments/glacier_hintereisferner.md).
"""

from pathlib import Path
from typing import Annotated

import jax
import numpy as np
import pydantic
import xarray as xr

from .. import assimilation as A, data as cgdata, physics as P
from . import pipeline, report, typed
from .config import (
    check_files,
    data_path,
    fit_settings,
    grid_point,
    keyed,
    open_climate_noting,
    parameter,
)
from .typed import Config, Field, Section

Experiment = typed.experiment("glacier", seed="seed of the Laplace and NUTS draws")


class Data(Section):
    climate: str | list[str] = Field(description="a path or sample:NAME (or a list of paths)")
    flowline: str | None = Field(None, description="OGGM elevation bands; or give dem and outline")
    dem: str | None = Field(None, description="a GeoTIFF DEM")
    outline: str | None = Field(None, description="the glacier's outline")
    wgms: str = Field(description="a path or sample:NAME")
    wgms_profile: str | None = Field(None, description="a WGMS altitudinal balance table")
    wgms_glacier: int | None = Field(None, description="the WGMS id where the file holds several glaciers")
    latitude: float | None = Field(None, description="[degrees] the grid point of a gridded climate file")
    longitude: float | None = Field(None, description="[degrees] the grid point of a gridded climate file")
    bin_size: float = Field(50.0, gt=0, description="[m] band height when bands come from a DEM")

    @pydantic.model_validator(mode="after")
    def _bands(self):
        if self.flowline is None and (self.dem is None or self.outline is None):
            raise ValueError("data: give either flowline, or dem and outline")
        return self


class Model(typed.TemperatureIndexModel):
    year_start_month: int = Field(10, ge=1, le=12, description="first month of the mass-balance year")


class Sigma(Section):
    sigma: float = Field(200.0, gt=0, description="[kg m-2] error of each balance")


class Geodetic(Section):
    value: float = Field(description="[kg m-2 yr-1] a period-mean specific balance")
    sigma: float = Field(gt=0, description="[kg m-2 yr-1] its error")
    start: int | None = Field(None, description="first mass-balance year of the period (default the calibration's)")
    end: int | None = Field(None, description="last mass-balance year of the period (default the calibration's)")
    source: str | None = Field(None, description="where the value comes from (copied to the summary)")


class Observations(Section):
    wgms_annual: Sigma | None = Field(None, description="the WGMS annual balances")
    wgms_winter: Sigma | None = Field(None, description="the WGMS winter balances")
    geodetic: Geodetic | None = Field(None, description="a geodetic period-mean balance")


class Validation(Section):
    scheme: Annotated[str, typed.one_of(("leave_years_out", "none"))] = Field(
        "leave_years_out", description="`leave_years_out` (interleaved folds) or `none`"
    )
    folds: int = Field(5, ge=2, description="number of folds")


class GlacierConfig(Config):
    """A `glacier` experiment (one glacier)."""

    experiment: Experiment
    data: Data
    model: Model = Model()
    parameters: Annotated[dict[str, typed.ParameterTable], pydantic.AfterValidator(typed.model_parameters)] = Field(
        description="[parameters.NAME] tables; path (default NAME): a MonthlyTemperatureIndex parameter"
    )
    observations: Observations = Observations()
    calibration: typed.YearSpan
    validation: Validation = Validation()
    fit: typed.GlacierFit = typed.GlacierFit()
    uncertainty: typed.GlacierUncertainty = typed.GlacierUncertainty()


MODEL = GlacierConfig
"""The kind's typed config (docs/experiments/glacier_hintereisferner.md is tested against it)."""
FILES = ("climate", "flowline", "dem", "outline", "wgms", "wgms_profile")


def _data_problems(config: dict) -> list[str]:
    """Problems of the data the config names: missing files, a WGMS profile without a
    calibration year."""
    problems = check_files(config, FILES)
    data = config.get("data", {})
    if isinstance(data.get("wgms_profile"), str) and not any(p.startswith("data.wgms_profile") for p in problems):
        try:
            profile_years = _open_profile(data["wgms_profile"]).year.values
        except (OSError, ValueError) as error:
            problems.append(str(error))
        else:
            span = config.get("calibration", {})
            if all(isinstance(span.get(k), int) for k in ("start", "end")) and not np.any(
                (profile_years >= span["start"]) & (profile_years <= span["end"])
            ):
                problems.append(
                    f"data.wgms_profile: no year between calibration.start {span['start']} and end {span['end']} "
                    f"(the file has {profile_years.min()}-{profile_years.max()})"
                )
    return problems


def validate(config: dict) -> list[str]:
    """Every problem of a glacier config (keys, types, files, parameters), without running."""
    return typed.problems(GlacierConfig, config)[1] + _data_problems(config)


def resolve(config: dict) -> dict:
    """The config with every default filled in (refused with every problem if it has any)."""
    return typed.resolve(GlacierConfig, config, _data_problems(config))


def _glacier(config) -> P.Hypsometry:
    data = config["data"]
    if "flowline" in data:
        reference = data["flowline"]
        if reference.startswith("sample:"):
            return cgdata.load_sample(reference.removeprefix("sample:"))
        return keyed("data.flowline", cgdata.open_flowline, data_path(reference))
    import geopandas as gpd

    dem = cgdata.open_dem(data_path(data["dem"]))
    outline = gpd.read_file(data_path(data["outline"]))
    return cgdata.hypsometry(dem, outline, bin_size=data.get("bin_size", 50.0))


def _wgms(config):
    reference = config["data"]["wgms"]
    if reference.startswith("sample:"):
        return cgdata.load_sample(reference.removeprefix("sample:"))
    return cgdata.open_wgms(reference)


class GlacierExperiment(pipeline.Experiment):
    """The pieces of a glacier config: model, inputs, observations for a set of years."""

    def setup(self, progress):
        return self.problem(self.years)

    def evaluate(self, problem, result, posterior, samples, out, progress):
        return _evaluate(self, problem, result, posterior, samples, progress)

    def __init__(self, config: dict):
        super().__init__(config)
        model_keys = {k: v for k, v in config.get("model", {}).items()}
        model_keys.setdefault("year_start_month", 10)
        self.model = P.MonthlyTemperatureIndex(**model_keys)
        calibration = config["calibration"]
        self.start, self.end = int(calibration["start"]), int(calibration["end"])
        climate = open_climate_noting(config["data"]["climate"], self.notes, **grid_point(config["data"]))
        self.glacier = _glacier(config)
        self.wgms = _wgms(config)
        arrays, years = self.model.climate_arrays(climate)
        keep = (years >= self.start) & (years <= self.end)
        if not keep.any() or years[keep][0] != self.start or years[keep][-1] != self.end:
            raise ValueError(
                f"calibration {self.start}-{self.end}: the climate covers mass-balance years "
                f"{years[0]}-{years[-1]} (year_start_month {self.model.year_start_month})"
            )
        first, last = np.flatnonzero(keep)[[0, -1]]
        months = slice(12 * first, 12 * (last + 1))
        self.inputs = dict(
            glacier=self.glacier,
            climate={k: (v[months] if np.ndim(v) == 1 else v) for k, v in arrays.items()},
        )
        self.years = years[keep]
        self.parameters = [parameter(name, spec) for name, spec in config["parameters"].items()]

    @staticmethod
    def forward(model, inputs):
        return model.run(inputs["glacier"], inputs["climate"])

    def observations(self, years) -> list:
        """The observation operators restricted to `years` (the geodetic rate is a period
        value and stays)."""
        spec = self.config.get("observations", {})
        out = []
        for kind in ("annual", "winter"):
            key = f"wgms_{kind}"
            if key not in spec:
                continue
            glacier = self.config["data"].get("wgms_glacier")
            series = self.wgms[f"{kind}_balance"]
            if "glacier" in series.dims:
                series = series.sel(glacier=glacier) if glacier is not None else series.isel(glacier=0)
            observed = series.dropna("year").year.values
            chosen = np.intersect1d(observed, years)
            if chosen.size == 0:
                self.note(f"{key}: no observed {kind} balance in the years used ({years[0]}-{years[-1]}); not used")
                continue
            out.append(
                A.glaciological_balances(
                    self.wgms,
                    self.years,
                    kind=kind,
                    years=chosen,
                    sigma=spec[key].get("sigma", 200.0),
                    glacier=glacier,
                    name=key,
                )
            )
        if "geodetic" in spec:
            g = spec["geodetic"]
            out.append(
                A.geodetic_balance(
                    g["value"],
                    g["sigma"],
                    self.years,
                    g.get("start", self.start),
                    g.get("end", self.end),
                    name="geodetic",
                )
            )
        if not out:
            raise ValueError("observations: none of the configured observations has data in the calibration years")
        return out

    def problem(self, years) -> A.Problem:
        return A.Problem(self.model, self.forward, self.parameters, self.observations(years), self.inputs)


def run(config: dict, out: Path, progress: bool = True) -> dict:
    """Fit, validate, and write summary.json, result.nc and figures to `out` (`pipeline.run`)."""
    return pipeline.run(GlacierExperiment, resolve(config), out, progress)


def _evaluate(experiment, problem, result, posterior, samples, progress) -> pipeline.Outcome:
    """Calibration metrics, leave-years-out validation (each held-out year predicted by a
    fit without it) and the Laplace band of the annual balance."""
    config, years = experiment.config, experiment.years
    method, fit_config = fit_settings(config)
    uncertainty = config.get("uncertainty", {})
    seed = int(config["experiment"].get("seed", 0))
    start_outputs = jax.jit(problem.outputs)(problem.u0)
    outputs = jax.jit(problem.outputs)(result.u)
    calibration_metrics = {o.name: report.metrics(o.predict(outputs, None), o.values) for o in problem.observations}
    start_metrics = {o.name: report.metrics(o.predict(start_outputs, None), o.values) for o in problem.observations}

    # Leave-years-out: interleaved folds; each held-out year is predicted by a fit without it.
    validation = config.get("validation", {})
    held_out = {}
    fold_histories = {}
    if validation.get("scheme", "leave_years_out") == "leave_years_out":
        folds = int(validation.get("folds", 5))
        from .._progress import progress_bar

        bar = progress_bar(folds, "leave-years-out folds", disable=not progress)
        for k in range(folds):
            test = years[np.arange(years.size) % folds == k]
            train = np.setdiff1d(years, test)
            fold_problem = experiment.problem(train)
            fold = A.fit(fold_problem, method, progress=False, **fit_config)
            fold_histories[f"fold {k + 1}"] = fold
            fold_outputs = jax.jit(fold_problem.outputs)(fold.u)
            for name, value in (("wgms_annual", "specific_mass_balance"), ("wgms_winter", "winter_balance")):
                if name in {o.name for o in problem.observations}:
                    series = held_out.setdefault(name, np.full(years.size, np.nan))
                    index = np.flatnonzero(np.isin(years, test))
                    series[index] = np.asarray(fold_outputs[value])[index]
            bar.update(1)
        bar.close()
    validation_metrics = {}
    for o in problem.observations:
        if o.name in held_out:
            observed_years = np.array([int(x) for x in o.labels])
            predicted = held_out[o.name][np.searchsorted(years, observed_years)]
            validation_metrics[o.name] = report.metrics(predicted, o.values)

    # Parameter uncertainty propagated to the annual balance (Laplace, Gaussian in u).
    draws = int(uncertainty.get("band_draws", 200))
    u_draws = posterior.draws_u(draws, seed + 1)
    band = np.asarray(jax.jit(jax.vmap(lambda u: problem.outputs(u)["specific_mass_balance"]))(u_draws))

    dataset = _result_dataset(experiment, problem, outputs, start_outputs, held_out, band, posterior, result)

    def figures(out):
        _figures(out, experiment, dataset, posterior, result, fold_histories, samples)

    metrics = dict(calibration=calibration_metrics, validation=validation_metrics, start=start_metrics)
    summary = dict(
        validation=dict(
            scheme=validation.get("scheme", "leave_years_out"),
            folds=validation.get("folds", 5),
            years=[int(years[0]), int(years[-1])],
            note="each year's validation value comes from the fit of the fold that left it out; the geodetic "
            "period rate stays in every fold",
        ),
    )
    return pipeline.Outcome(metrics, dataset, figures, summary)


def _result_dataset(experiment, problem, outputs, start_outputs, held_out, band, posterior, result):
    years = experiment.years
    ds = xr.Dataset(coords=dict(year=("year", years), parameter=("parameter", posterior.labels)))
    bands = experiment.glacier
    report.put(
        ds,
        "band",
        elevation=(np.asarray(bands.elevation), "m", "band elevation"),
        area=(np.asarray(bands.area), "m2", "band area"),
    )
    observed = experiment.wgms["annual_balance"]
    glacier = experiment.config["data"].get("wgms_glacier")
    if "glacier" in observed.dims:
        observed = observed.sel(glacier=glacier) if glacier is not None else observed.isel(glacier=0)
    drawn = "over Laplace parameter draws"
    report.put(
        ds,
        "year",
        observed_annual_balance=(
            observed.reindex(year=years).values,
            "kg m-2",
            "WGMS annual balance (hydrological year)",
        ),
        specific_mass_balance=(
            np.asarray(outputs["specific_mass_balance"]),
            "kg m-2",
            "modelled annual balance, calibrated on all years",
        ),
        specific_mass_balance_start=(
            np.asarray(start_outputs["specific_mass_balance"]),
            "kg m-2",
            "modelled annual balance with the start parameters",
        ),
        specific_mass_balance_p05=(np.percentile(band, 5, axis=0), "kg m-2", f"5th percentile {drawn}"),
        specific_mass_balance_p95=(np.percentile(band, 95, axis=0), "kg m-2", f"95th percentile {drawn}"),
    )
    if "wgms_annual" in held_out:
        left_out = "annual balance predicted by the fold that left the year out"
        report.put(ds, "year", specific_mass_balance_validation=(held_out["wgms_annual"], "kg m-2", left_out))
    for name in ("winter_balance", "summer_balance"):
        if name in outputs:
            report.put(
                ds, "year", **{name: (np.asarray(outputs[name]), "kg m-2", f"modelled {name.replace('_', ' ')}")}
            )
    balance = (np.asarray(outputs["mass_balance"]), "kg m-2", "modelled annual balance of the band")
    report.put(ds, ("year", "band"), mass_balance=balance)
    reference = experiment.config["data"].get("wgms_profile")
    if reference is not None:
        ds = _with_observed_profile(ds, reference)
    ds = report.posterior_variables(ds, posterior, {p.name: p.units for p in experiment.parameters}, correlation=True)
    ds = report.loss_variable(ds, result)
    return ds


def _open_profile(reference):
    """The WGMS altitudinal balance table at `reference`: (year, elevation) [kg m-2]."""
    try:
        profile = cgdata.open_wgms(data_path(reference))
    except ValueError as error:
        raise ValueError(f"data.wgms_profile: {error}") from None
    if "mass_balance_profile" not in profile or set(profile.mass_balance_profile.dims) != {"year", "elevation"}:
        raise ValueError(
            f"data.wgms_profile: {reference} is not a WGMS profile table (a year column, then one column per "
            "band elevation [m])"
        )
    return profile


def _with_observed_profile(ds, reference):
    """`ds` with the WGMS altitudinal balance (a profile table, `cg.data.open_wgms`) averaged
    over the years it shares with the model, at the elevations measured in every one of
    them, and the modelled band balances averaged over the same years."""
    profile = _open_profile(reference)
    years = np.intersect1d(profile.year.values, ds.year.values)
    if years.size == 0:
        raise ValueError(f"data.wgms_profile: {reference} has no year inside the modelled years")
    table = profile.mass_balance_profile.sel(year=years)
    complete = table.notnull().all("year").values
    span = f"{years[0]}-{years[-1]}"
    ds = ds.assign_coords(profile_elevation=("profile_elevation", profile.elevation.values[complete], {"units": "m"}))
    ds["observed_profile"] = (
        "profile_elevation",
        table.mean("year").values[complete],
        dict(
            units="kg m-2",
            long_name=f"WGMS altitudinal annual balance, mean {span} ({years.size} years)",
            years=span,
            n_years=years.size,
        ),
    )
    ds["modelled_profile"] = (
        "band",
        ds.mass_balance.sel(year=years).mean("year").values,
        dict(units="kg m-2", long_name=f"modelled band balance, mean {span}", years=span),
    )
    return ds


def _figures(out, experiment, ds, posterior, result, fold_histories, samples):
    plt = report.pyplot()
    name = experiment.config.get("experiment", {}).get("name", "glacier")
    years = ds.year.values
    report.annual_balance_figure(
        out / "mass_balance_by_year.png",
        ds,
        f"{name}: annual mass balance",
        "calibrated on all years",
        held_out=ds.get("specific_mass_balance_validation"),
    )

    figure, axis = plt.subplots(figsize=(6, 5.5))
    area = ds.area.values > 0
    if "observed_profile" in ds:
        span = ds.modelled_profile.attrs["years"]
        axis.plot(
            ds.modelled_profile.values[area],
            ds.elevation.values[area],
            color="tab:red",
            label=f"calibrated, mean {span}",
        )
        axis.plot(
            ds.observed_profile,
            ds.profile_elevation,
            "k.-",
            lw=0.8,
            label=f"WGMS profile, mean {span} ({ds.observed_profile.attrs['n_years']} years)",
        )
    else:
        axis.plot(
            ds.mass_balance.mean("year").values[area],
            ds.elevation.values[area],
            color="tab:red",
            label=f"calibrated, mean {years[0]}-{years[-1]}",
        )
    axis.axvline(0, color="0.7", lw=0.6)
    axis.set_xlabel("annual mass balance [kg m-2]")
    axis.set_ylabel("band elevation [m]")
    axis.set_title(f"{name}: mass balance by elevation")
    axis.grid(alpha=0.3)
    axis.legend()
    report.save(figure, out / "mass_balance_by_elevation.png")

    report.convergence_figure(
        out / "convergence.png",
        {"all years": result, **fold_histories},
        f"{name}: convergence",
    )
    units = {p.name: p.units for p in experiment.parameters}
    report.posterior_figure(
        out / "posterior.png",
        posterior,
        units,
        f"{name}: posterior",
        samples=None if samples is None else samples.samples,
    )
