"""The snowpack surface: energy conservation, the zero curtain, insulation, steady state."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import cryograd as cg

P = cg.physics
DAY = 86400.0
ICE = 2100.0  # specific heat of ice [J kg-1 K-1], as documented for Snow


def column(surface, curve=None, n=40, depth=20.0):
    layers = [
        P.SoilLayer.from_composition(top=0.0, porosity=0.5, saturation=0.9, organic=0.15),
        P.SoilLayer.from_composition(top=0.4, porosity=0.35, saturation=0.97),
    ]
    return P.PermafrostColumn(
        grid=P.Grid.geometric(depth=depth, n=n, dz_top=0.02),
        layers=layers,
        freeze_curve=curve or P.DallAmico(alpha=3.0, n=1.6),
        surface=surface,
        geothermal_flux=0.06,
    )


def seasons(years=2, seed=0):
    """Daily air temperature [degC] and a snow water equivalent [m] that builds up in
    autumn, thins and comes back in thaw spells, crosses the thin-snow threshold, and
    melts out while the air is above 0 degC; plus a density that compacts."""
    rng = np.random.default_rng(seed)
    days = np.arange(365 * years)
    doy = days % 365
    air = -9.0 - 16.0 * np.cos(2 * np.pi * (days - 20) / 365) + rng.normal(0, 3, days.size)
    swe = np.zeros(days.size)
    for i in range(1, days.size):
        if air[i] < 0 and (doy[i] > 270 or doy[i] < 120):
            swe[i] = swe[i - 1] + rng.uniform(0, 0.002)  # snowfall
        elif air[i] > 0:
            swe[i] = max(swe[i - 1] - 0.004 * air[i], 0.0)  # melt
        else:
            swe[i] = swe[i - 1]
    density = 200.0 + 150.0 * np.clip(swe / 0.1, 0, 1)
    return air, swe, density


def remove_from_top(enthalpy, density, mass, removed):
    """Heat [J m-2] that leaves with `removed` kg m-2 taken from the top of a pack of
    equal-mass cells (enthalpy [J m-3] listed from the top)."""
    cell = mass / enthalpy.size
    heat, left = 0.0, removed
    for value in enthalpy:
        take = min(left, cell)
        heat += take * value / density
        left -= take
    return heat


def test_snow_conserves_energy_while_snow_appears_and_melts():
    snow = P.Snow(density=None, driver="swe")
    col = column(snow)
    air, swe, density = seasons()
    forcing = {"air_temperature": air, "snow_water_equivalent": swe, "snow_density": density}
    initial = jnp.linspace(-3.0, -1.0, col.grid.n_cells)
    out = jax.jit(lambda c: c.run({k: jnp.asarray(v) for k, v in forcing.items()}, initial, DAY))(col)

    depth = swe * 1000.0 / density
    present = depth >= snow.min_depth
    mass = np.where(present, swe * 1000.0, 0.0)
    assert present.sum() > 100 and (~present).sum() > 100
    assert np.sum(present[1:] != present[:-1]) >= 4  # appears and disappears, more than once a year
    melting = present & (air > 0)
    assert melting.sum() > 5

    # The heat carried with snow mass, computed here from the forcing and the saved states:
    # snowfall adds ice at min(air, 0) degC, lost snow leaves from the top with its enthalpy.
    snow_enthalpy = np.asarray(out["snow_enthalpy"])
    first = np.full(snow.n_cells, density[0] * ICE * min(air[0], 0.0))
    expected = np.zeros(air.size)
    for n in range(1, air.size):
        before = snow_enthalpy[n - 1]
        if mass[n] >= mass[n - 1]:
            expected[n] = (mass[n] - mass[n - 1]) * ICE * min(air[n], 0.0)
        else:
            expected[n] = -remove_from_top(before, density[n - 1], mass[n - 1], mass[n - 1] - mass[n])
    np.testing.assert_allclose(np.asarray(out["snow_heat_input"]), np.cumsum(expected), rtol=1e-9, atol=1e-3)

    thickness = np.asarray(col.grid.thickness)
    soil = np.asarray(out["enthalpy"]) @ thickness
    pack = np.sum(np.asarray(out["snow_thickness"]) * snow_enthalpy, axis=1)
    start = float(col.enthalpy(initial) @ thickness) + (depth[0] if present[0] else 0.0) * first[0]
    change = soil + pack - start
    heat_in = np.asarray(out["surface_heat_input"] + out["bottom_heat_input"]) + np.cumsum(expected)
    scale = np.max(np.abs(np.asarray(out["surface_heat_input"])))
    error = np.max(np.abs(change - heat_in)) / scale
    print(f"snow energy balance: worst |change - input| = {error:.2g} of the largest cumulative surface input")
    assert error < 1e-9


def test_zero_curtain_while_snow_melts():
    """Fifty days of thaw under a melting pack: the snow warms to 0 degC and holds the
    ground just below it until the pack is gone; then the ground follows the air."""
    days = np.arange(150)
    air = np.where(days < 60, -3.0, 3.0)
    swe = np.clip(0.1 * (110 - days) / 50, 0.0, 0.1)
    col = column(P.Snow(density=300.0, driver="swe"))
    forcing = {"air_temperature": jnp.asarray(air), "snow_water_equivalent": jnp.asarray(swe)}
    out = col.run(forcing, jnp.full(col.grid.n_cells, -1.0), DAY)
    melt = slice(70, 105)
    top_cell = np.asarray(out["snow_temperature"])[melt, 0]
    wet = np.asarray(out["snow_liquid_fraction"])[melt, 0]
    ground = np.asarray(out["temperature"])[:, 0]
    print(f"zero curtain: ground surface {ground[melt].min():.3f} to {ground[melt].max():.3g} degC under 3 degC air")
    assert np.all(top_cell <= 0.0) and np.all(top_cell > -0.2)
    assert np.all(wet == 0.0)  # the surface is capped at 0 degC: no melt inside the pack
    assert np.all(ground[melt] <= 0.0) and np.all(np.diff(ground[melt]) > 0)  # warming towards 0 degC
    assert np.all(ground[120:] > 0.5)  # after melt-out the ground follows the air
    bare = eqx.tree_at(lambda c: c.surface, col, P.NFactor())
    bare_ground = np.asarray(
        bare.run({"air_temperature": jnp.asarray(air)}, jnp.full(col.grid.n_cells, -1.0), DAY)["temperature"]
    )[:, 0]
    assert np.all(bare_ground[melt] > 1.0)  # without the pack the same air thaws the ground


def test_thicker_lighter_snow_warms_winter_ground():
    days = np.arange(365)
    air = -10.0 - 15.0 * np.cos(2 * np.pi * (days - 20) / 365)
    winter = (days < 90) | (days >= 300)
    initial = jnp.full(40, -2.0)
    run = eqx.filter_jit(lambda c, f: c.run(f, initial, DAY)["temperature"])

    def winter_ground(depth, density):
        col = column(P.Snow(density=density))
        snow_depth = jnp.asarray(np.where(winter, depth, 0.0))
        temperature = run(col, {"air_temperature": jnp.asarray(air), "snow_depth": snow_depth})
        return float(jnp.mean(temperature[winter, 10]))  # about 0.3 m

    bare = winter_ground(0.0, 300.0)
    by_depth = [winter_ground(d, 300.0) for d in (0.05, 0.2, 0.5, 1.0)]
    by_density = [winter_ground(0.4, rho) for rho in (450.0, 350.0, 250.0, 180.0)]
    print(f"winter ground at 0.3 m: bare {bare:.2f}, depth {np.round(by_depth, 2)}, density {np.round(by_density, 2)}")
    assert np.all(np.diff([bare, *by_depth]) > 0.05)
    assert np.all(np.diff(by_density) > 0.05)


def test_steady_state_under_constant_snow_is_the_series_resistance_solution():
    """Constant air temperature over a constant snowpack and a geothermal flux: heat
    flows straight up, so the ground surface sits q d / k_snow above the air and the
    snow is linear in between (exact for the discrete scheme: harmonic face conductances
    are exact for piecewise-linear profiles). The 3 m column starts
    from the steady soil profile and settles within the run."""
    depth, k_snow, air, flux = 0.5, 0.2, -10.0, 0.06
    snow = P.Snow(density=300.0, conductivity="prescribed")
    col = eqx.tree_at(lambda c: c.geothermal_flux, column(snow, P.FreeWater(), n=20, depth=3.0), jnp.asarray(flux))
    surface = air + flux * depth / k_snow
    initial = P.steady_state_temperature(col, surface)
    nt = 12 * 365  # the slowest mode decays with about R C = 4.5 K m2 W-1 x 6e6 J m-2 K-1 = 310 days
    forcing = {
        "air_temperature": jnp.full(nt, air),
        "snow_depth": jnp.full(nt, depth),
        "snow_conductivity": jnp.full(nt, k_snow),
    }
    out = col.run(forcing, initial, DAY)
    np.testing.assert_allclose(np.asarray(out["temperature"][-1]), np.asarray(initial), atol=1e-6)
    centres = (np.arange(snow.n_cells) + 0.5) * depth / snow.n_cells  # from the snow surface
    np.testing.assert_allclose(np.asarray(out["snow_temperature"][-1]), air + flux * centres / k_snow, atol=1e-6)


def test_no_snow_equals_air_temperature_at_the_surface():
    col = column(P.Snow())
    air, _, _ = seasons(years=1)
    initial = jnp.full(col.grid.n_cells, -1.0)
    with_snow = col.run({"air_temperature": jnp.asarray(air), "snow_depth": jnp.zeros(air.size)}, initial, DAY)
    bare = eqx.tree_at(lambda c: c.surface, col, P.NFactor())
    without = bare.run({"air_temperature": jnp.asarray(air)}, initial, DAY)
    np.testing.assert_allclose(np.asarray(with_snow["temperature"]), np.asarray(without["temperature"]), atol=1e-10)
    assert bool(jnp.all(jnp.isnan(with_snow["snow_temperature"])))


def test_bare_ground_n_factors_equal_the_n_factor_surface():
    """Without snow, Snow(freezing=, thawing=) is the NFactor surface with those factors."""
    air, _, _ = seasons(years=1)
    initial = jnp.full(40, -1.0)
    snow = column(P.Snow(freezing=0.6, thawing=1.2)).run(
        {"air_temperature": jnp.asarray(air), "snow_depth": jnp.zeros(air.size)}, initial, DAY
    )
    bare = column(P.NFactor(freezing=0.6, thawing=1.2)).run({"air_temperature": jnp.asarray(air)}, initial, DAY)
    np.testing.assert_allclose(np.asarray(snow["temperature"]), np.asarray(bare["temperature"]), atol=1e-10)
    plain = column(P.NFactor()).run({"air_temperature": jnp.asarray(air)}, initial, DAY)
    assert float(jnp.max(jnp.abs(plain["temperature"][:, 0] - bare["temperature"][:, 0]))) > 1.0


def test_conductivity_scale_equals_scaling_the_prescribed_conductivity():
    air, swe, density = seasons(years=1)
    depth = jnp.asarray(swe * 1000.0 / density)
    forcing = {"air_temperature": jnp.asarray(air), "snow_depth": depth, "snow_conductivity": jnp.full(air.size, 0.3)}
    initial = jnp.full(40, -1.0)
    scaled = column(P.Snow(conductivity="prescribed", conductivity_scale=0.5)).run(forcing, initial, DAY)
    halved = column(P.Snow(conductivity="prescribed")).run(
        {**forcing, "snow_conductivity": jnp.full(air.size, 0.15)}, initial, DAY
    )
    np.testing.assert_allclose(np.asarray(scaled["temperature"]), np.asarray(halved["temperature"]), atol=1e-10)

    # Sturm's conductivity is scaled too, and the gradient through the scale is finite.
    sturm = column(P.Snow(density=250.0))

    def mean_ground(scale):
        col = eqx.tree_at(lambda c: c.surface.conductivity_scale, sturm, scale)
        return jnp.mean(
            col.run({"air_temperature": jnp.asarray(air), "snow_depth": depth}, initial, DAY)["temperature"]
        )

    slope = float(jax.jit(jax.grad(mean_ground))(1.0))
    jitted = jax.jit(mean_ground)  # compiled once for both differences
    numeric = (float(jitted(1.01)) - float(jitted(0.99))) / 0.02
    assert slope < 0  # a better-conducting pack lets the cold in
    np.testing.assert_allclose(slope, numeric, rtol=1e-3)


def test_conductivity_options_order_as_their_formulas():
    days = np.arange(200)
    air = jnp.asarray(-15.0 + 0 * days)
    depth = jnp.full(days.size, 0.5)
    ground = {}
    for name in ("sturm", "yen"):
        col = column(P.Snow(density=200.0, conductivity=name))
        ground[name] = float(
            col.run({"air_temperature": air, "snow_depth": depth}, jnp.full(40, -1.0), DAY)["temperature"][-1, 0]
        )
    # At 200 kg m-3 Sturm gives 0.065 and Yen 0.108 W m-1 K-1: Sturm's snow insulates more.
    np.testing.assert_allclose(float(P.sturm_snow_conductivity(200.0)), 0.138 - 0.202 + 3.233 * 0.04)
    np.testing.assert_allclose(float(P.yen_snow_conductivity(200.0)), 2.22 * 0.2**1.88)
    assert ground["sturm"] > ground["yen"] + 0.5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(density=-1.0), "density"),
        (dict(density=1200.0), "density"),
        (dict(driver="height"), "driver"),
        (dict(conductivity="jordan"), "conductivity"),
        (dict(min_depth=0.0), "min_depth"),
        (dict(n_cells=0), "n_cells"),
        (dict(heat_capacity=-5.0), "heat_capacity"),
        (dict(conductivity_scale=0.0), "conductivity_scale"),
        (dict(freezing=-0.5), "freezing"),
        (dict(thawing=0.0), "thawing"),
    ],
)
def test_bad_snow_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        P.Snow(**kwargs)


def test_simulate_refuses_negative_snow_depth_and_missing_variables():
    col = column(P.Snow())
    time = xr.date_range("2000-01-01", periods=10, freq="D")
    forcing = xr.Dataset(
        {"air_temperature": ("time", np.full(10, -5.0)), "snow_depth": ("time", np.linspace(0.2, -0.1, 10))},
        coords={"time": time},
    )
    with pytest.raises(ValueError, match="snow_depth"):
        col.simulate(forcing)
    with pytest.raises(ValueError, match="snow_depth"):
        col.simulate(forcing.drop_vars("snow_depth"))
