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
EXAMPLE = [  # the gtnp_example sample with periods inside its record (overrides of BOREHOLE)
    "data.borehole=sample:gtnp_example",
    "calibration.start=2014-12-26",
    "calibration.end=2015-12-31",
    "validation.start=2016-01-01",
    "validation.end=2016-05-31",
]


@pytest.fixture(scope="module")
def daily():
    """Arctic Village's daily means (time, depth) [degC], as the kind averages them."""
    notes = []
    measured, _ = S.open_borehole(dict(borehole="sample:arctic_village", min_hours=20), notes)
    assert "averaged to daily means" in notes[0]
    return measured


@pytest.fixture(scope="module")
def files(daily, tmp_path_factory):
    """The daily means as a long GTN-P file with a second borehole (999, 1 K warmer), as a
    netCDF file in kelvin with depths in cm, and as one without values; air temperature
    that covers only the run's first three months."""
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
    air = xr.Dataset(  # air temperature for the first three months of the run only
        {"air_temperature": ("time", np.zeros(94), dict(units="degC"))},
        coords=dict(time=pd.date_range("2007-03-29", "2007-06-30")),
    )
    air.to_netcdf(folder / "short_air.nc")
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


def test_the_same_borehole_in_a_long_file_and_in_kelvin_gives_the_same_run(tmp_path, capsys, files, daily):
    """`--set data.borehole=...` on other layouts: a long GTN-P file holding two boreholes
    (755 picked by data.borehole_id) runs as is; it and a netCDF file in K with depths in cm
    hold the same daily record as the hourly wide sample, so they set up the same problem."""
    records = {}
    for name, data in (
        ("long", dict(borehole=str(files / "two_boreholes.csv"), borehole_id=755)),
        ("netcdf", dict(borehole=str(files / "borehole_kelvin.nc"))),
        ("other", dict(borehole=str(files / "two_boreholes.csv"), borehole_id="999")),
    ):
        records[name], _ = S.open_borehole(data | dict(min_hours=20), [])
    kept = daily.sel(time=records["long"].time)
    np.testing.assert_allclose(records["long"].values, kept.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(records["netcdf"].values, daily.values, rtol=0, atol=1e-9)
    np.testing.assert_allclose(records["other"].values, kept.values + 1.0, rtol=0, atol=1e-12)
    wide = S.SiteExperiment(S.resolve(C.load(BOREHOLE)))
    long = S.SiteExperiment(
        S.resolve(C.load(BOREHOLE, [f"data.borehole={files / 'two_boreholes.csv'}", "data.borehole_id=755"]))
    )
    np.testing.assert_allclose(long.forcing["surface_temperature"], wide.forcing["surface_temperature"], atol=1e-12)
    np.testing.assert_allclose(long.initial, wide.initial, atol=1e-12)
    np.testing.assert_allclose(long.validation_operator.values, wide.validation_operator.values, atol=1e-12)
    _, summary = run(
        tmp_path,
        capsys,
        *QUICK,
        "--set",
        f"data.borehole={files / 'two_boreholes.csv'}",
        "--set",
        "data.borehole_id=755",
    )
    assert summary["metrics"]["validation"]["ground_temperature"]["n"] == wide.validation_operator.values.size


def test_another_gtnp_file_runs_as_is_with_its_periods(tmp_path, capsys):
    _, summary = run(tmp_path, capsys, *QUICK, *(x for o in EXAMPLE for x in ("--set", o)))
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


def _gipl_station():
    return cg.data.open_gipl_station(cg.data.sample_path("gipl_station"), start="2008-07-01")


def _experiment(config, **data):
    config = C.copy_config(config)
    config["data"].update(data)
    return S.SiteExperiment(S.resolve(config))


@pytest.mark.parametrize("layout", ["legacy", "new"])
def test_era5_air_and_snow_at_the_borehole_in_either_cds_layout(tmp_path, layout):
    """forcing.upper = 'air' from hourly ERA5 files (t2m and sd, rsn in a second file) on a
    3 x 3 grid: the grid point nearest data.lat/lon is taken, K becomes degC, hours become
    days and sd [m of water equivalent] drives the snowpack with rsn as its density."""
    station = _gipl_station()
    hours = pd.date_range("2008-07-01", "2010-07-27 23:00", freq="1h")
    daily = station.reindex(time=hours, method="ffill")
    lat, lon = np.array([64.75, 65.0, 65.25]), np.array([212.5, 212.75, 213.0])  # 0..360 as ERA5 writes it
    offset = np.array([[5.0, 5.0, 5.0], [5.0, 0.0, 5.0], [5.0, 5.0, 5.0]])  # other points 5 K warmer

    def grid(values, extra=None):
        field = values[:, None, None] + (offset if extra is None else extra)[None]
        time = "time" if layout == "legacy" else "valid_time"
        return xr.DataArray(
            field, dims=(time, "latitude", "longitude"), coords={time: hours, "latitude": lat[::-1], "longitude": lon}
        ).isel(latitude=slice(None, None, -1))

    t2m = grid(daily.air_temperature.values + 273.15).rename("t2m").assign_attrs(units="K")
    swe = grid(daily.snow_depth.values * 250.0 / 1000.0, 0.0 * offset).rename("sd")
    second = xr.Dataset(
        {"sd": swe.assign_attrs(units="m of water equivalent"), "rsn": (swe * 0 + 250.0).assign_attrs(units="kg m**-3")}
    )
    if layout == "legacy":
        encoding = {"t2m": dict(dtype="int16", scale_factor=0.002, add_offset=260.0, _FillValue=-32767)}
        t2m.to_dataset().to_netcdf(tmp_path / "t2m.nc", encoding=encoding)
        second.to_netcdf(tmp_path / "snow.nc")
    else:
        for name, ds in (("t2m", t2m.to_dataset()), ("snow", second)):
            ds = ds.astype(np.float32).assign_coords(number=0, expver=("valid_time", np.full(hours.size, "0001")))
            ds.to_netcdf(tmp_path / f"{name}.nc", encoding={"valid_time": {"units": "hours since 1970-01-01"}})
    config = C.load(GIPL, ["model.snow_conductivity=sturm"])
    files = [str(tmp_path / "t2m.nc"), str(tmp_path / "snow.nc")]
    with pytest.raises(ValueError, match=r"data\.lat, data\.lon: t2m\.nc, snow\.nc is a grid"):
        _experiment(config, forcing=files)
    era5 = _experiment(config, forcing=files, lat=65.02, lon=-147.2)  # nearest: 65.0 N, 212.75 E
    assert set(era5.forcing) == {"air_temperature", "snow_water_equivalent", "snow_density"}
    tolerance = 1e-3 if layout == "legacy" else 1e-4  # int16 packing, float32
    np.testing.assert_allclose(era5.forcing["air_temperature"], station.air_temperature.values, atol=tolerance)
    np.testing.assert_allclose(era5.forcing["snow_water_equivalent"], station.snow_depth.values / 4, atol=1e-7)
    np.testing.assert_allclose(era5.forcing["snow_density"], 250.0, rtol=1e-6)


def test_air_from_a_station_csv_in_other_units(tmp_path):
    """A station CSV with its own column names, air temperature in degF and snow depth in
    cm (data.forcing_columns, data.forcing_units): the station's own forcing, converted."""
    station = _gipl_station()
    table = pd.DataFrame(
        {
            "Date": station.time.dt.strftime("%Y-%m-%d").values,
            "Tair": station.air_temperature.values * 9 / 5 + 32,
            "HS": station.snow_depth.values * 100.0,
            "k_snow": station.snow_conductivity.values,
        }
    )
    table.to_csv(tmp_path / "station.csv", index=False)
    config = C.load(GIPL)
    columns = dict(air_temperature="Tair", snow_depth="HS", snow_conductivity="k_snow")
    units = dict(air_temperature="degF", snow_depth="cm")
    own = S.SiteExperiment(S.resolve(config))
    csv = _experiment(config, forcing=str(tmp_path / "station.csv"), forcing_columns=columns, forcing_units=units)
    for key in own.forcing:
        np.testing.assert_allclose(csv.forcing[key], own.forcing[key], rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match=r"station.csv has no column for snow_depth \('snow'\)"):
        _experiment(config, forcing=str(tmp_path / "station.csv"), forcing_columns=columns | dict(snow_depth="snow"))
    with pytest.raises(ValueError, match="covers 2008-07-01 to 2009-07-01, not the run 2008-07-01 to 2010-07-27"):
        table.iloc[:366].to_csv(tmp_path / "short.csv", index=False)
        _experiment(config, forcing=str(tmp_path / "short.csv"), forcing_columns=columns, forcing_units=units)


def test_lst_upper_boundary_from_an_appeears_csv(tmp_path, capsys, daily):
    """forcing.upper = 'lst': an AppEEARS MOD11A1 point CSV (two points) whose clear-sky
    day and night LST are the borehole's measured 0 m temperature +- 2 K on 40 % of the
    days (the rest cloudy, 0 = no data, or flagged bad): the gap-filled forcing equals the
    0 m series on the clear days, SatelliteLST's offset is fitted, and the run validates."""
    surface = daily.sel(depth=0.0, time=slice("2007-03-20", "2008-02-15"))
    rng = np.random.default_rng(0)
    rows = []
    for site, shift in (("borehole", 0.0), ("elsewhere", 5.0)):
        clear = rng.random(surface.sizes["time"]) < 0.4
        for k, (time, value) in enumerate(zip(surface.time.values, surface.values, strict=True)):
            ok = bool(clear[k]) and np.isfinite(value)
            kelvin = value + 273.15 + shift
            rows.append(
                {
                    "ID": site,
                    "Latitude": 68.129,
                    "Longitude": -145.534,
                    "Date": str(time)[:10],
                    "MOD11A1_061_LST_Day_1km": kelvin + 2.0 if ok else 0.0,
                    "MOD11A1_061_QC_Day": 0 if ok else 2,
                    "MOD11A1_061_LST_Night_1km": kelvin - 2.0 if ok else 0.0,
                    "MOD11A1_061_QC_Night": 0 if ok else 2,
                }
            )
    pd.DataFrame(rows).to_csv(tmp_path / "lst.csv", index=False)
    lst = ["--set", "forcing.upper=lst", "--set", f"data.lst={tmp_path / 'lst.csv'}"]
    assert main(["run", str(BOREHOLE), "--out", str(tmp_path / "never"), *lst]) == 2
    assert "holds points borehole, elsewhere; choose one" in capsys.readouterr().err
    offset = ["--set", 'parameters.offset.path="surface.offset"', "--set", "parameters.offset.init=0.0"]
    out, summary = run(tmp_path, capsys, *QUICK, *lst, "--set", "data.lst_site=borehole", *offset)
    config = C.load(BOREHOLE, ["forcing.upper=lst", f"data.lst={tmp_path / 'lst.csv'}", "data.lst_site=borehole"])
    experiment = S.SiteExperiment(S.resolve(config))
    filled = np.asarray(experiment.forcing["land_surface_temperature"])
    measured = surface.sel(time=experiment.times).values
    clear = np.asarray(
        [r["MOD11A1_061_QC_Day"] == 0 for r in rows if r["ID"] == "borehole" and r["Date"] >= "2007-03-29"][:314]
    )
    np.testing.assert_allclose(filled[clear], measured[clear], atol=1e-6)
    assert 0.3 < clear.mean() < 0.5 and np.isfinite(filled).all()
    assert any("clear-sky MODIS LST on" in n for n in summary["notes"])
    assert "offset" in summary["parameters"] and np.isfinite(
        summary["metrics"]["validation"]["ground_temperature"]["mae"]
    )
    assert (out / "ground_temperature.png").is_file()


def test_active_layer_records_are_fitted_beside_the_temperatures(tmp_path, capsys):
    """data.active_layer: yearly thaw depths (here in cm) of the years modelled whole in a
    period join the fit (calibration) and the metrics; a record without such a year is
    refused."""
    pd.DataFrame({"Year": [2014, 2015, 2016], "ALT": [np.nan, 95.0, 120.0]}).to_csv(tmp_path / "alt.csv", index=False)
    periods = EXAMPLE
    alt = [f"data.active_layer={tmp_path / 'alt.csv'}", "observations.active_layer.units=cm"]
    experiment = S.SiteExperiment(S.resolve(C.load(BOREHOLE, periods + alt)))
    assert set(experiment.alt_operators) == {"calibration"}  # 2016 is not whole in the validation period
    np.testing.assert_allclose(experiment.alt_operators["calibration"].values, [0.95])
    assert any(o is experiment.alt_observation for o in experiment.problem().observations)
    sets = [x for o in periods + alt for x in ("--set", o)]
    _, summary = run(tmp_path, capsys, *QUICK, *sets)
    calibration = summary["metrics"]["calibration"]["active_layer_thickness"]
    assert calibration["n"] == 1 and np.isfinite(calibration["mae"])
    assert "active_layer_thickness" not in summary["metrics"]["validation"]
    late = tmp_path / "late.csv"
    pd.DataFrame({"year": [2017], "thaw_depth": [1.0]}).to_csv(late, index=False)
    with pytest.raises(ValueError, match=r"no year of late\.csv lies whole inside the calibration period"):
        S.SiteExperiment(S.resolve(C.load(BOREHOLE, [*periods, f"data.active_layer={late}"])))


def test_spin_up_repeats_the_first_year_to_a_periodic_state():
    """initial.method = 'spinup': the first day's profile, then the run's first year of
    forcing repeated until no cell's yearly mean changes by more than the tolerance; the
    result is periodic (one more year from it ends where it started, within tolerance)."""
    periods = EXAMPLE
    profile = S.SiteExperiment(S.resolve(C.load(BOREHOLE, periods)))
    spun = S.SiteExperiment(S.resolve(C.load(BOREHOLE, [*periods, "initial.method=spinup"])))
    assert any("spun up by repeating the first 1 year(s) of forcing" in n for n in spun.notes)
    assert not np.allclose(spun.initial, profile.initial)
    year = {k: v[:365] for k, v in spun.forcing.items()}
    again = np.asarray(S._outputs(spun.column, year, spun.initial)["temperature"])
    assert (
        np.abs(
            again.mean(axis=0) - np.asarray(S._outputs(spun.column, year, again[-1])["temperature"]).mean(axis=0)
        ).max()
        < 0.02
    )


def test_a_deeper_boundary_sensor_starts_the_column_there():
    """forcing.upper_depth = 0.5: the column's top is the 0.5 m sensor, whose series is the
    boundary; the layers' tops (below the ground) move up by 0.5 m, a layer wholly above the
    sensor is refused, the sensors at and above it are not fitted, and the initial profile
    starts from the 0.5 m value."""
    layers = "model.layers=[{top = 0.0, porosity = 0.35}, {top = 2.0, porosity = 0.3}]"
    experiment = S.SiteExperiment(S.resolve(C.load(BOREHOLE, ["forcing.upper_depth=0.5", layers])))
    assert [float(layer.top) for layer in experiment.column.layers] == [0.0, 1.5]
    assert experiment.observed_depths.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    sensor = experiment.measured.sel(depth=0.5)
    np.testing.assert_allclose(experiment.forcing["surface_temperature"], sensor.sel(time=experiment.times))
    first = experiment.measured.sel(time=experiment.times[0])
    top, below = float(first.sel(depth=0.5)), float(first.sel(depth=1.0))
    np.testing.assert_allclose(experiment.initial[0], np.interp(experiment.centres[0], [0.0, 0.5], [top, below]))
    with pytest.raises(ValueError, match=r"layer\(s\) \[0\] lie above the boundary sensor at 0\.5 m"):
        S.SiteExperiment(S.resolve(C.load(BOREHOLE, ["forcing.upper_depth=0.5"])))
