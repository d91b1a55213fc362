"""Closures are fitted like any parameter: `closure_parameters` + `fit`, and optax directly."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import cryograd as cg

P, A = cg.physics, cg.assimilation
YEARS = 20


def setting():
    """A glacier whose true melt factor rises with elevation (4 at 2500 m to 7 at 3600 m
    [kg m-2 day-1 K-1]), observed as noisy annual balances in every band."""
    elevation = np.linspace(2500.0, 3600.0, 12)
    glacier = P.Hypsometry(elevation=elevation, area=np.full(12, 1e5))
    rng = np.random.default_rng(1)
    months = YEARS * 12
    climate = dict(
        temperature=jnp.asarray(
            -1 - 9 * np.cos(2 * np.pi * (np.arange(months) - 0.5) / 12) + rng.normal(0, 1.5, months)
        ),
        precipitation=jnp.asarray(rng.uniform(40, 160, months)),
        reference_elevation=jnp.asarray(3000.0),
        month=jnp.asarray(np.tile(np.arange(1, 13), YEARS)),
        days=jnp.full(months, 30.4),
    )
    truth = 4.0 + 3.0 * (elevation - 2500.0) / 1100.0
    unit = P.MonthlyTemperatureIndex(melt_factor=2.0).run(glacier, climate)
    balance = unit["accumulation"] - truth * unit["melt"] / 2.0  # melt is linear in a band's factor
    observed = np.asarray(balance) + rng.normal(0, 30.0, balance.shape)
    return glacier, climate, truth, observed


def forward(model, inputs):
    glacier, climate = inputs
    return dict(mass_balance=model.run(glacier, climate)["mass_balance"].ravel())


def band_melt_factor(closure, glacier):
    return closure(dict(temperature=0.0, month=7, elevation=glacier.elevation))


def test_fit_trains_a_neural_melt_factor():
    glacier, climate, truth, observed = setting()
    closure = P.neural_melt_factor(jax.random.PRNGKey(0), melt_factor=5.0, elevation=(3050.0, 550.0), width=8, depth=1)
    model = P.MonthlyTemperatureIndex(melt_factor=closure)
    parameters = A.closure_parameters(model, lambda m: m.melt_factor, name="melt", prior_std=10.0)
    assert {p.name for p in parameters} == {
        "melt.network.layers[0].weight",
        "melt.network.layers[0].bias",
        "melt.network.layers[1].weight",
        "melt.network.layers[1].bias",
    }
    calibration = np.arange(observed.size) < (YEARS // 2) * 12  # the first half of the years
    index = np.flatnonzero(calibration)
    observation = A.Series("bands", "mass_balance", index, observed.ravel()[index], 30.0)
    problem = A.Problem(model, forward, parameters, [observation], inputs=(glacier, climate))
    result = A.fit(problem, method="lbfgs", max_steps=300, progress=False)
    fitted = result.model()
    learned = np.asarray(band_melt_factor(fitted.melt_factor, glacier))
    np.testing.assert_allclose(learned, truth, rtol=0.05)
    # held-out years: the closure beats the best constant melt factor
    held_out = ~calibration
    predicted = np.asarray(forward(fitted, (glacier, climate))["mass_balance"])
    constant = A.Problem(
        P.MonthlyTemperatureIndex(melt_factor=5.0),
        forward,
        [A.Parameter("melt_factor", bounds=(1.5, 17))],
        [observation],
        inputs=(glacier, climate),
    )
    baseline = np.asarray(forward(A.fit(constant, progress=False).model(), (glacier, climate))["mass_balance"])
    rmse = lambda p: float(np.sqrt(np.mean((p - observed.ravel())[held_out] ** 2)))  # noqa: E731
    assert rmse(predicted) < 0.5 * rmse(baseline)
    assert rmse(predicted) < 40.0  # the noise is 30


def test_optax_trains_the_network_directly():
    glacier, climate, truth, observed = setting()
    closure = P.neural_melt_factor(jax.random.PRNGKey(1), melt_factor=5.0, elevation=(3050.0, 550.0), width=8, depth=1)
    model = P.MonthlyTemperatureIndex(melt_factor=closure)
    # train only the network's weights: the physical leaves stay fixed
    trainable = jax.tree_util.tree_map(lambda _: False, model)
    trainable = eqx.tree_at(
        lambda m: m.melt_factor, trainable, replace=jax.tree_util.tree_map(eqx.is_inexact_array, model.melt_factor)
    )
    params, static = eqx.partition(model, trainable)
    optimiser = optax.adam(3e-2)

    def loss(p):
        predicted = forward(eqx.combine(p, static), (glacier, climate))["mass_balance"]
        return jnp.mean((predicted - observed.ravel()) ** 2)

    @jax.jit
    def step(p, state):
        value, grads = jax.value_and_grad(loss)(p)
        updates, state = optimiser.update(grads, state, p)
        return optax.apply_updates(p, updates), state, value

    state = optimiser.init(params)
    first = None
    for _ in range(400):
        params, state, value = step(params, state)
        first = value if first is None else first
    trained = eqx.combine(params, static)
    assert float(loss(params)) < 0.1 * float(first)
    np.testing.assert_allclose(band_melt_factor(trained.melt_factor, glacier), truth, rtol=0.08)
    assert trained.lapse_rate == model.lapse_rate


def test_closure_parameters_refuses_a_module_without_weights():
    with pytest.raises(ValueError, match="no floating-point arrays"):
        A.closure_parameters(P.Prescribed(), lambda m: m)
