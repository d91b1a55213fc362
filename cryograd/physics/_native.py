"""The native soil-column solver: the implicit enthalpy scheme as one XLA FFI call.

`cryograd/_native/heat.cc` (built at install) runs the whole time loop of a batch of
columns in C++: the same residual, tolerance and Newton iteration as `HeatProblem.newton`,
columns in blocks of 8 (4 where the build has no AVX-512) with the cell axis outermost
so the sweeps run across columns with SIMD, each column of a block on its own step (one
that has converged starts its next step while the others iterate), blocks shared among
threads (`CRYOGRAD_NATIVE_THREADS`, default: all cores). A Newton step that keeps every
cell on its branch of T(H) (frozen, at the melting point, thawed) solves the pass's affine
residual to round-off and ends the pass without being evaluated (on the sharp curve and
snow; `CRYOGRAD_NATIVE_EVALUATE_EVERY_STEP=1` evaluates every step). It covers soil on the sharp
free-water curve (`FreeWater()`) and, through a table of their freezing branch
(`Tabulated`, built by `PermafrostColumn.problem` and read the same way here and in the
JAX replay), on `PowerLaw` and `DallAmico`; with or without a `Snow` surface (each step's
pack is computed here, its remap and coupling there), either time scheme and either
conductivity treatment;
`PermafrostColumn(solver="native")` refuses anything else (`unsupported`).

Derivatives (`_trajectory_jvp`). Forward mode replays the kernel's steps in JAX with their
solutions known (`_replay`, `known_step`): the implicit-function tangent of each step, one
tridiagonal solve per step and tangent, in checkpointed segments of about a year that each
re-run the kernel from the segment's start state. Reverse mode of a soil-only column is the
kernel's own adjoint (`_adjoint_call`, `CryogradHeatAdjoint` in heat.cc): the forward run
keeps the state at the start of every segment; the adjoint re-runs one segment of one
block of columns at a time, keeping that segment's solutions, and goes back through its
steps with one transposed tridiagonal solve per step and pass, accumulating the cotangents
of the thickness, material, boundary series, bottom and initial state in C++. It is the
exact transpose of the replay's tangent (the tangent map sits in a
`jax.lax.custom_linear_solve` whose `transpose_solve` is the adjoint), so both modes and
forward-over-reverse second derivatives work, and memory is one segment per thread plus
one state per segment. With snow or a tabulated curve, reverse mode is the transpose of
the replay (`kernel_adjoint`).
"""

import ctypes
import importlib.machinery
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

from ._diagnostics import thaw_depth
from ._freeze_curves import DallAmico, FreeWater, PowerLaw, Tabulated
from ._heat import HeatProblem, HeatState, advance

TARGET = "cryograd_heat_run"
ADJOINT_TARGET = "cryograd_heat_adjoint"
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
            jax.ffi.register_ffi_target(ADJOINT_TARGET, jax.ffi.pycapsule(library.CryogradHeatAdjoint), platform="cpu")
            _registered = True
    return _registered


TABULATED = (PowerLaw, DallAmico)
"""Smooth curves the native solver runs through a `Tabulated` table of their freezing branch."""


def unsupported(surface, curve) -> str | None:
    """Why the native solver cannot run a column with this surface model and freeze curve
    (None when it can): the sharp `FreeWater()` curve exactly, `PowerLaw` and `DallAmico`
    through a `Tabulated` table (built by `PermafrostColumn.problem`)."""
    sharp = type(curve) is FreeWater and curve.width == 0
    if not (sharp or isinstance(curve, (Tabulated, *TABULATED))):
        names = ", ".join(c.__name__ for c in TABULATED)
        return f"the native solver supports the sharp FreeWater() curve and {names}, got {type(curve).__name__}"
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


def kernel_adjoint(problem: HeatProblem) -> bool:
    """Whether reverse mode runs the kernel's own adjoint: soil-only columns on the sharp
    free-water curve (otherwise the replay is transposed)."""
    return problem.n_snow == 0 and not isinstance(problem.freeze_curve, Tabulated)


def _inputs(problem: HeatProblem):
    """The kernel's per-column arrays: material (6, nz), boundary series (nt,), bottom (2,),
    snow series (`_snow_series`), freeze-curve tables (layers, 5, nodes) and each soil
    cell's table (nz,) (zeros (1,) each for the sharp free-water curve)."""
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
    curve = problem.freeze_curve
    if isinstance(curve, Tabulated):
        table, layer = jnp.asarray(curve.table, jnp.float64), jnp.asarray(curve.cell_table, jnp.float64)
    else:
        table, layer = jnp.zeros(1), jnp.zeros(1)
    return stacked, boundary, bottom, _snow_series(problem), table, layer


def _scheme(problem: HeatProblem, save_every: int) -> dict:
    """The attributes both kernel calls take: step [s], output interval, time scheme,
    conductivity treatment and boundary types."""
    return dict(
        dt=float(problem.forcing_dt),
        save_every=int(save_every),
        bdf2=int(problem.time_scheme == "bdf2"),
        predicted=int(problem.conductivity == "predicted"),
        fixed_surface=int(problem.surface.fixed_temperature),
        fixed_bottom=int(problem.bottom_temperature is not None),
    )


def _call(
    problem: HeatProblem,
    initial,
    save_every: int,
    keep_first=False,
    history=None,
    inputs=None,
    checkpoint_every=0,
    period=None,
    periods=0,
    edges=None,
):
    """The kernel: (enthalpy, energy, statistics) every `save_every` steps, with
    `keep_first` the predicted scheme's first solution of every step (else a dummy row),
    and with `checkpoint_every` > 0 (soil-only columns) the state before every
    `checkpoint_every`-th step, (ceil(nt / checkpoint_every), 2 n + 3): H [J m-3], the BDF2
    memory and last input, started (else a dummy row). `history` (n + 3,) continues an
    earlier run (BDF2 memory [J m-2], the last step's surface and bottom heat [J m-2], 1.0
    once a step was taken; default: a fresh run) and `inputs` the problem's `_inputs`, with
    the boundary and snow series of the steps to take (default: `_inputs(problem)`, all of
    its steps). With `periods` > 0, also the summary (`native_summary`) of the soil
    cells over the steps of each period (`period` (nt,), a step's period index; `edges`
    (nz + 1,) [m]), else a dummy (1, 1)."""
    material, boundary, bottom, snow, table, layer = _inputs(problem) if inputs is None else inputs
    thickness = jnp.asarray(problem.thickness, jnp.float64)
    nt, n = boundary.shape[-1], thickness.shape[-1] + problem.n_snow
    history = jnp.zeros(n + 3) if history is None else history
    nsave = nt // save_every
    ncheck = -(-nt // checkpoint_every) if checkpoint_every > 0 else 1
    shapes = (
        jax.ShapeDtypeStruct((nsave, n), jnp.float64),
        jax.ShapeDtypeStruct((nsave, 3), jnp.float64),
        jax.ShapeDtypeStruct((nsave, 3), jnp.float64),
        jax.ShapeDtypeStruct((nt if keep_first else 1, n), jnp.float64),
        jax.ShapeDtypeStruct((ncheck, 2 * n + 3), jnp.float64),
        jax.ShapeDtypeStruct((periods, 3 * thickness.shape[-1] + 2) if periods else (1, 1), jnp.float64),
    )
    period = jnp.zeros(1) if period is None else jnp.asarray(period, jnp.float64)
    edges = jnp.zeros(1) if edges is None else jnp.asarray(edges, jnp.float64)
    return jax.ffi.ffi_call(TARGET, shapes, vmap_method="broadcast_all")(
        thickness,
        material,
        boundary,
        bottom,
        jnp.asarray(initial, jnp.float64),
        jnp.asarray(history, jnp.float64),
        snow,
        table,
        layer,
        period,
        edges,
        **_scheme(problem, save_every),
        snow_cells=int(problem.n_snow),
        keep_first=int(keep_first),
        checkpoint_every=int(checkpoint_every),
        nodes=int(table.shape[-1]) if isinstance(problem.freeze_curve, Tabulated) else 0,
        periods=int(periods),
        threads=0,
    )


def _adjoint_call(problem: HeatProblem, inputs, checkpoints, cotangents, save_every: int, checkpoint_every: int):
    """The kernel's reverse mode (soil-only columns): from the cotangents of the saved
    (enthalpy, energy) and the forward run's `checkpoints`, the cotangents of the kernel's
    inputs (thickness (nz,), material (6, nz), boundary (nt,), bottom (2,), initial H (n,)).
    `inputs`: (thickness, material, boundary, bottom) as the forward run had them."""
    thickness, material, boundary, bottom = inputs
    ct_enthalpy, ct_energy = cotangents
    nt, n = boundary.shape[-1], thickness.shape[-1]
    shapes = (
        jax.ShapeDtypeStruct((n,), jnp.float64),
        jax.ShapeDtypeStruct((6, n), jnp.float64),
        jax.ShapeDtypeStruct((nt,), jnp.float64),
        jax.ShapeDtypeStruct((2,), jnp.float64),
        jax.ShapeDtypeStruct((n,), jnp.float64),
        jax.ShapeDtypeStruct((n + 3,), jnp.float64),
    )
    return jax.ffi.ffi_call(ADJOINT_TARGET, shapes, vmap_method="broadcast_all")(
        thickness,
        material,
        boundary,
        bottom,
        jnp.zeros(n + 3),
        checkpoints,
        jnp.asarray(ct_enthalpy, jnp.float64),
        jnp.asarray(ct_energy, jnp.float64),
        **_scheme(problem, save_every),
        checkpoint_every=int(checkpoint_every),
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
    enthalpy, energy, statistics, _ = _trajectory(problem, jnp.asarray(initial_enthalpy, jnp.float64), save_every)
    return enthalpy, energy, statistics


SEGMENT_STEPS = 365
"""Steps per checkpointed segment of the derivatives (about a year of daily steps;
rounded to a multiple of the output interval)."""


def segment_length(nt: int, save_every: int) -> int:
    """Steps per segment of the derivative replay: a multiple of `save_every` near
    `SEGMENT_STEPS` (one segment of `save_every` when that is longer)."""
    return max(1, SEGMENT_STEPS // save_every) * save_every


def _steps(problem: HeatProblem) -> int:
    return jax.tree_util.tree_leaves(problem.forcing)[0].shape[0]


def _checkpoint_every(problem: HeatProblem, save_every: int) -> int:
    """Steps between the forward run's checkpoints for the kernel's reverse mode (0 where
    reverse mode transposes the replay, `kernel_adjoint`)."""
    return segment_length(_steps(problem), save_every) if kernel_adjoint(problem) else 0


@eqx.filter_custom_jvp
def _trajectory(problem: HeatProblem, initial, save_every):
    every = _checkpoint_every(problem, save_every)
    enthalpy, energy, statistics, _, checkpoints, _ = _call(problem, initial, save_every, checkpoint_every=every)
    return enthalpy, energy, statistics, checkpoints


def _replay(dynamic, static, initial, save_every):
    """The run replayed in JAX with the kernel's solutions known (`advance(...,
    solutions=...)`): no Newton iterations, one tridiagonal solve per step; in segments of
    `segment_length` steps, each under `jax.checkpoint`, that run the kernel from their
    start state (the BDF2 history included) for their own steps, then replay them, so
    reverse mode keeps one segment's steps and the states at the segments' starts.
    Returns ((enthalpy, energy), statistics) as `native_run`."""
    problem = eqx.combine(dynamic, static)
    predicted = problem.conductivity == "predicted"
    dt = problem.forcing_dt
    nt = _steps(problem)
    length = segment_length(nt, save_every)
    full, tail = divmod(nt, length)
    keep = slice(save_every - 1, None, save_every)
    constant = eqx.combine(jax.lax.stop_gradient(dynamic), static)  # what the kernel sees: no tangents
    material, boundary, bottom, snow, table, layer = _inputs(constant)  # once; each segment takes its window

    def segment(carry, start, steps: int):
        state, totals = carry
        history = jnp.concatenate([state.memory, state.last_input, state.started[None]])
        every, _, statistics, first, _, _ = _call(
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
                table,
                layer,
            ),
        )

        @jax.checkpoint
        def body(state, inputs):
            index, first_solution, solution = inputs
            t0 = index * dt
            new, _ = advance(problem, state, t0, t0 + dt, solutions=(first_solution, solution))
            return new, (new.enthalpy, new.energy)

        steps_ = (start + jnp.arange(steps)).astype(jnp.float64)
        state, (enthalpy, energy) = jax.lax.scan(body, state, (steps_, first if predicted else every, every))
        statistics = jnp.stack(
            [totals[0] + statistics[:, 0], totals[1] + statistics[:, 1], jnp.maximum(totals[2], statistics[:, 2])],
            axis=1,
        )
        return (state, statistics[-1]), (enthalpy[keep], energy[keep], statistics[keep])

    carry, outputs = (HeatState.initial(initial), jnp.zeros(3)), []
    if full:  # (a run shorter than one segment has only its tail)
        carry, whole = jax.lax.scan(
            jax.checkpoint(lambda carry, k: segment(carry, k * length, length)), carry, jnp.arange(full)
        )
        outputs.append([x.reshape(-1, *x.shape[2:]) for x in whole])
    if tail:
        outputs.append(segment(carry, full * length, tail)[1])
    enthalpy, energy, statistics = (jnp.concatenate(parts) for parts in zip(*outputs, strict=True))
    return (enthalpy, energy), jax.lax.stop_gradient(statistics)


def _kernel_inputs(dynamic, static):
    """(thickness, material, boundary, bottom) as the kernel reads them (soil only)."""
    problem = eqx.combine(dynamic, static)
    material, boundary, bottom, *_ = _inputs(problem)
    return jnp.asarray(problem.thickness, jnp.float64), material, boundary, bottom


def _given_tangents(treedef, leaves, tangent_problem) -> list:
    """The tangent of each inexact-array leaf of a problem (`leaves`, flattened by
    `treedef`), None where there is none (a symbolic zero)."""
    if tangent_problem is None:
        return [None] * len(leaves)
    return treedef.flatten_up_to(eqx.filter(tangent_problem, eqx.is_inexact_array, replace=None))


@_trajectory.def_jvp
def _trajectory_jvp(primals, tangents):
    """Tangents by the replay (`_replay`): the implicit-function tangent of each step, one
    tridiagonal solve per step and tangent. Soil-only columns put that linear map inside a
    `jax.lax.custom_linear_solve` whose transpose is the kernel's own reverse mode
    (`_adjoint_call`: transposed tridiagonal solves in C++, segment by segment from the
    forward run's checkpoints), so reverse mode does not transpose the replay; with snow
    reverse mode is the replay's transpose."""
    problem, initial, save_every = primals
    tangent_problem, tangent_initial, _ = tangents
    outputs = _trajectory(problem, initial, save_every)
    enthalpy, energy, statistics, checkpoints = outputs
    zeros = jnp.zeros_like(statistics), jnp.zeros_like(checkpoints)

    dynamic, static = eqx.partition(problem, eqx.is_inexact_array)
    leaves, treedef = jax.tree_util.tree_flatten(dynamic)
    given = _given_tangents(treedef, leaves, tangent_problem)

    def tangent_of(problem_tangents, initial_tangent):
        """The replay's (enthalpy, energy) tangents; None for a zero tangent."""
        full = [jnp.zeros_like(leaf) if t is None else t for leaf, t in zip(leaves, problem_tangents, strict=True)]
        t_initial = jnp.zeros_like(initial) if initial_tangent is None else initial_tangent
        _, out, _ = jax.jvp(
            lambda d, h: _replay(d, static, h, save_every),
            (dynamic, initial),
            (treedef.unflatten(full), t_initial),
            has_aux=True,
        )
        return list(out)

    which = [k for k, t in enumerate(given) if t is not None]
    linear = [given[k] for k in which] + ([] if tangent_initial is None else [tangent_initial])
    if not linear:
        return outputs, (jnp.zeros_like(enthalpy), jnp.zeros_like(energy), *zeros)
    if not kernel_adjoint(problem):
        tangent_enthalpy, tangent_energy = tangent_of(given, tangent_initial)
        return outputs, (tangent_enthalpy, tangent_energy, *zeros)

    def split(inputs):
        problem_tangents = [None] * len(leaves)
        for k, t in zip(which, inputs, strict=False):
            problem_tangents[k] = t
        return problem_tangents, (inputs[-1] if tangent_initial is not None else None)

    def solve(_, b):  # (inputs, outputs) -> (inputs, outputs + M inputs)
        inputs, outs = b
        return inputs, [o + m for o, m in zip(outs, tangent_of(*split(inputs)), strict=True)]

    def matvec(x):  # solve's inverse: only its derivatives are used (second order)
        inputs, outs = x
        return inputs, [o - m for o, m in zip(outs, tangent_of(*split(inputs)), strict=True)]

    every = _checkpoint_every(problem, save_every)
    constant_dynamic = jax.lax.stop_gradient(dynamic)

    def transpose_solve(_, cotangent):  # (inputs, outputs) -> (inputs + M^T outputs, outputs)
        inputs, outs = cotangent
        kernel_inputs, pullback = jax.vjp(lambda d: _kernel_inputs(d, static), constant_dynamic)
        *kernel_cotangents, d_initial, _ = _adjoint_call(
            problem, kernel_inputs, jax.lax.stop_gradient(checkpoints), outs, save_every, every
        )
        (d_dynamic,) = pullback(tuple(kernel_cotangents))
        d_leaves = jax.tree_util.tree_leaves(d_dynamic)
        pulled = [d_leaves[k] for k in which] + ([] if tangent_initial is None else [d_initial])
        return [c + p for c, p in zip(inputs, pulled, strict=True)], outs

    zero = 0.0 * jnp.sum(linear[0])  # linear in the tangents, as custom_linear_solve's transpose needs
    b = (linear, [jnp.broadcast_to(zero, enthalpy.shape), jnp.broadcast_to(zero, energy.shape)])
    _, (tangent_enthalpy, tangent_energy) = jax.lax.custom_linear_solve(matvec, b, solve, transpose_solve)
    return outputs, (tangent_enthalpy, tangent_energy, *zeros)


def daily_summary(temperature, liquid_water_fraction, edges, period, periods: int) -> dict:
    """Per period, from the fields of every step (nt, nz): each cell's mean, largest and
    smallest temperature [degC] (periods, nz), the largest thaw depth [m] (periods,) and
    the number of steps (periods,); steps whose `period` lies outside 0..periods-1 are left
    out. The reference for `native_summary` (and its derivative)."""
    depth = thaw_depth(temperature, liquid_water_fraction, edges)
    steps = jax.ops.segment_sum(jnp.ones_like(depth), period, periods)
    return dict(
        mean_temperature=jax.ops.segment_sum(temperature, period, periods) / steps[:, None],
        max_temperature=jax.ops.segment_max(temperature, period, periods),
        min_temperature=jax.ops.segment_min(temperature, period, periods),
        max_thaw_depth=jax.ops.segment_max(depth, period, periods),
        steps=steps,
    )


@eqx.filter_custom_jvp
def native_summary(problem: HeatProblem, initial_enthalpy, period, edges, periods: int):
    """(`daily_summary` of the soil cells computed in the kernel as the steps are taken,
    statistics (3,) over all steps: steps not converged, iterations summed, most in a step).
    No field of every step is kept. `period` (nt,) int: each step's period; `edges`
    (nz + 1,) [m] the soil cells' edges. Derivatives: the tangent of `daily_summary` of
    `native_run`'s fields (the same numbers, kept step by step)."""
    nt = _steps(problem)
    _, _, statistics, _, _, summary = _call(
        problem, jnp.asarray(initial_enthalpy, jnp.float64), nt, period=period, periods=periods, edges=edges
    )
    nz = jnp.shape(problem.thickness)[-1]
    steps = summary[:, 3 * nz + 1]
    out = dict(
        mean_temperature=summary[:, :nz] / steps[:, None],
        max_temperature=summary[:, nz : 2 * nz],
        min_temperature=summary[:, 2 * nz : 3 * nz],
        max_thaw_depth=summary[:, 3 * nz],
        steps=steps,
    )
    return out, statistics[-1]


@native_summary.def_jvp
def _native_summary_jvp(primals, tangents):
    problem, initial, period, edges, periods = primals
    tangent_problem, tangent_initial, _, tangent_edges, _ = tangents
    out = native_summary(problem, initial, period, edges, periods)
    dynamic, static = eqx.partition(problem, eqx.is_inexact_array)

    def reference(dynamic, initial, edges):
        problem = eqx.combine(dynamic, static)
        enthalpy, _, _ = native_run(problem, initial, 1)
        temperature, fraction, _ = jax.vmap(lambda h: problem.freeze_curve.state(h, problem.material))(
            enthalpy[:, problem.n_snow :]
        )
        return daily_summary(temperature, fraction, edges, period, periods)

    leaves, treedef = jax.tree_util.tree_flatten(dynamic)
    given = _given_tangents(treedef, leaves, tangent_problem)
    t_dynamic = treedef.unflatten([jnp.zeros_like(a) if t is None else t for a, t in zip(leaves, given, strict=True)])
    t_initial = jnp.zeros_like(initial) if tangent_initial is None else tangent_initial
    t_edges = jnp.zeros_like(edges) if tangent_edges is None else tangent_edges
    _, tangent = jax.jvp(reference, (dynamic, initial, edges), (t_dynamic, t_initial, t_edges))
    return out, (tangent, jnp.zeros_like(out[1]))
