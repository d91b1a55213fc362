"""Fitting and uncertainty on a twin problem with known parameters, gradients against
finite differences, checkpoint/resume, batched problems."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cryograd as cg

from ._twin import TRUTH, A, P, forward, setup


@pytest.fixture(scope="module")
def twin():
    problem, _years = setup(seed=0)
    result = A.fit(problem, "levenberg_marquardt", progress=False)
    return problem, result


def test_twin_recovers_parameters_and_laplace_matches_nuts(twin):
    problem, result = twin
    assert result.converged, result.message
    posterior = A.laplace(problem, result.u)
    truth = np.array([TRUTH[label] for label in posterior.labels])
    z = (posterior.mean - truth) / posterior.std
    relative = np.abs(posterior.mean - truth) / np.abs(truth)
    assert np.all(np.abs(z) < 2.0), dict(zip(posterior.labels, z, strict=True))
    assert np.all(relative < 0.05), dict(zip(posterior.labels, relative, strict=True))
    nuts = A.sample(problem, result.u, jax.random.key(1), num_warmup=200, num_samples=400)
    assert nuts.diagnostics["divergences"] == 0
    ratio = posterior.std / nuts.std
    assert np.all(np.abs(ratio - 1.0) < 0.3), dict(zip(posterior.labels, ratio, strict=True))
    assert np.all(np.abs(nuts.mean - posterior.mean) < 0.5 * nuts.std)


def test_methods_reach_the_same_optimum(twin):
    problem, result = twin
    lbfgs = A.fit(problem, "lbfgs", progress=False)
    assert lbfgs.converged
    assert lbfgs.loss == pytest.approx(result.loss, abs=1e-4)
    for name in TRUTH:
        assert lbfgs.parameters[name] == pytest.approx(result.parameters[name], rel=1e-4)
    reverse = A.fit(problem, "lbfgs", gradient="reverse", progress=False)
    assert reverse.loss == pytest.approx(result.loss, abs=1e-4)
    # the cost is counted and the Hintereisferner-size problem is cheap
    assert 0 < result.model_runs <= result.steps + 20
    assert result.forward_equivalents < 500


def test_z_scores_over_seeds_are_calibrated():
    """Across 8 noise realisations, about 95 % of the 24 z-scores should lie within 2."""
    z = []
    for seed in range(1, 9):
        problem, _ = setup(seed=seed, start=1953)
        result = A.fit(problem, "levenberg_marquardt", progress=False)
        posterior = A.laplace(problem, result.u, hessian="gauss_newton")
        z.extend((posterior.mean - np.array([TRUTH[k] for k in posterior.labels])) / posterior.std)
    assert np.mean(np.abs(z) < 2.0) >= 0.8, np.round(z, 2)


def test_loss_gradient_matches_finite_differences(twin):
    problem, _result = twin
    u = jnp.asarray(problem.u0) + 0.1
    exact = jax.grad(problem.loss)(u)
    forward_mode = jax.grad(A._fit.forward_mode(problem.loss, problem.size))(u)
    h = 1e-6
    fd = np.array([(problem.loss(u + h * e) - problem.loss(u - h * e)) / (2 * h) for e in np.eye(problem.size)])
    np.testing.assert_allclose(exact, fd, rtol=1e-5)
    np.testing.assert_allclose(forward_mode, exact, rtol=1e-10)


def test_checkpoint_resume_gives_the_uninterrupted_result(tmp_path, twin):
    problem, _ = twin
    whole = A.fit(problem, "lbfgs", progress=False)
    path = tmp_path / "fit.eqx"
    first = A.fit(problem, "lbfgs", progress=False, max_steps=5, checkpoint=path, checkpoint_every=2)
    assert first.steps == 5 and not first.converged
    resumed = A.fit(problem, "lbfgs", progress=False, checkpoint=path)
    assert resumed.resumed_from == 5
    assert resumed.steps == whole.steps
    np.testing.assert_allclose(resumed.u, whole.u, rtol=1e-12)
    assert resumed.history == pytest.approx(whole.history, rel=1e-12)
    with pytest.raises(ValueError, match="another fit"):
        A.fit(problem, "adam", progress=False, checkpoint=path)


def test_levenberg_marquardt_resumes_from_its_checkpoint(tmp_path, twin):
    problem, result = twin
    path = tmp_path / "lm.eqx"
    A.fit(problem, "levenberg_marquardt", progress=False, max_steps=3, checkpoint=path, checkpoint_every=3)
    resumed = A.fit(problem, "levenberg_marquardt", progress=False, checkpoint=path, checkpoint_every=3)
    assert resumed.resumed_from == 3
    assert resumed.loss == pytest.approx(result.loss, abs=1e-6)


def test_student_t_needs_lbfgs_and_bounds_an_outlier_s_influence():
    """An outlier moves the Student-t fit less than the Gaussian fit."""
    problem, _years = setup(seed=0, start=1953)
    annual = problem.observations[0]
    clean = np.asarray(annual.values)
    wild = clean.copy()
    wild[10] += 3000.0
    shift = {}
    for likelihood in ("gaussian", "student_t"):
        fitted = []
        for values in (clean, wild):
            operator = A.Series(
                "annual", "specific_mass_balance", annual.index, values, annual.sigma, likelihood=likelihood, dof=3.0
            )
            p = A.Problem(
                problem.model, forward, problem.parameters, [operator, *problem.observations[1:]], problem.inputs
            )
            fitted.append(A.fit(p, "lbfgs", progress=False).u)
        shift[likelihood] = np.abs(fitted[1] - fitted[0])
        if likelihood == "student_t":
            with pytest.raises(ValueError, match="lbfgs"):
                A.fit(p, "levenberg_marquardt", progress=False)
    assert np.all(shift["student_t"] < 0.2 * shift["gaussian"]), shift


def test_batched_problem_with_per_glacier_biases():
    """Three glaciers share a melt factor and each has its own temperature bias."""
    problem, years = setup(seed=0, start=1953)
    single = problem.inputs
    shift = np.array([-300.0, 0.0, 250.0])  # three glaciers at different heights
    glacier = P.Hypsometry(
        np.asarray(single["glacier"].elevation)[None] + shift[:, None],
        np.repeat(np.asarray(single["glacier"].area)[None], 3, axis=0),
    )
    inputs = dict(
        glacier=glacier, climate={k: jnp.broadcast_to(v, (3, *v.shape)) for k, v in single["climate"].items()}
    )
    truth_bias = np.array([-0.5, 0.3, 1.2])
    model = P.MonthlyTemperatureIndex(year_start_month=10, melt_factor=5.0, precipitation_factor=2.0)
    truth = jax.vmap(
        lambda b, x: forward(
            cg.physics.MonthlyTemperatureIndex(
                year_start_month=10, melt_factor=5.0, precipitation_factor=2.0, temperature_bias=b
            ),
            x,
        )
    )(jnp.asarray(truth_bias), inputs)
    observations = [
        A.Series(
            f"annual_{g}",
            "specific_mass_balance",
            np.arange(years.size),
            np.asarray(truth["specific_mass_balance"][g]),
            50.0,
            member=g,
        )
        for g in range(3)
    ]
    parameters = [
        A.Parameter("melt_factor", init=7.0, bounds=(1.5, 17.0)),
        A.Parameter("temperature_bias", init=0.0, scope="glacier", prior=A.Normal(0.0, 3.0)),
    ]
    batched = A.Problem(model, forward, parameters, observations, inputs, members=3, member_names=["a", "b", "c"])
    assert batched.labels() == ["melt_factor", "temperature_bias[a]", "temperature_bias[b]", "temperature_bias[c]"]
    result = A.fit(batched, "levenberg_marquardt", progress=False)
    np.testing.assert_allclose(result.parameters["melt_factor"], 5.0, rtol=1e-3)
    np.testing.assert_allclose(result.parameters["temperature_bias"], truth_bias, atol=5e-3)
    assert float(result.model(member=2).temperature_bias) == pytest.approx(truth_bias[2], abs=5e-3)


def test_levenberg_marquardt_stops_at_max_steps_below_the_chunk(twin):
    """max_steps below checkpoint_every: one chunk of max_steps steps (it ran a whole chunk of 20)."""
    problem, _ = twin
    short = A.fit(problem, "levenberg_marquardt", progress=False, max_steps=2)
    assert short.steps == 2 and short.history_steps == [2]
    assert short.loss < short.start_loss


def test_with_leaves_sets_leaves_and_elements_by_path():
    soil = dict(water_content=0.3, k_thawed=1.2, k_frozen=2.0, c_thawed=2.5e6, c_frozen=1.9e6)
    column = P.PermafrostColumn(
        grid=P.Grid.uniform(depth=2.0, dz=0.5),
        layers=[P.SoilLayer(top=0.0, **soil), P.SoilLayer(top=1.0, **soil)],
        freeze_curve=P.FreeWater(),
        surface=P.NFactor(),
    )
    changed = A.with_leaves(column, {"layers.1.k_frozen": 1.5, "geothermal_flux": 0.07})
    assert float(changed.layers[1].k_frozen) == 1.5 and float(changed.layers[0].k_frozen) == 2.0
    assert float(changed.geothermal_flux) == 0.07 and changed.geothermal_flux.dtype == np.float64
    edges = A.with_leaves(column, {"grid.edges.2": 1.1}).grid.edges
    np.testing.assert_array_equal(edges, [0.0, 0.5, 1.1, 1.5, 2.0])  # one element of an array leaf
    with pytest.raises(ValueError, match=r"layers\.1\.nonsense"):
        A.with_leaves(column, {"layers.1.nonsense": 1.0})


def test_chi_square_model_error_meets_the_degrees_of_freedom():
    rng = np.random.default_rng(3)
    sigma = rng.uniform(0.5, 2.0, 40)
    residual = rng.normal(0.0, np.hypot(sigma, 1.5))  # errors of 1.5 beyond the stated ones
    s, chi2, dof = A.chi_square_model_error(residual, sigma, 3)
    assert dof == 37 and chi2 > dof and s > 0
    np.testing.assert_allclose(np.sum(residual**2 / (sigma**2 + s**2)), dof, rtol=1e-6)
    assert 0.8 < s < 2.5  # near the 1.5 the residuals were drawn with
    small = rng.normal(0.0, 0.5 * sigma)  # the stated errors already explain these
    assert A.chi_square_model_error(small, sigma, 3)[0] == 0.0
    assert A.chi_square_model_error(residual[:2], sigma[:2], 2)[0] == 0.0  # no degree of freedom


def test_parameter_draws_keep_the_posterior_s_spread_at_a_bound():
    """The melt factor's lower bound (5.6) lies above the truth (5.2), so the fit ends on
    it: its sigmoid saturates, the Gaussian in u is very wide, and its draws wander far
    from the fit. `parameter_draws` follow the reported posterior (mean, std, correlation)
    and stay inside the bounds."""
    base, _ = setup(start=1953, end=2002)
    parameters = [
        A.Parameter("melt_factor", init=6.0, bounds=(5.6, 17.0)),
        A.Parameter("precipitation_factor", init=2.5, bounds=(0.1, 10.0)),
        A.Parameter("temperature_bias", init=0.0, prior=A.Normal(0.0, 2.0)),
    ]
    problem = A.Problem(base.model, forward, parameters, base.observations, base.inputs)
    result = A.fit(problem, "levenberg_marquardt", progress=False)
    posterior = A.laplace(problem, result.u, hessian="gauss_newton")
    melt, std = posterior.mean[0], posterior.std[0]
    assert melt - 5.6 < 0.05  # on the bound
    drawn = np.stack([problem.constrain_flat(u) for u in A.parameter_draws(problem, posterior, 400, 1)])
    assert drawn[:, 0].min() > 5.6 and drawn[:, 0].max() < melt + 5 * std
    np.testing.assert_allclose(drawn[:, 1:].std(axis=0), posterior.std[1:], rtol=0.15)  # interior: as reported
    np.testing.assert_allclose(np.corrcoef(drawn[:, 1:].T)[0, 1], posterior.correlation[1, 2], atol=0.1)
    wide = np.stack([problem.constrain_flat(u) for u in posterior.draws_u(400, 1)])
    assert wide[:, 0].max() > melt + 5 * std  # the Gaussian in u: far from the fit
    repeat = A.parameter_draws(problem, posterior, 400, 1)
    np.testing.assert_array_equal(repeat, A.parameter_draws(problem, posterior, 400, 1))
