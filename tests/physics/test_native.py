"""The native soil-column solver (C++ through XLA's FFI) against the JAX solver it mirrors:
the same discrete problem, so the same answers to Newton's tolerance; energy closure;
derivatives (JAX's own and central differences); batching; refusals."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cryograd as cg

P = cg.physics
DAY = 86400.0


def layers():
    return [
        P.SoilLayer.from_composition(top=0.0, porosity=0.5, saturation=0.9, organic=0.2),
        P.SoilLayer.from_composition(top=0.3, porosity=0.4, saturation=1.0),
        P.SoilLayer.from_composition(top=2.0, porosity=0.3, saturation=1.0),
    ]


def columns(**options):
    grid = P.Grid.geometric(depth=15.0, n=40, dz_top=0.02)
    return {
        solver: P.PermafrostColumn(grid=grid, layers=layers(), solver=solver, **options) for solver in ("jax", "native")
    }


def seasonal(days, seed=0, mean=-3.0, amplitude=12.0, noise=3.0):
    day = np.arange(days)
    rng = np.random.default_rng(seed)
    return jnp.asarray(mean - amplitude * np.cos(2 * np.pi * (day - 15) / 365) + rng.normal(0, noise, days))


SCHEMES = [("euler", "lagged"), ("euler", "predicted"), ("bdf2", "lagged"), ("bdf2", "predicted")]


@pytest.mark.parametrize(("time_scheme", "conductivity"), SCHEMES)
def test_native_solver_equals_the_jax_solver(time_scheme, conductivity):
    """Two years through freeze and thaw: temperatures within 1e-9 K, boundary heat within
    1e-9 of its range, the same Newton statistics where the iteration is the same (the
    native predicted pass starts from the first solution, so it needs fewer iterations)."""
    pair = columns(time_scheme=time_scheme, conductivity=conductivity)
    forcing = {"surface_temperature": seasonal(730)}
    initial = jnp.linspace(-2.0, -1.0, 40)
    out = {s: eqx.filter_jit(lambda c: c.run(forcing, initial, DAY, save_every=5))(c) for s, c in pair.items()}
    fraction = out["jax"]["liquid_water_fraction"]
    assert float(fraction.max()) == 1.0 and float(fraction.min()) == 0.0  # it froze and thawed
    difference = jnp.abs(out["native"]["temperature"] - out["jax"]["temperature"])
    assert float(difference.max()) <= 1e-9, float(difference.max())
    for name in ("surface_heat_input", "bottom_heat_input"):
        scale = float(jnp.abs(out["jax"][name]).max())
        assert float(jnp.abs(out["native"][name] - out["jax"][name]).max()) <= 1e-9 * scale, name
    assert float(out["native"]["unconverged_steps"]) == 0.0 and out["native"]["result"] == out["jax"]["result"]
    if conductivity == "lagged":
        for name in ("mean_iterations", "max_iterations"):
            assert float(out["native"][name]) == float(out["jax"][name]), name
    else:
        assert 1.0 <= float(out["native"]["mean_iterations"]) <= float(out["jax"]["mean_iterations"])


@pytest.mark.parametrize(
    "options",
    [
        dict(surface=P.PrescribedFlux(), bottom_temperature=-1.5),
        dict(surface=P.NFactor(freezing=0.7, thawing=0.9), time_scheme="bdf2", conductivity="predicted"),
    ],
    ids=["flux-surface-fixed-bottom", "n-factors-bdf2"],
)
def test_native_solver_handles_the_other_boundaries(options):
    pair = columns(**options)
    variable = pair["jax"].surface.forcing_variables[0]
    values = seasonal(400) if variable != "surface_heat_flux" else 40.0 * jnp.sin(2 * np.pi * jnp.arange(400) / 365)
    forcing = {variable: values}
    out = {s: eqx.filter_jit(lambda c: c.run(forcing, -1.0, DAY))(c) for s, c in pair.items()}
    assert float(jnp.abs(out["native"]["temperature"] - out["jax"]["temperature"]).max()) <= 1e-9
    assert float(jnp.abs(out["native"]["surface_temperature"] - out["jax"]["surface_temperature"]).max()) <= 1e-9


@pytest.mark.parametrize(("time_scheme", "conductivity"), [("euler", "lagged"), ("bdf2", "predicted")])
def test_native_energy_closes(time_scheme, conductivity):
    """Column enthalpy change = surface + bottom heat input, to 1e-9 of the heat exchanged."""
    column = columns(time_scheme=time_scheme, conductivity=conductivity)["native"]
    initial = jnp.linspace(-2.0, -1.0, 40)
    out = column.run({"surface_temperature": seasonal(1095, seed=3, noise=6.0)}, initial, DAY)
    thickness = column.grid.thickness
    change = jnp.sum(thickness * (out["enthalpy"] - column.enthalpy(initial)), axis=1)
    supplied = out["surface_heat_input"] + out["bottom_heat_input"]
    exchanged = float(jnp.abs(jnp.diff(out["surface_heat_input"])).sum())
    assert float(jnp.abs(change - supplied).max()) <= 1e-9 * exchanged


@pytest.mark.parametrize(("time_scheme", "conductivity"), [("euler", "lagged"), ("bdf2", "predicted")])
def test_native_gradients_equal_the_jax_solver_s_and_central_differences(time_scheme, conductivity):
    pair = columns(time_scheme=time_scheme, conductivity=conductivity)
    surface = seasonal(400, seed=1)
    initial = jnp.linspace(-2.0, -1.0, 40)

    def loss(column, surface):
        out = column.run({"surface_temperature": surface}, initial, DAY)
        return jnp.mean(out["temperature"][:, jnp.array([2, 10, 18])] ** 2)

    grad = eqx.filter_jit(eqx.filter_grad(lambda both: loss(*both)))
    (g_native, s_native), (g_jax, s_jax) = grad((pair["native"], surface)), grad((pair["jax"], surface))
    where = {
        "layers[0].k_thawed": lambda c: c.layers[0].k_thawed,
        "layers[1].water_content": lambda c: c.layers[1].water_content,
        "layers[2].c_frozen": lambda c: c.layers[2].c_frozen,
        "geothermal_flux": lambda c: c.geothermal_flux,
    }
    for name, at in where.items():
        assert abs(float(at(g_native)) - float(at(g_jax))) <= 1e-8 * abs(float(at(g_jax))), name
    assert float(jnp.abs(s_native - s_jax).max()) <= 1e-8 * float(jnp.abs(s_jax).max())
    # central differences of the native run itself, and its forward mode
    column, jitted = pair["native"], eqx.filter_jit(loss)
    base = float(column.layers[0].k_thawed)
    eps = 1e-5 * base
    fd = (
        jitted(eqx.tree_at(where["layers[0].k_thawed"], column, base + eps), surface)
        - jitted(eqx.tree_at(where["layers[0].k_thawed"], column, base - eps), surface)
    ) / (2 * eps)
    assert abs(float(g_native.layers[0].k_thawed) - float(fd)) <= 1e-4 * abs(float(fd))
    _, forward = jax.jvp(
        lambda k: loss(eqx.tree_at(where["layers[0].k_thawed"], column, k), surface),
        (jnp.asarray(base),),
        (jnp.asarray(1.0),),
    )
    assert abs(float(forward) - float(fd)) <= 1e-4 * abs(float(fd))


def test_native_batches_columns_with_their_own_parameters():
    """vmap over columns (other conductivities and forcings) equals each column alone."""
    column = columns()["native"]
    k = jnp.array([0.6, 1.0, 1.7])
    forcing = jnp.stack([seasonal(365, seed=s) for s in range(3)])

    def run(k, surface):
        changed = eqx.tree_at(lambda c: c.layers[0].k_thawed, column, k)
        return changed.run({"surface_temperature": surface}, -1.0, DAY, save_every=73)["temperature"]

    batched = jax.jit(jax.vmap(run))(k, forcing)
    for i in range(3):
        assert float(jnp.abs(batched[i] - run(k[i], forcing[i])).max()) == 0.0


def test_native_simulate_over_sites_equals_the_jax_solver():
    days = 365 * 2
    time = np.datetime64("2001-01-01") + np.arange(days).astype("timedelta64[D]")
    import xarray as xr

    values = np.stack([np.asarray(seasonal(days, seed=s)) for s in range(2)])
    forcing = xr.Dataset(
        {"surface_temperature": (("site", "time"), values, {"units": "degC"})}, coords={"time": time, "site": [0, 1]}
    )
    out = {s: c.simulate(forcing) for s, c in columns().items()}
    assert float(np.abs(out["native"].temperature - out["jax"].temperature).max()) <= 1e-9
    assert np.allclose(out["native"].active_layer_thickness, out["jax"].active_layer_thickness, atol=1e-9)


def test_adversarial_forcing_stays_finite_and_reports_its_iterations():
    """Surface alternating +-50 degC daily over a 1 mm top cell with water content 0.9."""
    grid = P.Grid.geometric(depth=10.0, n=60, dz_top=0.001)
    wet = P.SoilLayer.from_composition(top=0.0, porosity=0.9, saturation=1.0)
    for time_scheme, conductivity in [("euler", "lagged"), ("bdf2", "predicted")]:
        column = P.PermafrostColumn(
            grid=grid, layers=[wet], solver="native", time_scheme=time_scheme, conductivity=conductivity
        )
        surface = jnp.where(jnp.arange(730) % 2 == 0, 50.0, -50.0)
        out = column.run({"surface_temperature": surface}, -2.0, DAY, throw=False)
        assert bool(jnp.all(jnp.isfinite(out["temperature"])))
        assert float(out["unconverged_steps"]) >= 0.0
        assert 1.0 <= float(out["mean_iterations"]) <= float(out["max_iterations"]) <= 200.0
        statistics = ("unconverged_steps", "mean_iterations", "max_iterations")
        print(time_scheme, conductivity, {name: float(out[name]) for name in statistics})


def test_native_refuses_what_it_does_not_cover():
    grid = P.Grid.geometric(depth=10.0, n=20, dz_top=0.05)
    with pytest.raises(ValueError, match="solver='native': the native solver has no snow cells"):
        P.PermafrostColumn(grid=grid, layers=layers(), surface=P.Snow(density=250.0), solver="native")
    with pytest.raises(ValueError, match="solver='native': the native solver supports the sharp FreeWater"):
        P.PermafrostColumn(grid=grid, layers=layers(), freeze_curve=P.DallAmico(alpha=3.0, n=1.6), solver="native")
    with pytest.raises(ValueError, match="solver='native': the native solver supports the sharp FreeWater"):
        P.PermafrostColumn(grid=grid, layers=layers(), freeze_curve=P.FreeWater(width=0.5), solver="native")
    with pytest.raises(ValueError, match="solver must be one of"):
        P.PermafrostColumn(grid=grid, layers=layers(), solver="fortran")
