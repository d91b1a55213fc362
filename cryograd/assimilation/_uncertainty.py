"""Posterior uncertainty: the Laplace approximation, and NUTS on exact gradients to check it.

Laplace: at the optimum u* of the loss (-log posterior of the constrained values, written
in the unconstrained coordinates), the covariance of u is the inverse Hessian of the loss
(`hessian="exact"`, by forward-over-reverse differentiation) or of its Gauss-Newton form
J^T J of the whitened residuals (`hessian="gauss_newton"`). It is mapped to the
constrained values by the reparameterisation's Jacobian (the delta method), which at an
interior optimum is the same Gaussian as the Laplace approximation in the constrained
values themselves.

The sampler (blackjax NUTS with window adaptation) targets the posterior of u with the
reparameterisation's log-Jacobian, so its draws, mapped back, sample the posterior of the
constrained values.
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._problem import Problem, member_dot


@dataclass
class Posterior:
    """A posterior summary over the problem's scalar unknowns, in `labels` order.

    `mean` [parameter units] (the optimum for Laplace, the sample mean for NUTS), `std`,
    `correlation` (k, k); `covariance_u` (k, k) in the unconstrained space and `u` (k,) the
    optimum there (Laplace); `samples` (draws, k) constrained (NUTS); `diagnostics` (NUTS:
    acceptance, divergences).
    """

    labels: list
    mean: np.ndarray
    std: np.ndarray
    correlation: np.ndarray
    method: str
    covariance_u: np.ndarray | None = None
    samples: np.ndarray | None = None
    diagnostics: dict | None = None
    u: np.ndarray | None = None

    def by_name(self) -> dict:
        """label -> {value, std}."""
        return {k: dict(value=float(m), std=float(s)) for k, m, s in zip(self.labels, self.mean, self.std, strict=True)}

    def draws_u(self, count: int, seed: int) -> np.ndarray:
        """`count` draws (count, k) of the unconstrained unknowns from the Laplace Gaussian
        N(`u`, `covariance_u`), with `jax.random.key(seed)`; map one to a model with
        `problem.fitted_model(u)` or to values with `problem.values(u)`. Where an optimum
        lies on a bound, use `parameter_draws`: there the Gaussian in u is far too wide."""
        if self.u is None or self.covariance_u is None:
            raise ValueError(f"posterior: {self.method} has no unconstrained Gaussian to draw from (use laplace)")
        return np.asarray(jax.random.multivariate_normal(jax.random.key(seed), self.u, self.covariance_u, (count,)))


def parameter_draws(problem: Problem, posterior: Posterior, count: int, seed: int) -> np.ndarray:
    """`count` unconstrained vectors (count, k) whose parameter values are drawn from the
    posterior as it is reported: the Gaussian of `mean`, `std` and `correlation` in the
    parameters' own units (numpy `default_rng(seed)`), each value moved inside its bounds
    (to within 1e-9 of the range, or of the bound's size for one bound) where it falls
    outside.

    At an optimum on a bound, the bound's sigmoid or softplus is saturated: the loss is flat
    in u there, the Gaussian in u (`Posterior.draws_u`) is very wide, and its draws land
    far from the fit, even at the other bound, where the data do not allow them. These
    draws keep the spread the posterior states. At an interior optimum the two agree to
    first order.
    """
    covariance = np.nan_to_num(posterior.correlation) * np.outer(posterior.std, posterior.std)
    theta = np.random.default_rng(seed).multivariate_normal(posterior.mean, covariance, size=count, method="eigh")
    draws = np.empty((count, problem.size))
    for p in problem.parameters:
        index = problem._slices[p.name]
        bounds = [b for b in p.bounds if b is not None]
        values = theta[:, index]
        if bounds:
            # the margin inside a bound: 1e-9 of the range, or of the bound's size for one bound
            margin = 1e-9 * (bounds[1] - bounds[0] if len(bounds) == 2 else max(1.0, abs(bounds[0])))
            low, high = p.bounds
            values = np.clip(values, None if low is None else low + margin, None if high is None else high - margin)
        draws[:, index] = p.unconstrain(values)
    return draws


def _correlation(covariance):
    std = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = covariance / np.outer(std, std)
    return std, correlation


def laplace(problem: Problem, u, *, hessian: str = "exact") -> Posterior:
    """Laplace posterior at the optimum `u` (e.g. `fit(...).u`).

    `hessian`: `"exact"` (Hessian of the loss) or `"gauss_newton"` (J^T J of the
    residuals; least-squares problems only). Raises ValueError when the Hessian is not
    positive definite (a parameter the data do not constrain and no prior bounds).
    """
    u = jnp.asarray(u)
    if hessian == "exact":
        h = jax.jit(jax.hessian(problem.loss))(u)
    elif hessian == "gauss_newton":
        jacobian = problem.jacobian(u)
        h = jacobian.T @ jacobian
    else:
        raise ValueError(f"hessian must be 'exact' or 'gauss_newton', got {hessian!r}")
    h = np.asarray(h)
    h = 0.5 * (h + h.T)
    eigenvalues = np.linalg.eigvalsh(h)
    if not eigenvalues[0] > 0:
        labels = problem.labels()
        weakest = labels[int(np.argmin(np.abs(np.diag(h))))]
        raise ValueError(
            f"the Hessian at the optimum is not positive definite (smallest eigenvalue {eigenvalues[0]:.3g}); "
            f"a parameter is not constrained by the data or a prior (weakest: {weakest!r})"
        )
    covariance_u = np.linalg.inv(h)
    jacobian = np.asarray(jax.jacfwd(problem.constrain_flat)(u))
    covariance = jacobian @ covariance_u @ jacobian.T
    std, correlation = _correlation(covariance)
    return Posterior(
        labels=problem.labels(),
        mean=np.asarray(problem.constrain_flat(u)),
        std=std,
        correlation=correlation,
        method=f"laplace ({hessian})",
        covariance_u=covariance_u,
        u=np.asarray(u),
    )


def sample(
    problem: Problem,
    u,
    key,
    *,
    num_warmup: int = 500,
    num_samples: int = 1000,
    progress: bool = False,
) -> Posterior:
    """Draw from the posterior with NUTS (blackjax) on exact gradients, starting at `u`.

    `key` a `jax.random` key. Window adaptation tunes the step size and a diagonal mass
    matrix over `num_warmup` steps. For small problems (a few parameters, a fast model):
    each draw costs up to 2^10 gradient evaluations. With few unknowns (at most
    `FORWARD_MODE_MAX_UNKNOWNS`) the gradient is taken in forward mode, one tangent per
    unknown evaluated after another (`forward_mode(..., unrolled=True)`): reverse mode
    through a batched model run costs far more, and so do vmapped tangents.
    """
    import blackjax

    from ._fit import FORWARD_MODE_MAX_UNKNOWNS, forward_mode

    density = problem.log_density_unconstrained
    if problem.size <= FORWARD_MODE_MAX_UNKNOWNS:
        density = forward_mode(density, problem.size, unrolled=True)
    logdensity = jax.jit(density)
    warmup_key, sample_key = jax.random.split(key)
    adaptation = blackjax.window_adaptation(blackjax.nuts, logdensity)
    (state, parameters), _ = adaptation.run(warmup_key, jnp.asarray(u), num_steps=num_warmup)
    kernel = blackjax.nuts(logdensity, **parameters).step

    def one(state, key):
        state, info = kernel(key, state)
        return state, (state.position, info.is_divergent, info.acceptance_rate)

    keys = jax.random.split(sample_key, num_samples)
    _, (positions, divergent, acceptance) = jax.jit(lambda s, k: jax.lax.scan(one, s, k))(state, keys)
    draws = np.asarray(jax.vmap(problem.constrain_flat)(positions))
    covariance = np.cov(draws, rowvar=False).reshape(draws.shape[1], draws.shape[1])
    std, correlation = _correlation(covariance)
    return Posterior(
        labels=problem.labels(),
        mean=draws.mean(axis=0),
        std=std,
        correlation=correlation,
        method="nuts",
        samples=draws,
        diagnostics=dict(
            divergences=int(np.sum(divergent)),
            mean_acceptance=float(np.mean(acceptance)),
            step_size=float(parameters["step_size"]),
        ),
    )


MAX_COUPLING_ROWS = 500
"""Most residuals an observation that couples members (a regional series) may have in
`laplace_by_members`: its Jacobian is formed row by row."""


def laplace_by_members(problem: Problem, u) -> Posterior:
    """Laplace posterior of a batched problem whose parameters are all member-scoped, at
    the optimum `u`, for any number of members: marginal std of every member's parameters,
    correlations within each member.

    The observations fall into two kinds. Member-local ones have a `member` entry per
    value (e.g. `geodetic_balance(..., member=...)`) and independent errors: with the priors
    they make the loss a sum over members, so their Hessian is block diagonal, one exact
    block (k x k for k scalars per member) per member, found with one forward-over-forward
    Hessian-vector product per member scalar that moves all members at once. The others
    couple the members (a regional mass series, at most `MAX_COUPLING_ROWS` values): their
    Gauss-Newton term J^T J is added with J formed from the members' output Jacobians
    (reverse mode through the observation only). The inverse of blocks + J^T J follows
    from the Woodbury identity, so the cost grows linearly with the members and the full
    covariance is never formed. Needs Gaussian errors on the coupling observations.

    Returns a `Posterior` with `correlation` (member, k, k) (one block per member, labels
    member-major within each parameter as in `problem.labels()`) and no `covariance_u`.
    """
    if problem.members is None or any(p.scope != "member" for p in problem.parameters):
        raise ValueError("laplace_by_members needs a batched problem whose parameters are all member-scoped")
    n = problem.members
    local = [o for o in problem.observations if getattr(o, "member", None) is not None and _independent(o)]
    coupling = [o for o in problem.observations if o not in local]
    for o in coupling:
        if o.likelihood != "gaussian":
            raise ValueError(f"observation {o.name!r}: a coupling observation needs Gaussian errors")
        if o.values.size > MAX_COUPLING_ROWS:
            raise ValueError(
                f"observation {o.name!r} couples members with {o.values.size} values (most {MAX_COUPLING_ROWS})"
            )
    u = jnp.asarray(u)
    index = np.concatenate(
        [np.arange(problem.size)[problem._slices[p.name]].reshape(n, -1) for p in problem.parameters], axis=1
    )  # (member, k): where member m's j-th scalar sits in u
    k = index.shape[1]
    tangents = []
    for j in range(k):
        t = np.zeros(problem.size)
        t[index[:, j]] = 1.0
        tangents.append(jnp.asarray(t))

    local_problem = (
        Problem(
            problem.model,
            problem.forward,
            problem.parameters,
            local,
            problem.inputs,
            members=n,
            input_axes=problem.input_axes,
            member_names=problem.member_names,
        )
        if local
        else None
    )

    def local_gradient(v):
        if local_problem is None:
            return jax.grad(problem.neg_log_prior)(v)
        return local_problem.loss_and_gradient_by_members(v)[1]

    hvp = jax.jit(lambda v, t: jax.jvp(local_gradient, (v,), (t,))[1])
    blocks = np.stack([np.asarray(hvp(u, t))[index] for t in tangents], axis=-1)  # (member, k, k)

    def coupling_rows(v):
        """Each coupling observation's whitened-residual Jacobian by member, (values, member, k)."""

        def outputs_of(w):
            return problem._outputs(problem.values(w))

        values = problem.values(v)
        outputs = outputs_of(v)
        output_tangents = [jax.jvp(outputs_of, (v,), (t,))[1] for t in tangents]
        per_row = jax.vmap(member_dot, in_axes=(0, None))  # residual rows (values, member, ...)
        out = []
        for o in coupling:
            residual = jax.jacrev(lambda out, o=o: o.residuals(o.predict(out, values)))(outputs)
            out.append(jnp.stack([per_row(residual, d_out) for d_out in output_tangents], axis=-1))
        return out

    # compiled: run op by op, the batched model run would hold every intermediate of every member
    rows = [np.asarray(r) for r in jax.jit(coupling_rows)(u)] if coupling else []
    blocks = 0.5 * (blocks + np.swapaxes(blocks, 1, 2))
    eigenvalues = np.linalg.eigvalsh(blocks)
    if not np.all(eigenvalues[:, 0] > 0):
        worst = int(np.argmin(eigenvalues[:, 0]))
        name = problem.member_names[worst] if problem.member_names else worst
        raise ValueError(
            f"the member-local Hessian of member {name} is not positive definite; give each member-scoped "
            "parameter a prior or a member-local observation"
        )
    inverse = np.linalg.inv(blocks)  # (member, k, k)
    covariance = inverse
    if rows:
        j = np.concatenate(rows, axis=0)  # (m, member, k)
        w = np.einsum("gab,mgb->gam", inverse, j)  # Hloc^-1 J^T per member: (member, k, m)
        capacitance = np.eye(j.shape[0]) + np.einsum("mga,gan->mn", j, w)
        covariance = inverse - np.einsum("gam,mn,gbn->gab", w, np.linalg.inv(capacitance), w)
    scale = np.asarray(jax.jvp(problem.constrain_flat, (u,), (jnp.ones_like(u),))[1])[index]  # d value / d u
    covariance = covariance * scale[:, :, None] * scale[:, None, :]
    variance = np.einsum("gaa->ga", covariance)
    std = np.sqrt(np.clip(variance, 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = covariance / (std[:, :, None] * std[:, None, :])
    std_flat = np.zeros(problem.size)
    std_flat[index] = std
    return Posterior(
        labels=problem.labels(),
        mean=np.asarray(problem.constrain_flat(u)),
        std=std_flat,
        correlation=correlation,
        method="laplace by members (exact member blocks + Gauss-Newton coupling, Woodbury)",
    )


def chi_square_model_error(residual, sigma, n_parameters: int) -> tuple[float, float, int]:
    """The model error s (in the residuals' units) that, added in quadrature to the
    observation errors `sigma`, makes a fit's chi-square meet its degrees of freedom:
    sum r^2 / (sigma^2 + s^2) = n - `n_parameters`, for residuals r = predicted - observed
    at the optimum. s = 0 where the errors already explain the misfit (chi-square <= dof)
    or there is no degree of freedom.

    **Returns:** (s, the chi-square with the errors alone, the degrees of freedom).
    """
    from scipy.optimize import brentq

    r, sigma2 = np.asarray(residual, dtype=float), np.asarray(sigma, dtype=float) ** 2
    dof = r.size - int(n_parameters)
    chi2 = float(np.sum(r**2 / sigma2))
    if dof < 1 or chi2 <= dof:
        return 0.0, chi2, dof
    upper = 2.0 * np.sqrt(np.sum(r**2) / dof) + np.sqrt(sigma2.max())
    return float(brentq(lambda s: np.sum(r**2 / (sigma2 + s**2)) - dof, 0.0, upper, xtol=1e-6)), chi2, dof


def _independent(observation) -> bool:
    error = getattr(observation, "error", None)
    return getattr(error, "covariance_cholesky", None) is None and getattr(error, "previous", None) is None
