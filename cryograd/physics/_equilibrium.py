"""Equilibrium permafrost models: Kudryavtsev and TTOP.

Both are closed-form, elementwise and differentiable, so they map millions of cells in one
jitted call. Inputs broadcast against each other (cells, years, or both).
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from . import _constants as const
from ._validation import as_float_array, is_concrete, require_non_negative, require_positive

SECONDS_PER_YEAR = 31556926.0
"""Length of the annual cycle in the Kudryavtsev model [s] (permamodel's `sec_per_a`)."""

TTOP_FORMS = ("kudryavtsev", "permamodel-0.2.3")


def _checked(value, name, require):
    """`value` as a float64 array, checked by `require` (from `_validation`) when concrete."""
    if is_concrete(value):
        require(as_float_array(value, name), name)
    return jnp.asarray(value, dtype=jnp.float64)


def _positive(value, name):
    return _checked(value, name, require_positive)


def _non_negative(value, name):
    return _checked(value, name, require_non_negative)


def sturm_snow_conductivity(density):
    """Snow thermal conductivity [W m-1 K-1] from density [kg m-3] (Sturm et al. 1997, eq. 4:
    0.138 - 1.01 rho + 3.233 rho^2 with rho in g cm-3; fitted for 0.156-0.6 g cm-3)."""
    rho = jnp.asarray(density, jnp.float64) / 1000.0
    return 0.138 - 1.01 * rho + 3.233 * rho**2


def yen_snow_conductivity(density):
    """Snow thermal conductivity [W m-1 K-1] from density [kg m-3] (Yen 1981:
    k_ice (rho / rho_water)^1.88 with k_ice = 2.22 W m-1 K-1)."""
    return 2.22 * (jnp.asarray(density, jnp.float64) / const.WATER_DENSITY) ** 1.88


class Kudryavtsev(eqx.Module):
    """The Kudryavtsev equilibrium model of the active layer (as in Anisimov et al. 1997;
    Romanovsky & Osterkamp 1997; Sazonova & Romanovsky 2003), in permamodel's formulation.

    From the mean annual air temperature T_a and its amplitude A_a [degC] it damps the
    annual wave through snow and vegetation to the ground surface (T_gs, A_gs), finds the
    temperature at the top of permafrost (TTOP) from the thawed and frozen conductivities,

        TTOP k = T_gs (k_t + k_f) / 2 + A_gs (k_t - k_f) / pi
                 * (T_gs / A_gs arcsin(T_gs / A_gs) + sqrt(1 - T_gs^2 / A_gs^2)),

    with k = k_t where the right-hand side is positive (no permafrost) and k_f otherwise,
    then the amplitude at the top of permafrost, the critical depth and the active-layer
    thickness (Romanovsky & Osterkamp 1997, eqs. 3-5).

    **Parameters** (leaves, each a scalar or an array broadcasting against the inputs):

    - `k_thawed`, `k_frozen`: soil thermal conductivity [W m-1 K-1].
    - `c_thawed`, `c_frozen`: soil volumetric heat capacity [J m-3 K-1].
    - `water_content`: volumetric water content [m3 m-3]; latent heat 3.34e8 x it [J m-3].
    - `snow_density` [kg m-3] (default 250); snow conductivity by Sturm et al. (1997) or,
      with `snow_conductivity="yen"`, Yen (1981); `snow_heat_capacity` [J kg-1 K-1]
      (default 2090).
    - `vegetation_height_frozen`, `vegetation_height_thawed` [m] (default 0) and
      `vegetation_diffusivity_frozen`, `vegetation_diffusivity_thawed` [m2 s-1]
      (defaults 2.39e-6 and 1.0556e-6, permamodel's example values).
    - `ttop_form`: `"kudryavtsev"` (default, the formula above) or `"permamodel-0.2.3"`,
      which reproduces permamodel 0.2.3, whose code has sqrt(1 - pi^2 / A_gs^2) in place of
      sqrt(1 - T_gs^2 / A_gs^2) (and is NaN for A_gs < pi).

    Calling the model with `air_temperature`, `temperature_amplitude` [degC] and
    `snow_depth` [m] returns a dict of arrays: `ground_surface_temperature`,
    `ground_surface_amplitude`, `permafrost_temperature` (TTOP) and `permafrost_amplitude`
    [degC], `critical_depth` and `active_layer_thickness` [m] (where TTOP > 0 the last is
    the depth of seasonal freezing), and the season lengths `cold_season`, `warm_season` [s].
    |T_a| <= A_a is required for the season lengths (permamodel gives NaN otherwise); here
    T_a / A_a is clipped to [-1, 1], i.e. the whole year is one season.
    """

    k_thawed: Float[Array, "..."]
    k_frozen: Float[Array, "..."]
    c_thawed: Float[Array, "..."]
    c_frozen: Float[Array, "..."]
    water_content: Float[Array, "..."]
    snow_density: Float[Array, "..."]
    snow_heat_capacity: Float[Array, "..."]
    vegetation_height_frozen: Float[Array, "..."]
    vegetation_height_thawed: Float[Array, "..."]
    vegetation_diffusivity_frozen: Float[Array, "..."]
    vegetation_diffusivity_thawed: Float[Array, "..."]
    snow_conductivity: str = eqx.field(static=True)
    ttop_form: str = eqx.field(static=True)

    def __init__(
        self,
        k_thawed: ArrayLike,
        k_frozen: ArrayLike,
        c_thawed: ArrayLike,
        c_frozen: ArrayLike,
        water_content: ArrayLike,
        snow_density: ArrayLike = 250.0,
        snow_heat_capacity: ArrayLike = 2090.0,
        vegetation_height_frozen: ArrayLike = 0.0,
        vegetation_height_thawed: ArrayLike = 0.0,
        vegetation_diffusivity_frozen: ArrayLike = 2.39e-6,
        vegetation_diffusivity_thawed: ArrayLike = 1.0556e-6,
        snow_conductivity: str = "sturm",
        ttop_form: str = "kudryavtsev",
    ):
        if snow_conductivity not in ("sturm", "yen"):
            raise ValueError(f"snow_conductivity must be 'sturm' or 'yen', got {snow_conductivity!r}")
        if ttop_form not in TTOP_FORMS:
            raise ValueError(f"ttop_form must be one of {TTOP_FORMS}, got {ttop_form!r}")
        self.k_thawed = _positive(k_thawed, "k_thawed")
        self.k_frozen = _positive(k_frozen, "k_frozen")
        self.c_thawed = _positive(c_thawed, "c_thawed")
        self.c_frozen = _positive(c_frozen, "c_frozen")
        self.water_content = _non_negative(water_content, "water_content")
        self.snow_density = _positive(snow_density, "snow_density")
        self.snow_heat_capacity = _positive(snow_heat_capacity, "snow_heat_capacity")
        self.vegetation_height_frozen = _non_negative(vegetation_height_frozen, "vegetation_height_frozen")
        self.vegetation_height_thawed = _non_negative(vegetation_height_thawed, "vegetation_height_thawed")
        self.vegetation_diffusivity_frozen = _positive(vegetation_diffusivity_frozen, "vegetation_diffusivity_frozen")
        self.vegetation_diffusivity_thawed = _positive(vegetation_diffusivity_thawed, "vegetation_diffusivity_thawed")
        self.snow_conductivity = snow_conductivity
        self.ttop_form = ttop_form

    def __call__(self, air_temperature, temperature_amplitude, snow_depth) -> dict:
        period = SECONDS_PER_YEAR
        air = jnp.asarray(air_temperature, jnp.float64)
        amplitude = jnp.asarray(temperature_amplitude, jnp.float64)
        snow_depth = jnp.asarray(snow_depth, jnp.float64)

        ratio = jnp.clip(air / amplitude, -1.0, 1.0)
        cold_season = period * (0.5 - jnp.arcsin(ratio) / jnp.pi)
        warm_season = period - cold_season

        # Snow: the annual wave is damped over the snow depth (Anisimov et al. 1997, eq. 7).
        if self.snow_conductivity == "sturm":
            k_snow = sturm_snow_conductivity(self.snow_density)
        else:
            k_snow = yen_snow_conductivity(self.snow_density)
        snow_diffusivity = k_snow / (self.snow_density * self.snow_heat_capacity)
        snow_effect = amplitude * (1.0 - jnp.exp(-snow_depth * jnp.sqrt(jnp.pi / (period * snow_diffusivity))))
        temperature_vegetation = air + snow_effect
        amplitude_vegetation = amplitude - 2.0 / jnp.pi * snow_effect

        # Vegetation, separately for the cold and the warm season (eqs. 10-11).
        def damping(height, diffusivity, season):
            safe = jnp.where(season > 0, season, 1.0)
            factor = jnp.where(season > 0, jnp.exp(-height * jnp.sqrt(jnp.pi / (2.0 * diffusivity * safe))), 0.0)
            return 1.0 - factor

        winter = (amplitude_vegetation - temperature_vegetation) * damping(
            self.vegetation_height_frozen, self.vegetation_diffusivity_frozen, cold_season
        )
        summer = (amplitude_vegetation + temperature_vegetation) * damping(
            self.vegetation_height_thawed, self.vegetation_diffusivity_thawed, warm_season
        )
        vegetation = (winter * cold_season + summer * warm_season) / period
        surface_temperature = temperature_vegetation + 2.0 / jnp.pi * vegetation
        surface_amplitude = amplitude_vegetation - vegetation

        # Temperature at the top of permafrost (eq. 14).
        surface_ratio = surface_temperature / surface_amplitude
        if self.ttop_form == "kudryavtsev":
            clipped = jnp.clip(surface_ratio, -1.0, 1.0)
            inside = 1.0 - clipped**2
            root = jnp.where(inside > 0, jnp.sqrt(jnp.where(inside > 0, inside, 1.0)), 0.0)
            bracket = clipped * jnp.arcsin(clipped) + root
        else:
            bracket = surface_ratio * jnp.arcsin(surface_ratio) + jnp.sqrt(1.0 - jnp.pi**2 / surface_amplitude**2)
        numerator = (
            0.5 * surface_temperature * (self.k_frozen + self.k_thawed)
            + surface_amplitude * (self.k_thawed - self.k_frozen) / jnp.pi * bracket
        )
        thawed = numerator > 0.0
        conductivity = jnp.where(thawed, self.k_thawed, self.k_frozen)
        capacity = jnp.where(thawed, self.c_thawed, self.c_frozen)
        ttop = numerator / conductivity

        # Active layer (Romanovsky & Osterkamp 1997, eqs. 3-5).
        latent = const.LATENT_HEAT_FUSION_VOLUMETRIC * self.water_content
        half_latent = latent / (2.0 * capacity)
        depth_amplitude = surface_amplitude - jnp.abs(ttop)
        permafrost_amplitude = (
            depth_amplitude / jnp.log((surface_amplitude + half_latent) / (jnp.abs(ttop) + half_latent)) - half_latent
        )
        heat_storage = 2.0 * permafrost_amplitude * capacity + latent
        scale = jnp.sqrt(conductivity * period / (capacity * jnp.pi))
        wave = 2.0 * depth_amplitude * jnp.sqrt(conductivity * capacity * period / jnp.pi)
        critical_depth = wave / heat_storage
        # eq. 3; its second term's common factor heat_storage cancels.
        active_layer = (wave + latent * scale * critical_depth / (critical_depth + scale)) / heat_storage
        return dict(
            ground_surface_temperature=surface_temperature,
            ground_surface_amplitude=surface_amplitude,
            permafrost_temperature=ttop,
            permafrost_amplitude=permafrost_amplitude,
            critical_depth=critical_depth,
            active_layer_thickness=active_layer,
            cold_season=cold_season,
            warm_season=warm_season,
        )


def kudryavtsev_soil(water_content, fractions, bulk_density, heat_capacity, k_thawed_dry, k_frozen_dry, unfrozen=0.05):
    """Bulk soil properties for `Kudryavtsev` by permamodel 0.2.3's mixing rules.

    **Arguments:** `water_content` [m3 m-3]; per texture class (last axis): `fractions` [1]
    (normalised to sum 1), `bulk_density` [kg m-3], specific `heat_capacity`
    [J kg-1 K-1], dry conductivities `k_thawed_dry`, `k_frozen_dry` [W m-1 K-1];
    `unfrozen`: unfrozen water content in frozen soil [m3 m-3].

    **Returns:** dict `k_thawed`, `k_frozen` [W m-1 K-1], `c_thawed`, `c_frozen`
    [J m-3 K-1]: dry conductivities as fraction-weighted geometric means, then
    k_t = k_dry^(1-w) 0.54^w and k_f = k_dry^(1-w) 2.35^(w - u) 0.54^u (Johansen-style
    geometric mixing with water 0.54 and ice 2.35); heat capacities as (mean specific heat)
    x (mean bulk density) + 4190 w (thawed) or 2025 w (frozen), as permamodel computes them.
    """
    fractions = jnp.asarray(fractions, jnp.float64)
    weights = fractions / jnp.sum(fractions, axis=-1, keepdims=True)
    w = jnp.asarray(water_content, jnp.float64)
    dry_thawed = jnp.prod(jnp.asarray(k_thawed_dry, jnp.float64) ** weights, axis=-1)
    dry_frozen = jnp.prod(jnp.asarray(k_frozen_dry, jnp.float64) ** weights, axis=-1)
    solids = jnp.sum(jnp.asarray(heat_capacity, jnp.float64) * weights, axis=-1) * jnp.sum(
        jnp.asarray(bulk_density, jnp.float64) * weights, axis=-1
    )
    return dict(
        k_thawed=dry_thawed ** (1.0 - w) * 0.54**w,
        k_frozen=dry_frozen ** (1.0 - w) * 2.35 ** (w - unfrozen) * 0.54**unfrozen,
        c_thawed=solids + 4190.0 * w,
        c_frozen=solids + 2025.0 * w,
    )


def ttop(
    thawing_degree_days,
    freezing_degree_days,
    n_thawing=1.0,
    n_freezing=1.0,
    conductivity_ratio=1.0,
    period=365.0,
):
    """Temperature at the top of permafrost [degC] by the TTOP model (Smith & Riseborough 1996, 2002).

    **Arguments** (broadcasting arrays):

    - `thawing_degree_days`, `freezing_degree_days`: air degree-day sums over a year
      [degC day], both positive (freezing as the magnitude of the sub-zero sum).
    - `n_thawing`, `n_freezing`: n-factors from air to ground surface [1].
    - `conductivity_ratio`: k_thawed / k_frozen of the soil [1].
    - `period`: days in the year [day].

    **Returns:** TTOP = (r nt TDD - nf FDD) / P where that is <= 0 (permafrost), else
    (nt TDD - nf FDD / r) / P (a talik; TTOP > 0). The branches meet at 0.
    """
    tdd = jnp.asarray(thawing_degree_days, jnp.float64)
    fdd = jnp.asarray(freezing_degree_days, jnp.float64)
    thaw = n_thawing * tdd
    freeze = n_freezing * fdd
    permafrost = conductivity_ratio * thaw - freeze
    return jnp.where(permafrost <= 0.0, permafrost, thaw - freeze / conductivity_ratio) / period


def degree_days(temperature, axis=-1):
    """(thawing, freezing) degree-day sums [degC day] of daily temperatures [degC] along
    `axis`: the sums of max(T, 0) and of max(-T, 0)."""
    temperature = jnp.asarray(temperature, jnp.float64)
    return jnp.sum(jnp.maximum(temperature, 0.0), axis=axis), jnp.sum(jnp.maximum(-temperature, 0.0), axis=axis)
