"""Reverse-mode gradients against float64 central finite differences; no recompiles."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cryograd as cg

P = cg.physics
DAY = 86400.0
NT = 10 * 365


def make_column(curve):
    layers = [
        P.SoilLayer.from_composition(top=0.0, porosity=0.5, saturation=0.9, organic=0.15),
        # saturation < 1: DallAmico's T* has a kink at saturation 1, where one-sided
        # derivatives differ and central differences are meaningless.
        P.SoilLayer.from_composition(top=0.5, porosity=0.35, saturation=0.97),
    ]
    grid = P.Grid.geometric(depth=15.0, n=30, dz_top=0.05)
    return P.PermafrostColumn(grid=grid, layers=layers, freeze_curve=curve, geothermal_flux=0.06)


def forcing():
    days = np.arange(NT)
    return jnp.asarray(-1.0 - 12.0 * np.cos(2 * np.pi * (days - 20) / 365) + 2 * np.sin(days * 0.9))


def loss(column, surface, initial):
    out = column.run(dict(surface_temperature=surface), initial, DAY)
    cells = jnp.array([2, 10, 18])  # about 0.1, 1 and 3.5 m
    return jnp.mean(out["temperature"][:, cells] ** 2)


PARAMETERS = {
    **{
        f"layers[{i}].{name}": (lambda c, i=i, n=name: getattr(c.layers[i], n))
        for i in range(2)
        for name in ("k_thawed", "k_frozen", "c_thawed", "c_frozen", "water_content")
    },
    "freeze_curve.alpha": lambda c: c.freeze_curve.alpha,
    "freeze_curve.n": lambda c: c.freeze_curve.n,
    "geothermal_flux": lambda c: c.geothermal_flux,
}


def check_gradients_with_cells_crossing_zero(days, parameters):
    """Reverse-mode gradients of `loss` over `days` against central differences for the
    named column `parameters`, a random direction of the surface forcing and one of the
    initial state (one compile of the reverse pass for all of them)."""
    column = make_column(P.DallAmico(alpha=3.0, n=1.6))
    surface = forcing()[:days]
    initial = jnp.linspace(-2.0, -1.0, column.grid.n_cells)
    value, (grads, grad_surface, grad_initial) = eqx.filter_jit(
        eqx.filter_value_and_grad(lambda arguments: loss(*arguments))
    )((column, surface, initial))
    assert jnp.isfinite(value)

    temperature = column.run(dict(surface_temperature=surface), initial, DAY)["temperature"]
    for cell in (2, 10):  # cells at 0.1 and 1 m freeze and thaw every year
        assert float(temperature[:, cell].min()) < -0.5 and float(temperature[:, cell].max()) > 0.5

    jitted_loss = eqx.filter_jit(loss)

    def central(perturb, scale):
        eps = 1e-5 * scale
        return (jitted_loss(*perturb(eps)) - jitted_loss(*perturb(-eps))) / (2 * eps)

    checks = {}
    for name in parameters:
        where = PARAMETERS[name]
        base = float(where(column))
        fd = central(lambda e, w=where, b=base: (eqx.tree_at(w, column, jnp.asarray(b + e)), surface, initial), base)
        checks[name] = (float(where(grads)), float(fd))
    direction_surface = jnp.asarray(np.random.default_rng(1).normal(size=days))
    fd = central(lambda e: (column, surface + e * direction_surface, initial), 1.0)
    checks["surface forcing (random direction)"] = (float(grad_surface @ direction_surface), float(fd))
    direction_initial = jnp.asarray(np.random.default_rng(2).normal(size=column.grid.n_cells))
    fd = central(lambda e: (column, surface, initial + e * direction_initial), 1.0)
    checks["initial state (random direction)"] = (float(grad_initial @ direction_initial), float(fd))

    def share_of_bound(name):  # |grad - FD| over the bound asserted below; safe when FD is 0
        adjoint, finite = checks[name]
        return abs(adjoint - finite) / (1e-4 * abs(finite) + 1e-12)

    worst = max(checks, key=share_of_bound)
    print(f"worst gradient error: {share_of_bound(worst):.2g} of the 1e-4 relative bound ({worst})")
    for name, (adjoint, finite) in checks.items():
        assert np.isfinite(adjoint), name
        assert abs(adjoint - finite) <= 1e-4 * abs(finite) + 1e-12, f"{name}: grad {adjoint:.10g} vs FD {finite:.10g}"


@pytest.mark.slow
def test_gradients_match_central_differences_with_cells_crossing_zero():
    """Ten years, every soil and curve parameter."""
    check_gradients_with_cells_crossing_zero(NT, list(PARAMETERS))


def test_gradients_match_central_differences_with_cells_crossing_zero_one_year():
    """The slow test's cheaper twin: one year (a freeze and a thaw), one parameter of each kind."""
    parameters = ["layers[0].k_thawed", "layers[1].c_frozen", "layers[0].water_content", "freeze_curve.alpha"]
    check_gradients_with_cells_crossing_zero(365, [*parameters, "geothermal_flux"])


def accurate_column():
    """The gradient test's column with BDF2 and predicted conductivities: two Newton solves
    per step, the second through the first's state."""
    base = make_column(P.DallAmico(alpha=3.0, n=1.6))
    return P.PermafrostColumn(
        grid=base.grid,
        layers=base.layers,
        freeze_curve=base.freeze_curve,
        geothermal_flux=0.06,
        time_scheme="bdf2",
        conductivity="predicted",
    )


def test_bdf2_with_predicted_conductivity_forward_derivative_matches_central_differences():
    column = accurate_column()
    surface = forcing()[:365]
    initial = jnp.linspace(-2.0, -1.0, column.grid.n_cells)

    def loss_of(k):
        changed = eqx.tree_at(lambda c: c.layers[0].k_thawed, column, k)
        out = changed.run(dict(surface_temperature=surface), initial, DAY, adjoint=diffrax.ForwardMode())
        return jnp.mean(out["temperature"][:, jnp.array([2, 10, 18])] ** 2)

    k = column.layers[0].k_thawed
    _, derivative = jax.jit(lambda k: jax.jvp(loss_of, (k,), (jnp.ones_like(k),)))(k)
    jitted = jax.jit(loss_of)
    fd = (jitted(k * (1 + 1e-5)) - jitted(k * (1 - 1e-5))) / (2e-5 * k)
    assert abs(float(derivative) - float(fd)) <= 1e-4 * abs(float(fd)), (float(derivative), float(fd))


@pytest.mark.slow
def test_bdf2_with_predicted_conductivity_gradients_match_central_differences():
    column = accurate_column()
    surface = forcing()[:365]
    initial = jnp.linspace(-2.0, -1.0, column.grid.n_cells)
    # one reverse pass for the column and the forcing (each compile of it takes ~35 s)
    grads, grad_surface = eqx.filter_jit(eqx.filter_grad(lambda both: loss(*both, initial)))((column, surface))
    jitted_loss = eqx.filter_jit(loss)
    for index, name in ((0, "k_thawed"), (1, "k_frozen"), (0, "water_content")):
        where = lambda c, i=index, n=name: getattr(c.layers[i], n)  # noqa: E731
        base_value = float(where(column))
        eps = 1e-5 * base_value
        plus, minus = (eqx.tree_at(where, column, base_value + e) for e in (eps, -eps))
        fd = (jitted_loss(plus, surface, initial) - jitted_loss(minus, surface, initial)) / (2 * eps)
        assert abs(float(where(grads)) - float(fd)) <= 1e-4 * abs(float(fd)), f"layers[{index}].{name}"
    direction = jnp.asarray(np.random.default_rng(1).normal(size=surface.shape[0]))
    fd = (
        jitted_loss(column, surface + 1e-5 * direction, initial)
        - jitted_loss(column, surface - 1e-5 * direction, initial)
    ) / 2e-5
    assert abs(float(grad_surface @ direction) - float(fd)) <= 1e-4 * abs(float(fd))


def test_sharp_free_water_gradients_are_finite():
    column = make_column(P.FreeWater())
    grads = eqx.filter_grad(loss)(column, forcing(), jnp.full(column.grid.n_cells, -1.5))
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
    assert float(jnp.abs(grads.layers[0].k_thawed)) > 0


def test_second_call_with_new_parameters_does_not_recompile():
    column = make_column(P.FreeWater())
    surface = forcing()[:200]
    initial = jnp.full(column.grid.n_cells, -1.0)
    traces = []

    @eqx.filter_jit
    def run(col):
        traces.append(1)
        return col.run(dict(surface_temperature=surface), initial, DAY)["temperature"]

    first = run(column)
    changed = eqx.tree_at(
        lambda c: (c.layers[0].k_thawed, c.geothermal_flux),
        column,
        (jnp.asarray(0.9, jnp.float64), jnp.asarray(0.1, jnp.float64)),
    )
    second = run(changed)
    assert len(traces) == 1
    assert not np.allclose(np.asarray(first), np.asarray(second))
