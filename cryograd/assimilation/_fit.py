"""Fitting: L-BFGS and Adam (optax), Gauss-Newton and Levenberg-Marquardt (optimistix).

The optax methods take one jitted step at a time; the optimistix methods run in jitted
chunks of `checkpoint_every` steps (each chunk a `optimistix.least_squares` call that
starts from the previous chunk's parameters). The loop over steps or chunks is Python, so
it reports progress (a tqdm bar on a terminal, plain lines in a log) and writes
checkpoints. A fit interrupted and started again with the same `checkpoint` resumes from
the last one: parameters, step count, loss history and cost counters, and for the optax
methods the optimiser's state (Levenberg-Marquardt's damping restarts with each chunk).

Gradients: forward mode (`jax.linearize` and one tangent per unknown) when the problem
has few unknowns; for a batched problem with member-scoped parameters, forward mode with
one tangent per member-scoped scalar that moves all members at once
(`Problem.loss_and_gradient_by_members`); reverse mode otherwise. `gradient="auto"` picks
forward up to 16 unknowns, then by members where there are member-scoped parameters.

Cost is reported as `model_runs` (model evaluations with a gradient or Jacobian, counted
from the optimisers' own counters), `forward_equivalents` = model_runs x the measured cost
of one such evaluation in units of one plain forward run (both timed before the fit, on
the same machine), and `wall_time` [s] of the steps without compilation, which adds the
optimisers' own work and Python overhead.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu
import optimistix as optx

from .._progress import progress_bar
from .._timing import median_seconds
from ._problem import Problem

METHODS = ("lbfgs", "adam", "gauss_newton", "levenberg_marquardt")
FORWARD_MODE_MAX_UNKNOWNS = 16
COST_TIMING_BUDGET = 1.5
"""Seconds spent timing the forward run and the derivative for the cost figures (each at
least one run after its warm-up; up to five while within this budget)."""


@dataclass
class FitResult:
    """The outcome of `fit`.

    `u` the unconstrained optimum; `parameters` the constrained values by name; `loss`
    -log posterior at the optimum (up to a constant); `history` the loss after each step
    (each chunk for the optimistix methods) and `history_steps` the step count at each;
    `start_loss` the loss at the start values; `converged` and `message` why the loop
    stopped; cost: `model_runs`, `evaluation_cost` (one evaluation with its gradient or
    Jacobian, in forward runs), `wall_time` [s], `compile_time` [s], `forward_time` [s].
    """

    problem: Problem
    method: str
    u: np.ndarray
    parameters: dict
    loss: float
    history: list
    history_steps: list
    start_loss: float
    steps: int
    converged: bool
    message: str
    model_runs: int
    evaluation_cost: float
    wall_time: float
    compile_time: float
    forward_time: float
    gradient: str
    resumed_from: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def forward_equivalents(self) -> float:
        """model_runs x the measured cost of one evaluation with derivatives [forward runs]."""
        return self.model_runs * self.evaluation_cost

    def model(self, member=None):
        """The fitted model (one member's for problems with member-scoped parameters)."""
        return self.problem.fitted_model(self.u, member=member)

    def cost(self) -> dict:
        """The cost figures for a summary."""
        return dict(
            method=self.method,
            gradient=self.gradient,
            steps=self.steps,
            model_runs=self.model_runs,
            evaluation_cost_forward_runs=round(self.evaluation_cost, 2),
            forward_equivalents=round(self.forward_equivalents, 1),
            wall_time_s=round(self.wall_time, 3),
            compile_time_s=round(self.compile_time, 3),
            forward_time_s=self.forward_time,
            converged=self.converged,
            message=self.message,
        )


def forward_mode(function, n: int, *, unrolled: bool = False):
    """`function` (R^n -> R) whose reverse-mode gradient is computed in forward mode:
    `jax.linearize` and one tangent per unknown (cheaper than reverse mode for few unknowns).

    The tangents are `jax.vmap`ped, or with `unrolled=True` evaluated one after another in
    straight-line code: n copies of the linearised model in the compiled program, but for a
    batched `MonthlyTemperatureIndex` (567 glaciers, 3 unknowns) 6 ms against 32 ms, as
    XLA vectorises each tangent's loops over the glaciers and not the vmapped ones."""

    @jax.custom_vjp
    def wrapped(u):
        return function(u)

    def wrapped_forward(u):
        value, tangent = jax.linearize(function, u)
        eye = jnp.eye(n, dtype=u.dtype)
        if unrolled:
            return value, jnp.stack([tangent(eye[i]) for i in range(n)])
        return value, jax.vmap(tangent)(eye)

    def wrapped_backward(gradient, cotangent):
        return (cotangent * gradient,)

    wrapped.defvjp(wrapped_forward, wrapped_backward)
    return wrapped


def by_members(problem: Problem):
    """`problem.loss` whose reverse-mode gradient is `problem.loss_and_gradient_by_members`
    (forward mode with one tangent per member-scoped scalar, all members at once)."""

    @jax.custom_vjp
    def wrapped(u):
        return problem.loss(u)

    def wrapped_forward(u):
        return problem.loss_and_gradient_by_members(u)

    def wrapped_backward(gradient, cotangent):
        return (cotangent * gradient,)

    wrapped.defvjp(wrapped_forward, wrapped_backward)
    return wrapped


def fit(
    problem: Problem,
    method: str = "lbfgs",
    *,
    max_steps: int = 200,
    gtol: float = 1e-6,
    ftol: float = 1e-12,
    rtol: float = 1e-6,
    atol: float = 1e-6,
    learning_rate: float = 1e-2,
    gradient: str = "auto",
    init: dict | None = None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 20,
    checkpoint_tag: str = "",
    description: str | None = None,
) -> FitResult:
    """Minimise the problem's -log posterior over its parameters.

    **Arguments:**

    - `method`: `"lbfgs"` (optax L-BFGS with a zoom line search; any likelihood),
      `"gauss_newton"` or `"levenberg_marquardt"` (optimistix; Gaussian errors and
      Gaussian-form priors only), `"adam"` (optax, `learning_rate`; for hybrid models with
      many weights).
    - `max_steps`: iteration limit.
    - Convergence: L-BFGS and Adam stop when the largest gradient entry in the
      unconstrained space is at most `gtol` [loss units], or (L-BFGS) when a step changes
      the loss by at most `ftol` x max(1, |loss|). Gauss-Newton and Levenberg-Marquardt
      use optimistix's Cauchy criterion with `rtol`/`atol` on the parameters and the loss.
    - `gradient`: `"forward"`, `"reverse"`, `"members"` or `"auto"` (forward mode up to
      16 unknowns, then `"members"` for batched problems with member-scoped parameters,
      else reverse; the Jacobians of Gauss-Newton and Levenberg-Marquardt are always
      forward mode). `"members"`: forward mode with one tangent per member-scoped scalar
      for all members together, whose cost does not grow with the number of members.
    - `init`: start values by parameter name (default: each `Parameter`'s start).
    - `progress`: a tqdm bar with the loss (plain lines every tenth of `max_steps` or 30 s
      when stderr is not a terminal).
    - `checkpoint`: a file path; written every `checkpoint_every` steps and at the end,
      and resumed from when it exists (its parameter labels, method and `checkpoint_tag`
      must match, else ValueError). For Gauss-Newton and Levenberg-Marquardt,
      `checkpoint_every` is also the number of steps per jitted chunk (at most
      `max_steps`); the step count then ends on a whole chunk, up to `checkpoint_every` - 1
      steps past `max_steps`.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method in ("gauss_newton", "levenberg_marquardt") and not problem.least_squares:
        raise ValueError(
            f"method {method!r} needs Gaussian likelihoods and Gaussian-form priors; "
            "a Student-t likelihood or a non-Gaussian prior needs method='lbfgs'"
        )
    if gradient not in ("auto", "forward", "reverse", "members"):
        raise ValueError(f"gradient must be 'auto', 'forward', 'reverse' or 'members', got {gradient!r}")
    has_members = problem.members is not None and any(p.scope == "member" for p in problem.parameters)
    if gradient == "members" and not has_members:
        raise ValueError("gradient='members' needs a batched problem with member-scoped parameters")
    if int(max_steps) < 1 or int(checkpoint_every) < 1:
        raise ValueError(f"max_steps and checkpoint_every must be >= 1, got {max_steps!r}, {checkpoint_every!r}")
    least_squares = method in ("gauss_newton", "levenberg_marquardt")
    if gradient == "auto":
        if least_squares or problem.size <= FORWARD_MODE_MAX_UNKNOWNS:
            gradient = "forward"
        else:
            gradient = "members" if has_members else "reverse"
    u = jnp.asarray(problem.u0 if init is None else problem.pack(init))
    bar = progress_bar(max_steps, description or f"fit ({method})", disable=not progress)
    bar.set_postfix_str("compiling and timing the model")

    if gradient == "reverse":
        loss = problem.loss
    elif gradient == "members":
        loss = by_members(problem)
    else:
        loss = forward_mode(problem.loss, problem.size)
    if least_squares:  # loss = |r|^2 / 2, from the residuals the steps evaluate (one compilation)
        loss_at = lambda u: 0.5 * jnp.sum(problem.compiled_residuals(u) ** 2)  # noqa: E731
        start = problem.compiled_residuals(u)
        start_loss = float(0.5 * jnp.sum(start**2))
    else:
        loss_at = jax.jit(problem.loss)
        start_loss = float(loss_at(u))
    forward_time = median_seconds(loss_at, u, repeats=5, budget=COST_TIMING_BUDGET, warm_up=False)
    if least_squares:
        derivative = problem.residuals_and_jacobian
        # one compiled chunk of at most max_steps steps (a fit never runs past max_steps by
        # more than the last chunk's remainder)
        runner = _OptimistixRunner(
            problem,
            method,
            rtol,
            atol,
            min(int(checkpoint_every), int(max_steps)),
            jax.ShapeDtypeStruct(start.shape, start.dtype),
        )
    else:
        derivative = jax.jit(jax.value_and_grad(loss))
        runner = _OptaxRunner(loss, method, learning_rate)
    evaluation_cost = median_seconds(derivative, u, repeats=5, budget=COST_TIMING_BUDGET) / forward_time
    state = runner.init(u)

    path = None if checkpoint is None else Path(checkpoint)
    step_count, history, history_steps, model_runs, previous_wall = 0, [], [], 0, 0.0
    if path is not None and path.exists():
        u, state, step_count, history, history_steps, model_runs, previous_wall = _resume(
            path, problem, method, checkpoint_tag, u, state, runner
        )
    resumed_from = step_count

    compile_start = time.perf_counter()
    step = eqx.filter_jit(runner.step).lower(u, state).compile()
    compile_time = time.perf_counter() - compile_start

    bar.update(step_count)
    bar.set_postfix_str("")
    converged, message = False, f"reached max_steps={max_steps}"
    wall = 0.0

    def save():
        _save(
            path,
            problem,
            method,
            checkpoint_tag,
            u,
            state,
            step_count,
            history,
            history_steps,
            model_runs,
            previous_wall + wall,
            runner,
        )

    try:
        while step_count < max_steps:
            tick = time.perf_counter()
            u, state, value, gradient_max, done, steps, runs = step(u, state)
            jax.block_until_ready(u)
            wall += time.perf_counter() - tick
            value, steps = float(value), int(steps)
            previous = history[-1] if history else None
            history.append(value)
            step_count += steps
            history_steps.append(step_count)
            model_runs += int(runs)
            bar.update(steps)
            bar.set_postfix(loss=f"{value:.6g}")
            if not np.isfinite(value):
                message = f"the loss became {value} at step {step_count}"
                break
            if bool(done):
                converged, message = True, runner.done_message
                break
            if not least_squares and float(gradient_max) <= gtol:
                converged, message = True, f"largest gradient entry {float(gradient_max):.2e} <= gtol"
                break
            if method == "lbfgs" and previous is not None and abs(previous - value) <= ftol * max(1.0, abs(value)):
                converged, message = True, f"loss change {abs(previous - value):.2e} <= ftol x max(1, |loss|)"
                break
            if path is not None and step_count % checkpoint_every < steps:
                save()
    finally:
        bar.close()
    if path is not None:
        save()
    u = np.asarray(u)
    return FitResult(
        problem=problem,
        method=method,
        u=u,
        parameters=problem.unpack(u),
        loss=float(loss_at(u)),
        history=history,
        history_steps=history_steps,
        start_loss=start_loss,
        steps=step_count,
        converged=converged,
        message=message,
        model_runs=model_runs,
        evaluation_cost=evaluation_cost,
        wall_time=previous_wall + wall,
        compile_time=compile_time,
        forward_time=forward_time,
        gradient=gradient,
        resumed_from=resumed_from,
    )


class _OptaxRunner:
    """L-BFGS or Adam, one step per call: returns (u, state, loss at the new u,
    max |gradient| there, done, steps taken, model evaluations with gradient)."""

    def __init__(self, loss, method, learning_rate):
        self.loss = loss
        self.method = method
        self.done_message = ""
        if method == "lbfgs":
            self.optimizer = optax.lbfgs(linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=20))
        else:
            self.optimizer = optax.adam(learning_rate)
        self.serialise_state = True

    def init(self, u):
        return self.optimizer.init(u)

    def step(self, u, state):
        if self.method == "lbfgs":
            # At the first step the line search has not evaluated anything yet, so this
            # evaluates once; later it reuses the line search's last evaluation.
            first = otu.tree_get(state, "count") == 0
            value, gradient = optax.value_and_grad_from_state(self.loss)(u, state=state)
            updates, state = self.optimizer.update(gradient, state, u, value=value, grad=gradient, value_fn=self.loss)
            u = optax.apply_updates(u, updates)
            value, gradient = otu.tree_get(state, "value"), otu.tree_get(state, "grad")
            runs = otu.tree_get(state, "info").num_linesearch_steps + first.astype(int)
        else:
            value, gradient = jax.value_and_grad(self.loss)(u)
            updates, state = self.optimizer.update(gradient, state, u)
            u = optax.apply_updates(u, updates)
            runs = jnp.asarray(1)
        return u, state, value, jnp.max(jnp.abs(gradient)), jnp.asarray(False), jnp.asarray(1), runs


class _OptimistixRunner:
    """Gauss-Newton or Levenberg-Marquardt on the whitened residuals (shape and dtype
    `residuals`), in chunks of steps.

    On the CPU the chunk calls the problem's `compiled_residuals` and
    `residuals_and_jacobian` through host callbacks (the Jacobian as the residuals' JVP)
    instead of tracing the model into the chunk again: the model with its derivatives is
    compiled once for the steps, the cost figures and the Laplace approximation. (On the
    GIPL station this took 10 s off a 40 s run.) Elsewhere the model is traced into the
    chunk, where a callback could not launch device work."""

    def __init__(self, problem, method, rtol, atol, chunk, residuals: jax.ShapeDtypeStruct):
        if jax.default_backend() == "cpu":
            out = residuals, jax.ShapeDtypeStruct((*residuals.shape, problem.size), residuals.dtype)

            def host(function):
                return lambda u: jax.tree_util.tree_map(np.asarray, function(u))

            @jax.custom_jvp
            def residuals(u):
                return jax.pure_callback(host(problem.compiled_residuals), out[0], u, vmap_method="sequential")

            @residuals.defjvp
            def residuals_jvp(primals, tangents):
                r, jacobian = jax.pure_callback(
                    host(problem.residuals_and_jacobian), out, primals[0], vmap_method="sequential"
                )
                return r, jacobian @ tangents[0]

            self.fn = lambda u, args: residuals(u)
        else:
            self.fn = lambda u, args: problem.residuals(u)
        solver = optx.LevenbergMarquardt if method == "levenberg_marquardt" else optx.GaussNewton
        self.solver = solver(rtol=rtol, atol=atol)
        self.chunk = int(chunk)
        self.done_message = "optimistix: parameter and loss changes within rtol/atol"
        self.serialise_state = False

    def init(self, u):
        return jnp.zeros(())

    def step(self, u, state):
        solution = optx.least_squares(self.fn, self.solver, u, max_steps=self.chunk, throw=False)
        steps = solution.stats["num_steps"]
        done = solution.result == optx.RESULTS.successful
        residuals = self.fn(solution.value, None)
        value = 0.5 * jnp.sum(residuals**2)
        # each step evaluates the residuals and their Jacobian once; the closing loss once more
        return solution.value, state, value, jnp.zeros(()), done, steps, steps + 1


def _save(path, problem, method, tag, u, state, step, history, history_steps, model_runs, wall, runner):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    payload = (u, state) if runner.serialise_state else (u,)
    eqx.tree_serialise_leaves(tmp, payload)
    meta = dict(
        method=method,
        tag=tag,
        labels=problem.labels(),
        step=int(step),
        history=history,
        history_steps=history_steps,
        model_runs=int(model_runs),
        wall_time=wall,
    )
    meta_path = path.with_name(path.name + ".json")
    meta_tmp = meta_path.with_name(meta_path.name + ".tmp")
    meta_tmp.write_text(json.dumps(meta))
    tmp.replace(path)
    meta_tmp.replace(meta_path)


def _resume(path, problem, method, tag, u, state, runner):
    meta_path = path.with_name(path.name + ".json")
    if not meta_path.exists():
        raise ValueError(f"checkpoint {path}: its metadata file {meta_path.name} is missing; delete the checkpoint")
    meta = json.loads(meta_path.read_text())
    if meta.get("method") != method or meta.get("labels") != problem.labels() or meta.get("tag", "") != tag:
        raise ValueError(
            f"checkpoint {path} belongs to another fit (method {meta.get('method')!r}, "
            f"{len(meta.get('labels', []))} unknowns); delete it or choose another checkpoint path"
        )
    if runner.serialise_state:
        u, state = eqx.tree_deserialise_leaves(path, (u, state))
    else:
        (u,) = eqx.tree_deserialise_leaves(path, (u,))
        state = runner.init(u)
    history = list(meta["history"])
    history_steps = list(meta.get("history_steps", range(1, len(history) + 1)))
    return u, state, int(meta["step"]), history, history_steps, int(meta["model_runs"]), float(meta["wall_time"])
