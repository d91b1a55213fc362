"""Climate for every glacier from a few stations (`cg.data.station_climate`)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg

D = cg.data


def _station(name, lat, lon, elevation, temperature, precipitation, start="2000-01-01"):
    time = pd.date_range(start, periods=len(temperature), freq="MS")
    return xr.Dataset(
        dict(
            temperature=("time", np.asarray(temperature, float)),
            precipitation=("time", np.asarray(precipitation, float)),
        ),
        coords=dict(time=time),
        attrs=dict(station_name=name, lat=lat, lon=lon, reference_elevation=elevation),
    )


def _pair(months=48, gap=None):
    t = np.arange(months)
    season = -10 * np.cos(2 * np.pi * t / 12)
    rng = np.random.default_rng(0)
    north_t = season + rng.normal(0, 1, months)
    south_t = season + 3.0 + rng.normal(0, 1, months)
    north_p = 40 + 20 * rng.random(months)
    south_p = 100 + 50 * rng.random(months)
    if gap is not None:
        north_t[gap], north_p[gap] = np.nan, np.nan
    north = _station("north", 66.0, -18.0, 400.0, north_t, north_p)
    south = _station("south", 64.0, -18.0, 100.0, south_t, south_p)
    return north, south


def test_nearest_gives_each_glacier_its_stations_series():
    north, south = _pair()
    climate = D.station_climate([north, south], [65.9, 64.2], [-18.0, -18.0], glacier=["a", "b"])
    np.testing.assert_array_equal(climate.station_weight.values, [[1, 0], [0, 1]])
    np.testing.assert_allclose(climate.temperature.sel(glacier="a"), north.temperature, atol=1e-12)
    np.testing.assert_allclose(climate.precipitation.sel(glacier="b"), south.precipitation, rtol=1e-12)
    np.testing.assert_array_equal(climate.reference_elevation, [400.0, 100.0])
    # climatology + anomaly is the series, and the climatology is the calendar-month mean
    expected = north.temperature.groupby("time.month").mean().values
    np.testing.assert_allclose(climate.temperature_climatology.sel(glacier="a"), expected, atol=1e-12)
    assert climate.attrs["method"] == "nearest" and climate.attrs["stations"] == "north, south"
    assert climate.station_distance.sel(glacier="a", station="north") == pytest.approx(11.12, abs=0.01)  # 0.1 degree


def test_inverse_distance_half_way_is_the_mean_of_the_lapsed_stations():
    north, south = _pair()
    lapse = -0.006
    climate = D.station_climate([north, south], [65.0], [-18.0], method="inverse_distance", lapse_rate=lapse)
    np.testing.assert_allclose(climate.station_weight.values, [[0.5, 0.5]], rtol=1e-9)
    z = float(climate.reference_elevation[0])
    assert z == pytest.approx(250.0)
    expected = 0.5 * (north.temperature + lapse * (z - 400.0)) + 0.5 * (south.temperature + lapse * (z - 100.0))
    np.testing.assert_allclose(climate.temperature[:, 0], expected, atol=1e-12)
    # precipitation: the mean climatology times the mean ratio to each station's climatology
    clim_n = north.precipitation.groupby("time.month").mean()
    clim_s = south.precipitation.groupby("time.month").mean()
    month = north.time.dt.month
    ratio = 0.5 * (north.precipitation / clim_n.sel(month=month) + south.precipitation / clim_s.sel(month=month))
    np.testing.assert_allclose(
        climate.precipitation[:, 0], 0.5 * (clim_n + clim_s).sel(month=month) * ratio, rtol=1e-12
    )


def test_a_gap_is_bridged_by_the_neighbours_anomaly_and_counted():
    north, south = _pair(gap=[13, 14])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no month is without any station
        climate = D.station_climate([north, south], [65.9], [-18.0])
    assert int(climate.temperature_months_from_other_stations[0]) == 2
    assert int(climate.precipitation_months_from_other_stations[0]) == 2
    south_anomaly = south.temperature[13] - south.temperature.groupby("time.month").mean().sel(month=2)
    north_clim = north.temperature.groupby("time.month").mean(skipna=True).sel(month=2)
    assert float(climate.temperature[13, 0]) == pytest.approx(float(north_clim + south_anomaly), abs=1e-12)
    assert np.all(np.isfinite(climate.temperature)) and np.all(np.isfinite(climate.precipitation))


def test_iceland_stations_on_real_files():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the files' own gaps are warned about by the reader
        stations = [D.load_sample("iceland_station_grimsstadir"), D.load_sample("iceland_station_akureyri")]
    # Vatnajokull (east) and Langjokull (west)
    climate = D.station_climate(stations, [64.4, 64.6], [-16.8, -20.2], climatology=(1981, 2010))
    assert climate.station.values.tolist() == [stations[0].station_name, stations[1].station_name]
    np.testing.assert_array_equal(climate.station_weight.values, [[1, 0], [0, 1]])
    grims = stations[0].temperature.reindex(time=climate.time).values
    seen = np.isfinite(grims)
    np.testing.assert_allclose(climate.temperature.values[seen, 0], grims[seen], atol=1e-12)
    # Grimsstadir's 3 missing temperature months come from Akureyri's anomalies
    assert int(climate.temperature_months_from_other_stations[0]) == (~seen).sum() == 3
    assert climate.attrs["climatology_years"] == "1981-2010"


def test_refusals():
    north, south = _pair()
    with pytest.raises(ValueError, match="no month common"):
        D.station_climate(
            [north, _station("late", 64, -18, 0, [1.0] * 12, [1.0] * 12, start="2010-01-01")], [65], [-18]
        )
    with pytest.raises(ValueError, match="'lat' missing"):
        D.station_climate([north.assign_attrs(lat=None)], [65], [-18])
    with pytest.raises(ValueError, match="climatology"):
        D.station_climate([north, south], [65], [-18], climatology=(1990, 2001))
    with pytest.raises(ValueError, match="calendar month 3"):
        gappy = north.copy()
        gappy["temperature"] = gappy.temperature.where(gappy.time.dt.month != 3)
        D.station_climate([gappy], [65], [-18])
    with pytest.raises(ValueError, match="ratio to the climatology is undefined"):
        dry = north.copy()
        dry["precipitation"] = dry.precipitation.where(dry.time.dt.month != 7, 0.0)
        dry["precipitation"][30] = 5.0  # July 2002: rain in a month whose climatology years had none
        D.station_climate([dry], [65], [-18], climatology=(2000, 2001))
    with pytest.raises(ValueError, match="method"):
        D.station_climate([north], [65], [-18], method="kriging")
    with pytest.raises(ValueError, match="finite position"):
        D.station_climate([north], [np.nan], [-18])
    with pytest.raises(ValueError, match="precipitation"):
        D.station_climate([north.drop_vars("precipitation")], [65], [-18])
