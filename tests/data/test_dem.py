"""DEMs: the real SRTM clips of Hintereisferner and the Ötztal with their RGI outlines,
hypsometry against the RGI areas, geodesic pixel areas, DEM differencing and geodetic mass
balance on a known field, the GeoTIFF round trip and the refusals."""

import geopandas as gpd
import hypothesis.extra.numpy as hnp
import numpy as np
import pyproj
import pytest
import rasterio
import rasterio.features
import shapely
import xarray as xr
from hypothesis import HealthCheck, given, settings, strategies as st

import cryograd.data as D

HEF_DEM = D.sample_path("hintereisferner_dem")
HEF_OUTLINE = D.sample_path("hintereisferner_outline")
OETZTAL_DEM = D.sample_path("oetztal_dem")
OETZTAL_OUTLINES = D.sample_path("oetztal_outlines")


def plain_inside(tif, shp):
    """Elevations of the pixels whose centres lie inside the outlines, with plain rasterio."""
    outlines = gpd.read_file(shp)
    with rasterio.open(tif) as src:
        band = src.read(1)
        inside = rasterio.features.geometry_mask(
            outlines.to_crs(src.crs).geometry, out_shape=band.shape, transform=src.transform, invert=True
        )
    return band[inside].astype(float), outlines


@pytest.mark.parametrize("tif, shp", [(HEF_DEM, HEF_OUTLINE), (OETZTAL_DEM, OETZTAL_OUTLINES)])
def test_dem_statistics_inside_the_outlines(tif, shp):
    dem = D.open_dem(tif)
    assert dem.dtype == np.float64 and dem.attrs["units"] == "m"
    assert dem.attrs["vertical_datum"] == "EGM96" and dem.attrs["vertical_datum_source"] == "file name (SRTM)"
    assert dem.rio.crs.to_epsg() == 4326
    expected, outlines = plain_inside(tif, shp)
    assert expected.min() > 0  # no void pixel inside these outlines
    z = dem.values[D.outline_mask(dem, shp).values]
    np.testing.assert_array_equal(np.sort(z), np.sort(expected))
    if len(outlines) == 1:  # Hintereisferner against the RGI's own statistics (another DEM)
        rgi = outlines.iloc[0]
        assert (z.min(), z.max(), np.median(z)) == (2444.0, 3679.0, 3056.0)
        assert abs(z.min() - rgi.Zmin) < 30 and abs(z.max() - rgi.Zmax) < 30 and abs(np.median(z) - rgi.Zmed) < 30
    else:
        assert (z.min(), z.max(), np.median(z)) == (2143.0, 3727.0, 3089.0)


def test_hypsometry_area_matches_rgi():
    hef = D.hypsometry(D.open_dem(HEF_DEM), HEF_OUTLINE, bin_size=50.0)
    rgi_area = gpd.read_file(HEF_OUTLINE).Area.iloc[0] * 1e6
    assert abs(float(hef.total_area) / rgi_area - 1) < 0.02  # measured 0.02 %
    assert hef.elevation.ndim == 1 and np.all(np.diff(np.asarray(hef.elevation)) == 50.0)
    assert float(hef.elevation[0]) == 2425.0 and float(hef.elevation[-1]) == 3675.0  # bins 2400-2450 .. 3650-3700
    outlines = gpd.read_file(OETZTAL_OUTLINES)
    region = D.hypsometry(D.open_dem(OETZTAL_DEM), outlines, bin_size=50.0)
    assert region.area.shape[0] == 20
    relative = np.asarray(region.total_area) / (outlines.Area.to_numpy() * 1e6) - 1
    assert np.all(np.abs(relative) < 0.02)  # measured: worst 0.47 %, the region 0.0003 %
    # the region's row for Hintereisferner is the single-glacier hypsometry (RGI5 vs RGI6 outline aside)
    assert abs(float(region.total_area.sum()) / (outlines.Area.sum() * 1e6) - 1) < 0.005


def test_hypsometry_subpixels_and_voids(tmp_path):
    dem = D.open_dem(HEF_DEM)
    centre_rule = D.hypsometry(dem, HEF_OUTLINE, subpixels=1)
    fine = D.hypsometry(dem, HEF_OUTLINE, subpixels=4)
    rgi_area = 8.036e6
    # fractional coverage is the closer estimate of the outlined area (0.84 % vs 0.02 %)
    assert abs(float(fine.total_area) - rgi_area) < abs(float(centre_rule.total_area) - rgi_area)
    # a void of 2 % of the glacier: the area is kept, spread over the measured hypsometry
    holed = dem.copy()
    inside = np.argwhere(D.outline_mask(dem, HEF_OUTLINE).values)
    holed.values[tuple(inside[:40].T)] = np.nan
    assert float(D.hypsometry(holed, HEF_OUTLINE).total_area) == pytest.approx(float(fine.total_area), rel=1e-12)
    holed.values[tuple(inside[:400].T)] = np.nan
    with pytest.raises(ValueError, match="void"):
        D.hypsometry(holed, HEF_OUTLINE)


def test_pixel_area_is_geodesic():
    dem = D.open_dem(HEF_DEM)
    west, south, east, north = dem.rio.bounds()
    # the area between two parallels on the WGS84 ellipsoid, in closed form
    a, f = 6378137.0, 1 / 298.257223563
    e = np.sqrt(f * (2 - f))

    def from_equator(lat):
        s = np.sin(np.radians(lat))
        return a**2 * (1 - e**2) / 2 * (s / (1 - e**2 * s**2) + np.log((1 + e * s) / (1 - e * s)) / (2 * e))

    box_area = np.radians(east - west) * (from_equator(north) - from_equator(south))
    assert float(D.pixel_area(dem).sum()) == pytest.approx(box_area, rel=1e-9)
    geod = pyproj.Geod(ellps="WGS84")
    # a projected grid (UTM 32N): each cell against the geodesic area of its corners
    x = 640_000.0 + 90.0 * np.arange(5)
    y = 5_190_000.0 - 90.0 * np.arange(4)
    utm = D.pixel_area(_grid(np.full((4, 5), 2000.0), x, y, "EPSG:32632"))
    to_geographic = pyproj.Transformer.from_crs("EPSG:32632", "EPSG:4326", always_xy=True)
    for i, j in [(0, 0), (3, 4), (1, 2)]:
        xs = [x[j] - 45, x[j] + 45, x[j] + 45, x[j] - 45]
        ys = [y[i] - 45, y[i] - 45, y[i] + 45, y[i] + 45]
        lon, lat = to_geographic.transform(xs, ys)
        assert float(utm[i, j]) == pytest.approx(abs(geod.polygon_area_perimeter(lon, lat)[0]), rel=1e-6)


def _grid(values, x, y, crs):
    da = xr.DataArray(values, coords={"y": y, "x": x}, dims=("y", "x"), attrs={"vertical_datum": "unknown"})
    return da.rio.write_crs(crs)


fields = hnp.arrays(
    np.float32,
    st.tuples(st.integers(2, 12), st.integers(2, 12)),
    elements=st.floats(-400, 8800, width=32, allow_nan=False) | st.just(np.nan),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=fields,
    crs=st.sampled_from(["EPSG:4326", "EPSG:32632", "EPSG:3413"]),
    dtype=st.sampled_from(["float32", "int16"]),
    datum=st.sampled_from([None, "EGM96", "EGM2008", "WGS84 ellipsoid"]),
)
def test_write_dem_round_trip(tmp_path, values, crs, dtype, datum):
    if np.all(np.isnan(values)):
        values[0, 0] = 1000.0
    step = 0.001 if crs == "EPSG:4326" else 30.0
    x0, y0 = (10.0, 47.0) if crs == "EPSG:4326" else (500_000.0, 5_000_000.0)
    x = x0 + step * np.arange(values.shape[1])
    y = y0 - step * np.arange(values.shape[0])
    path = tmp_path / "dem.tif"
    D.write_dem(path, values, x=x, y=y, crs=crs, dtype=dtype, vertical_datum=datum)
    dem = D.open_dem(path)
    expected = np.round(values.astype(np.float64)) if dtype == "int16" else values.astype(np.float64)
    np.testing.assert_array_equal(dem.values, expected)
    np.testing.assert_allclose(dem.x.values, x, rtol=0, atol=1e-9 * step)
    np.testing.assert_allclose(dem.y.values, y, rtol=0, atol=1e-9 * step)
    assert dem.rio.crs == rasterio.crs.CRS.from_user_input(crs)
    assert dem.attrs["vertical_datum"] == (datum or "unknown")
    if datum in ("EGM96", "EGM2008"):
        assert dem.attrs["vertical_datum_source"] == "compound CRS"
    # and again from the DataArray itself
    D.write_dem(tmp_path / "again.tif", dem, dtype=dtype)
    again = D.open_dem(tmp_path / "again.tif")
    np.testing.assert_array_equal(again.values, dem.values)
    assert again.attrs["vertical_datum"] == dem.attrs["vertical_datum"]


def test_untagged_int16_nodata_is_nan(tmp_path):
    band = np.array([[1000, -32768], [1200, 1300]], np.int16)
    path = tmp_path / "clip.tif"
    profile = dict(driver="GTiff", height=2, width=2, count=1, dtype="int16", crs="EPSG:4326")
    with rasterio.open(path, "w", transform=rasterio.transform.from_origin(10, 47, 0.01, 0.01), **profile) as out:
        out.write(band, 1)
    with rasterio.open(path) as src:
        assert src.nodata is None
    dem = D.open_dem(path, vertical_datum="egm96")
    assert np.isnan(dem.values[0, 1]) and np.nansum(dem.values) == 3500.0
    assert dem.attrs["vertical_datum"] == "EGM96" and dem.attrs["vertical_datum_source"] == "given"


def test_elevation_change_and_geodetic_mass_balance_on_a_known_field(tmp_path):
    old = D.open_dem(HEF_DEM)
    inside = D.outline_mask(old, HEF_OUTLINE)
    D.write_dem(tmp_path / "old.tif", old, dtype="float32")
    D.write_dem(tmp_path / "new.tif", old - 2.0 - 0.001 * (old - 3000.0) * inside, dtype="float32")
    new, old = D.open_dem(tmp_path / "new.tif"), D.open_dem(tmp_path / "old.tif")
    dh = D.elevation_change(new, old, years=10.0)
    expected_rate = (new.values - old.values) / 10.0
    np.testing.assert_allclose(dh.values, expected_rate, rtol=0, atol=1e-12)
    assert dh.attrs["units"] == "m yr-1" and dh.attrs["vertical_datum"] == "EGM96"
    assert np.nanmax(np.abs(dh.values[~inside.values] + 0.2)) < 1e-4  # -2 m off the glacier, float32 heights
    # old on a smaller grid: resampled onto new's pixels, which it shares
    D.write_dem(tmp_path / "old_crop.tif", old.isel(y=slice(20, 260), x=slice(10, 370)), dtype="float32")
    cropped = D.elevation_change(new, D.open_dem(tmp_path / "old_crop.tif"), years=10.0, mask=HEF_OUTLINE)
    assert np.isnan(cropped.values[0, 0]) and np.isnan(cropped.values[~inside.values]).all()
    np.testing.assert_allclose(cropped.values[inside.values], expected_rate[inside.values], rtol=0, atol=1e-4)

    # a uniform -2 m in 10 years, with a void: the mean rate stands for the whole outline
    uniform = dh.copy(data=np.full(dh.shape, -0.2))
    uniform.values[tuple(np.argwhere(inside.values)[:50].T)] = np.nan
    balance = D.geodetic_mass_balance(uniform, HEF_OUTLINE, dh_uncertainty=0.05)
    assert balance.glacier.values.tolist() == ["RGI60-11.00897"]
    area = float(balance.area[0])
    assert area == pytest.approx(float(D.hypsometry(old, HEF_OUTLINE).total_area), rel=1e-12)
    assert float(balance.elevation_change_rate[0]) == pytest.approx(-0.2, rel=1e-12)
    assert 0.95 < float(balance.measured_area_fraction[0]) < 0.99
    volume = -0.2 * area  # m3 yr-1
    assert float(balance.volume_change_rate[0]) == pytest.approx(volume, rel=1e-12)
    assert float(balance.specific_mass_balance_rate[0]) == pytest.approx(-170.0, rel=1e-12)
    # Hugonnet et al. (2021): mass in w.e. = 0.85 V, error sqrt((err_V 0.85)^2 + (V 0.06)^2)
    sigma_we = np.sqrt((0.05 * area * 0.85) ** 2 + (volume * 0.06) ** 2)  # m3 w.e. yr-1
    assert float(balance.mass_change_rate_uncertainty[0]) == pytest.approx(sigma_we * 1000 * 1e-12, rel=1e-12)
    assert float(balance.specific_mass_balance_rate_uncertainty[0]) == pytest.approx(sigma_we * 1000 / area, rel=1e-12)
    # the glacier's own, non-uniform rate lies between its values at the ends of the glacier
    mean_rate = float(D.geodetic_mass_balance(dh, HEF_OUTLINE).elevation_change_rate[0])
    assert -0.2 - 0.0001 * (3679 - 3000) < mean_rate < -0.2 - 0.0001 * (2444 - 3000)
    with pytest.raises(ValueError, match="years"):
        D.geodetic_mass_balance(D.elevation_change(new, old), HEF_OUTLINE)
    # the same field in other units (cryograd._units): an elevation change over 10 years or a rate
    change = uniform * 10.0  # [m]
    cases = [
        (change.assign_attrs(units="m"), 10.0),
        ((change * 100.0).assign_attrs(units="cm"), 10.0),
        (uniform.assign_attrs(units="m a-1"), None),
        ((uniform * 100.0).assign_attrs(units="cm yr-1"), None),
    ]
    for field, span in cases:
        rate = D.geodetic_mass_balance(field, HEF_OUTLINE, years=span).elevation_change_rate
        assert float(rate[0]) == pytest.approx(-0.2, rel=1e-12), field.attrs["units"]
    with pytest.raises(ValueError, match=r"dh: units 'kg m-2' are neither an elevation change"):
        D.geodetic_mass_balance(uniform.assign_attrs(units="kg m-2"), HEF_OUTLINE)


def test_refusals(tmp_path):
    dem = D.open_dem(HEF_DEM)
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    with pytest.raises(ValueError, match=r"notes.tif: not a raster"):
        D.open_dem(text)
    with pytest.raises(ValueError, match="file not found"):
        D.open_dem(tmp_path / "missing.tif")
    profile = dict(driver="GTiff", height=2, width=2, count=1, dtype="float32")
    with rasterio.open(tmp_path / "nocrs.tif", "w", **profile) as out:
        out.write(np.ones((2, 2), np.float32), 1)
    with pytest.raises(ValueError, match=r"nocrs.tif: no coordinate reference system"):
        D.open_dem(tmp_path / "nocrs.tif")
    x, y = 10 + 0.01 * np.arange(2), 47 - 0.01 * np.arange(2)
    D.write_dem(tmp_path / "empty.tif", np.full((2, 2), np.nan), x=x, y=y, crs="EPSG:4326")
    with pytest.raises(ValueError, match=r"empty.tif: band 1 'elevation' is all nodata"):
        D.open_dem(tmp_path / "empty.tif")
    D.write_dem(tmp_path / "millimetres.tif", np.full((2, 2), 3.0e6), x=x, y=y, crs="EPSG:4326")
    with pytest.raises(ValueError, match=r"millimetres.tif: band 1 spans .* not elevations in metres"):
        D.open_dem(tmp_path / "millimetres.tif")
    D.write_dem(tmp_path / "geoid.tif", np.ones((2, 2)), x=x, y=y, crs="EPSG:4326", vertical_datum="EGM2008")
    with pytest.raises(ValueError, match=r"vertical_datum: .*EGM2008, not EGM96"):
        D.open_dem(tmp_path / "geoid.tif", vertical_datum="EGM96")
    # outlines: no overlap, partly outside, no CRS, not polygons
    far = gpd.GeoSeries([shapely.box(12.0, 46.0, 12.1, 46.1)], crs="EPSG:4326")
    with pytest.raises(ValueError, match="outline: polygon 0 does not overlap the DEM"):
        D.hypsometry(dem, far)
    two = gpd.GeoSeries([shapely.box(10.7, 46.8, 10.75, 46.85), shapely.box(10.9, 46.0, 10.95, 46.1)], crs="EPSG:4326")
    with pytest.raises(ValueError, match="outline: polygon 1 does not overlap the DEM"):
        D.hypsometry(dem, two)
    with pytest.raises(ValueError, match="outline: no DEM pixel"):
        D.outline_mask(dem, far)
    east = dem.rio.bounds()[2]
    edge = gpd.GeoSeries([shapely.box(east - 0.05, 46.8, east + 0.05, 46.85)], crs="EPSG:4326")
    with pytest.raises(ValueError, match="lies outside the DEM"):
        D.hypsometry(dem, edge)
    with pytest.raises(ValueError, match="has no CRS"):
        D.hypsometry(dem, gpd.GeoSeries([shapely.box(10.7, 46.8, 10.75, 46.85)]))
    with pytest.raises(ValueError, match="not polygons"):
        D.hypsometry(dem, gpd.GeoSeries([shapely.Point(10.7, 46.8)], crs="EPSG:4326"))
    with pytest.raises(ValueError, match=r"outline: .*file not found"):
        D.hypsometry(dem, tmp_path / "outline.shp")
    # mixed vertical datums
    ellipsoidal = dem.copy()
    ellipsoidal.attrs["vertical_datum"] = "WGS84 ellipsoid"
    with pytest.raises(ValueError, match="vertical datum 'EGM96' and old on 'WGS84 ellipsoid'"):
        D.elevation_change(dem, ellipsoidal)
    unknown = dem.copy()
    unknown.attrs["vertical_datum"] = "unknown"
    with pytest.raises(ValueError, match="vertical datum"):
        D.elevation_change(dem, unknown)
    with pytest.warns(UserWarning, match="no recorded vertical datum"):
        D.elevation_change(unknown, unknown.copy())


def test_open_outlines_ids_positions_and_refusals(tmp_path):
    """The Ötztal's RGI outlines: ids stripped, positions the RGI's CenLat/CenLon; without
    those columns a point inside each outline; a missing or repeating id column and a file
    without a CRS are refused."""
    outlines = D.open_outlines(OETZTAL_OUTLINES)
    raw = gpd.read_file(OETZTAL_OUTLINES)
    assert outlines.glacier_id.tolist() == raw.RGIId.str.strip().tolist() and len(outlines) == 20
    np.testing.assert_array_equal(outlines.latitude, raw.CenLat.astype(float))
    plain = tmp_path / "plain.gpkg"
    raw.drop(columns=["CenLat", "CenLon"]).to_crs("EPSG:32632").to_file(plain)  # projected, no centres
    inside = D.open_outlines(plain)
    points = gpd.points_from_xy(inside.longitude, inside.latitude, crs="EPSG:4326").to_crs("EPSG:32632")
    assert all(g.contains(p) for g, p in zip(inside.geometry, points, strict=True))
    assert np.abs(inside.latitude - raw.CenLat).max() < 0.05  # within a few km of the RGI's centre
    with pytest.raises(ValueError, match="id_column: the outlines have no column 'rgi_id'"):
        D.open_outlines(OETZTAL_OUTLINES, id_column="rgi_id")
    with pytest.raises(ValueError, match="id_column: 'O1Region' repeats ids"):
        D.open_outlines(OETZTAL_OUTLINES, id_column="O1Region")
    raw.to_file(tmp_path / "bare.shp")
    (tmp_path / "bare.prj").unlink()  # a shapefile without its .prj
    with pytest.raises(ValueError, match=r"bare\.shp: no coordinate reference system"):
        D.open_outlines(tmp_path / "bare.shp")
