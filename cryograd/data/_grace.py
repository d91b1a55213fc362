"""GRACE / GRACE-FO gravimetry: JPL, CSR and GSFC mascons, the JPL regional series, IMBIE
and GlaMBIE tables; regional mass from a mascon field; writers of synthetic mascon files.

Product facts (variables, units, time origins, the 2-sigma GSFC errors) are from the
product handbooks and files, summarised in the project's FORMATS notes.
"""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import _units
from ._tables import numeric_columns, read_table

EARTH_RADIUS = 6371000.0
"""Radius of the sphere for cell areas [m] (as the JPL and GSFC documentation use)."""
WATER_DENSITY = 1000.0
"""Density of liquid water equivalent [kg m-3]."""
EPOCH = pd.Timestamp("2002-01-01")
"""Time origin of the JPL and CSR mascons (days since) and, one day later, of GSFC's
"2002 January 0" counting."""
GSFC_LAND = 80
"""GSFC `location` code of land mascons."""


def open_grace(path, *, gain_factors=None, land_mask=None) -> xr.Dataset:
    """Read GRACE / GRACE-FO data; the kind is recognised from the file's content.

    - **JPL mascon netCDF** (RL06.x, 0.5 degree, `lwe_thickness` in cm, lon 0-360):
      `lwe_thickness` and `uncertainty` (1-sigma per 3-degree mascon) are returned in m;
      the in-file v04 data variables `scale_factor`, `land_mask` and `mascon_ID` (with or
      without a time axis) become `gain_factor`, `land_mask` and `mascon_id` (lat, lon).
      The gain factors are never applied here (see `apply_gain_factors`). Older releases
      ship them in separate files: pass those as `gain_factors` (CLM4.SCALE_FACTOR...nc)
      and `land_mask` (LAND_MASK.CRI.nc).
    - **CSR mascon netCDF** (0.25 degree, cm): its time unit attribute is spelled
      `Units`, so it is decoded here (days since 2002-01-01). `land_mask` may name the
      separate CSR land-mask file (`LO_val`, 1 = land).
    - **GSFC mascon HDF5** (`/solution/cmwe` (mascon, time) cm, via h5py): times counted
      from "2002 January 0" are shifted by one day; the 2-sigma `noise_2sigma` and
      `leakage_2sigma` are halved to `noise_uncertainty` and `leakage_uncertainty`
      (1-sigma, m, labelled so).
    - **JPL regional series** text (`HDR` header): `mass` [Gt] relative to April 2002 and
      `mass_uncertainty` (1-sigma) [Gt].
    - **IMBIE** CSV: `mass_balance` [Gt yr-1], `cumulative_mass_balance` [Gt] and their
      uncertainties.
    - **GlaMBIE** regional glacier CSV (calendar or hydrological years): per period
      (`time_bounds`), `<source>_mass_change` [Gt] and `<source>_specific_mass_change`
      [m w.e.] with `_uncertainty`, for the combined estimate and, where present,
      gravimetry, altimetry and DEM differencing + glaciological, and each group's
      `<source>_annual_variability` (1 where the group's own year-to-year changes are
      given; otherwise they are the combined estimate's, so not independent of it).

    Times are mid-period where the product gives one; `time_bounds` are kept where the
    product has them. Raises `ValueError` naming the file and variable for any other
    file, a missing variable, all-fill data or a time axis that cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5", ".he5"):
        return _open_gsfc(path)
    if suffix == ".nc":
        return _open_mascon_netcdf(path, gain_factors, land_mask)
    if suffix in (".txt", ".csv"):
        head = path.read_text(errors="replace")[:4000]
        if head.startswith("HDR"):
            return _open_jpl_series(path)
        first = head.splitlines()[0] if head else ""
        if "Cumulative mass balance (Gt)" in first:
            return _open_imbie(path)
        if first.startswith("start_dates,end_dates"):
            return _open_glambie(path)
    raise ValueError(
        f"{path}: not a GRACE product this reader knows (JPL/CSR mascon .nc, GSFC .h5, JPL regional "
        "series .txt, IMBIE or GlaMBIE .csv)"
    )


# --- gridded mascons -------------------------------------------------------------------


def _open_mascon_netcdf(path, gain_factors, land_mask):
    try:
        # dask chunks keep the file lazy: unit conversion and a regional sum read only
        # the part of the grid they need
        raw = xr.open_dataset(path, decode_times=False, chunks={})
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a netCDF file ({error})") from None
    if "lwe_thickness" not in raw:
        raise ValueError(f"{path}: variable 'lwe_thickness' not found (variables {list(raw.data_vars)[:8]})")
    lat_name = "lat" if "lat" in raw.dims else "latitude" if "latitude" in raw.dims else None
    lon_name = "lon" if "lon" in raw.dims else "longitude" if "longitude" in raw.dims else None
    if lat_name is None or lon_name is None or "time" not in raw.dims:
        raise ValueError(f"{path}: variable 'lwe_thickness' must have time, lat and lon dimensions")
    raw = raw.rename({lat_name: "lat", lon_name: "lon"})
    time = raw["time"]
    units = time.attrs.get("units")
    kind = "JPL"
    if units is None and "Units" in time.attrs:  # CSR spells it with a capital U
        units, kind = time.attrs["Units"], "CSR"
    raw = raw.assign_coords(time=_decode_days(path, time, units))
    ds = xr.Dataset(coords=dict(time=raw.time, lat=raw.lat, lon=raw.lon))
    for name in ("lwe_thickness", "uncertainty"):
        if name in raw:
            ds[name] = _to_metres(path, raw[name])
    # the first field decides almost always; the whole (lazy) cube is read only if it is empty
    if not bool(ds["lwe_thickness"].isel(time=0).notnull().any()) and not bool(ds.lwe_thickness.notnull().any()):
        raise ValueError(f"{path}: variable 'lwe_thickness' holds only fill values")
    if "time_bounds" in raw or "time_bnds" in raw:
        bounds = raw["time_bounds" if "time_bounds" in raw else "time_bnds"]
        decoded = _decode_days(path, bounds.drop_vars("time", errors="ignore"), units)
        ds["time_bounds"] = (("time", "bounds"), decoded.values.reshape(ds.sizes["time"], -1))
    # v04: gain factors, land mask and mascon ids are data variables of the same file
    for source, target in (("scale_factor", "gain_factor"), ("land_mask", "land_mask"), ("mascon_ID", "mascon_id")):
        if source in raw:
            ds[target] = _static(raw[source])
    if gain_factors is not None:
        ds["gain_factor"] = _ancillary(gain_factors, ("scale_factor", "SCALE_FACTOR"), ds, "gain_factors")
    if land_mask is not None:
        ds["land_mask"] = _ancillary(land_mask, ("land_mask", "LAND_MASK", "LO_val"), ds, "land_mask")
    if "gain_factor" in ds:
        ds["gain_factor"].attrs.update(
            long_name="JPL gain factor (CLM4 scale factor), not applied", units="1", source_variable="scale_factor"
        )
    if "lat_bounds" in raw:
        ds["lat_bounds"] = raw["lat_bounds"].rename({raw["lat_bounds"].dims[0]: "lat"})
    if "lon_bounds" in raw:
        ds["lon_bounds"] = raw["lon_bounds"].rename({raw["lon_bounds"].dims[0]: "lon"})
    ds["lat"].attrs.update(units="degree_north")
    ds["lon"].attrs.update(units="degree_east")
    ds.attrs.update(product=f"{kind} mascons", source=path.name, gain_factors_applied=0)
    return ds


def _decode_days(path, time, units):
    if units is None:
        raise ValueError(f"{path}: variable 'time' has no units (nor 'Units') attribute")
    match = re.fullmatch(r"\s*days since\s+(\d{4}-\d{1,2}-\d{1,2})(?:[ T]([0-9:.]+)Z?)?\s*(UTC)?\s*", str(units))
    if match is None:
        raise ValueError(f"{path}: variable 'time' has units {units!r}, expected 'days since YYYY-MM-DD'")
    origin = pd.Timestamp(match.group(1) + (" " + match.group(2) if match.group(2) else ""))
    days = np.asarray(time.values, np.float64)
    if not np.isfinite(days).all():
        raise ValueError(f"{path}: variable 'time' has missing values")
    values = origin + pd.to_timedelta(days.ravel(), unit="D")
    return xr.DataArray(np.asarray(values, "datetime64[ns]").reshape(days.shape), dims=time.dims)


def _to_metres(path, variable):
    """A water-equivalent thickness in metres from any length unit (JPL and CSR: cm)."""
    units = variable.attrs.get("units", variable.attrs.get("Units"))
    if units is None:
        raise ValueError(f"{path}: variable {variable.name!r} has no units; expected a length (cm, mm, m)")
    if _units.parse(units, f"{path}: variable {variable.name!r}").dimensionality != _units.dimension("m"):
        raise ValueError(f"{path}: variable {variable.name!r} has units {units!r}; expected a length (cm, mm, m)")
    factor = _units.convert(1.0, units, "m", f"{path}: variable {variable.name!r}")
    out = variable.astype(np.float64) * float(factor)
    out.attrs = dict(units="m", long_name=f"{variable.name} (liquid water equivalent)", source_units=units)
    return out


def _static(variable):
    """A (lat, lon) field, dropping a length-1 time axis (v04 files carry one or none)."""
    if "time" in variable.dims:
        variable = variable.isel(time=0, drop=True)
    return variable.load()


def _ancillary(path, names, ds, argument):
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{argument}: {path} not found")
    extra = xr.open_dataset(path, decode_times=False)
    name = next((n for n in names if n in extra), None)
    if name is None:
        raise ValueError(f"{path}: none of the variables {list(names)} found ({argument})")
    variable = extra[name]
    rename = {d: c for d, c in zip(variable.dims[-2:], ("lat", "lon"), strict=True)}
    variable = _static(variable.rename(rename))
    if variable.shape != (ds.sizes["lat"], ds.sizes["lon"]):
        raise ValueError(f"{path}: variable {name!r} is {variable.shape}, the mascon grid is (lat, lon)")
    return xr.DataArray(variable.values.astype(np.float64), dims=("lat", "lon"), coords=dict(lat=ds.lat, lon=ds.lon))


def apply_gain_factors(ds: xr.Dataset) -> xr.Dataset:
    """`lwe_thickness` multiplied by the JPL gain factors (only for land hydrology
    studies: JPL advises against them over ice)."""
    if "gain_factor" not in ds:
        raise ValueError("ds: variable 'gain_factor' not found (pass gain_factors= to open_grace for old releases)")
    if ds.attrs.get("gain_factors_applied"):
        raise ValueError("ds: the gain factors were already applied")
    out = ds.copy()
    out["lwe_thickness"] = ds.lwe_thickness * ds.gain_factor.fillna(1.0)
    out["lwe_thickness"].attrs = dict(ds.lwe_thickness.attrs, gain_factors="applied")
    out.attrs["gain_factors_applied"] = 1
    return out


def _open_gsfc(path):
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: not an HDF5 file ({error})") from None
    with handle as f:

        def read(name):
            if name not in f:
                raise ValueError(f"{path}: variable '/{name}' not found")
            return np.squeeze(np.asarray(f[name][()], np.float64))

        cmwe = np.atleast_2d(read("solution/cmwe"))
        first, middle, last = (np.atleast_1d(read(f"time/ref_days_{k}")) for k in ("first", "middle", "last"))
        n_mascon = cmwe.shape[0]
        if cmwe.shape[1] != middle.size:
            raise ValueError(f"{path}: /solution/cmwe is {cmwe.shape}, expected (mascon, {middle.size} times)")
        mascon = {name: read(f"mascon/{name}") for name in ("lat_center", "lon_center", "lat_span", "lon_span")}
        mascon["area_km2"] = read("mascon/area_km2")
        mascon["location"] = read("mascon/location")
        for name, values in mascon.items():
            if np.atleast_1d(values).size != n_mascon:
                raise ValueError(f"{path}: /mascon/{name} has {np.size(values)} values for {n_mascon} mascons")
        noise = read("uncertainty/noise_2sigma") if "uncertainty/noise_2sigma" in f else None
        leakage = read("uncertainty/leakage_2sigma") if "uncertainty/leakage_2sigma" in f else None
        basin = read("mascon/basin") if "mascon/basin" in f else None
    if not np.isfinite(cmwe).any():
        raise ValueError(f"{path}: variable '/solution/cmwe' holds only fill values")
    # "2002 January 0" is 2001-12-31: day d counted from it is day d - 1 since 2002-01-01
    to_time = lambda days: np.asarray(EPOCH + pd.to_timedelta(days - 1.0, unit="D"), "datetime64[ns]")  # noqa: E731
    ds = xr.Dataset(
        dict(lwe_thickness=(("time", "mascon"), cmwe.T * 0.01)),
        coords=dict(
            time=to_time(middle),
            mascon=np.arange(n_mascon),
            lat=("mascon", mascon["lat_center"]),
            lon=("mascon", mascon["lon_center"]),
            lat_span=("mascon", mascon["lat_span"]),
            lon_span=("mascon", mascon["lon_span"]),
            area=("mascon", mascon["area_km2"] * 1e6),
            land=("mascon", mascon["location"] == GSFC_LAND),
        ),
    )
    ds["time_bounds"] = (("time", "bounds"), np.stack([to_time(first), to_time(last)], axis=1))
    ds["lwe_thickness"].attrs.update(units="m", long_name="mascon liquid water equivalent", source_variable="cmwe")
    ds["area"].attrs.update(units="m2")
    for name, values in (("noise_uncertainty", noise), ("leakage_uncertainty", leakage)):
        if values is not None:
            values = np.atleast_2d(values)
            values = values.T if values.shape == (n_mascon, middle.size) else values
            ds[name] = (("time", "mascon"), values * 0.01 / 2.0)
            ds[name].attrs.update(units="m", long_name=f"{name} (1-sigma; the file's 2-sigma halved)")
    if basin is not None:
        ds = ds.assign_coords(basin=("mascon", basin))
    ds.attrs.update(product="GSFC mascons", source=path.name, time_origin_shift="2002 January 0 = 2001-12-31")
    return ds


# --- series ----------------------------------------------------------------------------


def decimal_year_to_datetime(years) -> np.ndarray:
    """Decimal years (2002.29) to datetime64[ns] (fraction of the year's own length, to
    the second)."""
    years = np.atleast_1d(np.asarray(years, np.float64))
    whole = np.floor(years).astype(int)
    start = pd.to_datetime([f"{y}-01-01" for y in whole])
    end = pd.to_datetime([f"{y + 1}-01-01" for y in whole])
    return np.asarray((start + (end - start) * (years - whole)).round("s"), "datetime64[ns]")


def _numeric_table(path, **kwargs):
    """The whole table as numbers (a `region` name column excepted)."""
    path, table = read_table(path, **kwargs)
    columns = [c for c in table.columns if c != "region"]
    return table.assign(**numeric_columns(path, table, columns))


def _open_jpl_series(path):
    lines = path.read_text(errors="replace").splitlines()
    header = [line for line in lines if line.startswith("HDR")]
    table = _numeric_table(path, skiprows=len(header), names=["year", "mass", "sigma"], sep=r"\s+")
    if table.isna().any().any():
        raise ValueError(f"{path}: rows after the header must hold three numbers (year, mass, 1-sigma)")
    ds = xr.Dataset(
        dict(mass=("time", table.mass.to_numpy()), mass_uncertainty=("time", table.sigma.to_numpy())),
        coords=dict(time=decimal_year_to_datetime(table.year), decimal_year=("time", table.year.to_numpy())),
    )
    ds["mass"].attrs.update(units="Gt", long_name="mass anomaly relative to April 2002 (GIA removed)")
    ds["mass_uncertainty"].attrs.update(units="Gt", long_name="1-sigma uncertainty of mass")
    title = header[0][3:].strip() if header else ""
    ds.attrs.update(
        product="JPL regional series", title=title, source=path.name, header="\n".join(h[4:] for h in header)
    )
    return ds


def _open_imbie(path):
    table = _numeric_table(path)
    columns = {
        "Year": "decimal_year",
        "Mass balance (Gt/yr)": "mass_balance",
        "Mass balance uncertainty (Gt/yr)": "mass_balance_uncertainty",
        "Cumulative mass balance (Gt)": "cumulative_mass_balance",
        "Cumulative mass balance uncertainty (Gt)": "cumulative_mass_balance_uncertainty",
    }
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: IMBIE columns {missing} not found")
    table = table.rename(columns=columns)
    ds = xr.Dataset(
        {name: ("time", table[name].to_numpy()) for name in list(columns.values())[1:]},
        coords=dict(
            time=decimal_year_to_datetime(table.decimal_year), decimal_year=("time", table.decimal_year.to_numpy())
        ),
    )
    for name in ("mass_balance", "mass_balance_uncertainty"):
        ds[name].attrs["units"] = "Gt yr-1"
    for name in ("cumulative_mass_balance", "cumulative_mass_balance_uncertainty"):
        ds[name].attrs["units"] = "Gt"
    ds.attrs.update(product="IMBIE", source=path.name)
    return ds


def _open_glambie(path):
    table = _numeric_table(path)
    for column in ("start_dates", "end_dates", "combined_gt", "combined_gt_errors"):
        if column not in table.columns:
            raise ValueError(f"{path}: GlaMBIE column {column!r} not found")
    start, end = table.start_dates.to_numpy(), table.end_dates.to_numpy()
    middle = decimal_year_to_datetime(0.5 * (start + end))
    ds = xr.Dataset(coords=dict(time=middle))
    ds["time_bounds"] = (
        ("time", "bounds"),
        np.stack([decimal_year_to_datetime(start), decimal_year_to_datetime(end)], 1),
    )
    ds = ds.assign_coords(start_year=("time", start), end_year=("time", end))
    if "glacier_area" in table:
        ds["glacier_area"] = ("time", table.glacier_area.to_numpy() * 1e6)
        ds["glacier_area"].attrs.update(units="m2", source_units="km2")
    for group in ("combined", "gravimetry", "altimetry", "demdiff_and_glaciological"):
        for unit, name, units in (("gt", "mass_change", "Gt"), ("mwe", "specific_mass_change", "m w.e.")):
            column = f"{group}_{unit}"
            if column in table:
                ds[f"{group}_{name}"] = ("time", table[column].to_numpy())
                ds[f"{group}_{name}"].attrs.update(units=units, long_name=f"{group} glacier {name} over the period")
                if f"{column}_errors" in table:
                    ds[f"{group}_{name}_uncertainty"] = ("time", table[f"{column}_errors"].to_numpy())
                    ds[f"{group}_{name}_uncertainty"].attrs.update(units=units)
        if f"{group}_annual_variability" in table:  # 1: the group's own year-to-year changes
            ds[f"{group}_annual_variability"] = ("time", table[f"{group}_annual_variability"].to_numpy())
            ds[f"{group}_annual_variability"].attrs.update(
                units="1",
                long_name=f"1 where {group} gives its own annual variability (else the combined estimate's)",
            )
    fraction = np.round(np.mod(start, 1.0), 2)
    years = "hydrological" if np.all(fraction == 0.75) else "calendar" if np.all(fraction == 0.0) else "mixed"
    region = str(table.region.iloc[0]) if "region" in table else path.stem
    ds.attrs.update(product="GlaMBIE", region=region, years=years, source=path.name)
    return ds


# --- regional mass ---------------------------------------------------------------------


def _box_area(lat, lat_span, lon_span):
    """Area [m2] of lat/lon boxes centred on `lat` [degree] with the given spans [degree]
    on the sphere R = 6371 km: R^2 dlon (sin(lat + dlat/2) - sin(lat - dlat/2))."""
    top = np.radians(np.clip(lat + lat_span / 2, -90, 90))
    bottom = np.radians(np.clip(lat - lat_span / 2, -90, 90))
    return EARTH_RADIUS**2 * np.radians(lon_span) * (np.sin(top) - np.sin(bottom))


def cell_area(lat, lon, lat_step=None, lon_step=None) -> xr.DataArray:
    """Area [m2] of regular lat/lon cells centred on `lat`, `lon` [degree] on the sphere
    R = 6371 km: R^2 dlon (sin(lat + dlat/2) - sin(lat - dlat/2))."""
    lat = np.asarray(lat, np.float64)
    lon = np.asarray(lon, np.float64)
    dlat = lat_step if lat_step is not None else float(np.median(np.abs(np.diff(lat))))
    dlon = lon_step if lon_step is not None else float(np.median(np.abs(np.diff(lon))))
    band = _box_area(lat, dlat, dlon)
    return xr.DataArray(np.broadcast_to(band[:, None], (lat.size, lon.size)).copy(), dims=("lat", "lon"))


def regional_mass(ds: xr.Dataset, mask=None, polygon=None) -> xr.Dataset:
    """Regional mass series [Gt] of a mascon field: sum of lwe [m] x 1000 kg m-3 x area
    [m2] / 1e12 over the region.

    **Arguments:** `ds` from `open_grace` (gridded JPL/CSR, or GSFC mascons); the region as
    `mask` (a boolean (lat, lon) DataArray, or (mascon,) for GSFC) or `polygon` (a
    shapely geometry, or a GeoDataFrame/GeoSeries in lon/lat, unioned; cells or
    mascons whose centre lies inside).

    **Returns** `mass` (time) [Gt] and, where the product has per-mascon 1-sigma
    uncertainties (JPL `uncertainty` with `mascon_id`, GSFC noise and leakage),
    `mass_uncertainty` [Gt]: mascons independent, each mascon's sigma times its area
    inside the region (JPL's uncertainty is per 3-degree mascon, not per cell). Cells
    with fill values count as 0 and their area is reported in `attrs`.
    """
    if (mask is None) == (polygon is None):
        raise ValueError("give exactly one of mask and polygon")
    if "lwe_thickness" not in ds:
        raise ValueError("ds: variable 'lwe_thickness' not found; open the file with open_grace")
    gridded = "lat" in ds.dims and "lon" in ds.dims
    if gridded:
        area = cell_area(ds.lat.values, ds.lon.values).assign_coords(lat=ds.lat, lon=ds.lon)
    elif "mascon" in ds.dims:
        area = ds["area"]
    else:
        raise ValueError("ds: expected (time, lat, lon) or (time, mascon) data")
    if polygon is not None:
        mask = _inside(polygon, ds, gridded)
    mask = xr.DataArray(mask) if not isinstance(mask, xr.DataArray) else mask
    expected = ("lat", "lon") if gridded else ("mascon",)
    if tuple(mask.dims) != expected:
        raise ValueError(f"mask must have dimensions {expected}, got {mask.dims}")
    mask = mask.astype(bool)
    if not bool(mask.any()):
        raise ValueError("mask (or polygon) selects no cell of the mascon grid")
    if gridded:  # read only the rows and columns the region touches (the file stays lazy)
        rows = np.flatnonzero(mask.any("lon").values)
        cols = np.flatnonzero(mask.any("lat").values)
        window = dict(lat=slice(rows[0], rows[-1] + 1), lon=slice(cols[0], cols[-1] + 1))
        ds, mask, area = ds.isel(window), mask.isel(window), area.isel(window)
    weights = xr.where(mask, area, 0.0)
    lwe = ds.lwe_thickness
    mass = (lwe.fillna(0.0) * weights).sum(expected) * WATER_DENSITY / 1e12
    out = xr.Dataset(dict(mass=mass.astype(np.float64)))
    out["mass"].attrs.update(units="Gt", long_name="regional mass (anomaly as in the product)")
    missing = (lwe.isnull() & mask).any("time")
    out.attrs["area_without_data_m2"] = float((area * missing).sum())
    out.attrs["area_m2"] = float(weights.sum())
    if gridded and "uncertainty" in ds and "mascon_id" in ds:
        mascon_area = weights.groupby(ds.mascon_id.rename("mascon")).sum()
        sigma = ds.uncertainty.where(mask).groupby(ds.mascon_id.rename("mascon")).max()  # one value per mascon
        variance = ((sigma.fillna(0.0) * mascon_area) ** 2).sum("mascon")
        out["mass_uncertainty"] = np.sqrt(variance) * WATER_DENSITY / 1e12
    elif not gridded and "noise_uncertainty" in ds:
        sigma2 = ds.noise_uncertainty**2 + (ds.leakage_uncertainty**2 if "leakage_uncertainty" in ds else 0.0)
        out["mass_uncertainty"] = np.sqrt((sigma2 * weights**2).sum("mascon")) * WATER_DENSITY / 1e12
    if "mass_uncertainty" in out:
        out["mass_uncertainty"].attrs.update(units="Gt", long_name="1-sigma, mascons independent")
    if "time_bounds" in ds:
        out["time_bounds"] = ds.time_bounds
    return out


def _inside(polygon, ds, gridded):
    import shapely

    if hasattr(polygon, "union_all"):  # GeoDataFrame / GeoSeries
        if getattr(polygon, "crs", None) is not None and not polygon.crs.is_geographic:
            polygon = polygon.to_crs("EPSG:4326")
        polygon = polygon.union_all()
    if gridded:
        lon, lat = np.meshgrid(ds.lon.values, ds.lat.values)
        dims = ("lat", "lon")
    else:
        lon, lat, dims = ds.lon.values, ds.lat.values, ("mascon",)
    lon180 = np.where(lon > 180, lon - 360, lon)  # mascon grids run 0-360, outlines -180-180
    inside = shapely.contains_xy(polygon, lon180, lat) | shapely.contains_xy(polygon, lon, lat)
    return xr.DataArray(inside, dims=dims)


def glacier_mascons(ds: xr.Dataset, lat, lon) -> np.ndarray:
    """The mascon of each glacier at (`lat`, `lon`) [degree; lon in -180-180 or 0-360]:
    JPL `mascon_id` of the cell containing it; GSFC the index of the mascon whose
    lat/lon span contains it; for grids without ids (CSR), the flat cell index
    lat_index x n_lon + lon_index. -1 where none contains the point."""
    lat = np.atleast_1d(np.asarray(lat, np.float64))
    lon = np.atleast_1d(np.asarray(lon, np.float64))
    if lat.shape != lon.shape:
        raise ValueError(f"lat and lon must have the same shape, got {lat.shape} and {lon.shape}")
    if "lat" in ds.dims and "lon" in ds.dims:
        grid_lon = ds.lon.values
        shift = 360.0 if grid_lon.min() >= 0 else 0.0
        lon = np.where(lon < 0, lon + shift, lon) if shift else np.where(lon > 180, lon - 360, lon)
        i = _nearest_index(ds.lat.values, lat)
        j = _nearest_index(grid_lon, lon)
        if "mascon_id" in ds:
            return ds.mascon_id.values[i, j].astype(np.int64)
        return (i * grid_lon.size + j).astype(np.int64)
    lon360 = np.mod(lon, 360.0)
    centre = np.mod(ds.lon.values, 360.0)
    dlon = np.abs((lon360[:, None] - centre[None, :] + 180.0) % 360.0 - 180.0)
    inside = (np.abs(lat[:, None] - ds.lat.values[None, :]) <= ds.lat_span.values / 2) & (
        dlon <= ds.lon_span.values / 2
    )
    return np.where(inside.any(1), inside.argmax(1), -1)


def _nearest_index(centres, values):
    order = np.argsort(centres)
    sorted_centres = centres[order]
    k = np.clip(np.searchsorted(sorted_centres, values), 1, centres.size - 1)
    nearer = np.where(np.abs(values - sorted_centres[k - 1]) <= np.abs(sorted_centres[k] - values), k - 1, k)
    return order[nearer]


# --- synthetic files in the real layouts ------------------------------------------------


def _days_since_epoch(times) -> np.ndarray:
    return (pd.DatetimeIndex(times) - EPOCH) / pd.Timedelta(days=1)


def _month_bounds(times):
    times = pd.DatetimeIndex(times)
    start = times.to_period("M").to_timestamp()
    return np.stack([_days_since_epoch(start), _days_since_epoch(start + pd.offsets.MonthBegin(1))], axis=1)


def _global_field(lwe_thickness, time):
    """A writer's (time, lat, lon) field [m] on a global regular grid (n x 2n cells), its
    times, and the grid's cell-centre latitudes and longitudes (0-360) [degree]."""
    lwe = np.asarray(lwe_thickness, np.float64)
    if lwe.ndim != 3 or lwe.shape[2] != 2 * lwe.shape[1]:
        raise ValueError(f"lwe_thickness must be (time, lat, 2 x lat) on a global grid, got {lwe.shape}")
    times = pd.DatetimeIndex(np.atleast_1d(np.asarray(time, "datetime64[ns]")))
    if times.size != lwe.shape[0]:
        raise ValueError(f"time has {times.size} values for {lwe.shape[0]} fields")
    step = 180.0 / lwe.shape[1]
    return lwe, times, np.arange(-90 + step / 2, 90, step), np.arange(step / 2, 360, step)


def write_jpl_mascons(
    path,
    lwe_thickness,
    time,
    *,
    uncertainty=None,
    gain_factor=None,
    land_mask=None,
    mascon_id=None,
    ancillary_time_axis=False,
    dtype="float64",
):
    """Write a JPL-RL06.3-v04-like mascon netCDF (for tests and twin experiments).

    **Arguments:** `lwe_thickness` (time, lat, lon) [m] on a global regular grid
    (360 x 720 for the real 0.5 degree product; any n x 2n works), NaN written as the
    fill value -99999; `time` mid-month datetimes (written as days since
    2002-01-01T00:00:00Z, with month `time_bounds`); optional `uncertainty` (time,
    lat, lon) [m], and the v04 in-file `scale_factor` (from `gain_factor`),
    `land_mask` and `mascon_ID` (lat, lon), repeated along time when
    `ancillary_time_axis`. Stored in cm, as the product; `dtype` of the stored fields.
    """
    lwe, times, lat, lon = _global_field(lwe_thickness, time)
    cube = ("time", "lat", "lon")
    ds = xr.Dataset(
        dict(lwe_thickness=(cube, lwe * 100.0), time_bounds=(("time", "bounds"), _month_bounds(times))),
        coords=dict(time=("time", _days_since_epoch(times)), lat=lat, lon=lon),
    )
    ds["time"].attrs.update(units="days since 2002-01-01T00:00:00Z", calendar="gregorian", bounds="time_bounds")
    ds["lwe_thickness"].attrs.update(units="cm", long_name="Liquid_Water_Equivalent_Thickness")
    ds["lat_bounds"] = (("lat", "bounds"), np.stack([lat - (lat[1] - lat[0]) / 2, lat + (lat[1] - lat[0]) / 2], 1))
    ds["lon_bounds"] = (("lon", "bounds"), np.stack([lon - (lon[1] - lon[0]) / 2, lon + (lon[1] - lon[0]) / 2], 1))
    if uncertainty is not None:
        ds["uncertainty"] = (cube, np.asarray(uncertainty, np.float64) * 100.0)
        ds["uncertainty"].attrs.update(units="cm", long_name="uncertainty (1-sigma, per mascon)")
    for name, values in (("scale_factor", gain_factor), ("land_mask", land_mask), ("mascon_ID", mascon_id)):
        if values is not None:
            values = np.asarray(values, np.float64)
            if values.shape != lwe.shape[1:]:
                raise ValueError(f"{name}: expected (lat, lon) {lwe.shape[1:]}, got {values.shape}")
            if ancillary_time_axis:  # repeated along the file's time axis
                ds[name] = (cube, np.broadcast_to(values, lwe.shape))
            else:
                ds[name] = (("lat", "lon"), values)
    encoding = {
        name: {"_FillValue": -99999.0, "dtype": dtype} for name in ("lwe_thickness", "uncertainty") if name in ds
    }
    encoding["lwe_thickness"]["chunksizes"] = (1, *lwe.shape[1:])
    ds.to_netcdf(path, format="NETCDF4", encoding=encoding)


def write_csr_mascons(path, lwe_thickness, time):
    """Write a CSR-RL06-like mascon netCDF-4 classic file: `lwe_thickness` (time, lat, lon)
    [m] stored in cm on a global grid (720 x 1440 for the real 0.25 degree product),
    longitudes 0-360, and `time` in days since 2002-01-01 whose unit attribute is
    spelled `Units`, as CSR spells it."""
    lwe, times, lat, lon = _global_field(lwe_thickness, time)
    ds = xr.Dataset(
        dict(lwe_thickness=(("time", "lat", "lon"), lwe * 100.0)),
        coords=dict(time=("time", _days_since_epoch(times)), lat=lat, lon=lon),
    )
    ds["time"].attrs.update(Units="days since 2002-01-01", long_name="time")
    ds["lwe_thickness"].attrs.update(units="cm")
    ds.to_netcdf(path, format="NETCDF4_CLASSIC", encoding={"lwe_thickness": {"_FillValue": -99999.0}})


def write_gsfc_mascons(path, lwe_thickness, time, lat, lon, lat_span, lon_span, *, land=None, noise=None, leakage=None):
    """Write a GSFC-v02.4-like mascon HDF5 file with h5py.

    **Arguments:** `lwe_thickness` (mascon, time) [m] (stored as `/solution/cmwe` in
    cm); `time` mid-period datetimes (stored as `/time/ref_days_middle` counted from
    "2002 January 0", with `ref_days_first|last` at the month's ends); mascon centres
    and spans [degree] (stored (1, N) under `/mascon`, with `area_km2` from the sphere);
    `land` boolean (location 80, else 90); `noise`, `leakage` 1-sigma (mascon, time)
    [m], stored as 2-sigma cm under `/uncertainty`.
    """
    import h5py

    cmwe = np.asarray(lwe_thickness, np.float64) * 100.0
    times = pd.DatetimeIndex(np.atleast_1d(np.asarray(time, "datetime64[ns]")))
    if cmwe.ndim != 2 or cmwe.shape[1] != times.size:
        raise ValueError(f"lwe_thickness must be (mascon, {times.size} times), got {cmwe.shape}")
    n = cmwe.shape[0]
    lat, lon, lat_span, lon_span = (
        np.broadcast_to(np.asarray(v, np.float64), (n,)) for v in (lat, lon, lat_span, lon_span)
    )
    area_km2 = _box_area(lat, lat_span, lon_span) / 1e6
    bounds = _month_bounds(times)
    jan0 = lambda days: days + 1.0  # noqa: E731  days since 2002-01-01 -> days from "2002 January 0"
    with h5py.File(path, "w") as f:
        f["solution/cmwe"] = cmwe
        f["time/ref_days_first"] = jan0(bounds[:, 0])
        f["time/ref_days_middle"] = jan0(_days_since_epoch(times))
        f["time/ref_days_last"] = jan0(bounds[:, 1] - 1.0)
        for name, values in (("lat_center", lat), ("lon_center", lon), ("lat_span", lat_span), ("lon_span", lon_span)):
            f[f"mascon/{name}"] = values[None, :]
        f["mascon/area_km2"] = area_km2[None, :]
        land = np.ones(n, bool) if land is None else np.broadcast_to(np.asarray(land, bool), (n,))
        f["mascon/location"] = np.where(land, GSFC_LAND, 90).astype(np.float64)[None, :]
        f["mascon/basin"] = np.zeros((1, n))
        for name, values in (("noise_2sigma", noise), ("leakage_2sigma", leakage)):
            if values is not None:
                f[f"uncertainty/{name}"] = 2.0 * np.asarray(values, np.float64) * 100.0
