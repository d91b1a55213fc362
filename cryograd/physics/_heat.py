"""The implicit enthalpy scheme for 1-D heat conduction with phase change.

Finite volumes on a `Grid`; the unknown is the volumetric enthalpy H [J m-3] of each
cell. One backward-Euler step from H0 over dt solves, for every cell i,

    R_i(H) = h_i (H_i - H0_i) - dt (F_{i-1/2} - F_{i+1/2}) = 0        [J m-2]

with downward fluxes F = G (T_upper - T_lower) [W m-2] between cell centres, where the
conductances G [W m-2 K-1] use the harmonic mean of the cells' conductivities taken at
the start of the step (conductivity is lagged; heat capacity and latent heat are fully
implicit through T(H)). Newton's method on H solves it: the Jacobian
h_i delta_ij - dt dF/dT diag(dT/dH) is tridiagonal and column diagonally dominant, and in
cells at the melting point dT/dH = 0 simply turns the row into an enthalpy update, so
daily steps through a sharp freezing front need no special treatment. Because H is the
unknown and the fluxes telescope, the change of column enthalpy equals the boundary heat
input up to the Newton tolerance.

Derivatives of a step come from the implicit-function theorem (one tridiagonal solve per
tangent), not from differentiating the Newton iterations.
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._freeze_curves import AbstractFreezeCurve, FreeWater
from ._snow import Snow, SnowPack, carry_over
from ._soil import CellMaterial
from ._surface import AbstractSurface
from ._tridiagonal import solve_tridiagonal

NEWTON_MAX_ITERATIONS = 100
LINE_SEARCH_AFTER = 5
LINE_SEARCH_MAX_HALVINGS = 8
"""Backtracking on the residual norm from the sixth iteration on: a Newton step is halved (at most this many times)
until it reduces sum((R_i / (h_i c_i))^2) by the Armijo factor. Plain Newton can
two-cycle when neighbouring cells sit on the melting plateau of a sharp freeze curve."""
NEWTON_TOLERANCE = 1e-12
"""Newton stops when every |R_i| <= 1e-12 ((h_i max(c_f, c_t) + dt (G_{i-1/2} + G_{i+1/2}))
[J m-2 K-1] x 1 K + dt (|F_{i-1/2}| + |F_{i+1/2}|)): the residual is worth less than
1e-12 K on the Jacobian's diagonal in temperature units (sensible heat plus conduction
over the step), or 1e-12 of the heat that crossed the cell's faces. Both terms are
round-off floors: in a thin cell with a large conductance, dt G times the round-off of
T(H) alone exceeds a tolerance on sensible heat only (measured: a 1 mm thawed cell at
the GIPL station stalled at 1.04 x such a tolerance)."""
RELAXED_AFTER = 40
RELAXED_FACTOR = 100.0
"""After RELAXED_AFTER iterations a step is also accepted at RELAXED_FACTOR x the tolerance:
Newton can hop for ever between the two branches of a kink of T(H) when a cell's solution
lies within round-off of it (measured: R/tol cycling between 1.5 and 1.7 on a sharp-front
step). A step that meets neither bound by NEWTON_MAX_ITERATIONS still fails loudly."""


class Step(eqx.Module):
    """What one step [t0, t1] needs besides the unknown H (internal).

    `boundary` is the surface's boundary value for the step (temperature [degC] or flux
    [W m-2]), evaluated once rather than in every Newton iteration; `start` is the
    enthalpy the step starts from [J m-3] (the previous state, with snow cells remapped
    to this step's pack), `thickness` the cells' thickness [m] (0 for an absent
    snowpack), `weight` the thickness in the residual (1 m for absent snow cells,
    whose residual then pins H to `start`), `conductance` the lagged face conductances
    [W m-2 K-1] and `coupled` 1.0 or 0.0: whether the face below the snow cells connects
    them to the soil (0.0 when there is no snow and the soil faces the air directly).
    """

    boundary: Array
    dt: Array
    start: Float[Array, " n"]
    thickness: Float[Array, " n"]
    weight: Float[Array, " n"]
    conductance: Float[Array, " n1"]
    pack: SnowPack | None
    coupled: Float[Array, ""] | None


class HeatProblem(eqx.Module):
    """A soil column with its forcing, ready to be stepped (internal).

    Arrays have the cell axis first; `forcing` holds series of shape (nt,) [forcing units]
    that are piecewise constant over steps of `forcing_dt` [s]. With a `Snow` surface the
    state holds the snow cells first (top down), then the soil cells.
    """

    thickness: Float[Array, " nz"]
    material: CellMaterial
    freeze_curve: AbstractFreezeCurve
    surface: AbstractSurface
    geothermal_flux: Float[Array, ""]
    bottom_temperature: Float[Array, ""] | None
    forcing: dict
    forcing_dt: float = eqx.field(static=True)

    @property
    def n_snow(self) -> int:
        return self.surface.n_cells if isinstance(self.surface, Snow) else 0

    def forcing_index(self, t0, t1):
        """Index of the forcing interval that holds the middle of the step [t0, t1]."""
        steps = jnp.floor(0.5 * (t0 + t1) / self.forcing_dt).astype(jnp.int32)
        n = jax.tree_util.tree_leaves(self.forcing)[0].shape[0]
        return jnp.clip(steps, 0, n - 1)

    def step_forcing(self, index) -> dict:
        return {name: series[index] for name, series in self.forcing.items()}

    def snowpack(self, index) -> SnowPack:
        return self.surface.snowpack(self.step_forcing(index))

    def initial_snow(self):
        """Snow-cell enthalpies [J m-3] at the start: fresh snow of the first step's pack."""
        if self.n_snow == 0:
            return jnp.zeros(0)
        pack = self.snowpack(0)
        return jnp.broadcast_to(pack.fresh_enthalpy, (self.n_snow,))

    def state(self, enthalpy, pack: SnowPack | None = None):
        """(temperature [degC], liquid fraction [1], dT/dH [K m3 J-1]) of all cells."""
        if self.n_snow == 0:
            return self.freeze_curve.state(enthalpy, self.material)
        snow = FreeWater().state(enthalpy[: self.n_snow], pack.material)
        soil = self.freeze_curve.state(enthalpy[self.n_snow :], self.material)
        return tuple(jnp.concatenate([a, b]) for a, b in zip(snow, soil, strict=True))

    def conductances(self, liquid_fraction, pack: SnowPack | None = None):
        """Face conductances G [W m-2 K-1]: (n + 1,), surface and bottom included."""
        ns = self.n_snow
        k = self.material.conductivity(liquid_fraction[ns:])
        resistance = 0.5 * self.thickness / k  # centre-to-edge resistance of each cell
        interior = 1.0 / (resistance[:-1] + resistance[1:])
        bottom = 1.0 / resistance[-1:] if self.bottom_temperature is not None else jnp.zeros(1)
        if ns == 0:
            top = 1.0 / resistance[:1] if self.surface.fixed_temperature else jnp.zeros(1)
            return jnp.concatenate([top, interior, bottom])
        present = pack.present
        snow = 0.5 * pack.thickness / pack.material.conductivity(liquid_fraction[:ns])
        snow = jnp.where(present, snow, 1.0)  # absent cells: any finite value, masked below
        top = jnp.where(present, 1.0 / snow[:1], 0.0)
        within = jnp.where(present, 1.0 / (snow[:-1] + snow[1:]), 0.0)
        link = jnp.where(present, 1.0 / (snow[-1:] + resistance[:1]), 1.0 / resistance[:1])
        return jnp.concatenate([top, within, link, interior, bottom])

    def prepare(self, previous, t0, t1) -> Step:
        """The step's start state, geometry and lagged conductances from H at t0."""
        dt = t1 - t0
        index = self.forcing_index(t0, t1)
        if self.n_snow == 0:
            pack, coupled, start = None, None, previous
            thickness = weight = self.thickness
        else:
            pack = self.snowpack(index)
            old = self.snowpack(self.forcing_index(2 * t0 - t1, t0))
            snow = carry_over(previous[: self.n_snow], old, pack)
            start = jnp.concatenate([snow, previous[self.n_snow :]])
            thickness = jnp.concatenate([pack.thickness, self.thickness])
            weight = jnp.concatenate([jnp.where(pack.present, pack.thickness, 1.0), self.thickness])
            coupled = pack.present.astype(jnp.float64)
        _, fraction, _ = self.state(start, pack)
        boundary = self.surface.boundary_value(self.step_forcing(index))
        return Step(boundary, dt, start, thickness, weight, self.conductances(fraction, pack), pack, coupled)

    def fluxes(self, temperature, step: Step):
        """Downward heat fluxes through the n + 1 faces [W m-2]; face i is the top of cell i."""
        value = step.boundary
        conductance = step.conductance
        above = jnp.concatenate([jnp.reshape(value, (1,)), temperature[:-1]])
        if self.n_snow:  # no snow: the top soil cell faces the air
            ns = self.n_snow
            above = above.at[ns].set(jnp.where(step.pack.present, temperature[ns - 1], value))
        faces = conductance[:-1] * (above - temperature)
        if not self.surface.fixed_temperature:
            faces = faces.at[0].set(value)
        if self.bottom_temperature is None:
            bottom = -self.geothermal_flux
        else:
            bottom = conductance[-1] * (temperature[-1] - self.bottom_temperature)
        return jnp.concatenate([faces, bottom[None]])

    def outgoing(self, flux, step: Step):
        """Flux leaving each cell through its bottom face [W m-2] (not the snow cells' when
        the pack is absent: that face then carries air-to-soil heat)."""
        out = flux[1:]
        if self.n_snow:
            out = out.at[self.n_snow - 1].multiply(step.coupled)
        return out

    def surface_input(self, flux, step: Step):
        """Conductive heat into the column from the air [W m-2]."""
        if self.n_snow == 0:
            return flux[0]
        return flux[0] + (1.0 - step.coupled) * flux[self.n_snow]

    def residual(self, enthalpy, temperature, step: Step):
        flux = self.fluxes(temperature, step)
        return step.weight * (enthalpy - step.start) - step.dt * (flux[:-1] - self.outgoing(flux, step))

    def capacity(self, step: Step):
        """Sensible heat of 1 K in each cell [J m-2 K-1] (Newton's scale)."""
        c = jnp.maximum(self.material.c_frozen, self.material.c_thawed)
        if self.n_snow:
            snow = step.pack.material
            c = jnp.concatenate([jnp.maximum(snow.c_frozen, snow.c_thawed), c])
        return step.weight * c

    def tolerance(self, temperature, step: Step):
        flux = self.fluxes(temperature, step)
        exchanged = jnp.abs(flux[:-1]) + jnp.abs(self.outgoing(flux, step))
        conduction = step.conductance[:-1] + self.outgoing(step.conductance, step)
        return NEWTON_TOLERANCE * (self.capacity(step) + step.dt * (conduction + exchanged))

    def jacobian(self, slope, step: Step):
        """Tridiagonal dR/dH as (lower, diagonal, upper)."""
        conductance, dt = step.conductance, step.dt
        coupled = conductance  # conductance of each face to the cell above it
        if self.n_snow:
            coupled = coupled.at[self.n_snow].multiply(step.coupled)
        diagonal = step.weight + dt * (conductance[:-1] + coupled[1:]) * slope
        lower = jnp.concatenate([jnp.zeros(1), -dt * coupled[1:-1] * slope[:-1]])
        upper = jnp.concatenate([-dt * coupled[1:-1] * slope[1:], jnp.zeros(1)])
        return lower, diagonal, upper

    def newton(self, previous, t0, t1):
        """Solve one step by Newton's method; returns (H, converged, iterations)."""
        step = self.prepare(previous, t0, t1)
        scale = self.capacity(step)

        def evaluate(enthalpy, iteration):
            temperature, _, slope = self.state(enthalpy, step.pack)
            residual = self.residual(enthalpy, temperature, step)
            factor = jnp.where(iteration >= RELAXED_AFTER, RELAXED_FACTOR, 1.0)
            converged = jnp.all(jnp.abs(residual) <= factor * self.tolerance(temperature, step))
            return slope, residual, jnp.sum((residual / scale) ** 2), converged

        def body(carry):
            enthalpy, slope, residual, merit, _, iteration = carry
            update = solve_tridiagonal(*self.jacobian(slope, step), -residual)

            def shorten(search):
                length, *_ = search
                length = 0.5 * length
                return length, *evaluate(enthalpy + length * update, iteration + 1)

            def insufficient(search):
                length, _, _, trial_merit, _ = search
                searching = iteration >= LINE_SEARCH_AFTER
                too_long = trial_merit > (1.0 - 1e-4 * length) * merit
                return searching & too_long & (length > 0.5**LINE_SEARCH_MAX_HALVINGS)

            length, slope, residual, merit, converged = jax.lax.while_loop(
                insufficient, shorten, (1.0, *evaluate(enthalpy + update, iteration + 1))
            )
            return enthalpy + length * update, slope, residual, merit, converged, iteration + 1

        def cond(carry):
            *_, converged, iteration = carry
            return ~converged & (iteration < NEWTON_MAX_ITERATIONS)

        carry = jax.lax.while_loop(cond, body, (step.start, *evaluate(step.start, 0), 0))
        enthalpy, *_, converged, iterations = carry
        return enthalpy, converged, iterations


@eqx.filter_custom_jvp
def implicit_step(problem: HeatProblem, previous, t0, t1):
    """H at t1 [J m-3] from H at t0, and (converged, iterations) as floats."""
    enthalpy, converged, iterations = problem.newton(previous, t0, t1)
    return enthalpy, jnp.stack([converged.astype(jnp.float64), iterations.astype(jnp.float64)])


@implicit_step.def_jvp
def _implicit_step_jvp(primals, tangents):
    problem, previous, t0, t1 = primals
    tangent_problem, tangent_previous, _, _ = tangents
    enthalpy, info = implicit_step(problem, previous, t0, t1)

    def residual(problem, previous):
        step = problem.prepare(previous, t0, t1)
        temperature, _, slope = problem.state(enthalpy, step.pack)
        return problem.residual(enthalpy, temperature, step), (slope, step)

    dynamic_problem, static_problem = eqx.partition(problem, eqx.is_inexact_array)
    leaves, treedef = jax.tree_util.tree_flatten(problem)
    tangent_leaves = [None] * len(leaves) if tangent_problem is None else treedef.flatten_up_to(tangent_problem)
    tangent_problem = treedef.unflatten(
        [
            (jnp.zeros_like(leaf) if tangent is None else tangent) if eqx.is_inexact_array(leaf) else None
            for leaf, tangent in zip(leaves, tangent_leaves, strict=True)
        ]
    )
    tangent_previous = jnp.zeros_like(previous) if tangent_previous is None else tangent_previous
    _, residual_tangent, (slope, step) = jax.jvp(
        lambda p, h: residual(eqx.combine(p, static_problem), h),
        (dynamic_problem, previous),
        (tangent_problem, tangent_previous),
        has_aux=True,
    )
    jacobian = problem.jacobian(slope, step)
    tangent = jax.lax.custom_linear_solve(
        lambda x: _tridiagonal_matvec(*jacobian, x),
        -residual_tangent,
        solve=lambda _, b: solve_tridiagonal(*jacobian, b),
        transpose_solve=lambda _, b: solve_tridiagonal(*_transpose(*jacobian), b),
    )
    return (enthalpy, info), (tangent, jnp.zeros_like(info))


def _tridiagonal_matvec(lower, diagonal, upper, x):
    shifted_down = jnp.concatenate([jnp.zeros_like(x[:1]), x[:-1]])
    shifted_up = jnp.concatenate([x[1:], jnp.zeros_like(x[:1])])
    return lower * shifted_down + diagonal * x + upper * shifted_up


def _transpose(lower, diagonal, upper):
    zero = jnp.zeros_like(lower[:1])
    return jnp.concatenate([zero, upper[:-1]]), diagonal, jnp.concatenate([lower[1:], zero])


class ImplicitEnthalpyEuler(diffrax.AbstractSolver):
    """Backward Euler in enthalpy with a Newton solve per step, for `diffeqsolve`.

    The state is `(H, energy)`: H the cell enthalpies [J m-3] and energy the cumulative
    heat [J m-2] that entered through the surface, through the bottom, and with snow mass
    (`Snow` surfaces). `args` must be
    the `HeatProblem`; the term is only used for its vector field (dense output and
    diagnostics). Use with `diffrax.ConstantStepSize()`. A step whose Newton iteration
    does not converge returns `RESULTS.nonlinear_max_steps_reached`, which
    `diffeqsolve(..., throw=True)` raises.
    """

    term_structure = diffrax.AbstractTerm
    interpolation_cls = diffrax.LocalLinearInterpolation

    def order(self, terms):
        return 1

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        problem: HeatProblem = args
        previous, energy = y0
        enthalpy, info = implicit_step(problem, previous, t0, t1)
        y1 = (enthalpy, energy + boundary_heat(problem, enthalpy, previous, t0, t1))
        result = diffrax.RESULTS.where(
            info[0] > 0, diffrax.RESULTS.successful, diffrax.RESULTS.nonlinear_max_steps_reached
        )
        return y1, None, dict(y0=y0, y1=y1), None, result

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


def boundary_heat(problem: HeatProblem, enthalpy, previous, t0, t1):
    """Heat that entered the column during a step [J m-2]: (through the surface, through
    the bottom, with snow mass that arrived or left)."""
    step = problem.prepare(previous, t0, t1)
    temperature, _, _ = problem.state(enthalpy, step.pack)
    flux = problem.fluxes(temperature, step)
    ns = problem.n_snow
    arrived = jnp.sum(step.thickness[:ns] * step.start[:ns])
    advected = arrived - jnp.sum(previous_snow_thickness(problem, t0, t1) * previous[:ns])
    return jnp.stack([step.dt * problem.surface_input(flux, step), -step.dt * flux[-1], advected])


def previous_snow_thickness(problem: HeatProblem, t0, t1):
    """Snow-cell thicknesses [m] in the step before [t0, t1]."""
    if problem.n_snow == 0:
        return jnp.zeros(0)
    return problem.snowpack(problem.forcing_index(2 * t0 - t1, t0)).thickness


def explicit_tendency(t, y, problem: HeatProblem):
    """d(H, energy)/dt at the current state [J m-3 s-1, W m-2] (the diffrax term)."""
    enthalpy, _ = y
    step = problem.prepare(enthalpy, t, t)
    temperature, _, _ = problem.state(enthalpy, step.pack)
    flux = problem.fluxes(temperature, step)
    tendency = (flux[:-1] - problem.outgoing(flux, step)) / step.weight
    return tendency, jnp.stack([problem.surface_input(flux, step), -flux[-1], jnp.zeros(())])
