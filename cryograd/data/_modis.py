"""MODIS land-surface temperature: MOD11/MYD11 HDF4-EOS tiles and AppEEARS point tables.

The tile facts (products, scaling, QC bits, sinusoidal grid) are those of the MOD11 user
guide (Wan 2013) and of the files themselves (docs/data.md lists what the reader does).
"""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import xarray as xr

SPHERE_RADIUS = 6371007.181
"""Radius of the sphere of the MODIS sinusoidal grid [m]."""
SINUSOIDAL = pyproj.CRS.from_proj4(f"+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R={SPHERE_RADIUS} +units=m +no_defs")
TILE_SIZE = 2 * np.pi * SPHERE_RADIUS / 36
"""Width and height of one 10-degree tile [m]."""
GRID_WEST, GRID_NORTH = -18 * TILE_SIZE, 9 * TILE_SIZE
"""Upper-left corner of tile h00v00 [m]."""

PRODUCT = re.compile(r"^(M[OY]D11[AB][123])$")
FILE_NAME = re.compile(r"^(M[OY]D\w+?)\.A(\d{4})(\d{3})\.h(\d\d)v(\d\d)\.")

MANDATORY_QA = ("good", "unreliable", "cloud", "not_produced")
"""Mandatory QA classes (QC bits 0-1): LST produced with good quality; produced, other
quality (examine the detailed bits); not produced because of cloud; not produced for
other reasons."""
LST_ERROR_BOUND = (1.0, 2.0, 3.0, np.inf)
"""Upper bound of the LST error [K] of each class of QC bits 6-7."""
_QC_FIELDS = (
    ("mandatory_qa", 0, MANDATORY_QA),
    ("data_quality", 2, ("good", "other", "todo", "todo")),
    ("emissivity_error", 4, ("le_0.01", "le_0.02", "le_0.04", "gt_0.04")),
    ("lst_error", 6, ("le_1K", "le_2K", "le_3K", "gt_3K")),
)

_RENAME = {
    "LST_Day": "land_surface_temperature_day",
    "LST_Night": "land_surface_temperature_night",
    "QC_Day": "qc_day",
    "QC_Night": "qc_night",
    "Day_view_time": "view_time_day",
    "Night_view_time": "view_time_night",
    "Day_view_angl": "view_angle_day",
    "Night_view_angl": "view_angle_night",
    "Clear_day_cov": "clear_sky_coverage_day",
    "Clear_night_cov": "clear_sky_coverage_night",
    "Clear_sky_days": "clear_sky_days",
    "Clear_sky_nights": "clear_sky_nights",
}
_UNITS = {"view_time": "h", "view_angle": "degree", "land_surface_temperature": "K"}


AGGREGATED = "_Aggregated_from_1km"
"""Suffix of the 6 km products' (MOD11B2/B3) LST layers averaged from the 1 km product;
`QC_Day`/`QC_Night` describe the split-window 6 km LST, not these."""


def _variable_name(sds_name: str) -> str:
    for prefix in ("LST_Day", "LST_Night"):
        if sds_name.startswith(prefix + "_"):
            return _RENAME[prefix] + ("_aggregated_from_1km" if sds_name.endswith(AGGREGATED) else "")
    if sds_name in _RENAME:
        return _RENAME[sds_name]
    if sds_name.startswith("Emis_"):
        return "emissivity_" + sds_name[5:]
    return sds_name.lower()


def open_modis_lst(path) -> xr.Dataset:
    """Read MODIS land-surface temperature.

    **Arguments:** `path` one of

    - a MOD11A1/MYD11A1 (daily, 1 km), MOD11A2/MYD11A2 (8-day, 1 km), MOD11B1/MYD11B1
      (daily, 6 km) or MOD11B2/MYD11B2 (8-day, 6 km) HDF4-EOS tile, read with `pyhdf`;
    - a list of such tiles of the same product and tile, stacked along `time`;
    - an AppEEARS point-sample CSV (see `open_appeears_lst`).

    **Returns** (tiles) `xr.Dataset` over (`time`, `y`, `x`): `land_surface_temperature_day`
    and `..._night` [K] (for the 6 km products the split-window `LST_Day_6km` and
    `LST_Night_6km`, which `QC_Day`/`QC_Night` describe; MOD11B2/B3's layers averaged from
    1 km are `land_surface_temperature_day|night_aggregated_from_1km`, without QC of their
    own); `view_time_day|night` [h, local solar time]; `view_angle_day|night`
    [degree]; emissivities [1]; the raw `qc_day|night` bytes and their decoded fields
    `<field>_day|night` for `mandatory_qa`, `data_quality`, `emissivity_error` and
    `lst_error` (CF `flag_values`/`flag_meanings`); coordinates `x`, `y` [m] on the
    sinusoidal grid (sphere R = 6371007.181 m, cell centres) and `latitude`,
    `longitude` (y, x) [degree] from `pyproj`. Fill values and values outside
    `valid_range` are NaN; scaling is value = DN x scale_factor + add_offset. `time` is
    the day of the file (the first day of an 8-day window).

    Raises `ValueError` naming the file (and variable) for a file that is not HDF4, a
    product other than MOD11/MYD11, a missing LST variable, a tile without a single LST
    value, or a name and metadata without a date.
    """
    if isinstance(path, (list, tuple)):
        if not path:
            raise ValueError("path: an empty list of MODIS files")
        tiles = [open_modis_lst(p) for p in path]
        keys = {(t.attrs["product"], t.attrs["tile"], t.sizes["y"]) for t in tiles}
        if len(keys) > 1:
            raise ValueError(
                f"path: the files are of different products or tiles {sorted(keys)}; open them one "
                "tile at a time and pass the list to extract_points"
            )
        return xr.concat(tiles, dim="time", combine_attrs="override").sortby("time")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    if path.suffix.lower() == ".csv":
        return open_appeears_lst(path)
    return _open_tile(path)


def _open_tile(path: Path) -> xr.Dataset:
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD, SDC

    try:
        sd = SD(str(path), SDC.READ)
    except HDF4Error as error:
        raise ValueError(f"{path}: not an HDF4 file that pyhdf can open ({error})") from None
    try:
        attributes = sd.attributes()
        product, date = _product_and_date(path, attributes)
        names = list(sd.datasets())
        if not any(name.startswith("LST_Day_") for name in names):
            raise ValueError(f"{path}: variable 'LST_Day_*' not found (the file has {names[:8]})")
        grid = _grid(path, attributes)
        variables = {}
        for name in names:
            sds = sd.select(name)
            try:
                raw = sds.get()
                variables[name] = (raw, sds.attributes())
            finally:
                sds.endaccess()
    finally:
        sd.end()

    ny, nx = next(raw.shape for raw, _ in variables.values())
    if (ny, nx) != (grid["ny"], grid["nx"]):
        raise ValueError(f"{path}: StructMetadata.0 says {grid['ny']} x {grid['nx']} cells, the data are {ny} x {nx}")
    dx = (grid["east"] - grid["west"]) / nx
    dy = (grid["north"] - grid["south"]) / ny
    x = grid["west"] + dx * (np.arange(nx) + 0.5)
    y = grid["north"] - dy * (np.arange(ny) + 0.5)
    ds = xr.Dataset(coords=dict(time=[np.datetime64(date, "ns")], y=("y", y), x=("x", x)))
    for name, (raw, attrs) in variables.items():
        target = _variable_name(name)
        if name.startswith("QC_"):
            ds[target] = (("time", "y", "x"), raw[None].astype(np.uint8))
            ds[target].attrs.update(long_name=attrs.get("long_name", name), source_variable=name)
            suffix = target.removeprefix("qc")
            for field, shift, meanings in _QC_FIELDS:
                ds[field + suffix] = (("time", "y", "x"), ((raw[None] >> shift) & 3).astype(np.uint8))
                ds[field + suffix].attrs.update(
                    flag_values=np.arange(4, dtype=np.uint8), flag_meanings=" ".join(meanings), source_variable=name
                )
        elif name.startswith("Clear_sky_"):
            ds[target] = (("time", "y", "x"), raw[None])
            ds[target].attrs.update(long_name=attrs.get("long_name", name), source_variable=name)
        else:
            ds[target] = (("time", "y", "x"), _decode(raw, attrs)[None])
            units = next((u for key, u in _UNITS.items() if target.startswith(key)), attrs.get("units", "1"))
            ds[target].attrs.update(long_name=attrs.get("long_name", name), units=units, source_variable=name)
    for overpass in ("day", "night"):  # each LST layer with the QC that describes it (CF)
        name = f"land_surface_temperature_{overpass}"
        if name in ds and f"qc_{overpass}" in ds:
            fields = " ".join(f"{field}_{overpass}" for field, _, _ in _QC_FIELDS)
            ds[name].attrs["ancillary_variables"] = f"qc_{overpass} {fields}"
        if f"{name}_aggregated_from_1km" in ds:
            ds[f"{name}_aggregated_from_1km"].attrs["comment"] = (
                f"averaged from the 1 km product; the file has no QC of its own for it (qc_{overpass} "
                f"describes {name}, the split-window 6 km LST)"
            )
    lst = [ds[f"land_surface_temperature_{o}"] for o in ("day", "night") if f"land_surface_temperature_{o}" in ds]
    if not any(np.isfinite(v.values).any() for v in lst):
        raise ValueError(f"{path}: variables LST_Day_* and LST_Night_* hold only fill values")

    lon, lat = _to_geographic(*np.meshgrid(x, y))
    ds = ds.assign_coords(latitude=(("y", "x"), lat), longitude=(("y", "x"), lon))
    ds["latitude"].attrs.update(units="degree_north", standard_name="latitude")
    ds["longitude"].attrs.update(units="degree_east", standard_name="longitude")
    ds["x"].attrs.update(units="m", long_name="sinusoidal x (cell centre)")
    ds["y"].attrs.update(units="m", long_name="sinusoidal y (cell centre)")
    h, v = _tile_indices(grid["west"], grid["north"])
    ds.attrs.update(
        product=product,
        tile=f"h{h:02d}v{v:02d}",
        crs_wkt=SINUSOIDAL.to_wkt(),
        source=path.name,
        title=f"MODIS {product} land-surface temperature",
    )
    return ds


def _decode(raw, attrs) -> np.ndarray:
    """CF-style decoding: fill and out-of-range to NaN, then DN x scale + offset."""

    def decode(dn):
        values = dn.astype(np.float64)  # before any arithmetic: uint8 would wrap
        invalid = np.zeros(dn.shape, bool)
        if "_FillValue" in attrs:
            invalid |= dn == attrs["_FillValue"]
        if "valid_range" in attrs:
            low, high = attrs["valid_range"]
            invalid |= (values < low) | (values > high)
        values = values * attrs.get("scale_factor", 1.0) + attrs.get("add_offset", 0.0)
        values[invalid] = np.nan
        return values

    if raw.dtype.kind in "ui" and raw.dtype.itemsize <= 2:  # one lookup table for every DN
        info = np.iinfo(raw.dtype)
        table = decode(np.arange(info.min, info.max + 1).astype(raw.dtype))
        return table[raw.astype(np.int64) - info.min]
    return decode(raw)


def _product_and_date(path: Path, attributes: dict):
    """Product and day from the file name (`MOD11A1.AYYYYDDD.hHHvVV...`), else from
    CoreMetadata.0 (SHORTNAME, RANGEBEGINNINGDATE)."""
    core = attributes.get("CoreMetadata.0", "")
    short = re.search(r'OBJECT\s*=\s*SHORTNAME.*?VALUE\s*=\s*"([^"]+)"', core, re.S)
    begin = re.search(r'OBJECT\s*=\s*RANGEBEGINNINGDATE.*?VALUE\s*=\s*"([^"]+)"', core, re.S)
    match = FILE_NAME.match(path.name)
    product = match.group(1) if match else short.group(1) if short else None
    if product is None:
        raise ValueError(
            f"{path}: no product: the name is not 'MOD11A1.AYYYYDDD.hHHvVV...' and CoreMetadata.0 has no SHORTNAME"
        )
    if not PRODUCT.match(product):
        raise ValueError(f"{path}: product {product!r} is not a MOD11/MYD11 land-surface temperature product")
    if match:
        year, day = int(match.group(2)), int(match.group(3))
        return product, pd.Timestamp(year=year, month=1, day=1) + pd.Timedelta(days=day - 1)
    if begin is None:
        raise ValueError(f"{path}: no date: not in the file name (.AYYYYDDD.) nor in CoreMetadata.0")
    return product, pd.Timestamp(begin.group(1))


def _grid(path: Path, attributes: dict) -> dict:
    metadata = attributes.get("StructMetadata.0")
    if metadata is None:
        raise ValueError(f"{path}: no StructMetadata.0: not an HDF-EOS grid file")

    def number(key):
        found = re.search(key + r"\s*=\s*([-0-9.]+)", metadata)
        if found is None:
            raise ValueError(f"{path}: StructMetadata.0 has no {key}")
        return float(found.group(1))

    def pair(key):
        found = re.search(key + r"\s*=\s*\(([-0-9.eE+]+)\s*,\s*([-0-9.eE+]+)\)", metadata)
        if found is None:
            raise ValueError(f"{path}: StructMetadata.0 has no {key}")
        return float(found.group(1)), float(found.group(2))

    if "GCTP_SNSOID" not in metadata:
        raise ValueError(f"{path}: the grid is not on the sinusoidal projection (Projection != GCTP_SNSOID)")
    west, north = pair("UpperLeftPointMtrs")
    east, south = pair("LowerRightMtrs")
    return dict(nx=int(number("XDim")), ny=int(number("YDim")), west=west, north=north, east=east, south=south)


def _tile_indices(west: float, north: float):
    return round((west - GRID_WEST) / TILE_SIZE), round((GRID_NORTH - north) / TILE_SIZE)


_TO_GEOGRAPHIC = pyproj.Transformer.from_crs(SINUSOIDAL, "EPSG:4326", always_xy=True)
_FROM_GEOGRAPHIC = pyproj.Transformer.from_crs("EPSG:4326", SINUSOIDAL, always_xy=True)


def _to_geographic(x, y):
    lon, lat = _TO_GEOGRAPHIC.transform(x, y)
    outside = ~np.isfinite(lon) | (np.abs(lon) > 180)  # cells of the tile off the sinusoidal globe
    return np.where(outside, np.nan, lon), np.where(outside, np.nan, lat)


def quality_mask(ds: xr.Dataset, overpass: str = "day", mandatory=("good",), max_lst_error: float = 2.0):
    """Where the `overpass` ("day" or "night") LST of `ds` is usable: a value is present,
    its mandatory QA class is one of `mandatory` (names from `MANDATORY_QA`), and its LST
    error class is at most `max_lst_error` [K] (classes <= 1, 2, 3 and > 3 K).

    Returns a boolean `xr.DataArray` shaped like the LST. Use it on the tile before taking
    means: LST > 0 alone does not exclude unreliable retrievals."""
    if overpass not in ("day", "night"):
        raise ValueError(f"overpass must be 'day' or 'night', got {overpass!r}")
    unknown = set(mandatory) - set(MANDATORY_QA)
    if unknown:
        raise ValueError(f"mandatory: unknown classes {sorted(unknown)}; choose from {MANDATORY_QA}")
    for name in (f"land_surface_temperature_{overpass}", f"mandatory_qa_{overpass}", f"lst_error_{overpass}"):
        if name not in ds:
            raise ValueError(f"ds: variable {name!r} not found; open the data with open_modis_lst")
    accepted = [MANDATORY_QA.index(name) for name in mandatory]
    bound = xr.DataArray(np.asarray(LST_ERROR_BOUND))[ds[f"lst_error_{overpass}"].astype(int)]
    return (
        ds[f"mandatory_qa_{overpass}"].isin(accepted)
        & (bound <= max_lst_error)
        & ds[f"land_surface_temperature_{overpass}"].notnull()
    )


def extract_points(ds, lat, lon, site=None) -> xr.Dataset:
    """Time series at points from MODIS tiles.

    **Arguments:** `ds` one dataset from `open_modis_lst` (one tile, any number of days) or
    a sequence of them (several tiles); `lat`, `lon` [degree] scalars or 1-D; `site`
    optional names.

    **Returns** `xr.Dataset` over (`time`, `site`) with every per-cell variable at the
    cell that contains each point, and coordinates `latitude`, `longitude` (the points),
    `cell_latitude`, `cell_longitude` (the centres of the cells used) and `tile`. A point
    covered by several datasets gets the union of their days (later datasets win on
    the same day). A point outside every tile raises `ValueError` naming it.
    """
    tiles = [ds] if isinstance(ds, xr.Dataset) else list(ds)
    lat = np.atleast_1d(np.asarray(lat, np.float64))
    lon = np.atleast_1d(np.asarray(lon, np.float64))
    if lat.shape != lon.shape or lat.ndim != 1:
        raise ValueError(f"lat and lon must be scalars or 1-D of the same length, got {lat.shape} and {lon.shape}")
    if np.any(np.abs(lat) > 90) or np.any(np.abs(lon) > 180):
        raise ValueError("lat must be within +/-90 and lon within +/-180 degrees")
    names = np.arange(lat.size) if site is None else np.atleast_1d(np.asarray(site))
    if names.shape != lat.shape:
        raise ValueError(f"site must name each point: {names.shape} names for {lat.shape} points")
    px, py = _FROM_GEOGRAPHIC.transform(lon, lat)
    series, tile_names = [], []
    for k in range(lat.size):
        parts, covering = [], []
        for tile in tiles:
            if "x" not in tile.dims or "y" not in tile.dims:
                raise ValueError("ds: expected tiles with dimensions y and x from open_modis_lst")
            x, y = tile.x.values, tile.y.values
            dx, dy = x[1] - x[0], y[0] - y[1]
            col = int(np.floor((px[k] - (x[0] - dx / 2)) / dx))
            row = int(np.floor(((y[0] + dy / 2) - py[k]) / dy))
            if 0 <= col < x.size and 0 <= row < y.size:
                cell = tile.isel(x=col, y=row)
                parts.append(cell.rename(latitude="cell_latitude", longitude="cell_longitude").drop_vars(["x", "y"]))
                covering.append(tile.attrs.get("tile", "?"))
        if not parts:
            raise ValueError(f"point {names[k]!r} (lat {lat[k]}, lon {lon[k]}) lies in none of the tiles given")
        merged = parts[0]
        for part in parts[1:]:
            merged = part.combine_first(merged)
        series.append(merged)
        tile_names.append("+".join(dict.fromkeys(covering)))
    out = xr.concat(series, dim="site", data_vars="all", coords="all", join="outer", combine_attrs="drop_conflicts")
    out = out.assign_coords(site=names, latitude=("site", lat), longitude=("site", lon), tile=("site", tile_names))
    out = out.transpose("time", "site")
    out["latitude"].attrs.update(units="degree_north")
    out["longitude"].attrs.update(units="degree_east")
    return out


# --- AppEEARS -------------------------------------------------------------------------

_APPEEARS_COLUMN = re.compile(r"^(M[OY]D11[AB][123])_(\d{3})_(.+)$")


def open_appeears_lst(path) -> xr.Dataset:
    """Read an AppEEARS point-sample CSV of a MOD11/MYD11 product.

    Columns `ID` (or `Category`), `Latitude`, `Longitude`, `Date` and
    `<PRODUCT>_<version>_<layer>`, e.g. `MOD11A1_061_LST_Day_1km` (already in K; 0 means
    no data) and `MOD11A1_061_QC_Day` (the raw QC byte). The QC fields are decoded from
    the raw byte, or, without it, from the bit-string columns `..._QC_Day_MODLAND` and
    `..._QC_Day_LST_Error_Flag` ("0b01").

    **Returns** `xr.Dataset` over (`time`, `site`) with the variable names of
    `open_modis_lst` and `latitude`, `longitude` per site.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a CSV file ({error})") from None
    layers = {}
    product = None
    for column in table.columns:
        match = _APPEEARS_COLUMN.match(str(column))
        if match:
            product = product or match.group(1)
            layers[match.group(3)] = column
    if not any(name.startswith("LST_") for name in layers):
        raise ValueError(
            f"{path}: not an AppEEARS MOD11/MYD11 table: no '<PRODUCT>_<version>_LST_Day_1km' column "
            f"(columns {list(table.columns)[:8]})"
        )
    id_column = "ID" if "ID" in table.columns else "Category" if "Category" in table.columns else None
    for column in ("Date", "Latitude", "Longitude"):
        if column not in table.columns:
            raise ValueError(f"{path}: column {column!r} not found")
    if id_column is None:
        raise ValueError(f"{path}: column 'ID' (or 'Category') not found")
    try:
        table["Date"] = pd.to_datetime(table["Date"])
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: column 'Date' holds values that are not dates ({error})") from None
    if table.duplicated([id_column, "Date"]).any():
        raise ValueError(f"{path}: a site has two rows for one date (columns {id_column!r}, 'Date')")
    indexed = table.set_index([id_column, "Date"]).sort_index()
    sites = indexed.index.get_level_values(0).unique()
    ds = xr.Dataset(coords=dict(time=np.sort(table["Date"].unique()), site=np.asarray(sites)))

    def grid(column):
        values = indexed[column].unstack(level=0).reindex(index=ds.time.values, columns=sites)
        return values.to_numpy()

    for overpass, label in (("day", "Day"), ("night", "Night")):
        lst = next((c for name, c in layers.items() if name.startswith(f"LST_{label}_")), None)
        if lst is None:
            continue
        values = pd.to_numeric(indexed[lst], errors="coerce")
        if (values < 0).any():
            raise ValueError(f"{path}: column {lst!r} has negative temperatures; expected K")
        indexed[lst] = values.where(values > 0)
        ds[f"land_surface_temperature_{overpass}"] = (("time", "site"), grid(lst))
        ds[f"land_surface_temperature_{overpass}"].attrs.update(units="K", source_variable=lst)
        qc = _appeears_qc(path, indexed, layers, label)
        if qc is not None:
            frame = qc.unstack(level=0).reindex(index=ds.time.values, columns=sites)
            missing = frame.isna().to_numpy()
            qc_grid = frame.fillna(0).to_numpy().astype(np.uint8)
            for field, shift, meanings in _QC_FIELDS:
                values = np.where(missing, 3, (qc_grid >> shift) & 3).astype(np.uint8)  # no row: not produced
                ds[f"{field}_{overpass}"] = (("time", "site"), values)
                ds[f"{field}_{overpass}"].attrs.update(
                    flag_values=np.arange(4, dtype=np.uint8), flag_meanings=" ".join(meanings)
                )
        for name, target, low, high in (
            (f"{label}_view_time", "view_time", 0, 24),
            (f"{label}_view_angl", "view_angle", -65, 65),
        ):
            if name in layers:
                values = pd.to_numeric(indexed[layers[name]], errors="coerce")
                indexed[layers[name]] = values.where(values.between(low, high))
                ds[f"{target}_{overpass}"] = (("time", "site"), grid(layers[name]))
                ds[f"{target}_{overpass}"].attrs.update(units=_UNITS[target])
    if all(not np.isfinite(ds[v].values).any() for v in ds.data_vars if v.startswith("land_surface")):
        raise ValueError(f"{path}: the LST columns hold no data (all 0 or empty)")
    positions = table.groupby(id_column)[["Latitude", "Longitude"]].first().reindex(sites)
    ds = ds.assign_coords(latitude=("site", positions["Latitude"].to_numpy(np.float64)))
    ds = ds.assign_coords(longitude=("site", positions["Longitude"].to_numpy(np.float64)))
    ds.attrs.update(product=product, source=path.name, title=f"AppEEARS {product} point samples")
    return ds


def _appeears_qc(path, indexed, layers, label):
    """The raw QC byte per row, from the integer column or the bit-string columns."""
    raw = layers.get(f"QC_{label}")
    if raw is not None:
        values = pd.to_numeric(indexed[raw], errors="coerce")
        if values.dropna().between(0, 255).all():
            return values
        raise ValueError(f"{path}: column {raw!r} holds values outside 0-255")
    parts = {
        0: layers.get(f"QC_{label}_MODLAND"),
        2: layers.get(f"QC_{label}_Data_Quality_flag"),
        4: layers.get(f"QC_{label}_Emis_Error_flag"),
        6: layers.get(f"QC_{label}_LST_Error_Flag"),
    }
    if parts[0] is None:
        return None
    total = pd.Series(0.0, index=indexed.index)
    for shift, column in parts.items():
        if column is None:
            continue
        text = indexed[column].astype(str).str.strip()
        if not text.str.fullmatch(r"0b[01]{2}|nan").all():
            raise ValueError(f"{path}: column {column!r} is not a two-bit string like '0b01'")
        bits = text.map(lambda s: np.nan if s == "nan" else int(s, 2))
        total = total + bits * (1 << shift)
    return total


# --- synthetic tiles in the real layout ---------------------------------------------------

_DAILY_1KM_DIMENSIONS = ("YDim:MODIS_Grid_Daily_1km_LST", "XDim:MODIS_Grid_Daily_1km_LST")


def write_modis_lst(
    path,
    land_surface_temperature_day,
    land_surface_temperature_night=None,
    *,
    date,
    tile: str = "h14v09",
    qc_day=None,
    qc_night=None,
    view_time_day=None,
    view_time_night=None,
    view_angle_day=None,
    view_angle_night=None,
    product: str = "MOD11A1",
    aggregated_day=None,
    aggregated_night=None,
    emissivity=None,
):
    """Write a MOD11A1-like HDF4-EOS tile (for tests and twin experiments).

    **Arguments:** `path` (name it `MOD11A1.AYYYYDDD.hHHvVV.061.<anything>.hdf` to follow
    the real convention; the date and tile are also written into the metadata);
    `land_surface_temperature_day|night` (n, n) [K], NaN where there is no retrieval;
    `date`, the day; `tile` ("hHHvVV"), which sets the sinusoidal corners;
    `qc_day|night` (n, n) raw QC bytes, default 0 (good) where the LST is present and
    2 (cloud) where it is NaN; `view_time_*` [h], `view_angle_*` [degree], NaN allowed.

    Values are stored as the real product stores them (LST uint16 DN x 0.02 K, view
    time uint8 x 0.1 h, view angle uint8 - 65 degree), so values on those steps read back
    exactly. Values outside the storable ranges raise `ValueError` naming the argument.

    `product`: a 1 km product (`MOD11A1`, `MOD11A2`, `MYD11...`) writes `LST_Day_1km`; a
    6 km one (`MOD11B1`, `MOD11B2`, `MOD11B3`, `MYD11...`) writes `LST_Day_6km` and, for
    B2/B3, the SDS list of the real files in its order: the view layers, `Emis_20`, `_22`,
    `_23`, `_29`, `_31`, `_32` (`emissivity` [1], default 0.98, uint8 x 0.002 + 0.49),
    `LST_Day_6km_Aggregated_from_1km` and the night one (`aggregated_day|night` [K],
    default NaN), `Clear_sky_days`, `Clear_sky_nights` and `Percent_land_in_grid` (100).
    """
    from pyhdf.SD import SD, SDC

    day = _as_field(land_surface_temperature_day, "land_surface_temperature_day")
    n = day.shape[0]
    match = re.fullmatch(r"h(\d\d)v(\d\d)", tile)
    if match is None or int(match.group(1)) > 35 or int(match.group(2)) > 17:
        raise ValueError(f"tile must be 'hHHvVV' with HH <= 35 and VV <= 17, got {tile!r}")
    west = GRID_WEST + int(match.group(1)) * TILE_SIZE
    north = GRID_NORTH - int(match.group(2)) * TILE_SIZE
    date = pd.Timestamp(date)
    overpasses = [("Day", day, qc_day, view_time_day, view_angle_day)]
    if land_surface_temperature_night is not None:
        night = _as_field(land_surface_temperature_night, "land_surface_temperature_night", n)
        overpasses.append(("Night", night, qc_night, view_time_night, view_angle_night))

    if not PRODUCT.match(product):
        raise ValueError(f"product must be a MOD11/MYD11 product such as 'MOD11A1' or 'MOD11B2', got {product!r}")
    resolution = "6km" if product[5] == "B" else "1km"
    aggregated = product[5:] in ("B2", "B3")
    sd = SD(str(path), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    try:
        for label, lst, qc, view_time, view_angle in overpasses:
            suffix = label.lower()
            dn = _encode(lst, 0.02, 0.0, (7500, 65535), 0, f"land_surface_temperature_{suffix}")
            _write_sds(sd, f"LST_{label}_{resolution}", dn, SDC.UINT16, "K", 0.02, 0.0, 0, (7500, 65535))
            qc = np.where(np.isfinite(lst), 0, 2) if qc is None else _as_field(qc, f"qc_{suffix}", n)
            if np.any((qc < 0) | (qc > 255) | (qc != np.round(qc))):
                raise ValueError(f"qc_{suffix} must hold integers 0-255")
            _write_sds(sd, f"QC_{label}", qc, SDC.UINT8)
            blank = np.full((n, n), np.nan)
            time = blank if view_time is None else _as_field(view_time, f"view_time_{suffix}", n)
            dn = _encode(time, 0.1, 0.0, (0, 240), 255, f"view_time_{suffix}")
            _write_sds(sd, f"{label}_view_time", dn, SDC.UINT8, "hrs", 0.1, 0.0, 255, (0, 240))
            angle = blank if view_angle is None else _as_field(view_angle, f"view_angle_{suffix}", n)
            dn = _encode(angle, 1.0, -65.0, (0, 130), 255, f"view_angle_{suffix}")
            _write_sds(sd, f"{label}_view_angl", dn, SDC.UINT8, "deg", 1.0, -65.0, 255, (0, 130))
        if aggregated:
            values = np.full((n, n), 0.98) if emissivity is None else _as_field(emissivity, "emissivity", n)
            dn = _encode(values, 0.002, 0.49, (1, 255), 0, "emissivity")
            for band in (20, 22, 23, 29, 31, 32):
                _write_sds(sd, f"Emis_{band}", dn, SDC.UINT8, "none", 0.002, 0.49, 0, (1, 255))
            for label, values in (("Day", aggregated_day), ("Night", aggregated_night)):
                name = f"land_surface_temperature_{label.lower()}_aggregated_from_1km"
                values = np.full((n, n), np.nan) if values is None else _as_field(values, name, n)
                dn = _encode(values, 0.02, 0.0, (7500, 65535), 0, name)
                _write_sds(sd, f"LST_{label}_6km{AGGREGATED}", dn, SDC.UINT16, "K", 0.02, 0.0, 0, (7500, 65535))
            clear = np.full((n, n), 255)
            _write_sds(sd, "Clear_sky_days", clear, SDC.UINT8)
            _write_sds(sd, "Clear_sky_nights", clear, SDC.UINT8)
            _write_sds(sd, "Percent_land_in_grid", np.full((n, n), 100), SDC.UINT8, "percent", None, 0.0, 255, (0, 100))
        sd.attr("StructMetadata.0").set(SDC.CHAR, _struct_metadata(n, west, north))
        core = (
            f'OBJECT = SHORTNAME\n  VALUE = "{product}"\nEND_OBJECT = SHORTNAME\n'
            f'OBJECT = RANGEBEGINNINGDATE\n  VALUE = "{date:%Y-%m-%d}"\nEND_OBJECT = RANGEBEGINNINGDATE\n'
        )
        sd.attr("CoreMetadata.0").set(SDC.CHAR, core)
    finally:
        sd.end()


def _as_field(values, name, n=None) -> np.ndarray:
    array = np.asarray(values, np.float64)
    if array.ndim != 2 or array.shape[0] != array.shape[1] or (n is not None and array.shape[0] != n):
        expected = "square (n, n)" if n is None else f"({n}, {n})"
        raise ValueError(f"{name} must be {expected}, got shape {array.shape}")
    return array


def _encode(values, scale, offset, valid, fill, name):
    dn = np.round((values - offset) / scale)
    present = np.isfinite(values)
    low, high = valid
    if np.any(present & ((dn < low) | (dn > high))):
        raise ValueError(f"{name}: values outside the storable range {low * scale + offset}-{high * scale + offset}")
    return np.where(present, dn, fill)


def _write_sds(sd, name, dn, kind, units=None, scale=None, offset=0.0, fill=None, valid=None):
    from pyhdf.SD import SDC

    sds = sd.create(name, kind, dn.shape)
    try:
        for index, dimension in enumerate(_DAILY_1KM_DIMENSIONS):
            sds.dim(index).setname(dimension)
        if fill is not None:
            sds.setfillvalue(fill)
        if units is not None:
            sds.attr("units").set(SDC.CHAR, units)
        if valid is not None:
            sds.attr("valid_range").set(kind, list(valid))
        if scale is not None:
            sds.attr("scale_factor").set(SDC.FLOAT64, scale)
        if offset:
            sds.attr("add_offset").set(SDC.FLOAT64, offset)
        sds[:] = dn.astype({SDC.UINT8: np.uint8, SDC.UINT16: np.uint16}[kind])
    finally:
        sds.endaccess()


def _struct_metadata(n, west, north) -> str:
    return (
        'GROUP=GridStructure\n\tGROUP=GRID_1\n\t\tGridName="MODIS_Grid_Daily_1km_LST"\n'
        f"\t\tXDim={n}\n\t\tYDim={n}\n"
        f"\t\tUpperLeftPointMtrs=({west:.6f},{north:.6f})\n"
        f"\t\tLowerRightMtrs=({west + TILE_SIZE:.6f},{north - TILE_SIZE:.6f})\n"
        f"\t\tProjection=GCTP_SNSOID\n\t\tProjParams=({SPHERE_RADIUS:.6f},0,0,0,0,0,0,0,0,0,0,0,0)\n"
        "\t\tSphereCode=-1\n\t\tGridOrigin=HDFE_GD_UL\n\tEND_GROUP=GRID_1\nEND_GROUP=GridStructure\nEND\n"
    )
