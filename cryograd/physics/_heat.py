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

from ._freeze_curves import AbstractFreezeCurve
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
"""Newton stops when every |R_i| <= 1e-12 (h_i max(c_f, c_t) [J m-2 K-1] x 1 K
+ dt (|F_{i-1/2}| + |F_{i+1/2}|)): an energy error below 1e-12 K of sensible heat, or
1e-12 of the heat that crossed the cell's faces (the round-off floor of large fluxes)."""
RELAXED_AFTER = 40
RELAXED_FACTOR = 100.0
"""After RELAXED_AFTER iterations a step is also accepted at RELAXED_FACTOR x the tolerance:
Newton can hop for ever between the two branches of a kink of T(H) when a cell's solution
lies within round-off of it (measured: R/tol cycling between 1.5 and 1.7 on a sharp-front
step). A step that meets neither bound by NEWTON_MAX_ITERATIONS still fails loudly."""


class HeatProblem(eqx.Module):
    """A soil column with its forcing, ready to be stepped (internal).

    Arrays have the cell axis first; `forcing` holds series of shape (nt,) [forcing units]
    that are piecewise constant over steps of `forcing_dt` [s].
    """

    thickness: Float[Array, " nz"]
    material: CellMaterial
    freeze_curve: AbstractFreezeCurve
    surface: AbstractSurface
    geothermal_flux: Float[Array, ""]
    bottom_temperature: Float[Array, ""] | None
    forcing: dict
    forcing_dt: float = eqx.field(static=True)

    def forcing_index(self, t0, t1):
        """Index of the forcing interval that holds the middle of the step [t0, t1]."""
        steps = jnp.floor(0.5 * (t0 + t1) / self.forcing_dt).astype(jnp.int32)
        n = jax.tree_util.tree_leaves(self.forcing)[0].shape[0]
        return jnp.clip(steps, 0, n - 1)

    def state(self, enthalpy):
        return self.freeze_curve.state(enthalpy, self.material)

    def conductances(self, liquid_fraction):
        """Interface conductances G [W m-2 K-1]: (nz + 1,), surface and bottom included."""
        k = self.material.conductivity(liquid_fraction)
        resistance = 0.5 * self.thickness / k  # centre-to-edge resistance of each cell
        interior = 1.0 / (resistance[:-1] + resistance[1:])
        top = 1.0 / resistance[:1] if self.surface.fixed_temperature else jnp.zeros(1)
        bottom = 1.0 / resistance[-1:] if self.bottom_temperature is not None else jnp.zeros(1)
        return jnp.concatenate([top, interior, bottom])

    def lagged_conductances(self, previous):
        """Conductances [W m-2 K-1] of a step, from the liquid fractions at its start (`previous` H)."""
        _, fraction, _ = self.state(previous)
        return self.conductances(fraction)

    def fluxes(self, temperature, conductance, index):
        """Downward heat fluxes through the nz + 1 cell edges [W m-2]."""
        step_forcing = {name: series[index] for name, series in self.forcing.items()}
        value = self.surface.boundary_value(step_forcing)
        interior = conductance[1:-1] * (temperature[:-1] - temperature[1:])
        if self.surface.fixed_temperature:
            top = conductance[0] * (value - temperature[0])
        else:
            top = value
        if self.bottom_temperature is None:
            bottom = -self.geothermal_flux
        else:
            bottom = conductance[-1] * (temperature[-1] - self.bottom_temperature)
        return jnp.concatenate([top[None], interior, bottom[None]])

    def residual(self, enthalpy, temperature, previous, conductance, index, dt):
        flux = self.fluxes(temperature, conductance, index)
        return self.thickness * (enthalpy - previous) - dt * (flux[:-1] - flux[1:])

    def tolerance(self, temperature, conductance, index, dt):
        exchanged = jnp.abs(self.fluxes(temperature, conductance, index))
        capacity = self.thickness * jnp.maximum(self.material.c_frozen, self.material.c_thawed)
        return NEWTON_TOLERANCE * (capacity + dt * (exchanged[:-1] + exchanged[1:]))

    def jacobian(self, slope, conductance, dt):
        """Tridiagonal dR/dH as (lower, diagonal, upper)."""
        above, below = conductance[:-1], conductance[1:]
        diagonal = self.thickness + dt * (above + below) * slope
        lower = jnp.concatenate([jnp.zeros(1), -dt * above[1:] * slope[:-1]])
        upper = jnp.concatenate([-dt * below[:-1] * slope[1:], jnp.zeros(1)])
        return lower, diagonal, upper

    def newton(self, previous, t0, t1):
        """Solve one step by Newton's method; returns (H, converged, iterations)."""
        dt = t1 - t0
        index = self.forcing_index(t0, t1)
        conductance = self.lagged_conductances(previous)

        scale = self.thickness * jnp.maximum(self.material.c_frozen, self.material.c_thawed)

        def evaluate(enthalpy, iteration):
            temperature, _, slope = self.state(enthalpy)
            residual = self.residual(enthalpy, temperature, previous, conductance, index, dt)
            factor = jnp.where(iteration >= RELAXED_AFTER, RELAXED_FACTOR, 1.0)
            converged = jnp.all(jnp.abs(residual) <= factor * self.tolerance(temperature, conductance, index, dt))
            return slope, residual, jnp.sum((residual / scale) ** 2), converged

        def body(carry):
            enthalpy, slope, residual, merit, _, iteration = carry
            update = solve_tridiagonal(*self.jacobian(slope, conductance, dt), -residual)

            def shorten(search):
                step, *_ = search
                step = 0.5 * step
                return step, *evaluate(enthalpy + step * update, iteration + 1)

            def insufficient(search):
                step, _, _, trial_merit, _ = search
                searching = iteration >= LINE_SEARCH_AFTER
                too_long = trial_merit > (1.0 - 1e-4 * step) * merit
                return searching & too_long & (step > 0.5**LINE_SEARCH_MAX_HALVINGS)

            step, slope, residual, merit, converged = jax.lax.while_loop(
                insufficient, shorten, (1.0, *evaluate(enthalpy + update, iteration + 1))
            )
            return enthalpy + step * update, slope, residual, merit, converged, iteration + 1

        def cond(carry):
            *_, converged, iteration = carry
            return ~converged & (iteration < NEWTON_MAX_ITERATIONS)

        carry = jax.lax.while_loop(cond, body, (previous, *evaluate(previous, 0), 0))
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
    dt = t1 - t0
    index = problem.forcing_index(t0, t1)

    def residual(problem, previous):
        conductance = problem.lagged_conductances(previous)
        temperature, _, slope = problem.state(enthalpy)
        return problem.residual(enthalpy, temperature, previous, conductance, index, dt), (slope, conductance)

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
    _, residual_tangent, (slope, conductance) = jax.jvp(
        lambda p, h: residual(eqx.combine(p, static_problem), h),
        (dynamic_problem, previous),
        (tangent_problem, tangent_previous),
        has_aux=True,
    )
    jacobian = problem.jacobian(slope, conductance, dt)
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
    heat [J m-2] that entered through the surface and through the bottom. `args` must be
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
        energy = energy + (t1 - t0) * boundary_fluxes(problem, enthalpy, previous, t0, t1)
        y1 = (enthalpy, energy)
        result = diffrax.RESULTS.where(
            info[0] > 0, diffrax.RESULTS.successful, diffrax.RESULTS.nonlinear_max_steps_reached
        )
        return y1, None, dict(y0=y0, y1=y1), None, result

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


def boundary_fluxes(problem: HeatProblem, enthalpy, previous, t0, t1):
    """(surface flux into the ground, bottom flux into the column) [W m-2] of a step."""
    conductance = problem.lagged_conductances(previous)
    temperature, _, _ = problem.state(enthalpy)
    flux = problem.fluxes(temperature, conductance, problem.forcing_index(t0, t1))
    return jnp.stack([flux[0], -flux[-1]])


def explicit_tendency(t, y, problem: HeatProblem):
    """d(H, energy)/dt at the current state [J m-3 s-1, W m-2] (the diffrax term)."""
    enthalpy, _ = y
    temperature, fraction, _ = problem.state(enthalpy)
    index = problem.forcing_index(t, t)
    flux = problem.fluxes(temperature, problem.conductances(fraction), index)
    return (flux[:-1] - flux[1:]) / problem.thickness, jnp.stack([flux[0], -flux[-1]])
