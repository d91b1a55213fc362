"""Glacier geometry through time: volume-area initial thickness and the Δh-parameterisation.

Initial ice volume from volume-area scaling (Bahr et al. 1997; constants of Radić & Hock
2010 as used by OGGM and PyGEM),

    V = 0.034 A^1.375        [V in km3, A in km2],

spread as a uniform thickness V / A over the bands that have area (or a thickness the
user gives per band).

Each mass-balance year the annual mass change dM = Σ_i A_i b_i [kg] of the bands that
still hold ice is turned into a thickness change with the shape of Huss et al. (2010):

    h_r = (z_max - z) / (z_max - z_min)                  (0 at the top, 1 at the terminus)
    s(h_r) = (h_r + a)^g + b (h_r + a) + c                (clipped at 0)
    Δh_i = -f s_i,  with f fixed by  Σ_i A_i min(f s_i, h_i) = -dM / rho_ice,

(a, b, c, g) = (-0.02, 0.12, 0, 6) for glaciers larger than 20 km2, (-0.05, 0.19, 0.01, 4)
for 5-20 km2 and (-0.30, 0.60, 0.09, 2) below 5 km2 (the class of the initial area).
The thickness change is capped at the ice a band holds, so f is found exactly on the
piecewise-linear removed volume (no iteration); a band whose ice is gone loses its area,
and when every band reachable by s is empty the remaining loss thins the rest uniformly.
A glacier can therefore melt away completely: its area and volume become 0 and its
specific balance 0, never NaN. Mass gains thicken the bands with ice by the same shape
(the glacier does not advance onto bands it has lost). The band surface follows its
thickness change, which feeds back on the mass balance through the lapse rate.
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._constants import ICE_DENSITY
from ._smb import Hypsometry, MonthlyTemperatureIndex, by_year, safe_ratio, sum_months
from ._validation import as_float_array, is_concrete

SizeClass = Literal["auto", "large", "medium", "small"]

HUSS_COEFFICIENTS = {
    "large": (-0.02, 0.12, 0.0, 6.0),
    "medium": (-0.05, 0.19, 0.01, 4.0),
    "small": (-0.30, 0.60, 0.09, 2.0),
}
"""Δh-parameterisation (a, b, c, g) by size class (Huss et al. 2010, HESS 14, Table 2)."""
HUSS_AREA_LIMITS = (5e6, 20e6)
"""Area limits [m2] between the small, medium and large classes (Huss et al. 2010)."""
VOLUME_AREA_CONSTANT = 0.034
"""Volume-area scaling constant [km^(3-2g)] (Bahr et al. 1997; Radić & Hock 2010)."""
VOLUME_AREA_EXPONENT = 1.375
"""Volume-area scaling exponent [1] (Bahr et al. 1997)."""


def volume_area_thickness(
    glacier: Hypsometry, constant: float = VOLUME_AREA_CONSTANT, exponent: float = VOLUME_AREA_EXPONENT
):
    """Uniform initial ice thickness [m] per band, (..., band), from V = c A^g [km3, km2];
    0 on zero-area bands."""
    area_km2 = glacier.total_area / 1e6
    volume = constant * area_km2**exponent * 1e9  # [m3]
    mean = volume / (area_km2 * 1e6)
    return jnp.where(glacier.area > 0, mean[..., None], 0.0)


def _size_coefficients(size_class: str, initial_area):
    if size_class != "auto":
        return jnp.asarray(HUSS_COEFFICIENTS[size_class])
    small, medium = HUSS_AREA_LIMITS
    table = jnp.asarray([HUSS_COEFFICIENTS[k] for k in ("small", "medium", "large")])
    index = (initial_area >= small).astype(int) + (initial_area >= medium).astype(int)
    return table[index]


def _shape(surface, has_ice, coefficients):
    """Huss's normalised thickness change s(h_r) >= 0 over the bands with ice (0 elsewhere)."""
    a, b, c, gamma = coefficients[0], coefficients[1], coefficients[2], coefficients[3]
    top = jnp.max(jnp.where(has_ice, surface, -jnp.inf))
    bottom = jnp.min(jnp.where(has_ice, surface, jnp.inf))
    span = top - bottom
    single = span <= 0
    # A safe denominator keeps the gradient finite for one-band and empty glaciers.
    hr = safe_ratio(top - surface, span)
    hr = jnp.clip(jnp.where(has_ice, hr, 0.0), 0.0, 1.0)
    x = hr + a
    s = jnp.sign(x) ** jnp.round(gamma) * jnp.abs(x) ** gamma + b * x + c
    s = jnp.where(single, 1.0, jnp.maximum(s, 0.0))
    return jnp.where(has_ice, s, 0.0)


def _remove(thickness, area, shape, loss):
    """Thickness after removing `loss` [m3] >= 0 with the shape, capped by the ice held.

    Returns (thickness, unmet loss [m3]). Solves Σ A_i min(f s_i, h_i) = loss for f on the
    sorted breakpoints r_i = h_i / s_i, then thins uniformly if that is not enough."""
    reach = (shape > 0) & (area > 0)
    ratio = jnp.where(reach, thickness / jnp.where(reach, shape, 1.0), jnp.inf)
    order = jnp.argsort(ratio)
    finite = jnp.isfinite(ratio[order])
    r = jnp.where(finite, ratio[order], 0.0)
    weight = jnp.where(reach, area * shape, 0.0)[order]
    emptied = jnp.cumsum(jnp.where(finite, (area * thickness)[order], 0.0))  # volume of bands 0..k
    tail = jnp.cumsum(weight[::-1])[::-1]  # Σ A s over bands k.. (exactly 0 past the last reachable)
    beyond = jnp.concatenate([tail[1:], jnp.zeros(1)])
    k = jnp.sum(finite & (emptied + r * beyond < loss))  # bands emptied at the solution
    before = jnp.concatenate([jnp.zeros(1), emptied])[k]
    slope = jnp.concatenate([tail, jnp.zeros(1)])[k]
    exhausted = slope <= 0
    f = (loss - before) / jnp.where(exhausted, 1.0, slope)
    cut = jnp.where(exhausted, thickness, jnp.minimum(f * shape, thickness))
    cut = jnp.where(reach, cut, 0.0)
    thickness = thickness - cut
    # What the shape could not reach thins all remaining ice in proportion.
    rest = loss - jnp.sum(area * cut)
    rest = jnp.maximum(rest, 0.0)
    left = jnp.sum(area * thickness)
    keep = jnp.where(left > 0, 1.0 - rest / jnp.where(left > 0, left, 1.0), 0.0)
    unmet = jnp.maximum(rest - left, 0.0)
    return thickness * jnp.maximum(keep, 0.0), unmet


def _add(thickness, area, shape, gain):
    """Thickness after adding `gain` [m3] >= 0 with the shape over the bands with ice."""
    has_ice = (thickness > 0) & (area > 0)
    weight = jnp.where(has_ice, shape, 0.0)
    weight = jnp.where(jnp.sum(area * weight) > 0, weight, has_ice.astype(thickness.dtype))
    total = jnp.sum(area * weight)
    return thickness + safe_ratio(gain, total) * weight


def redistribute(thickness, area, surface, coefficients, volume_change):
    """One Δh step: band thickness [m] after a glacier-wide volume change [m3].

    `area` are the bands' (initial) areas [m2], `surface` their surface elevations [m].
    Returns (thickness, unmet loss [m3] the glacier did not hold)."""
    has_ice = (thickness > 0) & (area > 0)
    shape = _shape(surface, has_ice, coefficients)
    lost, unmet = _remove(thickness, area, shape, jnp.maximum(-volume_change, 0.0))
    gained = _add(thickness, area, shape, jnp.maximum(volume_change, 0.0))
    return jnp.where(volume_change < 0, lost, gained), jnp.where(volume_change < 0, unmet, 0.0)


class DeltaH(eqx.Module):
    """Glacier evolution: monthly mass balance on a changing geometry (Huss et al. 2010).

    **Arguments:**

    - `mass_balance`: a `MonthlyTemperatureIndex`.
    - `size_class`: `"auto"` (from the initial area) or the Δh class `"large"`,
      `"medium"` or `"small"`.
    - `ice_density`: converts mass to volume [kg m-3], default 900.
    - `elevation_feedback`: band surfaces move with their thickness change (default True).
    """

    mass_balance: MonthlyTemperatureIndex
    ice_density: Float[Array, ""]
    size_class: SizeClass = eqx.field(static=True)
    elevation_feedback: bool = eqx.field(static=True)

    def __init__(
        self,
        mass_balance: MonthlyTemperatureIndex,
        size_class: SizeClass = "auto",
        ice_density=ICE_DENSITY,
        elevation_feedback: bool = True,
    ):
        if not isinstance(mass_balance, MonthlyTemperatureIndex):
            raise ValueError(f"mass_balance must be a MonthlyTemperatureIndex, got {type(mass_balance).__name__}")
        if size_class not in ("auto", *HUSS_COEFFICIENTS):
            raise ValueError(f"size_class must be 'auto', 'large', 'medium' or 'small', got {size_class!r}")
        if is_concrete(ice_density) and not as_float_array(ice_density, "ice_density") > 0:
            raise ValueError(f"ice_density must be positive, got {ice_density!r}")
        self.mass_balance = mass_balance
        self.size_class = size_class
        self.ice_density = jnp.asarray(ice_density, jnp.float64)
        self.elevation_feedback = bool(elevation_feedback)

    def run(self, glacier: Hypsometry, climate: dict, thickness=None) -> dict:
        """Evolve one glacier over whole mass-balance years (pure JAX; `climate` as for
        `MonthlyTemperatureIndex.monthly`, months over whole years).

        **Arguments:** `glacier` (band,) bands; `thickness` initial ice thickness (band,)
        [m], default `volume_area_thickness(glacier)`.

        **Returns:** per year (year, ...): `specific_mass_balance` [kg m-2] over the area
        at the start of the year, `mass_change` [kg], `thickness` (year, band) [m],
        `area` [m2], `volume` [m3] and `mass` [Gt] at the end of the year, `surface`
        (year, band) [m], `unmet_loss` [kg] (mass balance beyond the ice the glacier
        had); and the start values `initial_volume` [m3], `initial_area` [m2] and
        `initial_mass` [Gt].
        """
        if glacier.elevation.ndim != 1:
            raise ValueError("DeltaH.run takes one glacier (band,); vmap it for a region")
        area0 = glacier.area
        h0 = volume_area_thickness(glacier) if thickness is None else jnp.asarray(thickness, jnp.float64)
        h0 = jnp.where(area0 > 0, h0, 0.0)
        coefficients = _size_coefficients(self.size_class, glacier.total_area)
        years = by_year(climate)
        constant = {k: v for k, v in years.items() if jnp.ndim(v) == 0}
        yearly = {k: v for k, v in years.items() if jnp.ndim(v) != 0}
        rho = self.ice_density

        def year(h, months):
            surface = glacier.elevation + (h - h0 if self.elevation_feedback else 0.0)
            balance = sum_months(self.mass_balance.monthly(surface, dict(months, **constant))["mass_balance"])
            area = jnp.where(h > 0, area0, 0.0)
            total = jnp.sum(area)
            change = jnp.sum(area * balance)  # [kg]
            new, unmet = redistribute(h, area0, surface, coefficients, change / rho)
            new_area = jnp.sum(jnp.where(new > 0, area0, 0.0))
            volume = jnp.sum(area0 * new)
            out = dict(
                specific_mass_balance=safe_ratio(change, total),
                mass_change=change,
                thickness=new,
                surface=surface,
                area=new_area,
                volume=volume,
                mass=volume * rho / 1e12,
                unmet_loss=unmet * rho,
            )
            return new, out

        _, out = jax.lax.scan(year, h0, yearly)
        volume0 = jnp.sum(area0 * h0)
        out.update(initial_volume=volume0, initial_area=jnp.sum(jnp.where(h0 > 0, area0, 0.0)))
        out["initial_mass"] = volume0 * rho / 1e12
        return out

    def simulate(self, glacier: Hypsometry, climate, thickness=None):
        """Glacier (or region) evolution from a monthly `xr.Dataset` (as for
        `MonthlyTemperatureIndex.simulate`).

        **Returns:** `xr.Dataset` over `year` with `specific_mass_balance` [kg m-2],
        `volume` [m3], `area` [m2], `mass` [Gt] (end of year), `thickness` and `surface`
        (year, band) [m], `unmet_loss` [kg], and the start values; a `glacier` dimension
        for regions.
        """
        from ._smb_xarray import simulate_geometry

        return simulate_geometry(self, glacier, climate, thickness)


def check_thickness(thickness, glacier: Hypsometry):
    """Checked initial thickness [m] of the glacier's shape, or None."""
    if thickness is None:
        return None
    values = as_float_array(thickness, "thickness")
    if values.shape != tuple(glacier.area.shape):
        raise ValueError(f"thickness must have the glacier's shape {tuple(glacier.area.shape)}, got {values.shape}")
    if np.any(values < 0):
        raise ValueError("thickness must be >= 0 m")
    return values
