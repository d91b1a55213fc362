"""The xarray edge of the glacier mass-balance models: climate checks, years, CF output."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from .. import _units

WINTER_SUMMER = ("winter_balance", "summer_balance")


def _reference_elevation(climate: xr.Dataset) -> np.ndarray:
    if "reference_elevation" in climate.data_vars:
        return climate["reference_elevation"].values.astype(float)
    if "reference_elevation" in climate.attrs:
        return np.asarray(float(climate.attrs["reference_elevation"]))
    raise ValueError("climate needs the reference elevation [m]: attrs['reference_elevation'] or a variable")


CLIMATE_UNITS = {"shortwave_radiation": "W m-2"}
"""Climate variables besides temperature [degC] and precipitation [kg m-2 per step], with
the units they are converted to (through `cryograd._units`)."""


def _climate_variable(variable: xr.DataArray, name: str, times, step_days) -> np.ndarray:
    """Values (glacier?, time) in the model's units (temperature [degC] from any
    temperature unit, precipitation [kg m-2 per step] from an amount or a rate over each
    step of `step_days` [day], see `cryograd._units`); NaN and negative amounts refused."""
    extra = set(variable.dims) - {"time", "glacier"}
    if extra:
        raise ValueError(f"climate variable {name!r} has unexpected dimensions {sorted(extra)}")
    values = variable.transpose(*[d for d in ("glacier", "time") if d in variable.dims]).values.astype(float)
    if np.isnan(values).any():
        raise ValueError(
            f"climate variable {name!r} has NaN, first at {times[int(np.argwhere(np.isnan(values))[0][-1])]}"
        )
    units, label = variable.attrs.get("units"), f"climate variable {name!r}"
    if name == "temperature":
        return _units.to_celsius(values, units, label)
    if np.any(values < 0):
        raise ValueError(f"climate variable {name!r} has negative values (min {values.min()})")
    if name == "precipitation":
        seconds = 86400.0 * np.asarray(step_days)
        return _units.to_water_amount(values, units, label, seconds, monthly=_consecutive_months(times))
    if name in CLIMATE_UNITS and units is not None:
        return _units.convert(values, units, CLIMATE_UNITS[name], label)
    return values


def monthly_climate(climate: xr.Dataset, year_start_month: int, n_glaciers: int | None):
    """Checked monthly climate as arrays over whole mass-balance years, and the year labels."""
    if not isinstance(climate, xr.Dataset):
        raise ValueError(f"climate must be an xarray.Dataset, got {type(climate).__name__}")
    if "time" not in climate.coords:
        raise ValueError("climate has no 'time' coordinate")
    times = pd.DatetimeIndex(climate.indexes["time"])
    if times.size < 12 or not _consecutive_months(times):
        raise ValueError("climate 'time' must be monthly: consecutive months, each stamped on its first day")
    for name in ("temperature", "precipitation"):
        if name not in climate.data_vars:
            raise ValueError(f"climate lacks variable {name!r}; it has {list(climate.data_vars)}")
    reference = _reference_elevation(climate)
    first = int(np.argmax(times.month == year_start_month))
    whole = (times.size - first) // 12
    if times.month[first] != year_start_month or whole < 1:
        raise ValueError(f"climate holds no whole mass-balance year starting in month {year_start_month}")
    keep = slice(first, first + 12 * whole)
    times = times[keep]
    days = np.asarray(times.days_in_month, dtype=float)
    arrays = {
        name: _climate_variable(climate[name].isel(time=keep), name, times, days)
        for name in ("temperature", "precipitation")
    }
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


def simulate_geometry(model, glacier, climate: xr.Dataset, thickness) -> xr.Dataset:
    from ._glacier_geometry import check_thickness

    regional = glacier.elevation.ndim == 2
    n = glacier.elevation.shape[0] if regional else None
    arrays, years = monthly_climate(climate, model.mass_balance.year_start_month, n)
    month, days = jnp.asarray(arrays.pop("month")), jnp.asarray(arrays.pop("days"))
    thickness = check_thickness(thickness, glacier)

    def one(glacier, arrays, thickness):
        return model.run(glacier, dict(arrays, month=month, days=days), thickness)

    inputs = {k: jnp.asarray(v) for k, v in arrays.items()}
    run = jax.jit(jax.vmap(one, in_axes=(0, 0, None if thickness is None else 0)) if regional else one)
    out = run(glacier, inputs, None if thickness is None else jnp.asarray(thickness))
    dims = ("glacier",) if regional else ()
    ds = xr.Dataset(coords=dict(year=("year", years)))
    ds["elevation"] = (
        (*dims, "band"),
        np.asarray(glacier.elevation),
        dict(units="m", long_name="initial band surface"),
    )
    ds["band_area"] = ((*dims, "band"), np.asarray(glacier.area), dict(units="m2", long_name="initial band area"))
    described = dict(
        specific_mass_balance=("kg m-2", "glacier-wide annual specific mass balance over the area at the year's start"),
        mass_change=("kg", "annual glacier mass change"),
        area=("m2", "glacier area at the end of the year"),
        volume=("m3", "ice volume at the end of the year"),
        mass=("Gt", "ice mass at the end of the year"),
        unmet_loss=("kg", "mass loss beyond the ice the glacier held"),
    )
    for name, (units, long_name) in described.items():
        ds[name] = ((*dims, "year"), np.asarray(out[name]), dict(units=units, long_name=long_name))
    for name, long_name in (
        ("thickness", "ice thickness at the end of the year"),
        ("surface", "surface at the year's start"),
    ):
        ds[name] = ((*dims, "year", "band"), np.asarray(out[name]), dict(units="m", long_name=long_name))
    for name, units in (("initial_volume", "m3"), ("initial_area", "m2"), ("initial_mass", "Gt")):
        ds[name] = (dims, np.asarray(out[name]), dict(units=units))
    ds.attrs["year_start_month"] = model.mass_balance.year_start_month
    return ds


def _consecutive_months(times: pd.DatetimeIndex) -> bool:
    """Whether `times` are consecutive months, each stamped on its first day."""
    return bool(np.all(times.day == 1)) and bool(np.all(np.diff(times.year * 12 + times.month) == 1))


def _step_days(times: pd.DatetimeIndex) -> np.ndarray:
    """Length of each step [day]: calendar months for first-of-month stamps, else a regular spacing."""
    if times.size < 2:
        raise ValueError("climate 'time' needs at least two steps")
    if _consecutive_months(times) and np.all(times.hour == 0):
        return np.asarray(times.days_in_month, dtype=float)
    spacing = np.diff(times.values)  # timedelta64 in the index's own unit (ns or us)
    if np.any(spacing != spacing[0]) or spacing[0] <= np.timedelta64(0):
        raise ValueError("climate 'time' must be regular (hourly, daily, ...) or monthly (first of each month)")
    return np.full(times.size, spacing[0] / np.timedelta64(1, "D"))


def snowpack_climate(climate: xr.Dataset, variables, year_start_month: int, n_glaciers: int | None):
    """Checked climate as (glacier?, year, step) arrays padded with empty steps, with the
    year labels, steps per year and whether each year is complete."""
    if not isinstance(climate, xr.Dataset):
        raise ValueError(f"climate must be an xarray.Dataset, got {type(climate).__name__}")
    if "time" not in climate.coords:
        raise ValueError("climate has no 'time' coordinate")
    for name in variables:
        if name not in climate.data_vars:
            raise ValueError(f"climate lacks variable {name!r}; it has {list(climate.data_vars)}")
    times = pd.DatetimeIndex(climate.indexes["time"])
    days = _step_days(times)
    label = times.year + ((times.month >= year_start_month) & (year_start_month != 1))
    years = np.unique(label)
    index = np.searchsorted(years, label)
    position = np.arange(times.size) - np.searchsorted(index, index)  # step within its year
    width = int(position.max()) + 1
    reference = _reference_elevation(climate)
    arrays = {}
    for name in variables:
        values = _climate_variable(climate[name], name, times, days)
        padded = np.zeros((*values.shape[:-1], years.size, width))
        padded[..., index, position] = values
        arrays[name] = padded
    step_days = np.zeros((years.size, width))
    step_days[index, position] = days
    if n_glaciers is not None:
        arrays = {k: np.broadcast_to(v, (n_glaciers, *v.shape[-2:])) for k, v in arrays.items()}
        reference = np.broadcast_to(reference, (n_glaciers,))
    elif reference.ndim != 0:
        raise ValueError("a (glacier) reference_elevation needs a Hypsometry with a glacier axis")
    arrays["reference_elevation"] = reference
    starts = pd.to_datetime([f"{y - (year_start_month != 1)}-{year_start_month:02d}-01" for y in years])
    ends = pd.to_datetime([f"{y + (year_start_month == 1)}-{year_start_month:02d}-01" for y in years])
    steps = np.bincount(index, minlength=years.size)
    first = np.cumsum(steps) - steps  # the first and last step of each year
    last = first + steps - 1
    complete = (times[first] <= starts) & (times[last] + pd.to_timedelta(days[last], unit="D") >= ends)
    return arrays, step_days, years, steps, np.asarray(complete), (index, position)


def simulate_snowpack(model, glacier, climate: xr.Dataset, series: bool) -> xr.Dataset:
    from ._smb_snowpack import PACK_FLUXES

    regional = glacier.elevation.ndim == 2
    n = glacier.elevation.shape[0] if regional else None
    arrays, days, years, steps, complete, where = snowpack_climate(
        climate, model.forcing_variables, model.year_start_month, n
    )
    days = jnp.asarray(days)

    def one(model, glacier, arrays):
        return model.run(glacier, dict(arrays, days=days), series=series)

    inputs = {k: jnp.asarray(v) for k, v in arrays.items()}
    run = eqx.filter_jit(eqx.filter_vmap(one, in_axes=(None, 0, 0)) if regional else one)
    out = run(model, glacier, inputs)
    dims = ("glacier",) if regional else ()
    ds = xr.Dataset(coords=dict(year=("year", years)))
    ds["elevation"] = ((*dims, "band"), np.asarray(glacier.elevation), dict(units="m", long_name="band elevation"))
    ds["area"] = ((*dims, "band"), np.asarray(glacier.area), dict(units="m2", long_name="band area"))
    for name in PACK_FLUXES:
        long_name = f"annual {name.replace('_', ' ')} of the band"
        ds[name] = ((*dims, "year", "band"), np.asarray(out[name]), dict(units="kg m-2", long_name=long_name))
    for name in ("snow", "firn"):
        long_name = f"{name} at the end of the year"
        ds[name] = ((*dims, "year", "band"), np.asarray(out[name]), dict(units="kg m-2", long_name=long_name))
    ds["specific_mass_balance"] = (
        (*dims, "year"),
        np.asarray(out["specific_mass_balance"]),
        dict(units="kg m-2", long_name="glacier-wide specific surface mass balance over the year (or its part)"),
    )
    for name in ("snow_series", "firn_series") if series else ():
        values = np.asarray(out[name])[..., where[0], where[1], :]
        long_name = f"{name.split('_')[0]} after each step"
        ds[name] = ((*dims, "time", "band"), values, dict(units="kg m-2", long_name=long_name))
    if series:
        ds = ds.assign_coords(time=climate.indexes["time"])
    ds["steps"] = ("year", steps, dict(long_name="time steps of the year in the climate"))
    ds["complete"] = ("year", complete, dict(long_name="the climate covers the whole mass-balance year"))
    ds.attrs["year_start_month"] = model.year_start_month
    return ds
