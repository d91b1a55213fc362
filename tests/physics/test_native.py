"""The native soil-column solver (C++ through XLA's FFI) against the JAX solver it mirrors:
the same discrete problem, so the same answers to Newton's tolerance; energy closure;
derivatives (JAX's own and central differences); batching; refusals."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
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


def gradient_difference(a, b):
    """Largest difference between two gradients' floating-point leaves, each relative to the
    largest entry of that leaf in `b` (a leaf zero in `b` must be zero in `a`)."""
    worst = 0.0
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype.kind != "f":
            continue
        scale = np.abs(y).max()
        worst = max(worst, np.abs(x - y).max() / scale if scale > 0 else np.abs(x).max())
    return worst


@pytest.mark.parametrize(
    "options",
    [
        dict(time_scheme="euler", conductivity="lagged"),
        dict(time_scheme="euler", conductivity="predicted"),
        dict(time_scheme="bdf2", conductivity="lagged"),
        dict(surface=P.PrescribedFlux(), bottom_temperature=-1.5, time_scheme="bdf2", conductivity="predicted"),
    ],
    ids=["euler-lagged", "euler-predicted", "bdf2-lagged", "flux-surface-fixed-bottom-bdf2-predicted"],
)
def test_native_reverse_mode_is_the_kernel_adjoint_and_equals_the_jax_solver_s(options):
    """Reverse mode of a soil-only native run is the kernel's own adjoint (transposed
    tridiagonal solves in C++ from checkpoints; the replay is not transposed): over 400 days
    (a checkpointed segment and a tail), the gradient of a loss on temperatures and on the
    surface and bottom heat inputs with respect to every parameter of the column, every day
    of the boundary series and every cell of the initial state equals the JAX solver's to
    1e-9 of each leaf's largest entry."""
    pair = columns(**options)
    variable = pair["jax"].surface.forcing_variables[0]
    flux = variable == "surface_heat_flux"
    values = 40.0 * jnp.sin(2 * np.pi * jnp.arange(400) / 365) if flux else seasonal(400, seed=1)

    def loss(both):
        column, series, initial = both
        out = column.run({variable: series}, initial, DAY, save_every=5)
        heat = out["surface_heat_input"] ** 2 + out["bottom_heat_input"] ** 2
        return jnp.mean(out["temperature"][:, jnp.array([2, 10, 18])] ** 2) + 1e-14 * jnp.sum(heat)

    initial = jnp.linspace(-2.0, -1.0, 40)
    grads = {s: eqx.filter_jit(eqx.filter_grad(loss))((c, values, initial)) for s, c in pair.items()}
    assert float(jnp.abs(grads["jax"][2]).max()) > 0.0 and float(jnp.abs(grads["jax"][1]).max()) > 0.0
    assert gradient_difference(grads["native"], grads["jax"]) <= 1e-9
    jaxpr = str(jax.make_jaxpr(lambda s: eqx.filter_grad(loss)((pair["native"], s, initial))[1])(values))
    assert "cryograd_heat_adjoint" in jaxpr


def test_native_second_derivatives_agree_between_modes():
    """Forward over reverse (the kernel's adjoint differentiated through
    `custom_linear_solve`) equals forward over forward (the replay's tangent differentiated)
    for a run shorter than one checkpointed segment."""
    column = columns(time_scheme="bdf2", conductivity="predicted")["native"]
    surface = seasonal(200, seed=1)

    def loss(k):
        changed = eqx.tree_at(lambda c: c.layers[0].k_thawed, column, k)
        out = changed.run({"surface_temperature": surface}, -1.5, DAY, save_every=5)
        return jnp.mean(out["temperature"][:, jnp.array([2, 10, 18])] ** 2)

    k, one = column.layers[0].k_thawed, jnp.ones(())
    over_reverse = jax.jit(lambda k: jax.jvp(jax.grad(loss), (k,), (one,))[1])(k)
    over_forward = jax.jit(lambda k: jax.jvp(lambda k: jax.jvp(loss, (k,), (one,))[1], (k,), (one,))[1])(k)
    assert float(over_forward) != 0.0
    assert abs(float(over_reverse) - float(over_forward)) <= 1e-8 * abs(float(over_forward))


def test_native_derivative_replay_in_segments_gives_the_run_itself():
    """The derivative replay runs the kernel again segment by segment (about a year each,
    continuing BDF2's history): over 800 days (two segments and a tail) its primal
    outputs and Newton statistics are those of the plain run."""
    from cryograd.physics._native import segment_length

    column = columns(time_scheme="bdf2", conductivity="predicted")["native"]
    surface = seasonal(800, seed=2, noise=5.0)
    assert divmod(800, segment_length(800, 5)) == (2, 70)

    def run(k):
        changed = eqx.tree_at(lambda c: c.layers[0].k_thawed, column, k)
        return changed.run({"surface_temperature": surface}, -1.5, DAY, save_every=5)

    k = column.layers[0].k_thawed
    plain = jax.jit(run)(k)
    replayed, tangent = jax.jit(lambda k: jax.jvp(run, (k,), (jnp.ones_like(k),)))(k)
    assert float(jnp.abs(replayed["temperature"] - plain["temperature"]).max()) <= 1e-9
    for name in ("surface_heat_input", "bottom_heat_input"):
        scale = float(jnp.abs(plain[name]).max())
        assert float(jnp.abs(replayed[name] - plain[name]).max()) <= 1e-9 * scale, name
    for name in ("unconverged_steps", "mean_iterations", "max_iterations"):
        assert float(replayed[name]) == float(plain[name]), name
    assert float(jnp.abs(tangent["temperature"]).max()) > 0.0  # the thaw depends on k_thawed


def snow_forcing(days, seed=0):
    """Air temperature and a snow depth [m] that builds through winter with daily noise, thin
    patches below the 5 cm threshold in autumn and spring, and melts out by June."""
    air = seasonal(days, seed=seed)
    day = np.arange(days)
    season = np.cos(2 * np.pi * (day - 15) / 365)  # 1 in mid-January, when `seasonal` is coldest
    rng = np.random.default_rng(seed + 10)
    depth = np.clip(0.45 * (season + 0.15) + rng.normal(0.0, 0.02, days), 0.0, None)
    return {"air_temperature": air, "snow_depth": jnp.asarray(depth)}


SNOW_SURFACES = {
    "sturm": lambda: P.Snow(density=250.0, n_cells=3),
    "gipl-like": lambda: P.Snow(
        density=None, conductivity="prescribed", heat_capacity=8.4e5, min_depth=0.05, freezing=0.8, thawing=1.1
    ),
}


def snow_columns(surface, **options):
    grid = P.Grid.geometric(depth=15.0, n=40, dz_top=0.02)
    return {
        solver: P.PermafrostColumn(grid=grid, layers=layers(), surface=surface(), solver=solver, **options)
        for solver in ("jax", "native")
    }


def snow_inputs(surface_name, days, seed=0):
    forcing = snow_forcing(days, seed)
    if surface_name == "gipl-like":  # density and conductivity from the forcing, as GIPL2 files give them
        day = np.arange(days)
        forcing["snow_density"] = jnp.asarray(180.0 + 120.0 * ((day % 365) / 365.0))
        forcing["snow_conductivity"] = jnp.asarray(0.12 + 0.2 * ((day % 365) / 365.0))
    return forcing


@pytest.mark.parametrize("surface", sorted(SNOW_SURFACES))
@pytest.mark.parametrize(("time_scheme", "conductivity"), [("euler", "lagged"), ("bdf2", "predicted")])
def test_native_snow_equals_the_jax_solver(surface, time_scheme, conductivity):
    """Two winters of a snowpack that builds, thins below the threshold and melts: soil and
    snow temperatures within 1e-9 K, surface, bottom and snow-mass heat within 1e-9 of their
    range, Newton iterations equal but for a few over the run for the lagged scheme (the
    snow conductivity is k there, exp(log k) in JAX: a step that ends within round-off of
    the tolerance can take one more), energy closed in the native run."""
    pair = snow_columns(SNOW_SURFACES[surface], time_scheme=time_scheme, conductivity=conductivity)
    forcing = snow_inputs(surface, 730)
    initial = jnp.linspace(-2.0, -1.0, 40)
    out = {s: eqx.filter_jit(lambda c: c.run(forcing, initial, DAY))(c) for s, c in pair.items()}
    depth = np.asarray(out["jax"]["snow_depth"])
    assert (depth == 0).any() and depth.max() > 0.4  # snow came and went
    assert float(out["jax"]["liquid_water_fraction"].max()) == 1.0  # the soil thawed
    for name in ("temperature", "snow_enthalpy"):
        scale = 1.0 if name == "temperature" else float(jnp.abs(out["jax"][name]).max())
        difference = float(jnp.abs(out["native"][name] - out["jax"][name]).max())
        assert difference <= 1e-9 * scale, (name, difference)
    np.testing.assert_allclose(out["native"]["snow_temperature"], out["jax"]["snow_temperature"], rtol=0, atol=1e-9)
    for name in ("surface_heat_input", "bottom_heat_input", "snow_heat_input"):
        scale = float(jnp.abs(out["jax"][name]).max())
        assert float(jnp.abs(out["native"][name] - out["jax"][name]).max()) <= 1e-9 * scale, name
    assert float(out["native"]["unconverged_steps"]) == 0.0
    if conductivity == "lagged":  # the same iteration, up to steps that end within round-off of the tolerance
        extra = (out["native"]["mean_iterations"] - out["jax"]["mean_iterations"]) * 730
        assert abs(float(extra)) <= 3.0
        assert abs(float(out["native"]["max_iterations"] - out["jax"]["max_iterations"])) <= 1
    # energy: soil and snow enthalpy change = surface + bottom + snow-mass heat
    native, column = out["native"], pair["native"]
    soil = native["enthalpy"] @ column.grid.thickness
    pack = jnp.sum(native["snow_thickness"] * native["snow_enthalpy"], axis=1)
    start_pack = column.problem(forcing, DAY).snowpack(0)
    start = column.enthalpy(initial) @ column.grid.thickness + jnp.sum(start_pack.thickness) * start_pack.fresh_enthalpy
    supplied = native["surface_heat_input"] + native["bottom_heat_input"] + native["snow_heat_input"]
    exchanged = float(jnp.abs(jnp.diff(native["surface_heat_input"])).sum())
    assert float(jnp.abs(soil + pack - start - supplied).max()) <= 1e-9 * exchanged


def depth_loss(forcing, initial):
    """Mean squared temperature at three depths of a 5-day-output run: the loss the
    gradient tests differentiate."""

    def loss(column):
        out = column.run(forcing, initial, DAY, save_every=5)
        return jnp.mean(out["temperature"][:, jnp.array([2, 10, 18])] ** 2)

    return loss


def test_native_snow_gradients_equal_the_jax_solver_s():
    """Over 400 days (a checkpointed segment and a tail): derivatives with respect to the
    snow conductivity scale, the thawing n-factor and a soil conductivity."""
    pair = snow_columns(SNOW_SURFACES["sturm"], time_scheme="bdf2", conductivity="predicted")
    loss = depth_loss(snow_inputs("sturm", 400, seed=4), jnp.linspace(-2.0, -1.0, 40))
    grads = {s: eqx.filter_jit(eqx.filter_grad(loss))(c) for s, c in pair.items()}
    where = {
        "surface.conductivity_scale": lambda c: c.surface.conductivity_scale,
        "surface.thawing": lambda c: c.surface.thawing,
        "layers[0].k_thawed": lambda c: c.layers[0].k_thawed,
    }
    for name, at in where.items():
        expected = float(at(grads["jax"]))
        assert expected != 0.0, name
        assert abs(float(at(grads["native"])) - expected) <= 1e-8 * abs(expected), name


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


def test_native_reverse_mode_over_columns_equals_each_column_alone():
    """The kernel adjoint over 6 columns (a full block of lanes and one with padding lanes),
    each with its own conductivity and forcing, over 400 days (a checkpointed segment and a
    tail), bdf2 with predicted conductivities: each column's gradient equals its gradient
    alone to 1e-12 relative (the adjoint keeps the lanes' steps apart)."""
    column = columns(time_scheme="bdf2", conductivity="predicted")["native"]
    k = jnp.linspace(0.6, 1.8, 6)
    forcing = jnp.stack([seasonal(400, seed=s, noise=4.0) for s in range(6)])

    def loss(k, surface):
        changed = eqx.tree_at(lambda c: c.layers[0].k_thawed, column, k)
        out = changed.run({"surface_temperature": surface}, -1.0, DAY, save_every=5)
        return jnp.mean(out["temperature"][:, jnp.array([2, 10, 18])] ** 2)

    gradient = jax.grad(loss, argnums=(0, 1))
    batched = jax.jit(jax.vmap(gradient))(k, forcing)
    alone = jax.jit(gradient)
    for i in range(6):
        dk, ds = alone(k[i], forcing[i])
        assert float(dk) != 0.0 and float(jnp.abs(ds).max()) > 0.0
        assert abs(float(batched[0][i] - dk)) <= 1e-12 * abs(float(dk))
        assert float(jnp.abs(batched[1][i] - ds).max()) <= 1e-12 * float(jnp.abs(ds).max())


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


@pytest.mark.parametrize(
    "curve", [P.FreeWater(), P.PowerLaw(a=0.05, b=-0.6), P.DallAmico(alpha=4.0, n=2.0)], ids=lambda c: type(c).__name__
)
def test_adversarial_forcing_stays_finite_and_reports_its_iterations(curve):
    """Surface alternating +-50 degC daily over a 1 mm top cell with water content 0.9, on
    the sharp curve and on the tabulated smooth ones."""
    grid = P.Grid.geometric(depth=10.0, n=60, dz_top=0.001)
    wet = P.SoilLayer.from_composition(top=0.0, porosity=0.9, saturation=1.0)
    for time_scheme, conductivity in [("euler", "lagged"), ("bdf2", "predicted")]:
        column = P.PermafrostColumn(
            grid=grid,
            layers=[wet],
            freeze_curve=curve,
            solver="native",
            time_scheme=time_scheme,
            conductivity=conductivity,
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
    refused = "solver='native': the native solver supports the sharp FreeWater.. curve and PowerLaw, DallAmico"
    with pytest.raises(ValueError, match=refused):
        P.PermafrostColumn(grid=grid, layers=layers(), freeze_curve=P.PiecewiseLinear(t_end=-1.0), solver="native")
    with pytest.raises(ValueError, match=refused):
        P.PermafrostColumn(grid=grid, layers=layers(), freeze_curve=P.FreeWater(width=0.5), solver="native")
    with pytest.raises(ValueError, match="solver must be one of"):
        P.PermafrostColumn(grid=grid, layers=layers(), solver="fortran")
    # replace() goes through the same checks
    column = P.PermafrostColumn(grid=grid, layers=layers(), freeze_curve=P.PiecewiseLinear(t_end=-1.0))
    with pytest.raises(ValueError, match=refused):
        column.replace(solver="native")
    with pytest.raises(ValueError, match=r"replace: \['solvr'\] are not PermafrostColumn arguments"):
        column.replace(solvr="native")
    assert column.replace(time_scheme="bdf2").time_scheme == "bdf2"


def test_auto_runs_the_native_solver_where_it_can_and_the_jax_solver_elsewhere():
    """The default `solver="auto"` (and the default scheme, bdf2 with predicted
    conductivity): the native run where the kernel covers the column, bit for bit; the JAX
    run with a smoothed or piecewise-linear curve, a progress meter or a reverse-mode
    adjoint of diffrax's, bit for bit; `diffrax.ForwardMode()` keeps the native solver."""
    if not P.PermafrostColumn(grid=P.Grid.geometric(depth=15.0, n=40, dz_top=0.02), layers=layers()).uses_native:
        pytest.skip("the native kernel is not built here")
    pair = columns()
    auto = pair["jax"].replace(solver="auto")
    assert (auto.solver, auto.time_scheme, auto.conductivity) == ("auto", "bdf2", "predicted")
    assert auto.uses_native and pair["native"].uses_native and not pair["jax"].uses_native
    for curve in (P.FreeWater(width=0.3), P.PiecewiseLinear(t_end=-1.0)):
        assert not auto.replace(freeze_curve=curve).uses_native
    forcing = {"surface_temperature": seasonal(400)}
    initial = jnp.linspace(-2.0, -1.0, 40)

    def temperature(column, **options):
        return np.asarray(eqx.filter_jit(lambda c: c.run(forcing, initial, DAY, **options))(column)["temperature"])

    native, jax_solver = temperature(pair["native"]), temperature(pair["jax"])
    assert 0 < np.abs(native - jax_solver).max() <= 1e-9  # the two solvers are told apart
    np.testing.assert_array_equal(temperature(auto), native)
    np.testing.assert_array_equal(temperature(auto, adjoint=diffrax.ForwardMode()), native)
    np.testing.assert_array_equal(temperature(auto, adjoint=diffrax.RecursiveCheckpointAdjoint()), jax_solver)
    np.testing.assert_array_equal(temperature(auto, progress_meter=diffrax.NoProgressMeter()), jax_solver)
    smooth = auto.replace(freeze_curve=P.FreeWater(width=0.3))
    np.testing.assert_array_equal(temperature(smooth), temperature(smooth.replace(solver="jax")))


SMOOTH_CURVES = {
    "powerlaw": lambda: P.PowerLaw(a=0.05, b=-0.6),
    "dallamico": lambda: P.DallAmico(alpha=4.0, n=2.0, residual_water_content=0.02),
}


@pytest.mark.parametrize("curve", sorted(SMOOTH_CURVES))
def test_tabulated_curve_is_within_1e_4_k_of_the_exact_curve_and_monotone(curve):
    """`Tabulated` (the native solver's form of smooth curves): over -60..5 degC, T(H(T))
    within 1e-4 K of T, the liquid fraction within 1e-5, dT/dH > 0 everywhere (Newton needs
    a monotone T(H); without the Fritsch-Carlson limit a table of DallAmico went negative)."""
    grid = P.Grid.geometric(depth=15.0, n=40, dz_top=0.02)
    column = P.PermafrostColumn(grid=grid, layers=layers(), freeze_curve=SMOOTH_CURVES[curve]())
    material, exact = column.material, column.cell_freeze_curve
    table = P.Tabulated.build(exact, material, column.layer_of_cell)
    temperatures = jnp.concatenate([jnp.linspace(-60.0, -1.0, 2000), jnp.linspace(-1.0, 5.0, 20000)])
    enthalpy = jax.vmap(lambda t: exact.enthalpy(jnp.full(40, t), material))(temperatures)
    t, f, slope = jax.vmap(lambda h: table.state(h, material))(enthalpy)
    fraction = jax.vmap(lambda t: exact.liquid_fraction(jnp.full(40, t), material))(temperatures)
    assert float(jnp.abs(t - temperatures[:, None]).max()) <= 1e-4
    assert float(jnp.abs(f - fraction).max()) <= 1e-5
    assert float(slope.min()) > 0.0


@pytest.mark.parametrize("curve", sorted(SMOOTH_CURVES))
@pytest.mark.parametrize(("time_scheme", "conductivity"), [("euler", "lagged"), ("bdf2", "predicted")])
def test_native_smooth_curves_solve_the_tabulated_problem_and_stay_near_the_exact_one(curve, time_scheme, conductivity):
    """A year through freeze and thaw with PowerLaw / DallAmico: the native run equals the
    JAX solver on the same tabulated problem to 1e-9 K, and the JAX solver on the exact
    curve to 1e-4 K (rms 1e-5 K)."""
    from cryograd.physics._heat import HeatState

    grid = P.Grid.geometric(depth=15.0, n=40, dz_top=0.02)
    options = dict(grid=grid, layers=layers(), freeze_curve=SMOOTH_CURVES[curve](), time_scheme=time_scheme)
    pair = {s: P.PermafrostColumn(solver=s, conductivity=conductivity, **options) for s in ("jax", "native")}
    forcing = {"surface_temperature": seasonal(365)}
    initial = jnp.linspace(-2.0, -1.0, 40)
    out = {s: eqx.filter_jit(lambda c: c.run(forcing, initial, DAY))(c) for s, c in pair.items()}
    assert float(out["jax"]["liquid_water_fraction"].max()) == 1.0  # it thawed
    native = pair["native"]
    problem = native.problem(forcing, DAY)
    assert isinstance(problem.freeze_curve, P.Tabulated)
    start = HeatState.initial(native.enthalpy(initial))
    enthalpy, *_ = eqx.filter_jit(native._diffrax_run)(problem, start, 365, DAY, 1, None, None, True)
    same, _, _ = jax.vmap(lambda h: problem.freeze_curve.state(h, problem.material))(enthalpy)
    assert float(jnp.abs(out["native"]["temperature"] - same).max()) <= 1e-9
    difference = out["native"]["temperature"] - out["jax"]["temperature"]
    assert float(jnp.abs(difference).max()) <= 1e-4
    assert float(jnp.sqrt(jnp.mean(difference**2))) <= 1e-5


def test_native_powerlaw_under_snow_gradients_equal_central_differences():
    """GIPL-like: PowerLaw soil under a snowpack, bdf2+predicted, 400 days. Reverse mode
    (the replay's transpose) with respect to the curve's a and b and a conductivity equals
    central differences of the native run to 1e-4 and the exact-curve JAX solver's gradient to
    1e-3 (the table's approximation)."""
    pair = snow_columns(
        SNOW_SURFACES["gipl-like"],
        freeze_curve=P.PowerLaw(a=0.05, b=-0.6),
        time_scheme="bdf2",
        conductivity="predicted",
    )
    loss = depth_loss(snow_inputs("gipl-like", 400, seed=5), jnp.linspace(-2.0, -1.0, 40))
    grads = {s: eqx.filter_jit(eqx.filter_grad(loss))(c) for s, c in pair.items()}
    where = {
        "freeze_curve.a": lambda c: c.freeze_curve.a,
        "freeze_curve.b": lambda c: c.freeze_curve.b,
        "layers[1].k_frozen": lambda c: c.layers[1].k_frozen,
    }
    jitted = eqx.filter_jit(loss)
    for name, at in where.items():
        native, exact = float(at(grads["native"])), float(at(grads["jax"]))
        assert exact != 0.0, name
        assert abs(native - exact) <= 1e-3 * abs(exact), (name, native, exact)
        base = float(at(pair["native"]))
        eps = 1e-5 * abs(base)
        fd = (
            jitted(eqx.tree_at(at, pair["native"], base + eps)) - jitted(eqx.tree_at(at, pair["native"], base - eps))
        ) / (2 * eps)
        assert abs(native - float(fd)) <= 1e-4 * abs(float(fd)), (name, native, float(fd))


def periods_of(days, start="2015-09-01"):
    """Each day's calendar year as 0, 1, ... (leap year 2016 included) and their number."""
    years = pd.date_range(start, periods=days, freq="D").year.values
    return jnp.asarray(years - years[0]), int(years[-1] - years[0] + 1)


@pytest.mark.parametrize(
    "case",
    ["free water", "powerlaw, bdf2 predicted", "snow", "snow, dallamico, bdf2 predicted"],
)
def test_native_summary_is_the_run_s_statistics_without_its_daily_fields(case):
    """`summarize` with the statistics taken in the kernel: per calendar year (a partial
    first and last year, a leap year) each cell's mean, largest and smallest temperature
    and the largest thaw depth equal those of the native run's daily fields to 1e-11 (same
    steps), and the JAX solver's summary to 1e-9 K / 1e-9 m (1e-4 on smooth curves, which
    the native solver runs through their tables); days given period -1 are left out; a
    period without days has NaN means and infinite extremes."""
    options = {"time_scheme": "bdf2", "conductivity": "predicted"} if "bdf2" in case else {}
    if "powerlaw" in case:
        options["freeze_curve"] = P.PowerLaw(a=0.05, b=-0.6)
    if "dallamico" in case:
        options["freeze_curve"] = P.DallAmico(alpha=4.0, n=2.0, residual_water_content=0.02)
    if "snow" in case:
        pair, forcing = snow_columns(SNOW_SURFACES["sturm"], **options), snow_inputs("sturm", 900, seed=2)
    else:
        pair, forcing = columns(**options), {"surface_temperature": seasonal(900, seed=2)}
    initial = jnp.linspace(-2.0, -1.0, 40)
    period, periods = periods_of(900)
    period = period.at[:20].set(-1)  # the first 20 days belong to no period
    periods += 1  # and the last period has no days

    def summary(column):
        return column.summarize(forcing, initial, DAY, period, periods)

    out = {s: eqx.filter_jit(summary)(c) for s, c in pair.items()}
    native = pair["native"]
    daily = eqx.filter_jit(lambda c: c.run(forcing, initial, DAY))(native)
    assert float(daily["liquid_water_fraction"].max()) == 1.0  # it thawed
    expected = P._native.daily_summary(
        daily["temperature"], daily["liquid_water_fraction"], native.grid.edges, period, periods
    )
    counted = np.bincount(np.asarray(period)[np.asarray(period) >= 0], minlength=periods)
    np.testing.assert_array_equal(out["native"]["steps"], counted)
    assert counted[0] == 102 and counted[1] == 366 and counted[-1] == 0  # Sep 21 - Dec 31, 2016, none
    for name in ("mean_temperature", "max_temperature", "min_temperature", "max_thaw_depth"):
        got, kept = np.asarray(out["native"][name])[:-1], np.asarray(expected[name])[:-1]
        assert np.abs(got - kept).max() <= 1e-11, name
        assert np.abs(got - np.asarray(out["jax"][name])[:-1]).max() <= (1e-4 if "freeze_curve" in options else 1e-9), (
            name
        )
    assert float(np.max(out["native"]["max_thaw_depth"][:-1])) > 0.3  # a real active layer
    assert np.isnan(out["native"]["mean_temperature"][-1]).all()
    assert np.isneginf(out["native"]["max_temperature"][-1]).all()
    assert np.isposinf(out["native"]["min_temperature"][-1]).all()
    assert float(out["native"]["unconverged_steps"]) == 0.0
    assert float(out["native"]["mean_iterations"]) == pytest.approx(float(daily["mean_iterations"]), rel=1e-12)


def test_native_summary_derivatives_are_those_of_the_run_s_statistics():
    """The derivative of an annual-mean and thaw-depth loss of `summarize` (native) with
    respect to soil and snow parameters: reverse and forward mode equal the JAX solver's
    and a central difference of the native summary (over 400 days, two calendar years)."""
    pair = snow_columns(SNOW_SURFACES["sturm"])
    forcing, initial = snow_inputs("sturm", 400, seed=3), jnp.linspace(-2.0, -1.0, 40)
    period, periods = periods_of(400)

    def loss(column):
        out = column.summarize(forcing, initial, DAY, period, periods)
        return jnp.sum(out["mean_temperature"][:, 5] ** 2) + jnp.sum(out["max_thaw_depth"])

    grads = {s: eqx.filter_jit(eqx.filter_grad(loss))(c) for s, c in pair.items()}
    native = pair["native"]
    for name, at in {
        "layers[0].k_thawed": lambda c: c.layers[0].k_thawed,
        "surface.conductivity_scale": lambda c: c.surface.conductivity_scale,
    }.items():
        expected = float(at(grads["jax"]))
        assert expected != 0.0, name
        assert abs(float(at(grads["native"])) - expected) <= 1e-8 * abs(expected), name
        value = at(native)
        h = 1e-5 * float(value)
        up, down = (eqx.tree_at(at, native, value + s * h) for s in (1.0, -1.0))
        central = (float(eqx.filter_jit(loss)(up)) - float(eqx.filter_jit(loss)(down))) / (2 * h)
        assert abs(float(at(grads["native"])) - central) <= 1e-5 * abs(central), (name, central)
        along = eqx.filter_jit(
            lambda v, at=at: jax.jvp(lambda x: loss(eqx.tree_at(at, native, x)), (v,), (1.0 * v**0,))
        )
        forward = along(value)[1]
        assert abs(float(forward) - expected) <= 1e-8 * abs(expected), name


def test_summarize_refuses_a_period_series_of_the_wrong_length():
    column = columns()["native"]
    forcing = {"surface_temperature": seasonal(30)}
    with pytest.raises(ValueError, match="period"):
        column.summarize(forcing, -1.0, DAY, jnp.zeros(29, int), 1)
    with pytest.raises(ValueError, match="period: one integer per step"):
        column.summarize(forcing, -1.0, DAY, jnp.zeros(30), 1)  # floats
    with pytest.raises(ValueError, match="periods"):
        column.summarize(forcing, -1.0, DAY, jnp.zeros(30, int), 0)
    with pytest.raises(ValueError, match="at least one step"):
        column.summarize({"surface_temperature": jnp.zeros(0)}, -1.0, DAY, jnp.zeros(0, int), 1)


@pytest.mark.parametrize("surface", ["prescribed", "sturm"])
@pytest.mark.parametrize(("time_scheme", "conductivity"), [("euler", "lagged"), ("bdf2", "predicted")])
def test_steps_taken_without_evaluation_equal_evaluated_steps(monkeypatch, surface, time_scheme, conductivity):
    """The kernel ends a Newton pass without evaluating its step where the step keeps every
    cell on its branch of T(H) (the residual is affine there, so the step solves it): two
    years through freeze, thaw and a snowpack give the same temperatures, heat inputs and
    iteration counts as the run that evaluates every step (CRYOGRAD_NATIVE_EVALUATE_EVERY_STEP)."""
    if surface == "prescribed":
        column = columns(time_scheme=time_scheme, conductivity=conductivity)["native"]
        forcing = {"surface_temperature": seasonal(730)}
    else:
        column = snow_columns(SNOW_SURFACES[surface], time_scheme=time_scheme, conductivity=conductivity)["native"]
        forcing = snow_inputs(surface, 730)
    initial = jnp.linspace(-2.0, -1.0, 40)
    run = eqx.filter_jit(lambda c: c.run(forcing, initial, DAY))
    taken = run(column)
    monkeypatch.setenv("CRYOGRAD_NATIVE_EVALUATE_EVERY_STEP", "1")
    evaluated = run(column)
    assert float(taken["liquid_water_fraction"].max()) == 1.0 and float(taken["temperature"].min()) < -5.0
    for name in ("temperature", "enthalpy", "surface_heat_input", "bottom_heat_input"):
        scale = float(jnp.abs(evaluated[name]).max())
        assert float(jnp.abs(taken[name] - evaluated[name]).max()) <= 1e-12 * scale, name
    for name in ("unconverged_steps", "mean_iterations", "max_iterations"):
        assert float(taken[name]) == float(evaluated[name]), name
    assert float(taken["unconverged_steps"]) == 0.0
