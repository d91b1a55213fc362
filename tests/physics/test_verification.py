"""Verification against analytic solutions, conservation and convergence order."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cryograd as cg
from cryograd.physics._constants import LATENT_HEAT_FUSION_VOLUMETRIC

from .analytic import neumann_lambda, periodic_surface_solution

P = cg.physics
DAY = 86400.0


def dry_layer(k=1.5, c=2.0e6):
    return P.SoilLayer(top=0.0, water_content=0.0, k_thawed=k, k_frozen=k, c_thawed=c, c_frozen=c, porosity=0.3)


def stefan_grid():
    fine = np.arange(0.0, 8.0 + 1e-9, 0.02)  # 2 cm cells where the front travels
    coarse = 8.0 + np.cumsum(0.02 * 1.05 ** np.arange(1, 100))
    return P.Grid(np.concatenate([fine, coarse[coarse < 80.0]]))  # deep enough to act as a half-space


def test_two_phase_stefan_front_within_1cm_every_day():
    layer = P.SoilLayer.from_composition(top=0.0, porosity=0.3, saturation=1.0)
    grid = stefan_grid()
    column = P.PermafrostColumn(grid=grid, layers=[layer], geothermal_flux=0.0)
    nt = 5 * 365
    out = jax.jit(lambda c: c.run(dict(surface_temperature=jnp.ones(nt)), jnp.full(grid.n_cells, -1.0), DAY))(column)
    depth = np.asarray(P.thaw_depth(out["temperature"], out["liquid_water_fraction"], grid.edges))
    lam = neumann_lambda(
        float(layer.k_thawed),
        float(layer.c_thawed),
        float(layer.k_frozen),
        float(layer.c_frozen),
        LATENT_HEAT_FUSION_VOLUMETRIC * 0.3,
        surface=1.0,
        initial=-1.0,
    )
    analytic = 2 * lam * np.sqrt(float(layer.k_thawed / layer.c_thawed) * DAY * np.arange(1, nt + 1))
    error = np.abs(depth - analytic)
    assert analytic[-1] > 2.0  # the front has travelled through ~120 cells
    assert error.max() < 0.01, f"max front error {error.max():.4f} m at day {error.argmax() + 1}"


def test_periodic_surface_temperature_linear_conduction():
    k, c = 1.5, 2.0e6
    grid = P.Grid(np.concatenate([np.arange(0, 12.0 + 1e-9, 0.02), 12.0 + np.cumsum(0.02 * 1.1 ** np.arange(1, 60))]))
    column = P.PermafrostColumn(grid=grid, layers=[dry_layer(k, c)], geothermal_flux=0.0)
    year = 365 * DAY
    nt = 5 * 365
    centres = np.asarray(grid.centres)
    times = DAY * np.arange(0, nt + 1)
    exact = periodic_surface_solution(centres, times, 1.0, 1.0, year, k / c)
    surface = 1.0 + np.sin(2 * np.pi * times[1:] / year)  # BE: each step ends at the forcing time
    out = column.run(dict(surface_temperature=surface), exact[0], DAY)
    shallow = centres <= 10.0
    error = np.abs(np.asarray(out["temperature"]) - exact[1:])[:, shallow]
    assert error.max() < 0.01, f"max error {error.max():.4g} K"


def fourier_error(n_cells, nt, horizon):
    k, c = 1.0, 1.0e6
    grid = P.Grid.uniform(depth=1.0, dz=1.0 / n_cells)
    column = P.PermafrostColumn(grid=grid, layers=[dry_layer(k, c)], bottom_temperature=0.0)
    centres = np.asarray(grid.centres)
    dt = horizon / nt
    out = column.run(dict(surface_temperature=np.zeros(nt)), np.sin(2 * np.pi * centres), dt, save_every=nt)
    exact = np.exp(-(k / c) * (2 * np.pi) ** 2 * horizon) * np.sin(2 * np.pi * centres)
    return np.abs(np.asarray(out["temperature"][-1]) - exact).max()


def test_fourier_decay_of_a_sine_below_1e_5():
    horizon = 1.0e4  # [s]; the sine decays to e^-0.39
    assert fourier_error(n_cells=400, nt=20000, horizon=horizon) < 1e-5


def test_observed_convergence_orders():
    horizon = 1.0e4
    # space: time error made negligible; halving dz divides the error by ~4
    space = [fourier_error(n, 8000, horizon) for n in (10, 20)]
    fine_time = fourier_error(40, 8000, horizon)
    space.append(fine_time)
    space_orders = np.log2(np.array(space[:-1]) / np.array(space[1:]))
    assert np.all(space_orders > 1.8), space_orders
    # time: fine grid, coarse steps; halving dt halves the error
    time = [fourier_error(200, nt, horizon) for nt in (10, 20, 40)]
    time_orders = np.log2(np.array(time[:-1]) / np.array(time[1:]))
    assert np.all((time_orders > 0.9) & (time_orders < 1.2)), time_orders


def test_steady_geotherm_is_exact():
    layers = [
        P.SoilLayer.from_composition(top=0.0, porosity=0.4, saturation=1.0),
        P.SoilLayer.from_composition(top=3.0, porosity=0.2, saturation=1.0),
    ]
    grid = P.Grid.geometric(depth=50.0, n=60, dz_top=0.05)
    column = P.PermafrostColumn(grid=grid, layers=layers, geothermal_flux=0.08)
    profile = P.steady_state_temperature(column, surface_temperature=-4.0)
    assert float(profile[-1]) < 0  # stays frozen: one branch of k
    out = column.run(dict(surface_temperature=np.full(3650, -4.0)), profile, DAY)
    drift = np.abs(np.asarray(out["temperature"]) - np.asarray(profile)).max()
    assert drift < 1e-10, drift
    # the discrete profile is the analytic one: T(z_i) = Ts + q * sum of resistances
    k = np.asarray(column.material.k_frozen)
    half = np.asarray(grid.thickness) / 2
    expected = -4.0 + 0.08 * np.cumsum(np.concatenate([half[:1] / k[:1], half[:-1] / k[:-1] + half[1:] / k[1:]]))
    np.testing.assert_allclose(np.asarray(profile), expected, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize(
    "curve",
    [P.FreeWater(), P.PowerLaw(a=0.05, b=-0.5), P.DallAmico(alpha=4.0, n=1.8), P.PiecewiseLinear(-1.0)],
    ids=["free_water", "power_law", "dall_amico", "piecewise_linear"],
)
def test_energy_conservation_through_freeze_and_thaw(curve):
    layers = [
        P.SoilLayer.from_composition(top=0.0, porosity=0.6, saturation=0.8, organic=0.2),
        P.SoilLayer.from_composition(top=0.4, porosity=0.4, saturation=1.0),
    ]
    grid = P.Grid.geometric(depth=20.0, n=50, dz_top=0.02)
    column = P.PermafrostColumn(grid=grid, layers=layers, freeze_curve=curve, geothermal_flux=0.06)
    days = np.arange(2 * 365)
    surface = -4.0 - 15.0 * np.cos(2 * np.pi * (days - 20) / 365) + 3 * np.sin(days * 1.7)
    out = jax.jit(lambda c: c.run(dict(surface_temperature=surface), jnp.full(grid.n_cells, -2.0), DAY))(column)
    h = np.asarray(grid.thickness)
    initial = np.asarray(column.enthalpy(jnp.full(grid.n_cells, -2.0)))
    enthalpy = np.concatenate([initial[None], np.asarray(out["enthalpy"])])
    change = (enthalpy[1:] - enthalpy[:-1]) @ h
    surface_in = np.diff(np.concatenate([[0.0], np.asarray(out["surface_heat_input"])]))
    bottom_in = np.diff(np.concatenate([[0.0], np.asarray(out["bottom_heat_input"])]))
    reference = np.maximum(np.abs(surface_in) + np.abs(bottom_in), DAY * 1.0)  # floor: 1 W m-2 over the step
    relative = np.abs(change - (surface_in + bottom_in)) / reference
    fraction = np.asarray(out["liquid_water_fraction"])
    assert fraction.min() < 0.05 and fraction.max() > 0.95  # cells did freeze and thaw
    assert relative.max() < 1e-9, relative.max()
