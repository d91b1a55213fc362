"""`cryograd run` for a regional glacier twin: many synthetic glaciers, one GRACE-like
regional series and per-glacier geodetic rates, fitted in one batched problem.

The truth: glaciers with synthetic hypsometries (`cg.data.synthetic_glacier_region`)
under one monthly climate (a grid point of a real climate file), run with a regional
melt factor (and any other shared parameter) and one temperature bias per glacier,
drawn from the truth's distribution. The observations over the calibration years:

- a regional cumulative mass series [Gt] at the mass-balance year ends, with Gaussian
  noise and an arbitrary reference (the operator profiles the offset out);
- each glacier's geodetic mass-balance rate over a period, from an elevation-change error
  [m yr-1] with the 850 +- 60 kg m-3 density propagated.

The fit is one jitted, vmapped problem over all glaciers. Validation: each glacier's
annual balances in years outside the calibration (never observed) against the truth.
The same fit without the regional series shows what the series adds. Config sections:
[experiment], [synthetic], [data], [model], [parameters.NAME] (with `truth`: a number, or
{mean, std} for per-glacier values), [observations.grace|geodetic], [calibration],
[validation], [fit], [uncertainty] (see docs/experiments/glacier_region_twin_grace.md).
"""

import hashlib
import json
import time
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pydantic
import xarray as xr

from .. import assimilation as A, data as cgdata, physics as P
from .._chunked import run_chunked
from . import pipeline, report, typed
from .config import (
    check_files,
    fit_settings,
    grid_point,
    in_model_units,
    open_climate_noting,
    parameter,
)
from .typed import Config, Field, Section

HESSIANS = ("exact", "gauss_newton", "members")


Experiment = typed.experiment("glacier_region_twin", seed="seed of every random draw (glaciers, truths, noise)")


class Synthetic(Section):
    """`cg.data.synthetic_glacier_region` arguments (the defaults are its own)."""

    glaciers: int = Field(ge=1, description="the number of glaciers")
    median_area: float = Field(2.0e6, gt=0, description="[m2] median glacier area")
    area_spread: float = Field(0.9, ge=0, description="[1] log-normal spread of the areas")
    median_elevation: float = Field(3080.0, description="[m] median glacier elevation")
    elevation_spread: float = Field(80.0, ge=0, description="[m] spread of the median elevations")
    bin_size: float = Field(50.0, gt=0, description="[m] band height")


class Data(Section):
    climate: str = Field(description="a monthly climate file or sample:NAME")
    latitude: float | None = Field(None, description="[degrees] the grid point of a gridded climate file")
    longitude: float | None = Field(None, description="[degrees] the grid point of a gridded climate file")


class TruthDraw(Section):
    mean: float = Field(description="mean of the per-glacier truths")
    std: float = Field(ge=0, description="their standard deviation")


class TwinParameter(typed.ParameterTable):
    truth: float | TruthDraw = Field(description="a number, or {mean, std} per glacier")

    @pydantic.field_validator("truth")
    @classmethod
    def _truth(cls, value, info: pydantic.ValidationInfo):
        bounds = info.data.get("bounds")
        if isinstance(value, TruthDraw):
            if info.data.get("scope", "shared") == "shared":
                raise ValueError("a drawn truth needs scope = 'glacier'")
        elif bounds is not None and not bounds[0] < value < bounds[1]:
            raise ValueError(f"{value} lies outside the bounds {bounds}")
        return value


class Grace(Section):
    sigma: float = Field(gt=0, description="[Gt] error of each yearly cumulative mass")


class Geodetic(Section):
    dh_sigma: float = Field(0.15, gt=0, description="[m yr-1] error of each glacier's thinning rate")
    start: int | None = Field(None, description="first mass-balance year (default the calibration's)")
    end: int | None = Field(None, description="last mass-balance year (default the calibration's)")


class Observations(Section):
    grace: Grace | None = Field(None, description="a GRACE-like regional series")
    geodetic: Geodetic | None = Field(None, description="per-glacier geodetic rates")

    @pydantic.model_validator(mode="after")
    def _any(self):
        if self.grace is None and self.geodetic is None:
            raise ValueError("observations: give grace and/or geodetic")
        return self


class Uncertainty(Section):
    hessian: Annotated[str, typed.one_of(HESSIANS)] = Field(
        "exact", description="'exact', 'gauss_newton' or 'members' (exact per-glacier blocks)"
    )


class Output(Section):
    chunk_size: int = Field(1000, ge=1, description="glaciers per chunk of the per-glacier output")


class RegionTwinConfig(Config):
    """A `glacier_region_twin` experiment."""

    experiment: Experiment
    synthetic: Synthetic
    data: Data
    model: typed.TemperatureIndexModel = typed.TemperatureIndexModel()
    parameters: Annotated[dict[str, TwinParameter], pydantic.AfterValidator(typed.model_parameters)] = Field(
        description="[parameters.NAME] tables, each with its truth"
    )
    observations: Observations
    calibration: typed.YearSpan
    validation: typed.YearSpan
    fit: typed.Fit = typed.Fit()
    uncertainty: Uncertainty = Uncertainty()
    output: Output = Output()

    @pydantic.model_validator(mode="after")
    def _consistent(self):
        problems = []
        calibration = self.calibration.years
        if calibration & self.validation.years:
            problems.append("validation: its years overlap the calibration years")
        geodetic = self.observations.geodetic
        if geodetic is not None and geodetic.start is not None and geodetic.end is not None:
            if not set(range(geodetic.start, geodetic.end + 1)) <= calibration:
                problems.append("observations.geodetic: its period must lie inside the calibration years")
        shared = [name for name, table in self.parameters.items() if table.scope == "shared"]
        if self.uncertainty.hessian == "members" and shared:
            problems.append(
                "uncertainty.hessian: 'members' needs every parameter per glacier (scope = 'glacier'); "
                f"shared: {shared}"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self


MODEL = RegionTwinConfig
"""The kind's typed config (docs/experiments/glacier_region_twin_grace.md is tested against it)."""


def validate(config: dict) -> list[str]:
    """Every problem of a regional twin config, without running."""
    return typed.problems(RegionTwinConfig, config)[1] + check_files(config, ("climate",))


def resolve(config: dict) -> dict:
    """The config with every default filled in (refused with every problem if it has any)."""
    return typed.resolve(RegionTwinConfig, config, check_files(config, ("climate",)))


class RegionTwin(pipeline.Experiment):
    """The synthetic region of a config: glaciers, climate, truth, observations."""

    def setup(self, progress):
        problem = self.problem()
        self.setup_time = time.perf_counter() - self.started
        return problem

    def uncertainty(self, problem, result, progress):
        self.hessian = self.config.get("uncertainty", {}).get("hessian", "exact")
        report.stage(progress, f"uncertainty: Laplace approximation ({self.hessian})")
        tick = time.perf_counter()
        posterior = _laplace(problem, result.u, self.hessian)
        self.laplace_time = time.perf_counter() - tick
        return posterior, None

    def evaluate(self, problem, result, posterior, samples, out, progress):
        return _evaluate(self, problem, result, posterior, out, progress)

    def __init__(self, config: dict):
        self.started = time.perf_counter()
        super().__init__(config)
        seed = int(config.get("experiment", {}).get("seed", 0))
        k_glaciers, k_truth, k_grace, k_geodetic = jax.random.split(jax.random.key(seed), 4)
        synthetic = dict(config["synthetic"])
        self.n = synthetic.pop("glaciers")
        self.glaciers = cgdata.synthetic_glacier_region(k_glaciers, self.n, **synthetic)
        self.names = [f"G{g + 1:03d}" for g in range(self.n)]
        self.area = np.asarray(self.glaciers.area).sum(axis=1)  # [m2]
        model_keys = dict(config.get("model", {}))
        self.model = P.MonthlyTemperatureIndex(year_start_month=10, **model_keys)
        climate = open_climate_noting(config["data"]["climate"], self.notes, **grid_point(config["data"]))
        arrays, years = self.model.climate_arrays(climate)
        first = min(config["calibration"]["start"], config["validation"]["start"])
        last = max(config["calibration"]["end"], config["validation"]["end"])
        keep = (years >= first) & (years <= last)
        if not keep.any() or years[keep][0] != first or years[keep][-1] != last:
            raise ValueError(
                f"calibration and validation {first}-{last}: the climate covers mass-balance years "
                f"{years[0]}-{years[-1]}"
            )
        rows = np.flatnonzero(keep)
        self.years = years[keep]
        self.arrays = {k: (v[12 * rows[0] : 12 * (rows[-1] + 1)] if np.ndim(v) == 1 else v) for k, v in arrays.items()}
        self.parameters = [parameter(name, spec) for name, spec in config["parameters"].items()]
        self.truth_values = {}
        keys = jax.random.split(k_truth, len(self.parameters))
        for key, p in zip(keys, self.parameters, strict=True):
            truth = in_model_units(p.name, config["parameters"][p.name])["truth"]
            if isinstance(truth, dict):
                value = truth["mean"] + truth["std"] * np.asarray(jax.random.normal(key, (self.n,)))
                low, high = p.bounds
                if (low is not None and value.min() <= low) or (high is not None and value.max() >= high):
                    raise ValueError(f"parameters.{p.name}.truth: draws reach the bounds {p.bounds}; narrow the std")
            else:
                value = np.full(self.n, float(truth)) if p.scope == "member" else float(truth)
            self.truth_values[p.name] = value
        self.truth_run = self.run(self.truth_values)
        self.calibration = (config["calibration"]["start"], config["calibration"]["end"])
        self.calibration_rows = (self.years >= self.calibration[0]) & (self.years <= self.calibration[1])
        self.observed = self._observe(k_grace, k_geodetic)

    def run(self, values: dict, glaciers=None) -> np.ndarray:
        """Specific mass balance (glacier, year) [kg m-2] for parameter values by name, of
        all glaciers or of the indices `glaciers` (member-scoped values then for those)."""
        member = {p.path: jnp.asarray(values[p.name]) for p in self.parameters if p.scope == "member"}
        shared = {p.path: values[p.name] for p in self.parameters if p.scope != "member"}
        hypsometry = self.glaciers if glaciers is None else jax.tree.map(lambda a: a[glaciers], self.glaciers)
        return np.asarray(_region_run(A.with_leaves(self.model, shared), member, hypsometry, self.arrays))

    def _observe(self, k_grace, k_geodetic) -> dict:
        spec = self.config["observations"]
        smb = self.truth_run[:, self.calibration_rows]
        years = self.years[self.calibration_rows]
        observed = {}
        if "grace" in spec:
            mass = np.cumsum(self.area @ smb) / 1e12  # [Gt] at the year ends
            sigma = spec["grace"]["sigma"]
            noise = np.asarray(jax.random.normal(k_grace, mass.shape)) * sigma
            times = pd.DatetimeIndex([pd.Timestamp(int(y), 10, 1) for y in years])
            observed["grace"] = xr.Dataset(
                dict(
                    mass=("time", mass + noise + 100.0, dict(units="Gt", long_name="regional mass anomaly")),
                    mass_uncertainty=("time", np.full(years.size, sigma), dict(units="Gt")),
                ),
                coords=dict(time=times),
            )
        if "geodetic" in spec:
            g = spec["geodetic"]
            start, end = g.get("start", self.calibration[0]), g.get("end", self.calibration[1])
            period = (years >= start) & (years <= end)
            rate = smb[:, period].mean(axis=1)
            value, sigma = A.geodetic_from_dh(rate / A.DENSITY, np.full(self.n, g.get("dh_sigma", 0.15)))
            noise = np.asarray(jax.random.normal(k_geodetic, (self.n,))) * sigma
            observed["geodetic"] = dict(value=value + noise, sigma=sigma, start=start, end=end, truth=rate)
        return observed

    def operators(self, kinds=None) -> list:
        years = self.years[self.calibration_rows]
        out = []
        kinds = kinds or list(self.observed)
        if "grace" in kinds and "grace" in self.observed:
            out.append(A.regional_mass_change(self.observed["grace"], self.area, years, name="grace"))
        if "geodetic" in kinds and "geodetic" in self.observed:
            g = self.observed["geodetic"]
            out.append(
                A.geodetic_balance(
                    g["value"], g["sigma"], years, g["start"], g["end"], member=np.arange(self.n), label=self.names
                )
            )
        return out

    @staticmethod
    def forward(model, inputs):
        # only what the observation operators read (the gradient by members carries one
        # tangent per output, so unused outputs would cost)
        return {"specific_mass_balance": model.run(inputs["glacier"], inputs["climate"])["specific_mass_balance"]}

    def problem(self, kinds=None) -> A.Problem:
        climate = {k: (v[self._months()] if np.ndim(v) == 1 else v) for k, v in self.arrays.items()}
        return A.Problem(
            self.model,
            self.forward,
            self.parameters,
            self.operators(kinds),
            dict(glacier=self.glaciers, climate=climate),
            members=self.n,
            input_axes=dict(glacier=0, climate=None),
            member_names=self.names,
        )

    def _months(self) -> slice:
        rows = np.flatnonzero(self.calibration_rows)
        return slice(12 * rows[0], 12 * (rows[-1] + 1))

    def truth_by_label(self, labels) -> dict:
        out = {}
        position = {name: i for i, name in enumerate(self.names)}
        for label in labels:
            name, _, member = label.partition("[")
            value = self.truth_values[name]
            out[label] = float(value if not member else value[position[member.rstrip("]")]])
        return out


@jax.jit
def _region_run(model, member, glaciers, climate):
    """Annual specific balances of many glaciers; `member` holds per-glacier values by path."""

    def one(member_values, glacier):
        return A.with_leaves(model, member_values).run(glacier, climate)["specific_mass_balance"]

    return jax.vmap(one)(member, glaciers)


MEMBER_LIST_LIMIT = 300
"""Above this many fitted scalars, summary.json lists the shared parameters one by one and
summarises the member-scoped ones per parameter (every value is in result.nc and glaciers/)."""


def run(config: dict, out: Path, progress: bool = True) -> dict:
    """Make the synthetic region, fit it, and write summary.json, result.nc, the per-glacier
    results (glaciers/, one netCDF per chunk of glaciers, written as each is done) and
    figures to `out` (`pipeline.run`)."""
    return pipeline.run(RegionTwin, resolve(config), out, progress)


def _evaluate(twin, problem, result, posterior, out, progress) -> pipeline.Outcome:
    """Recovery of the truth, the fit without the GRACE series (ablation), each glacier's
    results and posterior (written chunk by chunk), metrics and the summary's tables."""
    config = twin.config
    table = report.recovery(posterior, twin.truth_by_label(posterior.labels))
    ablation = {}
    shared = [i for i, label in enumerate(posterior.labels) if "[" not in label]
    if "grace" in twin.observed and len(twin.observed) > 1 and shared:
        alone = twin.problem(["geodetic"])
        method, settings = fit_settings(config)
        settings.pop("checkpoint_every", None)
        fitted_alone = A.fit(alone, method, progress=False, **settings)
        posterior_alone = _laplace(alone, fitted_alone.u, twin.hessian)
        ablation = {
            posterior.labels[i]: dict(
                with_grace=dict(value=float(posterior.mean[i]), std=float(posterior.std[i])),
                without_grace=dict(value=float(posterior_alone.mean[i]), std=float(posterior_alone.std[i])),
            )
            for i in shared
        }

    values = problem.unpack(result.u)
    start_values = problem.unpack(problem.u0)
    tick = time.perf_counter()
    glaciers = _glacier_results(twin, values, start_values, posterior, out / "glaciers", config, progress)
    output_time = time.perf_counter() - tick
    runs = dict(fitted=glaciers.specific_mass_balance.values, start=glaciers.specific_mass_balance_start.values)
    metrics = dict(
        calibration=_calibration_metrics(problem, result.u),
        validation=_validation_metrics(twin, runs["fitted"]),
        start=dict(
            calibration=_calibration_metrics(problem, problem.u0),
            validation=_validation_metrics(twin, runs["start"]),
        ),
        note=(
            "calibration: against the noisy synthetic observations; validation: each glacier's annual balances in "
            "the validation years (never observed) against the truth"
        ),
    )
    units = {p.name: p.units for p in twin.parameters}
    parameters = {
        label: dict(value=float(m), std=float(s), units=units.get(label.split("[")[0], ""))
        for label, m, s in zip(posterior.labels, posterior.mean, posterior.std, strict=True)
    }
    for label, row in table.items():
        parameters[label].update(row)
    member_parameters = {}
    if problem.size > MEMBER_LIST_LIMIT:
        member_parameters = _member_parameter_summary(twin, posterior, units)
        parameters = {label: row for label, row in parameters.items() if "[" not in label}
    fit_s = result.wall_time + result.compile_time
    summary = dict(
        experiment=config["experiment"]["name"],
        parameters=parameters,
        correlation=None,
        member_parameters=member_parameters,
        recovery=report.recovery_summary(table),
        grace_ablation=ablation,
        timing=dict(
            setup_s=round(twin.setup_time, 2),
            fit_s=round(fit_s, 2),
            laplace_s=round(twin.laplace_time, 2),
            per_glacier_output_s=round(output_time, 2),
            fit_and_laplace_per_glacier_ms=round(1e3 * (fit_s + twin.laplace_time) / twin.n, 3),
        ),
        uncertainty=dict(method=posterior.method),
        region=dict(glaciers=twin.n, area_km2=float(twin.area.sum() / 1e6)),
        observations={o.name: int(o.values.size) for o in problem.observations},
        periods=dict(
            calibration=list(twin.calibration), validation=[config["validation"][k] for k in ("start", "end")]
        ),
    )
    dataset = _result_dataset(twin, runs, posterior, result)

    def figures(out):
        _figures(out, twin, runs, posterior, table, result, summary | dict(metrics=metrics))

    return pipeline.Outcome(metrics, dataset, figures, summary)


def _laplace(problem, u, hessian):
    if hessian == "members":
        return A.laplace_by_members(problem, u)
    return A.laplace(problem, u, hessian=hessian)


def _glacier_results(twin, values, start_values, posterior, store, config, progress) -> xr.Dataset:
    """Each glacier's fitted parameters (value, std) and its fitted and start runs over all
    years, in chunks of `output.chunk_size` glaciers, each chunk written to `store` as it
    is done (`cg.run_chunked`; a rerun of the same config skips the written chunks)."""
    member = [p for p in twin.parameters if p.scope == "member"]
    std = dict(zip(posterior.labels, posterior.std, strict=True))
    inputs = xr.Dataset(coords=dict(glacier=twin.names))
    inputs["index"] = ("glacier", np.arange(twin.n))
    for p in member:
        inputs[p.name] = ("glacier", np.asarray(values[p.name]), dict(units=p.units, long_name="fitted value"))
        inputs[f"{p.name}_std"] = (
            "glacier",
            np.array([std[f"{p.name}[{name}]"] for name in twin.names]),
            dict(units=p.units, long_name="Laplace posterior standard deviation"),
        )
        inputs[f"{p.name}_start"] = ("glacier", np.asarray(start_values[p.name]))

    def chunk_runs(chunk: xr.Dataset) -> xr.Dataset:
        index = chunk["index"].values
        fitted = {p.name: chunk[p.name].values for p in member}
        start = {p.name: chunk[f"{p.name}_start"].values for p in member}
        shared = {p.name: values[p.name] for p in twin.parameters if p.scope != "member"}
        shared_start = {p.name: start_values[p.name] for p in twin.parameters if p.scope != "member"}
        unit = dict(units="kg m-2")
        result = chunk.drop_vars([f"{p.name}_start" for p in member]).assign_coords(year=twin.years)
        result["specific_mass_balance"] = (
            ("glacier", "year"),
            twin.run({**shared, **fitted}, index),
            dict(unit, long_name="annual specific mass balance, fitted"),
        )
        result["specific_mass_balance_start"] = (
            ("glacier", "year"),
            twin.run({**shared_start, **start}, index),
            dict(unit, long_name="annual specific mass balance, start values"),
        )
        return result

    chunk_size = config.get("output", {}).get("chunk_size", 1000)
    fingerprint = hashlib.sha256(
        json.dumps(config, sort_keys=True, default=str).encode()
        + b"".join(np.ascontiguousarray(inputs[p.name].values).tobytes() for p in member)
    ).hexdigest()
    mark = store / "fit.sha256"
    if store.exists() and not (mark.exists() and mark.read_text() == fingerprint):
        for part in store.iterdir():  # an earlier fit's results: not this one's
            part.unlink()
    store.mkdir(parents=True, exist_ok=True)
    mark.write_text(fingerprint)  # same config and fitted values: written chunks are kept
    return run_chunked(chunk_runs, inputs, store, dim="glacier", chunk_size=chunk_size, progress=progress)


def _member_parameter_summary(twin, posterior, units) -> dict:
    """Per member-scoped parameter: how well the glaciers' values are recovered."""
    out = {}
    for p in twin.parameters:
        if p.scope != "member":
            continue
        rows = [i for i, label in enumerate(posterior.labels) if label.startswith(f"{p.name}[")]
        fitted, std = posterior.mean[rows], posterior.std[rows]
        truth = np.asarray(twin.truth_values[p.name])
        z = (fitted - truth) / std
        out[p.name] = dict(
            units=units.get(p.name, ""),
            glaciers=len(rows),
            truth_mean=float(truth.mean()),
            truth_std=float(truth.std()),
            fitted_mean=float(fitted.mean()),
            std_median=float(np.median(std)),
            rmse_against_truth=float(np.sqrt(np.mean((fitted - truth) ** 2))),
            r_against_truth=float(np.corrcoef(fitted, truth)[0, 1]),
            within_2_std=float(np.mean(np.abs(z) <= 2)),
            z_std=float(np.std(z)),
        )
    return out


def _calibration_metrics(problem, u) -> dict:
    predictions = problem.predictions(u)
    return {o.name: report.metrics(predictions[o.name], o.values) for o in problem.observations}


def _validation_metrics(twin, smb) -> dict:
    start, end = twin.config["validation"]["start"], twin.config["validation"]["end"]
    rows = (twin.years >= start) & (twin.years <= end)
    regional = (twin.area @ smb[:, rows]) / twin.area.sum()
    regional_truth = (twin.area @ twin.truth_run[:, rows]) / twin.area.sum()
    return dict(
        annual_balance=report.metrics(smb[:, rows].ravel(), twin.truth_run[:, rows].ravel()),
        regional_annual_balance=report.metrics(regional, regional_truth),
    )


def _result_dataset(twin, runs, posterior, result) -> xr.Dataset:
    ds = xr.Dataset(coords=dict(glacier=twin.names, year=twin.years))
    ds["area"] = ("glacier", twin.area, dict(units="m2"))
    unit = dict(units="kg m-2")
    ds["specific_mass_balance_truth"] = (("glacier", "year"), twin.truth_run, unit)
    ds["specific_mass_balance"] = (("glacier", "year"), runs["fitted"], unit)
    ds["specific_mass_balance_start"] = (("glacier", "year"), runs["start"], unit)
    ds["calibration"] = ("year", twin.calibration_rows)
    if "geodetic" in twin.observed:
        g = twin.observed["geodetic"]
        ds["geodetic_observed"] = ("glacier", g["value"], dict(units="kg m-2 yr-1"))
        ds["geodetic_sigma"] = ("glacier", g["sigma"], dict(units="kg m-2 yr-1"))
    truth = list(twin.truth_by_label(posterior.labels).values())
    ds = report.posterior_variables(
        ds,
        posterior,
        {p.name: p.units for p in twin.parameters},
        truth=truth,
        correlation=posterior.correlation.ndim == 2,
    )
    ds = report.loss_variable(ds, result)
    return ds


def _figures(out, twin, runs, posterior, table, result, summary) -> None:
    plt = report.pyplot()
    name = summary["experiment"]
    labels = posterior.labels
    shared = [i for i, label in enumerate(labels) if "[" not in label]
    member_parameters = [p for p in twin.parameters if p.scope == "member"]
    panels = len(member_parameters) + bool(shared)
    figure, axes = plt.subplots(1, panels, figsize=(5.6 * panels, 5.2), squeeze=False)
    axes = axes[0]
    for axis, fitted_parameter in zip(axes, member_parameters, strict=False):
        member = [i for i, label in enumerate(labels) if label.startswith(f"{fitted_parameter.name}[")]
        truth = np.array([table[labels[i]]["truth"] for i in member])
        value, std = posterior.mean[member], posterior.std[member]
        many = len(member) > 200
        axis.errorbar(
            truth,
            value,
            yerr=2 * std,
            fmt="o",
            ms=1.5 if many else 4,
            color="tab:blue",
            ecolor="0.75",
            elinewidth=0.3 if many else 1.0,
            label="fitted ± 2 std",
        )
        line = np.array([truth.min(), truth.max()])
        axis.plot(line, line, color="k", lw=0.8, label="1:1")
        axis.set_xlabel(f"true {fitted_parameter.name} [{fitted_parameter.units}]")
        axis.set_ylabel(f"fitted {fitted_parameter.name} [{fitted_parameter.units}]")
        within = np.mean(np.abs((value - truth) / std) <= 2)
        axis.set_title(f"{len(member)} glaciers: {within:.0%} within 2 std of the truth", fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    if shared:
        axis = axes[-1]
        y = np.arange(len(shared))
        for row, i in zip(y, shared, strict=True):
            truth = table[labels[i]]["truth"]
            axis.errorbar(
                100 * (posterior.mean[i] - truth) / abs(truth),
                row,
                xerr=200 * posterior.std[i] / abs(truth),
                fmt="o",
                color="tab:blue",
                capsize=3,
                label="with the regional series" if row == 0 else None,
            )
            alone = summary["grace_ablation"].get(labels[i])
            if alone:
                w = alone["without_grace"]
                axis.errorbar(
                    100 * (w["value"] - truth) / abs(truth),
                    row + 0.2,
                    xerr=200 * w["std"] / abs(truth),
                    fmt="s",
                    color="0.5",
                    capsize=3,
                    label="geodetic only" if row == 0 else None,
                )
        axis.axvspan(
            -100 * report.RECOVERY_RELATIVE, 100 * report.RECOVERY_RELATIVE, color="tab:green", alpha=0.12, label="±5 %"
        )
        axis.axvline(0, color="k", lw=0.8)
        axis.set_ylim(len(shared) - 0.5, -0.5)
        axis.set_yticks(y, [f"{labels[i]} (truth {table[labels[i]]['truth']:g})" for i in shared])
        axis.set_xlabel("(fitted - truth) / |truth| [%], bars ±2 std")
        axis.set_title("shared parameters")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(f"{name}: recovery")
    report.save(figure, out / "recovery.png", dpi=110)

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    years = twin.years
    total = twin.area.sum()
    for label, smb, style in (
        ("truth", twin.truth_run, dict(color="k", lw=1.5)),
        ("fitted", runs["fitted"], dict(color="tab:red", ls="--")),
        ("start values", runs["start"], dict(color="0.6", ls=":")),
    ):
        axes[0].plot(years, twin.area @ smb / total, label=label, **style)
    calibration = years[twin.calibration_rows]
    axes[0].axvspan(calibration[0] - 0.5, calibration[-1] + 0.5, color="tab:green", alpha=0.1, label="calibration")
    axes[0].set_xlabel("mass-balance year")
    axes[0].set_ylabel("regional specific balance [kg m-2]")
    axes[0].set_title("regional annual balance")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    if "grace" in twin.observed:
        series = twin.observed["grace"]
        observed = series.mass.values - series.mass.values.mean()
        rows = twin.calibration_rows
        for label, smb, style in (
            ("truth", twin.truth_run, dict(color="k", lw=1.5)),
            ("fitted", runs["fitted"], dict(color="tab:red", ls="--")),
        ):
            mass = np.cumsum(twin.area @ smb[:, rows]) / 1e12
            axes[1].plot(calibration, mass - mass.mean(), label=label, **style)
        axes[1].errorbar(
            calibration,
            observed,
            yerr=series.mass_uncertainty.values,
            fmt="o",
            ms=4,
            color="tab:orange",
            label="GRACE-like series (synthetic)",
        )
        axes[1].set_xlabel("end of mass-balance year")
        axes[1].set_ylabel("regional mass, mean removed [Gt]")
        axes[1].set_title("regional mass change")
        axes[1].legend(fontsize=8)
        axes[1].grid(alpha=0.3)
    figure.suptitle(f"{name}: {twin.n} glaciers, {total / 1e6:.0f} km2")
    report.save(figure, out / "mass_balance_by_year.png", dpi=110)
    report.convergence_figure(out / "convergence.png", {"calibration": result}, f"{name}: convergence")
