"""The native soil-column solver: the implicit enthalpy scheme as one XLA FFI call.

`cryograd/_native/heat.cc` (built at install) runs the whole time loop of a batch of
columns in C++: the same residual, tolerance and Newton iteration as `HeatProblem.newton`,
columns in blocks of 8 with the cell axis outermost so the sweeps run across columns
with SIMD, each column of a block on its own step (one that has converged starts its next
step while the others iterate), blocks shared among threads (`CRYOGRAD_NATIVE_THREADS`,
default: all cores). It covers columns without snow on the sharp free-water curve
(`FreeWater()`), either time scheme and either conductivity treatment;
`PermafrostColumn(solver="native")` refuses anything else (`unsupported`).

Derivatives: the kernel's steps are replayed in JAX with their solutions known
(`_trajectory_jvp`, `known_step`): the implicit-function tangent of each step, one
tridiagonal solve per step and tangent, a linear map that JAX transposes for reverse
mode. Reverse mode keeps the trajectory (every step's solutions, and the first solutions
of the predicted scheme), so its memory grows with the run length.
"""

import ctypes
import importlib.machinery
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

from ._freeze_curves import FreeWater
from ._heat import HeatProblem, HeatState, advance
from ._snow import Snow

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
    if isinstance(surface, Snow):
        return "the native solver has no snow cells (surface=Snow); use solver='jax'"
    if type(curve) is not FreeWater or curve.width != 0:
        return f"the native solver supports the sharp FreeWater() curve only, got {type(curve).__name__}"
    if jax.default_backend() != "cpu":
        return f"the native solver runs on the CPU, the default backend is {jax.default_backend()!r}"
    if not available():
        return "the native kernel was not built with this installation (reinstall with pip install -e .)"
    return None


def _inputs(problem: HeatProblem):
    """The kernel's per-column arrays: material (6, nz), boundary series (nt,), bottom (2,)."""
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
    return stacked, jnp.broadcast_to(jnp.asarray(boundary, jnp.float64), (nt,)), bottom


def _call(problem: HeatProblem, initial, save_every: int, keep_first: bool = False):
    """The kernel: (enthalpy, energy, statistics) every `save_every` steps, and with
    `keep_first` the predicted scheme's first solution of every step (else a dummy row)."""
    material, boundary, bottom = _inputs(problem)
    thickness = jnp.asarray(problem.thickness, jnp.float64)
    nt, n = boundary.shape[-1], thickness.shape[-1]
    nsave = nt // save_every
    shapes = (
        jax.ShapeDtypeStruct((nsave, n), jnp.float64),
        jax.ShapeDtypeStruct((nsave, 2), jnp.float64),
        jax.ShapeDtypeStruct((nsave, 3), jnp.float64),
        jax.ShapeDtypeStruct((nt if keep_first else 1, n), jnp.float64),
    )
    return jax.ffi.ffi_call(TARGET, shapes, vmap_method="broadcast_all")(
        thickness,
        material,
        boundary,
        bottom,
        jnp.asarray(initial, jnp.float64),
        dt=float(problem.forcing_dt),
        save_every=int(save_every),
        bdf2=int(problem.time_scheme == "bdf2"),
        predicted=int(problem.conductivity == "predicted"),
        fixed_surface=int(problem.surface.fixed_temperature),
        fixed_bottom=int(problem.bottom_temperature is not None),
        keep_first=int(keep_first),
        threads=0,
    )


def native_run(problem: HeatProblem, initial_enthalpy, save_every: int):
    """(enthalpy (nsave, nz) [J m-3], cumulative (surface, bottom) heat (nsave, 2) [J m-2],
    statistics (nsave, 3): steps not converged, iterations summed, most in a step), every
    `save_every` steps; differentiable in forward and reverse mode."""
    reason = unsupported(problem.surface, problem.freeze_curve)
    if reason is not None:
        raise ValueError(f"solver='native': {reason}")
    return _trajectory(problem, jnp.asarray(initial_enthalpy, jnp.float64), save_every)


@eqx.filter_custom_jvp
def _trajectory(problem: HeatProblem, initial, save_every):
    enthalpy, energy, statistics, _ = _call(problem, initial, save_every)
    return enthalpy, energy, statistics


@_trajectory.def_jvp
def _trajectory_jvp(primals, tangents):
    """Replays the kernel's steps in JAX with their solutions known (`advance(...,
    solutions=...)`): no Newton iterations, one tridiagonal solve per step and tangent."""
    problem, initial, save_every = primals
    tangent_problem, tangent_initial, _ = tangents
    predicted = problem.conductivity == "predicted"
    every, _, statistics, first = _call(problem, initial, 1, keep_first=predicted)
    nt = every.shape[0]
    dt = problem.forcing_dt

    def replay(dynamic, initial):
        problem_ = eqx.combine(dynamic, static)

        @jax.checkpoint
        def body(state, inputs):
            index, first_solution, solution = inputs
            t0 = index * dt
            new, _ = advance(problem_, state, t0, t0 + dt, solutions=(first_solution, solution))
            return new, (new.enthalpy, new.energy[:2])

        _, (enthalpy, energy) = jax.lax.scan(
            body, HeatState.initial(initial), (jnp.arange(nt, dtype=jnp.float64), first if predicted else every, every)
        )
        return enthalpy[save_every - 1 :: save_every], energy[save_every - 1 :: save_every]

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
    (enthalpy, energy), (tangent_enthalpy, tangent_energy) = jax.jvp(
        replay, (dynamic, initial), (tangent_dynamic, tangent_initial)
    )
    statistics = statistics[save_every - 1 :: save_every]
    return (enthalpy, energy, statistics), (tangent_enthalpy, tangent_energy, jnp.zeros_like(statistics))
