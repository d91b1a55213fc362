"""Initial states: steady geotherm and periodic spin-up."""

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr


def steady_state_temperature(column, surface_temperature: float, iterations: int = 20):
    """Steady temperature profile [degC] at cell centres under a constant ground-surface
    temperature [degC] and the column's geothermal flux: T rises downward by
    q / G across each interface, with conductivities of the frozen or thawed state that
    the profile itself implies (a fixed-point iteration, `iterations` passes).

    This is the exact steady state of the discrete scheme for a `Prescribed()` surface.
    """
    if column.bottom_temperature is not None:
        raise ValueError("steady_state_temperature needs a geothermal-flux lower boundary (bottom_temperature=None)")
    material = column.material
    curve = column.cell_freeze_curve
    half = 0.5 * column.grid.thickness
    flux = column.geothermal_flux
    temperature = jnp.full(column.grid.n_cells, jnp.asarray(surface_temperature, jnp.float64))
    for _ in range(iterations):
        k = material.conductivity(curve.liquid_fraction(temperature, material))
        resistance = jnp.concatenate([half[:1] / k[:1], half[:-1] / k[:-1] + half[1:] / k[1:]])
        temperature = surface_temperature + flux * jnp.cumsum(resistance)
    return temperature


def spin_up(
    column,
    forcing_year: dict,
    initial_temperature,
    dt: float = 86400.0,
    *,
    tolerance: float = 0.01,
    max_cycles: int = 100,
    progress: bool = False,
):
    """Repeat one forcing period (a year, or several whole years) until its mean
    temperature profile changes by less than `tolerance` [K] at every cell between two
    cycles.

    **Arguments:** `forcing_year` a dict of arrays (nt,) as for `run`; `initial_temperature`
    [degC] at cell centres; `dt` [s]; `max_cycles` a bound (ValueError if not reached).

    **Returns:** (temperature at the end of the last cycle (nz,) [degC], cycles used).
    """
    run = jax.jit(lambda col, f, t0: col.run(f, t0, dt)["temperature"])
    state = jnp.broadcast_to(jnp.asarray(initial_temperature, jnp.float64), (column.grid.n_cells,))
    previous_mean = None
    for cycle in range(1, max_cycles + 1):
        temperature = run(column, forcing_year, state)
        mean = np.asarray(temperature.mean(axis=0))
        state = temperature[-1]
        if progress:
            change = np.nan if previous_mean is None else np.max(np.abs(mean - previous_mean))
            print(f"spin-up cycle {cycle}: max change of the mean profile {change:.3g} K", flush=True)
        if previous_mean is not None and np.max(np.abs(mean - previous_mean)) < tolerance:
            return state, cycle
        previous_mean = mean
    raise ValueError(f"spin_up did not reach tolerance {tolerance} K in max_cycles = {max_cycles} cycles")


def profile_dataarray(column, temperature) -> xr.DataArray:
    """Cell temperatures [degC] as a DataArray over `depth` (for `simulate`)."""
    return xr.DataArray(
        np.asarray(temperature),
        dims="depth",
        coords=dict(depth=np.asarray(column.grid.centres)),
        attrs=dict(units="degC"),
    )
