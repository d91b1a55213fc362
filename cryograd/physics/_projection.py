"""Projections of permafrost columns: a record's daily climate repeated with a warming
trend, and an ensemble of columns (e.g. posterior draws) run through it side by side,
keeping only yearly statistics."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

YEAR_DAYS = 365
"""Days of a projection year (the record's seasons repeat with this period)."""
WARMED = ("air_temperature", "surface_temperature", "land_surface_temperature")
"""The forcing variable the warming is added to: the first of these the forcing has."""


def repeated_forcing(forcing: dict, years: int, warming_per_decade: float = 0.0) -> tuple[dict, np.ndarray]:
    """Daily forcing for `years` years after a daily record, `forcing` (name -> (nt,)).

    The record's whole years repeat: day k after the record's last day takes the record's
    day (nt + k) mod (365 x whole years), so the seasons continue. `warming_per_decade`
    [K per decade] is added to the air temperature (else the surface temperature or LST,
    `WARMED`), growing linearly from the record's end: (k + 1) / 3650 x the rate on day k.
    Other variables (snow) are repeated as recorded.

    **Returns:** (name -> (365 x years,) arrays, the warming added on each day [K]).
    Raises ValueError when the record is shorter than a year or has no temperature to warm.
    """
    nt = int(np.shape(next(iter(forcing.values())))[0])
    if nt < YEAR_DAYS:
        raise ValueError(f"forcing: the record has {nt} days; it needs at least one whole year to repeat")
    warmed = next((k for k in WARMED if k in forcing), None)
    if warmed is None:
        raise ValueError(f"forcing: {sorted(forcing)} has no air or surface temperature to warm")
    days = YEAR_DAYS * int(years)
    index = (nt + np.arange(days)) % (YEAR_DAYS * (nt // YEAR_DAYS))
    warming = float(warming_per_decade) / 10.0 * (np.arange(days) + 1) / YEAR_DAYS
    out = {k: np.asarray(v)[index] for k, v in forcing.items()}
    out[warmed] = out[warmed] + warming
    return out, warming


def yearly_runs(columns: list, forcing: dict, initial, years: int, dt: float = 86400.0) -> dict:
    """Per-year statistics of an ensemble of columns run side by side over `years` years.

    **Arguments:** `columns`: `PermafrostColumn`s of one structure that differ only in
    their floating-point leaves (posterior draws, scenarios; Python floats among them are
    batched like arrays); `forcing`: name -> (n, nt)
    arrays, one row per column, nt = 365 x `years` steps of `dt` [s]; `initial` (n, nz)
    [degC] each column's start.

    **Returns:** `max_thaw_depth` (n, years) [m] and `mean_temperature` (n, years, nz)
    [degC] (`PermafrostColumn.summarize` with 365-step years), from one batched call, so
    the native kernel runs the columns on every core.
    """
    parts = [eqx.partition(column, eqx.is_inexact_array_like) for column in columns]
    dynamic = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *(d for d, _ in parts))
    period = jnp.asarray(np.arange(YEAR_DAYS * int(years)) // YEAR_DAYS)
    series = {k: jnp.asarray(v) for k, v in forcing.items()}
    thaw, mean = _yearly(dynamic, parts[0][1], series, jnp.asarray(initial), period, int(years), float(dt))
    return dict(max_thaw_depth=np.asarray(thaw), mean_temperature=np.asarray(mean))


@eqx.filter_jit
def _yearly(dynamic, static, forcing, initial, period, periods: int, dt: float):
    def one(leaves, series, start):
        out = eqx.combine(leaves, static).summarize(series, start, dt, period, periods)
        return out["max_thaw_depth"], out["mean_temperature"]

    return jax.vmap(one)(dynamic, forcing, initial)
