"""Diagnostics of simulated ground temperature: thaw depth, active layer, MAGT, ZAA, taliks."""

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


def thaw_depth(
    temperature: Float[Array, "... nz"],
    liquid_water_fraction: Float[Array, "... nz"],
    edges: Float[Array, " nedges"],
) -> Float[Array, "..."]:
    """Depth of the 0 degC isotherm at the bottom of the uppermost thawed zone [m].

    Cells warmer than 0 degC are thawed; a cell held at exactly 0 degC (the melting
    plateau of `FreeWater()`) is thawed in its upper `liquid_water_fraction` share, so the
    front is resolved inside the cell. Between a thawed and a frozen cell the isotherm is
    interpolated linearly between their centres. With a frozen top over a thawed layer
    (autumn freeze-back) the bottom of the thawed layer is returned; 0 when nothing is
    thawed, the bottom edge when everything below the thawed top is thawed.

    **Arguments:** `temperature` [degC] and `liquid_water_fraction` [1], with cells on the
    last axis; `edges` [m] the grid edges. Differentiable almost everywhere.
    """
    edges = jnp.asarray(edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    thickness = jnp.diff(edges)
    thawed_share = jnp.where(temperature > 0, 1.0, jnp.where(temperature < 0, 0.0, liquid_water_fraction))
    nz = temperature.shape[-1]
    cells = jnp.arange(nz)
    any_thawed = jnp.any(thawed_share > 0, axis=-1)
    first = jnp.argmax(thawed_share > 0, axis=-1)
    below_first = cells >= first[..., None]
    not_full = (thawed_share < 1) & below_first
    reaches_bottom = ~jnp.any(not_full, axis=-1)
    front = jnp.argmax(not_full, axis=-1)
    share = jnp.take_along_axis(thawed_share, front[..., None], axis=-1)[..., 0]
    above = jnp.maximum(front - 1, 0)
    t_above = jnp.take_along_axis(temperature, above[..., None], axis=-1)[..., 0]
    t_front = jnp.take_along_axis(temperature, front[..., None], axis=-1)[..., 0]
    gap = jnp.where(t_above - t_front > 0, t_above - t_front, 1.0)
    interpolated = centres[above] + (centres[front] - centres[above]) * jnp.clip(t_above / gap, 0.0, 1.0)
    inside = edges[front] + share * thickness[front]
    depth = jnp.where(share > 0, inside, interpolated)
    depth = jnp.where(reaches_bottom, edges[-1], depth)
    return jnp.where(any_thawed, depth, 0.0)


def interpolate_depths(values: np.ndarray, centres: np.ndarray, depths, *, hold_below: bool = False) -> np.ndarray:
    """Values on the last axis (cell centres [m]) linearly interpolated to `depths` [m];
    depths above the first centre take the first value, below the last are NaN (or, with
    `hold_below`, take the last value). Bit for bit `np.interp` of each row."""
    depths, centres, values = (np.asarray(a, dtype=float) for a in (depths, centres, values))
    below = values[..., -1:] if hold_below else np.nan
    if centres.size < 2:
        return np.where(depths > centres[-1], below, values[..., :1])
    # np.interp's formula, slope (v[j+1] - v[j]) / (z[j+1] - z[j]) times (depth - z[j]) plus v[j],
    # for every row at once (the cells and depths are the same for all of them)
    j = np.clip(np.searchsorted(centres, depths, side="right") - 1, 0, centres.size - 2)
    slope = (values[..., j + 1] - values[..., j]) / (centres[j + 1] - centres[j])
    out = slope * (depths - centres[j]) + values[..., j]
    out = np.where(depths <= centres[0], values[..., :1], out)
    out = np.where(depths == centres[-1], values[..., -1:], out)
    return np.where(depths > centres[-1], below, out)


def envelope_thaw_depth(depth, maximum) -> float:
    """Thaw depth [m] where a maximum-temperature envelope `maximum` [degC] over sensor
    depths `depth` [m] (positive down, increasing) crosses 0 degC, linear between sensors
    (the trumpet curve's estimate of the active layer): 0 when the top sensor never thaws,
    NaN when the deepest one thaws too or no sensor has a value; NaN sensors are skipped."""
    depth, maximum = np.asarray(depth, float), np.asarray(maximum, float)
    keep = np.isfinite(maximum)
    depth, maximum = depth[keep], maximum[keep]
    if maximum.size == 0:
        return float("nan")
    if maximum[0] <= 0:
        return 0.0
    frozen = np.flatnonzero(maximum <= 0)
    if frozen.size == 0:
        return float("nan")
    i = frozen[0]
    return float(np.interp(0.0, [maximum[i], maximum[i - 1]], [depth[i], depth[i - 1]]))


def zero_annual_amplitude_depth(
    annual_max: np.ndarray, annual_min: np.ndarray, centres: np.ndarray, threshold: float = 0.1
) -> np.ndarray:
    """Shallowest depth [m] where the annual temperature range (max - min) falls below
    `threshold` [K], interpolated between cell centres; NaN if it never does."""
    amplitude = annual_max - annual_min
    below = amplitude < threshold
    index = np.argmax(below, axis=-1)
    found = np.any(below, axis=-1)
    previous = np.maximum(index - 1, 0)
    a_prev = np.take_along_axis(amplitude, previous[..., None], axis=-1)[..., 0]
    a_here = np.take_along_axis(amplitude, index[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(a_prev > a_here, (a_prev - threshold) / (a_prev - a_here), 0.0)
    depth = centres[previous] + (centres[index] - centres[previous]) * np.clip(weight, 0.0, 1.0)
    return np.where(found, depth, np.nan)


def talik(annual_min: np.ndarray) -> np.ndarray:
    """True where some cell stays above 0 degC all year below a cell that froze that year
    (a talik under the seasonally frozen layer)."""
    froze = annual_min <= 0
    froze_above = np.maximum.accumulate(froze, axis=-1)
    return np.any((annual_min > 0) & froze_above, axis=-1)
