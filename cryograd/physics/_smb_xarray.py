"""The xarray edge of the glacier mass-balance models: climate checks, years, CF output."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from ._xarray import _to_celsius

WINTER_SUMMER = ("winter_balance", "summer_balance")


def monthly_climate(climate: xr.Dataset, year_start_month: int, n_glaciers: int | None):
    """Checked monthly climate as arrays over whole mass-balance years, and the year labels."""
    if not isinstance(climate, xr.Dataset):
        raise ValueError(f"climate must be an xarray.Dataset, got {type(climate).__name__}")
    if "time" not in climate.coords:
        raise ValueError("climate has no 'time' coordinate")
    times = pd.DatetimeIndex(climate.indexes["time"])
    if times.size < 12 or np.any(times.day != 1) or np.any(np.diff(times.year * 12 + times.month) != 1):
        raise ValueError("climate 'time' must be monthly: consecutive months, each stamped on its first day")
    for name in ("temperature", "precipitation"):
        if name not in climate.data_vars:
            raise ValueError(f"climate lacks variable {name!r}; it has {list(climate.data_vars)}")
    if "reference_elevation" in climate.data_vars:
        reference = climate["reference_elevation"].values.astype(float)
    elif "reference_elevation" in climate.attrs:
        reference = np.asarray(float(climate.attrs["reference_elevation"]))
    else:
        raise ValueError("climate needs the reference elevation [m]: attrs['reference_elevation'] or a variable")
    first = int(np.argmax(times.month == year_start_month))
    whole = (times.size - first) // 12
    if times.month[first] != year_start_month or whole < 1:
        raise ValueError(f"climate holds no whole mass-balance year starting in month {year_start_month}")
    keep = slice(first, first + 12 * whole)
    times = times[keep]
    arrays = {}
    for name in ("temperature", "precipitation"):
        variable = climate[name].isel(time=keep)
        extra = set(variable.dims) - {"time", "glacier"}
        if extra:
            raise ValueError(f"climate variable {name!r} has unexpected dimensions {sorted(extra)}")
        values = variable.transpose(*[d for d in ("glacier", "time") if d in variable.dims]).values.astype(float)
        if np.isnan(values).any():
            raise ValueError(
                f"climate variable {name!r} has NaN, first at {times[int(np.argwhere(np.isnan(values))[0][-1])]}"
            )
        if name == "temperature":
            values = _to_celsius(values, variable.attrs.get("units"), name)
        elif np.any(values < 0):
            raise ValueError(f"climate variable 'precipitation' has negative values (min {values.min()})")
        arrays[name] = values
    if n_glaciers is not None:
        arrays = {k: np.broadcast_to(v, (n_glaciers, times.size)) for k, v in arrays.items()}
        reference = np.broadcast_to(reference, (n_glaciers,))
    elif reference.ndim != 0:
        raise ValueError("a (glacier) reference_elevation needs a Hypsometry with a glacier axis")
    arrays["reference_elevation"] = reference
    arrays["month"] = np.asarray(times.month)
    arrays["days"] = np.asarray(times.days_in_month, dtype=float)
    years = times.year[11::12].values  # the calendar year each mass-balance year ends in
    return arrays, years


def simulate_monthly(model, glacier, climate: xr.Dataset) -> xr.Dataset:
    regional = glacier.elevation.ndim == 2
    n = glacier.elevation.shape[0] if regional else None
    arrays, years = monthly_climate(climate, model.year_start_month, n)
    month, days = jnp.asarray(arrays.pop("month")), jnp.asarray(arrays.pop("days"))

    def one(glacier, arrays):
        return model.run(glacier, dict(arrays, month=month, days=days))

    inputs = {k: jnp.asarray(v) for k, v in arrays.items()}
    out = jax.jit(jax.vmap(one) if regional else one)(glacier, inputs)
    dims = ("glacier",) if regional else ()
    ds = xr.Dataset(coords=dict(year=("year", years)))
    ds["elevation"] = ((*dims, "band"), np.asarray(glacier.elevation), dict(units="m", long_name="band elevation"))
    ds["area"] = ((*dims, "band"), np.asarray(glacier.area), dict(units="m2", long_name="band area"))
    ds["mass_balance"] = (
        (*dims, "year", "band"),
        np.asarray(out["mass_balance"]),
        dict(units="kg m-2", long_name="annual surface mass balance of the band"),
    )
    ds["specific_mass_balance"] = (
        (*dims, "year"),
        np.asarray(out["specific_mass_balance"]),
        dict(units="kg m-2", long_name="glacier-wide annual specific surface mass balance"),
    )
    for name in WINTER_SUMMER:
        if name in out:
            season = name.split("_")[0]
            ds[name] = ((*dims, "year"), np.asarray(out[name]), dict(units="kg m-2", long_name=f"{season} balance"))
    ds.attrs["year_start_month"] = model.year_start_month
    return ds
