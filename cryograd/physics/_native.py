"""The native soil-column solver: the implicit enthalpy scheme as one XLA FFI call.

`cryograd/_native/heat.cc` (built at install) runs the whole time loop of a batch of
columns in C++: the same residual, tolerance and Newton iteration as `HeatProblem.newton`,
columns in blocks of 8 with the cell axis outermost so the sweeps run across columns
with SIMD, each column of a block on its own step (one that has converged starts its next
step while the others iterate), blocks shared among threads (`CRYOGRAD_NATIVE_THREADS`,
default: all cores). It covers soil on the sharp free-water curve (`FreeWater()`), with
or without a `Snow` surface (each step's pack is computed here, its remap and coupling
there), either time scheme and either conductivity treatment;
`PermafrostColumn(solver="native")` refuses anything else (`unsupported`).

Derivatives: the kernel's steps are replayed in JAX with their solutions known
(`_trajectory_jvp`, `known_step`): the implicit-function tangent of each step, one
tridiagonal solve per step and tangent, a linear map that JAX transposes for reverse
mode. The replay runs in checkpointed segments of about a year, each re-running the
kernel from the segment's start state, so reverse mode's memory is that of one segment's
steps plus one state per segment, not the whole trajectory.
"""

import ctypes
import importlib.machinery
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

from ._freeze_curves import FreeWater
from ._heat import HeatProblem, HeatState, advance

TARGET = "cryograd_heat_run"
_registered: bool | None = None


def _library_path() -> Path | None:
    folder = Path(__file__).resolve().parent.parent / "_native"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"_heat{suffix}"
        if path.exists():
            return path
    return None


def available() -> bool:
    """Whether the native kernel was built with this installation (and is registered)."""
    global _registered
    if _registered is None:
        path = _library_path()
        if path is None:
            _registered = False
        else:
            library = ctypes.cdll.LoadLibrary(str(path))
            jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(library.CryogradHeatRun), platform="cpu")
            _registered = True
    return _registered


def unsupported(surface, curve) -> str | None:
    """Why the native solver cannot run a column with this surface model and freeze curve
    (None when it can)."""
    if type(curve) is not FreeWater or curve.width != 0:
        return f"the native solver supports the sharp FreeWater() curve only, got {type(curve).__name__}"
    if jax.default_backend() != "cpu":
        return f"the native solver runs on the CPU, the default backend is {jax.default_backend()!r}"
    if not available():
        return "the native kernel was not built with this installation (reinstall with pip install -e .)"
    return None


SNOW_FIELDS = 9


def _snow_series(problem: HeatProblem):
    """Each step's snowpack as the kernel reads it, (nt + 1, 9), the first row the pack of
    the step before the first (the first step's own, as in `HeatProblem.prepare`): cell
    thickness [m], present, mass [kg m-2], density [kg m-3], conductivity [W m-1 K-1],
    heat capacity frozen and thawed [J m-3 K-1], latent heat [J m-3], fresh-snow enthalpy
    [J m-3]. (1, 9) zeros without snow."""
    if problem.n_snow == 0:
        return jnp.zeros((1, SNOW_FIELDS))
    nt = jax.tree_util.tree_leaves(problem.forcing)[0].shape[0]
    packs = jax.vmap(problem.snowpack)(jnp.arange(nt))
    material = packs.material
    fields = [
        packs.thickness[:, 0],
        packs.present.astype(jnp.float64),
        packs.mass,
        packs.density,
        material.k_thawed[:, 0],
        material.c_frozen[:, 0],
        material.c_thawed[:, 0],
        material.latent_heat[:, 0],
        packs.fresh_enthalpy,
    ]
    series = jnp.stack([jnp.broadcast_to(jnp.asarray(f, jnp.float64), (nt,)) for f in fields], axis=1)
    return jnp.concatenate([series[:1], series])


def _inputs(problem: HeatProblem):
    """The kernel's per-column arrays: material (6, nz), boundary series (nt,), bottom (2,),
    snow series (`_snow_series`)."""
    material = problem.material
    stacked = jnp.stack(
        [
            material.k_frozen,
            material.k_thawed,
            material.c_frozen,
            material.c_thawed,
            material.latent_heat,
            material.quadratic_parallel.astype(jnp.float64),
        ]
    )
    nt = jax.tree_util.tree_leaves(problem.forcing)[0].shape[0]
    boundary = jax.vmap(lambda i: problem.surface.boundary_value(problem.step_forcing(i)))(jnp.arange(nt))
    bottom_temperature = 0.0 if problem.bottom_temperature is None else problem.bottom_temperature
    bottom = jnp.stack(
        [jnp.asarray(problem.geothermal_flux, jnp.float64), jnp.asarray(bottom_temperature, jnp.float64)]
    )
    boundary = jnp.broadcast_to(jnp.asarray(boundary, jnp.float64), (nt,))
    return stacked, boundary, bottom, _snow_series(problem)


def _call(problem: HeatProblem, initial, save_every: int, keep_first=False, history=None, inputs=None):
    """The kernel: (enthalpy, energy, statistics) every `save_every` steps, and with
    `keep_first` the predicted scheme's first solution of every step (else a dummy row).
    `history` (n + 3,) continues an earlier run (BDF2 memory [J m-2], the last step's
    surface and bottom heat [J m-2], 1.0 once a step was taken; default: a fresh run) and
    `inputs` the problem's `_inputs`, with the boundary and snow series of the steps to
    take (default: `_inputs(problem)`, all of its steps)."""
    material, boundary, bottom, snow = _inputs(problem) if inputs is None else inputs
    thickness = jnp.asarray(problem.thickness, jnp.float64)
    nt, n = boundary.shape[-1], thickness.shape[-1] + problem.n_snow
    history = jnp.zeros(n + 3) if history is None else history
    nsave = nt // save_every
    shapes = (
        jax.ShapeDtypeStruct((nsave, n), jnp.float64),
        jax.ShapeDtypeStruct((nsave, 3), jnp.float64),
        jax.ShapeDtypeStruct((nsave, 3), jnp.float64),
        jax.ShapeDtypeStruct((nt if keep_first else 1, n), jnp.float64),
    )
    return jax.ffi.ffi_call(TARGET, shapes, vmap_method="broadcast_all")(
        thickness,
        material,
        boundary,
        bottom,
        jnp.asarray(initial, jnp.float64),
        jnp.asarray(history, jnp.float64),
        snow,
        dt=float(problem.forcing_dt),
        save_every=int(save_every),
        bdf2=int(problem.time_scheme == "bdf2"),
        predicted=int(problem.conductivity == "predicted"),
        fixed_surface=int(problem.surface.fixed_temperature),
        fixed_bottom=int(problem.bottom_temperature is not None),
        snow_cells=int(problem.n_snow),
        keep_first=int(keep_first),
        threads=0,
    )


def native_run(problem: HeatProblem, initial_enthalpy, save_every: int):
    """(enthalpy (nsave, ns + nz) [J m-3] of the snow and soil cells, cumulative (surface,
    bottom, snow mass) heat (nsave, 3) [J m-2],
    statistics (nsave, 3): steps not converged, iterations summed, most in a step), every
    `save_every` steps; differentiable in forward and reverse mode."""
    reason = unsupported(problem.surface, problem.freeze_curve)
    if reason is not None:
        raise ValueError(f"solver='native': {reason}")
    return _trajectory(problem, jnp.asarray(initial_enthalpy, jnp.float64), save_every)


SEGMENT_STEPS = 365
"""Steps per checkpointed segment of the derivative replay (about a year of daily steps;
rounded to a multiple of the output interval)."""


def segment_length(nt: int, save_every: int) -> int:
    """Steps per segment of the derivative replay: a multiple of `save_every` near
    `SEGMENT_STEPS` (one segment of `save_every` when that is longer)."""
    return max(1, SEGMENT_STEPS // save_every) * save_every


@eqx.filter_custom_jvp
def _trajectory(problem: HeatProblem, initial, save_every):
    enthalpy, energy, statistics, _ = _call(problem, initial, save_every)
    return enthalpy, energy, statistics


@_trajectory.def_jvp
def _trajectory_jvp(primals, tangents):
    """Replays the kernel's steps in JAX with their solutions known (`advance(...,
    solutions=...)`): no Newton iterations, one tridiagonal solve per step and tangent.
    The run is replayed in segments of `segment_length` steps, each under `jax.checkpoint`:
    a segment runs the kernel from its start state (the BDF2 history included) for its
    own steps, then replays them, so reverse mode keeps one segment's steps and the states
    at the segments' starts, not the whole trajectory."""
    problem, initial, save_every = primals
    tangent_problem, tangent_initial, _ = tangents
    predicted = problem.conductivity == "predicted"
    dt = problem.forcing_dt
    nt = jax.tree_util.tree_leaves(problem.forcing)[0].shape[0]
    length = segment_length(nt, save_every)
    full, tail = divmod(nt, length)
    keep = slice(save_every - 1, None, save_every)

    def replay(dynamic, initial):
        problem_ = eqx.combine(dynamic, static)
        constant = jax.lax.stop_gradient(problem_)  # what the kernel sees: no tangents
        material, boundary, bottom, snow = _inputs(constant)  # once; each segment takes its window

        def segment(carry, start, steps: int):
            state, totals = carry
            history = jnp.concatenate([state.memory, state.last_input, state.started[None]])
            every, _, statistics, first = _call(
                constant,
                jax.lax.stop_gradient(state.enthalpy),
                1,
                keep_first=predicted,
                history=jax.lax.stop_gradient(history),
                inputs=(
                    material,
                    jax.lax.dynamic_slice_in_dim(boundary, start, steps, axis=-1),
                    bottom,
                    snow if problem.n_snow == 0 else jax.lax.dynamic_slice_in_dim(snow, start, steps + 1, axis=-2),
                ),
            )

            @jax.checkpoint
            def body(state, inputs):
                index, first_solution, solution = inputs
                t0 = index * dt
                new, _ = advance(problem_, state, t0, t0 + dt, solutions=(first_solution, solution))
                return new, (new.enthalpy, new.energy)

            steps_ = (start + jnp.arange(steps)).astype(jnp.float64)
            state, (enthalpy, energy) = jax.lax.scan(body, state, (steps_, first if predicted else every, every))
            statistics = jnp.stack(
                [totals[0] + statistics[:, 0], totals[1] + statistics[:, 1], jnp.maximum(totals[2], statistics[:, 2])],
                axis=1,
            )
            return (state, statistics[-1]), (enthalpy[keep], energy[keep], statistics[keep])

        carry = (HeatState.initial(initial), jnp.zeros(3))
        carry, (enthalpy, energy, statistics) = jax.lax.scan(
            jax.checkpoint(lambda carry, k: segment(carry, k * length, length)), carry, jnp.arange(full)
        )
        outputs = [x.reshape(-1, *x.shape[2:]) for x in (enthalpy, energy, statistics)]
        if tail:
            _, rest = segment(carry, full * length, tail)
            outputs = [jnp.concatenate([a, b]) for a, b in zip(outputs, rest, strict=True)]
        enthalpy, energy, statistics = outputs
        return (enthalpy, energy), jax.lax.stop_gradient(statistics)

    dynamic, static = eqx.partition(problem, eqx.is_inexact_array)
    leaves, treedef = jax.tree_util.tree_flatten(dynamic)
    given = (
        [None] * len(leaves)
        if tangent_problem is None
        else treedef.flatten_up_to(eqx.filter(tangent_problem, eqx.is_inexact_array, replace=None))
    )
    tangent_dynamic = treedef.unflatten(
        [jnp.zeros_like(leaf) if t is None else t for leaf, t in zip(leaves, given, strict=True)]
    )
    tangent_initial = jnp.zeros_like(initial) if tangent_initial is None else tangent_initial
    (enthalpy, energy), (tangent_enthalpy, tangent_energy), statistics = jax.jvp(
        replay, (dynamic, initial), (tangent_dynamic, tangent_initial), has_aux=True
    )
    return (enthalpy, energy, statistics), (tangent_enthalpy, tangent_energy, jnp.zeros_like(statistics))
