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

from ._problem import Problem


@dataclass
class Posterior:
    """A posterior summary over the problem's scalar unknowns, in `labels` order.

    `mean` [parameter units] (the optimum for Laplace, the sample mean for NUTS), `std`,
    `correlation` (k, k); `covariance_u` (k, k) in the unconstrained space (Laplace);
    `samples` (draws, k) constrained (NUTS); `diagnostics` (NUTS: acceptance, divergences).
    """

    labels: list
    mean: np.ndarray
    std: np.ndarray
    correlation: np.ndarray
    method: str
    covariance_u: np.ndarray | None = None
    samples: np.ndarray | None = None
    diagnostics: dict | None = None

    def by_name(self) -> dict:
        """label -> {value, std}."""
        return {k: dict(value=float(m), std=float(s)) for k, m, s in zip(self.labels, self.mean, self.std, strict=True)}


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
        jacobian = jax.jit(jax.jacfwd(problem.residuals))(u)
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
    each draw costs up to 2^10 gradient evaluations.
    """
    import blackjax

    logdensity = jax.jit(problem.log_density_unconstrained)
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
