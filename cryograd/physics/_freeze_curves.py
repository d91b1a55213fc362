"""Soil freezing characteristic curves and the enthalpy-temperature relation.

A freeze curve gives the liquid fraction f(T) [1], the share of a cell's total water
that is liquid at temperature T [degC]. With it the volumetric enthalpy is

    H(T) = (c_f + (c_t - c_f) f(T)) T + L theta_w f(T)        [J m-3]

(reference: all water frozen at 0 degC; L = 3.34e8 J m-3, theta_w the total water
content). H is strictly increasing in T, so every curve has an inverse T(H). The inverse
is analytic for `FreeWater()` and a bracketed Newton iteration otherwise; its
derivatives come from the implicit-function theorem, so it is differentiable.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import _constants as const
from ._soil import CellMaterial
from ._validation import as_float_array, is_concrete

_INVERSE_MAX_ITERATIONS = 100
_INVERSE_TOLERANCE = 1e-13  # [K], relative to max(1, |T|)


def _safe_power(base, exponent):
    """base**exponent for base >= 0, 0 where base == 0, with finite gradients."""
    positive = base > 0
    safe = jnp.where(positive, base, 1.0)
    return jnp.where(positive, safe**exponent, 0.0)


class AbstractFreezeCurve(eqx.Module):
    """A freeze curve: liquid fraction of the total water as a function of temperature."""

    @abc.abstractmethod
    def liquid_fraction(self, temperature, material: CellMaterial):
        """Liquid share of the total water [1] at `temperature` [degC]."""

    @abc.abstractmethod
    def thaw_temperature(self, material: CellMaterial):
        """Temperature [degC] at and above which all water is liquid."""

    def enthalpy(self, temperature, material: CellMaterial):
        """Volumetric enthalpy [J m-3] at `temperature` [degC]."""
        f = self.liquid_fraction(temperature, material)
        return material.heat_capacity(f) * temperature + material.latent_heat * f

    def state(self, enthalpy, material: CellMaterial):
        """Temperature [degC], liquid fraction [1] and dT/dH [K m3 J-1] at `enthalpy`."""
        temperature = _invert_enthalpy(self, enthalpy, material)
        _, slope = jax.jvp(lambda t: self.enthalpy(t, material), (temperature,), (jnp.ones_like(temperature),))
        return temperature, self.liquid_fraction(temperature, material), 1.0 / slope


def _invert_enthalpy(curve: AbstractFreezeCurve, enthalpy, material: CellMaterial):
    """T(H) by safeguarded Newton in T on the freezing branch; exact on the thawed one."""
    t_thaw = curve.thaw_temperature(material)
    h_thaw = curve.enthalpy(t_thaw, material)
    c_low = jnp.minimum(material.c_frozen, material.c_thawed)
    c_high = jnp.maximum(material.c_frozen, material.c_thawed)
    # For T < T_thaw: c_high T <= H(T) <= c_low T + L theta_w, which brackets the root.
    target = jax.lax.stop_gradient(enthalpy)
    low = jnp.minimum((target - material.latent_heat) / c_low, t_thaw) - 1.0
    high = jnp.broadcast_to(t_thaw, target.shape)
    guess = jnp.clip(target / c_high, low, high)

    def residual_and_slope(t):
        return jax.jvp(lambda x: curve.enthalpy(x, material) - target, (t,), (jnp.ones_like(t),))

    def cond(carry):
        _, _, _, change, iteration = carry
        return (iteration < _INVERSE_MAX_ITERATIONS) & jnp.any(change)

    def body(carry):
        t, low, high, _, iteration = carry
        value, slope = residual_and_slope(t)
        high = jnp.where(value > 0, t, high)
        low = jnp.where(value > 0, low, t)
        newton = t - value / jnp.where(slope > 0, slope, 1.0)
        inside = (slope > 0) & (newton > low) & (newton < high)
        new = jnp.where(inside, newton, 0.5 * (low + high))
        change = jnp.abs(new - t) > _INVERSE_TOLERANCE * jnp.maximum(1.0, jnp.abs(t))
        return new, low, high, change, iteration + 1

    unsettled = jnp.ones(target.shape, dtype=bool)
    root, *_ = jax.lax.while_loop(cond, body, (guess, low, high, unsettled, 0))
    root = jax.lax.stop_gradient(root)
    # One Newton step from the converged root carries the implicit-function derivative.
    value, slope = jax.jvp(lambda x: curve.enthalpy(x, material) - enthalpy, (root,), (jnp.ones_like(root),))
    freezing = root - value / slope
    thawed = t_thaw + (enthalpy - h_thaw) / material.c_thawed
    return jnp.where(enthalpy >= h_thaw, thawed, freezing)


def _param(value, name: str):
    if is_concrete(value):
        as_float_array(value, name)
    return jnp.asarray(value, dtype=jnp.float64)


class FreeWater(AbstractFreezeCurve):
    """Free water: all water freezes at 0 degC.

    **Arguments:**

    - `width`: optional smoothing width [K]; for `width > 0` the liquid fraction rises
      as a smoothstep from 0 at -width to 1 at 0 degC (differentiable everywhere). With
      `width = 0` (default) the phase change is sharp and T(H) is piecewise linear,
      inverted exactly.
    """

    width: float = eqx.field(static=True, default=0.0)

    def __check_init__(self):
        if not (np.isfinite(self.width) and self.width >= 0):
            raise ValueError(f"width must be >= 0 K, got {self.width!r}")

    def liquid_fraction(self, temperature, material):
        if self.width == 0:
            return jnp.where(temperature > 0, 1.0, 0.0)
        x = jnp.clip(1.0 + temperature / self.width, 0.0, 1.0)
        return x * x * (3.0 - 2.0 * x)

    def thaw_temperature(self, material):
        return jnp.zeros_like(material.water_content)

    def state(self, enthalpy, material):
        if self.width > 0:
            return super().state(enthalpy, material)
        latent = material.latent_heat
        frozen = enthalpy < 0
        thawed = enthalpy > latent
        temperature = jnp.where(
            frozen, enthalpy / material.c_frozen, jnp.where(thawed, (enthalpy - latent) / material.c_thawed, 0.0)
        )
        mushy = enthalpy / jnp.where(latent > 0, latent, 1.0)
        fraction = jnp.where(frozen, 0.0, jnp.where(thawed, 1.0, mushy))
        slope = jnp.where(frozen, 1.0 / material.c_frozen, jnp.where(thawed, 1.0 / material.c_thawed, 0.0))
        return temperature, fraction, slope


class PiecewiseLinear(AbstractFreezeCurve):
    """Liquid fraction falling linearly from 1 at 0 degC to 0 at `t_end` [degC] < 0.

    As in the ESA CCI permafrost product (Obu et al. 2019): t_end = -0.1 degC for sand,
    -1 degC for silt. May be a per-layer sequence.
    """

    t_end: Float[Array, "..."]

    def __init__(self, t_end):
        if is_concrete(t_end) and np.any(as_float_array(t_end, "t_end") >= 0):
            raise ValueError(f"t_end must be below 0 degC, got {t_end!r}")
        self.t_end = _param(t_end, "t_end")

    def liquid_fraction(self, temperature, material):
        return jnp.clip(1.0 - temperature / self.t_end, 0.0, 1.0)

    def thaw_temperature(self, material):
        return jnp.zeros_like(material.water_content)


class PowerLaw(AbstractFreezeCurve):
    """GIPL unfrozen-water curve: liquid water theta_u = a |T|^b [m3 m-3] below the
    temperature where it reaches the total water content (Nicolsky et al. 2007).

    **Arguments:** `a` [m3 m-3 K^-b] > 0 and `b` [1] < 0; scalars or per-layer sequences.
    """

    a: Float[Array, "..."]
    b: Float[Array, "..."]

    def __init__(self, a, b):
        if is_concrete(a, b):
            if np.any(as_float_array(a, "a") <= 0):
                raise ValueError(f"a must be positive, got {a!r}")
            if np.any(as_float_array(b, "b") >= 0):
                raise ValueError(f"b must be negative, got {b!r}")
        self.a = _param(a, "a")
        self.b = _param(b, "b")

    def thaw_temperature(self, material):
        ratio = jnp.where(material.water_content > 0, material.water_content / self.a, 1.0)
        return -(ratio ** (1.0 / self.b))

    def liquid_fraction(self, temperature, material):
        t_thaw = self.thaw_temperature(material)
        colder = temperature < t_thaw
        magnitude = jnp.where(colder, -temperature, -t_thaw)
        water = jnp.where(material.water_content > 0, material.water_content, 1.0)
        return jnp.where(colder, self.a * magnitude**self.b / water, 1.0)


class DallAmico(AbstractFreezeCurve):
    """Freezing of a van Genuchten soil by the generalised Clapeyron relation
    (Dall'Amico et al. 2011).

    The unfrozen soil's matric potential psi_0 [m] follows from its water content; the
    freezing point is depressed to T* = g T0 psi_0 / L_f [degC]; below T* the potential is
    psi = psi_0 + L_f (T - T*) / (g (T* + T0)) and the liquid water content
    theta_r + (theta_s - theta_r) [1 + (alpha |psi|)^n]^(-1 + 1/n).

    **Arguments:**

    - `alpha`: van Genuchten alpha [m-1] > 0.
    - `n`: van Genuchten n [1] > 1.
    - `residual_water_content`: theta_r [m3 m-3], below the total water content.

    theta_s is the layer's porosity (or the total water content where that is larger, as
    for excess ice). Each argument may be a per-layer sequence.
    """

    alpha: Float[Array, "..."]
    n: Float[Array, "..."]
    residual_water_content: Float[Array, "..."]

    def __init__(self, alpha, n, residual_water_content=0.0):
        if is_concrete(alpha, n, residual_water_content):
            if np.any(as_float_array(alpha, "alpha") <= 0):
                raise ValueError(f"alpha must be positive [m-1], got {alpha!r}")
            if np.any(as_float_array(n, "n") <= 1):
                raise ValueError(f"n must exceed 1, got {n!r}")
            if np.any(as_float_array(residual_water_content, "residual_water_content") < 0):
                raise ValueError(f"residual_water_content must be >= 0, got {residual_water_content!r}")
        self.alpha = _param(alpha, "alpha")
        self.n = _param(n, "n")
        self.residual_water_content = _param(residual_water_content, "residual_water_content")

    def _unfrozen_potential(self, material):
        m = 1.0 - 1.0 / self.n
        span = jnp.maximum(material.porosity - self.residual_water_content, 1e-12)
        saturation = jnp.clip((material.water_content - self.residual_water_content) / span, 1e-12, 1.0)
        return -_safe_power(saturation ** (-1.0 / m) - 1.0, 1.0 / self.n) / self.alpha

    def thaw_temperature(self, material):
        return const.GRAVITY * const.ZERO_CELSIUS * self._unfrozen_potential(material) / const.LATENT_HEAT_FUSION

    def liquid_fraction(self, temperature, material):
        m = 1.0 - 1.0 / self.n
        t_star = self.thaw_temperature(material)
        colder = temperature < t_star
        below = jnp.where(colder, temperature - t_star, 0.0)
        potential = self._unfrozen_potential(material) + const.LATENT_HEAT_FUSION * below / (
            const.GRAVITY * (t_star + const.ZERO_CELSIUS)
        )
        # Water beyond the pore space (excess ice) counts as saturated pore water, so the
        # curve stays continuous at T* when a fit pushes the water content past porosity.
        theta_s = jnp.maximum(material.porosity, material.water_content)
        theta_r = self.residual_water_content
        liquid = theta_r + (theta_s - theta_r) * (1.0 + _safe_power(-self.alpha * potential, self.n)) ** (-m)
        water = jnp.where(material.water_content > 0, material.water_content, 1.0)
        return jnp.where(colder, jnp.minimum(liquid / water, 1.0), 1.0)


TABLE_NODES = 96
TABLE_COLDEST = -100.0  # [degC]
TABLE_CLOSEST = 1e-5  # [K]: the node nearest below the thaw point


class Tabulated(AbstractFreezeCurve):
    """A freeze curve whose T(H) and f(H) on the freezing branch are read from a table: the
    form the native solver uses for smooth curves (`PowerLaw`, `DallAmico`), and the JAX
    replay of its derivatives with it, so both solve the same discrete problem.

    Each table (one per soil layer, `Tabulated.build`) holds `nodes` temperatures from
    `TABLE_COLDEST` (-100 degC) to the thaw point T*, closer together towards T*
    (T* - (T* + 100) u^3, u uniform from 1 to 0), with the curve's enthalpy H_k, dT/dH,
    liquid fraction f_k and df/dH there (derivatives from below T*). Between nodes T(H)
    and f(H) are cubic Hermite interpolants in H (C1); above H* = H(T*) the cell is thawed
    (T = T* + (H - H*) / c_t, f = 1); below the coldest node T continues linearly and f is
    held. The interpolation error is measured in docs/verification.md (tests assert it).
    `enthalpy`, `liquid_fraction` and `thaw_temperature` are the exact curve's.

    `table`: (layers, 5, nodes) rows H [J m-3], T [degC], dT/dH [K m3 J-1], f [1], df/dH
    [m3 J-1]; `cell_table`: each cell's table (int array); `curve`: the exact curve with
    per-cell parameters.
    """

    curve: AbstractFreezeCurve
    table: Float[Array, "layers 5 nodes"]
    cell_table: Array

    @classmethod
    def build(cls, curve: AbstractFreezeCurve, material: CellMaterial, cell_table, nodes: int = TABLE_NODES):
        """Tables for the cells of `material` with `curve` (per-cell parameters), one per
        distinct value of `cell_table` (int, (nz,)): the first cell of each stands for it."""
        cell_table = np.asarray(cell_table)
        _, first = np.unique(cell_table, return_index=True)
        order = np.zeros(cell_table.max() + 1, dtype=int)
        order[np.unique(cell_table)] = np.arange(first.size)

        def pick(leaf):
            return leaf[first] if jnp.ndim(leaf) == 1 else leaf

        material_ = jax.tree_util.tree_map(pick, material)
        curve_ = jax.tree_util.tree_map(pick, curve)
        t_star = curve_.thaw_temperature(material_)[:, None]
        # distances below T* growing geometrically from TABLE_CLOSEST to T* - TABLE_COLDEST
        span = t_star - TABLE_COLDEST
        ratio = (span / TABLE_CLOSEST) ** (1.0 / (nodes - 2))
        distance = TABLE_CLOSEST * ratio ** jnp.arange(nodes - 2, -1, -1.0)
        temperature = jnp.concatenate([t_star - distance, t_star], axis=1)
        below = temperature.at[:, -1].add(-1e-9 * TABLE_CLOSEST)  # derivatives from below T*
        expanded = jax.tree_util.tree_map(lambda leaf: leaf[:, None] if jnp.ndim(leaf) == 1 else leaf, material_)
        curve_b = jax.tree_util.tree_map(lambda leaf: leaf[:, None] if jnp.ndim(leaf) == 1 else leaf, curve_)
        ones = jnp.ones_like(below)
        enthalpy = curve_b.enthalpy(temperature, expanded)
        _, dh = jax.jvp(lambda t: curve_b.enthalpy(t, expanded), (below,), (ones,))
        fraction = curve_b.liquid_fraction(temperature, expanded)
        _, df = jax.jvp(lambda t: curve_b.liquid_fraction(t, expanded), (below,), (ones,))
        slope, fraction_slope = 1.0 / dh, df / dh

        # monotone interpolants (Fritsch & Carlson 1980): on an interval whose end slopes
        # exceed 3 times its secant in the (a, b) sense both are scaled down; a node takes
        # the smaller scale of its two intervals
        def monotone(values, slopes):
            secant = jnp.diff(values, axis=1) / jnp.diff(enthalpy, axis=1)
            safe = jnp.where(secant != 0, secant, 1.0)
            a, b = slopes[:, :-1] / safe, slopes[:, 1:] / safe
            norm = jnp.sqrt(a * a + b * b)
            scale = jnp.where((secant != 0) & (norm > 3.0), 3.0 / jnp.where(norm > 0, norm, 1.0), 1.0)
            scale = jnp.where(secant == 0, 0.0, scale)
            ones = jnp.ones_like(scale[:, :1])
            node = jnp.minimum(jnp.concatenate([ones, scale], axis=1), jnp.concatenate([scale, ones], axis=1))
            return slopes * node

        table = jnp.stack(
            [enthalpy, temperature, monotone(temperature, slope), fraction, monotone(fraction, fraction_slope)], axis=1
        )
        return cls(curve=curve, table=table, cell_table=jnp.asarray(order[cell_table]))

    def liquid_fraction(self, temperature, material):
        return self.curve.liquid_fraction(temperature, material)

    def thaw_temperature(self, material):
        return self.curve.thaw_temperature(material)

    def enthalpy(self, temperature, material):
        return self.curve.enthalpy(temperature, material)

    def state(self, enthalpy, material):
        table = self.table[self.cell_table]  # (nz, 5, K)
        h, t, s, f, g = (table[:, i] for i in range(5))
        k_nodes = h.shape[-1]
        x = enthalpy
        k = jnp.sum(h[:, 1 : k_nodes - 1] <= x[:, None], axis=-1)

        def at(a, j):
            return jnp.take_along_axis(a, j[:, None], axis=-1)[:, 0]

        h0, h1 = at(h, k), at(h, k + 1)
        d = h1 - h0
        u = (x - h0) / d
        u2 = u * u
        u3 = u2 * u
        h00, h10, h01, h11 = 2.0 * u3 - 3.0 * u2 + 1.0, u3 - 2.0 * u2 + u, -2.0 * u3 + 3.0 * u2, u3 - u2
        d00, d10, d01, d11 = 6.0 * u2 - 6.0 * u, 3.0 * u2 - 4.0 * u + 1.0, -6.0 * u2 + 6.0 * u, 3.0 * u2 - 2.0 * u
        t0, t1, s0, s1 = at(t, k), at(t, k + 1), at(s, k), at(s, k + 1)
        f0, f1, g0, g1 = at(f, k), at(f, k + 1), at(g, k), at(g, k + 1)
        temperature = h00 * t0 + h10 * d * s0 + h01 * t1 + h11 * d * s1
        slope = (d00 * t0 + d10 * d * s0 + d01 * t1 + d11 * d * s1) / d
        fraction = h00 * f0 + h10 * d * g0 + h01 * f1 + h11 * d * g1
        thawed = x >= h[:, -1]
        cold = x <= h[:, 0]
        ict = 1.0 / material.c_thawed
        temperature = jnp.where(
            thawed, t[:, -1] + (x - h[:, -1]) * ict, jnp.where(cold, t[:, 0] + s[:, 0] * (x - h[:, 0]), temperature)
        )
        slope = jnp.where(thawed, ict, jnp.where(cold, s[:, 0], slope))
        fraction = jnp.where(thawed, 1.0, jnp.where(cold, f[:, 0], fraction))
        return temperature, fraction, slope
