"""GRACE readers: the real Greenland series, IMBIE and GlaMBIE tables; synthetic JPL, CSR
and GSFC files in the real layouts (round trips, the time-origin traps, never-applied gain
factors); regional mass against analytic cell areas; refusals; the JPL-sized file."""

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr
from hypothesis import given, settings, strategies as st

import cryograd as cg

D = cg.data
FILES = Path(__file__).parent / "files"
R = 6371000.0


def test_greenland_series_first_and_last_rows():
    ds = D.load_sample("greenland_grace")
    first, last = ds.isel(time=0), ds.isel(time=-1)
    assert (float(first.decimal_year), float(first.mass), float(first.mass_uncertainty)) == (2002.29, 0.0, 134.71)
    assert (float(last.decimal_year), float(last.mass), float(last.mass_uncertainty)) == (2024.62, -5593.36, 85.37)
    assert ds.mass.attrs["units"] == "Gt"
    assert pd.Timestamp(first.time.values) == pd.Timestamp("2002-04-16 20:24:00")  # 0.29 of 2002's 365 days
    assert "RL06.3Mv4" in ds.attrs["header"]


def test_imbie_and_glambie_tables():
    imbie = D.load_sample("greenland_imbie")
    assert float(imbie.decimal_year[0]) == 1992 and float(imbie.mass_balance[0]) == -7.7667
    assert float(imbie.cumulative_mass_balance[-1]) == -4892.391
    assert imbie.mass_balance.attrs["units"] == "Gt yr-1"
    hydro = D.open_grace(FILES / "glambie" / "11_central_europe_hydrological.csv")
    calendar = D.open_grace(FILES / "glambie" / "11_central_europe_calendar.csv")
    assert hydro.attrs["years"] == "hydrological" and calendar.attrs["years"] == "calendar"
    assert hydro.attrs["region"] == "central_europe"
    assert float(hydro.start_year[0]) == 1999.75 and float(hydro.end_year[0]) == 2000.75
    assert float(hydro.combined_mass_change[0]) == pytest.approx(-0.9539305728132944, rel=1e-15)
    assert float(hydro.glacier_area[0]) == pytest.approx(2145.5029e6)
    assert "gravimetry_mass_change" in hydro and "gravimetry_mass_change" not in calendar
    # 0.75 of 1999 is 273.75 days after 1 January: 1 October, 18:00
    assert pd.Timestamp(hydro.time_bounds.values[0, 0]) == pd.Timestamp("1999-10-01 18:00:00")


def months(n, start="2002-04"):
    return pd.date_range(start, periods=n, freq="MS") + pd.Timedelta(days=14)


@settings(max_examples=15, deadline=None)
@given(n_time=st.integers(1, 5), n_lat=st.integers(2, 12), seed=st.integers(0, 2**31), axis=st.booleans())
def test_jpl_round_trip_and_gain_factors_never_applied(tmp_path_factory, n_time, n_lat, seed, axis):
    rng = np.random.default_rng(seed)
    lwe = rng.normal(0, 0.5, (n_time, n_lat, 2 * n_lat))
    lwe[rng.random(lwe.shape) < 0.2] = np.nan
    lwe[0, 0, 0] = 0.1
    sigma = rng.uniform(0.01, 0.1, lwe.shape)
    gain = rng.uniform(0.5, 2.0, lwe.shape[1:])
    ids = rng.integers(1, 50, lwe.shape[1:])
    mask = rng.integers(0, 2, lwe.shape[1:])
    path = tmp_path_factory.mktemp("jpl") / "GRCTellus.JPL.test.nc"
    times = months(n_time)
    D.write_jpl_mascons(
        path, lwe, times, uncertainty=sigma, gain_factor=gain, land_mask=mask, mascon_id=ids, ancillary_time_axis=axis
    )
    ds = D.open_grace(path)
    # stored in cm, read back in m: x * 100 / 100 rounds at most twice
    np.testing.assert_allclose(ds.lwe_thickness.values, lwe, rtol=4e-16, atol=0)
    assert np.array_equal(np.isnan(ds.lwe_thickness.values), np.isnan(lwe))
    np.testing.assert_allclose(ds.uncertainty.values, sigma, rtol=4e-16)
    np.testing.assert_array_equal(ds.gain_factor.values, gain)  # a data variable, not CF packing
    np.testing.assert_array_equal(ds.mascon_id.values, ids)
    np.testing.assert_array_equal(ds.land_mask.values, mask)
    np.testing.assert_array_equal(ds.time.values, times.values)
    assert ds.attrs["gain_factors_applied"] == 0 and ds.lwe_thickness.attrs["units"] == "m"
    assert pd.Timestamp(ds.time_bounds.values[0, 0]) == pd.Timestamp("2002-04-01")
    applied = D.apply_gain_factors(ds)
    np.testing.assert_allclose(applied.lwe_thickness.values, ds.lwe_thickness.values * gain, rtol=1e-15)
    with pytest.raises(ValueError, match="already applied"):
        D.apply_gain_factors(applied)


def test_jpl_writer_follows_the_jpl_convention_read_with_plain_netcdf4(tmp_path):
    """The file the reader tests use, checked without cryograd against the JPL RL06.3 v04
    layout (FORMATS.md): cm, the -99999 fill, days since 2002-01-01 at mid-month with
    bounds, latitude ascending from -89.75 and longitude 0.25..359.75 for a 0.5-degree grid,
    (time, lat, lon) axis order, gain factors as the data variable `scale_factor`."""
    import netCDF4

    lwe = np.full((2, 360, 720), 0.05)
    lwe[1, 10, 20] = np.nan
    times = pd.DatetimeIndex(["2002-04-16 12:00", "2002-05-16"])
    path = tmp_path / "GRCTellus.JPL.200204_200205.GLO.RL06.3M.MSCNv04CRI.nc"
    D.write_jpl_mascons(path, lwe, times, gain_factor=np.full((360, 720), 1.5))
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(False)
        variable = nc["lwe_thickness"]
        assert variable.dimensions == ("time", "lat", "lon")
        assert variable.units == "cm" and variable._FillValue == -99999
        assert variable[0, 0, 0] == pytest.approx(5.0, rel=1e-15)  # 0.05 m stored as 5 cm
        assert variable[1, 10, 20] == -99999
        assert nc["time"].units.startswith("days since 2002-01-01")
        np.testing.assert_allclose(nc["time"][:], [105.5, 135.0])  # 16 April 12:00 and 16 May
        assert nc["time_bounds"].shape == (2, 2)
        lat, lon = nc["lat"][:], nc["lon"][:]
        assert lat[0] == -89.75 and lat[-1] == 89.75 and np.all(np.diff(lat) == 0.5)
        assert lon[0] == 0.25 and lon[-1] == 359.75 and np.all(np.diff(lon) == 0.5)
        assert nc["scale_factor"].dimensions == ("lat", "lon") and float(nc["scale_factor"][0, 0]) == 1.5
        assert "scale_factor" not in variable.ncattrs()  # not CF packing


def test_older_jpl_release_with_separate_gain_factor_and_land_mask_files(tmp_path):
    lwe = np.ones((2, 6, 12)) * 0.2
    D.write_jpl_mascons(tmp_path / "jpl_v02.nc", lwe, months(2))
    lat, lon = np.arange(-75, 90, 30.0), np.arange(15, 360, 30.0)
    gain = np.linspace(0.5, 1.5, 72).reshape(6, 12)
    xr.Dataset(dict(scale_factor=(("lat", "lon"), gain)), coords=dict(lat=lat, lon=lon)).to_netcdf(
        tmp_path / "CLM4.SCALE_FACTOR.JPL.MSCNv02CRI.nc"
    )
    xr.Dataset(dict(land_mask=(("lat", "lon"), np.ones((6, 12)))), coords=dict(lat=lat, lon=lon)).to_netcdf(
        tmp_path / "LAND_MASK.CRI.nc"
    )
    ds = D.open_grace(
        tmp_path / "jpl_v02.nc",
        gain_factors=tmp_path / "CLM4.SCALE_FACTOR.JPL.MSCNv02CRI.nc",
        land_mask=tmp_path / "LAND_MASK.CRI.nc",
    )
    np.testing.assert_array_equal(ds.gain_factor.values, gain)
    assert float(ds.land_mask.sum()) == 72
    np.testing.assert_allclose(ds.lwe_thickness.values, 0.2, rtol=1e-15)  # still not applied
    with pytest.raises(ValueError, match="gain_factors"):
        D.open_grace(tmp_path / "jpl_v02.nc", gain_factors=tmp_path / "missing.nc")


def test_csr_units_attribute_is_decoded(tmp_path):
    lwe = np.random.default_rng(1).normal(size=(3, 8, 16))
    times = pd.DatetimeIndex(["2002-04-17 12:00", "2002-05-16", "2018-06-20"])
    D.write_csr_mascons(tmp_path / "CSR_GRACE_RL06_Mascons.nc", lwe, times)
    raw = xr.open_dataset(tmp_path / "CSR_GRACE_RL06_Mascons.nc")
    assert raw.time.dtype.kind == "f" and "Units" in raw.time.attrs  # the trap: xarray leaves it undecoded
    ds = D.open_grace(tmp_path / "CSR_GRACE_RL06_Mascons.nc")
    np.testing.assert_array_equal(ds.time.values, times.values)
    assert float(raw.time[0]) == 106.5  # days since 2002-01-01 for 2002-04-17 12:00
    np.testing.assert_allclose(ds.lwe_thickness.values, lwe, rtol=4e-16)
    assert ds.attrs["product"] == "CSR mascons"


def test_gsfc_january_zero_origin_and_two_sigma(tmp_path):
    times = pd.DatetimeIndex(["2002-01-01", "2002-02-01", "2016-07-16"])
    lwe = np.array([[0.1, 0.2, 0.3], [-0.1, 0.0, 0.4]])
    noise = np.full((2, 3), 0.02)
    path = tmp_path / "GSFC.glb.test.h5"
    D.write_gsfc_mascons(path, lwe, times, [61.0, 62.0], [-45.0, 315.5], 1.0, 1.0, noise=noise, land=[True, False])
    import h5py

    with h5py.File(path) as f:
        # pinned: 2002-01-01 is day 1 counted from "2002 January 0", 2002-02-01 day 32
        np.testing.assert_array_equal(f["time/ref_days_middle"][:2], [1.0, 32.0])
        np.testing.assert_array_equal(f["uncertainty/noise_2sigma"][()], 2 * noise * 100)
        assert f["mascon/lat_center"].shape == (1, 2)
    ds = D.open_grace(path)
    np.testing.assert_array_equal(ds.time.values, times.values)
    np.testing.assert_allclose(ds.lwe_thickness.values, lwe.T, rtol=4e-16)
    np.testing.assert_allclose(ds.noise_uncertainty.values, noise.T, rtol=1e-15)  # 1-sigma again
    assert "1-sigma" in ds.noise_uncertainty.attrs["long_name"]
    assert ds.land.values.tolist() == [True, False]
    expected_area = R**2 * np.radians(1.0) * (np.sin(np.radians(61.5)) - np.sin(np.radians(60.5)))
    assert float(ds.area[0]) == pytest.approx(expected_area, rel=1e-12)
    assert D.glacier_mascons(ds, [61.2, 62.3, 0.0], [-44.8, -44.3, 0.0]).tolist() == [0, 1, -1]
    mass = D.regional_mass(ds, mask=xr.DataArray([True, True], dims="mascon"))
    np.testing.assert_allclose(mass.mass.values, (lwe * ds.area.values[:, None]).sum(0) * 1000 / 1e12, rtol=1e-14)
    sigma = np.sqrt(((noise * ds.area.values[:, None]) ** 2).sum(0)) * 1000 / 1e12
    np.testing.assert_allclose(mass.mass_uncertainty.values, sigma, rtol=1e-14)


def test_regional_mass_against_analytic_cap_and_box(tmp_path):
    n_lat = 360  # 0.5 degree
    lat = np.arange(-89.75, 90, 0.5)
    lwe = np.zeros((2, n_lat, 2 * n_lat))
    lwe[0, lat > 60] = 1.0  # 1 m water north of 60 N
    lwe[1] = 0.25
    ids = (np.arange(n_lat)[:, None] // 6) * 1000 + (np.arange(2 * n_lat)[None, :] // 6)  # 3-degree mascons
    sigma = np.full(lwe.shape, 0.05)
    path = tmp_path / "jpl.nc"
    D.write_jpl_mascons(path, lwe, months(2), uncertainty=sigma, mascon_id=ids, dtype="float32")
    ds = D.open_grace(path)
    cap = D.regional_mass(ds, mask=(ds.lat > 60).broadcast_like(ds.lwe_thickness.isel(time=0)))
    cap_area = 2 * np.pi * R**2 * (1 - np.sin(np.radians(60)))
    assert float(cap.mass[0]) == pytest.approx(1000 * cap_area / 1e12, rel=1e-12)
    assert float(cap.mass[1]) == pytest.approx(250 * cap_area / 1e12, rel=1e-12)
    # the uncertainty is per 3-degree mascon: 0.05 m over each whole mascon, mascons independent
    band_area = (
        R**2 * np.radians(3.0) * (np.sin(np.radians(np.arange(63, 91, 3))) - np.sin(np.radians(np.arange(60, 90, 3))))
    )
    expected = np.sqrt(120 * ((0.05 * band_area) ** 2).sum()) * 1000 / 1e12
    assert float(cap.mass_uncertainty[0]) == pytest.approx(expected, rel=1e-9)
    # a lon/lat box in -180..180 on the 0..360 grid: cells whose centres fall inside
    box = shapely.box(-50.0, 60.0, -30.0, 70.0)
    mass = D.regional_mass(ds, polygon=box)
    area = R**2 * np.radians(20.0) * (np.sin(np.radians(70)) - np.sin(np.radians(60)))
    assert float(mass.mass[0]) == pytest.approx(1000 * area / 1e12, rel=1e-12)
    assert mass.attrs["area_m2"] == pytest.approx(area, rel=1e-12)
    # glaciers to mascons: the id of the cell holding each point, either longitude convention
    assert D.glacier_mascons(ds, [60.1, 60.1], [-44.9, 315.1]).tolist() == [ids[300, 630]] * 2
    with pytest.raises(ValueError, match="selects no cell"):
        D.regional_mass(ds, polygon=shapely.box(10.0, 10.0, 10.1, 10.1))


def test_refusals(tmp_path):
    other = tmp_path / "era5.nc"
    xr.Dataset(dict(t2m=(("time",), [1.0])), coords=dict(time=[0.0])).to_netcdf(other)
    with pytest.raises(ValueError, match=r"era5.nc: variable 'lwe_thickness' not found"):
        D.open_grace(other)
    bad_time = tmp_path / "bad_time.nc"
    ds = xr.Dataset(
        dict(lwe_thickness=(("time", "lat", "lon"), np.ones((1, 2, 4)), {"units": "cm"})),
        coords=dict(time=("time", [5.0], {"units": "months since 2002"}), lat=[-45.0, 45.0], lon=[45.0, 135, 225, 315]),
    )
    ds.to_netcdf(bad_time)
    with pytest.raises(ValueError, match=r"bad_time.nc: variable 'time' has units 'months since 2002'"):
        D.open_grace(bad_time)
    no_units = tmp_path / "no_units.nc"
    ds["time"].attrs = {}
    ds.to_netcdf(no_units)
    with pytest.raises(ValueError, match="'time' has no units"):
        D.open_grace(no_units)
    fill = tmp_path / "fill.nc"
    D.write_jpl_mascons(fill, np.full((2, 2, 4), np.nan), months(2))
    with pytest.raises(ValueError, match="only fill values"):
        D.open_grace(fill)
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(ValueError, match="not a GRACE product"):
        D.open_grace(text)
    h5 = tmp_path / "other.h5"
    import h5py

    with h5py.File(h5, "w") as f:
        f["data"] = np.ones(3)
    with pytest.raises(ValueError, match=r"other.h5: variable '/solution/cmwe' not found"):
        D.open_grace(h5)
    broken = tmp_path / "series.txt"
    broken.write_text("HDR x\nHDR Header_End\n2002.29 0.0 abc\n")
    with pytest.raises(ValueError, match="not numbers"):
        D.open_grace(broken)


def test_jpl_sized_file_opens_lazily_and_gives_a_regional_series(tmp_path):
    """The time is printed, not asserted (wall-clock bounds fail on a shared machine)."""
    n_time = 241
    path = tmp_path / "jpl_full.nc"
    lat = np.arange(-89.75, 90, 0.5)
    lon = np.arange(0.25, 360, 0.5)
    field = (np.cos(np.radians(lat))[:, None] * np.sin(np.radians(lon))[None, :]).astype(np.float32)
    trend = np.linspace(0, -1, n_time, dtype=np.float32)
    lwe = field[None] + trend[:, None, None]  # (241, 360, 720) [m]
    D.write_jpl_mascons(path, lwe, months(n_time), dtype="float32")
    del lwe
    start = time.perf_counter()
    ds = D.open_grace(path)
    lazy = ds.lwe_thickness.chunks is not None
    greenland = shapely.Polygon([(-55, 60), (-20, 60), (-10, 83), (-70, 83)])
    series = D.regional_mass(ds, polygon=greenland).mass.values
    seconds = time.perf_counter() - start
    assert lazy and series.shape == (n_time,)
    mask = D.regional_mass(ds, polygon=greenland).attrs["area_m2"]
    assert series[-1] - series[0] == pytest.approx(-1000 * mask / 1e12, rel=1e-5)  # float32 storage
    print(f"open and Greenland series: {seconds:.2f} s")


@pytest.mark.parametrize(
    ("scale", "units"), [(1.0, "cm"), (10.0, "mm"), (0.01, "m"), (1.0, "centimeter"), (1e4, "micrometer")]
)
def test_mascon_thickness_in_any_length_unit(tmp_path, scale, units):
    """The same water column written in cm, mm, m (or spelled out) reads as the same metres;
    expected: the centimetres divided by 100 by hand."""
    cm = np.arange(8.0).reshape(1, 2, 4) - 3.0
    path = tmp_path / "lwe.nc"
    ds = xr.Dataset(
        dict(lwe_thickness=(("time", "lat", "lon"), cm * scale, {"units": units})),
        coords=dict(
            time=("time", [15.5], {"units": "days since 2002-01-01"}), lat=[-45.0, 45.0], lon=[45.0, 135, 225, 315]
        ),
    )
    ds.to_netcdf(path)
    np.testing.assert_allclose(D.open_grace(path).lwe_thickness.values, cm / 100.0, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("units", "message"), [("kg m-2", "expected a length"), ("cm s-1", "expected a length"), (None, "has no units")]
)
def test_mascon_thickness_in_a_wrong_or_no_unit_is_refused(tmp_path, units, message):
    path = tmp_path / "lwe.nc"
    xr.Dataset(
        dict(lwe_thickness=(("time", "lat", "lon"), np.ones((1, 2, 4)), {} if units is None else {"units": units})),
        coords=dict(
            time=("time", [15.5], {"units": "days since 2002-01-01"}), lat=[-45.0, 45.0], lon=[45.0, 135, 225, 315]
        ),
    ).to_netcdf(path)
    with pytest.raises(ValueError, match=rf"lwe.nc: variable 'lwe_thickness' .*{message}"):
        D.open_grace(path)
