"""`cryograd run` for a real glacier region: the glaciers of an outline file, each with its
elevation bands and monthly climate, fitted jointly to regional and glacier observations.

- Glaciers: bands cut from a DEM inside each outline (`data.dem`, `cg.data.hypsometry`) or
  read from an RGI 6 hypsometry table (`data.hypsometry`); positions from the outlines.
- Climate: the nearest grid point of a gridded monthly file (`data.climate`), or a few
  stations (`[[data.stations]]`, `cg.data.station_climate`); each glacier keeps its
  reference height and temperatures lapse to each band.
- Shared parameters take one value for the region; `scope = "glacier"` gives one per
  glacier.

Observations over the calibration years:

- the regional rate of one RGI region and period, against the area-weighted mean of the
  modelled glaciers (`A.regional_balance`), its error widened by a representativeness
  error (the modelled glaciers are a sample of the region);
- the WGMS annual balances of the monitored glacier (matched to its outline);
- a GlaMBIE regional series (`[observations.grace]`, `A.period_mass_change`), with a model
  error added to its errors (given, or estimated from a first fit).

Validation: the monitored glacier's WGMS balances in the validation years (never fitted),
the regional rate as predicted by a fit without it, GlaMBIE series in both periods
(`validation.series`), Hugonnet periods (`validation.regional_periods`) and a fit to one
series alone (`validation.compare_fit_to`). Config sections: [experiment], [data],
[model], [parameters.NAME], [observations.regional|wgms_annual|grace], [calibration],
[validation], [fit], [uncertainty] (docs/experiments/glacier_oetztal.md and
glacier_iceland_grace.md).
"""

import re
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pydantic
import xarray as xr

from .. import assimilation as A, data as cgdata, physics as P
from . import pipeline, report, typed
from .config import (
    check_files,
    data_path,
    fit_settings,
    keyed,
    open_climate_noting,
    parameter,
)
from .typed import Config, Field, Section

MAX_BARS = 60
"""Regions of more glaciers get no per-glacier bar chart (the map shows them)."""
LARGEST = 4
"""The largest glaciers whose balance by elevation is drawn and stored with its band."""
YEAR_START_MONTH = 10
"""Hydrological years (October-September), as WGMS reports them."""
FILES = ("dem", "hypsometry", "outlines", "climate", "stations", "regional", "glambie", "wgms")


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


class Station(Section):
    file: str = Field(description="a path or sample:NAME: a monthly station file")
    format: Annotated[str, typed.one_of(("imo", "csv"))] = Field(
        "imo", description="'imo' (`cg.data.open_imo_station`) or 'csv' (`cg.data.open_station_csv`)"
    )
    elevation: float | None = Field(None, description="[m a.s.l.] the station's height (a sample carries its own)")
    lat: float | None = Field(None, ge=-90, le=90, description="[degree] its latitude (a sample carries its own)")
    lon: float | None = Field(None, ge=-180, le=360, description="[degree] its longitude")
    columns: dict[str, str] | None = Field(None, description="csv: the file's column of each variable")
    units: dict[str, str] | None = Field(None, description="csv: the units of each mapped variable")

    @pydantic.model_validator(mode="after")
    def _position(self):
        if not self.file.startswith("sample:") and None in (self.elevation, self.lat, self.lon):
            raise ValueError(f"{self.file}: give the station's elevation, lat and lon (the files do not hold them)")
        if self.format == "csv" and not self.columns:
            raise ValueError("a csv station needs columns (e.g. {year = 'YEAR', month = 'MON', temperature = 'T'})")
        return self


class Data(Section):
    dem: str | None = Field(None, description="a path or sample:NAME: a GeoTIFF DEM (or give hypsometry)")
    hypsometry: str | None = Field(None, description="a path or sample:NAME: an RGI 6 hypsometry table (or give dem)")
    outlines: str = Field(description="a path or sample:NAME: the glaciers' outlines")
    id_column: str = Field("RGIId", description="the outlines' column of glacier ids")
    climate: str | None = Field(None, description="a path or sample:NAME: gridded monthly climate (or give stations)")
    stations: list[Station] | None = Field(None, description="[[data.stations]] tables: monthly station files")
    station_method: Annotated[str, typed.one_of(("nearest", "inverse_distance"))] = Field(
        "nearest", description="each glacier's stations: 'nearest' or 'inverse_distance'"
    )
    station_lapse_rate: float = Field(-0.0065, description="[K m-1] moves station temperatures to a glacier's height")
    climatology: list[int] | None = Field(
        None, min_length=2, max_length=2, description="[first, last] year of the stations' climatology"
    )
    regional: str | None = Field(None, description="a path or sample:NAME: a regional mass-change table")
    region: int | None = Field(None, description="an RGI region number")
    period: Annotated[str, pydantic.AfterValidator(_period)] | None = Field(None, description="'YYYY-MM-DD_YYYY-MM-DD'")
    glambie: str | None = Field(None, description="a path or sample:NAME: a GlaMBIE regional CSV")
    wgms: str | None = Field(None, description="a path or sample:NAME: a WGMS mbdata file")
    wgms_glacier: int | None = Field(None, description="the WGMS id of the monitored glacier")
    wgms_outline: str | None = Field(None, description="its outline's id (default: the one matched by position)")
    bin_size: float = Field(50.0, gt=0, description="[m] band height")

    @pydantic.model_validator(mode="after")
    def _one_of_each(self):
        problems = []
        if (self.dem is None) == (self.hypsometry is None):
            problems.append("give either dem (bands cut from the DEM) or hypsometry (an RGI table), not both")
        if (self.climate is None) == (self.stations is None):
            problems.append("give either climate (a gridded file) or stations, not both")
        if self.stations is not None and not self.stations:
            problems.append("stations: give at least one station")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Regional(Section):
    representativeness: float = Field(0.0, ge=0, description="[kg m-2 yr-1] error added to the regional rate's")


class WgmsAnnual(Section):
    sigma: float = Field(300.0, gt=0, description="[kg m-2] error of each annual balance")


def _model_error(value):
    if value == "estimated" or (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0):
        return value
    raise ValueError(f"model_error must be 'estimated' or a number >= 0 [Gt per year], got {value!r}")


class Grace(Section):
    source: str = Field("gravimetry", description="the GlaMBIE source fitted (its <source>_mass_change column)")
    model_error: Annotated[float | str, pydantic.AfterValidator(_model_error)] = Field(
        "estimated", description="[Gt per year] added in quadrature to each year's error, or 'estimated'"
    )
    own_variability_only: bool = Field(
        True, description="leave out years where the source has no year-to-year change of its own"
    )


class Observations(Section):
    regional: Regional | None = Field(None, description="the regional geodetic rate")
    wgms_annual: WgmsAnnual | None = Field(None, description="the monitored glacier's WGMS annual balances")
    grace: Grace | None = Field(None, description="a GlaMBIE regional mass-change series (data.glambie)")

    @pydantic.model_validator(mode="after")
    def _any(self):
        if self.regional is None and self.wgms_annual is None and self.grace is None:
            raise ValueError("observations: give regional, wgms_annual and/or grace")
        return self


class Validation(typed.YearSpan):
    series: dict[str, str] = Field(
        {}, description="NAME = GlaMBIE source: series compared (never fitted) in both periods"
    )
    regional_periods: list[Annotated[str, pydantic.AfterValidator(_period)]] = Field(
        [], description="periods of data.regional's region compared with the modelled area-weighted rate"
    )
    compare_fit_to: str | None = Field(None, description="a NAME of series: also fit to it alone and compare")


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
    validation: Validation
    fit: typed.GlacierFit = typed.GlacierFit()
    uncertainty: typed.GlacierUncertainty = typed.GlacierUncertainty()

    @pydantic.model_validator(mode="after")
    def _years(self):
        problems = []
        calibration = self.calibration.years
        if calibration & self.validation.years:
            problems.append("validation: its years overlap the calibration years")
        data, observations, validation = self.data, self.observations, self.validation
        if observations.regional is not None:
            if None in (data.regional, data.region, data.period):
                problems.append("observations.regional: give data.regional, data.region and data.period")
            else:
                first, last = period_years(data.period)
                if not set(range(first, last + 1)) <= calibration:
                    problems.append(
                        f"data.period: its mass-balance years {first}-{last} must lie inside the calibration years"
                    )
        if validation.regional_periods and None in (data.regional, data.region):
            problems.append("validation.regional_periods: give data.regional and data.region")
        if observations.wgms_annual is not None and data.wgms is None:
            problems.append("observations.wgms_annual: give data.wgms")
        if (observations.grace is not None or validation.series) and data.glambie is None:
            problems.append("observations.grace and validation.series: give data.glambie (a GlaMBIE CSV)")
        if validation.compare_fit_to is not None and validation.compare_fit_to not in validation.series:
            problems.append(
                f"validation.compare_fit_to: {validation.compare_fit_to!r} is not a name of validation.series "
                f"({', '.join(validation.series) or 'none given'})"
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


def _regional(config, period: str, key: str = "data.period") -> tuple[float, float]:
    """The regional rate and its error [kg m-2 yr-1] of data.region over `period`."""
    data = config["data"]
    table = cgdata.open_geodetic_mb(data_path(data["regional"]))
    if "region" not in table.dims:
        raise ValueError(f"data.regional: {data['regional']} is not a regional table (reg, period, dmdtda, ...)")
    if data["region"] not in table.region.values:
        regions = table.region.values.tolist()
        raise ValueError(f"data.region: {data['region']} is not in the table (regions {regions})")
    if period not in table.period.values:
        periods = table.period.values.tolist()
        raise ValueError(f"{key}: {period!r} is not in the table (periods {periods})")
    row = table.sel(region=data["region"], period=period)
    value = float(row.specific_mass_balance_rate)
    sigma = float(row.specific_mass_balance_rate_uncertainty)
    if not (np.isfinite(value) and np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"data.regional: region {data['region']}, {period}: no value with an uncertainty")
    return value, sigma


def _glambie(config):
    """The GlaMBIE series of data.glambie, checked for the sources the config names."""
    reference = config["data"]["glambie"]
    series = cgdata.open_grace(data_path(reference))
    if "time_bounds" not in series or series.attrs.get("years") is None:
        raise ValueError(f"data.glambie: {reference} is not a GlaMBIE regional CSV (no periods)")
    sources = sorted(v.removesuffix("_mass_change") for v in series.data_vars if v.endswith("_mass_change"))
    wanted = {"validation.series." + k: v for k, v in config["validation"].get("series", {}).items()}
    if "grace" in config["observations"]:
        wanted["observations.grace.source"] = config["observations"]["grace"].get("source", "gravimetry")
    for key, source in wanted.items():
        if f"{source}_mass_change" not in series or f"{source}_mass_change_uncertainty" not in series:
            raise ValueError(f"{key}: {source!r} is not a source with errors in {reference} (sources: {sources})")
    return series


def _table_hypsometry(reference, outline_ids, notes):
    """(Hypsometry, ids) from an RGI hypsometry table, glaciers without one left out (noted);
    every glacier needs an outline."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = cgdata.open_rgi_hypsometry(data_path(reference))
        glaciers, ids = cgdata.region_hypsometry(table, drop_missing=True)
    notes.extend(f"hypsometry: {w.message}" for w in caught)
    ids = [str(i) for i in ids]
    missing = sorted(set(ids) - set(outline_ids))
    if missing:
        raise ValueError(
            f"data.outlines: {len(missing)} glacier(s) of data.hypsometry have no outline ({', '.join(missing[:5])})"
        )
    return glaciers, ids


def _station_climate(data, latitude, longitude, ids, notes):
    """Every glacier's monthly climate from the [[data.stations]] (`cg.data.station_climate`)."""
    import warnings

    stations = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k, station in enumerate(data["stations"]):
            reference = station["file"]
            position = {key: station[key] for key in ("elevation", "lat", "lon") if station.get(key) is not None}
            try:
                if reference.startswith("sample:"):  # a sample carries its position; given keys replace it
                    ds = cgdata.load_sample(reference.removeprefix("sample:"))
                    renamed = {"reference_elevation" if key == "elevation" else key: v for key, v in position.items()}
                    ds.attrs.update(renamed)
                elif station.get("format", "imo") == "csv":
                    columns, units = station["columns"], station.get("units") or {}
                    ds = cgdata.open_station_csv(data_path(reference), columns=columns, units=units, **position)
                else:
                    ds = cgdata.open_imo_station(data_path(reference), **position)
            except ValueError as error:
                raise ValueError(f"data.stations[{k}]: {error}") from None
            stations.append(ds)
        climatology = data.get("climatology")
        climate = cgdata.station_climate(
            stations,
            latitude,
            longitude,
            glacier=ids,
            method=data.get("station_method", "nearest"),
            lapse_rate=data.get("station_lapse_rate", -0.0065),
            climatology=None if climatology is None else tuple(climatology),
        )
    notes.extend(f"stations: {w.message}" for w in caught)
    attrs = climate.attrs
    notes.append(
        f"climate: stations {attrs['stations']} ({attrs['station_elevations']} m), method {attrs['method']}, "
        f"climatology {attrs['climatology_years']}; station temperatures lapsed at {attrs['lapse_rate']} K m-1 to "
        "each glacier's reference height (its stations' weighted height)"
    )
    return climate[["temperature", "precipitation", "reference_elevation"]]


class Region(pipeline.Experiment):
    """The glaciers, climate and observations of a regional config."""

    def setup(self, progress):
        return _setup(self)

    def evaluate(self, problem, result, posterior, samples, out, progress):
        return _evaluate(self, problem, result, posterior, samples)

    def __init__(self, config: dict):
        super().__init__(config)
        self.fit_options = {}
        data = config["data"]
        reference = data_path(data["outlines"])
        outlines = keyed("data.outlines", cgdata.open_outlines, reference, id_column=data.get("id_column", "RGIId"))
        ids = outlines.glacier_id.tolist()
        if data.get("hypsometry") is not None:
            self.glaciers, self.ids = _table_hypsometry(data["hypsometry"], ids, self.notes)
            outlines = outlines.iloc[[ids.index(i) for i in self.ids]]
        else:
            dem = cgdata.open_dem(data_path(data["dem"]))
            self.glaciers = cgdata.hypsometry(dem, outlines, bin_size=data.get("bin_size", 50.0))
            self.ids = ids
        self.n = len(self.ids)
        self.outlines = outlines
        self.area = np.asarray(self.glaciers.area).sum(axis=1)  # [m2]
        self.latitude, self.longitude = outlines.latitude.to_numpy(), outlines.longitude.to_numpy()
        if data.get("stations") is not None:
            climate = _station_climate(data, self.latitude, self.longitude, self.ids, self.notes)
        else:
            climate = open_climate_noting(
                data["climate"], self.notes, lat=self.latitude, lon=self.longitude, dim="glacier"
            )
        self.grid_height = climate.reference_elevation.values
        self.model = P.MonthlyTemperatureIndex(year_start_month=YEAR_START_MONTH, **config.get("model", {}))
        spans = [period_years(p) for p in config["validation"].get("regional_periods", [])]
        first = min(config["calibration"]["start"], config["validation"]["start"], *(a for a, _ in spans))
        last = max(config["calibration"]["end"], config["validation"]["end"], *(b for _, b in spans))
        # only the months of the years modelled: a gap elsewhere in the record does not matter
        climate = climate.sel(
            time=slice(f"{first - 1}-{YEAR_START_MONTH:02d}-01", f"{last}-{YEAR_START_MONTH - 1:02d}-30")
        )
        arrays, years = self.model.climate_arrays(climate, n_glaciers=self.n)
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
            value, sigma = _regional(config, data["period"])
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

        self.glambie = _glambie(config) if data.get("glambie") is not None else None
        self.model_error = 0.0  # [Gt per year] on the GlaMBIE series fitted; run() estimates it if asked
        validation = config["validation"]
        self.validation = (validation["start"], validation["end"])
        self.series = dict(validation.get("series", {}))
        if self.glambie is not None and "grace" in config["observations"]:
            self.series = {"grace": config["observations"]["grace"].get("source", "gravimetry"), **self.series}
        for name in self.series:  # refused here, before any fit, if a period has no value of the series
            for span in (self.calibration, self.validation):
                self.comparison(name, span)
        self.regional_periods = {
            period: (*_regional(config, period, "validation.regional_periods"), *period_years(period))
            for period in validation.get("regional_periods", [])
        }

    @staticmethod
    def forward(model, inputs):
        return model.run(inputs["glacier"], inputs["climate"])

    def comparison(self, name: str, span, model_error: float = 0.0, model_years=None):
        """The operator of GlaMBIE series `name` (validation.series, or `grace`) over the
        mass-balance years `span`, against the balances of `model_years` (default all the
        region's years)."""
        own = self.config["observations"].get("grace", {}).get("own_variability_only", True)
        return A.period_mass_change(
            self.glambie,
            self.area,
            self.years if model_years is None else model_years,
            source=self.series[name],
            start=span[0],
            end=span[1],
            own_variability_only=own if name == "grace" else True,
            model_error=model_error,
            name=name,
        )

    @staticmethod
    def input_axes():
        climate = dict(temperature=0, precipitation=0, reference_elevation=0, month=None, days=None)
        return dict(glacier=0, climate=climate)

    def operators(self, kinds=("regional", "wgms_annual", "grace")) -> list:
        years = self.calibration_years
        out = []
        for name in [n for n in self.series if n in kinds]:
            error = self.model_error if name == "grace" else 0.0
            out.append(self.comparison(name, self.calibration, error, model_years=years))
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

    def problem(self, kinds=("regional", "wgms_annual", "grace")) -> A.Problem:
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
        """u -> `MonthlyTemperatureIndex.run`'s outputs (glacier, year, ...) over all years (jitted)."""
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
        return jax.jit(full.outputs)


def _months(arrays: dict, years, first: int, last: int) -> dict:
    """The climate arrays cut to mass-balance years first..last."""
    rows = np.flatnonzero((np.asarray(years) >= first) & (np.asarray(years) <= last))
    months = slice(12 * rows[0], 12 * (rows[-1] + 1))
    timed = ("temperature", "precipitation", "month", "days")
    return {k: (v[..., months] if k in timed else v) for k, v in arrays.items()}


def run(config: dict, out: Path, progress: bool = True) -> dict:
    """Fit the region, validate, and write summary.json, result.nc and figures to `out` (`pipeline.run`)."""
    return pipeline.run(Region, resolve(config), out, progress)


def _setup(region) -> A.Problem:
    """The fitted problem: with `model_error = "estimated"`, a first fit with GlaMBIE's
    errors alone estimates it and starts the fit."""
    config = region.config
    grace, region.model_error_summary = config["observations"].get("grace"), None
    if grace is not None and grace["model_error"] == "estimated":
        method, settings = fit_settings(config)
        settings.pop("checkpoint_every", None)
        plain = region.problem()  # GlaMBIE's errors alone
        first = A.fit(plain, method, progress=False, **settings)
        region.model_error, region.model_error_summary = _estimated_model_error(plain, first)
        region.fit_options = dict(init=first.parameters)
        region.notes.append(f"model error of the GlaMBIE series fitted: {region.model_error_summary['note']}")
    elif grace is not None:
        region.model_error = float(grace["model_error"])
        region.model_error_summary = dict(value=region.model_error, units="Gt per year", note="given in the config")
    return region.problem()


def _evaluate(region, problem, result, posterior, samples) -> pipeline.Outcome:
    """Runs of the fitted and start values and the Laplace draws, the fit to one series
    alone, the regional rate predicted without it, metrics, coverage and the tables."""
    config = region.config
    uncertainty = config.get("uncertainty", {})
    seed = int(config["experiment"].get("seed", 0))
    method, settings = fit_settings(config)
    settings.pop("checkpoint_every", None)
    run_all = region.runner(problem)
    outputs = run_all(result.u)
    smb, mass_balance = np.asarray(outputs["specific_mass_balance"]), np.asarray(outputs["mass_balance"])
    smb_start = np.asarray(run_all(problem.u0)["specific_mass_balance"])
    draws = int(uncertainty.get("band_draws", 200))
    u_draws = posterior.draws_u(draws, seed + 1)
    largest = np.argsort(-region.area)[:LARGEST]
    rows = jnp.asarray((region.years >= region.calibration[0]) & (region.years <= region.calibration[1]))

    def drawn(u):  # one model run per draw: the balances, and the largest glaciers' mean by elevation
        run = run_all(u)
        return run["specific_mass_balance"], jnp.mean(run["mass_balance"][largest], axis=1, where=rows[:, None])

    band, profiles = (np.asarray(a) for a in jax.lax.map(drawn, u_draws))  # (draw, glacier, year | band)

    compared = None
    name = config["validation"].get("compare_fit_to")
    if name is not None:  # the same parameters fitted to one independent series alone (its own errors)
        fitted = A.fit(region.problem((name,)), method, progress=False, **settings)
        smb_alone = np.asarray(run_all(fitted.u)["specific_mass_balance"])
        compared = dict(
            fitted_to=name,
            source=region.series[name],
            parameters={k: float(np.asarray(v).mean()) for k, v in fitted.parameters.items()},
            converged=bool(fitted.converged),
            metrics=_series_metrics(region, smb_alone),
            regional_rates=_regional_rates(region, smb_alone),
        )

    # The regional rate as predicted without it (is it consistent with the WGMS fit?).
    without = None
    if region.regional is not None and region.wgms is not None:
        alone = region.problem(("wgms_annual",))
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
    dataset = _result_dataset(region, smb, smb_start, band, mass_balance, posterior, result)
    for name in region.series:  # held-out coverage of the 90 % predictive range
        metrics["validation"][name]["coverage_90"] = _coverage(region, dataset, name)

    def figures(out):
        _figures(out, region, dataset, posterior, result, samples, without, (largest, profiles))

    parameters, correlation = report.parameter_summary(posterior, {p.name: p.units for p in region.parameters})
    period = region.rate_period
    summary = dict(
        parameters=parameters,
        correlation=correlation if len(posterior.labels) <= 10 else None,
        regional_check=without,
        regional_rates=dict(fitted=_regional_rates(region, smb, band), start=_regional_rates(region, smb_start))
        if region.regional_periods
        else None,
        model_error=region.model_error_summary,
        compared_fit=compared,
        glaciers={
            gid: dict(
                area_km2=round(float(dataset.area[g] / 1e6), 6),
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
        observations={o.name: int(o.values.size) for o in problem.observations},
        periods=dict(calibration=list(region.calibration), validation=list(region.validation)),
    )
    return pipeline.Outcome(metrics, dataset, figures, summary)


def _metrics(region, problem, u, smb) -> dict:
    predictions = problem.predictions(u)
    calibration = {o.name: report.metrics(predictions[o.name], o.values) for o in problem.observations}
    validation = {}
    if region.wgms is not None:
        start, end = region.validation
        rows = (region.years >= start) & (region.years <= end)
        validation["wgms_annual"] = report.metrics(smb[region.monitored, rows], region.observed[rows])
    series = _series_metrics(region, smb)
    calibration.update(series["calibration"])
    validation.update(series["validation"])
    return dict(calibration=calibration, validation=validation)


def _series_metrics(region, smb) -> dict:
    """Each GlaMBIE series against the modelled regional change [Gt] over the calibration
    and the validation years (its own errors only)."""
    out = dict(calibration={}, validation={})
    for name in region.series:
        for part, span in (("calibration", region.calibration), ("validation", region.validation)):
            operator = region.comparison(name, span)
            predicted = operator.predict(dict(specific_mass_balance=jnp.asarray(smb)), {})
            out[part][name] = dict(report.metrics(predicted, operator.values), units="Gt", source=region.series[name])
    return out


def _regional_rates(region, smb, band=None) -> dict:
    """The modelled area-weighted rate [kg m-2 yr-1] over each of validation.regional_periods,
    against the table's value (and the 5-95 % range over the Laplace draws in `band`)."""
    out = {}
    for period, (value, sigma, first, last) in region.regional_periods.items():
        rows = (region.years >= first) & (region.years <= last)
        rate = dict(
            modelled=float(region.area @ smb[:, rows].mean(axis=1) / region.area.sum()),
            observed=value,
            uncertainty=sigma,
            model_years=f"{first}-{last}",
            units="kg m-2 yr-1",
        )
        if band is not None:
            draws = np.einsum("g,dg->d", region.area, band[:, :, rows].mean(axis=2)) / region.area.sum()
            rate.update(p05=float(np.percentile(draws, 5)), p95=float(np.percentile(draws, 95)))
        out[period] = rate
    return out


def _coverage(region, ds, name) -> float | None:
    """The share of the validation years' values of GlaMBIE series `name` inside the 90 %
    predictive range: the parameter range (5-95 % over Laplace draws) combined, as normal
    half-widths, with 1.645 x the model error and the value's own error."""
    years = ds.year.sel(year=slice(*region.validation)).values
    part = ds.sel(year=years)
    observed, sigma = part[f"observed_{name}"].values, part[f"observed_{name}_uncertainty"].values
    keep = np.isfinite(observed)
    if not keep.any():
        return None
    half = (part.regional_mass_change_p95.values - part.regional_mass_change_p05.values) / 2
    spread = np.sqrt(half**2 + 1.645**2 * (region.model_error**2 + sigma**2))
    inside = np.abs(observed - part.regional_mass_change.values) <= spread
    return float(np.mean(inside[keep]))


def _estimated_model_error(problem, fitted) -> tuple[float, dict]:
    """The model error s [Gt per year] of the GlaMBIE series `grace` that makes the fit's
    chi-square equal its degrees of freedom: sum r^2 / (sigma^2 + s^2) = n - p (0 when the
    series' own errors already explain the misfit)."""
    operator = next(o for o in problem.observations if o.name == "grace")
    r = np.asarray(problem.predictions(fitted.u)["grace"]) - np.asarray(operator.values)
    value, chi2, dof = A.chi_square_model_error(r, operator.sigma, np.size(fitted.u))
    note = (
        f"{value:.2f} Gt per year added in quadrature to GlaMBIE's errors (median {np.median(operator.sigma):.2f}), "
        f"so that a first fit's chi-square {chi2:.1f} over {r.size} years meets its {dof} degrees of freedom"
    )
    return value, dict(value=value, units="Gt per year", chi_square_without=chi2, n=int(r.size), dof=dof, note=note)


def _result_dataset(region, smb, smb_start, band, mass_balance, posterior, result) -> xr.Dataset:
    ds = xr.Dataset(coords=dict(glacier=np.asarray(region.ids, dtype=str), year=region.years))
    ds.year.attrs.update(long_name="mass-balance year (October-September), labelled by its end")
    source = "the hypsometry table" if region.config["data"].get("hypsometry") else "the DEM and outline"
    band_area = np.asarray(region.glaciers.area)
    first, last = region.rate_period
    rows = (region.years >= first) & (region.years <= last)
    drawn, rates = "over Laplace parameter draws", band[:, :, rows].mean(axis=2)
    report.put(
        ds,
        "glacier",
        area=(region.area, "m2", f"glacier area (from {source})"),
        latitude=(region.latitude, "degrees_north", "the glacier's position"),
        longitude=(region.longitude, "degrees_east", None),
        grid_height=(region.grid_height, "m", "reference height of the glacier's climate (grid point or stations)"),
        period_rate=(smb[:, rows].mean(axis=1), "kg m-2 yr-1", f"modelled mean annual balance {first}-{last}"),
        period_rate_p05=(
            np.percentile(rates, 5, axis=0),
            "kg m-2 yr-1",
            f"5th percentile of the {first}-{last} rate {drawn}",
        ),
        period_rate_p95=(
            np.percentile(rates, 95, axis=0),
            "kg m-2 yr-1",
            f"95th percentile of the {first}-{last} rate {drawn}",
        ),
    )
    report.put(
        ds,
        ("glacier", "band"),
        elevation=(np.asarray(region.glaciers.elevation), "m", "elevation band centre"),
        band_area=(band_area, "m2", "glacier area in the band"),
    )
    ds["mass_balance"] = (
        ("glacier", "year", "band"),
        np.where(band_area[:, None, :] > 0, mass_balance, np.nan),
        dict(units="kg m-2", long_name="modelled annual balance by elevation band (NaN where the band has no ice)"),
    )
    report.put(
        ds,
        ("glacier", "year"),
        specific_mass_balance=(smb, "kg m-2", "modelled annual balance (hydrological year, labelled by its end)"),
        specific_mass_balance_start=(smb_start, "kg m-2", "with the start values"),
        specific_mass_balance_p05=(np.percentile(band, 5, axis=0), "kg m-2", f"5th percentile {drawn}"),
        specific_mass_balance_p95=(np.percentile(band, 95, axis=0), "kg m-2", f"95th percentile {drawn}"),
    )
    change = np.einsum("g,dgy->dy", region.area, band) / 1e12
    in_the_year = "modelled regional mass change in the year (sum over the glaciers)"
    report.put(
        ds,
        "year",
        regional_balance=(region.area @ smb / region.area.sum(), "kg m-2", "area-weighted mean balance"),
        regional_mass_change=(region.area @ smb / 1e12, "Gt", in_the_year),
        regional_mass_change_start=(region.area @ smb_start / 1e12, "Gt", "with the start values"),
        regional_mass_change_p05=(np.percentile(change, 5, axis=0), "Gt", f"5th percentile {drawn}"),
        regional_mass_change_p95=(np.percentile(change, 95, axis=0), "Gt", f"95th percentile {drawn}"),
    )
    if region.model_error > 0:  # the predictive range: parameters and the model's own error
        spread = np.hypot((ds.regional_mass_change_p95 - ds.regional_mass_change_p05) / 2, 1.645 * region.model_error)
        for q, sign in ((5, -1), (95, 1)):
            ds[f"regional_mass_change_predictive_p{q:02d}"] = (
                "year",
                ds.regional_mass_change.values + sign * spread.values,
                dict(units="Gt", long_name=f"{q}th percentile with the model error (normal approximation)"),
            )
    for name, source in region.series.items():  # the GlaMBIE series on the model years (one-year periods)
        operator = region.comparison(name, (region.years[0], region.years[-1]))
        weights = np.asarray(operator.weights)
        one = np.flatnonzero(np.isclose(weights.max(axis=1), 1.0) & np.isclose(weights.sum(axis=1), 1.0))
        at = weights[one].argmax(axis=1)
        values, sigma = np.full(region.years.size, np.nan), np.full(region.years.size, np.nan)
        values[at], sigma[at] = np.asarray(operator.values)[one], np.asarray(operator.sigma)[one]
        label = f"GlaMBIE {source} mass change in the year"
        ds[f"observed_{name}"] = ("year", values, dict(units="Gt", long_name=label, source=source))
        ds[f"observed_{name}_uncertainty"] = (
            "year",
            sigma,
            dict(units="Gt", long_name=f"1-sigma error of the {label}"),
        )
    ds["calibration"] = ("year", (region.years >= region.calibration[0]) & (region.years <= region.calibration[1]))
    if region.wgms is not None:
        ds["observed_annual_balance"] = (
            "year",
            region.observed,
            dict(
                units="kg m-2",
                long_name=f"WGMS annual balance of {region.ids[region.monitored]} (WGMS {region.wgms_id})",
            ),
        )
    ds = report.posterior_variables(ds, posterior, {p.name: p.units for p in region.parameters}, correlation=True)
    ds = report.loss_variable(ds, result)
    return ds.transpose("year", "glacier", "band", ...)


def _figures(out, region, ds, posterior, result, samples, without, profiles) -> None:
    plt = report.pyplot()
    name = region.config.get("experiment", {}).get("name", "glacier_region")
    years = ds.year.values
    calibration = ds.calibration.values

    if region.wgms is not None:
        g = region.monitored
        report.annual_balance_figure(
            out / "mass_balance_by_year.png",
            ds.isel(glacier=g),
            f"{name}: {region.ids[g]} (WGMS {region.wgms_id}); outside the green span: held out",
            "fitted",
            calibration=years[calibration][[0, -1]],
        )

    if region.series:
        _regional_change_figure(plt, out / "regional_mass_change.png", region, ds, name)
    _map_figure(plt, out / "glacier_map.png", region, ds, name)
    _profile_figure(plt, out / "balance_by_elevation.png", region, ds, profiles, name)
    if region.n <= MAX_BARS:
        _rates_figure(plt, out / "glacier_rates.png", region, ds, without, name)
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


def _rates_figure(plt, path, region, ds, without, name) -> None:
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
    report.save(figure, path)


def _regional_change_figure(plt, path, region, ds, name) -> None:
    """The modelled regional change by year with its bands, and every GlaMBIE series."""
    years = ds.year.values
    figure, axis = plt.subplots(figsize=(11, 5))
    if "regional_mass_change_predictive_p05" in ds:
        axis.fill_between(
            years,
            ds.regional_mass_change_predictive_p05,
            ds.regional_mass_change_predictive_p95,
            color="tab:red",
            alpha=0.1,
            label=f"5-95 % with the model error ({region.model_error:.1f} Gt)",
        )
    axis.fill_between(
        years,
        ds.regional_mass_change_p05,
        ds.regional_mass_change_p95,
        color="tab:red",
        alpha=0.3,
        label="5-95 % (parameter uncertainty)",
    )
    axis.plot(years, ds.regional_mass_change, color="tab:red", lw=1.5, label="model, fitted")
    axis.plot(years, ds.regional_mass_change_start, color="0.5", lw=1, ls="--", label="model, start values")
    colours = iter(["k", "tab:blue", "tab:green", "tab:purple", "tab:brown"])
    for k, (series, source) in enumerate(region.series.items()):
        axis.errorbar(
            years + 0.12 * k,
            ds[f"observed_{series}"],
            yerr=ds[f"observed_{series}_uncertainty"],
            fmt="o" if series == "grace" else "s",
            ms=4,
            color=next(colours),
            capsize=2,
            label=f"GlaMBIE {source}" + (" (fitted in the calibration years)" if series == "grace" else ""),
        )
    span = np.array(region.calibration) + np.array([-0.5, 0.5])
    axis.axvspan(*span, color="tab:green", alpha=0.08, label="calibration years")
    axis.axhline(0, color="0.7", lw=0.6)
    axis.set_xlabel("hydrological year (October-September, labelled by its end)")
    axis.set_ylabel("regional mass change in the year [Gt]")
    axis.set_title(f"{name}: {region.n} glaciers, {region.area.sum() / 1e6:,.0f} km2; outside the green span: held out")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower left", ncol=2)
    report.save(figure, path)


def _map_figure(plt, path, region, ds, name) -> None:
    """Each glacier's outline coloured by its modelled mean specific balance."""
    from matplotlib.colors import TwoSlopeNorm

    first, last = region.rate_period
    outlines = region.outlines.assign(rate=ds.period_rate.values)
    if outlines.crs is not None and not outlines.crs.is_geographic:
        outlines = outlines.to_crs("EPSG:4326")
    low, high = float(np.nanmin(outlines.rate)), float(np.nanmax(outlines.rate))
    norm = TwoSlopeNorm(0.0, min(low, -1.0), max(high, 1.0))
    figure, axis = plt.subplots(figsize=(10, 7))
    outlines.plot(column="rate", ax=axis, cmap="RdBu", norm=norm, edgecolor="0.3", linewidth=0.2)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap="RdBu")
    figure.colorbar(mappable, ax=axis, shrink=0.7, label=f"modelled mean annual balance {first}-{last} [kg m-2 yr-1]")
    axis.set_xlabel("longitude [degree east]")
    axis.set_ylabel("latitude [degree north]")
    axis.set_aspect(1.0 / np.cos(np.deg2rad(float(np.mean(region.latitude)))))
    axis.set_title(f"{name}: specific mass balance per glacier (fitted parameters)")
    report.save(figure, path)


def _profile_figure(plt, path, region, ds, profiles, name) -> None:
    """The largest glaciers' mean balance by elevation band over the calibration years."""
    largest, draws = profiles
    names = region.outlines["Name"] if "Name" in region.outlines.columns else None  # RGI's glacier names
    first, last = region.calibration
    rows = (ds.year.values >= first) & (ds.year.values <= last)
    figure, axes = plt.subplots(1, len(largest), figsize=(3.2 * len(largest) + 1, 5), sharey=True, squeeze=False)
    for axis, g, draw in zip(axes[0], largest, np.moveaxis(draws, 1, 0), strict=True):
        ice = ds.band_area.values[g] > 0
        z = ds.elevation.values[g][ice]
        mean = np.nanmean(ds.mass_balance.values[rows][:, g][:, ice], axis=0)
        low, high = np.percentile(draw[:, ice], [5, 95], axis=0)
        axis.fill_betweenx(z, low, high, color="tab:red", alpha=0.3, label="5-95 % (parameters)")
        axis.plot(mean, z, color="tab:red", lw=1.5, label="fitted")
        axis.axvline(0, color="0.6", lw=0.8)
        label = str(names.iloc[g]) if names is not None and isinstance(names.iloc[g], str) else ""
        axis.set_title(f"{label} {region.ids[g]}\n{region.area[g] / 1e6:.0f} km2".strip(), fontsize=9)
        axis.set_xlabel("mean balance [kg m-2 yr-1]")
        axis.grid(alpha=0.3)
    axes[0, 0].set_ylabel("band elevation [m a.s.l.]")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    figure.suptitle(f"{name}: balance by elevation of the {len(largest)} largest glaciers, {first}-{last}")
    report.save(figure, path)
