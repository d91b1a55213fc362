"""The xarray edge of the soil column: forcing checks, unit conversion, CF output."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from .. import _units
from ._diagnostics import envelope_thaw_depth, interpolate_depths, talik, thaw_depth, zero_annual_amplitude_depth

FORCING_UNITS = {
    "snow_depth": "m",
    "snow_density": "kg m-3",
    "snow_conductivity": "W m-1 K-1",
    "surface_heat_flux": "W m-2",
}
"""Forcing variables besides temperatures [degC] and snow water equivalent [m of water],
with the units they are converted to when the variable says its units (through
`cryograd._units`); without a `units` attribute they are taken as given in these, except
the snow amounts of `_UNITS_REQUIRED`."""
_UNITS_REQUIRED = {
    "snow_depth": "snow depths come in m, cm or mm alike; set it (e.g. units='m')",
    "snow_water_equivalent": "set it: a depth of water (m, mm) or a mass per area (kg m-2), which differ by 1000",
}
"""Variables whose values do not tell their units apart (0.3 m and 30 cm of snow are
both plausible): refused without a `units` attribute."""
_TEMPERATURE_VARIABLES = {"surface_temperature", "air_temperature", "land_surface_temperature"}
_NON_NEGATIVE_VARIABLES = {"snow_depth", "snow_water_equivalent"}
_POSITIVE_VARIABLES = {"snow_density", "snow_conductivity"}
_FRACTION_VARIABLES = {"snow_cover"}
DEFAULT_MAGT_DEPTHS = (0.0, 1.0, 2.0, 5.0, 10.0)


def forcing_arrays(forcing: xr.Dataset, variables: tuple[str, ...], dt: float) -> tuple[dict, pd.DatetimeIndex]:
    """Checked forcing as numpy arrays (time last) in the project's units."""
    if not isinstance(forcing, xr.Dataset):
        raise ValueError(f"forcing must be an xarray.Dataset, got {type(forcing).__name__}")
    if "time" not in forcing.coords:
        raise ValueError("forcing has no 'time' coordinate")
    try:
        times = pd.DatetimeIndex(forcing.indexes["time"])
    except (TypeError, ValueError) as error:
        raise ValueError("forcing 'time' coordinate must hold datetimes") from error
    if times.size < 1:
        raise ValueError("forcing 'time' coordinate is empty")
    if times.has_duplicates:
        raise ValueError(f"forcing 'time' has duplicated times, e.g. {times[times.duplicated()][0]}")
    if not times.is_monotonic_increasing:
        raise ValueError("forcing 'time' is not sorted in increasing order")
    if times.size > 1:
        steps = np.asarray((times[1:] - times[:-1]).total_seconds())
        if np.any(np.abs(steps - dt) > 1e-6 * dt):
            bad = int(np.argmax(np.abs(steps - dt) > 1e-6 * dt))
            raise ValueError(
                f"forcing 'time' must be evenly spaced by dt = {dt} s; step {bad} to {bad + 1} is {steps[bad]} s"
            )
    derived = {}
    if "day_of_year" in variables and "day_of_year" not in forcing.data_vars:
        derived["day_of_year"] = np.asarray(times.day_of_year, dtype=np.float64)  # [1-366], from the time axis
    missing = [name for name in variables if name not in forcing.data_vars and name not in derived]
    if missing:
        raise ValueError(f"forcing lacks required variable(s) {missing}; it has {list(forcing.data_vars)}")
    arrays = dict(derived)
    for name in variables:
        if name in derived:
            continue
        variable = forcing[name]
        extra = set(variable.dims) - {"time", "site"}
        if extra:
            raise ValueError(f"forcing variable {name!r} has unexpected dimensions {sorted(extra)}")
        values = variable.transpose(*[d for d in ("site", "time") if d in variable.dims]).values.astype(np.float64)
        if np.isnan(values).any():
            first = int(np.argwhere(np.isnan(values))[0][-1])
            raise ValueError(f"forcing variable {name!r} has NaN, first at time {times[first]}")
        bounds = (
            (_NON_NEGATIVE_VARIABLES, values < 0, ">= 0"),
            (_POSITIVE_VARIABLES, values <= 0, "> 0"),
            (_FRACTION_VARIABLES, (values < 0) | (values > 1), "in [0, 1]"),
        )
        for allowed, bad, rule in bounds:
            if name in allowed and np.any(bad):
                first = times[int(np.argwhere(bad)[0][-1])]
                raise ValueError(f"forcing variable {name!r} must be {rule}, got {values.min()} (first at {first})")
        units, label = variable.attrs.get("units"), f"forcing variable {name!r}"
        if units is None and name in _UNITS_REQUIRED:
            raise ValueError(f"{label} has no 'units' attribute; {_UNITS_REQUIRED[name]}")
        if name in _TEMPERATURE_VARIABLES:
            values = _units.to_celsius(values, units, label)
        elif name == "snow_water_equivalent" and units is not None:
            values = _units.to_water_depth(values, units, label)
        elif name in FORCING_UNITS and units is not None:
            values = _units.convert(values, units, FORCING_UNITS[name], label)
        arrays[name] = values
    return arrays, times


BELOW_RULES = ("hold", "geotherm")


def initial_profile(initial_temperature, centres: np.ndarray, below=None, column=None) -> np.ndarray:
    """A float or an xr.DataArray over `depth` [m] as cell temperatures [degC].

    A profile is interpolated linearly between its depths and its shallowest value held
    above them. Below its deepest depth `below` decides: `"hold"` keeps the deepest value;
    `"geotherm"` continues it by steady conduction of `column`'s geothermal flux through its
    cells (frozen conductivities below a frozen deepest value, thawed otherwise);
    `(depth [m], temperature [degC])` goes linearly from the deepest value to that
    temperature at that depth and holds it below. `None` holds, with a warning naming the
    rule, when the profile stops above the deepest cell centre.
    """
    if not isinstance(initial_temperature, xr.DataArray):
        values = np.asarray(initial_temperature, dtype=float)
        if values.ndim != 0 or not np.isfinite(values):
            raise ValueError(f"initial_temperature must be a finite float or a DataArray over depth, got {values!r}")
        return np.full(centres.shape, float(values))
    if "depth" not in initial_temperature.dims or initial_temperature.ndim != 1:
        raise ValueError("initial_temperature as a DataArray must have the single dimension 'depth'")
    depth = initial_temperature["depth"].values.astype(float)
    values = initial_temperature.values.astype(float)
    if np.isnan(values).any() or np.any(np.diff(depth) <= 0):
        raise ValueError("initial_temperature must be free of NaN with increasing 'depth'")
    profile = np.interp(centres, depth, values)
    deepest, last = depth[-1], values[-1]
    under = centres > deepest
    if below is None:
        if under.any():
            warnings.warn(
                f"initial_temperature stops at {deepest:g} m, above the deepest cell centre ({centres[-1]:g} m): "
                f"holding its deepest value ({last:g} degC) below it; choose with below='hold', 'geotherm' or "
                "(depth, temperature)",
                stacklevel=3,
            )
        return profile
    if isinstance(below, str):
        if below not in BELOW_RULES:
            raise ValueError(f"below must be 'hold', 'geotherm' or (depth [m], temperature [degC]), got {below!r}")
        if below == "hold":
            return profile
        if column is None:
            raise ValueError("below='geotherm' needs the column (its geothermal flux and conductivities)")
        material = column.material
        k = np.asarray(material.k_frozen if last < 0 else material.k_thawed, dtype=float)
        edges = np.asarray(column.grid.edges, dtype=float)
        resistance = np.concatenate([[0.0], np.cumsum(np.diff(edges) / k)])  # [m2 K W-1] from the top edge
        flux = float(column.geothermal_flux)
        rise = flux * (np.interp(centres, edges, resistance) - np.interp(deepest, edges, resistance))
        return np.where(under, last + rise, profile)
    try:
        deep_depth, deep_temperature = (float(x) for x in below)
    except (TypeError, ValueError):
        raise ValueError(
            f"below must be 'hold', 'geotherm' or (depth [m], temperature [degC]), got {below!r}"
        ) from None
    if not deep_depth > deepest:
        raise ValueError(f"below: the deep depth {deep_depth:g} m must lie below the profile's deepest, {deepest:g} m")
    return np.where(under, np.interp(centres, [deepest, deep_depth], [last, deep_temperature]), profile)


def simulate(column, forcing: xr.Dataset, initial_temperature, dt: float, magt_depths=DEFAULT_MAGT_DEPTHS, below=None):
    arrays, times = forcing_arrays(forcing, column.surface.forcing_variables, dt)
    centres = np.asarray(column.grid.centres)
    edges = np.asarray(column.grid.edges)
    initial = jnp.asarray(initial_profile(initial_temperature, centres, below, column))
    has_site = any(value.ndim == 2 for value in arrays.values())

    def one(site_forcing):
        out = column.run(site_forcing, initial, dt)
        depth = thaw_depth(out["temperature"], out["liquid_water_fraction"], column.grid.edges)
        return out["temperature"], out["liquid_water_fraction"], depth, out["surface_temperature"]

    if has_site:
        n_site = max(value.shape[0] for value in arrays.values() if value.ndim == 2)
        batched = {name: np.broadcast_to(value, (n_site, times.size)) for name, value in arrays.items()}
        temperature, fraction, depth, surface = jax.jit(jax.vmap(one))(batched)
    else:
        temperature, fraction, depth, surface = jax.jit(one)(arrays)
    temperature, fraction, depth, surface = (np.asarray(x) for x in (temperature, fraction, depth, surface))

    dims = ("site", "time") if has_site else ("time",)
    ds = xr.Dataset(
        coords=dict(
            time=("time", times),
            depth=(
                "depth",
                centres,
                dict(units="m", long_name="depth of cell centre", positive="down", bounds="depth_bnds"),
            ),
        )
    )
    if has_site and "site" in forcing.coords:
        ds = ds.assign_coords(site=forcing["site"].values)
    ds["depth_bnds"] = (("depth", "nv"), np.stack([edges[:-1], edges[1:]], axis=1), dict(units="m"))
    ds["temperature"] = ((*dims, "depth"), temperature, dict(units="degC", long_name="ground temperature"))
    ds["liquid_water_fraction"] = (
        (*dims, "depth"),
        fraction,
        dict(units="1", long_name="liquid share of the total soil water"),
    )
    ds["surface_temperature"] = (
        dims,
        surface,
        dict(units="degC", long_name="temperature at the top of the column (snow surface where there is snow)"),
    )
    ds["thaw_depth"] = (dims, depth, dict(units="m", long_name="depth of the 0 degC isotherm below the thawed top"))
    _annual_diagnostics(ds, magt_depths, centres)
    return ds


def _annual_diagnostics(ds: xr.Dataset, magt_depths, centres: np.ndarray) -> None:
    # All yearly statistics first: a groupby sees later additions to `ds`.
    yearly = ds[["thaw_depth", "temperature"]].groupby("time.year")
    annual_max, annual_mean, annual_min = (getattr(yearly, statistic)("time") for statistic in ("max", "mean", "min"))
    ds["active_layer_thickness"] = annual_max["thaw_depth"].assign_attrs(
        units="m", long_name="active-layer thickness (maximum thaw depth of the year)"
    )
    annual_mean, annual_max, annual_min = (
        stat["temperature"].transpose(..., "year", "depth") for stat in (annual_mean, annual_max, annual_min)
    )
    depths = np.asarray(magt_depths, dtype=float)
    ds.coords["magt_depth"] = ("magt_depth", depths, dict(units="m", long_name="depth of MAGT"))
    magt = interpolate_depths(annual_mean.values, centres, depths)
    ds["mean_annual_ground_temperature"] = (
        (*annual_mean.dims[:-1], "magt_depth"),
        magt,
        dict(units="degC", long_name="mean annual ground temperature"),
    )
    zaa = zero_annual_amplitude_depth(annual_max.values, annual_min.values, centres)
    ds["zero_annual_amplitude_depth"] = (
        annual_mean.dims[:-1],
        zaa,
        dict(units="m", long_name="depth where the annual temperature range falls below 0.1 K"),
    )
    ds["talik"] = (
        annual_mean.dims[:-1],
        talik(annual_min.values),
        dict(units="1", long_name="unfrozen layer all year below the seasonally frozen layer"),
    )


def yearly_sensor_statistics(temperature: xr.DataArray, min_days: int = 330) -> xr.Dataset:
    """Per calendar year of daily temperatures at sensors, `temperature` (time, depth)
    [degC], measured or modelled alike: `active_layer_thickness` (year) [m], the 0 degC
    crossing of the maximum envelope of the year's days (`envelope_thaw_depth`);
    `mean_annual_ground_temperature` (year, depth) [degC], where the sensor has values on
    at least `min_days` days of the year (else NaN); `days` (year), the year's days in the
    series (a year cut short by the record is seen there)."""
    if set(temperature.dims) != {"time", "depth"}:
        raise ValueError(f"temperature: dims {temperature.dims}, not (time, depth)")
    temperature = temperature.transpose("time", "depth")
    years = np.unique(temperature.time.dt.year.values)
    alt, magt, days = [], [], []
    for year in years:
        t = temperature.sel(time=str(year))
        days.append(t.sizes["time"])
        magt.append(np.where(t.count("time").values >= min_days, t.mean("time").values, np.nan))
        alt.append(envelope_thaw_depth(temperature.depth, t.max("time")))
    ds = xr.Dataset(coords=dict(year=("year", years, dict(long_name="calendar year")), depth=temperature.depth))
    ds["active_layer_thickness"] = (
        "year",
        np.array(alt),
        dict(units="m", long_name="thaw depth of the year's maximum envelope"),
    )
    ds["mean_annual_ground_temperature"] = (
        ("year", "depth"),
        np.array(magt).reshape(years.size, temperature.sizes["depth"]),
        dict(units="degC", long_name="mean annual ground temperature"),
    )
    ds["days"] = ("year", np.array(days), dict(units="1", long_name="days of the year in the series"))
    return ds
