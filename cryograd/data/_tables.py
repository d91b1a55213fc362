"""CSV helpers shared by the table readers: read, and convert columns to numbers without
letting a non-number pass silently as NaN."""

from pathlib import Path

import numpy as np
import pandas as pd


def read_table(path, **kwargs) -> tuple[Path, pd.DataFrame]:
    """`pd.read_csv(path, **kwargs)`; a missing or unparsable file raises `ValueError`
    naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        table = pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{path}: not a readable table ({error})") from None
    if table.empty:
        raise ValueError(f"{path}: no data rows")
    return path, table


def numeric_columns(path, table, columns) -> dict:
    """The `columns` of `table` as float64 arrays; empty cells are NaN, any other value that
    is not a number raises `ValueError` naming the file and the column."""
    out = {}
    for column in columns:
        values = pd.to_numeric(table[column], errors="coerce")
        if (values.isna() & table[column].notna()).any():
            raise ValueError(f"{path}: column {column!r} holds values that are not numbers")
        out[column] = values.to_numpy(np.float64)
    return out
