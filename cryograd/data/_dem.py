"""Digital elevation models: GeoTIFF reading with nodata and vertical datum, glacier
hypsometry from outlines, DEM differencing, geodetic mass balance, and a GeoTIFF writer.

Product facts (SRTM int16 above EGM96 with nodata -32768, sometimes untagged; Copernicus
GLO-30 float32 above EGM2008; ArcticDEM above the WGS84 ellipsoid) and the Huss (2013)
density of 850 +- 60 kg m-3 for converting volume to mass are from the project's FORMATS
notes.
"""

import functools
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import shapely
import xarray as xr

from .. import _units
from ..physics import Hypsometry

VOLUME_DENSITY = 850.0
"""Density converting a glacier volume change to mass [kg m-3] (Huss 2013)."""
VOLUME_DENSITY_UNCERTAINTY = 60.0
"""1-sigma uncertainty of `VOLUME_DENSITY` [kg m-3]."""
ELEVATION_RANGE = (-1000.0, 9000.0)
"""Elevations a DEM in metres can hold [m]; a file outside it is not one."""

_DATUM_NAMES = {
    "egm96": "EGM96",
    "egm96 height": "EGM96",
    "egm2008": "EGM2008",
    "egm2008 height": "EGM2008",
    "wgs84 ellipsoid": "WGS84 ellipsoid",
    "wgs 84 ellipsoid": "WGS84 ellipsoid",
    "ellipsoid": "WGS84 ellipsoid",
}
_DATUM_EPSG = {"EGM96": 5773, "EGM2008": 3855}
_PRODUCT_DATUMS = (  # file-name hints of products with one documented vertical datum
    ("srtm", "EGM96", "SRTM"),
    ("copernicus_dsm", "EGM2008", "Copernicus GLO-30"),
    ("cop30", "EGM2008", "Copernicus GLO-30"),
    ("arcticdem", "WGS84 ellipsoid", "ArcticDEM"),
    ("rema", "WGS84 ellipsoid", "REMA"),
)
_TAG = "VERTICAL_DATUM"


@functools.cache
def _raster():
    """rasterio, with rioxarray's `.rio` accessor registered: imported at the first use of
    a DEM (they take ~0.5 s to import, which runs without DEMs need not pay)."""
    import rasterio
    import rasterio.crs
    import rasterio.enums
    import rasterio.errors
    import rasterio.features
    import rasterio.transform
    import rioxarray  # noqa: F401 (the .rio accessor)

    return rasterio


def _datum_name(name) -> str:
    text = str(name).strip()
    return _DATUM_NAMES.get(text.lower(), text)


def open_dem(path, *, vertical_datum=None, band: int = 1) -> xr.DataArray:
    """Read a GeoTIFF DEM as `elevation` [m], float64, dims (y, x), nodata as NaN.

    - Nodata: the file's nodata tag, and for int16 files also -32768 (SRTM clips often
      carry no tag). Non-finite values are NaN too.
    - CRS: kept (rioxarray `spatial_ref`); the horizontal part of a compound CRS.
    - Vertical datum, recorded in `attrs["vertical_datum"]` with where it came from in
      `attrs["vertical_datum_source"]`: `vertical_datum` if given ("EGM96", "EGM2008",
      "WGS84 ellipsoid" or any name), else the vertical part of a compound CRS, else the
      file's `VERTICAL_DATUM` tag (written by `write_dem`), else a product named in the
      file name (srtm -> EGM96, copernicus_dsm/cop30 -> EGM2008, arcticdem/rema ->
      WGS84 ellipsoid), else "unknown".

    Raises `ValueError` naming the file for a file GDAL cannot read, one without a CRS,
    all-nodata, values outside -1000..9000 m, or a given datum that contradicts the CRS.
    """
    rasterio = _raster()
    import rioxarray

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        raw = rioxarray.open_rasterio(path, masked=False)
    except (rasterio.errors.RasterioIOError, ValueError) as error:
        raise ValueError(f"{path}: not a raster GDAL can read ({error})") from None
    if not isinstance(raw, xr.DataArray):
        raise ValueError(f"{path}: holds several subdatasets, not one elevation raster")
    crs = raw.rio.crs
    if crs is None:
        raise ValueError(f"{path}: no coordinate reference system; a DEM must be georeferenced")
    if band not in raw["band"].values:
        raise ValueError(f"band: {path} has bands {raw['band'].values.tolist()}, not {band}")
    values = raw.sel(band=band).values
    elevation = values.astype(np.float64)
    invalid = ~np.isfinite(elevation)
    nodata = raw.rio.nodata
    if nodata is not None and np.isfinite(nodata):
        invalid |= values == nodata
    if values.dtype == np.int16:
        invalid |= values == -32768
    elevation[invalid] = np.nan
    if invalid.all():
        raise ValueError(f"{path}: band {band} 'elevation' is all nodata")
    low, high = np.nanmin(elevation), np.nanmax(elevation)
    if low < ELEVATION_RANGE[0] or high > ELEVATION_RANGE[1]:
        raise ValueError(
            f"{path}: band {band} spans {low:g}..{high:g}, outside {ELEVATION_RANGE} m: not elevations in metres"
        )
    horizontal, datum, source = _vertical_datum(path, pyproj.CRS.from_wkt(crs.to_wkt()), raw.attrs, vertical_datum)
    out = xr.DataArray(
        elevation,
        coords={"y": raw["y"].values, "x": raw["x"].values},
        dims=("y", "x"),
        name="elevation",
        attrs=dict(
            units="m",
            long_name="surface elevation",
            vertical_datum=datum,
            vertical_datum_source=source,
            source=path.name,
        ),
    )
    return out.rio.write_crs(horizontal).rio.write_transform(raw.rio.transform())


def _vertical_datum(path, crs, tags, given):
    """(horizontal CRS, datum name, where the name came from)."""
    horizontal, from_crs = crs, None
    if crs.is_compound:
        horizontal = crs.sub_crs_list[0]
        from_crs = _datum_name(crs.sub_crs_list[1].name)
    if given is not None:
        datum = _datum_name(given)
        if from_crs is not None and from_crs != datum:
            raise ValueError(f"vertical_datum: {path} has a compound CRS on {from_crs}, not {datum}")
        return horizontal, datum, "given"
    if from_crs is not None:
        return horizontal, from_crs, "compound CRS"
    if _TAG in tags:
        return horizontal, _datum_name(tags[_TAG]), f"{_TAG} tag"
    name = path.name.lower()
    for hint, datum, product in _PRODUCT_DATUMS:
        if hint in name:
            return horizontal, datum, f"file name ({product})"
    return horizontal, "unknown", "none"


def write_dem(path, elevation, *, x=None, y=None, crs=None, dtype="float32", nodata=None, vertical_datum=None):
    """Write a single-band GeoTIFF DEM.

    `elevation` [m] is either a DataArray from `open_dem` (grid, CRS and datum taken from
    it) or a 2-D array (y, x) with pixel-centre coordinates `x`, `y` (regular steps, y
    north to south) and `crs`. NaN becomes `nodata` (default -32768 for int16, NaN for
    floats). int16 values are rounded. A known `vertical_datum` (EGM96, EGM2008) makes the
    CRS compound; every datum is also stored as the `VERTICAL_DATUM` tag.
    """
    rasterio = _raster()
    if isinstance(elevation, xr.DataArray) and elevation.rio.crs is not None:
        crs = elevation.rio.crs if crs is None else crs
        transform = elevation.rio.transform()
        if vertical_datum is None and elevation.attrs.get("vertical_datum", "unknown") != "unknown":
            vertical_datum = elevation.attrs["vertical_datum"]
        values = np.asarray(elevation.values, np.float64)
    else:
        values = np.asarray(elevation, np.float64)
        if x is None or y is None or crs is None:
            raise ValueError("x, y and crs are required when elevation is not a georeferenced DataArray")
        transform = _transform(values, np.asarray(x, np.float64), np.asarray(y, np.float64))
    if values.ndim != 2:
        raise ValueError(f"elevation must be 2-D (y, x), got shape {values.shape}")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype("int16"), np.dtype("float32"), np.dtype("float64")):
        raise ValueError(f"dtype must be int16, float32 or float64, got {dtype}")
    if nodata is None:
        nodata = -32768 if dtype == np.int16 else np.nan
    if dtype == np.int16:
        finite = values[np.isfinite(values)]
        if finite.size and (finite.min() <= -32768 or finite.max() > 32767):
            raise ValueError("elevation does not fit int16")
        data = np.where(np.isfinite(values), np.round(values), nodata).astype(np.int16)
    else:
        data = np.where(np.isfinite(values), values, nodata).astype(dtype)
    horizontal = pyproj.CRS.from_user_input(crs)
    tags = {}
    if vertical_datum is not None:
        datum = _datum_name(vertical_datum)
        tags[_TAG] = datum
        if datum in _DATUM_EPSG:
            vertical = pyproj.CRS.from_epsg(_DATUM_EPSG[datum])
            horizontal = pyproj.crs.CompoundCRS(f"{horizontal.name} + {vertical.name}", [horizontal, vertical])
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=data.shape[0],
        width=data.shape[1],
        count=1,
        dtype=data.dtype,
        crs=rasterio.crs.CRS.from_wkt(horizontal.to_wkt()),
        transform=transform,
        nodata=nodata,
    ) as out:
        out.write(data, 1)
        out.update_tags(**tags)


def _transform(values, x, y):
    rasterio = _raster()
    if x.shape != (values.shape[-1],) or y.shape != (values.shape[0],):
        raise ValueError(f"x ({x.shape}) and y ({y.shape}) must match elevation's (y, x) shape {values.shape}")
    dx, dy = np.diff(x), np.diff(y)
    if x.size < 2 or y.size < 2 or not (np.allclose(dx, dx[0]) and np.allclose(dy, dy[0])) or dx[0] <= 0 or dy[0] >= 0:
        raise ValueError("x must increase and y decrease in regular steps (pixel centres, north to south)")
    return rasterio.transform.from_origin(x[0] - dx[0] / 2, y[0] - dy[0] / 2, dx[0], -dy[0])


def _outlines(outline, crs) -> tuple[gpd.GeoSeries, np.ndarray]:
    """Outline polygons as a GeoSeries in `crs` (from a file, GeoDataFrame or GeoSeries),
    and their names (the `RGIId` column, else the row numbers)."""
    label = "outline"
    if isinstance(outline, (str, Path)):
        label = str(outline)
        if not Path(outline).exists():
            raise ValueError(f"outline: {outline}: file not found")
        try:
            outline = gpd.read_file(outline)
        except Exception as error:  # pyogrio raises its own error types
            raise ValueError(f"outline: {label}: not a vector file geopandas can read ({error})") from None
    if not isinstance(outline, (gpd.GeoDataFrame, gpd.GeoSeries)):
        raise ValueError(f"outline must be a file, GeoDataFrame or GeoSeries, got {type(outline).__name__}")
    names = np.arange(len(outline))
    if isinstance(outline, gpd.GeoDataFrame):
        if "RGIId" in outline:
            names = outline["RGIId"].to_numpy()
        outline = outline.geometry
    if outline.crs is None:
        raise ValueError(f"outline: {label} has no CRS")
    if outline.empty or outline.is_empty.any():
        raise ValueError(f"outline: {label} holds an empty geometry")
    kinds = set(outline.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise ValueError(f"outline: {label} holds {sorted(kinds)}, not polygons")
    return outline.to_crs(crs).reset_index(drop=True), names


def open_outlines(path, *, id_column: str = "RGIId") -> gpd.GeoDataFrame:
    """Glacier outlines (a shapefile, GeoPackage or GeoJSON) with an id per glacier and its
    position.

    **Returns:** the outlines in file order with `glacier_id` (str, stripped, from
    `id_column`) and `latitude`, `longitude` [degree] columns: the RGI's CenLat/CenLon
    where the file has them, else a point inside the outline (in EPSG:4326). Refused with a
    ValueError when `id_column` is missing or repeats ids, or the file has no CRS.
    """
    path = Path(path)
    outlines = gpd.read_file(path)
    if id_column not in outlines:
        raise ValueError(
            f"id_column: the outlines have no column {id_column!r}; they have {', '.join(outlines.columns)}"
        )
    ids = outlines[id_column].astype(str).str.strip()
    repeated = sorted(set(ids[ids.duplicated()]))
    if repeated:
        raise ValueError(f"id_column: {id_column!r} repeats ids {repeated[:5]}; each outline needs its own")
    if outlines.crs is None:
        raise ValueError(f"{path}: no coordinate reference system (.prj)")
    if {"CenLat", "CenLon"} <= set(outlines.columns):
        latitude, longitude = outlines.CenLat.to_numpy(dtype=float), outlines.CenLon.to_numpy(dtype=float)
    else:
        points = outlines.to_crs("EPSG:4326").geometry.representative_point()
        latitude, longitude = points.y.to_numpy(), points.x.to_numpy()
    return outlines.assign(glacier_id=ids.to_numpy(), latitude=latitude, longitude=longitude)


def _check_georeferenced(dem, name="dem"):
    _raster()  # the .rio accessor, for every function that takes a DEM
    if not isinstance(dem, xr.DataArray) or dem.rio.crs is None or set(dem.dims) != {"y", "x"}:
        raise ValueError(f"{name} must be a georeferenced (y, x) DataArray, as open_dem returns")


def outline_mask(dem: xr.DataArray, outline) -> xr.DataArray:
    """Boolean (y, x) mask of the DEM pixels whose centres lie inside `outline` (a file,
    GeoDataFrame or GeoSeries; reprojected to the DEM's CRS)."""
    rasterio = _raster()
    _check_georeferenced(dem)
    outlines, _ = _outlines(outline, dem.rio.crs)
    shape = (dem.sizes["y"], dem.sizes["x"])
    inside = rasterio.features.geometry_mask(outlines, out_shape=shape, transform=dem.rio.transform(), invert=True)
    if not inside.any():
        raise ValueError(f"outline: no DEM pixel centre lies inside it (DEM bounds {dem.rio.bounds()})")
    return xr.DataArray(inside, coords={"y": dem.y, "x": dem.x}, dims=("y", "x"), name="inside_outline")


def pixel_area(dem: xr.DataArray) -> xr.DataArray:
    """Area of each DEM pixel on the CRS's ellipsoid [m2]: geodesic for a geographic CRS,
    and for a projected CRS the grid cell divided by the projection's areal scale at the
    pixel centre."""
    _check_georeferenced(dem)
    rows, cols = np.indices((dem.sizes["y"], dem.sizes["x"]))
    area = _pixel_area_at(dem, rows.ravel(), cols.ravel()).reshape(rows.shape)
    coords = {"y": dem.y, "x": dem.x}
    return xr.DataArray(area, coords=coords, dims=("y", "x"), name="pixel_area", attrs={"units": "m2"})


def _pixel_area_at(dem, rows, cols) -> np.ndarray:
    """Areas [m2] of the pixels (rows, cols) only, so a large DEM is not computed whole."""
    crs = pyproj.CRS.from_wkt(dem.rio.crs.to_wkt())
    transform = dem.rio.transform()
    dx, dy = transform.a, transform.e
    x, y = dem["x"].values, dem["y"].values
    if crs.is_geographic:  # depends on the row only: one geodesic quadrilateral per row
        geod = crs.get_geod()
        unique, inverse = np.unique(rows, return_inverse=True)
        per_row = np.empty(unique.size)
        for k, row in enumerate(unique):
            top, bottom = y[row] - dy / 2, y[row] + dy / 2
            area, _ = geod.polygon_area_perimeter([0.0, dx, dx, 0.0], [bottom, bottom, top, top])
            per_row[k] = abs(area)
        return per_row[inverse]
    to_geographic = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    lon, lat = to_geographic.transform(x[cols], y[rows])
    return abs(dx * dy) / np.asarray(pyproj.Proj(crs).get_factors(lon, lat).areal_scale)


def _coverage(dem, outlines, subpixels):
    """Which glacier covers which pixel, and how much: (glacier, flat pixel index, covered
    fraction) for every pair with a fraction > 0. Each pixel is split into subpixels x
    subpixels cells, rasterised by their centres, in a window around each outline (so
    memory follows the glacier, not the DEM; overlapping outlines each get their share)."""
    rasterio = _raster()
    transform = dem.rio.transform()
    ny, nx = dem.sizes["y"], dem.sizes["x"]
    bounds = dem.rio.bounds()
    glaciers, pixels, fractions = [], [], []
    for index, geometry in enumerate(outlines):
        west, south, east, north = geometry.bounds
        corners = [~transform @ corner for corner in ((west, north), (east, south), (west, south), (east, north))]
        cols, rows = [c for c, _ in corners], [r for _, r in corners]
        row0, row1 = max(int(np.floor(min(rows))) - 1, 0), min(int(np.ceil(max(rows))) + 1, ny)
        col0, col1 = max(int(np.floor(min(cols))) - 1, 0), min(int(np.ceil(max(cols))) + 1, nx)
        inside = np.zeros((0, 0), bool)
        if row0 < row1 and col0 < col1:
            Affine = rasterio.transform.Affine
            fine = transform @ Affine.translation(col0, row0) @ Affine.scale(1 / subpixels)
            shape = ((row1 - row0) * subpixels, (col1 - col0) * subpixels)
            inside = rasterio.features.geometry_mask([geometry], out_shape=shape, transform=fine, invert=True)
        if not inside.any():
            raise ValueError(f"outline: polygon {index} does not overlap the DEM (bounds {bounds})")
        outside = geometry.difference(shapely.box(*bounds)).area / geometry.area
        if outside > 0.01:
            raise ValueError(f"outline: {outside:.1%} of polygon {index} lies outside the DEM (bounds {bounds})")
        window = inside.reshape(row1 - row0, subpixels, col1 - col0, subpixels).sum(axis=(1, 3))
        r, c = np.nonzero(window)
        glaciers.append(np.full(r.size, index))
        pixels.append((r + row0) * nx + (c + col0))
        fractions.append(window[r, c] / subpixels**2)
    return np.concatenate(glaciers), np.concatenate(pixels), np.concatenate(fractions)


def _glacier_sums(dem, outlines, values, subpixels):
    """Per glacier: outlined area and area of finite `values` [m2]; and for the (glacier,
    pixel) pairs with finite values: glacier, covered area [m2] and value."""
    glacier, pixel, fraction = _coverage(dem, outlines, subpixels)
    area = _pixel_area_at(dem, *np.divmod(pixel, dem.sizes["x"])) * fraction
    v = np.asarray(values).ravel()[pixel]
    valid = np.isfinite(v)
    n = len(outlines)
    total = np.bincount(glacier, weights=area, minlength=n)
    measured = np.bincount(glacier[valid], weights=area[valid], minlength=n)
    return total, measured, glacier[valid], area[valid], v[valid]


def hypsometry(
    dem: xr.DataArray, outline, bin_size: float = 50.0, *, subpixels: int = 4, max_void_fraction: float = 0.05
) -> Hypsometry:
    """Elevation bands of glaciers from a DEM and their outlines.

    - `dem`: from `open_dem` [m].
    - `outline`: a shapefile / GeoPackage path, GeoDataFrame or GeoSeries (any CRS; it is
      reprojected to the DEM's). One polygon gives bands (band,); several give a region
      (glacier, band) on common bands in row order, area 0 where a glacier has none.
    - `bin_size`: band height [m]; bands are `bin_size`-wide elevation bins aligned to
      multiples of it, and `elevation` is the bin centre.
    - `subpixels`: each pixel counts with the fraction of its subpixels x subpixels cells
      whose centres lie inside the outline (1: the pixel centre decides).

    Pixel areas are geodesic (`pixel_area`). Voids (NaN) inside an outline are assumed to
    have the hypsometry of the rest: band areas are scaled up to the whole outlined area,
    and more than `max_void_fraction` of it void raises `ValueError`. So does an outline
    that does not overlap the DEM or that extends more than 1 % beyond it.
    """
    _check_georeferenced(dem)
    if not bin_size > 0:
        raise ValueError(f"bin_size must be positive [m], got {bin_size}")
    if int(subpixels) != subpixels or subpixels < 1:
        raise ValueError(f"subpixels must be a positive integer, got {subpixels}")
    outlines, _ = _outlines(outline, dem.rio.crs)
    total, measured, glacier, area, z = _glacier_sums(dem, outlines, dem.values, int(subpixels))
    void = 1.0 - measured / total
    if np.any(void > max_void_fraction):
        worst = int(np.argmax(void))
        raise ValueError(
            f"dem: {void[worst]:.1%} of outline {worst} is void (NaN), more than max_void_fraction={max_void_fraction}"
        )
    n = len(outlines)
    low = np.floor(np.min(z) / bin_size)
    bins = (np.floor(z / bin_size) - low).astype(np.int64)
    nbins = int(bins.max()) + 1
    bands = np.bincount(glacier * nbins + bins, weights=area, minlength=n * nbins).reshape(n, nbins)
    bands *= (total / measured)[:, None]
    used = np.flatnonzero(bands.sum(axis=0) > 0)
    bands = bands[:, used[0] : used[-1] + 1]
    centres = (low + np.arange(used[0], used[-1] + 1) + 0.5) * bin_size
    if n == 1:
        return Hypsometry(centres, bands[0])
    return Hypsometry(np.broadcast_to(centres, bands.shape).copy(), bands)


def elevation_change(new: xr.DataArray, old: xr.DataArray, *, mask=None, years=None) -> xr.DataArray:
    """Elevation change `new - old` [m], or its rate [m yr-1] when `years` is given.

    `old` is resampled (bilinear) onto `new`'s grid when the grids differ. The two DEMs
    must be on the same vertical datum (`attrs["vertical_datum"]`): different datums, or
    one known and one unknown, raise `ValueError`; two unknown datums pass with a warning.
    `mask` keeps only some pixels (NaN elsewhere): a boolean (y, x) DataArray on `new`'s
    grid, or an outline (file, GeoDataFrame, GeoSeries).
    """
    rasterio = _raster()
    _check_georeferenced(new, "new")
    _check_georeferenced(old, "old")
    datums = (new.attrs.get("vertical_datum", "unknown"), old.attrs.get("vertical_datum", "unknown"))
    if datums[0] != datums[1]:
        raise ValueError(
            f"new is on vertical datum {datums[0]!r} and old on {datums[1]!r}: convert one first "
            "(or pass vertical_datum to open_dem when a datum is not recorded)"
        )
    if datums[0] == "unknown":
        warnings.warn("new and old have no recorded vertical datum; assuming they share one", stacklevel=2)
    same_grid = new.rio.crs == old.rio.crs and new.rio.transform() == old.rio.transform() and new.shape == old.shape
    if not same_grid:
        old = old.rio.write_nodata(np.nan).rio.reproject_match(new, resampling=rasterio.enums.Resampling.bilinear)
        old = old.assign_coords(x=new.x, y=new.y)
    dh = new - old.values
    units = "m"
    if years is not None:
        if not years > 0:
            raise ValueError(f"years must be positive, got {years}")
        dh = dh / years
        units = "m yr-1"
    if mask is not None:
        if not isinstance(mask, xr.DataArray):
            mask = outline_mask(new, mask)
        if mask.shape != new.shape:
            raise ValueError(f"mask has shape {mask.shape}, new has {new.shape}")
        dh = dh.where(mask.values)
    dh.attrs = dict(units=units, long_name="elevation change" + (" rate" if years else ""), vertical_datum=datums[0])
    dh.name = "elevation_change" + ("_rate" if years else "")
    return dh.rio.write_crs(new.rio.crs)


def geodetic_mass_balance(
    dh: xr.DataArray,
    outline,
    *,
    years=None,
    dh_uncertainty=0.0,
    density=VOLUME_DENSITY,
    density_uncertainty=VOLUME_DENSITY_UNCERTAINTY,
) -> xr.Dataset:
    """Geodetic mass balance per glacier from an elevation-change map.

    - `dh`: `elevation_change` [m] (then `years` > 0 is the period) or its rate [m yr-1].
    - `outline`: file, GeoDataFrame or GeoSeries; one glacier per polygon, named by its
      `RGIId` column when it has one.
    - `dh_uncertainty`: 1-sigma of each glacier's mean elevation-change rate [m yr-1]
      (scalar or per glacier), e.g. from stable terrain with spatial correlation.

    The mean rate over the measured pixels stands for the whole outline (voids filled by
    the mean; `measured_area_fraction` says how much was measured). Volume change times
    `density` gives mass, with uncertainty sqrt((sigma_V rho)^2 + (V sigma_rho)^2), i.e.
    Hugonnet et al. (2021) with 850 +- 60 kg m-3. Variables (glacier) as in
    `open_geodetic_mb`: `area` [m2], `elevation_change_rate` [m yr-1],
    `volume_change_rate` [m3 yr-1], `mass_change_rate` [Gt yr-1],
    `specific_mass_balance_rate` [kg m-2 yr-1], each rate with `_uncertainty`.
    """
    _check_georeferenced(dh, "dh")
    units = dh.attrs.get("units")
    if units is None:
        raise ValueError("dh: no 'units' attribute; give an elevation change (m, cm) or a rate (m yr-1, m a-1)")
    dimension = _units.parse(units, "dh").dimensionality
    if dimension == _units.dimension("m"):
        if years is None or not years > 0:
            raise ValueError(f"years: dh is an elevation change [{units}]; give the period in years (> 0)")
        rate = _units.convert(dh.values, units, "m", "dh") / years
    elif dimension == _units.dimension("m s**-1"):
        if years is not None:
            raise ValueError(f"years: dh is already a rate [{units}]; leave years out")
        rate = _units.convert(dh.values, units, "m yr-1", "dh")
    else:
        raise ValueError(f"dh: units {units!r} are neither an elevation change (m) nor a rate (m yr-1)")
    outlines, names = _outlines(outline, dh.rio.crs)
    n = len(outlines)
    total, measured, glacier, area, values = _glacier_sums(dh, outlines, rate, 4)
    summed = np.bincount(glacier, weights=area * values, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_rate = summed / measured
    sigma_dh = np.broadcast_to(np.asarray(dh_uncertainty, np.float64), (n,))
    volume = mean_rate * total
    sigma_volume = sigma_dh * total
    mass = volume * density
    sigma_mass = np.sqrt((sigma_volume * density) ** 2 + (volume * density_uncertainty) ** 2)

    def variable(values, units):
        return ("glacier", values, {"units": units})

    ds = xr.Dataset(
        dict(
            area=variable(total, "m2"),
            measured_area_fraction=variable(measured / total, "1"),
            elevation_change_rate=variable(mean_rate, "m yr-1"),
            elevation_change_rate_uncertainty=variable(sigma_dh, "m yr-1"),
            volume_change_rate=variable(volume, "m3 yr-1"),
            volume_change_rate_uncertainty=variable(sigma_volume, "m3 yr-1"),
            mass_change_rate=variable(mass * 1e-12, "Gt yr-1"),
            mass_change_rate_uncertainty=variable(sigma_mass * 1e-12, "Gt yr-1"),
            specific_mass_balance_rate=variable(mass / total, "kg m-2 yr-1"),
            specific_mass_balance_rate_uncertainty=variable(sigma_mass / total, "kg m-2 yr-1"),
        ),
        coords={"glacier": names},
        attrs=dict(
            density=density,
            density_uncertainty=density_uncertainty,
            vertical_datum=dh.attrs.get("vertical_datum", "unknown"),
        ),
    )
    return ds
