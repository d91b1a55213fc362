"""`cryograd run` for a synthetic permafrost region: equilibrium and transient ground
temperatures of many cells, chunk by chunk, each chunk written to disk as it finishes.

The region is a grid of `rows` x (`cells` / `rows`) cells. Mean annual air temperature
runs linearly from the southern to the northern row, the annual amplitude and the
precipitation from the western to the eastern column (a continentality gradient), and
each cell's mean air temperature has a random offset (`jitter` [K], from the seed).
Every cell gets its own daily weather and snow (`cg.data.synthetic_permafrost_forcing`).

For each cell:

- equilibrium: the Kudryavtsev model (`cg.physics.Kudryavtsev`) with the soil of one
  layer of the column, from the mean air temperature, the amplitude and the mean snow
  depth of the snow season: TTOP and the active-layer thickness;
- transient: the soil column with a snowpack (`PermafrostColumn` with `Snow`) through
  the daily forcing, started from TTOP at the surface warming downwards by
  `initial_gradient`, giving per year the active-layer thickness, MAGT at `magt_depths`,
  the zero-annual-amplitude depth and talik flags.

Chunks run with `cg.run_chunked`: in this process (`run.workers = 0`, two chunks at once
in threads, `IN_FLIGHT`) or on a Dask
`LocalCluster` of `run.workers` single-threaded worker processes on 127.0.0.1. A rerun
into the same folder skips the chunks already written. The weather of a chunk is drawn
from the seed and the chunk's first cell, so a region is reproduced by the same config
(with the same `chunk_size`), whichever the number of workers.
"""

import contextlib
import functools
import time
from pathlib import Path
from typing import Annotated

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pydantic
import xarray as xr
from pydantic import AfterValidator

from .. import data as cgdata, physics as P
from .._chunked import run_chunked
from ..physics import _diagnostics as diagnostics
from . import pipeline, report, typed
from .config import snow_column
from .typed import Config, Field, Section

DAY = 86400.0
XLA_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
IN_FLIGHT = 2
"""Chunks at once in this process (`run.workers = 0`): one's weather, Kudryavtsev model and
file are made while another's column runs in the kernel (the same results; on 2 cores the
40 chunks of the shipped region took 20.5-21.3 s instead of 22.8-23.3 s)."""


Experiment = typed.experiment(
    "permafrost_region", seed="seed of every random draw (each chunk's weather, the cells' offsets)"
)


def _pair(value: list[float]) -> list[float]:
    if len(value) != 2:
        raise ValueError(f"give [first, last], two numbers, got {value!r}")
    return value


def _pair_not_negative(value: list[float]) -> list[float]:
    if min(_pair(value)) < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


class Region(Section):
    cells: int = Field(ge=1, description="number of cells")
    rows: int = Field(1, ge=1, description="grid rows; must divide `cells`")
    mean_air_temperature: Annotated[list[float], AfterValidator(_pair)] = Field(
        description="[south, north] [degC]: mean annual air temperature of the southern and northern rows, "
        "linear between"
    )
    amplitude: Annotated[list[float], AfterValidator(_pair_not_negative)] = Field(
        description="[west, east] [K]: half the annual range of air temperature"
    )
    precipitation: Annotated[list[float], AfterValidator(_pair_not_negative)] = Field(
        description="[west, east] [m water yr-1]: annual precipitation (snow below 0 degC)"
    )
    jitter: float = Field(
        0.0, description="[K] standard deviation of each cell's random offset of the mean air temperature"
    )

    @pydantic.model_validator(mode="after")
    def _rows_divide_cells(self):
        if self.cells % self.rows:
            raise ValueError(f"region.rows: must divide region.cells = {self.cells} (the grid is rows x cells/rows)")
        return self


class Forcing(Section):
    start: typed.Date = Field(description="first day of the daily forcing (a date)")
    years: int = Field(ge=1, description="years of daily forcing: the transient run")
    anomaly_std: float = Field(3.5, description="[K] stationary std of the day-to-day AR(1) weather anomaly")
    anomaly_days: float = Field(3.0, gt=0, description="[day] e-folding time of the AR(1) anomaly")
    wet_day_fraction: float = Field(0.35, gt=0, le=1, description="[1] share of days with precipitation")
    melt_factor: float = Field(0.004, ge=0, description="[m water K-1 day-1] degree-day snowmelt of the synthetic snow")


class Model(typed.SnowColumn):
    depth: float = Field(20.0, gt=0, description="[m] depth of the column's geometric grid")
    cells: int = Field(30, ge=2, description="cells of the grid")
    dz_top: float = Field(0.05, gt=0, description="[m] thickness of the top cell")
    snow_density: float = Field(
        250.0, gt=0, description="[kg m-3] the `Snow` surface's (and Kudryavtsev's) snow density"
    )
    initial_gradient: float = Field(
        0.02, description="[K m-1] the start profile: TTOP at the surface, warming downwards by this"
    )
    magt_depths: list[float] = Field(
        [0.0, 1.0, 2.0, 5.0, 10.0], description="[m] depths of the mean annual ground temperature"
    )


class Equilibrium(Section):
    layer: int = Field(0, description="the layer whose soil the Kudryavtsev model takes")


class Run(Section):
    chunk_size: int = Field(250, ge=1, description="cells per jitted, vmapped call and per file")
    workers: int = Field(
        0, description="0: the chunks run in this process; N: on a LocalCluster of N single-threaded worker processes"
    )

    @pydantic.field_validator("workers")
    @classmethod
    def _workers(cls, value: int) -> int:
        if value < 0:
            raise ValueError("0 (this process) or the number of Dask worker processes")
        return value


class RegionConfig(Config):
    """A `permafrost_region` experiment."""

    experiment: Experiment
    region: Region
    forcing: Forcing
    model: Model
    equilibrium: Equilibrium = Equilibrium()
    run: Run = Run()

    @pydantic.model_validator(mode="after")
    def _layer_exists(self):
        n = len(self.model.layers)
        if not 0 <= self.equilibrium.layer < n:
            raise ValueError(f"equilibrium.layer: {self.equilibrium.layer} is not a layer index (0-{n - 1})")
        return self


MODEL = RegionConfig
"""The kind's typed config (its keys, types, defaults and meanings; docs/experiments/permafrost_region.md
is tested against it)."""


def validate(config: dict) -> list[str]:
    """Every problem of a regional permafrost config, without running."""
    return typed.problems(RegionConfig, config)[1]


def resolve(config: dict) -> dict:
    """The config with every default filled in (refused with every problem if it has any)."""
    return typed.resolve(RegionConfig, config)


def cells(config: dict) -> xr.Dataset:
    """The region's cells: position and climate, over dimension `cell`."""
    region = config["region"]
    n, rows = region["cells"], region.get("rows", 1)
    columns = n // rows
    row, column = np.divmod(np.arange(n), columns)
    north = row / max(rows - 1, 1)  # 0 in the southern row, 1 in the northern
    east = column / max(columns - 1, 1)

    def across(key, position):
        first, last = region[key]
        return first + (last - first) * position

    seed = int(config.get("experiment", {}).get("seed", 0))
    jitter = np.random.default_rng([seed, 1]).normal(0.0, region.get("jitter", 0.0), n)
    return xr.Dataset(
        dict(
            row=("cell", row),
            column=("cell", column),
            mean_air_temperature=("cell", across("mean_air_temperature", north) + jitter, dict(units="degC")),
            amplitude=("cell", across("amplitude", east), dict(units="K")),
            precipitation=("cell", across("precipitation", 1.0 - east), dict(units="m yr-1")),
        ),
        coords=dict(cell=np.arange(n)),
    )


def column(config: dict) -> P.PermafrostColumn:
    """The soil column with its snowpack (the same in every cell)."""
    return snow_column(config["model"], depth=20.0, cells=30, dz_top=0.05)


def equilibrium_model(config: dict) -> P.Kudryavtsev:
    """The Kudryavtsev model with the soil of layer `equilibrium.layer` of the column."""
    model = config["model"]
    layer = model["layers"][config.get("equilibrium", {}).get("layer", 0)]
    return P.Kudryavtsev(
        k_thawed=layer["k_thawed"],
        k_frozen=layer["k_frozen"],
        c_thawed=layer["c_thawed"],
        c_frozen=layer["c_frozen"],
        water_content=layer["water_content"],
        snow_density=model.get("snow_density", 250.0),
    )


@eqx.filter_jit
def _equilibrium(model, air_temperature, amplitude, snow_depth):
    """The Kudryavtsev model of every cell of a chunk (one compiled call)."""
    return model(air_temperature, amplitude, snow_depth)


@eqx.filter_jit
def _transient(column, forcing, initial, year, n_years):
    """Every cell's annual statistics (one jitted, vmapped call per chunk; with the native
    solver taken in the kernel as it steps, no daily field kept)."""

    def one(cell_forcing, cell_initial):
        out = column.summarize(cell_forcing, cell_initial, DAY, year, n_years)  # raises if a step does not converge
        return dict(
            active_layer_thickness=out["max_thaw_depth"],
            mean=out["mean_temperature"],
            max=out["max_temperature"],
            min=out["min_temperature"],
        )

    return jax.vmap(one)(forcing, initial)


def run_cells(chunk: xr.Dataset, *, config: dict) -> xr.Dataset:
    """Equilibrium and transient results of the cells of `chunk` (a slice of `cells(config)`)."""
    forcing_config = config["forcing"]
    model = config["model"]
    seed = int(config.get("experiment", {}).get("seed", 0))
    first = int(chunk.cell.values[0])
    key = jax.random.fold_in(jax.random.key(seed), first)
    optional = ("anomaly_std", "anomaly_days", "wet_day_fraction", "melt_factor")
    forcing = cgdata.synthetic_permafrost_forcing(
        key,
        forcing_config["start"],
        forcing_config["years"],
        mean_air_temperature=chunk.mean_air_temperature.values,
        amplitude=chunk.amplitude.values,
        precipitation=chunk.precipitation.values,
        snow_density=model.get("snow_density", 250.0),
        **{k: forcing_config[k] for k in optional if k in forcing_config},
    )
    snow = forcing.snow_depth.values  # (cell, day) [m]
    snowy = snow > 0
    winter_snow = np.where(snowy.any(axis=1), (snow * snowy).sum(axis=1) / np.maximum(snowy.sum(axis=1), 1), 0.0)
    equilibrium = _equilibrium(
        equilibrium_model(config), chunk.mean_air_temperature.values, chunk.amplitude.values, winter_snow
    )
    ttop = np.asarray(equilibrium["permafrost_temperature"])

    soil = column(config)
    centres = np.asarray(soil.grid.centres)
    initial = ttop[:, None] + model.get("initial_gradient", 0.02) * centres[None, :]
    times = pd.DatetimeIndex(forcing.time.values)
    years = np.unique(times.year)
    year = jnp.asarray(np.searchsorted(years, times.year))
    arrays = {k: jnp.asarray(forcing[k].values) for k in soil.surface.forcing_variables}
    stats = _transient(soil, arrays, jnp.asarray(initial), year, int(years.size))
    stats = {k: np.asarray(v) for k, v in stats.items()}

    magt_depths = np.asarray(model.get("magt_depths", [0.0, 1.0, 2.0, 5.0, 10.0]), dtype=float)
    magt = diagnostics.interpolate_depths(stats["mean"], centres, magt_depths)
    zaa = diagnostics.zero_annual_amplitude_depth(stats["max"], stats["min"], centres)
    talik = diagnostics.talik(stats["min"])
    out = xr.Dataset(
        coords=dict(
            cell=chunk.cell.values,
            year=years,
            magt_depth=("magt_depth", magt_depths, dict(units="m", long_name="depth of MAGT")),
        )
    )
    out["row"] = ("cell", chunk.row.values)
    out["column"] = ("cell", chunk.column.values)
    for name in ("mean_air_temperature", "amplitude", "precipitation"):
        out[name] = chunk[name]
    out["winter_snow_depth"] = ("cell", winter_snow, dict(units="m", long_name="mean snow depth on snow days"))
    long = dict(
        ground_surface_temperature="mean annual ground surface temperature (Kudryavtsev)",
        permafrost_temperature="temperature at the top of permafrost, TTOP (Kudryavtsev)",
        active_layer_thickness="active-layer thickness (Kudryavtsev; seasonal freezing depth where TTOP > 0)",
    )
    for name, text in long.items():
        units = "m" if name == "active_layer_thickness" else "degC"
        out[f"equilibrium_{name}"] = ("cell", np.asarray(equilibrium[name]), dict(units=units, long_name=text))
    out["active_layer_thickness"] = (
        ("cell", "year"),
        stats["active_layer_thickness"],
        dict(units="m", long_name="active-layer thickness (maximum thaw depth of the year), transient"),
    )
    out["mean_annual_ground_temperature"] = (
        ("cell", "year", "magt_depth"),
        magt,
        dict(units="degC", long_name="mean annual ground temperature, transient"),
    )
    out["zero_annual_amplitude_depth"] = (
        ("cell", "year"),
        zaa,
        dict(units="m", long_name="depth where the annual temperature range falls below 0.1 K"),
    )
    out["talik"] = (("cell", "year"), talik, dict(units="1", long_name="talik below the seasonally frozen layer"))
    return out


def run(config: dict, out: Path, progress: bool = True) -> dict:
    """Run every cell, chunk by chunk into `out/cells/`, and write result.nc, summary.json
    and figures to `out` (`pipeline.run`: a forward run, nothing fitted)."""
    return pipeline.run(RegionRun, resolve(config), out, progress)


class RegionRun(pipeline.Experiment):
    """The cells of a permafrost_region config, run chunk by chunk (no fit)."""

    parameters = ()

    def setup(self, progress):
        return None

    def evaluate(self, problem, result, posterior, samples, out, progress) -> pipeline.Outcome:
        return _evaluate(self.config, out, progress)


def _evaluate(config: dict, out: Path, progress: bool) -> pipeline.Outcome:
    """Every chunk of cells (kept in `out/cells/` as each is done; an interrupted run keeps
    them), the region's statistics and its figures."""
    region = cells(config)
    settings = config.get("run", {})
    workers = settings.get("workers", 0)
    chunk_size = settings.get("chunk_size", 250)
    function = functools.partial(run_cells, config=config)
    store = out / "cells"
    if store.exists() and (store / "manifest.json").exists():
        done = len(list(store.glob("part-*.nc")))
        report.stage(progress, f"{store}: {done} chunks already written are kept")
    tick = time.perf_counter()
    if workers:
        with _cluster(workers) as client:
            started_cluster = time.perf_counter() - tick
            tick = time.perf_counter()
            result = run_chunked(
                function, region, store, dim="cell", chunk_size=chunk_size, client=client, progress=progress
            )
    else:
        started_cluster = 0.0
        result = run_chunked(
            function, region, store, dim="cell", chunk_size=chunk_size, threads=IN_FLIGHT, progress=progress
        )
    chunk_time = time.perf_counter() - tick
    seconds = np.asarray(result.attrs.pop("cryograd_chunk_seconds"))
    last = result.isel(year=-1)
    permafrost, transient_permafrost = _permafrost(result)
    both = permafrost & transient_permafrost
    difference = (last.active_layer_thickness.values - result.equilibrium_active_layer_thickness.values)[both]
    summary = dict(
        region=dict(
            cells=int(result.sizes["cell"]),
            rows=int(config["region"].get("rows", 1)),
            years=[int(result.year.values[0]), int(result.year.values[-1])],
            column_years=int(result.sizes["cell"] * result.sizes["year"]),
        ),
        equilibrium=dict(
            permafrost_fraction=float(permafrost.mean()),
            active_layer_thickness_median_m=_median(result.equilibrium_active_layer_thickness.values[permafrost]),
        ),
        transient=dict(
            permafrost_fraction_last_year=float(transient_permafrost.mean()),
            active_layer_thickness_median_m=_median(last.active_layer_thickness.values[transient_permafrost]),
            talik_fraction_last_year=float(last.talik.values.mean()),
            last_year_minus_equilibrium_alt_m=dict(
                cells=int(both.sum()),
                median=_median(difference),
                mad=_median(np.abs(difference - np.median(difference))) if difference.size else None,
            ),
        ),
        execution=dict(
            workers=workers,
            threads_per_worker=1 if workers else None,
            chunk_size=chunk_size,
            chunks=int(seconds.size),
            cluster_start_s=round(started_cluster, 2),
            chunks_wall_time_s=round(chunk_time, 2),
            column_years_per_s=round(result.sizes["cell"] * result.sizes["year"] / chunk_time, 1),
            chunk_seconds=dict(
                total=round(float(np.nansum(seconds)), 2),
                median=round(float(np.nanmedian(seconds)), 3),
                largest=round(float(np.nanmax(seconds)), 3),
                note="seconds of each chunk's computation where it ran (the largest includes compilation)",
            ),
            store=str(store),
        ),
    )
    titled = summary | dict(experiment=config["experiment"]["name"])
    return pipeline.Outcome({}, result, lambda out: _figures(out, result, titled), summary)


def _median(values):
    return float(np.median(values)) if np.size(values) else None


def _permafrost(result: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Cells with permafrost (cell,): in equilibrium (TTOP < 0), and in the transient run's
    last year (no talik, MAGT < 0 at the deepest MAGT depth)."""
    last = result.isel(year=-1)
    deepest = last.mean_annual_ground_temperature.sel(magt_depth=last.magt_depth.values.max())
    return result.equilibrium_permafrost_temperature.values < 0, ~last.talik.values & (deepest.values < 0)


@contextlib.contextmanager
def _cluster(workers: int):
    """A `dask.distributed` client on a LocalCluster of `workers` single-threaded worker
    processes on the loopback interface (XLA single-threaded inside each)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            env={"XLA_FLAGS": XLA_SINGLE_THREAD, "OMP_NUM_THREADS": "1", "CRYOGRAD_NATIVE_THREADS": "1"},
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _figures(out: Path, result: xr.Dataset, summary: dict) -> None:
    plt = report.pyplot()
    name = summary["experiment"]
    rows, columns = summary["region"]["rows"], result.sizes["cell"] // summary["region"]["rows"]

    def grid(values):
        return np.asarray(values).reshape(rows, columns)

    last = result.isel(year=-1)
    year = int(result.year.values[-1])
    panels = [
        (result.mean_air_temperature, "mean air temperature [degC]", "coolwarm", None),
        (result.equilibrium_permafrost_temperature, "TTOP, equilibrium [degC]", "coolwarm", None),
        (result.equilibrium_active_layer_thickness, "active layer, equilibrium [m]", "viridis", (0, 3)),
        (
            last.mean_annual_ground_temperature.sel(magt_depth=last.magt_depth.values.max()),
            f"MAGT at {last.magt_depth.values.max():g} m, {year} [degC]",
            "coolwarm",
            None,
        ),
        (last.active_layer_thickness, f"active layer, transient {year} [m]", "viridis", (0, 3)),
    ]
    figure, axes = plt.subplots(2, 3, figsize=(14, 8.5))
    for axis, (values, label, cmap, limits) in zip(axes.flat, panels, strict=False):
        data = grid(values)
        kwargs = dict(cmap=cmap, origin="lower", aspect="auto")
        if cmap == "coolwarm":
            bound = np.nanmax(np.abs(data))
            kwargs.update(vmin=-bound, vmax=bound)
        elif limits:
            kwargs.update(vmin=limits[0], vmax=limits[1])
        image = axis.imshow(data, **kwargs)
        figure.colorbar(image, ax=axis, label=label)
        axis.set_title(label)
        axis.set_xlabel("grid column (west to east)")
        axis.set_ylabel("grid row (south to north)")
    axis = axes.flat[5]
    permafrost, transient_permafrost = _permafrost(result)
    both = permafrost & transient_permafrost
    equilibrium = result.equilibrium_active_layer_thickness.values[both]
    transient = last.active_layer_thickness.values[both]
    axis.scatter(equilibrium, transient, s=3, alpha=0.4, color="tab:blue", label=f"{both.sum()} cells")
    top = float(max(equilibrium.max(), transient.max())) if both.any() else 1.0
    axis.plot([0, top], [0, top], color="k", lw=0.8, label="1:1")
    axis.set_xlabel("active layer, equilibrium (Kudryavtsev) [m]")
    axis.set_ylabel(f"active layer, transient column {year} [m]")
    axis.set_title("cells with permafrost in both (TTOP < 0; no talik, MAGT < 0)", fontsize=10)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.suptitle(
        f"{name}: {result.sizes['cell']} cells, {summary['region']['years'][0]}-{year} "
        "(colder to the north; larger amplitude and less precipitation to the east)"
    )
    # fixed margins for the labels and colour bars (tight_layout drew the figure twice: 0.35 s of 1.1 s)
    figure.subplots_adjust(left=0.045, right=0.965, bottom=0.07, top=0.91, wspace=0.36, hspace=0.3)
    figure.savefig(out / "maps.png", dpi=100)
    plt.close(figure)
