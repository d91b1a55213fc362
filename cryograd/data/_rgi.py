"""Readers of regional glacier inputs: RGI 6 hypsometry tables and Icelandic Met Office
monthly station files."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import _units

RGI_MISSING = -9
"""What an RGI 6 hypsometry row holds in every bin where the glacier's hypsometry could not
be computed (RGI 6.0 technical note)."""


def open_rgi_hypsometry(path) -> xr.Dataset:
    """Read an RGI 6 hypsometry table (`NN_rgi60_<Region>_hypso.csv`).

    The layout: columns `RGIId`, `GLIMSId`, `Area` [km2], then one column per elevation bin
    whose header is the bin's centre [m] (50 m bins), holding the glacier's area share in
    that bin in per mille (integers); fields are padded with spaces.

    **Returns:** an `xr.Dataset` over (`glacier`, `band`): `area` (glacier, band) [m2] (the
    shares times the glacier's area, the shares first scaled to sum to exactly 1000), the
    coordinates `glacier` (RGIId strings), `glims_id` (glacier), `elevation` (band) [m]
    (bin centres) and `total_area` (glacier) [m2]. Bins no glacier reaches stay in the
    table (zero area); `region_hypsometry` trims them.

    Rows whose every bin is -9 are glaciers without a hypsometry in the RGI (no DEM
    there): their `area` is NaN, `hypsometry_missing` (glacier) is true, they are named in
    the attribute `missing_hypsometry` and in a warning, and their `total_area` is kept.

    Raises `ValueError` naming the file and the row or column for: a header that is not
    this layout, bin centres that are not evenly spaced, a repeated RGIId, a non-positive
    area, negative shares other than a whole row of -9, and shares whose sum differs from
    1000 by more than their rounding allows (half a per mille for each bin with area).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        table = pd.read_csv(path, skipinitialspace=True, dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"{path.name}: not a CSV table ({error})") from None
    table.columns = [str(c).strip() for c in table.columns]
    if list(table.columns[:3]) != ["RGIId", "GLIMSId", "Area"] or table.shape[1] < 4:
        raise ValueError(
            f"{path.name}: not an RGI 6 hypsometry table (expected columns RGIId, GLIMSId, Area, then one per "
            f"elevation bin; got {', '.join(table.columns[:4])}, ...)"
        )
    try:
        centres = np.array([float(c) for c in table.columns[3:]])
    except ValueError:
        bad = next(c for c in table.columns[3:] if not _is_number(c))
        raise ValueError(f"{path.name}: bin column {bad!r} is not an elevation [m]") from None
    steps = np.diff(centres)
    if steps.size and (steps[0] <= 0 or not np.allclose(steps, steps[0])):
        raise ValueError(f"{path.name}: bin centres {centres[:4].tolist()}... are not increasing in equal steps")
    ids = table["RGIId"].str.strip()
    repeated = ids[ids.duplicated()].tolist()
    if repeated:
        raise ValueError(f"{path.name}: RGIId {repeated[0]} appears more than once")
    try:
        total = table["Area"].astype(float).to_numpy()
        shares = table.iloc[:, 3:].astype(float).to_numpy()
    except ValueError as error:
        raise ValueError(f"{path.name}: a value that is not a number ({error})") from None
    if np.any(~np.isfinite(shares)) or np.any(~np.isfinite(total)):
        row = int(np.argwhere(~np.isfinite(np.column_stack([total, shares])))[0, 0])
        raise ValueError(f"{path.name}: {ids.iloc[row]}: an empty or non-numeric field")
    if np.any(total <= 0):
        row = int(np.argmax(total <= 0))
        raise ValueError(f"{path.name}: {ids.iloc[row]}: Area {total[row]} km2 is not positive")
    missing = np.all(shares == RGI_MISSING, axis=1)
    negative = np.any(shares < 0, axis=1) & ~missing
    if np.any(negative):
        row = int(np.argmax(negative))
        raise ValueError(
            f"{path.name}: {ids.iloc[row]}: negative shares (only a whole row of {RGI_MISSING} marks a missing "
            "hypsometry)"
        )
    sums = shares.sum(axis=1)
    allowed = 0.5 * np.maximum(np.count_nonzero(shares > 0, axis=1), 1)
    wrong = ~missing & (np.abs(sums - 1000.0) > allowed)
    if np.any(wrong):
        row = int(np.argmax(wrong))
        raise ValueError(
            f"{path.name}: {ids.iloc[row]}: its shares sum to {sums[row]:g} per mille, not 1000 (within "
            f"{allowed[row]:g} for rounding)"
        )
    total_m2 = _units.convert(total, "km2", "m2", "Area")
    fractions = np.where(missing[:, None], np.nan, shares / np.where(missing, 1.0, sums)[:, None])
    if np.any(missing):
        names = ids[missing].tolist()
        warnings.warn(
            f"{path.name}: {len(names)} glacier(s) without a hypsometry (rows of {RGI_MISSING}): "
            f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}; their band areas are NaN",
            stacklevel=2,
        )
    ds = xr.Dataset(
        dict(
            area=(("glacier", "band"), fractions * total_m2[:, None], dict(units="m2", long_name="band area")),
            hypsometry_missing=("glacier", missing, dict(long_name="the RGI gives no hypsometry (-9 row)")),
        ),
        coords=dict(
            glacier=("glacier", ids.to_numpy(dtype=str), dict(long_name="RGI 6.0 glacier id")),
            glims_id=("glacier", table["GLIMSId"].str.strip().to_numpy(dtype=str)),
            elevation=("band", centres, dict(units="m", long_name="elevation band centre")),
            total_area=("glacier", total_m2, dict(units="m2", long_name="glacier area (RGI)")),
        ),
        attrs=dict(
            source=path.name,
            bin_size=float(steps[0]) if steps.size else float("nan"),
            missing_hypsometry=", ".join(ids[missing]),
        ),
    )
    return ds


def _is_number(text) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def region_hypsometry(ds: xr.Dataset, *, drop_missing: bool = False):
    """A region's `cg.physics.Hypsometry` (glacier, band) from `open_rgi_hypsometry`, on the
    bands between the lowest and highest that any glacier reaches, and its RGIIds.

    Glaciers without a hypsometry are refused (named) unless `drop_missing=True`, which
    leaves them out with a warning that gives their number and area.

    **Returns:** (`Hypsometry`, glacier ids (numpy array of str)).
    """
    from ..physics import Hypsometry

    missing = ds["hypsometry_missing"].values
    if np.any(missing):
        names = ds.glacier.values[missing].tolist()
        if not drop_missing:
            raise ValueError(
                f"{ds.attrs.get('source', 'hypsometry')}: {len(names)} glacier(s) without a hypsometry "
                f"({', '.join(names[:5])}); pass drop_missing=True to leave them out"
            )
        area = float(ds.total_area.values[missing].sum()) / 1e6
        warnings.warn(
            f"region_hypsometry: {len(names)} glacier(s) without a hypsometry left out ({area:.3f} km2 of "
            f"{float(ds.total_area.sum()) / 1e6:.3f})",
            stacklevel=2,
        )
        ds = ds.isel(glacier=~missing)
    if ds.sizes["glacier"] == 0:
        raise ValueError(f"{ds.attrs.get('source', 'hypsometry')}: no glacier with a hypsometry is left")
    used = np.flatnonzero(ds.area.sum("glacier").values > 0)
    ds = ds.isel(band=slice(used[0], used[-1] + 1))
    elevation = np.broadcast_to(ds.elevation.values, ds.area.shape).copy()
    return Hypsometry(elevation, ds.area.values), ds.glacier.values


IMO_COLUMNS = {"t": "temperature", "r": "precipitation"}


def open_imo_station(path, *, elevation, lat=None, lon=None) -> xr.Dataset:
    """Read an Icelandic Met Office monthly station file (`Stod_NNN_Name.ManMedal.txt`).

    The layout: Latin-1 text, a first comment line (`#...stöð NNN - Name`), a header
    (`stöð ár mán t tx ... r ...`: station, year, month, then the monthly values), tab or
    space separated, `NA` for a missing value. Read: `t` mean air temperature [degC] and `r`
    precipitation [mm per month].

    - `elevation`: the station's height [m a.s.l.] (required: the files do not give it;
      it becomes the `reference_elevation` the SMB models take).
    - `lat`, `lon`: its position [degrees], kept as attributes when given.

    **Returns:** `temperature` (time) [degC] and `precipitation` (time) [kg m-2 per month]
    on a complete monthly axis (`time` = first of each month) from the first to the last
    month in the file, as `open_climate` gives a point. Missing values (`NA`, and months
    without a row) stay NaN, never filled: each variable's attribute `missing_months`
    counts them and `missing_first` gives the first, and a warning lists them. The
    station's number and name are the attributes `station_id` and `station_name`.

    Raises `ValueError` naming the file for: a header without station, year and month
    columns, a file of another station number than its rows, a month outside 1-12, a month
    given twice, non-numeric values, and a file with neither temperature nor precipitation.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if elevation is None or not np.isfinite(float(elevation)):
        raise ValueError(f"elevation: give the station's height [m a.s.l.] for {path.name} (the file has none)")
    text = path.read_bytes().decode("latin-1")
    lines = text.splitlines()
    if not lines or not lines[0].startswith("#"):
        raise ValueError(f"{path.name}: not an IMO monthly station file (no comment line first)")
    comment = lines[0].lstrip("#").strip()
    try:
        table = pd.read_csv(path, sep=r"\s+", skiprows=1, encoding="latin-1", na_values=["NA"], dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"{path.name}: not a table ({error})") from None
    columns = [str(c).strip() for c in table.columns]
    if len(columns) < 4 or columns[1:3] != ["ár", "mán"] or columns[0] != "stöð":
        raise ValueError(
            f"{path.name}: not an IMO monthly station file (expected columns stöð, ár, mán, ...; "
            f"got {', '.join(columns[:4])})"
        )
    table.columns = columns
    wanted = [c for c in IMO_COLUMNS if c in columns]
    if not wanted:
        raise ValueError(f"{path.name}: neither temperature (t) nor precipitation (r) is in the file")
    try:
        numbers = table[["stöð", "ár", "mán", *wanted]].astype(float)
    except ValueError as error:
        raise ValueError(f"{path.name}: a value that is not a number ({error})") from None
    stations = np.unique(numbers["stöð"].dropna())
    if stations.size != 1:
        raise ValueError(f"{path.name}: rows of more than one station ({stations.astype(int).tolist()})")
    times = _first_of_months(path.name, numbers["ár"].to_numpy(), numbers["mán"].to_numpy())
    station = int(stations[0])
    name = comment.split("-", 1)[1].strip() if "-" in comment else ""
    series = {IMO_COLUMNS[c]: (numbers[c].to_numpy(dtype=float), "degC" if c == "t" else "mm") for c in wanted}
    attrs = dict(source=path.name, station_id=station, station_name=name, comment=comment)
    return _station_dataset(path.name, times, series, elevation, lat, lon, attrs)


def open_station_csv(
    path,
    *,
    columns: dict,
    units: dict,
    elevation,
    lat=None,
    lon=None,
    name: str | None = None,
    sep: str = ",",
    encoding: str = "utf-8",
    comment: str | None = None,
) -> xr.Dataset:
    """Read a monthly station table of any layout, through a column mapping.

    - `columns`: the file's column for each of `temperature` and/or `precipitation`, and
      for the month either `time` (a date in the month, e.g. 2001-03 or 2001-03-01) or
      `year` and `month`. E.g. `dict(year="YEAR", month="MON", temperature="T2M",
      precipitation="PRCP")`.
    - `units`: the units of each mapped variable, as CF strings: temperature `degC`, `K`
      or `degF`; precipitation an amount per month (`mm`, `kg m-2`, `m`) or a rate
      (`mm day-1`, `kg m-2 s-1`: times the month's length). Required for precipitation.
    - `elevation` [m a.s.l.], `lat`, `lon` [degree]: the station's position, as for
      `open_imo_station`; `name` its name (default the file name).
    - `sep`, `encoding`, `comment`: passed to the CSV parser (`comment="#"` skips lines
      starting with #). Empty cells and `NA` / `NaN` are missing.

    **Returns:** the dataset `open_imo_station` gives: `temperature` [degC] and
    `precipitation` [kg m-2 per month] on a complete monthly axis, gaps NaN and counted
    (`missing_months`, `missing_first`, a warning), never filled.

    Raises `ValueError` naming the file and column for: a mapped column the file lacks, an
    unknown variable in `columns`, neither time nor year and month, a value that is not a
    number or a date, a month given twice (daily or sub-monthly rows included: aggregate
    them to months first), a month outside 1-12, missing or wrong units.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if elevation is None or not np.isfinite(float(elevation)):
        raise ValueError(f"elevation: give the station's height [m a.s.l.] for {path.name}")
    allowed = {"time", "year", "month", "temperature", "precipitation"}
    unknown = sorted(set(columns) - allowed)
    if unknown:
        raise ValueError(f"columns: unknown key(s) {unknown}; map any of {sorted(allowed)}")
    variables = [v for v in ("temperature", "precipitation") if v in columns]
    if not variables:
        raise ValueError("columns: map temperature and/or precipitation to the file's columns")
    if "time" not in columns and not {"year", "month"} <= set(columns):
        raise ValueError("columns: map either time, or year and month, to the file's columns")
    if "precipitation" in variables and not (units or {}).get("precipitation"):
        raise ValueError("units: give the precipitation's units (e.g. 'mm' per month, or a rate 'mm day-1')")
    try:
        table = pd.read_csv(
            path, sep=sep, encoding=encoding, comment=comment, dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path.name}: not a table ({error})") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [f"{key} -> {column!r}" for key, column in columns.items() if column not in table.columns]
    if missing:
        raise ValueError(f"{path.name}: no column for {', '.join(missing)} (columns: {', '.join(table.columns)})")

    def numbers(key):
        text = table[columns[key]].str.strip()
        text = text.where(~text.isin(["", "NA", "NaN", "nan"]))
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() & text.notna()
        if bad.any():
            raise ValueError(f"{path.name}: column {columns[key]!r} holds {text[bad].iloc[0]!r}, not a number")
        return values.to_numpy(dtype=float)

    if "time" in columns:
        text = table[columns["time"]].str.strip()
        stamps = pd.to_datetime(text, errors="coerce").where(text.str.contains(r"\d{4}"))  # a year is written out
        if stamps.isna().any():
            bad = table[columns["time"]][stamps.isna()].iloc[0]
            raise ValueError(f"{path.name}: column {columns['time']!r} holds {bad!r}, not a date")
        times = pd.DatetimeIndex(stamps).to_period("M").to_timestamp()
    else:
        year, month = numbers("year"), numbers("month")
        if np.isnan(year).any() or np.isnan(month).any():
            raise ValueError(f"{path.name}: a row without its year or month")
        times = _first_of_months(f"{path.name}: column {columns['month']!r}", year, month)
    if times.size == 0:
        raise ValueError(f"{path.name}: no rows")
    series = {v: (numbers(v), (units or {}).get(v, "degC" if v == "temperature" else None)) for v in variables}
    attrs = dict(source=path.name, station_name=name or path.stem)
    return _station_dataset(path.name, times, series, elevation, lat, lon, attrs)


def _first_of_months(label, year, month) -> pd.DatetimeIndex:
    """The first days of the months given by `year` and `month` (1-12) numbers."""
    wrong = (month < 1) | (month > 12) | (month != np.round(month))
    if np.any(wrong):
        raise ValueError(f"{label}: a month outside 1-12 ({month[wrong][:1]})")
    return pd.DatetimeIndex(pd.to_datetime(dict(year=year.astype(int), month=month.astype(int), day=1)))


def _station_dataset(label, times, series: dict, elevation, lat, lon, attrs: dict) -> xr.Dataset:
    """Monthly station values on a complete monthly axis: `series` maps temperature and/or
    precipitation to (values, units) at `times` (first days of months, any order); gaps stay
    NaN, counted (`missing_months`, `missing_first`) and warned about."""
    if times.duplicated().any():
        raise ValueError(f"{label}: month {times[times.duplicated()][0]:%Y-%m} appears more than once")
    order = np.argsort(times.values)
    times = times[order]
    full = pd.date_range(times[0], times[-1], freq="MS")
    position = full.get_indexer(times)
    ds = xr.Dataset(coords=dict(time=("time", full)))
    notes = []
    for name, (raw, units) in series.items():
        values = np.full(full.size, np.nan)
        values[position] = np.asarray(raw, dtype=float)[order]
        if name == "temperature":
            values = _units.to_celsius(values, units, f"{label}: temperature")
            out = dict(units="degC", long_name="monthly mean air temperature")
        else:
            seconds = full.days_in_month.to_numpy() * 86400.0  # a rate times its month's length
            values = _units.to_water_amount(values, units, f"{label}: precipitation", seconds, monthly=True)
            out = dict(units="kg m-2", long_name="precipitation per month", cell_methods="time: sum")
        gaps = np.isnan(values)
        out.update(missing_months=int(gaps.sum()))
        if gaps.any():
            out["missing_first"] = f"{full[np.argmax(gaps)]:%Y-%m}"
            notes.append(f"{name} {int(gaps.sum())} of {gaps.size} months (first {out['missing_first']})")
        ds[name] = ("time", values, out)
    if notes:
        warnings.warn(f"{label}: missing, left as NaN: {'; '.join(notes)}", stacklevel=3)
    ds.attrs.update(attrs)
    ds.attrs["reference_elevation"] = float(elevation)
    if lat is not None and lon is not None:
        ds.attrs.update(lat=float(lat), lon=float(lon))
    return ds
