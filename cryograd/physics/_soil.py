"""Soil layers: bulk thermal properties, mixing rules, per-cell material."""

from typing import Literal

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from . import _constants as const
from ._validation import as_float_array, is_concrete, require_in_range, require_positive

ConductivityMixing = Literal["geometric", "quadratic_parallel"]


def _mix_conductivity(fractions: dict[str, float], conductivities: dict[str, float], rule: str) -> float:
    if rule == "quadratic_parallel":  # Cosenza et al. (2003): sqrt(k) mixes linearly
        return sum(fractions[name] * np.sqrt(conductivities[name]) for name in fractions) ** 2
    if rule == "geometric":  # Johansen (1975): log(k) mixes linearly
        return float(np.prod([conductivities[name] ** fractions[name] for name in fractions]))
    raise ValueError(f"conductivity_mixing must be 'geometric' or 'quadratic_parallel', got {rule!r}")


class SoilLayer(eqx.Module):
    """A soil layer in GIPL bulk form, from depth `top` [m] to the next layer's top.

    **Arguments:**

    - `top`: depth of the layer's upper boundary [m].
    - `water_content`: total volumetric water content, liquid plus ice [m3 m-3].
    - `k_thawed`, `k_frozen`: thermal conductivity when all water is liquid / frozen
      [W m-1 K-1].
    - `c_thawed`, `c_frozen`: volumetric heat capacity when all water is liquid / frozen
      [J m-3 K-1].
    - `porosity`: pore volume [m3 m-3]; optional, checked against `water_content` and
      used by freeze curves that need it (`DallAmico`). Defaults to `water_content`.
    - `conductivity_mixing`: how conductivity varies with the liquid fraction f between
      the frozen and thawed values: `"geometric"` (k = k_f^(1-f) k_t^f, Johansen 1975)
      or `"quadratic_parallel"` (sqrt k linear in f, Cosenza et al. 2003).

    The heat capacity of a partly frozen cell is c_f + (c_t - c_f) f.
    """

    top: Float[Array, ""]
    water_content: Float[Array, ""]
    k_thawed: Float[Array, ""]
    k_frozen: Float[Array, ""]
    c_thawed: Float[Array, ""]
    c_frozen: Float[Array, ""]
    porosity: Float[Array, ""]
    conductivity_mixing: ConductivityMixing = eqx.field(static=True, default="geometric")

    def __init__(
        self,
        top,
        water_content,
        k_thawed,
        k_frozen,
        c_thawed,
        c_frozen,
        porosity=None,
        conductivity_mixing: ConductivityMixing = "geometric",
    ):
        if porosity is None:
            porosity = water_content
        values = dict(
            top=top,
            water_content=water_content,
            k_thawed=k_thawed,
            k_frozen=k_frozen,
            c_thawed=c_thawed,
            c_frozen=c_frozen,
            porosity=porosity,
        )
        if is_concrete(values):
            for name, value in values.items():
                as_float_array(value, name)
            for name in ("k_thawed", "k_frozen", "c_thawed", "c_frozen"):
                require_positive(values[name], name)
            require_in_range(water_content, "water_content", 0.0, 1.0)
            require_in_range(porosity, "porosity", 0.0, 1.0)
            if np.any(np.asarray(water_content) > np.asarray(porosity) + 1e-12):
                raise ValueError(f"water_content ({water_content}) must not exceed porosity ({porosity})")
            if np.any(np.asarray(top) < 0):
                raise ValueError(f"top must be a depth >= 0 m, got {top!r}")
        if conductivity_mixing not in ("geometric", "quadratic_parallel"):
            raise ValueError(
                f"conductivity_mixing must be 'geometric' or 'quadratic_parallel', got {conductivity_mixing!r}"
            )
        for name, value in values.items():
            setattr(self, name, jnp.asarray(value, dtype=jnp.float64))
        self.conductivity_mixing = conductivity_mixing

    @classmethod
    def from_composition(
        cls,
        top: float,
        porosity: float,
        saturation: float = 1.0,
        organic: float = 0.0,
        *,
        k_mineral: float = const.K_MINERAL,
        c_mineral: float = const.C_MINERAL,
        k_organic: float = const.K_ORGANIC,
        c_organic: float = const.C_ORGANIC,
        conductivity_mixing: ConductivityMixing = "quadratic_parallel",
    ) -> "SoilLayer":
        """A layer from its volumetric composition.

        **Arguments:**

        - `top`: depth of the layer's top [m].
        - `porosity`: pore volume fraction [m3 m-3].
        - `saturation`: share of the pores filled with water (liquid or ice) [1].
        - `organic`: organic-matter volume fraction [m3 m-3]; mineral = 1 - porosity - organic.
        - `k_mineral`, `c_mineral`, `k_organic`, `c_organic`: constituent properties
          [W m-1 K-1], [J m-3 K-1]; water, ice and air use `cryograd.physics` constants
          (k 0.57, 2.2, 0.025; c 4.2e6, 1.9e6, 1.25e3).
        - `conductivity_mixing`: `"quadratic_parallel"` (Cosenza et al. 2003) or
          `"geometric"`; heat capacity mixes linearly.

        Ice is counted at the volume of the water it came from.
        """
        for name, value in dict(porosity=porosity, saturation=saturation, organic=organic).items():
            as_float_array(value, name)
        require_in_range(porosity, "porosity", 0.0, 1.0)
        if saturation < 0:
            raise ValueError(f"saturation must be >= 0, got {saturation!r}")
        if saturation > 1:
            raise ValueError(
                f"saturation must be <= 1: water content {porosity * saturation:.3g} would exceed "
                f"porosity {porosity:.3g}"
            )
        if organic < 0 or porosity + organic > 1:
            raise ValueError(f"organic must lie in [0, 1 - porosity] = [0, {1 - porosity:.3g}], got {organic!r}")
        water = porosity * saturation
        solids = dict(mineral=1.0 - porosity - organic, organic=organic, air=porosity - water)
        k = dict(mineral=k_mineral, organic=k_organic, air=const.K_AIR, water=const.K_WATER, ice=const.K_ICE)
        c = dict(mineral=c_mineral, organic=c_organic, air=const.C_AIR, water=const.C_WATER, ice=const.C_ICE)
        thawed = solids | dict(water=water)
        frozen = solids | dict(ice=water)
        return cls(
            top=top,
            water_content=water,
            k_thawed=_mix_conductivity(thawed, k, conductivity_mixing),
            k_frozen=_mix_conductivity(frozen, k, conductivity_mixing),
            c_thawed=sum(thawed[name] * c[name] for name in thawed),
            c_frozen=sum(frozen[name] * c[name] for name in frozen),
            porosity=porosity,
            conductivity_mixing=conductivity_mixing,
        )


class CellMaterial(eqx.Module):
    """Soil properties broadcast to the cells of a grid (internal; arrays of shape (nz,))."""

    water_content: Float[Array, " nz"]
    porosity: Float[Array, " nz"]
    k_thawed: Float[Array, " nz"]
    k_frozen: Float[Array, " nz"]
    c_thawed: Float[Array, " nz"]
    c_frozen: Float[Array, " nz"]
    quadratic_parallel: Bool[Array, " nz"]

    def heat_capacity(self, liquid_fraction):
        """Volumetric heat capacity [J m-3 K-1] at liquid fraction f [1]."""
        return self.c_frozen + (self.c_thawed - self.c_frozen) * liquid_fraction

    def conductivity(self, liquid_fraction):
        """Thermal conductivity [W m-1 K-1] at liquid fraction f [1]."""
        f = liquid_fraction
        geometric = self.k_frozen ** (1.0 - f) * self.k_thawed**f
        quadratic = ((1.0 - f) * jnp.sqrt(self.k_frozen) + f * jnp.sqrt(self.k_thawed)) ** 2
        return jnp.where(self.quadratic_parallel, quadratic, geometric)

    @property
    def latent_heat(self):
        """Latent heat of the cell's total water [J m-3]."""
        return const.LATENT_HEAT_FUSION_VOLUMETRIC * self.water_content


def layer_index(layers: list[SoilLayer], centres) -> np.ndarray:
    """Index of the layer that holds each cell centre (layers sorted by `top`)."""
    tops = np.array([float(layer.top) for layer in layers])
    return np.searchsorted(tops, np.asarray(centres), side="right") - 1


def cell_material(layers: list[SoilLayer], index) -> CellMaterial:
    """Broadcast layer properties to cells through their layer index."""

    def stack(name):
        return jnp.stack([getattr(layer, name) for layer in layers])[index]

    quadratic = np.array([layer.conductivity_mixing == "quadratic_parallel" for layer in layers])[index]
    return CellMaterial(
        water_content=stack("water_content"),
        porosity=stack("porosity"),
        k_thawed=stack("k_thawed"),
        k_frozen=stack("k_frozen"),
        c_thawed=stack("c_thawed"),
        c_frozen=stack("c_frozen"),
        quadratic_parallel=jnp.asarray(quadratic),
    )
