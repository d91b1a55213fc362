"""Monthly climate forcing: HISTALP, OGGM climate files and ERA5 (legacy and new CDS
netCDF layouts) as the SMB models' `temperature` [degC] and `precipitation` [kg m-2 per
step], with point extraction and lapse-rate shifting to a reference elevation.

Layout facts (ERA5 `valid_time`/`number`/`expver` in the new CDS files, int16 packing in
the legacy ones, monthly `tp` as m per day, HISTALP `hgt` and OGGM `ref_hgt`) are from the
project's FORMATS notes.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import _units

GRAVITY = 9.80665
"""Standard gravity, converting ERA5 geopotential to height [m s-2]."""
TEMPERATURE_RANGE = (-90.0, 60.0)
"""Near-surface air temperatures a file can hold [degC]; outside it the units are wrong."""

_NAMES = {  # variable in the file -> (name here, kind)
    "temp": ("temperature", "temperature"),
    "t2m": ("temperature", "temperature"),
    "skt": ("skin_temperature", "temperature"),
    "prcp": ("precipitation", "precipitation"),
    "tp": ("precipitation", "precipitation"),
    "sd": ("snow_water_equivalent", "snow"),
    "rsn": ("snow_density", "density"),
    "hgt": ("surface_elevation", "height"),
    "z": ("surface_elevation", "geopotential"),
}


def open_climate(path, *, lat=None, lon=None, elevation=None, lapse_rate=-0.0065, dim="site") -> xr.Dataset:
    """Read monthly (or hourly ERA5) climate forcing.

    `path` is one file or a list of files on one grid that are merged (ERA5 comes as
    separate t2m, tp and invariant files). Recognised by their variables:

    - **HISTALP** (`temp` [degC], `prcp` [kg m-2 per month], `hgt` [m] on lat/lon) and
      **OGGM climate files** (`temp`, `prcp` on time only, grid-point height in the
      `ref_hgt` attribute).
    - **ERA5** legacy CDS netCDF (`time`, int16 packed, unpacked here to float64) and new
      CDS netCDF (`valid_time`, float32; the `number` and `expver` coordinates are
      dropped, a legacy `expver` dimension (ERA5 + ERA5T) is combined): `t2m` [K] ->
      `temperature` [degC], `skt` [K] -> `skin_temperature` [degC], `tp` -> `precipitation`
      [kg m-2 per step] (monthly means are m per day, times the days of the month; hourly
      values are m per hour), geopotential `z` -> `surface_elevation` = z / g [m], snow
      depth `sd` [m of water equivalent] -> `snow_water_equivalent` [m], snow density
      `rsn` [kg m-3] -> `snow_density` [kg m-3] (the soil column's snow forcing).

    Returns `temperature`, `precipitation` (where present) on (time, lat, lon) with
    `surface_elevation` (lat, lon), lon in -180..180. Negative precipitation (HISTALP has
    some) is set to 0 with a warning, and counted in the variable's attrs.

    Points: `lat`, `lon` [degrees] pick the nearest grid point: scalars give (time,) series
    with `attrs["reference_elevation"]` [m], arrays give (time, `dim`) with a
    `reference_elevation` (`dim`) variable, as the SMB models take. `elevation` [m]
    (scalar or per point) shifts temperatures with `lapse_rate` [K m-1] from the grid
    point's height to that elevation, which becomes the reference elevation.

    Raises `ValueError` naming the file and variable for a file of another kind, missing
    or all-fill variables, unknown units, an undecodable time axis, files on different
    grids or times, and points outside the grid.
    """
    paths = [Path(p) for p in ([path] if isinstance(path, (str, Path)) else path)]
    if not paths:
        raise ValueError("path: no files given")
    parts = [_open_one(p) for p in paths]
    try:
        ds = xr.merge(parts, join="exact", compat="no_conflicts", combine_attrs="drop_conflicts")
    except (ValueError, xr.MergeError) as error:
        names = ", ".join(p.name for p in paths)
        raise ValueError(f"{names}: files are not on one grid and time axis ({error})") from None
    if not ({"temperature", "precipitation", "skin_temperature"} & set(ds.data_vars)):
        names = ", ".join(p.name for p in paths)
        raise ValueError(f"{names}: no temperature or precipitation variable")
    ds.attrs["source"] = ", ".join(p.name for p in paths)
    if lat is None and lon is None:
        if elevation is not None:
            raise ValueError("elevation: needs lat and lon (a point to shift)")
        if "lat" not in ds.dims and "surface_elevation" in ds:  # an OGGM file: one point
            ds.attrs["reference_elevation"] = float(ds["surface_elevation"])
            ds = ds.drop_vars("surface_elevation")
        return ds
    if lat is None or lon is None:
        raise ValueError("lat and lon: give both or neither")
    return _at_points(ds, lat, lon, elevation, lapse_rate, dim)


def _open_one(path: Path) -> xr.Dataset:
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        raw = xr.open_dataset(path, decode_times=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a netCDF file ({error})") from None
    with raw:
        known = [v for v in raw.data_vars if v in _NAMES]
        if not known:
            raise ValueError(
                f"{path}: not a climate file this reader knows (HISTALP/OGGM temp, prcp; ERA5 t2m, tp, skt, z); "
                f"variables {sorted(raw.data_vars)}"
            )
        needs_time = any(_NAMES[v][1] not in ("height", "geopotential") for v in known)
        raw = _standard_dims(path, raw.load(), needs_time)
    out = xr.Dataset(attrs={k: v for k, v in raw.attrs.items() if k in ("ref_hgt", "ref_pix_lon", "ref_pix_lat")})
    for variable in known:
        name, kind = _NAMES[variable]
        values = raw[variable].astype(np.float64)
        if kind != "height" and "time" in values.dims and bool(values.isnull().all()):
            raise ValueError(f"{path}: variable {variable!r} is all fill values")
        if kind == "temperature":
            out[name] = _degrees_celsius(path, variable, values)
        elif kind == "precipitation":
            out[name] = _precipitation(path, variable, values, raw)
        elif kind == "snow":  # ERA5's sd: metres of water equivalent
            units = str(values.attrs.get("units", "")).replace("of water equivalent", "").strip()
            out[name] = values.copy(data=_units.to_water_depth(values.values, units, f"{path}: variable {variable!r}"))
            out[name].attrs = dict(units="m", long_name="snow water equivalent", source_units=values.attrs.get("units"))
        elif kind == "density":
            units = values.attrs.get("units", "kg m-3").replace("**", "")
            out[name] = values.copy(
                data=_units.convert(values.values, units, "kg m-3", f"{path}: variable {variable!r}")
            )
            out[name].attrs = dict(units="kg m-3", long_name="snow density")
        elif kind == "geopotential":
            out[name] = (values.isel(time=0, drop=True) if "time" in values.dims else values) / GRAVITY
            out[name].attrs = dict(units="m", long_name="grid-point surface elevation (geopotential / g)")
        else:
            out[name] = values.assign_attrs(units="m", long_name="grid-point surface elevation")
    if "ref_hgt" in raw.attrs and "lat" not in out.dims:
        out["surface_elevation"] = xr.DataArray(float(raw.attrs["ref_hgt"]), attrs=dict(units="m"))
    return out


def _standard_dims(path, raw, needs_time=True):
    """Rename to (time, lat, lon), decode time, drop ERA5's ensemble/experiment tags."""
    raw = raw.rename(
        {k: v for k, v in (("valid_time", "time"), ("latitude", "lat"), ("longitude", "lon")) if k in raw.variables}
    )
    if "number" in raw.dims:
        if raw.sizes["number"] > 1:
            raise ValueError(f"{path}: {raw.sizes['number']} ensemble members ('number'); select one first")
        raw = raw.isel(number=0)
    if "expver" in raw.dims:  # legacy ERA5 + ERA5T download: one of the two is filled per month
        parts = [raw.isel(expver=i, drop=True) for i in range(raw.sizes["expver"])]
        raw = parts[0]
        for part in parts[1:]:
            raw = raw.combine_first(part)
    raw = raw.drop_vars([c for c in ("number", "expver") if c in raw.variables])
    if "time" not in raw.variables:
        if needs_time:
            raise ValueError(f"{path}: no time axis ('time' or 'valid_time')")
        return _standard_grid(raw)
    units = raw["time"].attrs.get("units")
    try:
        decoded = xr.decode_cf(raw[["time"]])["time"].values
    except (ValueError, TypeError, OverflowError) as error:
        raise ValueError(f"{path}: variable 'time' cannot be decoded (units {units!r}: {error})") from None
    if not np.issubdtype(decoded.dtype, np.datetime64):
        raise ValueError(f"{path}: variable 'time' cannot be decoded to dates (units {units!r})")
    return _standard_grid(raw.assign_coords(time=decoded))


def _standard_grid(raw):
    """lon in -180..180 and float64 lat/lon, both ascending."""
    if "lon" in raw.coords:
        lon = ((raw["lon"].values.astype(np.float64) + 180.0) % 360.0) - 180.0
        raw = raw.assign_coords(lon=lon, lat=raw["lat"].values.astype(np.float64)).sortby(["lat", "lon"])
    return raw


def _degrees_celsius(path, variable, values):
    units = values.attrs.get("units")
    if units is None:
        raise ValueError(f"{path}: variable {variable!r} has no 'units' attribute; expected a temperature (K, degC)")
    celsius = values.copy(data=_units.to_celsius(values.values, units, f"{path}: variable {variable!r}"))
    low, high = float(celsius.min()), float(celsius.max())
    if low < TEMPERATURE_RANGE[0] or high > TEMPERATURE_RANGE[1]:
        raise ValueError(f"{path}: variable {variable!r} spans {low:g}..{high:g} degC: not {units}?")
    return celsius.assign_attrs(units="degC", long_name=values.attrs.get("long_name", "air temperature"))


def _precipitation(path, variable, values, raw):
    units = values.attrs.get("units")
    label = f"{path}: variable {variable!r}"
    if units is None:
        raise ValueError(f"{label} has no 'units' attribute; expected kg m-2, mm or m (ERA5)")
    times = pd.DatetimeIndex(raw["time"].values)
    seconds = np.diff(times.values).astype("timedelta64[s]").astype(np.float64)
    axis = values.dims.index("time")
    shape = [1] * values.ndim
    shape[axis] = times.size
    # ERA5 (FORMATS.md): bare metres are m per day in monthly means, the hour's total hourly
    era5 = _units.era5_precipitation(
        values.values, units, label, seconds, times.days_in_month.to_numpy(np.float64).reshape(shape)
    )
    if era5 is not None:
        return _precipitation_attributes(path, variable, values.copy(data=era5), units)
    # any other amount or rate of water, over each step
    if times.size < 2:
        raise ValueError(f"{label} in {units!r} needs at least two time steps")
    seconds = np.append(seconds, seconds[-1])  # each step lasts until the next
    monthly = _units.monthly_steps(seconds)
    if monthly:
        seconds = times.days_in_month.to_numpy(np.float64) * 86400.0
    amounts = _units.to_water_amount(values.values, units, label, seconds.reshape(shape), monthly=monthly)
    return _precipitation_attributes(path, variable, values.copy(data=amounts), units)


def _precipitation_attributes(path, variable, per_step, units):
    negative = int((per_step < 0).sum())
    if negative:
        warnings.warn(f"{path}: {negative} negative values of {variable!r} set to 0", stacklevel=5)
        per_step = per_step.clip(min=0.0)
    return per_step.assign_attrs(
        units="kg m-2",
        long_name="precipitation per time step",
        cell_methods="time: sum",
        source_units=units,
        negative_values_set_to_zero=negative,
    )


def _at_points(ds, lat, lon, elevation, lapse_rate, dim):
    scalar = np.ndim(lat) == 0 and np.ndim(lon) == 0
    lat = np.atleast_1d(np.asarray(lat, np.float64))
    lon = ((np.atleast_1d(np.asarray(lon, np.float64)) + 180.0) % 360.0) - 180.0
    if lat.shape != lon.shape or lat.ndim != 1:
        raise ValueError(f"lat and lon must be scalars or 1-D arrays of one length, got {lat.shape} and {lon.shape}")
    if "lat" in ds.dims:
        for name, points in (("lat", lat), ("lon", lon)):
            grid = ds[name].values
            half = np.abs(np.diff(grid)).max() / 2 if grid.size > 1 else 0.5
            if np.any(points < grid.min() - half) or np.any(points > grid.max() + half):
                raise ValueError(f"{name}: points {points} lie outside the grid ({grid.min()}..{grid.max()})")
        picked = ds.sel(lat=xr.DataArray(lat, dims=dim), lon=xr.DataArray(lon, dims=dim), method="nearest")
        picked = picked.rename(lat="grid_lat", lon="grid_lon")
    else:  # an OGGM file: already a point
        picked = ds.expand_dims({dim: lat.size})
    if "surface_elevation" not in picked:
        if elevation is not None:
            raise ValueError("elevation: the file has no grid-point height (hgt, ref_hgt or z) to shift from")
        reference = None
    else:
        reference = picked["surface_elevation"].broadcast_like(xr.DataArray(lat, dims=dim)).astype(np.float64)
        picked = picked.drop_vars("surface_elevation")
    if elevation is not None:
        target = xr.DataArray(np.broadcast_to(np.asarray(elevation, np.float64), lat.shape), dims=dim)
        for name in ("temperature", "skin_temperature"):
            if name in picked:
                shifted = picked[name] + lapse_rate * (target - reference)
                picked[name] = shifted.assign_attrs(picked[name].attrs, lapse_rate=lapse_rate)
        reference = target
    picked = picked.transpose("time", dim, ...)
    if reference is not None:
        reference = reference.assign_attrs(units="m", long_name="elevation of the temperature series")
        picked["reference_elevation"] = reference
    if scalar:
        picked = picked.isel({dim: 0}, drop=False)
        if "reference_elevation" in picked:
            picked.attrs["reference_elevation"] = float(picked["reference_elevation"])
            picked = picked.drop_vars("reference_elevation")
    return picked
