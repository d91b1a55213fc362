"""Scale tools for batched problems: the gradient by members (forward mode, one tangent per
member-scoped scalar for all members at once) and the member-block Laplace posterior, each
against a dense computation on a small synthetic glacier region."""

import copy
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cryograd import assimilation as A
from cryograd._run.glacier_region_twin import RegionTwin

EXPERIMENT = Path(__file__).resolve().parents[2] / "experiments" / "glacier_region_twin_scale.toml"


@pytest.fixture(scope="module")
def twin():
    config = tomllib.loads(EXPERIMENT.read_text())
    config["synthetic"]["glaciers"] = 12
    config["observations"]["grace"]["sigma"] = 0.005
    return RegionTwin(config)


def test_gradient_by_members_equals_reverse_mode_and_finite_differences(twin):
    config = copy.deepcopy(twin.config)
    # a shared parameter as well: its tangent moves every glacier
    config["parameters"]["lapse_rate"] = dict(init=-0.006, truth=-0.0065, bounds=[-0.01, -0.003], units="K m-1")
    problem = RegionTwin(config).problem()
    u = jnp.asarray(problem.u0) + 0.3 * jax.random.normal(jax.random.key(1), problem.u0.shape)
    value, reverse = jax.value_and_grad(problem.loss)(u)
    by_value, by_members = jax.jit(problem.loss_and_gradient_by_members)(u)
    assert float(by_value) == pytest.approx(float(value), rel=1e-14)
    np.testing.assert_allclose(by_members, reverse, rtol=1e-10, atol=1e-10 * float(jnp.max(jnp.abs(reverse))))
    h = 1e-6
    for i in (0, 13, 30, problem.size - 1):  # a melt factor, a precipitation factor, a bias, the lapse rate
        e = jnp.zeros(problem.size).at[i].set(h)
        central = (problem.loss(u + e) - problem.loss(u - e)) / (2 * h)
        assert float(by_members[i]) == pytest.approx(float(central), rel=1e-5)
    # fit uses it by default for batched problems with member-scoped parameters
    result = A.fit(problem, "lbfgs", max_steps=3, progress=False)
    assert result.gradient == "members"


def test_member_block_laplace_equals_the_dense_posterior(twin):
    problem = twin.problem()
    fitted = A.fit(problem, "lbfgs", max_steps=500, progress=False)
    assert fitted.converged
    u = jnp.asarray(fitted.u)
    posterior = A.laplace_by_members(problem, u)
    # dense reference with the same Hessian: exact for the per-glacier terms (geodetic rates,
    # priors), Gauss-Newton for the regional series that couples the glaciers
    local, regional = twin.problem(["geodetic"]), twin.problem(["grace"])
    jacobian = jax.jacfwd(lambda v: regional.observations[0].residuals(regional.predictions(v)["grace"]))(u)
    hessian = jax.hessian(local.loss)(u) + jacobian.T @ jacobian
    scale = jax.jacfwd(problem.constrain_flat)(u)
    covariance = scale @ np.linalg.inv(np.asarray(hessian)) @ scale.T
    np.testing.assert_allclose(posterior.std, np.sqrt(np.diag(covariance)), rtol=1e-9)
    np.testing.assert_allclose(posterior.mean, problem.constrain_flat(u), rtol=1e-14)
    # correlation within glacier 3: melt factor with precipitation factor
    n = problem.members
    i, j = 3, n + 3
    expected = covariance[i, j] / np.sqrt(covariance[i, i] * covariance[j, j])
    assert posterior.correlation[3, 0, 1] == pytest.approx(float(expected), rel=1e-8)
    # and the dense exact Laplace (second-order terms of the regional series too) is close
    exact = A.laplace(problem, u, hessian="exact")
    np.testing.assert_allclose(posterior.std, exact.std, rtol=0.05)
    # the regional series matters: without its coupling term the stds are larger
    blocks_only = A.laplace_by_members(local, u)
    assert np.all(blocks_only.std >= posterior.std * (1 - 1e-12))
    assert np.max(blocks_only.std / posterior.std) > 1.05


def test_member_block_laplace_refuses_shared_parameters(twin):
    config = copy.deepcopy(twin.config)
    config["parameters"]["melt_factor"] = dict(init=5.0, truth=5.5, bounds=[1.5, 17.0])
    problem = RegionTwin(config).problem()
    with pytest.raises(ValueError, match="all member-scoped"):
        A.laplace_by_members(problem, problem.u0)
