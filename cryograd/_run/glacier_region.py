"""`cryograd run` for a real glacier region: the glaciers of an outline file on a DEM, each
under its nearest grid point of a monthly climate, fitted jointly to a regional geodetic
rate (Hugonnet et al. 2021 table) and one glacier's WGMS annual balances.

Every glacier gets its hypsometry from the DEM and outlines (`cg.data.hypsometry`) and the
climate of the grid point nearest to it (its own reference height; temperatures lapse to
each band). Shared parameters take one value for the region; `scope = "glacier"` gives one
per glacier. The observations over the calibration years:

- the regional rate of one RGI region and period, against the area-weighted mean of the
  modelled glaciers (`A.regional_balance`), its error widened by a representativeness
  error (the modelled glaciers are a sample of the region);
- the WGMS annual balances of the monitored glacier (matched to its outline).

Validation: the monitored glacier's WGMS balances in the validation years (never fitted),
and the regional rate as predicted by a fit without it. Config sections: [experiment],
[data], [model], [parameters.NAME], [observations.regional|wgms_annual], [calibration],
[validation], [fit], [uncertainty] (see docs/experiments/glacier_oetztal.md).
"""

import json
import re
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
from . import report, typed
from .config import (
    calibrate,
    check_files,
    data_path,
    fit_settings,
    laplace_and_sampler,
    open_climate_noting,
    parameter,
    remove_checkpoint,
)
from .typed import Config, Field, Section

YEAR_START_MONTH = 10
"""Hydrological years (October-September), as WGMS reports them."""
FILES = ("dem", "outlines", "climate", "regional", "wgms")


def period_years(period: str) -> tuple[int, int]:
    """The mass-balance years (October-September, labelled by their end) a geodetic
    period 'YYYY-MM-DD_YYYY-MM-DD' is compared with: from the year holding the start date
    to the year before the one holding the end date (2000-01-01_2010-01-01 -> 2000-2009,
    October 1999 - September 2009)."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})", period)
    if not match:
        raise ValueError(f"data.period: {period!r} must read 'YYYY-MM-DD_YYYY-MM-DD'")
    start, end = (pd.Timestamp(x) for x in match.groups())

    def label(date):
        return date.year + (1 if date.month >= YEAR_START_MONTH else 0)

    first, last = label(start), label(end) - 1
    if last < first:
        raise ValueError(f"data.period: {period!r} covers no whole mass-balance year")
    return first, last


Experiment = typed.experiment("glacier_region", seed="seed of the Laplace and NUTS draws")


def _period(value: str) -> str:
    period_years(value)
    return value


class Data(Section):
    dem: str = Field(description="a path or sample:NAME: a GeoTIFF DEM")
    outlines: str = Field(description="a path or sample:NAME: the glaciers' outlines")
    id_column: str = Field("RGIId", description="the outlines' column of glacier ids")
    climate: str = Field(description="a path or sample:NAME: monthly climate")
    regional: str = Field(description="a path or sample:NAME: a regional mass-change table")
    region: int = Field(description="an RGI region number")
    period: Annotated[str, pydantic.AfterValidator(_period)] = Field(description="'YYYY-MM-DD_YYYY-MM-DD'")
    wgms: str = Field(description="a path or sample:NAME: a WGMS mbdata file")
    wgms_glacier: int | None = Field(None, description="the WGMS id of the monitored glacier")
    wgms_outline: str | None = Field(None, description="its outline's id (default: the one matched by position)")
    bin_size: float = Field(50.0, gt=0, description="[m] band height")


class Regional(Section):
    representativeness: float = Field(0.0, ge=0, description="[kg m-2 yr-1] error added to the regional rate's")


class WgmsAnnual(Section):
    sigma: float = Field(300.0, gt=0, description="[kg m-2] error of each annual balance")


class Observations(Section):
    regional: Regional | None = Field(None, description="the regional geodetic rate")
    wgms_annual: WgmsAnnual | None = Field(None, description="the monitored glacier's WGMS annual balances")

    @pydantic.model_validator(mode="after")
    def _any(self):
        if self.regional is None and self.wgms_annual is None:
            raise ValueError("observations: give regional and/or wgms_annual")
        return self


class RegionParameter(typed.ParameterTable):
    scope: Annotated[str, typed.one_of(("shared", "glacier"))] = Field(
        "shared", description="'shared' (one value) or 'glacier' (one per glacier)"
    )


class GlacierRegionConfig(Config):
    """A `glacier_region` experiment (real glaciers from a DEM and outlines)."""

    experiment: Experiment
    data: Data
    model: typed.TemperatureIndexModel = typed.TemperatureIndexModel()
    parameters: Annotated[dict[str, RegionParameter], pydantic.AfterValidator(typed.model_parameters)] = Field(
        description="[parameters.NAME] tables; path (default NAME): a MonthlyTemperatureIndex parameter"
    )
    observations: Observations
    calibration: typed.YearSpan
    validation: typed.YearSpan
    fit: typed.GlacierFit = typed.GlacierFit()
    uncertainty: typed.GlacierUncertainty = typed.GlacierUncertainty()

    @pydantic.model_validator(mode="after")
    def _years(self):
        problems = []
        calibration = self.calibration.years
        if calibration & self.validation.years:
            problems.append("validation: its years overlap the calibration years")
        if self.observations.regional is not None:
            first, last = period_years(self.data.period)
            if not set(range(first, last + 1)) <= calibration:
                problems.append(
                    f"data.period: its mass-balance years {first}-{last} must lie inside the calibration years"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self


MODEL = GlacierRegionConfig
"""The kind's typed config (docs/experiments/glacier_oetztal.md is tested against it)."""


def validate(config: dict) -> list[str]:
    """Every problem of a regional glacier config, without running."""
    return typed.problems(GlacierRegionConfig, config)[1] + check_files(config, FILES)


def resolve(config: dict) -> dict:
    """The config with every default filled in (refused with every problem if it has any)."""
    return typed.resolve(GlacierRegionConfig, config, check_files(config, FILES))


def _outlines(config):
    import geopandas as gpd

    data = config["data"]
    outlines = gpd.read_file(data_path(data["outlines"]))
    column = data.get("id_column", "RGIId")
    if column not in outlines:
        raise ValueError(
            f"data.id_column: the outlines have no column {column!r}; they have {', '.join(outlines.columns)}"
        )
    ids = outlines[column].astype(str).str.strip().tolist()
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"data.id_column: {column!r} repeats ids {repeated[:5]}; each outline needs its own")
    if outlines.crs is None:
        raise ValueError(f"data.outlines: {data['outlines']} has no coordinate reference system (.prj)")
    return outlines, ids


def _wgms(config):
    reference = config["data"]["wgms"]
    table = cgdata.open_wgms(data_path(reference))
    if "annual_balance" not in table:
        raise ValueError(f"data.wgms: {reference} holds no glacier-wide annual balances")
    return table


def _monitored(config, table, ids, notes) -> tuple[int, int]:
    """(WGMS id, position among the outlines) of the glacier whose series is fitted."""
    data = config["data"]
    wgms_id = data.get("wgms_glacier")
    glaciers = [int(g) for g in table.glacier.values]
    if wgms_id is None:
        if len(glaciers) != 1:
            raise ValueError(f"data.wgms_glacier: the WGMS table holds glaciers {glaciers}; name one")
        wgms_id = glaciers[0]
    elif wgms_id not in glaciers:
        raise ValueError(f"data.wgms_glacier: {wgms_id} is not in the WGMS table (it has {glaciers})")
    outline = data.get("wgms_outline")
    if outline is None:
        rgi = str(table.rgi_id.sel(glacier=wgms_id).values) if "rgi_id" in table.coords else ""
        number = rgi.partition("-")[2]
        matches = [i for i in ids if number and i.partition("-")[2] == number]
        if len(matches) != 1:
            raise ValueError(
                f"data.wgms_outline: cannot match WGMS glacier {wgms_id} ({rgi or 'no RGI id'}) to one outline; "
                "give the outline's id"
            )
        outline = matches[0]
        notes.append(f"WGMS glacier {wgms_id} ({rgi}) matched to outline {outline} by its RGI number")
    if outline not in ids:
        raise ValueError(f"data.wgms_outline: no outline has id {outline!r}")
    return wgms_id, ids.index(outline)


def _regional(config) -> tuple[float, float]:
    data = config["data"]
    table = cgdata.open_geodetic_mb(data_path(data["regional"]))
    if "region" not in table.dims:
        raise ValueError(f"data.regional: {data['regional']} is not a regional table (reg, period, dmdtda, ...)")
    if data["region"] not in table.region.values:
        regions = table.region.values.tolist()
        raise ValueError(f"data.region: {data['region']} is not in the table (regions {regions})")
    if data["period"] not in table.period.values:
        periods = table.period.values.tolist()
        raise ValueError(f"data.period: {data['period']!r} is not in the table (periods {periods})")
    row = table.sel(region=data["region"], period=data["period"])
    value = float(row.specific_mass_balance_rate)
    sigma = float(row.specific_mass_balance_rate_uncertainty)
    if not (np.isfinite(value) and np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"data.regional: region {data['region']}, {data['period']}: no value with an uncertainty")
    return value, sigma


class Region:
    """The glaciers, climate and observations of a regional config."""

    def __init__(self, config: dict):
        self.config = config
        self.notes = []
        data = config["data"]
        outlines, self.ids = _outlines(config)
        self.n = len(self.ids)
        dem = cgdata.open_dem(data_path(data["dem"]))
        self.glaciers = cgdata.hypsometry(dem, outlines, bin_size=data.get("bin_size", 50.0))
        self.area = np.asarray(self.glaciers.area).sum(axis=1)  # [m2]
        points = outlines.to_crs("EPSG:4326").geometry.representative_point()
        self.latitude, self.longitude = points.y.to_numpy(), points.x.to_numpy()
        climate = open_climate_noting(data["climate"], self.notes, lat=self.latitude, lon=self.longitude, dim="glacier")
        self.grid_height = climate.reference_elevation.values
        self.model = P.MonthlyTemperatureIndex(year_start_month=YEAR_START_MONTH, **config.get("model", {}))
        arrays, years = self.model.climate_arrays(climate, n_glaciers=self.n)
        first = min(config["calibration"]["start"], config["validation"]["start"])
        last = max(config["calibration"]["end"], config["validation"]["end"])
        if not (years[0] <= first and last <= years[-1]):
            raise ValueError(
                f"calibration and validation {first}-{last}: the climate covers mass-balance years "
                f"{years[0]}-{years[-1]}"
            )
        self.years = np.arange(first, last + 1)
        self.climate = _months(arrays, years, first, last)
        self.calibration = (config["calibration"]["start"], config["calibration"]["end"])
        self.calibration_years = np.arange(self.calibration[0], self.calibration[1] + 1)
        self.parameters = [parameter(name, spec) for name, spec in config["parameters"].items()]
        self.wgms = _wgms(config) if "wgms_annual" in config["observations"] else None
        if self.wgms is not None:
            self.wgms_id, self.monitored = _monitored(config, self.wgms, self.ids, self.notes)
            series = self.wgms.annual_balance.sel(glacier=self.wgms_id)
            self.observed = series.reindex(year=self.years).values
        self.regional = None
        self.rate_period = self.calibration
        if "regional" in config["observations"]:
            value, sigma = _regional(config)
            extra = float(config["observations"]["regional"].get("representativeness", 0.0))
            start, end = period_years(data["period"])
            total = float(np.hypot(sigma, extra))
            self.regional = dict(value=value, sigma=sigma, total_sigma=total, years=(start, end))
            self.rate_period = (start, end)
            self.notes.append(
                f"regional rate: RGI region {data['region']}, {data['period']}, {value:.1f} +- {sigma:.1f} kg m-2 yr-1 "
                f"(+ {extra:g} representativeness: +- {np.hypot(sigma, extra):.1f}), compared with mass-balance years "
                f"{start}-{end} (October {start - 1} - September {end})"
            )

    @staticmethod
    def forward(model, inputs):
        return model.run(inputs["glacier"], inputs["climate"])

    @staticmethod
    def input_axes():
        climate = dict(temperature=0, precipitation=0, reference_elevation=0, month=None, days=None)
        return dict(glacier=0, climate=climate)

    def operators(self, kinds=("regional", "wgms_annual")) -> list:
        years = self.calibration_years
        out = []
        if "regional" in kinds and self.regional is not None:
            r = self.regional
            out.append(
                A.regional_balance(
                    r["value"],
                    r["total_sigma"],
                    self.area,
                    years,
                    *r["years"],
                    name="regional_geodetic",
                    label=self.config["data"]["period"],
                )
            )
        if "wgms_annual" in kinds and self.wgms is not None:
            observed = self.wgms.annual_balance.sel(glacier=self.wgms_id).dropna("year").year.values
            chosen = np.intersect1d(observed, years)
            if chosen.size == 0:
                raise ValueError(
                    f"observations.wgms_annual: WGMS glacier {self.wgms_id} has no annual balance in the calibration "
                    f"years {years[0]}-{years[-1]}"
                )
            sigma = self.config["observations"]["wgms_annual"].get("sigma", 300.0)
            out.append(
                A.glaciological_balances(
                    self.wgms,
                    years,
                    years=chosen,
                    sigma=sigma,
                    glacier=self.wgms_id,
                    member=self.monitored,
                    name="wgms_annual",
                )
            )
        return out

    def problem(self, kinds=("regional", "wgms_annual")) -> A.Problem:
        return A.Problem(
            self.model,
            self.forward,
            self.parameters,
            self.operators(kinds),
            dict(glacier=self.glaciers, climate=_months(self.climate, self.years, *self.calibration)),
            members=self.n,
            input_axes=self.input_axes(),
            member_names=self.ids,
        )

    def runner(self, problem: A.Problem):
        """u -> specific mass balance (glacier, year) [kg m-2] over all years (jitted)."""
        inputs = dict(glacier=self.glaciers, climate=self.climate)
        full = A.Problem(
            problem.model,
            self.forward,
            problem.parameters,
            problem.observations,
            inputs,
            members=self.n,
            input_axes=self.input_axes(),
        )
        return jax.jit(lambda u: full.outputs(u)["specific_mass_balance"])


def _months(arrays: dict, years, first: int, last: int) -> dict:
    """The climate arrays cut to mass-balance years first..last."""
    rows = np.flatnonzero((np.asarray(years) >= first) & (np.asarray(years) <= last))
    months = slice(12 * rows[0], 12 * (rows[-1] + 1))
    timed = ("temperature", "precipitation", "month", "days")
    return {k: (v[..., months] if k in timed else v) for k, v in arrays.items()}


def run(config: dict, out: Path, progress: bool = True) -> dict:
    """Fit the region, validate, and write summary.json, result.nc and figures to `out`."""
    config = resolve(config)
    started = time.perf_counter()
    region = Region(config)
    problem = region.problem()
    uncertainty = config.get("uncertainty", {})
    seed = int(config.get("experiment", {}).get("seed", 0))
    out.mkdir(parents=True, exist_ok=True)
    result, checkpoint = calibrate(problem, config, out, progress)
    posterior, samples = laplace_and_sampler(problem, result.u, config)

    run_all = region.runner(problem)
    smb = np.asarray(run_all(result.u))
    smb_start = np.asarray(run_all(problem.u0))
    draws = int(uncertainty.get("band_draws", 200))
    u_draws = jax.random.multivariate_normal(jax.random.key(seed + 1), result.u, posterior.covariance_u, (draws,))
    band = np.asarray(jax.lax.map(run_all, u_draws))  # (draw, glacier, year)

    # The regional rate as predicted without it (is it consistent with the WGMS fit?).
    without = None
    if region.regional is not None and region.wgms is not None:
        alone = region.problem(("wgms_annual",))
        method, settings = fit_settings(config)
        settings.pop("checkpoint_every", None)
        fitted = A.fit(alone, method, progress=False, **settings)
        posterior_alone = A.laplace(alone, fitted.u, hessian=uncertainty.get("hessian", "exact"))
        operator = region.operators(("regional",))[0]
        gradient = jax.jacfwd(lambda u: operator.predict(alone.outputs(u), None)[0])(jnp.asarray(fitted.u))
        predicted = float(operator.predict(alone.outputs(fitted.u), None)[0])
        predicted_std = float(np.sqrt(gradient @ posterior_alone.covariance_u @ gradient))
        r = region.regional
        without = dict(
            parameters={
                label: dict(value=float(m), std=float(s))
                for label, m, s in zip(posterior_alone.labels, posterior_alone.mean, posterior_alone.std, strict=True)
            },
            predicted_regional_rate=dict(value=predicted, std=predicted_std),
            observed_regional_rate=dict(value=r["value"], sigma=r["sigma"], total_sigma=r["total_sigma"]),
            difference_in_sigma=float((predicted - r["value"]) / np.hypot(r["total_sigma"], predicted_std)),
            note="a fit to the WGMS series alone predicts the regional rate; the difference is in units of the "
            "combined error (observation with representativeness, and the prediction's Laplace std)",
        )

    metrics = _metrics(region, problem, result.u, smb)
    metrics["start"] = _metrics(region, problem, problem.u0, smb_start)
    dataset = _result_dataset(region, smb, smb_start, band, posterior, result)
    dataset.attrs["config"] = json.dumps(config)
    dataset.to_netcdf(out / "result.nc")
    _figures(out, region, dataset, posterior, result, samples, without)

    parameters, correlation = report.parameter_summary(posterior, {p.name: p.units for p in region.parameters})
    period = region.rate_period
    summary = dict(
        experiment=config.get("experiment", {}).get("name", "glacier_region"),
        parameters=parameters,
        correlation=correlation if len(posterior.labels) <= 10 else None,
        metrics=metrics,
        regional_check=without,
        glaciers={
            gid: dict(
                area_km2=float(dataset.area[g] / 1e6),
                grid_height_m=float(dataset.grid_height[g]),
                rate=float(dataset.period_rate[g]),
                rate_p05=float(dataset.period_rate_p05[g]),
                rate_p95=float(dataset.period_rate_p95[g]),
            )
            for g, gid in enumerate(region.ids)
        },
        glacier_rate_period=[int(period[0]), int(period[1])],
        region=dict(
            glaciers=region.n,
            area_km2=float(region.area.sum() / 1e6),
            monitored=None if region.wgms is None else region.ids[region.monitored],
        ),
        cost=result.cost(),
        observations={o.name: int(o.values.size) for o in problem.observations},
        periods=dict(
            calibration=list(region.calibration), validation=[config["validation"][k] for k in ("start", "end")]
        ),
        sampler=None if samples is None else report.sampler_summary(samples, posterior),
        notes=region.notes,
        seed=seed,
        versions=report.versions(),
        config=config,
    )
    summary["wall_time_s"] = round(time.perf_counter() - started, 2)
    report.write_summary(out / "summary.json", summary)
    remove_checkpoint(checkpoint)
    return summary


def _metrics(region, problem, u, smb) -> dict:
    predictions = problem.predictions(u)
    calibration = {o.name: report.metrics(predictions[o.name], o.values) for o in problem.observations}
    validation = {}
    if region.wgms is not None:
        start, end = region.config["validation"]["start"], region.config["validation"]["end"]
        rows = (region.years >= start) & (region.years <= end)
        validation["wgms_annual"] = report.metrics(smb[region.monitored, rows], region.observed[rows])
    return dict(calibration=calibration, validation=validation)


def _result_dataset(region, smb, smb_start, band, posterior, result) -> xr.Dataset:
    ds = xr.Dataset(coords=dict(glacier=region.ids, year=region.years))
    ds["area"] = ("glacier", region.area, dict(units="m2", long_name="glacier area (from the DEM and outline)"))
    ds["latitude"] = ("glacier", region.latitude, dict(units="degrees_north", long_name="a point inside the outline"))
    ds["longitude"] = ("glacier", region.longitude, dict(units="degrees_east"))
    ds["grid_height"] = ("glacier", region.grid_height, dict(units="m", long_name="height of the climate grid point"))
    unit = dict(units="kg m-2")
    ds["specific_mass_balance"] = (
        ("glacier", "year"),
        smb,
        dict(unit, long_name="modelled annual balance (hydrological year, labelled by its end)"),
    )
    ds["specific_mass_balance_start"] = (("glacier", "year"), smb_start, dict(unit, long_name="with the start values"))
    ds["specific_mass_balance_p05"] = (
        ("glacier", "year"),
        np.percentile(band, 5, axis=0),
        dict(unit, long_name="5th percentile over Laplace parameter draws"),
    )
    ds["specific_mass_balance_p95"] = (
        ("glacier", "year"),
        np.percentile(band, 95, axis=0),
        dict(unit, long_name="95th percentile over Laplace parameter draws"),
    )
    first, last = region.rate_period
    rows = (region.years >= first) & (region.years <= last)
    rate = dict(units="kg m-2 yr-1")
    ds["period_rate"] = (
        "glacier",
        smb[:, rows].mean(axis=1),
        dict(rate, long_name=f"modelled mean annual balance {first}-{last}"),
    )
    for q in (5, 95):
        ds[f"period_rate_p{q:02d}"] = (
            "glacier",
            np.percentile(band[:, :, rows].mean(axis=2), q, axis=0),
            dict(rate, long_name=f"{q}th percentile of the {first}-{last} rate over Laplace parameter draws"),
        )
    total = region.area.sum()
    ds["regional_balance"] = ("year", region.area @ smb / total, dict(unit, long_name="area-weighted mean balance"))
    ds["calibration"] = ("year", (region.years >= region.calibration[0]) & (region.years <= region.calibration[1]))
    if region.wgms is not None:
        ds["observed_annual_balance"] = (
            "year",
            region.observed,
            dict(unit, long_name=f"WGMS annual balance of {region.ids[region.monitored]} (WGMS {region.wgms_id})"),
        )
    ds = report.posterior_variables(ds, posterior, {p.name: p.units for p in region.parameters}, correlation=True)
    ds = report.loss_variable(ds, result)
    return ds


def _figures(out, region, ds, posterior, result, samples, without) -> None:
    plt = report.pyplot()
    name = region.config.get("experiment", {}).get("name", "glacier_region")
    years = ds.year.values
    calibration = ds.calibration.values

    if region.wgms is not None:
        g = region.monitored
        figure, axis = plt.subplots(figsize=(10, 4.6))
        axis.fill_between(
            years,
            ds.specific_mass_balance_p05[g],
            ds.specific_mass_balance_p95[g],
            color="tab:red",
            alpha=0.2,
            label="fitted, 5-95 % (parameter uncertainty)",
        )
        axis.plot(years, ds.specific_mass_balance[g], color="tab:red", lw=1.2, label="fitted")
        axis.plot(years, ds.specific_mass_balance_start[g], color="0.5", lw=1, ls="--", label="start values")
        axis.plot(years, ds.observed_annual_balance, "k.-", lw=0.8, label="WGMS annual balance")
        span = years[calibration][[0, -1]] + np.array([-0.5, 0.5])
        axis.axvspan(*span, color="tab:green", alpha=0.08, label="calibration")
        axis.axhline(0, color="0.7", lw=0.6)
        axis.set_xlabel("hydrological year (labelled by its end)")
        axis.set_ylabel("specific mass balance [kg m-2]")
        axis.set_title(f"{name}: {region.ids[g]} (WGMS {region.wgms_id}); outside the green span: held out")
        axis.grid(alpha=0.3)
        axis.legend(loc="lower left", ncol=3, fontsize=8)
        figure.tight_layout()
        figure.savefig(out / "mass_balance_by_year.png", dpi=120)
        plt.close(figure)

    period = region.rate_period
    rate, low, high = (ds[v].values for v in ("period_rate", "period_rate_p05", "period_rate_p95"))
    order = np.argsort(-region.area)
    figure, axis = plt.subplots(figsize=(14, 5.2))
    x = np.arange(region.n)
    axis.bar(x, rate[order], color="tab:blue", alpha=0.75, label="modelled glacier rate (fitted)")
    axis.errorbar(
        x, rate[order], yerr=[rate[order] - low[order], high[order] - rate[order]], fmt="none", ecolor="k", capsize=2
    )
    if region.wgms is not None:
        axis.bar(
            [int(np.flatnonzero(order == region.monitored)[0])],
            [rate[region.monitored]],
            color="tab:orange",
            alpha=0.8,
            label="the WGMS glacier",
        )
    mean = float(region.area @ rate / region.area.sum())
    axis.axhline(mean, color="tab:blue", lw=1.5, label=f"modelled area-weighted mean {mean:.0f}")
    if region.regional is not None:
        r = region.regional
        axis.axhspan(
            r["value"] - r["total_sigma"],
            r["value"] + r["total_sigma"],
            color="tab:green",
            alpha=0.15,
            label="regional rate ± error (with representativeness)",
        )
        axis.axhline(r["value"], color="tab:green", lw=1.5, label=f"Hugonnet et al. 2021 region: {r['value']:.0f}")
        if without is not None:
            p = without["predicted_regional_rate"]
            axis.axhline(p["value"], color="0.3", ls=":", lw=1.5, label=f"predicted from WGMS alone: {p['value']:.0f}")
    axis.set_xticks(x, [f"{region.ids[i]}\n{region.area[i] / 1e6:.1f} km2" for i in order], rotation=70, fontsize=7)
    axis.set_ylabel(f"mean annual balance {period[0]}-{period[1]} [kg m-2 yr-1]")
    axis.set_title(f"{name}: glacier rates (bars: 5-95 % parameter uncertainty), largest first")
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    figure.savefig(out / "glacier_rates.png", dpi=120)
    plt.close(figure)

    report.convergence_figure(out / "convergence.png", {"calibration": result}, f"{name}: convergence")
    if len(posterior.labels) <= 6:
        report.posterior_figure(
            out / "posterior.png",
            posterior,
            {p.name: p.units for p in region.parameters},
            f"{name}: posterior",
            samples=None if samples is None else samples.samples,
        )
    else:
        report.correlation_figure(out / "posterior.png", posterior, f"{name}: posterior correlation")
