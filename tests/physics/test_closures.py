"""Closures: networks inside the physics reproduce the defaults they replace, and gradients reach their weights."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg

P = cg.physics
DAY = 86400.0


@eqx.filter_jit
def temperature(model, f, initial):
    return model.run(f, initial, DAY)["temperature"]


def column(surface):
    return P.PermafrostColumn(
        grid=P.Grid.geometric(depth=15.0, n=30, dz_top=0.03),
        layers=[
            P.SoilLayer.from_composition(top=0.0, porosity=0.5, saturation=0.9, organic=0.15),
            P.SoilLayer.from_composition(top=0.4, porosity=0.35, saturation=0.97),
        ],
        freeze_curve=P.FreeWater(width=0.3),
        surface=surface,
    )


def forcing(years=2, seed=0):
    rng = np.random.default_rng(seed)
    days = np.arange(365 * years)
    air = -8.0 - 15.0 * np.cos(2 * np.pi * (days - 20) / 365) + rng.normal(0, 3, days.size)
    snow = np.clip(0.4 * np.cos(2 * np.pi * (days - 40) / 365), 0.0, None)
    doy = (days % 365) + 1.0
    return dict(air_temperature=jnp.asarray(air), snow_depth=jnp.asarray(snow), day_of_year=jnp.asarray(doy))


def n_factor_offset(freezing, thawing):
    def offset(inputs):
        air = inputs["air_temperature"]
        return jnp.where(air < 0, (freezing - 1.0) * air, (thawing - 1.0) * air)

    return offset


def weights(model):
    return jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))


def test_new_closure_is_its_constant_default():
    closure = P.MLPClosure(("x", "month"), key=jax.random.PRNGKey(0), period=(None, 12.0), output_centre=2.5)
    value = closure(dict(x=jnp.linspace(-3, 3, 12).reshape(3, 4), month=jnp.arange(1, 5)))
    assert value.shape == (3, 4) and value.dtype == jnp.float64
    np.testing.assert_array_equal(value, 2.5)


def test_new_neural_surface_offset_reproduces_n_factors_one():
    f = forcing()
    initial = jnp.full(30, -2.0)
    neural = temperature(column(P.NeuralSurfaceOffset(jax.random.PRNGKey(3))), f, initial)
    physical = temperature(column(P.NFactor(1.0, 1.0)), f, initial)
    np.testing.assert_allclose(neural, physical, rtol=0, atol=1e-12)


def test_mimicked_surface_offset_reproduces_calibrated_n_factors():
    """A network trained only to imitate the n-factor offset (no column in the loop) gives
    the n-factor column's ground temperatures."""
    surface = P.NeuralSurfaceOffset(jax.random.PRNGKey(1))
    f = forcing(seed=2)
    target = n_factor_offset(0.55, 1.15)
    closure, rms = surface.closure.mimic(target, f, steps=3000, learning_rate=1e-2)
    assert rms < 0.06  # K, over the two years of daily forcing
    assert float(jnp.std(closure(f) - surface.closure(f))) > 1.0  # it did learn something
    initial = jnp.full(30, -2.0)
    neural = temperature(column(P.NeuralSurfaceOffset(closure=closure)), f, initial)
    physical = temperature(column(P.NFactor(0.55, 1.15)), f, initial)
    difference = jnp.abs(neural - physical)
    assert float(jnp.sqrt(jnp.mean(difference**2))) < 0.02  # K, all cells and days
    # the largest differences sit in the top cells on days near 0 degC (the n-factors' kink)
    assert float(jnp.max(difference[:, 10:])) < 0.1


def test_gradients_reach_every_weight_of_the_surface_offset():
    surface = P.NeuralSurfaceOffset(
        closure=P.MLPClosure(
            ("air_temperature", "snow_depth", "day_of_year"),
            key=jax.random.PRNGKey(4),
            scale=(15.0, 0.3, 1.0),
            period=(None, None, 365.25),
            output_scale=3.0,
            width=6,
            depth=2,
            zero_init=False,
        )
    )
    f = forcing(years=1)
    initial = jnp.full(30, -2.0)

    @eqx.filter_jit
    def loss(model):
        return jnp.mean(model.run(f, initial, DAY)["temperature"][:, 5:12] ** 2)

    model = column(surface)
    grads = eqx.filter_grad(loss)(model)
    for g in weights(grads.surface.closure):
        assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.max(jnp.abs(g))) > 0
    # central differences on one weight of each layer
    for layer in range(3):
        select = lambda m, layer=layer: m.surface.closure.network.layers[layer].weight  # noqa: E731
        h = 1e-5
        shifted = [eqx.tree_at(select, model, select(model).at[0, 0].add(s)) for s in (h, -h)]
        numeric = (loss(shifted[0]) - loss(shifted[1])) / (2 * h)
        np.testing.assert_allclose(select(grads)[0, 0], numeric, rtol=1e-4)


def test_simulate_derives_day_of_year():
    time = pd.date_range("2001-01-01", periods=400, freq="D")
    f = forcing(years=2)
    ds = xr.Dataset(
        {
            "air_temperature": ("time", np.asarray(f["air_temperature"][:400]), {"units": "degC"}),
            "snow_depth": ("time", np.asarray(f["snow_depth"][:400]), {"units": "m"}),
        },
        coords={"time": time},
    )
    closure = P.MLPClosure(("day_of_year",), key=jax.random.PRNGKey(0), period=(365.25,), zero_init=False)
    model = column(P.NeuralSurfaceOffset(closure=closure))
    out = model.simulate(ds, initial_temperature=-2.0, dt=DAY)
    expected = ds.air_temperature.values + np.asarray(closure(dict(day_of_year=time.day_of_year.values)))
    np.testing.assert_allclose(out.surface_temperature.values, expected, rtol=1e-12)


def region():
    glacier = P.Hypsometry(elevation=np.linspace(2500, 3600, 12), area=np.full(12, 1e5))
    rng = np.random.default_rng(0)
    months = 24 * 12
    climate = dict(
        temperature=jnp.asarray(
            -2 - 8 * np.cos(2 * np.pi * (np.arange(months) - 0.5) / 12) + rng.normal(0, 1.5, months)
        ),
        precipitation=jnp.asarray(rng.uniform(40, 160, months)),
        reference_elevation=jnp.asarray(3000.0),
        month=jnp.asarray(np.tile(np.arange(1, 13), 24)),
        days=jnp.full(months, 30.4),
    )
    return glacier, climate


def test_new_neural_melt_factor_reproduces_the_constant():
    glacier, climate = region()
    closure = P.neural_melt_factor(jax.random.PRNGKey(0), melt_factor=6.2)
    neural = P.MonthlyTemperatureIndex(melt_factor=closure).run(glacier, climate)
    physical = P.MonthlyTemperatureIndex(melt_factor=6.2).run(glacier, climate)
    np.testing.assert_allclose(neural["mass_balance"], physical["mass_balance"], rtol=1e-13, atol=1e-9)


def test_gradients_reach_every_weight_of_the_melt_factor():
    glacier, climate = region()
    closure = P.MLPClosure(
        ("temperature", "month", "elevation"),
        key=jax.random.PRNGKey(2),
        centre=(0, 0, 3000),
        scale=(5, 1, 500),
        period=(None, 12, None),
        output_centre=6.0,
        output_scale=0.5,
        positive=True,
        width=5,
        depth=1,
        zero_init=False,
    )
    model = P.MonthlyTemperatureIndex(melt_factor=closure)

    @eqx.filter_jit
    def loss(m):
        return jnp.sum(m.run(glacier, climate)["specific_mass_balance"] ** 2) * 1e-6

    grads = eqx.filter_grad(loss)(model)
    for g in weights(grads.melt_factor):
        assert float(jnp.max(jnp.abs(g))) > 0
    select = lambda m: m.melt_factor.network.layers[0].bias  # noqa: E731
    h = 1e-6
    for i in range(3):
        numeric = (
            loss(eqx.tree_at(select, model, select(model).at[i].add(h)))
            - loss(eqx.tree_at(select, model, select(model).at[i].add(-h)))
        ) / (2 * h)
        np.testing.assert_allclose(select(grads)[i], numeric, rtol=1e-5)


def test_closures_refuse_bad_arguments():
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="scale"):
        P.MLPClosure(("a",), key=key, scale=(0.0,))
    with pytest.raises(ValueError, match="centre needs one value per input"):
        P.MLPClosure(("a", "b"), key=key, centre=(0.0,))
    with pytest.raises(ValueError, match="output_centre > 0"):
        P.MLPClosure(("a",), key=key, positive=True)
    with pytest.raises(ValueError, match="distinct"):
        P.MLPClosure(("a", "a"), key=key)
    with pytest.raises(ValueError, match="either key"):
        P.NeuralSurfaceOffset()
    with pytest.raises(ValueError, match=r"missing \['snow_depth'\]"):
        P.NeuralSurfaceOffset(key).closure(dict(air_temperature=1.0, day_of_year=3.0))


def test_native_solver_differentiates_a_network_surface_like_the_jax_solver():
    """A sharp free-water column with a network in its surface (whose activation function
    is a non-array leaf) runs on the native solver under `solver="auto"`; reverse- and
    forward-mode derivatives with respect to the weights equal the JAX solver's."""
    surface = P.NeuralSurfaceOffset(
        closure=P.MLPClosure(
            ("air_temperature", "day_of_year"),
            key=jax.random.PRNGKey(5),
            scale=(15.0, 1.0),
            period=(None, 365.25),
            output_scale=3.0,
            width=4,
            depth=1,
            zero_init=False,
        )
    )
    f = forcing(years=1)
    initial = jnp.full(30, -2.0)
    native = column(surface).replace(freeze_curve=P.FreeWater())
    if not native.uses_native:
        pytest.skip("the native kernel is not built here")
    reference = native.replace(solver="jax")

    def loss(model, adjoint=None):
        return jnp.mean(model.run(f, initial, DAY, adjoint=adjoint)["temperature"][:, 3:12] ** 2)

    select = lambda m: m.surface.closure.network.layers[0].weight  # noqa: E731
    reverse = [select(eqx.filter_grad(loss)(m)) for m in (native, reference)]
    forward = [
        jax.jacfwd(lambda w, m=m, a=a: loss(eqx.tree_at(select, m, w), a))(select(m))
        for m, a in ((native, None), (reference, diffrax.ForwardMode()))
    ]
    for got, want in (reverse, forward):
        assert float(jnp.max(jnp.abs(want))) > 0
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9 * float(jnp.max(jnp.abs(want))))
