"""Error statistics shared by the site experiments."""

import numpy as np
import pandas as pd


def error_table(modelled, measured, depths) -> pd.DataFrame:
    """MAE, RMSE, bias [K] and the number of days per depth, over the days where both
    DataArrays (time, depth) have a value; indexed by `depth` [m]."""
    rows = []
    for depth in depths:
        difference = (modelled.sel(depth=depth) - measured.sel(depth=depth)).dropna("time")
        rows.append(
            dict(
                depth=float(depth),
                mae=float(np.abs(difference).mean()),
                rmse=float(np.sqrt((difference**2).mean())),
                bias=float(difference.mean()),
                n=int(difference.size),
            )
        )
    return pd.DataFrame(rows).set_index("depth")
