"""The implicit enthalpy schemes for 1-D heat conduction with phase change.

Finite volumes on a `Grid`; the unknown is the volumetric enthalpy H [J m-3] of each
cell. One step from H_n over dt solves, for every cell i,

    R_i(H) = h_i (H_i - S_i) - beta dt (F_{i-1/2} - F_{i+1/2}) = 0        [J m-2]

with downward fluxes F = G (T_upper - T_lower) [W m-2] between cell centres, where the
conductances G [W m-2 K-1] are harmonic means of the cells' conductivities. Heat
capacity and latent heat are implicit through T(H). Conductivity (`conductivity`) is
either `"lagged"` (default: taken at the start of the step, a first-order error that puts
a thaw front ahead: on the two-phase Stefan problem with daily steps, 2.4 cm after the
first day) or `"predicted"`: the step is solved twice, first with the start's
conductivities, then with those of that first solution. (Conductivities of the new state
itself, iterated inside Newton, were tried: with the conductivity terms left out of the
Jacobian Newton two-cycles, with them it hops across the end of melting, on a 2 cm
organic top cell thawing under seasonal forcing; each pass here is the robust lagged
solve.)

Time schemes (`time_scheme`):

- `"euler"` (default): backward Euler, S = H_n and beta = 1 (first order).
- `"bdf2"`: the second-order backward differentiation formula,
  H_{n+1} - H_n = (H_n - H_{n-1}) / 3 + (2/3) dt D(T_{n+1}), i.e. S = H_n + M_n / (3 h)
  and beta = 2/3, where M_n = h (H_n - H_{n-1}) [J m-2] is the conductive increment of
  the previous step (the first step is backward Euler). L-stable, so daily steps through
  a sharp freezing front do not ring. Summed over the cells the fluxes telescope, so the
  column's enthalpy change is the step's boundary input beta dt (F_top - F_bottom) plus a
  third of the previous step's input: energy is closed exactly with that accounting.
  With `Snow`, the memory of snow cells is shared equally among the new cells on days the
  pack's mass changes (its total kept).

Each step is solved by Newton's method on H to round-off. The Jacobian
h_i delta_ij - beta dt dF/dT diag(dT/dH) is tridiagonal and column diagonally dominant; in cells at the
melting point dT/dH = 0 turns the row into an enthalpy update. Derivatives of a step come
from the implicit-function theorem (one tridiagonal solve per tangent), not from
differentiating the iterations.
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


TIME_SCHEMES = ("bdf2", "euler")
CONDUCTIVITIES = ("lagged", "predicted")


class Step(eqx.Module):
    """What one step [t0, t1] needs besides the unknown H (internal).

    `boundary` is the surface's boundary value for the step (temperature [degC] or flux
    [W m-2]), evaluated once rather than in every iteration; `origin` is the enthalpy the
    step starts from [J m-3] (the previous state, with snow cells remapped to this step's
    pack) and `start` the S of the residual (`origin` plus the BDF2 memory term); `dt` is
    beta times the step [s]; `memory_weight` the coefficient of the previous step's
    conductive increment (1/3 for BDF2 after the first step, else 0); `thickness` the
    cells' thickness [m] (0 for an absent snowpack), `weight` the thickness in the
    residual (1 m for absent snow cells, whose residual then pins H to `start`),
    `conductance` the step's face conductances [W m-2 K-1] and `coupled` 1.0 or 0.0:
    whether the face below the snow cells connects them to the soil (0.0 when there is no
    snow and the soil faces the air directly).
    """

    boundary: Array
    dt: Array
    origin: Float[Array, " n"]
    start: Float[Array, " n"]
    memory_weight: Array
    thickness: Float[Array, " n"]
    weight: Float[Array, " n"]
    conductance: Float[Array, " n1"] | None
    pack: SnowPack | None
    coupled: Float[Array, ""] | None


class HeatProblem(eqx.Module):
    """A soil column with its forcing, ready to be stepped (internal).

    Arrays have the cell axis first; `forcing` holds series of shape (nt,) [forcing units]
    that are piecewise constant over steps of `forcing_dt` [s]. With a `Snow` surface the
    state holds the snow cells first (top down), then the soil cells. `time_scheme`
    (`"euler"` or `"bdf2"`) and `conductivity` (`"lagged"` or `"predicted"`) choose the
    scheme (module docstring).
    """

    thickness: Float[Array, " nz"]
    material: CellMaterial
    freeze_curve: AbstractFreezeCurve
    surface: AbstractSurface
    geothermal_flux: Float[Array, ""]
    bottom_temperature: Float[Array, ""] | None
    forcing: dict
    forcing_dt: float = eqx.field(static=True)
    time_scheme: str = eqx.field(static=True, default="euler")
    conductivity: str = eqx.field(static=True, default="lagged")

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

    def prepare(self, previous, memory, started, t0, t1, predicted=None) -> Step:
        """The step's start state, memory, geometry and conductances from the state at t0:
        `previous` H [J m-3], `memory` the previous step's conductive increment [J m-2],
        `started` 1.0 after the first step (0.0 before it), and `predicted` the enthalpies
        [J m-3] whose conductivities the step uses (None: those of the start)."""
        dt = t1 - t0
        index = self.forcing_index(t0, t1)
        if self.n_snow == 0:
            pack, coupled, start = None, None, previous
            thickness = weight = self.thickness
        else:
            ns = self.n_snow
            pack = self.snowpack(index)
            old = self.snowpack(self.forcing_index(2 * t0 - t1, t0))
            snow = carry_over(previous[:ns], old, pack)
            start = jnp.concatenate([snow, previous[ns:]])
            thickness = jnp.concatenate([pack.thickness, self.thickness])
            weight = jnp.concatenate([jnp.where(pack.present, pack.thickness, 1.0), self.thickness])
            coupled = pack.present.astype(jnp.float64)
            if self.time_scheme == "bdf2":
                memory = remap_snow_memory(memory, ns, pack.present, pack.mass == old.mass)
        boundary = self.surface.boundary_value(self.step_forcing(index))
        _, fraction, _ = self.state(start if predicted is None else predicted, pack)
        if self.time_scheme == "bdf2":
            beta = jnp.where(started > 0, 2.0 / 3.0, 1.0)
            memory_weight = jnp.where(started > 0, 1.0 / 3.0, 0.0)
            history = start + memory_weight * memory / weight
        else:  # no history to carry: backward Euler pays nothing for BDF2's bookkeeping
            beta, memory_weight, history = jnp.ones(()), jnp.zeros(()), start
        return Step(
            boundary=boundary,
            dt=beta * dt,
            origin=start,
            start=history,
            memory_weight=memory_weight,
            thickness=thickness,
            weight=weight,
            conductance=self.conductances(fraction, pack),
            pack=pack,
            coupled=coupled,
        )

    def fluxes(self, temperature, conductance, step: Step):
        """Downward heat fluxes through the n + 1 faces [W m-2] from cell temperatures [degC]
        and face conductances [W m-2 K-1]; face i is the top of cell i."""
        value = step.boundary
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

    def face_fluxes(self, enthalpy, step: Step):
        """Downward heat fluxes through the n + 1 faces [W m-2] at cell enthalpies [J m-3]."""
        temperature, _, _ = self.state(enthalpy, step.pack)
        return self.fluxes(temperature, step.conductance, step)

    def residual(self, enthalpy, step: Step, flux=None):
        """R(H) [J m-2] of every cell (module docstring); `flux` the face fluxes if known."""
        flux = self.face_fluxes(enthalpy, step) if flux is None else flux
        return step.weight * (enthalpy - step.start) - step.dt * (flux[:-1] - self.outgoing(flux, step))

    def jacobian(self, slope, step: Step):
        """Tridiagonal dR/dH as (lower, diagonal, upper) from dT/dH [K m3 J-1]."""
        conductance, dt = step.conductance, step.dt
        coupled = conductance  # conductance of each face to the cell above it
        if self.n_snow:
            coupled = coupled.at[self.n_snow].multiply(step.coupled)
        diagonal = step.weight + dt * (conductance[:-1] + coupled[1:]) * slope
        lower = jnp.concatenate([jnp.zeros(1), -dt * coupled[1:-1] * slope[:-1]])
        upper = jnp.concatenate([-dt * coupled[1:-1] * slope[1:], jnp.zeros(1)])
        return lower, diagonal, upper

    def capacity(self, step: Step):
        """Sensible heat of 1 K in each cell [J m-2 K-1] (Newton's scale)."""
        c = jnp.maximum(self.material.c_frozen, self.material.c_thawed)
        if self.n_snow:
            snow = step.pack.material
            c = jnp.concatenate([jnp.maximum(snow.c_frozen, snow.c_thawed), c])
        return step.weight * c

    def tolerance(self, flux, step: Step):
        """Per-cell bound on |R| [J m-2] (`NEWTON_TOLERANCE`) from the iterate's face fluxes
        [W m-2]."""
        exchanged = jnp.abs(flux[:-1]) + jnp.abs(self.outgoing(flux, step))
        conduction = step.conductance[:-1] + self.outgoing(step.conductance, step)
        return NEWTON_TOLERANCE * (self.capacity(step) + step.dt * (conduction + exchanged))

    def newton(self, step: Step):
        """Solve one step by Newton's method; returns (H, converged, iterations)."""
        scale = self.capacity(step)

        def evaluate(enthalpy, iteration):
            temperature, _, slope = self.state(enthalpy, step.pack)
            flux = self.fluxes(temperature, step.conductance, step)
            residual = self.residual(enthalpy, step, flux=flux)
            factor = jnp.where(iteration >= RELAXED_AFTER, RELAXED_FACTOR, 1.0)
            converged = jnp.all(jnp.abs(residual) <= factor * self.tolerance(flux, step))
            jacobian = self.jacobian(slope, step)
            return jacobian, residual, jnp.sum((residual / scale) ** 2), converged

        def body(carry):
            enthalpy, jacobian, residual, merit, _, iteration = carry
            update = solve_tridiagonal(*jacobian, -residual)

            def shorten(search):
                length, *_ = search
                length = 0.5 * length
                return length, *evaluate(enthalpy + length * update, iteration + 1)

            def insufficient(search):
                length, _, _, trial_merit, _ = search
                searching = iteration >= LINE_SEARCH_AFTER
                too_long = trial_merit > (1.0 - 1e-4 * length) * merit
                return searching & too_long & (length > 0.5**LINE_SEARCH_MAX_HALVINGS)

            length, jacobian, residual, merit, converged = jax.lax.while_loop(
                insufficient, shorten, (1.0, *evaluate(enthalpy + update, iteration + 1))
            )
            return enthalpy + length * update, jacobian, residual, merit, converged, iteration + 1

        def cond(carry):
            *_, converged, iteration = carry
            return ~converged & (iteration < NEWTON_MAX_ITERATIONS)

        carry = jax.lax.while_loop(cond, body, (step.start, *evaluate(step.start, 0), 0))
        enthalpy, *_, converged, iterations = carry
        return enthalpy, converged, iterations


def remap_snow_memory(memory, n_snow: int, present, unchanged):
    """The BDF2 memory [J m-2] of this step's snow cells: kept where the pack's mass did not
    change, else the snow cells' total shared equally among the new cells, or given to the
    top soil cell when there is no pack. The total is kept, so the energy accounting stays
    exact; only the memory's distribution changes on days the pack changes."""
    total = jnp.sum(memory[:n_snow])
    shared = jnp.where(present, total / n_snow, 0.0) * jnp.ones(n_snow)
    snow = jnp.where(present & unchanged, memory[:n_snow], shared)
    soil = memory[n_snow:].at[0].add(jnp.where(present, 0.0, total))
    return jnp.concatenate([snow, soil])


@eqx.filter_custom_jvp
def implicit_step(problem: HeatProblem, previous, memory, started, t0, t1, predicted):
    """H at t1 [J m-3] by Newton's method, and (converged, iterations) as floats;
    `predicted` as for `HeatProblem.prepare` (passed even when None: a custom JVP sees
    only the arguments given)."""
    enthalpy, converged, iterations = problem.newton(problem.prepare(previous, memory, started, t0, t1, predicted))
    return enthalpy, jnp.stack([converged.astype(jnp.float64), iterations.astype(jnp.float64)])


@implicit_step.def_jvp
def _implicit_step_jvp(primals, tangents):
    enthalpy, info = implicit_step(*primals)
    return (enthalpy, info), (step_tangent(primals, tangents, enthalpy), jnp.zeros_like(info))


@eqx.filter_custom_jvp
def known_step(problem: HeatProblem, previous, memory, started, t0, t1, predicted, solution):
    """`solution` [J m-3], the step's H at t1 computed elsewhere (the native solver), with the
    derivatives of `implicit_step`; arguments as there."""
    return solution


@known_step.def_jvp
def _known_step_jvp(primals, tangents):
    solution = primals[-1]
    return solution, step_tangent(primals[:-1], tangents[:-1], solution)


def step_tangent(primals, tangents, enthalpy):
    """The tangent of a step's solution `enthalpy` [J m-3] by the implicit-function theorem:
    dR/dH dH = -(dR/d(inputs)) d(inputs), one tridiagonal solve (transposable, so reverse
    mode works too); `primals` and `tangents` those of `implicit_step`'s arguments."""
    problem, previous, memory, started, t0, t1, predicted = primals
    tangent_problem, tangent_previous, tangent_memory, _, _, _, tangent_predicted = tangents

    def residual(problem, previous, memory, predicted):
        step = problem.prepare(previous, memory, started, t0, t1, predicted)
        temperature, _, slope = problem.state(enthalpy, step.pack)
        flux = problem.fluxes(temperature, step.conductance, step)
        return problem.residual(enthalpy, step, flux=flux), (slope, step)

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
    tangent_memory = jnp.zeros_like(memory) if tangent_memory is None else tangent_memory
    if predicted is not None and tangent_predicted is None:
        tangent_predicted = jnp.zeros_like(predicted)
    _, residual_tangent, (slope, step) = jax.jvp(
        lambda p, h, m, e: residual(eqx.combine(p, static_problem), h, m, e),
        (dynamic_problem, previous, memory, predicted),
        (tangent_problem, tangent_previous, tangent_memory, tangent_predicted),
        has_aux=True,
    )
    jacobian = problem.jacobian(slope, step)
    tangent = jax.lax.custom_linear_solve(
        lambda x: _tridiagonal_matvec(*jacobian, x),
        -residual_tangent,
        solve=lambda _, b: solve_tridiagonal(*jacobian, b),
        transpose_solve=lambda _, b: solve_tridiagonal(*_transpose(*jacobian), b),
    )
    return tangent


def _tridiagonal_matvec(lower, diagonal, upper, x):
    shifted_down = jnp.concatenate([jnp.zeros_like(x[:1]), x[:-1]])
    shifted_up = jnp.concatenate([x[1:], jnp.zeros_like(x[:1])])
    return lower * shifted_down + diagonal * x + upper * shifted_up


def _transpose(lower, diagonal, upper):
    zero = jnp.zeros_like(lower[:1])
    return jnp.concatenate([zero, upper[:-1]]), diagonal, jnp.concatenate([lower[1:], zero])


class HeatState(eqx.Module):
    """The state carried from step to step (internal).

    `enthalpy` [J m-3] of the snow and soil cells; `energy` the cumulative heat [J m-2]
    that entered through the surface, through the bottom and with snow mass; `memory` the
    last step's conductive increment h (H_{n+1} - S_n) [J m-2] and `last_input` its
    (surface, bottom) heat [J m-2] (BDF2's history; zeros for backward Euler); `started` 0.0 before the first step,
    1.0 after; `statistics` (steps not converged, Newton iterations summed, most
    iterations in a step).
    """

    enthalpy: Float[Array, " n"]
    energy: Float[Array, "3"]
    memory: Float[Array, " n"]
    last_input: Float[Array, "2"]
    started: Float[Array, ""]
    statistics: Float[Array, "3"]

    @classmethod
    def initial(cls, enthalpy):
        """The state before the first step from cell enthalpies [J m-3]."""
        zero = jnp.zeros(())
        return cls(enthalpy, jnp.zeros(3), jnp.zeros_like(enthalpy), jnp.zeros(2), zero, jnp.zeros(3))


def advance(problem: HeatProblem, state: HeatState, t0, t1, solutions=None) -> tuple[HeatState, Array]:
    """One step of the problem's scheme; returns the new state and whether Newton met its
    tolerance. `solutions`: the step's (first, final) solutions [J m-3] computed elsewhere
    (first is that of the predicted scheme's first solve; the native solver's), used
    instead of Newton with the same derivatives."""
    arguments = (problem, state.enthalpy, state.memory, state.started, t0, t1)
    predicted, first = None, jnp.array([1.0, 0.0])
    if solutions is not None:
        if problem.conductivity == "predicted":
            predicted = known_step(*arguments, None, solutions[0])
        enthalpy, info = known_step(*arguments, predicted, solutions[1]), jnp.array([1.0, 0.0])
    else:
        if problem.conductivity == "predicted":  # the same step with the start's conductivities
            predicted, first = implicit_step(*arguments, None)
        enthalpy, info = implicit_step(*arguments, predicted)
    step = problem.prepare(*arguments[1:], predicted)
    converged, iterations = (info[0] > 0) & (first[0] > 0), info[1] + first[1]
    flux = problem.face_fluxes(enthalpy, step)
    surface = step.dt * problem.surface_input(flux, step)
    bottom = -step.dt * flux[-1]
    memory, last_input = state.memory, state.last_input  # zeros for backward Euler
    if problem.time_scheme == "bdf2":
        surface = surface + step.memory_weight * state.last_input[0]
        bottom = bottom + step.memory_weight * state.last_input[1]
        memory, last_input = step.weight * (enthalpy - step.origin), jnp.stack([surface, bottom])
    ns = problem.n_snow
    arrived = jnp.sum(step.thickness[:ns] * step.origin[:ns])
    advected = arrived - jnp.sum(previous_snow_thickness(problem, t0, t1) * state.enthalpy[:ns])
    statistics = jax.lax.stop_gradient(
        jnp.stack(
            [
                state.statistics[0] + (~converged).astype(jnp.float64),
                state.statistics[1] + iterations,
                jnp.maximum(state.statistics[2], iterations),
            ]
        )
    )
    new = HeatState(
        enthalpy=enthalpy,
        energy=state.energy + jnp.stack([surface, bottom, advected]),
        memory=memory,
        last_input=last_input,
        started=jnp.ones(()),
        statistics=statistics,
    )
    return new, converged


class ImplicitEnthalpy(diffrax.AbstractSolver):
    """The implicit enthalpy step (BDF2 or backward Euler, Newton to round-off) for
    `diffeqsolve`.

    The state is a `HeatState` (enthalpy [J m-3], cumulative boundary heat [J m-2] and the
    scheme's history); `args` must be the `HeatProblem`, whose `time_scheme` and
    `conductivity` choose the scheme (module docstring). The term is only used for its vector field (dense output).
    Use with `diffrax.ConstantStepSize()`. A step whose Newton iteration does not converge
    returns `RESULTS.nonlinear_max_steps_reached`, which `diffeqsolve(..., throw=True)`
    raises.
    """

    term_structure = diffrax.AbstractTerm
    interpolation_cls = diffrax.LocalLinearInterpolation

    def order(self, terms):
        # the lower of the two schemes' orders ("euler" 1, "bdf2" 2); only adaptive
        # step-size controllers read it, and this solver takes constant steps
        return 1

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        problem: HeatProblem = args
        y1, converged = advance(problem, y0, t0, t1)
        failed = diffrax.RESULTS.nonlinear_max_steps_reached
        result = diffrax.RESULTS.where(converged, diffrax.RESULTS.successful, failed)
        return y1, None, dict(y0=y0, y1=y1), None, result

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


def previous_snow_thickness(problem: HeatProblem, t0, t1):
    """Snow-cell thicknesses [m] in the step before [t0, t1]."""
    if problem.n_snow == 0:
        return jnp.zeros(0)
    return problem.snowpack(problem.forcing_index(2 * t0 - t1, t0)).thickness


def explicit_tendency(t, y: HeatState, problem: HeatProblem):
    """d(state)/dt at the current state (the diffrax term; only the enthalpy [J m-3 s-1]
    and boundary heat [W m-2] parts are meaningful)."""
    step = problem.prepare(y.enthalpy, jnp.zeros_like(y.memory), jnp.zeros(()), t, t)
    flux = problem.face_fluxes(y.enthalpy, step)
    tendency = (flux[:-1] - problem.outgoing(flux, step)) / step.weight
    energy = jnp.stack([problem.surface_input(flux, step), -flux[-1], jnp.zeros(())])
    zero = jax.tree_util.tree_map(jnp.zeros_like, y)
    return eqx.tree_at(lambda s: (s.enthalpy, s.energy), zero, (tendency, energy))
