"""One borehole's daily record and its site forcing, from whatever files the site has.

- `open_borehole`: daily ground temperature (time, depth) of a GTN-P CSV (wide or long) or a
  netCDF file, hourly records averaged to days, gaps kept;
- `open_site_forcing`: daily air temperature and snow from ERA5 netCDF (either CDS layout,
  the grid point at the borehole), a CryoGrid forcing JSON, a station CSV or a plain netCDF;
- `point_lst`: clear-sky MODIS LST at the borehole (AppEEARS CSV or HDF tiles), QA applied;
- `open_active_layer`: yearly active-layer thickness (thaw probing, CALM) from a CSV.

Every error names the file, or the argument (`borehole_id: ...`, `lat, lon: ...`) that
would fix it.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import _units
from ._climate import open_climate
from ._cryogrid import open_cryogrid_forcing
from ._gtnp import open_gtnp
from ._modis import extract_points, open_modis_lst, quality_mask

AIR_VARIABLES = {
    "air_temperature": "degC",
    "snow_depth": "m",
    "snow_water_equivalent": "m",
    "snow_density": "kg m-3",
    "snow_conductivity": "W m-1 K-1",
}
"""The site forcing's variables and their units here."""
NETCDF = (".nc", ".nc4", ".cdf")
_GRIDDED = {"t2m", "skt", "temp"}  # an ERA5 (or HISTALP) grid: open_climate at the borehole
_POSITION = ("latitude", "longitude", "elevation")


def open_borehole(path, *, borehole_id=None, min_hours: int = 20) -> xr.DataArray:
    """Daily ground temperature `ground_temperature` (time, depth) [degC] of one borehole.

    **Arguments:** `path` a GTN-P CSV, wide or long (`open_gtnp`), or a netCDF file with
    `temperature` or `ground_temperature` over (`time`, `depth`) in degC or K (its `units`)
    and depths in any length unit; `borehole_id` the borehole of a long file that holds
    several; `min_hours` the hours' worth of values a day's mean needs, for records finer
    than daily.

    Records finer than daily are averaged to daily means (the attribute `averaged_from`
    gives their step); days without enough values, and gaps, stay NaN. Sensors above the
    ground (negative depth) or without any value are left out and listed in the attribute
    `left_out` [m]. The borehole's `latitude`, `longitude` [degree] and `elevation` [m]
    are attributes where a GTN-P metadata JSON gives them.
    """
    path = Path(path)
    if path.suffix.lower() in NETCDF:
        measured = _netcdf_borehole(path)
    else:
        measured = _one_borehole(open_gtnp(path), borehole_id, path)
    position = {k: v for k, v in measured.attrs.items() if k in _POSITION}
    measured = _daily(measured.sortby("time"), min_hours, path.name)
    measured.attrs.update(position)
    gone = (measured.depth.values < 0) | measured.isnull().all("time").values
    measured.attrs["left_out"] = measured.depth.values[gone].tolist()
    measured = measured.isel(depth=~gone)
    if measured.sizes["depth"] == 0:
        raise ValueError(f"{path.name} has no sensor with a value at or below the ground")
    measured.attrs.update(units="degC", long_name="ground temperature, daily mean")
    return measured.sortby("depth").rename("ground_temperature")


def _netcdf_borehole(path: Path) -> xr.DataArray:
    with xr.open_dataset(path) as ds:
        name = next((n for n in ("temperature", "ground_temperature") if n in ds), None)
        if name is None:
            raise ValueError(f"{path.name} has no variable 'temperature' (time, depth)")
        da = ds[name].load()
    if set(da.dims) != {"time", "depth"}:
        raise ValueError(f"{path.name}: {name} has dims {da.dims}; expected (time, depth)")
    depth = da.depth.values.astype(float)
    if "units" in da.depth.attrs:
        depth = _units.convert(depth, da.depth.attrs["units"], "m", f"{path.name}: depth")
    values = _units.to_celsius(da.transpose("time", "depth").values, da.attrs.get("units"), f"{path.name}: {name}")
    return xr.DataArray(values, dims=("time", "depth"), coords=dict(time=da.time.values, depth=depth))


def _one_borehole(table: xr.Dataset, wanted, path: Path) -> xr.DataArray:
    measured = table.ground_temperature
    position = {k: table[k] if k in table.coords else table.attrs.get(k) for k in _POSITION}
    if "borehole" not in measured.dims:  # one borehole: a long file names it in a scalar coordinate
        held = str(measured.borehole.values) if "borehole" in measured.coords else None
        if wanted is not None and held is not None and held != str(wanted):
            raise ValueError(f"borehole_id: {wanted} is not in {path.name}; it holds {held}")
        return _positioned(measured.reset_coords(drop=True), position, None)
    ids = [str(b) for b in table.borehole.values]
    if wanted is None:
        if len(ids) > 1:
            raise ValueError(f"borehole_id: {path.name} holds boreholes {', '.join(ids)}; choose one")
        wanted = ids[0]
    if str(wanted) not in ids:
        raise ValueError(f"borehole_id: {wanted} is not in {path.name}; it holds {', '.join(ids)}")
    index = ids.index(str(wanted))
    return _positioned(measured.isel(borehole=index).reset_coords(drop=True), position, index)


def _positioned(measured: xr.DataArray, position: dict, index) -> xr.DataArray:
    for key, value in position.items():
        if isinstance(value, xr.DataArray):
            value = value.values if index is None or "borehole" not in value.dims else value.values[index]
        if value is not None and np.isfinite(float(value)):
            measured.attrs[key] = float(value)
    return measured


def _daily(measured: xr.DataArray, min_hours: int, name: str) -> xr.DataArray:
    """Daily means of a sub-daily record (a day needs `min_hours` of 24 hours' worth of
    values); a daily record as it is. Coarser records are refused."""
    times = pd.DatetimeIndex(measured.time.values)
    if times.size < 2:
        raise ValueError(f"{name} has {times.size} time(s); a daily record is needed")
    step = pd.Series(times).diff().median()
    if step > pd.Timedelta(days=1):
        raise ValueError(f"{name} has a time step of {step}; daily or finer records are needed")
    if step == pd.Timedelta(days=1) and (times == times.normalize()).all():
        return measured
    resampled = measured.resample(time="1D")
    daily = resampled.mean().where(resampled.count() >= min_hours / 24.0 * (pd.Timedelta(days=1) / step))
    daily.attrs["averaged_from"] = str(step)
    return daily


def open_site_forcing(path, *, lat=None, lon=None, elevation=None, columns=None, units=None) -> xr.Dataset:
    """Daily air temperature [degC] and snow of a site, from

    - ERA5 netCDF file(s) (a path or a list; either CDS layout, `open_climate`): `t2m`, snow
      depth `sd` [m of water equivalent], snow density `rsn`, at the grid point nearest
      `lat`, `lon` [degree], shifted to `elevation` [m] from the grid point's height (`z`);
    - a CryoGrid forcing JSON (`open_cryogrid_forcing`);
    - a station CSV: a time column (`columns["time"]`, default the first) and columns for
      `AIR_VARIABLES`, named as such or as `columns` maps them, in `units` (default those of
      `AIR_VARIABLES`), converted;
    - a netCDF file with those variables (their `units` converted where the physics reads them).

    Records finer than daily are averaged to days (on midnight). Returns the variables of
    `AIR_VARIABLES` that the source has; refused without an air temperature.
    """
    paths = [Path(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
    names = ", ".join(p.name for p in paths)
    suffixes = {p.suffix.lower() for p in paths}
    if len(paths) == 1 and suffixes == {".json"}:
        ds = open_cryogrid_forcing(paths[0])
    elif len(paths) == 1 and suffixes == {".csv"}:
        ds = _station_csv(paths[0], columns or {}, units or {})
    elif suffixes <= set(NETCDF):
        variables = set()
        for p in paths:
            with xr.open_dataset(p, decode_times=False) as raw:
                variables |= set(raw.data_vars)
        if variables & _GRIDDED:
            if lat is None or lon is None:
                raise ValueError(f"lat, lon: {names} is a grid; give the borehole's position")
            ds = open_climate(paths, lat=lat, lon=lon, elevation=elevation).rename(temperature="air_temperature")
        else:
            parts = []
            for p in paths:
                with xr.open_dataset(p) as part:
                    parts.append(part.load())
            ds = xr.merge(parts)
    else:
        raise ValueError(f"{names}: give ERA5 or other netCDF files, a CryoGrid JSON or a station CSV")
    if "air_temperature" not in ds:
        raise ValueError(f"{names} has no air temperature (variables {sorted(ds.data_vars)})")
    ds = ds[[k for k in AIR_VARIABLES if k in ds]]
    if pd.Series(pd.DatetimeIndex(ds.time.values)).diff().median() < pd.Timedelta(days=1):
        attrs = {k: ds[k].attrs for k in ds.data_vars}
        ds = ds.resample(time="1D").mean()
        for k, a in attrs.items():
            ds[k].attrs.update(a)
    ds.attrs["source"] = names
    return ds.assign_coords(time=pd.DatetimeIndex(ds.time.values).normalize())


def _station_csv(path: Path, columns: dict, units: dict) -> xr.Dataset:
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"{path.name}: not a CSV file ({error})") from None
    time = columns.get("time", table.columns[0])
    mapping = {name: columns.get(name, name) for name in AIR_VARIABLES}
    missing = [f"{k} ({v!r})" for k, v in [*mapping.items(), ("time", time)] if k in columns and v not in table]
    if missing or mapping["air_temperature"] not in table:
        raise ValueError(
            f"columns: {path.name} has no column for {', '.join(missing) or 'air_temperature'}; its columns: "
            f"{', '.join(map(str, table.columns))}"
        )
    try:
        index = pd.DatetimeIndex(pd.to_datetime(table[time], format="mixed"), name="time")
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path.name}: column {time!r} is not dates ({error})") from None
    ds = xr.Dataset(coords=dict(time=index))
    for name, column in mapping.items():
        if column not in table:
            continue
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(float)
        label, unit = f"{path.name}: {column}", units.get(name, AIR_VARIABLES[name])
        if name == "air_temperature":
            values = _units.to_celsius(values, unit, label)
        elif name == "snow_water_equivalent":
            values = _units.to_water_depth(values, unit, label)
        else:
            values = _units.convert(values, unit, AIR_VARIABLES[name], label)
        ds[name] = ("time", values, dict(units=AIR_VARIABLES[name]))
    return ds.sortby("time")


def point_lst(path, *, lat=None, lon=None, site=None, mandatory=("good",), max_lst_error: float = 2.0) -> xr.Dataset:
    """Clear-sky MODIS LST at one point: `land_surface_temperature_day` and `_night` (time)
    [K], NaN where cloudy or where `quality_mask` (with `mandatory` QA classes and
    `max_lst_error` [K]) rejects the value; `time` on midnight.

    **Arguments:** `path` an AppEEARS MOD11/MYD11 point CSV (`site` picks its point, needed
    when it holds several) or MODIS HDF tiles (a path or a list; the cell holding `lat`,
    `lon` [degree]). `cg.physics.gap_fill_lst` turns the result into a daily forcing.
    """
    paths = [str(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
    names = ", ".join(Path(p).name for p in paths)
    ds = open_modis_lst(paths if len(paths) > 1 else paths[0])
    if "site" not in ds.dims:  # tiles
        if lat is None or lon is None:
            raise ValueError(f"lat, lon: {names} are MODIS tiles; give the borehole's position")
        ds = extract_points(ds, lat, lon).isel(site=0)
    else:
        sites = [str(s) for s in ds.site.values]
        if site is None and len(sites) > 1:
            raise ValueError(f"site: {names} holds points {', '.join(sites)}; choose one")
        site = sites[0] if site is None else str(site)
        if site not in sites:
            raise ValueError(f"site: {site} is not in {names}; it holds {', '.join(sites)}")
        ds = ds.isel(site=sites.index(site))
    clear = xr.Dataset(coords=dict(time=pd.DatetimeIndex(ds.time.values).normalize()))
    for overpass in ("day", "night"):
        name = f"land_surface_temperature_{overpass}"
        if name in ds:
            usable = quality_mask(ds, overpass, mandatory=tuple(mandatory), max_lst_error=max_lst_error)
            clear[name] = ("time", ds[name].where(usable).values, dict(units="K"))
    clear.attrs["source"] = names
    return clear


def open_active_layer(path, *, units: str = "m") -> xr.DataArray:
    """Yearly active-layer thickness [m] over `year` from a CSV with a `year` column and one
    of `active_layer_thickness`, `alt`, `thaw_depth` (case ignored) in `units`; blank
    values are NaN."""
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"{path.name}: not a CSV file ({error})") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    column = next((c for c in ("active_layer_thickness", "alt", "thaw_depth") if c in table), None)
    if "year" not in table or column is None:
        raise ValueError(
            f"{path.name} needs columns year and active_layer_thickness (or alt, thaw_depth); it has "
            f"{', '.join(table.columns)}"
        )
    values = _units.convert(pd.to_numeric(table[column], errors="coerce"), units, "m", f"{path.name}: {column}")
    if (values < 0).any():
        raise ValueError(f"{path.name}: negative {column}")
    years = pd.to_numeric(table["year"], errors="coerce")
    if years.isna().any() or years.duplicated().any():
        raise ValueError(f"{path.name}: the year column has blanks, non-numbers or repeats")
    return xr.DataArray(
        values,
        dims="year",
        coords=dict(year=years.astype(int).to_numpy()),
        name="active_layer_thickness",
        attrs=dict(units="m", long_name="active-layer thickness"),
    )
