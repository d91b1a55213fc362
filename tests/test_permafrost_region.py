"""`cryograd run` on a synthetic permafrost region: every cell's equilibrium values are the
Kudryavtsev model's for its inputs, its transient annual statistics are those of the soil
column run on its own (through `simulate`'s independent xarray path), chunks are written
as they finish and a rerun skips them, and a Dask LocalCluster gives the same numbers."""

import json
import tomllib
from pathlib import Path

import jax
import numpy as np
import pytest
import xarray as xr

import cryograd as cg
from cryograd._run import permafrost_region as R
from cryograd.cli import main
from tests._experiments import assert_cf_units

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "permafrost_region.toml"
SMALL = [
    "region.cells=24",
    "region.rows=4",
    "forcing.years=2",
    "model.cells=15",
    "run.chunk_size=10",
    "run.workers=0",
]


def small_config(**run):
    config = tomllib.loads(EXPERIMENT.read_text())
    config["region"].update(cells=24, rows=4)
    config["forcing"]["years"] = 2
    config["model"]["cells"] = 15
    config["run"].update({"chunk_size": 10, "workers": 0, **run})
    return config


def test_region_cells_match_the_models_run_alone(tmp_path, capsys):
    out = tmp_path / "region"
    args = ["run", str(EXPERIMENT), "--out", str(out), "--no-progress"]
    for setting in SMALL:
        args += ["--set", setting]
    assert main(args) == 0, capsys.readouterr().err
    result = xr.load_dataset(out / "result.nc")
    assert_cf_units(result)
    assert result.sizes == {"cell": 24, "year": 2, "magt_depth": 5}
    parts = sorted((out / "cells").glob("part-*.nc"))
    assert [p.name for p in parts] == [
        "part-000000000-000000010.nc",
        "part-000000010-000000020.nc",
        "part-000000020-000000024.nc",
    ]
    config = small_config()
    # the north is colder: TTOP falls from the southern to the northern row
    rows = result.equilibrium_permafrost_temperature.groupby(result.row).mean()
    assert np.all(np.diff(rows.values) < 0)

    # equilibrium: the Kudryavtsev model on each cell's inputs, built here from the config's
    # silt layer (equilibrium.layer = 1) and snow density, not through the run's factory
    silt = config["model"]["layers"][config["equilibrium"]["layer"]]
    assert silt["water_content"] == 0.30 and silt["k_frozen"] == 1.8  # the silt layer of the shipped config
    kudryavtsev = cg.physics.Kudryavtsev(
        k_thawed=silt["k_thawed"],
        k_frozen=silt["k_frozen"],
        c_thawed=silt["c_thawed"],
        c_frozen=silt["c_frozen"],
        water_content=silt["water_content"],
        snow_density=config["model"]["snow_density"],
    )
    expected = kudryavtsev(result.mean_air_temperature.values, result.amplitude.values, result.winter_snow_depth.values)
    np.testing.assert_allclose(
        result.equilibrium_permafrost_temperature, expected["permafrost_temperature"], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        result.equilibrium_active_layer_thickness, expected["active_layer_thickness"], rtol=0, atol=1e-12
    )

    # transient: cell 13 (the 4th of the second chunk) through `simulate` on its own
    cell, first = 13, 10
    forcing = cg.data.synthetic_permafrost_forcing(
        jax.random.fold_in(jax.random.key(0), first),
        config["forcing"]["start"],
        2,
        mean_air_temperature=result.mean_air_temperature.values[first:20],
        amplitude=result.amplitude.values[first:20],
        precipitation=result.precipitation.values[first:20],
        snow_density=250.0,
        **{k: config["forcing"][k] for k in ("anomaly_std", "anomaly_days", "wet_day_fraction", "melt_factor")},
    ).isel(site=cell - first)
    native = R.column(config)
    assert native.solver == "native"  # the experiment's; the cell alone goes through the JAX solver
    column = cg.physics.PermafrostColumn(
        native.grid, native.layers, native.freeze_curve, native.surface, native.geothermal_flux, solver="jax"
    )
    centres = np.asarray(column.grid.centres)
    ttop = float(result.equilibrium_permafrost_temperature[cell])
    initial = xr.DataArray(ttop + 0.02 * centres, coords=dict(depth=centres), dims="depth")
    alone = column.simulate(forcing, initial_temperature=initial)
    np.testing.assert_allclose(result.active_layer_thickness[cell], alone.active_layer_thickness, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        result.mean_annual_ground_temperature[cell], alone.mean_annual_ground_temperature, rtol=0, atol=1e-9
    )
    np.testing.assert_array_equal(result.talik[cell], alone.talik)
    assert (out / "maps.png").stat().st_size > 20_000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["execution"]["chunks"] == 3 and summary["region"]["column_years"] == 48

    # a rerun into the same folder computes nothing: every part is kept as it was
    stamps = [p.stat().st_mtime_ns for p in parts]
    (out / "cells" / parts[1].name).unlink()  # ... except a lost chunk, which is run again
    assert main(args) == 0
    again = xr.load_dataset(out / "result.nc")
    assert [p.stat().st_mtime_ns for p in sorted((out / "cells").glob("part-*.nc"))][::2] == stamps[::2]
    xr.testing.assert_identical(again.drop_attrs(), result.drop_attrs())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("region.rows=5", "region.rows: must divide region.cells = 24"),
        ("region.amplitude=[14.0]", "region.amplitude: give [first, last]"),
        ("equilibrium.layer=3", "equilibrium.layer: 3 is not a layer index (0-2)"),
        ('forcing.start="spring"', "forcing.start: 'spring' is not a date"),
        ("run.workers=-1", "run.workers: 0 (this process)"),
        (
            "model.layers=[{top = 0.0, water_content = 0.3, k_thawed = -1.0, k_frozen = 1.0, c_thawed = 2e6, "
            "c_frozen = 2e6}]",
            "model.layers.0: k_thawed must be positive",
        ),
        ("run.chunk_sise=10", "run.chunk_sise: unknown key; did you mean 'chunk_size'?"),
        ('model.solver="fortran"', "model.solver: 'fortran'; use one of auto, jax, native"),
        ('model.time_scheme="rk4"', "model.time_scheme: 'rk4'; use one of bdf2, euler"),
    ],
)
def test_bad_configs_are_refused_before_running(tmp_path, capsys, override, message):
    args = ["run", str(EXPERIMENT), "--out", str(tmp_path / "bad"), "--no-progress"]
    for setting in [*SMALL, override]:
        args += ["--set", setting]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_two_dask_workers_give_the_numbers_of_one_process(tmp_path):
    """(slow: starts a LocalCluster of 2 processes, each compiling the column)"""
    local = R.run(small_config(workers=0), tmp_path / "local", progress=False)
    cluster = R.run(small_config(workers=2), tmp_path / "cluster", progress=False)
    assert cluster["execution"]["workers"] == 2 and local["execution"]["workers"] == 0
    a = xr.load_dataset(tmp_path / "local" / "result.nc").drop_attrs()
    b = xr.load_dataset(tmp_path / "cluster" / "result.nc").drop_attrs()
    xr.testing.assert_identical(a, b)
