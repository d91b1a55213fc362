"""`cryograd run` on one borehole (`kind = "permafrost_site"`): the shipped GTN-P borehole driven
by its own 0 m sensor, the same borehole in the other file layouts, and the refusals."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg
from cryograd._run import config as C, permafrost_site as S
from cryograd.cli import main
from tests._experiments import assert_cf_units

ROOT = Path(__file__).resolve().parents[1]
BOREHOLE = ROOT / "experiments" / "permafrost_borehole.toml"
GIPL = ROOT / "experiments" / "permafrost_gipl_station.toml"
QUICK = ["--set", "fit.max_steps=2", "--set", "uncertainty.draws=0"]


@pytest.fixture(scope="module")
def daily():
    """Arctic Village's daily means (time, depth) [degC], as the kind averages them."""
    notes = []
    measured, _ = S.open_borehole(dict(borehole="sample:arctic_village", min_hours=20), notes)
    assert "averaged to daily means" in notes[0]
    return measured


@pytest.fixture(scope="module")
def files(daily, tmp_path_factory):
    """The daily means as a long GTN-P file with a second borehole (999, 1 K warmer) and as a
    netCDF file in kelvin with depths in cm."""
    folder = tmp_path_factory.mktemp("boreholes")
    table = daily.to_dataframe(name="temperature").reset_index().dropna()
    table["date"] = table.time.dt.strftime("%Y-%m-%d")
    other = table.assign(borehole_id=999, temperature=table.temperature + 1.0)
    long = pd.concat([table.assign(borehole_id=755), other])[["date", "depth", "temperature", "borehole_id"]]
    long.to_csv(folder / "two_boreholes.csv", index=False)
    kelvin = (daily + 273.15).assign_coords(depth=daily.depth.values * 100.0)
    kelvin.depth.attrs["units"] = "cm"
    kelvin.attrs["units"] = "K"
    kelvin.to_dataset(name="temperature").to_netcdf(folder / "borehole_kelvin.nc")
    empty = kelvin * np.nan
    empty.attrs["units"] = "K"
    empty.to_dataset(name="temperature").to_netcdf(folder / "empty.nc")
    return folder


def run(tmp_path, capsys, *overrides, config=BOREHOLE):
    out = tmp_path / "out"
    code = main(["run", str(config), "--out", str(out), "--no-progress", *overrides])
    assert code == 0, capsys.readouterr().err
    return out, json.loads((out / "summary.json").read_text())


def test_shipped_borehole_calibrates_and_beats_the_start_values(tmp_path, capsys):
    out, summary = run(tmp_path, capsys)
    metrics = summary["metrics"]
    for period in ("calibration", "validation"):
        fitted, start = metrics[period]["ground_temperature"], metrics["start"][period]["ground_temperature"]
        assert {"mae", "rmse", "bias", "r", "n", "by_depth"} <= set(fitted)
        assert fitted["rmse"] < start["rmse"] and fitted["mae"] < start["mae"]
        assert "0" not in fitted["by_depth"]  # the boundary sensor is never fitted
    assert set(metrics["calibration"]["ground_temperature"]["by_depth"]) == {"0.5", "1", "2", "3", "4", "5"}
    assert summary["periods"] == dict(calibration=["2007-03-29", "2007-10-31"], validation=["2007-11-01", "2008-02-05"])
    coverage = summary["predictive_coverage"]
    assert coverage["n"] == metrics["validation"]["ground_temperature"]["n"] > 100
    assert 0.3 < coverage["validation_share_inside"] <= 1.0
    assert any("averaged to daily means" in n for n in summary["notes"])
    assert any("measured profile of 2007-03-29" in n for n in summary["notes"])
    result = xr.open_dataset(out / "result.nc")
    assert_cf_units(result)
    assert result.sizes["time"] == 314 and result.sizes["depth"] == 7
    assert result.fitted.values.tolist() == [0, 1, 1, 1, 1, 1, 1]
    # the upper boundary is the measured 0 m series, held at the column's top
    np.testing.assert_allclose(
        result.temperature.sel(depth=0.0), result.measured_temperature.sel(depth=0.0), atol=1e-12
    )
    assert {"active_layer_thickness_measured", "mean_annual_ground_temperature_modelled"} <= set(result)
    for figure in ("ground_temperature", "error_by_depth", "trumpet", "active_layer", "convergence", "posterior"):
        assert (out / f"{figure}.png").stat().st_size > 10_000


def test_the_same_borehole_in_a_long_file_and_in_kelvin_gives_the_same_run(tmp_path, capsys, files):
    """`--set data.borehole=...` on other layouts: a long GTN-P file holding two boreholes
    (755 picked by data.borehole_id) and a netCDF file in K with depths in cm run the
    same problem as the hourly wide sample, to round-off."""
    runs = {}
    for name, overrides in (
        ("wide", []),
        ("long", ["--set", f"data.borehole={files / 'two_boreholes.csv'}", "--set", "data.borehole_id=755"]),
        ("netcdf", ["--set", f"data.borehole={files / 'borehole_kelvin.nc'}"]),
    ):
        _, summary = run(tmp_path / name, capsys, *QUICK, *overrides)
        runs[name] = summary["metrics"]["validation"]["ground_temperature"]
    for name in ("long", "netcdf"):
        assert runs[name]["n"] == runs["wide"]["n"]
        for key in ("mae", "rmse", "bias"):
            assert runs[name][key] == pytest.approx(runs["wide"][key], abs=1e-8)
    _, warmer = run(
        tmp_path / "other",
        capsys,
        *QUICK,
        "--set",
        f"data.borehole={files / 'two_boreholes.csv'}",
        "--set",
        "data.borehole_id=999",
    )
    assert warmer["metrics"]["validation"]["ground_temperature"]["mae"] != runs["wide"]["mae"]


def test_another_gtnp_file_runs_as_is_with_its_periods(tmp_path, capsys):
    _, summary = run(
        tmp_path,
        capsys,
        *QUICK,
        "--set",
        "data.borehole=sample:gtnp_example",
        "--set",
        "calibration.start=2014-12-26",
        "--set",
        "calibration.end=2015-12-31",
        "--set",
        "validation.start=2016-01-01",
        "--set",
        "validation.end=2016-05-31",
    )
    validation = summary["metrics"]["validation"]["ground_temperature"]
    assert validation["n"] > 1000 and np.isfinite(validation["mae"])
    assert "1.6" not in validation["by_depth"]  # the sensor has one value in four years, none in the period
    assert sorted(map(float, validation["by_depth"])) == [0.6, 0.8, 1.2, 2, 2.5, 3, 3.5, 4, 5, 7]  # min_depth 0.5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.borehole={files}/empty.nc"], "has no sensor with a value at or below the ground"),
        (["data.borehole={files}/two_boreholes.csv"], "holds boreholes 755, 999; choose one"),
        (["data.borehole={files}/two_boreholes.csv", "data.borehole_id=123"], "123 is not in two_boreholes.csv"),
        (["validation.end=2008-03-01"], "the sensor at 0 m has no value for"),
        (["validation.end=2010-01-01"], "the record ends 2009-04-25"),
        (["calibration.start=2006-01-01"], "is not inside the record"),
        (["forcing.upper=air"], "data.forcing: forcing.upper = 'air' needs an air temperature file"),
        (["forcing.upper=air", "data.forcing={files}/short_air.nc"], "short_air.nc covers 2007-03-29 to 2007-06-30"),
        (["forcing.upper_depth=0.7"], "no sensor at 0.7 m"),
        (["model.freeze_curve.name=ice"], "'ice' is not a freeze curve"),
        (["model.freeze_curve.name=power_law", "model.freeze_curve.a=0.1"], "power_law needs b"),
        (["model.layers=[{top = 0.5, porosity = 0.4}, {top = 0.0, porosity = 0.3}]"], "must start at top = 0"),
        (
            ["model.layers=[{top = 0.0, porosity = 0.4}, {top = 2.0, porosity = 0.3}, {top = 1.0, porosity = 0.3}]"],
            "are not in increasing order",
        ),
        (["model.layers=[{top = 0.0, porosity = 0.4, water_content = 0.3}]"], "not both"),
        (["parameters.water_mineral.bounds=[0.6, 0.05]"], "bounds [0.6, 0.05] are reversed"),
        (["forcing.uper=air"], "forcing.uper: unknown key; did you mean 'upper'"),
        (["data.start=2007-01-01"], "data.start: only for GIPL2 station folders"),
        (["initial.spinup_years=2", "initial.method=spinup"], "initial.spinup_years: the run has 314 days"),
        (["observations.ground_temperature.min_depth=6.0"], "no sensor left between min_depth and max_depth"),
    ],
)
def test_bad_site_configs_fail_before_computing(tmp_path, capsys, files, overrides, message):
    air = xr.Dataset(
        {"air_temperature": ("time", np.zeros(94), dict(units="degC"))},
        coords=dict(time=pd.date_range("2007-03-29", "2007-06-30")),
    )
    air.to_netcdf(files / "short_air.nc")
    out = tmp_path / "never"
    sets = [x for o in overrides for x in ("--set", o.replace("{files}", str(files)))]
    assert main(["run", str(BOREHOLE), "--out", str(out), *sets]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not out.exists()


def test_boundary_sensor_gaps_interpolated_when_short_refused_when_long():
    times = pd.date_range("2020-01-01", periods=10)
    values = np.arange(10.0)
    values[[3, 4]] = np.nan
    measured = xr.DataArray(values[:, None], dims=("time", "depth"), coords=dict(time=times, depth=[0.0]))
    notes = []
    series = S.boundary_series(measured, 0.0, times, 2, notes)
    np.testing.assert_allclose(series, np.arange(10.0))
    assert "2 day(s) of the boundary sensor at 0 m interpolated" in notes[0]
    with pytest.raises(ValueError, match=r"no value for 2 day\(s\), 2020-01-04 to 2020-01-05"):
        S.boundary_series(measured, 0.0, times, 1, [])
    with pytest.raises(ValueError, match="never the first or last day"):
        S.boundary_series(measured, 0.0, times[3:], 5, [])


def test_air_forcing_from_a_netcdf_file_in_kelvin_equals_the_station_s_own(tmp_path):
    """forcing.upper = 'air' with data.forcing: the GIPL2 station's own air temperature and
    snow depth written to netCDF (air in K, snow in cm, hourly steps) drive the same column
    as the folder's records."""
    config = C.load(GIPL)
    station = cg.data.open_gipl_station(cg.data.sample_path("gipl_station"), start="2008-07-01")
    hourly = station[["air_temperature", "snow_depth", "snow_conductivity"]].resample(time="1h").ffill()
    hourly["air_temperature"] = (hourly.air_temperature + 273.15).assign_attrs(units="K")
    hourly["snow_depth"] = (hourly.snow_depth * 100.0).assign_attrs(units="cm")
    hourly["snow_conductivity"].attrs["units"] = "W m-1 K-1"
    hourly.to_netcdf(tmp_path / "air.nc")
    own = S.SiteExperiment(S.resolve(config))
    config["data"]["forcing"] = str(tmp_path / "air.nc")
    other = S.SiteExperiment(S.resolve(config))
    assert set(other.forcing) == set(own.forcing) == {"air_temperature", "snow_depth", "snow_conductivity"}
    for key in own.forcing:
        np.testing.assert_allclose(other.forcing[key], own.forcing[key], rtol=0, atol=1e-9)
    np.testing.assert_allclose(other.initial, own.initial)
    assert other.reference_run() is None  # GIPL2's own set-up only with the folder's own records
