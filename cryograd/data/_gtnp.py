"""Reader of GTN-P borehole ground-temperature CSV files (wide and long layouts)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

MISSING = -999.0
_LONG_COLUMNS = {"date", "depth", "temperature"}


def open_gtnp(path) -> xr.Dataset:
    """Read a GTN-P ground-temperature CSV into `ground_temperature` (time, depth) [degC].

    Two layouts are recognised from the header:

    - **wide**: first column `Date/Depth` (timestamps), one column per depth [m];
    - **long**: columns `date`, `depth`, `temperature` (plus optional `flag`,
      `borehole_id`, `site_id`, ...); rows are pivoted to (time, depth), and several
      boreholes give an extra `borehole` dimension. Non-empty `flag` entries are kept as
      the string variable `flag` (time, depth).

    -999 marks a missing value (NaN here). Rows repeated identically are dropped (their
    number is the attribute `repeated_rows_dropped`); a time repeated with different values
    is refused. If `<stem>_metadata.json` lies next to the
    file (the GTN-P data portal's dataset record), its borehole name, site, position,
    elevation, unit and citation become attributes; a unit other than degrees Celsius is
    refused.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a CSV file ({error})") from None
    columns = [str(c).strip() for c in table.columns]
    table.columns = columns
    if columns and columns[0].lower() == "date/depth":
        ds = _wide(table, path)
    elif _LONG_COLUMNS <= set(columns):
        ds = _long(table, path)
    else:
        raise ValueError(
            f"{path}: neither GTN-P layout: expected a 'Date/Depth' first column (wide) or "
            f"columns {sorted(_LONG_COLUMNS)} (long); got {columns[:6]}"
        )
    ds["ground_temperature"].attrs.update(units="degC", long_name="ground temperature")
    ds["depth"].attrs.update(units="m", positive="down", long_name="sensor depth")
    ds.attrs["source"] = f"GTN-P {path.name}"
    metadata = path.with_name(path.stem + "_metadata.json")
    if metadata.is_file():
        ds.attrs.update(_metadata(metadata, table))
    return ds


def _times(values, path, column):
    try:
        times = pd.to_datetime(pd.Series(values), format="mixed")
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: column {column!r} holds values that are not dates ({error})") from None
    if times.isna().any():
        raise ValueError(f"{path}: column {column!r} has empty dates")
    return times


def _numeric(frame, path, what):
    try:
        values = frame.apply(pd.to_numeric).to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: {what} must be numeric ({error})") from None
    return np.where(values == MISSING, np.nan, values)


def _wide(table, path):
    # Loggers repeat whole rows (the Arctic Village file has 8): identical repeats are
    # dropped and counted; a time repeated with other values is an error.
    repeats = table.duplicated()
    table = table[~repeats]
    times = _times(table.iloc[:, 0], path, table.columns[0])
    if times.duplicated().any():
        raise ValueError(f"{path}: duplicated times with different values, e.g. {times[times.duplicated()].iloc[0]}")
    if not times.is_monotonic_increasing:
        raise ValueError(f"{path}: times are not sorted")
    try:
        depth = np.array([float(c) for c in table.columns[1:]])
    except ValueError:
        raise ValueError(f"{path}: depth headers must be numbers, got {list(table.columns[1:])}") from None
    values = _numeric(table.iloc[:, 1:], path, "temperatures")
    return xr.Dataset(
        {"ground_temperature": (("time", "depth"), values)},
        coords={"time": times.to_numpy(), "depth": depth},
        attrs={"repeated_rows_dropped": int(repeats.sum())},
    )


def _long(table, path):
    table = table.copy()
    table["time"] = _times(table["date"], path, "date")
    table["depth"] = _numeric(table[["depth"]], path, "'depth'")[:, 0]
    table["temperature"] = _numeric(table[["temperature"]], path, "'temperature'")[:, 0]
    if table["depth"].isna().any():
        raise ValueError(f"{path}: column 'depth' has missing values")
    keys = ["time", "depth"] + (["borehole_id"] if "borehole_id" in table else [])
    duplicated = table.duplicated(keys)
    if duplicated.any():
        row = table[duplicated].iloc[0]
        raise ValueError(f"{path}: duplicated rows for date {row['date']} and depth {row['depth']}")
    indexed = table.set_index(keys)
    data = {"ground_temperature": indexed["temperature"]}
    if "flag" in table and table["flag"].notna().any():
        data["flag"] = indexed["flag"]
    ds = xr.Dataset.from_dataframe(pd.DataFrame(data))
    if "borehole_id" in ds.dims:
        ds = ds.rename({"borehole_id": "borehole"})
        if ds.sizes["borehole"] == 1:
            ds = ds.squeeze("borehole")
    if "flag" in ds:  # empty for rows without a flag and for (time, depth) pairs absent from the file
        ds["flag"] = ds["flag"].fillna("").astype(str)
    return ds


def _metadata(path, table):
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    record = records[0] if isinstance(records, list) and records else records
    if not isinstance(record, dict):
        raise ValueError(f"{path}: expected a GTN-P dataset record (a JSON object)")
    if "dataset_id" in table and record.get("id") is not None and set(table["dataset_id"]) != {record["id"]}:
        raise ValueError(f"{path}: describes dataset {record['id']}, the CSV holds {sorted(set(table['dataset_id']))}")
    unit = (record.get("unit") or {}).get("abbreviation")
    if unit is not None and unit not in ("degC", "°C"):
        raise ValueError(f"{path}: unit is {unit!r}, expected degrees Celsius")
    borehole = record.get("borehole") or {}
    location = borehole.get("location") or {}
    attrs = {
        "borehole_name": borehole.get("name"),
        "site_name": borehole.get("site_name"),
        "country": borehole.get("country_name"),
        "latitude": location.get("latitude"),
        "longitude": location.get("longitude"),
        "elevation": location.get("elevation"),
        "gtnp_code": borehole.get("gtnp_code"),
        "citation": borehole.get("generic_citation"),
        "frequency": record.get("frequency"),
        "quality": record.get("quality"),
    }
    return {key: value for key, value in attrs.items() if value is not None}
