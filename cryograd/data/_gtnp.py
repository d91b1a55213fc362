"""Reader of GTN-P borehole ground-temperature CSV files (wide and long layouts)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import _units

MISSING = -999.0
_LONG_COLUMNS = {"date", "depth", "temperature"}


def open_gtnp(path) -> xr.Dataset:
    """Read a GTN-P ground-temperature CSV into `ground_temperature` (time, depth) [degC].

    Two layouts are recognised from the header:

    - **wide**: first column `Date/Depth` (timestamps), one column per depth [m];
    - **long**: columns `date`, `depth`, `temperature` (plus optional `flag`,
      `dataset_id`, `borehole_id`, `site_id`, ...); rows are pivoted to (time, depth), and
      several boreholes (`borehole_id`, or `dataset_id` without it) give an extra
      `borehole` dimension, with each borehole's `dataset_id` as a coordinate.
      Non-empty `flag` entries are kept as the string variable `flag` (time, depth).

    -999 marks a missing value (NaN here). Rows repeated identically are dropped (their
    number is the attribute `repeated_rows_dropped`); a time repeated with different values
    is refused. If `<stem>_metadata.json` lies next to the
    file (the GTN-P data portal's dataset records), the borehole name, site, position,
    elevation and citation of each dataset it describes become attributes (one borehole)
    or coordinates along `borehole` (several; NaN or "" for boreholes it does not
    describe). Datasets of the CSV the JSON does not describe are named in the attribute
    `metadata_note` and a warning; a JSON that describes none of them, or gives a unit
    other than degrees Celsius, is refused.
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
        ds = _with_metadata(ds, metadata, table)
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
    site = _borehole_key(table)
    keys = ["time", "depth"] + ([site] if site else [])
    duplicated = table.duplicated(keys)
    if duplicated.any():
        row = table[duplicated].iloc[0]
        raise ValueError(f"{path}: duplicated rows for date {row['date']} and depth {row['depth']}")
    indexed = table.set_index(keys)
    data = {"ground_temperature": indexed["temperature"]}
    if "flag" in table and table["flag"].notna().any():
        data["flag"] = indexed["flag"]
    ds = xr.Dataset.from_dataframe(pd.DataFrame(data))
    if site:
        ds = ds.rename({site: "borehole"})
        if "dataset_id" in table and site != "dataset_id":
            datasets = table.groupby(site)["dataset_id"].agg(lambda ids: ",".join(str(i) for i in sorted(set(ids))))
            ds = ds.assign_coords(dataset_id=("borehole", datasets.reindex(ds.borehole.values).to_numpy()))
        elif site == "dataset_id":
            ds = ds.assign_coords(dataset_id=("borehole", [str(i) for i in ds.borehole.values]))
        if ds.sizes["borehole"] == 1:
            ds = ds.squeeze("borehole")
    if "flag" in ds:  # empty for rows without a flag and for (time, depth) pairs absent from the file
        ds["flag"] = ds["flag"].fillna("").astype(str)
    return ds


def _borehole_key(table):
    """The column that tells boreholes apart in a long table (None for one borehole)."""
    if "borehole_id" in table:
        return "borehole_id"
    if "dataset_id" in table and table["dataset_id"].nunique() > 1:
        return "dataset_id"
    return None


_ATTRIBUTES = ("borehole_name", "site_name", "country", "latitude", "longitude", "elevation", "gtnp_code", "citation")


def _with_metadata(ds, path, table):
    """`ds` with the dataset records of the JSON at `path` attached (see `open_gtnp`)."""
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    records = records if isinstance(records, list) else [records]
    if not records or not all(isinstance(record, dict) for record in records):
        raise ValueError(f"{path}: expected GTN-P dataset records (JSON objects)")
    for record in records:
        unit = (record.get("unit") or {}).get("abbreviation")
        if unit is not None and _units.parse(unit, f"{path}: unit") != _units.parse("degC", "degC"):
            raise ValueError(f"{path}: unit is {unit!r} (dataset {record.get('id')}), expected degrees Celsius")
    described = {record.get("id"): record for record in records if record.get("id") is not None}
    if "dataset_id" in table and described:
        held = sorted(set(table["dataset_id"]))
        missing = [d for d in held if d not in described]
        if len(missing) == len(held):
            raise ValueError(f"{path}: describes dataset {sorted(described)}, the CSV holds {held}")
        if missing:
            note = f"{path.name} describes datasets {sorted(set(held) - set(missing))}, not {missing} of the CSV"
            warnings.warn(note, stacklevel=3)
            ds.attrs["metadata_note"] = note
    else:
        described = {None: records[0]}
    if "borehole" not in ds.dims:
        record = next(iter(described.values())) if len(described) == 1 else described.get(_only(table, "dataset_id"))
        ds.attrs.update(_record_attributes(record or {}))
        return ds
    by_borehole = {}
    for record in described.values():  # which borehole each record is about
        borehole_id = (record.get("borehole") or {}).get("id")
        key = record.get("id") if _borehole_key(table) == "dataset_id" else borehole_id
        by_borehole[key] = _record_attributes(record)
    for name in _ATTRIBUTES:
        values = [by_borehole.get(b, {}).get(name) for b in ds.borehole.values.tolist()]
        numeric = name in ("latitude", "longitude", "elevation")
        filled = [np.nan if v is None else v for v in values] if numeric else ["" if v is None else v for v in values]
        if any(v is not None for v in values):
            ds = ds.assign_coords({name: ("borehole", filled)})
    return ds


def _only(table, column):
    values = set(table[column]) if column in table else set()
    return values.pop() if len(values) == 1 else None


def _record_attributes(record):
    """The attributes of one GTN-P dataset record (those it gives)."""
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
