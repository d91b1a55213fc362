"""Climate forcing: HISTALP and ERA5 at the Hintereisferner point in degC against plain
netCDF4 decoding and against OGGM's own climate file, the new CDS layout and a legacy
ERA5 + ERA5T file made from the real legacy files, lapse-rate shifting, and refusals."""

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd.data as D

HEF = dict(lat=46.8003, lon=10.7584)  # RGI CenLat, CenLon of RGI60-11.00897
OETZTAL = D.sample_path("oetztal_era5")
ERA5 = [OETZTAL / name for name in ("sel_era5_monthly_t2m_1979-2018.nc", "sel_era5_monthly_prcp_1979-2018.nc")]
INVARIANT = OETZTAL / "sel_era5_invariant.nc"


def test_histalp_at_hintereisferner_is_oggms_climate_file():
    histalp = D.open_climate(D.sample_path("hintereisferner_histalp"), **HEF)
    oggm = D.load_sample("hintereisferner_climate")  # OGGM picked the same grid point itself
    assert histalp.temperature.attrs["units"] == "degC" and histalp.precipitation.attrs["units"] == "kg m-2"
    assert float(histalp.grid_lat) == pytest.approx(oggm.attrs["ref_pix_lat"], abs=1e-9)
    assert float(histalp.grid_lon) == pytest.approx(oggm.attrs["ref_pix_lon"], abs=1e-9)
    assert histalp.attrs["reference_elevation"] == oggm.attrs["reference_elevation"] == 3160.0
    common = np.intersect1d(histalp.time.values, oggm.time.values)
    assert len(common) == 2412  # 1802-01 .. 2002-12
    np.testing.assert_array_equal(histalp.temperature.sel(time=common), oggm.temperature.sel(time=common))
    np.testing.assert_array_equal(histalp.precipitation.sel(time=common), oggm.precipitation.sel(time=common))
    # and from the raw file, in degC as stored: nearest point (46.8333, 10.75), index (1, 1)
    with netCDF4.Dataset(D.sample_path("hintereisferner_histalp")) as nc:
        raw = nc["temp"][:, 1, 1].astype(np.float64)
    np.testing.assert_array_equal(histalp.temperature.values, raw)
    assert histalp.temperature.values[:3].tolist() == pytest.approx([-2.9, -6.6, -10.2], abs=1e-6)


def _plain_era5(path, variable, i, j):
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(False)
        v = nc[variable]
        return v[:, i, j].astype(np.float64) * v.scale_factor + v.add_offset, nc["latitude"][i], nc["longitude"][j]


def test_era5_at_hintereisferner_in_degc():
    era5 = D.open_climate([*ERA5, INVARIANT], **HEF)
    # the nearest ERA5 point is (46.75 N, 10.75 E): latitude index 2, longitude index 1 in the files
    t2m, lat, lon = _plain_era5(ERA5[0], "t2m", 2, 1)
    tp, _, _ = _plain_era5(ERA5[1], "tp", 2, 1)
    z, _, _ = _plain_era5(INVARIANT, "z", 2, 1)
    assert (float(era5.grid_lat), float(era5.grid_lon)) == (lat, lon) == (46.75, 10.75)
    np.testing.assert_allclose(era5.temperature.values, t2m - 273.15, rtol=0, atol=1e-12)
    days = pd.date_range("1979-01-01", periods=480, freq="MS").days_in_month.to_numpy()
    np.testing.assert_allclose(era5.precipitation.values, tp * 1000.0 * days, rtol=1e-14)
    assert era5.attrs["reference_elevation"] == pytest.approx(z[0] / 9.80665, rel=1e-14)
    assert era5.temperature.attrs["units"] == "degC"
    assert era5.temperature.values[0] == pytest.approx(-15.84, abs=0.005)  # January 1979 at 2426 m

    # shifted to HISTALP's 3160 m with -6.5 K/km, the two agree in summer (inversions break it in winter)
    shifted = D.open_climate([ERA5[0], INVARIANT], **HEF, elevation=3160.0)
    assert shifted.attrs["reference_elevation"] == 3160.0
    histalp = D.open_climate(D.sample_path("hintereisferner_histalp"), **HEF)
    common = np.intersect1d(shifted.time.values, histalp.time.values)  # 1979-01 .. 2003-09
    difference = shifted.temperature.sel(time=common) - histalp.temperature.sel(time=common)
    by_month = difference.groupby("time.month").mean().values
    assert np.all(np.abs(by_month[5:8]) < 1.0)  # June-August: measured +0.47, +0.80, +0.33 K
    assert by_month[0] < -4.0  # January: measured -6.1 K
    assert np.corrcoef(shifted.temperature.sel(time=common), histalp.temperature.sel(time=common))[0, 1] > 0.95


def _as_new_cds(path, out):
    """The legacy file in the new CDS layout: valid_time, float32 unpacked, number and expver."""
    ds = xr.open_dataset(path)
    new = ds.rename(time="valid_time").astype(np.float32)
    new = new.assign_coords(number=0, expver=("valid_time", np.full(new.sizes["valid_time"], "0001")))
    encoding = {v: {"dtype": "float32", "_FillValue": np.float32(np.nan)} for v in new.data_vars}
    encoding["valid_time"] = {"units": "seconds since 1970-01-01", "dtype": "int64"}
    new.to_netcdf(out, encoding=encoding)
    return out


def test_new_cds_layout_and_legacy_expver(tmp_path):
    legacy = D.open_climate([*ERA5, INVARIANT], **HEF)
    files = [_as_new_cds(p, tmp_path / f"new_{p.name}") for p in (*ERA5, INVARIANT)]
    with netCDF4.Dataset(files[0]) as nc:
        assert "valid_time" in nc.dimensions and nc["t2m"].dtype == np.float32 and "expver" in nc.variables
    new = D.open_climate(files, **HEF)
    np.testing.assert_array_equal(new.time.values, legacy.time.values)
    np.testing.assert_allclose(new.temperature.values, legacy.temperature.values, rtol=0, atol=3e-5)
    np.testing.assert_allclose(new.precipitation.values, legacy.precipitation.values, rtol=1e-6)
    assert "number" not in new.coords and "expver" not in new.coords
    # a legacy ERA5 + ERA5T download: expver 1 until 2017, expver 5 after, NaN elsewhere
    ds = xr.open_dataset(ERA5[0])
    late = ds.time >= np.datetime64("2018-01-01")
    both = xr.concat([ds.where(~late), ds.where(late)], dim=xr.DataArray([1, 5], dims="expver", name="expver"))
    both.to_netcdf(tmp_path / "t2m_expver.nc")
    combined = D.open_climate([tmp_path / "t2m_expver.nc", INVARIANT], **HEF)
    np.testing.assert_allclose(combined.temperature.values, legacy.temperature.values, rtol=0, atol=1e-12)


def test_points_lapse_rate_and_negative_precipitation():
    with pytest.warns(UserWarning, match="67 negative values of 'prcp' set to 0"):
        grid = D.load_sample("oetztal_histalp")
    assert grid.precipitation.attrs["negative_values_set_to_zero"] == 67
    assert float(grid.precipitation.min()) == 0.0
    with pytest.warns(UserWarning, match="negative"):
        sites = D.open_climate(
            D.sample_path("oetztal_histalp"),
            lat=[46.80, 46.86],
            lon=[10.76, 10.92],
            elevation=[3000.0, 2900.0],
            lapse_rate=-0.006,
            dim="glacier",
        )
    assert sites.temperature.dims == ("time", "glacier")
    np.testing.assert_array_equal(sites.reference_elevation.values, [3000.0, 2900.0])
    for k, (lat, lon, z) in enumerate([(46.80, 10.76, 3000.0), (46.86, 10.92, 2900.0)]):
        point = grid.sel(lat=lat, lon=lon, method="nearest")
        expected = point.temperature + (-0.006) * (z - float(point.surface_elevation))
        np.testing.assert_allclose(sites.temperature.isel(glacier=k).values, expected.values, rtol=0, atol=1e-12)


def test_refusals(tmp_path):
    with pytest.raises(ValueError, match="file not found"):
        D.open_climate(tmp_path / "missing.nc")
    other = tmp_path / "aws.nc"
    xr.Dataset({"T2": ("time", np.ones(3), {"units": "K"})}, coords={"time": [0, 1, 2]}).to_netcdf(other)
    with pytest.raises(ValueError, match=r"aws.nc: not a climate file .* variables \['T2'\]"):
        D.open_climate(other)
    xr.open_dataset(D.sample_path("hintereisferner_histalp"))[["hgt"]].to_netcdf(tmp_path / "heights.nc")
    with pytest.raises(ValueError, match=r"heights.nc: no temperature or precipitation variable"):
        D.open_climate(tmp_path / "heights.nc")
    without_time = xr.open_dataset(D.sample_path("hintereisferner_histalp"), decode_times=False)
    without_time.drop_vars("time").to_netcdf(tmp_path / "timeless.nc")
    with pytest.raises(ValueError, match=r"timeless.nc: no time axis"):
        D.open_climate(tmp_path / "timeless.nc")
    text = tmp_path / "notes.nc"
    text.write_text("not netCDF")
    with pytest.raises(ValueError, match=r"notes.nc: not a netCDF file"):
        D.open_climate(text)
    ds = xr.open_dataset(ERA5[0])
    ds.t2m.attrs["units"] = "degF"  # kelvin values labelled degF: 125-146 degC
    ds.to_netcdf(tmp_path / "fahrenheit.nc")
    with pytest.raises(ValueError, match=r"fahrenheit.nc: variable 't2m' spans .* degC: not degF\?"):
        D.open_climate(tmp_path / "fahrenheit.nc")
    ds.t2m.attrs["units"] = "m s-1"  # not a temperature at all
    ds.to_netcdf(tmp_path / "speed.nc")
    with pytest.raises(ValueError, match=r"speed.nc: variable 't2m': units 'm s-1' are not a temperature"):
        D.open_climate(tmp_path / "speed.nc")
    ds.t2m.attrs["units"] = "degC"  # kelvin values labelled degC
    ds.to_netcdf(tmp_path / "mislabelled.nc")
    with pytest.raises(ValueError, match=r"mislabelled.nc: variable 't2m' spans .* degC: not degC\?"):
        D.open_climate(tmp_path / "mislabelled.nc")
    xr.open_dataset(ERA5[0]).where(False).to_netcdf(tmp_path / "fill.nc")
    with pytest.raises(ValueError, match=r"fill.nc: variable 't2m' is all fill values"):
        D.open_climate(tmp_path / "fill.nc")
    bad_time = xr.open_dataset(ERA5[0], decode_times=False)
    bad_time.time.attrs["units"] = "fortnights after the flood"
    bad_time.to_netcdf(tmp_path / "time.nc")
    with pytest.raises(ValueError, match=r"time.nc: variable 'time' cannot be decoded"):
        D.open_climate(tmp_path / "time.nc")
    xr.open_dataset(ERA5[1]).isel(time=slice(0, 100)).to_netcdf(tmp_path / "short.nc")
    with pytest.raises(ValueError, match="not on one grid and time axis"):
        D.open_climate([ERA5[0], tmp_path / "short.nc"])
    with pytest.raises(ValueError, match=r"lat: points .* lie outside the grid"):
        D.open_climate(ERA5, lat=60.0, lon=10.75)
    with pytest.raises(ValueError, match="elevation: the file has no grid-point height"):
        D.open_climate(ERA5, **HEF, elevation=3000.0)
    with pytest.raises(ValueError, match="lat and lon: give both"):
        D.open_climate(ERA5, lat=46.8)
