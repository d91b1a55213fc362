"""Snow on the ground: a snowpack resolved as extra cells above the soil.

The snowpack's mass and density come from the forcing (snow depth, or snow water
equivalent, with a density); its heat is computed. The pack is split into `n_cells`
cells of equal mass that sit on top of the soil and take part in the same implicit
enthalpy solve, so snow heat capacity, latent heat and the zero curtain (snow and the
ground beneath held at 0 degC while the pack melts) come out of the solve.

Between two steps the prescribed mass changes. The enthalpy profile is remapped
conservatively in the mass coordinate: new snow is added on top at the air temperature
(capped at 0 degC, all ice); snow that disappears (melt, or a shallower pack) is taken
from the top with the specific enthalpy it has. The energy that arrives or leaves with
the mass is counted as `snow_heat_input`, so column enthalpy change = surface heat input
+ bottom heat input + snow heat input holds to the Newton tolerance.
"""

from typing import ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from . import _constants as const
from ._equilibrium import sturm_snow_conductivity, yen_snow_conductivity
from ._soil import CellMaterial
from ._surface import AbstractSurface, n_factor_temperature
from ._validation import as_float_array, is_concrete, require_positive

SnowConductivity = Literal["sturm", "yen", "prescribed"]
SnowDriver = Literal["depth", "swe"]


class SnowPack(eqx.Module):
    """The snowpack of one step (internal). Cells are ordered from the snow surface down."""

    thickness: Float[Array, " ns"]  # [m], 0 where the pack is absent
    present: Bool[Array, ""]
    mass: Float[Array, ""]  # [kg m-2], 0 where absent
    density: Float[Array, ""]  # [kg m-3]
    material: CellMaterial
    fresh_enthalpy: Float[Array, ""]  # [J m-3] of new snow at this density and air temperature


class Snow(AbstractSurface):
    """A snowpack on the ground, driven by prescribed snow depth or snow water equivalent,
    resolved as `n_cells` extra cells in the implicit solve. The top of the snow is held
    at the air temperature capped at 0 degC (a melting surface cannot be warmer; the melt
    itself is prescribed by the forcing's shrinking pack); without snow the ground surface
    is held at the air temperature, or at n-factor times the air temperature when
    `freezing`/`thawing` are given (vegetation, moss, bare ground).

    **Arguments:**

    - `density`: snow density [kg m-3] (default 250). `None` reads the forcing variable
      `snow_density` [kg m-3] instead. A learnable leaf.
    - `driver`: `"depth"` (forcing `snow_depth` [m]) or `"swe"` (forcing
      `snow_water_equivalent` [m of water]); depth = SWE rho_water / density.
    - `conductivity`: `"sturm"` (Sturm et al. 1997, from density; default), `"yen"` (Yen
      1981) or `"prescribed"` (forcing `snow_conductivity` [W m-1 K-1], as in GIPL2 input).
    - `heat_capacity`: volumetric heat capacity of the snow [J m-3 K-1]; default `None`
      uses density x 2100 J kg-1 K-1 (ice) below 0 degC and density x 4200 J kg-1 K-1 for
      melted water (GIPL2 uses a fixed 8.4e5). With a fixed value and a density that
      changes, the remap keeps energy per mass, so the pack's temperature scales with the
      density ratio on that step.
    - `conductivity_scale`: factor on the snow conductivity from any of the three sources
      [1] (default 1). A learnable leaf: wind slab, depth hoar and a forcing file's fixed
      value are corrected through it.
    - `freezing`, `thawing`: n-factors [1] for snow-free ground, T_gs = n T_air below and
      above 0 degC (default 1, the air temperature itself). Learnable leaves.
    - `min_depth`: thin-snow threshold [m] (default 0.01): a thinner pack is ignored (its
      mass leaves, and the air temperature acts on the ground surface).
    - `n_cells`: number of equal-mass snow cells (default 5).

    Forcing variables: `air_temperature` [degC] plus the driver's variables above.
    Latent heat: snow is pure water, freezing at 0 degC (latent heat density x 3.34e5).
    """

    density: Float[Array, ""] | None
    heat_capacity: Float[Array, ""] | None
    conductivity_scale: Float[Array, ""]
    freezing: Float[Array, ""]
    thawing: Float[Array, ""]
    min_depth: float = eqx.field(static=True)
    driver: SnowDriver = eqx.field(static=True)
    conductivity: SnowConductivity = eqx.field(static=True)
    n_cells: int = eqx.field(static=True)
    fixed_temperature: ClassVar[bool] = True

    def __init__(
        self,
        density: ArrayLike | None = 250.0,
        *,
        driver: SnowDriver = "depth",
        conductivity: SnowConductivity = "sturm",
        heat_capacity: ArrayLike | None = None,
        conductivity_scale: ArrayLike = 1.0,
        freezing: ArrayLike = 1.0,
        thawing: ArrayLike = 1.0,
        min_depth: float = 0.01,
        n_cells: int = 5,
    ):
        if driver not in ("depth", "swe"):
            raise ValueError(f"driver must be 'depth' or 'swe', got {driver!r}")
        if conductivity not in ("sturm", "yen", "prescribed"):
            raise ValueError(f"conductivity must be 'sturm', 'yen' or 'prescribed', got {conductivity!r}")
        if int(n_cells) != n_cells or n_cells < 1:
            raise ValueError(f"n_cells must be a positive integer, got {n_cells!r}")
        require_positive(as_float_array(min_depth, "min_depth"), "min_depth")
        positive = dict(density=density, heat_capacity=heat_capacity, conductivity_scale=conductivity_scale)
        positive.update(freezing=freezing, thawing=thawing)
        for name, value in positive.items():
            if value is not None and is_concrete(value):
                require_positive(as_float_array(value, name), name)
        if density is not None and is_concrete(density) and float(density) > const.WATER_DENSITY:
            raise ValueError(f"density must not exceed that of water ({const.WATER_DENSITY} kg m-3), got {density!r}")
        self.density = None if density is None else jnp.asarray(density, jnp.float64)
        self.heat_capacity = None if heat_capacity is None else jnp.asarray(heat_capacity, jnp.float64)
        self.conductivity_scale = jnp.asarray(conductivity_scale, jnp.float64)
        self.freezing = jnp.asarray(freezing, jnp.float64)
        self.thawing = jnp.asarray(thawing, jnp.float64)
        self.min_depth = float(min_depth)
        self.driver = driver
        self.conductivity = conductivity
        self.n_cells = int(n_cells)

    @property
    def forcing_variables(self) -> tuple[str, ...]:
        """Forcing variables the snow surface reads (air temperature, snow depth or SWE, and
        snow density or conductivity where they come from the forcing)."""
        names = ["air_temperature", "snow_depth" if self.driver == "depth" else "snow_water_equivalent"]
        if self.density is None:
            names.append("snow_density")
        if self.conductivity == "prescribed":
            names.append("snow_conductivity")
        return tuple(names)

    def boundary_value(self, forcing):
        air = forcing["air_temperature"]
        bare = n_factor_temperature(air, self.freezing, self.thawing)
        return jnp.where(self.snowpack(forcing).present, jnp.minimum(air, 0.0), bare)

    def snowpack(self, forcing) -> SnowPack:
        """The pack of one step from `forcing` (a dict of scalars)."""
        density = forcing["snow_density"] if self.density is None else self.density
        density = jnp.asarray(density, jnp.float64)
        if self.driver == "depth":
            depth = jnp.maximum(forcing["snow_depth"], 0.0)
        else:
            depth = jnp.maximum(forcing["snow_water_equivalent"], 0.0) * const.WATER_DENSITY / density
        present = depth >= self.min_depth
        depth = jnp.where(present, depth, 0.0)
        if self.conductivity == "sturm":
            k = sturm_snow_conductivity(density)
        elif self.conductivity == "yen":
            k = yen_snow_conductivity(density)
        else:
            k = jnp.asarray(forcing["snow_conductivity"], jnp.float64)
        k = k * self.conductivity_scale
        if self.heat_capacity is None:
            c_frozen = density * const.SPECIFIC_HEAT_ICE
            c_thawed = density * const.C_WATER / const.WATER_DENSITY
        else:
            c_frozen = c_thawed = self.heat_capacity
        n = self.n_cells
        water = density / const.WATER_DENSITY
        material = CellMaterial(
            water_content=jnp.full(n, water),
            porosity=jnp.full(n, water),
            k_thawed=jnp.full(n, k),
            k_frozen=jnp.full(n, k),
            c_thawed=jnp.full(n, c_thawed),
            c_frozen=jnp.full(n, c_frozen),
            quadratic_parallel=jnp.zeros(n, dtype=bool),
        )
        fresh = c_frozen * jnp.minimum(forcing["air_temperature"], 0.0)
        return SnowPack(
            thickness=jnp.full(n, depth / n),
            present=present,
            mass=density * depth,
            density=density,
            material=material,
            fresh_enthalpy=fresh,
        )


def carry_over(enthalpy, old: SnowPack, new: SnowPack):
    """Snow-cell enthalpies [J m-3] for the new pack from those of the old one (conservative
    remap in the mass coordinate; new snow on top at the fresh-snow enthalpy, lost snow
    taken from the top)."""
    n = enthalpy.shape[0]
    specific = enthalpy[::-1] / old.density  # [J kg-1], cells from the ground up
    fresh_specific = new.fresh_enthalpy / new.density
    old_cell = old.mass / n
    bounds = new.mass * jnp.arange(n + 1) / n  # new cell edges in the mass coordinate [kg m-2]
    starts = old_cell * jnp.arange(n)

    # Snow enthalpy below each new edge [J m-2]: old cells, then new snow above the old mass.
    overlap = jnp.clip(bounds[:, None] - starts[None, :], 0.0, old_cell)
    energy = overlap @ specific + fresh_specific * jnp.maximum(bounds - old.mass, 0.0)
    cell_energy = jnp.diff(energy)  # [J m-2], from the ground up
    cell_mass = jnp.where(new.present, new.mass / n, 1.0)
    remapped = new.density * cell_energy / cell_mass
    return jnp.where(new.present, remapped, new.fresh_enthalpy)[::-1]
