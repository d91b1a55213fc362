"""`cryograd run` for one borehole (`kind = "permafrost_site"`): a soil column driven by the
borehole's own shallowest sensor or by air temperature and snow, fitted to the measured
ground temperatures of a calibration period and validated on the days after it.

The borehole (`data.borehole`) is a GTN-P CSV (wide or long; `data.borehole_id` picks one
of several), a GIPL2 station folder, or a netCDF file with `temperature (time, depth)`.
Hourly records are averaged to daily means; gaps stay gaps (`cg.data.open_borehole`). The
upper boundary (`forcing.upper`) is the measured temperature of a sensor (`"borehole"`),
the air temperature over a snowpack or through n-factors (`"air"`: ERA5, a CryoGrid JSON, a
station CSV, `cg.data.open_site_forcing`), or gap-filled clear-sky MODIS LST with a fitted
offset (`"lst"`). Yearly thaw depths (`data.active_layer`) join the fit where given. The
column (`[model]`) is a
geometric grid with the given soil layers and freeze curve, or a GIPL2 folder's own. The
start (`[initial]`) is the first day's measured profile, extended below its deepest sensor
as stated, or a periodic spin-up. Config sections and keys: docs/experiments/permafrost_site.md.
Parameter paths are leaves of the `PermafrostColumn`: `surface.thawing`,
`layers.0.k_frozen`, `layers.1.water_content`, `geothermal_flux`, ...
"""

import itertools
from pathlib import Path
from typing import Annotated

import diffrax
import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pydantic
import xarray as xr

from .. import assimilation as A, data as cgdata, physics as P
from . import pipeline, report, typed
from .config import check_files, column_options, data_path, keyed, parameter
from .typed import Config, Field, Section

DAY = 86400.0
FREEZE_CURVES = {  # name: (class, its parameters, of which required)
    "free_water": (P.FreeWater, ("width",), ()),
    "dall_amico": (P.DallAmico, ("alpha", "n", "residual_water_content"), ("alpha", "n")),
    "power_law": (P.PowerLaw, ("a", "b"), ("a", "b")),
    "piecewise_linear": (P.PiecewiseLinear, ("t_end",), ("t_end",)),
}

AIR_VARIABLES = cgdata.AIR_VARIABLES
Experiment = typed.experiment("permafrost_site", seed="seed of the Laplace draws")
PerLayer = float | list[float]


class Data(Section):
    borehole: str = Field(
        description="a GTN-P CSV (wide or long), a GIPL2 station folder, or a netCDF file with temperature "
        "(time, depth) [degC or K]; or a sample: sample:arctic_village, sample:gtnp_example, sample:gipl_station"
    )
    borehole_id: int | str | None = Field(None, description="the borehole of a long GTN-P file that holds several")
    start: typed.Date | None = Field(None, description="GIPL2 folders only: the date of forcing day 1")
    min_hours: int = Field(20, ge=1, le=24, description="[h] hourly records: the hours a day's mean needs")
    forcing: str | list[str] | None = Field(
        None,
        description="forcing.upper = 'air': ERA5 netCDF file(s) (t2m, sd, rsn, z; either CDS layout), a CryoGrid "
        "forcing JSON, a station CSV, or a netCDF file with air_temperature and snow_depth or "
        "snow_water_equivalent (daily or finer); default: a GIPL2 folder's own records",
    )
    forcing_columns: dict[str, str] | None = Field(
        None, description="a station CSV's columns: {air_temperature = 'Tair', snow_depth = 'HS', time = 'date'}"
    )
    forcing_units: dict[str, str] | None = Field(
        None, description="a station CSV's units (default degC and m): {air_temperature = 'K', snow_depth = 'cm'}"
    )
    active_layer: str | None = Field(
        None,
        description="a CSV of yearly active-layer thickness (thaw probing, CALM): columns year and "
        "active_layer_thickness (or alt, thaw_depth), fitted and validated beside the temperatures",
    )
    lst: str | list[str] | None = Field(
        None, description="forcing.upper = 'lst': an AppEEARS MOD11/MYD11 point CSV or MODIS HDF tiles (a list)"
    )
    lst_site: str | None = Field(None, description="the AppEEARS point (its ID) when the file holds several")
    lat: float | None = Field(None, ge=-90, le=90, description="[degree north] the borehole (an ERA5 grid's point)")
    lon: float | None = Field(None, description="[degree east] the borehole (default: a GTN-P metadata JSON's)")
    elevation: float | None = Field(
        None, description="[m] the borehole: ERA5's t2m is shifted to it from the grid point's height (needs z)"
    )

    @pydantic.field_validator("forcing_columns", "forcing_units")
    @classmethod
    def _forcing_names(cls, value, info):
        allowed = set(AIR_VARIABLES) | ({"time"} if info.field_name == "forcing_columns" else set())
        if value is not None and (unknown := sorted(set(value) - allowed)):
            raise ValueError(f"{', '.join(unknown)}: not a forcing variable; use {', '.join(sorted(allowed))}")
        return value


class Forcing(Section):
    upper: Annotated[str, typed.one_of(("borehole", "air", "lst"))] = Field(
        "borehole",
        description="the upper boundary: a sensor's measured temperature (`borehole`), `air`, or clear-sky MODIS "
        "land-surface temperature (`lst`)",
    )
    upper_depth: float | None = Field(
        None, ge=0, description="[m] upper = 'borehole': the sensor taken as the boundary (default: the shallowest)"
    )
    max_gap_days: int = Field(
        3,
        ge=0,
        description="[day] the boundary sensor's gaps up to this length are interpolated (and reported); "
        "longer gaps in the run are refused",
    )
    lst_quality: list[Annotated[str, typed.one_of(("good", "unreliable"))]] = Field(
        ["good"], min_length=1, description="upper = 'lst': the MODIS mandatory QA classes kept"
    )
    lst_max_error: float = Field(2.0, gt=0, description="[K] upper = 'lst': the largest LST error class kept")
    surface: Annotated[str, typed.one_of(("snow", "nfactor"))] = Field(
        "snow", description="upper = 'air': a snowpack (`Snow`) or n-factors on the air temperature (`NFactor`)"
    )


class Layer(Section):
    """One soil layer: GIPL's bulk values or a composition (`SoilLayer.from_composition`)."""

    top: float = Field(description="[m] top of the layer")
    water_content: float | None = Field(None, description="[m3 m-3] bulk form")
    k_thawed: float | None = Field(None, description="[W m-1 K-1] bulk form")
    k_frozen: float | None = Field(None, description="[W m-1 K-1] bulk form")
    c_thawed: float | None = Field(None, description="[J m-3 K-1] bulk form")
    c_frozen: float | None = Field(None, description="[J m-3 K-1] bulk form")
    porosity: float | None = Field(None, description="[m3 m-3] composition form")
    saturation: float | None = Field(None, description="[1] composition form (default 1)")
    organic: float | None = Field(None, description="[1] composition form: organic share of the solids (default 0)")

    @pydantic.model_validator(mode="after")
    def _one_form(self):
        self.soil()
        return self

    def soil(self) -> P.SoilLayer:
        values = self.model_dump(exclude_none=True)
        bulk = ("water_content", "k_thawed", "k_frozen", "c_thawed", "c_frozen")
        given = [k for k in bulk if k in values]
        if given and "porosity" not in values:
            missing = [k for k in bulk if k not in values]
            if missing:
                raise ValueError(f"a bulk layer needs {', '.join(missing)} too")
            return P.SoilLayer(**values)
        if "porosity" in values and not given:
            return P.SoilLayer.from_composition(**values)
        raise ValueError(
            "give either water_content, k_thawed, k_frozen, c_thawed, c_frozen or porosity (saturation, "
            "organic), not both"
        )


class FreezeCurve(Section):
    name: str = Field("free_water", description=f"one of {', '.join(FREEZE_CURVES)}")
    width: float | None = Field(None, description="free_water: [K] smoothing width (default 0: sharp)")
    alpha: PerLayer | None = Field(None, description="dall_amico: [m-1] van Genuchten alpha (one, or one per layer)")
    n: PerLayer | None = Field(None, description="dall_amico: [1] van Genuchten n")
    residual_water_content: PerLayer | None = Field(None, description="dall_amico: [m3 m-3]")
    a: PerLayer | None = Field(None, description="power_law: [1] GIPL's unfrozen-water coefficient")
    b: PerLayer | None = Field(None, description="power_law: [1] GIPL's unfrozen-water exponent")
    t_end: PerLayer | None = Field(None, description="piecewise_linear: [degC] end of freezing")

    @pydantic.model_validator(mode="after")
    def _known(self):
        if self.name not in FREEZE_CURVES:
            raise ValueError(f"name {self.name!r} is not a freeze curve; use one of {', '.join(FREEZE_CURVES)}")
        _, allowed, required = FREEZE_CURVES[self.name]
        given = {k for k, v in self.model_dump(exclude_none=True).items() if k != "name"}
        if missing := [k for k in required if k not in given]:
            raise ValueError(f"{self.name} needs {', '.join(missing)}")
        if foreign := sorted(given - set(allowed)):
            raise ValueError(f"{self.name} takes {', '.join(allowed)}, not {', '.join(foreign)}")
        return self

    def curve(self):
        cls, allowed, _ = FREEZE_CURVES[self.name]
        values = {k: getattr(self, k) for k in allowed if getattr(self, k) is not None}
        return cls(**{k: np.asarray(v, dtype=float) if isinstance(v, list) else v for k, v in values.items()})


class Model(typed.ColumnOptions):
    depth: float = Field(30.0, gt=0, description="[m] depth of the geometric grid")
    cells: int = Field(100, ge=2, description="cells of the grid")
    dz_top: float = Field(0.02, gt=0, description="[m] thickness of the top cell")
    layers: list[Layer] | None = Field(
        None, description="soil layers from the top, in order (default: a GIPL2 folder's own column; else required)"
    )
    freeze_curve: FreezeCurve = Field(FreezeCurve(), description="the freeze curve, e.g. {name = 'free_water'}")
    geothermal_flux: float | None = Field(
        None, description="[W m-2] into the base (default 0.053, a GIPL2 folder's own)"
    )
    snow_density: float = Field(250.0, gt=0, description="[kg m-3] with a snow depth series")
    snow_conductivity: Annotated[str, typed.one_of(("sturm", "yen", "prescribed"))] = Field(
        "sturm", description="the snow's conductivity: Sturm's, Yen's, or the forcing's (`prescribed`, GIPL2)"
    )
    snow_heat_capacity: float | None = Field(None, gt=0, description="[J m-3 K-1] (default: from density)")
    snow_min_depth: float = Field(0.01, ge=0, description="[m] snow thinner than this is not resolved")
    snow_cells: int = Field(5, ge=1, description="snow cells of the implicit solve")

    @pydantic.field_validator("layers")
    @classmethod
    def _in_order(cls, layers):
        if layers is None:
            return layers
        tops = [layer.top for layer in layers]
        if not layers or tops[0] != 0.0:
            raise ValueError("the first layer must start at top = 0")
        if any(b <= a for a, b in itertools.pairwise(tops)):
            raise ValueError(f"layer tops {tops} are not in increasing order")
        return layers


def _deep(value):
    if isinstance(value, str) and value != "calibration_mean":
        raise ValueError(f"{value!r}; give degC or 'calibration_mean'")
    return value


class Initial(Section):
    method: Annotated[str, typed.one_of(("profile", "spinup"))] = Field(
        "profile",
        description="`profile`: the first day's measured profile; `spinup`: it, then the first "
        "spinup_years of forcing repeated to a periodic state",
    )
    deep_depth: float = Field(10.0, description="[m] depth of deep_temperature")
    deep_temperature: Annotated[float | str, pydantic.AfterValidator(_deep)] | None = Field(
        None,
        description="[degC] or 'calibration_mean': below the profile, linear to this at deep_depth (not "
        "given: the deepest value held)",
    )
    spinup_years: int = Field(1, ge=1, description="[yr] the forcing years repeated by the spin-up")
    spinup_tolerance: float = Field(0.01, gt=0, description="[K] the spin-up stops when no cell's mean changes more")
    spinup_max_cycles: int = Field(50, ge=1, description="spin-up cycles at most (refused if not periodic by then)")


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
    min_depth: float = Field(0.0, ge=0, description="[m] sensors above are not fitted (the boundary sensor never)")
    max_depth: float | None = Field(None, description="[m] sensors below are not fitted")


class ActiveLayer(Section):
    sigma: float = Field(0.05, gt=0, description="[m] error of a year's active-layer thickness")
    units: str = Field("m", description="units of data.active_layer's thaw depths (m, cm, ...)")


class Observations(Section):
    ground_temperature: GroundTemperature = Field(GroundTemperature(), description="sigma in K")
    active_layer: ActiveLayer = Field(ActiveLayer(), description="with data.active_layer")


class Validation(Section):
    start: typed.Date | None = Field(None, description="first day (default: after calibration)")
    end: typed.Date | None = Field(None, description="last day (default: the record's last)")


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


class SiteConfig(Config):
    """A `permafrost_site` experiment (one borehole)."""

    experiment: Experiment
    data: Data
    forcing: Forcing = Forcing()
    model: Model = Model()
    initial: Initial = Initial()
    parameters: Annotated[
        dict[str, typed.ParameterTable], pydantic.AfterValidator(lambda t: typed.parameter_tables(t, "n_thawing"))
    ] = Field(description="[parameters.NAME] tables; path: a leaf of the column such as 'layers.0.k_frozen'")
    observations: Observations = Observations()
    calibration: typed.DatePeriod
    validation: Validation = Validation()
    fit: typed.Fit = typed.Fit()
    uncertainty: Uncertainty = Uncertainty()
    projection: typed.Projection | None = None


MODEL = SiteConfig
"""The kind's typed config (docs/experiments/permafrost_site.md is tested against it)."""
FILES = ("borehole", "forcing", "lst", "active_layer")


def validate(config: dict) -> list[str]:
    """Every problem of a permafrost_site config (keys, types, files, parameters), without running."""
    return typed.problems(SiteConfig, config)[1] + check_files(config, FILES)


def resolve(config: dict) -> dict:
    """The config with every default filled in (refused with every problem if it has any)."""
    return typed.resolve(SiteConfig, config, check_files(config, FILES))


# --- the borehole -------------------------------------------------------------------------


def open_borehole(data: dict, notes: list) -> tuple[xr.DataArray, xr.Dataset | None]:
    """Daily ground temperature (time, depth) [degC] of the borehole `data` names
    (`cg.data.open_borehole`), and the GIPL2 station (its forcing, soil and initial
    profile) when it is a GIPL2 folder."""
    path = data_path(data["borehole"])
    if path.is_dir():
        if "start" not in data:
            raise ValueError(f"data.start: {path} is a GIPL2 station folder; give the date of its forcing day 1")
        station = cgdata.open_gipl_station(path, start=data["start"])
        return station.ground_temperature, station
    if "start" in data:
        raise ValueError(f"data.start: only for GIPL2 station folders; {path.name} carries its dates")
    options = dict(borehole_id=data.get("borehole_id"), min_hours=data.get("min_hours", 20))
    measured = keyed("data.borehole", cgdata.open_borehole, path, **options)
    if "averaged_from" in measured.attrs:
        notes.append(
            f"borehole: {path.name}'s records every {measured.attrs['averaged_from']} averaged to daily means (a "
            f"day needs {options['min_hours']} of 24 hours)"
        )
    if measured.attrs["left_out"]:
        notes.append(f"borehole: sensors above the ground or without a value ({measured.attrs['left_out']} m) left out")
    return measured, None


def boundary_series(measured: xr.DataArray, depth: float, times: pd.DatetimeIndex, max_gap: int, notes: list):
    """The sensor at `depth` [m] on the days `times` [degC]; gaps up to `max_gap` days are
    interpolated linearly (and noted), longer ones and missing ends are refused."""
    series = measured.sel(depth=depth).reindex(time=times).values
    missing = np.isnan(series)
    if not missing.any():
        return series
    edges = np.flatnonzero(np.diff(np.r_[0, missing.astype(int), 0]))
    gaps = list(zip(edges[::2], edges[1::2], strict=True))
    for a, b in gaps:
        if a == 0 or b == times.size or b - a > max_gap:
            raise ValueError(
                f"forcing.upper: the sensor at {depth:g} m has no value for {b - a} day(s), {times[a].date()} to "
                f"{times[b - 1].date()}, inside the run {times[0].date()} to {times[-1].date()} (at most "
                f"forcing.max_gap_days = {max_gap} are interpolated, never the first or last day); choose "
                "calibration and validation periods without it"
            )
    days = np.arange(times.size)
    series[missing] = np.interp(days[missing], days[~missing], series[~missing])
    notes.append(
        f"forcing: {int(missing.sum())} day(s) of the boundary sensor at {depth:g} m interpolated linearly "
        f"({len(gaps)} gap(s), the longest {max(b - a for a, b in gaps)} day(s))"
    )
    return series


def covering(ds: xr.Dataset, times: pd.DatetimeIndex, key: str) -> xr.Dataset:
    """`ds` on the days `times`, refused (naming `key`) where it does not cover them or has gaps there."""
    first, last = pd.Timestamp(ds.time.values[0]), pd.Timestamp(ds.time.values[-1])
    source = ds.attrs.get("source", "the file")
    if first > times[0] or last < times[-1]:
        raise ValueError(
            f"{key}: {source} covers {first.date()} to {last.date()}, not the run {times[0].date()} to "
            f"{times[-1].date()}"
        )
    return ds.sel(time=slice(times[0], times[-1])).reindex(time=times)


def open_air_forcing(data: dict, times: pd.DatetimeIndex, position: dict) -> xr.Dataset:
    """Daily air temperature [degC] and snow of `data.forcing` on the days `times`
    (`cg.data.open_site_forcing` at the borehole's `position`), without gaps."""
    references = data["forcing"] if isinstance(data["forcing"], list) else [data["forcing"]]
    ds = keyed(
        "data.forcing",
        cgdata.open_site_forcing,
        [data_path(r) for r in references],
        columns=data.get("forcing_columns"),
        units=data.get("forcing_units"),
        **position,
    )
    ds = covering(ds, times, "data.forcing")
    for name in ds.data_vars:
        if int(ds[name].isnull().sum()):
            raise ValueError(f"data.forcing: {ds.attrs['source']}: {name} has gaps in the run; fill them first")
    return ds


def open_lst_forcing(data: dict, spec: dict, times: pd.DatetimeIndex, position: dict, notes: list) -> xr.Dataset:
    """The daily ground-surface forcing `land_surface_temperature` [degC] on the days
    `times`: clear-sky MODIS LST at the borehole (`cg.data.point_lst`: an AppEEARS point,
    `data.lst_site`, or the cell of HDF tiles at `position`) gap-filled by
    `cg.physics.gap_fill_lst`."""
    references = data["lst"] if isinstance(data["lst"], list) else [data["lst"]]
    clear = keyed(
        "data.lst",
        cgdata.point_lst,
        [data_path(r) for r in references],
        lat=position["lat"],
        lon=position["lon"],
        site=data.get("lst_site"),
        mandatory=spec["lst_quality"],
        max_lst_error=spec["lst_max_error"],
    )
    filled = P.gap_fill_lst(covering(clear, times, "data.lst"))
    notes.append(
        f"forcing: clear-sky MODIS LST on {int(filled.observed.sum())} of {times.size} days of the run (classes "
        f"{', '.join(spec['lst_quality'])}, error <= {spec['lst_max_error']:g} K), gap-filled (harmonic "
        f"climatology + decaying anomalies; day-night half range {float(filled.diurnal_half_range):.2f} K); the "
        "surface is the filled LST plus SatelliteLST's offset (fit it as surface.offset)"
    )
    return filled[["land_surface_temperature"]]


# --- the experiment -------------------------------------------------------------------------


class SiteExperiment(pipeline.Experiment):
    """The pieces of a permafrost_site config: column, forcing, initial state, observations."""

    fit_options = dict(gradient="forward")  # noqa: RUF012

    def uncertainty(self, problem, result, progress):
        return _uncertainty(self, problem, result, progress)

    def evaluate(self, problem, result, posterior, samples, out, progress):
        return _evaluate(self, problem, result, posterior, samples, out, progress)

    def __init__(self, config: dict):
        super().__init__(config)
        data, forcing_spec = config["data"], config["forcing"]
        self.measured, self.station = open_borehole(data, self.notes)
        calibration = config["calibration"]
        self.calibration = (pd.Timestamp(calibration["start"]), pd.Timestamp(calibration["end"]))
        record = pd.DatetimeIndex(self.measured.time.values)
        validation = config["validation"]
        start = pd.Timestamp(validation.get("start", self.calibration[1] + pd.Timedelta(days=1)))
        end = pd.Timestamp(validation.get("end", record[-1]))
        if self.calibration[0] < record[0] or self.calibration[1] > record[-1]:
            raise ValueError(
                f"calibration {self.calibration[0].date()} to {self.calibration[1].date()} is not inside the record, "
                f"{record[0].date()} to {record[-1].date()}"
            )
        if start <= self.calibration[1]:
            raise ValueError(f"validation.start {start.date()} lies inside the calibration period")
        if end < start:
            raise ValueError(f"validation: end {end.date()} is before start {start.date()}; swap them")
        if end > record[-1]:
            raise ValueError(f"validation {start.date()} to {end.date()}: the record ends {record[-1].date()}")
        self.validation = (start, end)
        self.times = pd.date_range(self.calibration[0], end, freq="D")
        self.n_calibration = int(np.searchsorted(self.times, self.calibration[1], side="right"))

        self.upper = forcing_spec["upper"]
        depths = self.measured.depth.values
        self.upper_depth = None
        if self.upper == "borehole":
            self.upper_depth = float(forcing_spec.get("upper_depth", depths[0]))
            if self.upper_depth not in depths:
                raise ValueError(
                    f"forcing.upper_depth: no sensor at {self.upper_depth:g} m; the borehole's are {depths.tolist()} m"
                )
            surface = boundary_series(
                self.measured, self.upper_depth, self.times, forcing_spec["max_gap_days"], self.notes
            )
            self.boundary = xr.Dataset(
                {"surface_temperature": ("time", surface, dict(units="degC"))}, coords=dict(time=self.times)
            )
        elif self.upper == "lst":
            if not data.get("lst"):
                raise ValueError("data.lst: forcing.upper = 'lst' needs an AppEEARS CSV or MODIS tiles")
            self.boundary = open_lst_forcing(data, forcing_spec, self.times, self._position(), self.notes)
        elif data.get("forcing"):
            self.boundary = open_air_forcing(data, self.times, self._position())
        elif self.station is not None:
            if self.times[-1] > pd.Timestamp(self.station.time.values[-1]):
                raise ValueError(f"validation.end {end.date()}: the station's forcing ends earlier")
            self.boundary = self.station.sel(time=self.times)
        else:
            raise ValueError("data.forcing: forcing.upper = 'air' needs an air temperature file (or a GIPL2 folder)")
        # the column's top is the boundary sensor: sensor depths below it are depths in the column
        self.offset = self.upper_depth or 0.0
        self.column = self._column()
        self.centres = np.asarray(self.column.grid.centres)
        self.column_measured = self.measured.assign_coords(depth=self.measured.depth.values - self.offset)
        variables = self.column.surface.forcing_variables
        from ..physics._xarray import forcing_arrays

        self.forcing, _ = forcing_arrays(self.boundary[list(variables)], variables, DAY)
        projection = config.get("projection")
        if projection:
            base = float(self.column.grid.edges[-1])
            if max(projection["magt_depths"]) > base:
                raise ValueError(
                    f"projection.magt_depths: {max(projection['magt_depths']):g} m lies below the column's base "
                    f"({base:g} m)"
                )
            if self.times.size < P.YEAR_DAYS:
                raise ValueError(f"projection: the run has {self.times.size} days; it needs a whole year to repeat")
        self.initial = jnp.asarray(self._initial())
        self.parameters = [parameter(name, spec) for name, spec in config["parameters"].items()]
        self._observations(config["observations"]["ground_temperature"])

    def _position(self) -> dict:
        """The borehole's lat, lon [degree] and elevation [m]: [data]'s, else a GTN-P metadata JSON's."""
        data, attrs = self.config["data"], self.measured.attrs
        return {
            "lat": data.get("lat", attrs.get("latitude")),
            "lon": data.get("lon", attrs.get("longitude")),
            "elevation": data.get("elevation"),
        }

    def _column(self) -> P.PermafrostColumn:
        model = self.config["model"]
        if self.upper == "borehole":
            surface = P.Prescribed()
        elif self.upper == "lst":
            surface = P.SatelliteLST()
        elif self.config["forcing"]["surface"] == "nfactor":
            surface = P.NFactor()
        else:
            swe = "snow_depth" not in self.boundary and "snow_water_equivalent" in self.boundary
            if "snow_depth" not in self.boundary and not swe:
                raise ValueError("data.forcing: forcing.surface = 'snow' needs snow_depth or snow_water_equivalent")
            options = dict(
                conductivity=model["snow_conductivity"],
                min_depth=model["snow_min_depth"],
                n_cells=model["snow_cells"],
                driver="swe" if swe else "depth",
                density=None if swe and "snow_density" in self.boundary else model["snow_density"],
            )
            if self.station is not None and model.get("snow_heat_capacity") is None:
                options["heat_capacity"] = cgdata._gipl.GIPL_SNOW_HEAT_CAPACITY
            elif model.get("snow_heat_capacity") is not None:
                options["heat_capacity"] = model["snow_heat_capacity"]
            surface = P.Snow(**options)
        if model.get("layers") is None:
            if self.station is None:
                raise ValueError("model.layers: give the soil layers (only a GIPL2 folder brings its own)")
            if self.offset:
                raise ValueError(
                    f"forcing.upper_depth: a GIPL2 folder's own column starts at the ground, not at "
                    f"{self.offset:g} m; give model.layers"
                )
            column = cgdata.gipl_column(self.station, surface)
            flux = model.get("geothermal_flux", column.geothermal_flux)
            return column.replace(geothermal_flux=flux, **column_options(model))
        layers = [Layer(**layer).soil() for layer in model["layers"]]
        if self.offset:  # the column starts at the boundary sensor: its layers' tops below it
            above = [k for k in range(len(layers) - 1) if layers[k + 1].top <= self.offset]
            if above:
                raise ValueError(
                    f"model.layers: layer(s) {above} lie above the boundary sensor at {self.offset:g} m; leave them "
                    "out (and renumber the parameter paths layers.K)"
                )
            layers = [eqx.tree_at(lambda x: x.top, layer, max(layer.top - self.offset, 0.0)) for layer in layers]
        if layers[-1].top >= model["depth"]:
            raise ValueError(f"model.layers: the last layer's top {layers[-1].top} m lies below model.depth")
        return P.PermafrostColumn(
            grid=P.Grid.geometric(depth=model["depth"], n=model["cells"], dz_top=model["dz_top"]),
            layers=layers,
            freeze_curve=FreezeCurve(**model["freeze_curve"]).curve(),
            surface=surface,
            geothermal_flux=model.get("geothermal_flux", 0.053),
            **column_options(model),
        )

    def _initial(self) -> np.ndarray:
        """The first day's profile at the cell centres (a GIPL2 folder's own initial
        profile), extended below its deepest value as [initial] says, and spun up if asked."""
        spec = self.config["initial"]
        if self.station is not None:
            if self.times[0] != pd.Timestamp(self.station.time.values[0]):
                raise ValueError(
                    f"calibration.start {self.times[0].date()}: the run starts from the station's initial profile on "
                    f"its first forcing day, {str(self.station.time.values[0])[:10]}; start the calibration there"
                )
            profile = cgdata.gipl_initial_temperature(self.station)
            below = profile.depth.values >= self.offset if self.offset else slice(None)  # from the column's top
            depth, values = profile.depth.values[below] - self.offset, profile.values[below]
            what = "the station's initial profile"
        else:
            first = self.column_measured.sel(time=self.times[0])
            keep = np.isfinite(first.values) & (first.depth.values >= 0)
            depth, values = first.depth.values[keep], first.values[keep]
            if depth.size < 2:
                raise ValueError(
                    f"initial: the borehole has {depth.size} value(s) on {self.times[0].date()}, the run's first day; "
                    "start calibration on a day with a profile, or give initial.method = 'spinup' with "
                    "initial.deep_temperature"
                )
            what = f"the measured profile of {self.times[0].date()} ({depth.size} sensors)"
        if "deep_temperature" in spec:
            deep = spec["deep_temperature"]
            if deep == "calibration_mean":
                deepest = self.column_measured.sel(time=slice(*self.calibration)).isel(depth=-1)
                deep = float(deepest.mean())
                if not np.isfinite(deep):
                    raise ValueError(
                        "initial.deep_temperature = 'calibration_mean': the deepest sensor has no value in the "
                        "calibration period; give the temperature in degC"
                    )
            deep_depth = float(spec["deep_depth"]) - self.offset
            if deep_depth <= depth[-1]:
                raise ValueError(
                    f"initial.deep_depth {spec['deep_depth']} m must lie below the profile's deepest value, "
                    f"{depth[-1] + self.offset:g} m"
                )
            depth, values = np.append(depth, deep_depth), np.append(values, float(deep))
            self.note(
                f"initial: {what}; below {depth[-2] + self.offset:g} m linear to {deep:.2f} degC at "
                f"{spec['deep_depth']:g} m, held below"
            )
        else:
            self.note(f"initial: {what}; its deepest value held below {depth[-1] + self.offset:g} m")
        initial = np.interp(self.centres, depth, values)
        if spec["method"] == "spinup":
            days = 365 * spec["spinup_years"]
            if self.times.size < days:
                raise ValueError(f"initial.spinup_years: the run has {self.times.size} days, fewer than {days}")
            year = {k: jnp.asarray(v[:days]) for k, v in self.forcing.items()}
            try:
                initial, cycles = P.spin_up(
                    self.column,
                    year,
                    initial,
                    DAY,
                    tolerance=spec["spinup_tolerance"],
                    max_cycles=spec["spinup_max_cycles"],
                )
            except ValueError as error:
                raise ValueError(f"initial: the spin-up did not reach a periodic state ({error})") from None
            self.note(
                f"initial: spun up by repeating the first {spec['spinup_years']} year(s) of forcing {cycles} times "
                f"(mean profile within {spec['spinup_tolerance']} K between cycles)"
            )
            initial = np.asarray(initial)
        return initial

    def _observations(self, spec: dict) -> None:
        depths = self.column_measured.depth.values
        fitted = depths >= spec["min_depth"] - self.offset
        if spec.get("max_depth") is not None:
            fitted &= depths <= spec["max_depth"] - self.offset
        if self.upper_depth is not None:
            fitted &= depths > 0.0  # the boundary sensor and those above it
        if not fitted.any():
            raise ValueError("observations.ground_temperature: no sensor left between min_depth and max_depth")
        measured = self.column_measured.isel(depth=np.flatnonzero(fitted))
        self.observed_depths = measured.depth.values + self.offset
        common = dict(sigma=spec["sigma"], name="ground_temperature")
        cal_end = str(self.calibration[1].date())
        self.observation = A.ground_temperature(
            measured,
            self.times[: self.n_calibration],
            self.centres,
            end=cal_end,
            likelihood=spec["likelihood"],
            correlation_time=spec.get("correlation_time"),
            **common,
        )
        self.validation_operator = A.ground_temperature(
            measured,
            self.times,
            self.centres,
            start=str(self.validation[0].date()),
            end=str(self.validation[1].date()),
            **common,
        )
        self.calibration_operator = A.ground_temperature(measured, self.times, self.centres, end=cal_end, **common)
        self.alt_operators = {}
        if self.config["data"].get("active_layer"):
            self._active_layer(self.config["data"]["active_layer"], self.config["observations"]["active_layer"])

    def _active_layer(self, reference: str, spec: dict) -> None:
        """The yearly active-layer thickness of the years modelled whole inside each period:
        `alt_operators` over the whole run (metrics), `alt_observation` the calibration
        years' over the calibration run (the fit)."""
        alt = keyed("data.active_layer", cgdata.open_active_layer, data_path(reference), units=spec["units"])
        options = dict(sigma=spec["sigma"], name="active_layer_thickness")
        for period, (first, last) in (("calibration", self.calibration), ("validation", self.validation)):
            years = [int(y) for y in alt.year.values if first <= pd.Timestamp(int(y), 1, 1)]
            years = [y for y in years if pd.Timestamp(y, 12, 31) <= last and np.isfinite(float(alt.sel(year=y)))]
            if years:
                picked = alt.sel(year=years)
                self.alt_operators[period] = A.active_layer_thickness(
                    picked, self.times, self.column.grid.edges, **options
                )
                if period == "calibration":
                    self.alt_observation = A.active_layer_thickness(
                        picked, self.times[: self.n_calibration], self.column.grid.edges, **options
                    )
        if self.offset:
            raise ValueError(
                "data.active_layer: thaw depths are below the ground; the column starts at the boundary sensor "
                f"({self.offset:g} m); use forcing.upper_depth = 0"
            )
        if "calibration" not in self.alt_operators:
            raise ValueError(
                f"data.active_layer: no year of {data_path(reference).name} lies whole inside the calibration period "
                f"{self.calibration[0].date()} to {self.calibration[1].date()}"
            )

    def outputs(self, column) -> dict:
        """Temperature [degC] and liquid water fraction [1] (time, cell) over the whole run."""
        return {k: np.asarray(v) for k, v in _outputs(column, self.forcing, self.initial).items()}

    def forward(self, column, inputs):
        return column.run(inputs["forcing"], inputs["initial"], DAY, adjoint=diffrax.ForwardMode())

    def problem(self) -> A.Problem:
        forcing = {k: v[: self.n_calibration] for k, v in self.forcing.items()}
        observations = [self.observation, *([self.alt_observation] if self.alt_operators else [])]
        return A.Problem(
            self.column, self.forward, self.parameters, observations, dict(forcing=forcing, initial=self.initial)
        )

    def reference_run(self) -> np.ndarray | None:
        """A GIPL2 folder's own parameters in GIPL2's set-up (snow from 1 cm, the air
        temperature on bare ground, the initial profile's deepest value held below it);
        None for other boreholes."""
        if self.station is None or self.upper != "air" or self.config["data"].get("forcing"):
            return None
        initial = cgdata.gipl_initial_temperature(self.station)
        column = cgdata.gipl_column(self.station).replace(**column_options(self.config["model"]))
        initial = jnp.asarray(np.interp(self.centres, initial.depth.values, initial.values))
        variables = column.surface.forcing_variables
        from ..physics._xarray import forcing_arrays

        forcing, _ = forcing_arrays(self.boundary[list(variables)], variables, DAY)
        return np.asarray(_outputs(column, forcing, initial)["temperature"])

    def full_run(self, column) -> np.ndarray:
        """Temperature (time, cell) [degC] over the whole run."""
        return self.outputs(column)["temperature"]

    def at_sensors(self, run) -> np.ndarray:
        """A run (time, cell) [degC] at the borehole's sensor depths (time, depth); above the
        top cell's centre from the prescribed boundary value at the top (upper = 'borehole')."""
        depths, run = self.column_measured.depth.values, np.asarray(run)
        if self.upper != "borehole":
            return P.interpolate_depths(run, self.centres, depths, hold_below=True)
        top = np.asarray(self.forcing["surface_temperature"])[:, None]
        return P.interpolate_depths(np.hstack([top, run]), np.r_[0.0, self.centres], depths, hold_below=True)


@eqx.filter_jit
def _outputs(column, forcing, initial):
    """Temperature [degC] and liquid water fraction [1] (time, cell) of a daily run (compiled
    once per column structure)."""
    out = column.run(forcing, initial, DAY)
    return dict(temperature=out["temperature"], liquid_water_fraction=out["liquid_water_fraction"])


def _label_depths(operator: A.GroundTemperature) -> np.ndarray:
    """The sensor depth [m] of each of the operator's values (its labels read 'DATE@DEPTHm')."""
    return np.array([float(label.split("@")[1].removesuffix("m")) for label in operator.labels])


def depth_metrics(operator: A.GroundTemperature, temperature, offset: float = 0.0) -> dict:
    """Metrics of a (time, cell) run against all of `operator`'s measurements, per sensor
    depth (keys: depths below the ground [m], the column's plus `offset`) and the mean
    MAE over depths."""
    predicted = np.asarray(operator.predict(dict(temperature=jnp.asarray(temperature)), None))
    observed = np.asarray(operator.values)
    depths = _label_depths(operator)
    table = {
        f"{d + offset:g}": report.metrics(predicted[depths == d], observed[depths == d]) for d in np.unique(depths)
    }
    return dict(
        **report.metrics(predicted, observed),
        mean_mae_over_depths=float(np.mean([m["mae"] for m in table.values()])),
        by_depth=table,
    )


def predictive_band(experiment, fitted, runs, seed: int):
    """The 5-95 % predictive band of the daily temperatures at the sensors and its coverage.

    Parameters: `runs` (draw, time, cell) [degC], the Laplace draws' runs over the whole
    record. Error: for each depth, the RMS of the calibrated run's (`fitted`, (time, cell)
    [degC] over the whole record) calibration residuals (the model-data mismatch the fit
    left, bias included), drawn Gaussian and independent of the parameters. Returns
    ((lower, upper) (time, depth) [degC], coverage dict) where coverage is the share of the
    validation period's measurements inside the band, with and without the error term."""
    depths = experiment.column_measured.depth.values
    calibration = experiment.calibration_operator
    residual = np.asarray(calibration.predict(dict(temperature=jnp.asarray(fitted)), None)) - np.asarray(
        calibration.values
    )
    at = _label_depths(calibration)
    error = {float(d): float(np.sqrt(np.mean(residual[at == d] ** 2))) for d in np.unique(at)}
    at_sensors = np.stack([experiment.at_sensors(run) for run in runs])
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
        error_std_by_depth_K={f"{d + experiment.offset:g}": round(v, 4) for d, v in error.items()},
        note="Laplace draws of the parameters, each run over the record; plus, per depth, Gaussian error with the "
        "RMS of the calibration residuals",
    )
    return (lower, upper), coverage


def project(experiment, models: list, ends: list, spec: dict) -> dict:
    """Active-layer thickness (model, year) [m] and MAGT (model, year, depth) [degC] of each
    model (the calibrated one first, then the Laplace draws), each run on from its own
    state at the record's last day (`ends`: temperature (cell,) [degC]) through the
    record's whole years repeated with the warming (`cg.physics.repeated_forcing`), and
    again without it (the control: what the column does in the record's climate, its drift
    from a state that was not spun up included). All runs go in one batched call
    (`cg.physics.yearly_runs`)."""
    years, n = int(spec["years"]), len(models)
    forcing, warming = P.repeated_forcing(experiment.forcing, years, spec["warming_per_decade"])
    control, _ = P.repeated_forcing(experiment.forcing, years)
    series = {k: np.stack([forcing[k]] * n + [control[k]] * n) for k in forcing}
    runs = P.yearly_runs(models * 2, series, np.stack([*ends, *ends]), years, DAY)
    thaw, depths = runs["max_thaw_depth"], np.asarray(spec["magt_depths"], dtype=float)
    magt = P.interpolate_depths(
        runs["mean_temperature"], experiment.centres, depths - experiment.offset, hold_below=True
    )
    return dict(
        alt=thaw[:n],
        magt=magt[:n],
        control_alt=thaw[n:],
        control_magt=magt[n:],
        depths=depths,
        warming=warming.reshape(years, P.YEAR_DAYS).mean(axis=1),
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
    """Fit, validate, and write summary.json, result.nc and figures to `out` (`pipeline.run`)."""
    return pipeline.run(SiteExperiment, resolve(config), out, progress)


def _uncertainty(experiment, problem, result, progress):
    report.stage(progress, "uncertainty: Laplace approximation (Gauss-Newton Hessian)")
    try:
        return A.laplace(problem, result.u, hessian="gauss_newton"), None
    except ValueError as error:
        experiment.note(f"uncertainty: no Laplace posterior ({error})")
        return None, None


def _evaluate(experiment, problem, result, posterior, samples, out, progress) -> pipeline.Outcome:
    """The whole-record runs (calibrated, start values, a GIPL2 folder's own set-up), the
    metrics, the predictive band of the Laplace draws and the projection."""
    config, seed = experiment.config, int(experiment.config["experiment"]["seed"])
    report.stage(progress, "whole-record runs: calibrated and start values (and the station's own parameters)")
    outputs = dict(
        fitted=experiment.outputs(result.model()), start=experiment.outputs(problem.fitted_model(problem.u0))
    )
    runs = {name: out["temperature"] for name, out in outputs.items()}
    reference = experiment.reference_run()
    if reference is not None:
        runs["reference"] = reference

    def period_metrics(run, outputs=None):
        """Ground-temperature metrics of `run`, and active-layer ones from its `outputs`."""
        metrics = {
            period: {"ground_temperature": depth_metrics(operator, run, experiment.offset)}
            for period, operator in (
                ("calibration", experiment.calibration_operator),
                ("validation", experiment.validation_operator),
            )
        }
        for period, operator in experiment.alt_operators.items() if outputs is not None else ():
            predicted = np.asarray(operator.predict(outputs, None))
            metrics[period]["active_layer_thickness"] = report.metrics(predicted, np.asarray(operator.values))
        return metrics

    band, coverage, draw_models, draw_runs = None, None, [], []
    draws = config["uncertainty"]["draws"]
    if posterior is not None and draws > 1:
        report.stage(progress, f"predictive band: {draws} Laplace draws over the whole record")
        draw_models = [problem.fitted_model(u) for u in A.parameter_draws(problem, posterior, draws, seed + 1)]
        draw_runs = np.stack([experiment.full_run(m) for m in draw_models])  # compiled once already
        band, coverage = predictive_band(experiment, runs["fitted"], draw_runs, seed)
    projected = None
    if config.get("projection"):
        spec = config["projection"]
        report.stage(progress, f"projection: {spec['years']} years, {1 + len(draw_models)} runs")
        projected = project(
            experiment, [result.model(), *draw_models], [runs["fitted"][-1], *(r[-1] for r in draw_runs)], spec
        )

    metrics = period_metrics(runs["fitted"], outputs["fitted"])
    metrics["start"] = period_metrics(runs["start"], outputs["start"])
    if reference is not None:
        metrics["reference"] = period_metrics(reference)
        metrics["reference"]["note"] = (
            "the station's own parameters in GIPL2's set-up: snow from 1 cm, air temperature on snow-free ground, "
            "initial profile's deepest value held below it"
        )
    dataset = _result_dataset(experiment, runs, posterior, result)
    if band is not None:
        for name, values, text in (("temperature_p05", band[0], "5"), ("temperature_p95", band[1], "95")):
            quantile = f"{text} % predictive quantile (parameters and residual error)"
            report.put(dataset, ("time", "depth"), **{name: (values, "degC", quantile)})
    if projected is not None:
        dataset = projection_variables(dataset, projected)

    def figures(out):
        _figures(out, experiment, dataset, posterior, result, metrics)
        if projected is not None:
            _projection_figure(out, experiment, dataset)

    summary = dict(
        periods=dict(
            calibration=[str(d.date()) for d in experiment.calibration],
            validation=[str(d.date()) for d in experiment.validation],
        ),
        predictive_coverage=coverage,
        projection=None if projected is None else projection_summary(config["projection"], dataset),
    )
    return pipeline.Outcome(metrics, dataset, figures, summary)


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
    """Measured and modelled daily temperatures at the sensors, per-year active layer and
    MAGT, the posterior and the loss history."""
    measured = experiment.measured.reindex(time=experiment.times)
    ds = xr.Dataset(
        coords=dict(
            time=("time", experiment.times),
            depth=("depth", measured.depth.values, dict(units="m", long_name="sensor depth", positive="down")),
        )
    )
    daily = "measured ground temperature, daily mean"
    report.put(ds, ("time", "depth"), measured_temperature=(measured.values, "degC", daily))
    texts = dict(
        fitted=("temperature", "calibrated parameters"),
        start=("temperature_start", "the fit's start values"),
        reference=("temperature_reference", "the station's own parameters (GIPL2 set-up)"),
    )
    for key, run in runs.items():
        name, text = texts[key]
        modelled = (experiment.at_sensors(run), "degC", f"modelled ground temperature, {text}")
        report.put(ds, ("time", "depth"), **{name: modelled})
    fitted = np.isin(measured.depth.values, experiment.observed_depths).astype(np.int8)
    which = "sensor fitted (1) or not (0: the boundary sensor, or outside min/max_depth)"
    report.put(ds, "depth", fitted=(fitted, "1", which))
    calibration = np.arange(experiment.times.size) < experiment.n_calibration
    report.put(ds, "time", calibration=(calibration, None, "day belongs to the calibration period"))
    ds = _yearly(ds)
    if posterior is not None:
        ds = report.posterior_variables(ds, posterior, {p.name: p.units for p in experiment.parameters})
    return report.loss_variable(ds, result)


def _yearly(ds: xr.Dataset) -> xr.Dataset:
    """Per calendar year of the run, measured and calibrated: the thaw depth of the
    maximum-temperature envelope and the mean temperature at each sensor where it has
    values on 330 days of the year (`cg.physics.yearly_sensor_statistics`); `run_days`
    says how many of the year's days are in the run, so a year cut short is seen."""
    for source, variable in (("measured", "measured_temperature"), ("modelled", "temperature")):
        yearly = P.yearly_sensor_statistics(ds[variable])
        for name in ("active_layer_thickness", "mean_annual_ground_temperature"):
            attrs = yearly[name].attrs
            ds[f"{name}_{source}"] = yearly[name].assign_attrs(long_name=f"{attrs['long_name']}, {source}")
    ds["run_days"] = yearly.days.assign_attrs(long_name="days of the year in the run")
    return ds


def _figures(out, experiment, ds, posterior, result, metrics) -> None:
    plt = report.pyplot()
    name = experiment.config["experiment"]["name"]
    boundary = experiment.boundary
    fitted = experiment.observed_depths
    shown = fitted[np.unique(np.linspace(0, fitted.size - 1, min(4, fitted.size)).round().astype(int))]
    figure, axes = plt.subplots(len(shown) + 1, 1, figsize=(10, 3 + 2.3 * len(shown)), sharex=True)
    if "land_surface_temperature" in boundary:
        axes[0].plot(boundary.time, boundary.land_surface_temperature, color="0.5", lw=0.8)
        axes[0].set_ylabel("LST [°C]")
        axes[0].plot([], [], color="0.5", lw=0.8, label="upper boundary: gap-filled clear-sky LST (+ offset)")
    elif "surface_temperature" in boundary:
        axes[0].plot(boundary.time, boundary.surface_temperature, color="0.5", lw=0.8)
        axes[0].set_ylabel(f"T at {experiment.upper_depth:g} m [°C]")
        axes[0].plot([], [], color="0.5", lw=0.8, label="upper boundary: the measured sensor")
    else:
        axes[0].plot(boundary.time, boundary.air_temperature, color="0.5", lw=0.8, label="air temperature")
        axes[0].set_ylabel("air T [°C]")
        snow = "snow_depth" if "snow_depth" in boundary else "snow_water_equivalent"
        if snow in boundary:
            twin = axes[0].twinx()
            twin.fill_between(boundary.time, boundary[snow], color="tab:blue", alpha=0.3)
            twin.set_ylabel(f"{snow.replace('_', ' ')} [m]")
            axes[0].fill_between([], [], color="tab:blue", alpha=0.3, label=f"{snow.replace('_', ' ')} (right axis)")
    split = experiment.times[experiment.n_calibration - 1]
    for axis, depth in zip(axes[1:], shown, strict=True):
        row = ds.sel(depth=depth)
        axis.plot(ds.time, row.measured_temperature, color="k", lw=1, label="measured")
        if "temperature_reference" in ds:
            axis.plot(
                ds.time,
                row.temperature_reference,
                color="0.55",
                lw=0.9,
                ls="--",
                label="station parameters (GIPL2 set-up)",
            )
        axis.plot(ds.time, row.temperature_start, color="tab:blue", lw=0.8, ls=":", label="start values")
        axis.plot(ds.time, row.temperature, color="tab:red", lw=1, label="calibrated")
        axis.set_ylabel(f"T at {float(row.depth):g} m [°C]")
        axis.grid(alpha=0.3)
    for axis in axes:
        axis.axvline(split, color="tab:green", lw=1)
    axes[0].legend(loc="lower left", ncol=2)
    axes[1].legend(loc="lower left", ncol=3)
    axes[0].set_title(f"{name}: calibration until {split.date()} (green line), validation after")
    report.save(figure, out / "ground_temperature.png", dpi=110)

    figure, axis = plt.subplots(figsize=(6, 6))
    for period, style in (("calibration", "-"), ("validation", "-")):
        other = ("station parameters", "reference") if "reference" in metrics else ("start values", "start")
        for label, source, color in (
            ("calibrated", metrics[period], "tab:red" if period == "validation" else "tab:orange"),
            (other[0], metrics[other[1]][period], "0.3" if period == "validation" else "0.65"),
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
    report.save(figure, out / "error_by_depth.png")

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
    periods side by side (each depth over the days it was measured)."""
    plt = report.pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 6), sharey=True)
    for axis, (period, mask) in zip(
        axes, (("calibration", ds.calibration), ("validation", ~ds.calibration)), strict=True
    ):
        days = ds.isel(time=np.flatnonzero(mask.values & ds.measured_temperature.notnull().any("depth").values))
        if days.sizes["time"] == 0:
            continue
        for label, variable, style in (r for r in RUNS if r[1] in ds):
            t = days[variable].where(days.measured_temperature.notnull())
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
    report.save(figure, path)


def _active_layer_figure(path, name, ds) -> None:
    """Thaw depth of each calendar year from the maximum-temperature envelope, measured
    and modelled alike (a year cut short by the record is labelled with its last day)."""
    plt = report.pyplot()
    years = np.unique(ds.time.dt.year.values)
    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    runs = [r for r in RUNS if r[1] in ds]
    width = 0.8 / len(runs)
    for k, (label, variable, style) in enumerate(runs):
        values = P.yearly_sensor_statistics(ds[variable]).active_layer_thickness
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
    report.save(figure, path)


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
    report.save(figure, out / "projection.png", dpi=110)
