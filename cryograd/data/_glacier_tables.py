"""Glacier mass-balance tables: WGMS Fluctuations of Glaciers (glacier-wide and profile),
Hugonnet et al. (2021) geodetic rates (per glacier and regional) and binned
elevation-change profiles. Balances come out in kg m-2 (= mm w.e.) with the source unit
recorded, so the mm/m trap between tables cannot pass silently."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ._tables import numeric_columns, read_table

WGMS_MISSING = (9999, -9999, 99999)
"""Placeholder values in WGMS elevation columns (glacier-wide rows)."""


def open_flowline(path):
    """An OGGM elevation-band flowline CSV (columns `surface_h_m`, `width_m`, `dx_m` [m],
    one row per grid point) as the glacier's `cg.physics.Hypsometry`
    (`Hypsometry.from_flowline`)."""
    from ..physics import Hypsometry

    table = pd.read_csv(path)
    missing = {"surface_h_m", "width_m", "dx_m"} - set(table.columns)
    if missing:
        raise ValueError(f"{Path(path).name}: missing columns {sorted(missing)} (OGGM elevation-band format)")
    return Hypsometry.from_flowline(table.surface_h_m.values, table.width_m.values, table.dx_m.values)


def open_wgms(path) -> xr.Dataset:
    """Read WGMS mass balance.

    - **FoG `mbdata`** (YEAR, WGMS_ID, NAME, WINTER_BALANCE, SUMMER_BALANCE,
      ANNUAL_BALANCE in mm w.e., RGI_ID): `annual_balance`, `winter_balance`,
      `summer_balance` (glacier, year) [kg m-2]; rows with LOWER_BOUND/UPPER_BOUND other
      than the 9999 placeholder (the FoG long layout) become `mass_balance_profile`
      (glacier, year, band) with `band_bottom`/`band_top` [m].
    - **Profile table** (first column the year, one column per band elevation [m], mm
      w.e.; as distributed with the OGGM sample data): `mass_balance_profile` (year,
      elevation) [kg m-2].

    Years are WGMS hydrological years (October-September in the northern hemisphere),
    labelled by the year they end.
    """
    path, table = read_table(path)
    columns = [str(c).strip() for c in table.columns]
    table.columns = columns
    if "YEAR" in columns and any(c.endswith("_BALANCE") for c in columns):
        return _wgms_mbdata(path, table)
    try:
        elevations = np.asarray([float(c) for c in columns[1:]])
    except ValueError:
        elevations = None
    if elevations is not None and elevations.size and columns[0] in ("", "Unnamed: 0", "YEAR", "year"):
        return _wgms_profile(path, table, elevations)
    raise ValueError(
        f"{path}: not a WGMS table: expected YEAR and *_BALANCE columns (mbdata) or a year column followed by "
        f"band elevations (profile); got {columns[:6]}"
    )


def _wgms_mbdata(path, table):
    if "WGMS_ID" not in table:
        raise ValueError(f"{path}: column 'WGMS_ID' not found")
    balance_columns = [c for c in ("ANNUAL_BALANCE", "WINTER_BALANCE", "SUMMER_BALANCE") if c in table]
    if "ANNUAL_BALANCE" not in balance_columns:
        raise ValueError(f"{path}: column 'ANNUAL_BALANCE' not found")
    numbers = numeric_columns(path, table, ["YEAR", "WGMS_ID", *balance_columns])
    if np.isnan(numbers["YEAR"]).any() or np.isnan(numbers["WGMS_ID"]).any():
        raise ValueError(f"{path}: columns 'YEAR' and 'WGMS_ID' must be filled on every row")
    table = table.assign(**numbers)
    profile_rows = np.zeros(len(table), bool)
    if "LOWER_BOUND" in table and "UPPER_BOUND" in table:
        bounds = numeric_columns(path, table, ["LOWER_BOUND", "UPPER_BOUND"])
        profile_rows = ~np.isin(bounds["LOWER_BOUND"], WGMS_MISSING) & ~np.isnan(bounds["LOWER_BOUND"])
        table = table.assign(LOWER_BOUND=bounds["LOWER_BOUND"], UPPER_BOUND=bounds["UPPER_BOUND"])
    wide = table[~profile_rows]
    if wide.duplicated(["WGMS_ID", "YEAR"]).any():
        raise ValueError(f"{path}: a glacier has two glacier-wide rows for one YEAR")
    indexed = wide.set_index(["WGMS_ID", "YEAR"])
    ds = xr.Dataset()
    for column in balance_columns:
        name = column.lower()
        grid = indexed[column].to_xarray().rename(WGMS_ID="glacier", YEAR="year")
        ds[name] = grid.astype(np.float64)
        ds[name].attrs.update(
            units="kg m-2", source_units="mm w.e.", long_name=f"glacier-wide {name.replace('_', ' ')}"
        )
    ds = ds.assign_coords(glacier=ds.glacier.astype(np.int64), year=ds.year.astype(np.int64))
    for column, target in (("NAME", "name"), ("RGI_ID", "rgi_id")):
        if column in table:
            names = table.groupby("WGMS_ID")[column].first()
            ds = ds.assign_coords({target: ("glacier", names.reindex(ds.glacier.values).astype(str).to_numpy())})
    if profile_rows.any():
        bands = table[profile_rows]
        bands = bands.assign(band=bands.LOWER_BOUND)
        profile = bands.set_index(["WGMS_ID", "YEAR", "band"])["ANNUAL_BALANCE"].to_xarray()
        profile = profile.rename(WGMS_ID="glacier", YEAR="year").astype(np.float64)
        ds["mass_balance_profile"] = profile.reindex(glacier=ds.glacier, year=ds.year)
        ds["mass_balance_profile"].attrs.update(units="kg m-2", source_units="mm w.e.")
        tops = bands.groupby("LOWER_BOUND")["UPPER_BOUND"].first()
        ds = ds.assign_coords(
            band_bottom=("band", ds.band.values), band_top=("band", tops.reindex(ds.band.values).values)
        )
    ds.attrs.update(source=path.name, years="hydrological (WGMS), labelled by the year they end")
    return ds


def _wgms_profile(path, table, elevations):
    numbers = numeric_columns(path, table, list(table.columns))
    years = numbers[table.columns[0]]
    if np.isnan(years).any():
        raise ValueError(f"{path}: the first column (year) has empty rows")
    values = np.stack([numbers[c] for c in table.columns[1:]], axis=1)
    ds = xr.Dataset(
        dict(mass_balance_profile=(("year", "elevation"), values)),
        coords=dict(year=years.astype(np.int64), elevation=elevations),
    )
    ds["mass_balance_profile"].attrs.update(units="kg m-2", source_units="mm w.e.")
    ds["elevation"].attrs.update(units="m", long_name="band elevation")
    ds.attrs.update(source=path.name, years="hydrological (WGMS), labelled by the year they end")
    return ds


_HUGONNET_GLACIER = ("rgiid", "period", "area", "dhdt", "err_dhdt", "dmdtda", "err_dmdtda")
_HUGONNET_REGION = ("reg", "period", "dmdt", "err_dmdt", "dmdtda", "err_dmdtda")


def open_geodetic_mb(path) -> xr.Dataset:
    """Read geodetic mass balance.

    - **Hugonnet et al. (2021) per-glacier rates** (`dh_XX_rgi60_pergla_rates.csv`: rgiid,
      period `YYYY-MM-DD_YYYY-MM-DD`, area, dhdt, dvoldt, dmdt, dmdtda [m w.e. yr-1], ...
      with `err_` columns): (glacier, period).
    - **Hugonnet regional rates** (reg, period, dmdt, dmdtda [**mm** w.e. yr-1]):
      (region, period).
    - **Binned elevation-change profile** (CSV bin_start, bin_stop, bin_area,
      date_start, date_end, dh, dh_sigma, ref_dem, ref_dem_year; or its JSON twin):
      `elevation_change` and its 1-sigma (period, bin) [m] with the bin bounds and areas.

    The rates come out as `specific_mass_balance_rate` [kg m-2 yr-1] (m w.e. x 1000 for
    the per-glacier table, mm w.e. x 1 for the regional one; the source unit is in
    `attrs`), `mass_change_rate` [Gt yr-1], `elevation_change_rate` [m yr-1],
    `volume_change_rate` [m3 yr-1], `area` [m2], each with `_uncertainty` where given,
    and `start`/`end` dates per period.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        return _dh_profile_json(path)
    path, table = read_table(path)
    columns = set(table.columns)
    if set(_HUGONNET_GLACIER) <= columns:
        return _hugonnet(path, table, "rgiid", "glacier", per_glacier=True)
    if set(_HUGONNET_REGION) <= columns:
        return _hugonnet(path, table, "reg", "region", per_glacier=False)
    if {"bin_start", "bin_stop", "dh"} <= columns:
        return _dh_profile_csv(path, table)
    raise ValueError(
        f"{path}: not a geodetic table this reader knows (Hugonnet per-glacier: {list(_HUGONNET_GLACIER)}; "
        f"regional: {list(_HUGONNET_REGION)}; binned profile: bin_start, bin_stop, dh); got {sorted(columns)[:8]}"
    )


def _periods(path, periods):
    parts = periods.astype(str).str.split("_", expand=True)
    if parts.shape[1] != 2:
        raise ValueError(f"{path}: column 'period' must read 'YYYY-MM-DD_YYYY-MM-DD'")
    try:
        return pd.to_datetime(parts[0], format="%Y-%m-%d"), pd.to_datetime(parts[1], format="%Y-%m-%d")
    except ValueError as error:
        raise ValueError(f"{path}: column 'period' must read 'YYYY-MM-DD_YYYY-MM-DD' ({error})") from None


def _hugonnet(path, table, key, dim, per_glacier):
    if table.duplicated([key, "period"]).any():
        raise ValueError(f"{path}: a {dim} has two rows for one period")
    start, end = _periods(path, table["period"])
    table = table.assign(start=start.to_numpy(), end=end.to_numpy())
    # the unit trap: per-glacier dmdtda is m w.e. yr-1, the regional table's is mm w.e. yr-1
    to_kg = 1000.0 if per_glacier else 1.0
    source_units = "m w.e. yr-1" if per_glacier else "mm w.e. yr-1"
    variables = {
        "dmdtda": ("specific_mass_balance_rate", "kg m-2 yr-1", to_kg),
        "dmdt": ("mass_change_rate", "Gt yr-1", 1.0),
        "dhdt": ("elevation_change_rate", "m yr-1", 1.0),
        "dvoldt": ("volume_change_rate", "m3 yr-1", 1.0),
        "area": ("area", "m2", 1.0),
    }
    present = [c for c in variables if c in table] + [f"err_{c}" for c in variables if f"err_{c}" in table]
    numbers = numeric_columns(path, table, present)
    if per_glacier and np.nanmax(np.abs(numbers["dmdtda"])) > 30:
        raise ValueError(f"{path}: column 'dmdtda' reaches {np.nanmax(np.abs(numbers['dmdtda']))}: mm, not m w.e.?")
    if not per_glacier and np.nanmax(np.abs(numbers["dmdtda"])) < 30:
        raise ValueError(f"{path}: column 'dmdtda' stays below 30 in a regional table: m, not mm w.e.?")
    indexed = table.assign(**numbers).set_index([key, "period"])
    ds = xr.Dataset()
    for column, (name, units, factor) in variables.items():
        for prefix, suffix in (("", ""), ("err_", "_uncertainty")):
            if prefix + column in indexed:
                grid = indexed[prefix + column].to_xarray().rename({key: dim}) * factor
                ds[name + suffix] = grid
                ds[name + suffix].attrs.update(units=units)
    ds["specific_mass_balance_rate"].attrs["source_units"] = source_units
    dates = table.drop_duplicates("period").set_index("period")
    ds = ds.assign_coords(
        start=("period", dates.start.reindex(ds.period.values).to_numpy()),
        end=("period", dates.end.reindex(ds.period.values).to_numpy()),
    )
    ds.attrs.update(source=path.name, table="Hugonnet et al. 2021 " + ("per glacier" if per_glacier else "regional"))
    return ds


def _dh_profile_csv(path, table):
    required = ("bin_start", "bin_stop", "bin_area", "date_start", "date_end", "dh", "dh_sigma")
    missing = [c for c in required if c not in table]
    if missing:
        raise ValueError(f"{path}: columns {missing} not found")
    numbers = numeric_columns(path, table, ["bin_start", "bin_stop", "bin_area", "dh", "dh_sigma"])
    table = table.assign(**numbers, period=table.date_start.astype(str) + "_" + table.date_end.astype(str))
    indexed = table.set_index(["period", "bin_start"])
    ds = xr.Dataset(
        dict(
            elevation_change=indexed["dh"].to_xarray(),
            elevation_change_uncertainty=indexed["dh_sigma"].to_xarray(),
        )
    ).rename(bin_start="bin")
    bins = table.drop_duplicates("bin_start").set_index("bin_start")
    ds = ds.assign_coords(
        bin_bottom=("bin", ds.bin.values),
        bin_top=("bin", bins.bin_stop.reindex(ds.bin.values).to_numpy()),
        bin_area=("bin", bins.bin_area.reindex(ds.bin.values).to_numpy()),
    )
    return _dh_profile_attrs(ds, path, table.get("ref_dem"), table.get("ref_dem_year"))


def _dh_profile_json(path):
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error})") from None
    for key in ("bin_edges", "bin_area", "dates", "dh", "dh_sigma"):
        if key not in record:
            raise ValueError(f"{path}: key {key!r} not found")
    edges = np.asarray(record["bin_edges"], np.float64)
    dh = np.asarray(record["dh"], np.float64)
    if dh.shape != (len(record["dates"]), edges.size - 1):
        raise ValueError(
            f"{path}: 'dh' is {dh.shape}, expected (periods, bins) = ({len(record['dates'])}, {edges.size - 1})"
        )
    periods = [f"{a}_{b}" for a, b in record["dates"]]
    ds = xr.Dataset(
        dict(
            elevation_change=(("period", "bin"), dh),
            elevation_change_uncertainty=(("period", "bin"), np.asarray(record["dh_sigma"], np.float64)),
        ),
        coords=dict(
            period=periods,
            bin=edges[:-1],
            bin_bottom=("bin", edges[:-1]),
            bin_top=("bin", edges[1:]),
            bin_area=("bin", np.asarray(record["bin_area"], np.float64)),
        ),
    )
    return _dh_profile_attrs(ds, path, [record.get("ref_dem")], [record.get("ref_dem_year")])


def _dh_profile_attrs(ds, path, ref_dem, ref_dem_year):
    start, end = _periods(path, pd.Series(ds.period.values))
    ds = ds.assign_coords(start=("period", start.to_numpy()), end=("period", end.to_numpy()))
    ds["elevation_change"].attrs.update(units="m", long_name="surface elevation change over the period")
    ds["elevation_change_uncertainty"].attrs.update(units="m", long_name="1-sigma")
    ds["bin_area"].attrs.update(units="m2")
    ds.attrs.update(source=path.name, table="binned elevation change")
    if ref_dem is not None and len(ref_dem):
        ds.attrs["reference_dem"] = str(pd.Series(ref_dem).iloc[0])
    if ref_dem_year is not None and len(ref_dem_year):
        ds.attrs["reference_dem_year"] = int(pd.Series(ref_dem_year).iloc[0])
    return ds
