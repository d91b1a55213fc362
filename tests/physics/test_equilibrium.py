"""Equilibrium models: Kudryavtsev against permamodel 0.2.3, against the TTOP model, and
their gradients; the n-factor surface."""

import pathlib
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg
from cryograd.physics import _constants as const
from cryograd.physics._equilibrium import SECONDS_PER_YEAR

P = cg.physics
DATA = pathlib.Path(__file__).parent / "data"
OUTPUTS = {
    "bulk_thawed_conductivity": "k_thawed",
    "bulk_frozen_conductivity": "k_frozen",
    "bulk_thawed_heat_capacity": "c_thawed",
    "bulk_frozen_heat_capacity": "c_frozen",
    "ground_surface_temperature": "ground_surface_temperature",
    "ground_surface_amplitude": "ground_surface_amplitude",
    "permafrost_temperature": "permafrost_temperature",
    "permafrost_amplitude": "permafrost_amplitude",
    "critical_depth": "critical_depth",
    "active_layer_thickness": "active_layer_thickness",
}


def permamodel_case(case, ttop_form="permamodel-0.2.3"):
    """Our model on a stored permamodel case: (our outputs, permamodel's outputs)."""
    stored = np.load(DATA / "kudryavtsev_permamodel.npz")
    inputs = {key.split("/")[-1]: stored[key] for key in stored if key.startswith(f"{case}/input/")}
    soils = stored["soils"]
    unfrozen, snow_heat_capacity, seconds_per_year, latent_heat = stored["constants"]
    # The stored run used the same year length and latent heat as ours.
    assert seconds_per_year == SECONDS_PER_YEAR and latent_heat * 1e3 == const.LATENT_HEAT_FUSION_VOLUMETRIC
    soil = P.kudryavtsev_soil(inputs["soil_water_content"], *soils.T, unfrozen=unfrozen)
    model = P.Kudryavtsev(
        **soil,
        water_content=inputs["soil_water_content"],
        snow_density=inputs["snow_density"],
        snow_heat_capacity=snow_heat_capacity,
        vegetation_height_frozen=inputs["frozen_vegetation_height"],
        vegetation_height_thawed=inputs["thawed_vegetation_height"],
        vegetation_diffusivity_frozen=inputs["frozen_vegetation_diffusivity"],
        vegetation_diffusivity_thawed=inputs["thawed_vegetation_diffusivity"],
        ttop_form=ttop_form,
    )
    ours = model(inputs["air_temperature"], inputs["temperature_amplitude"], inputs["snow_thickness"]) | soil
    theirs = {name: stored[f"{case}/output/{name}"] for name in OUTPUTS}
    return ours, theirs


@pytest.mark.parametrize("case", ["permamodel_test", "Barrow", "Fairbanks"])
def test_kudryavtsev_reproduces_permamodel(case):
    ours, theirs = permamodel_case(case)
    for name, key in OUTPUTS.items():
        relative = np.abs(np.asarray(ours[key]) - theirs[name]) / np.abs(theirs[name])
        assert relative.max() <= 1e-12, (case, name, relative.max())  # measured <= 3.5e-14 (December 2026)


def test_published_ttop_differs_from_permamodel_only_in_ttop():
    # permamodel writes sqrt(1 - pi^2/A^2) for sqrt(1 - T^2/A^2): the surface is unchanged.
    ours, theirs = permamodel_case("permamodel_test", ttop_form="kudryavtsev")
    np.testing.assert_allclose(ours["ground_surface_temperature"], theirs["ground_surface_temperature"], rtol=1e-12)
    assert np.max(np.abs(ours["permafrost_temperature"] - theirs["permafrost_temperature"])) > 0.01


def sinusoid_degree_days(mean, amplitude, samples=200_000):
    phase = (np.arange(samples) + 0.5) / samples
    series = mean + amplitude * np.sin(2 * np.pi * phase)
    thawing, freezing = P.degree_days(series)
    return thawing * 365.0 / samples, freezing * 365.0 / samples


@pytest.mark.parametrize("mean", [-6.0, -1.5, 0.5, 3.0])
def test_kudryavtsev_ttop_equals_ttop_model_for_a_sinusoid(mean):
    # Without snow or vegetation, Kudryavtsev's TTOP is the TTOP model (Smith & Riseborough)
    # applied to the degree days of the sinusoidal surface temperature, with r = k_t / k_f.
    k_thawed, k_frozen, amplitude = 1.1, 1.9, 12.0
    model = P.Kudryavtsev(k_thawed, k_frozen, 2.5e6, 2.0e6, 0.35)
    kudryavtsev = model(mean, amplitude, 0.0)["permafrost_temperature"]
    thawing, freezing = sinusoid_degree_days(mean, amplitude)
    reference = P.ttop(thawing, freezing, conductivity_ratio=k_thawed / k_frozen)
    np.testing.assert_allclose(kudryavtsev, reference, rtol=1e-6, atol=1e-9)


def test_ttop_model_branches():
    daily = 5.0 + 12.0 * np.sin(2 * np.pi * np.arange(365) / 365) + np.random.default_rng(1).normal(0, 2, 365)
    thawing, freezing = P.degree_days(daily)
    # n = r = 1: TTOP is the mean annual temperature.
    np.testing.assert_allclose(P.ttop(thawing, freezing), daily.mean(), rtol=1e-12)
    # The permafrost branch divides by k_f, the talik branch by k_t; they meet at 0.
    ratio = 0.6
    np.testing.assert_allclose(P.ttop(100.0, 200.0, conductivity_ratio=ratio), (0.6 * 100 - 200) / 365)
    np.testing.assert_allclose(P.ttop(500.0, 200.0, conductivity_ratio=ratio), (500 - 200 / 0.6) / 365)
    boundary = 200.0 / ratio
    for side in (-1e-9, 1e-9):
        assert abs(float(P.ttop(boundary + side, 200.0, conductivity_ratio=ratio))) < 1e-9
    np.testing.assert_allclose(P.ttop(100.0, 400.0, 1.2, 0.5), (1.2 * 100 - 0.5 * 400) / 365)


def test_kudryavtsev_gradients_match_finite_differences():
    inputs = (jnp.array([-8.0, -3.0, 1.0]), jnp.array([18.0, 15.0, 16.0]), jnp.array([0.3, 0.5, 0.2]))
    model = P.Kudryavtsev(
        1.0, 1.8, 2.4e6, 1.9e6, 0.3, snow_density=220.0, vegetation_height_frozen=0.05, vegetation_height_thawed=0.1
    )

    def loss(model, snow_depth):
        out = model(inputs[0], inputs[1], snow_depth)
        return jnp.sum(out["active_layer_thickness"] ** 2) + jnp.sum(out["permafrost_temperature"] ** 2)

    gradient = eqx.filter_grad(loss)(model, inputs[2])
    names = [
        "k_thawed",
        "k_frozen",
        "c_thawed",
        "c_frozen",
        "water_content",
        "snow_density",
        "vegetation_height_frozen",
    ]
    for name in names:
        value = getattr(model, name)
        step = 1e-6 * abs(float(value))
        plus = loss(eqx.tree_at(lambda m, n=name: getattr(m, n), model, value + step), inputs[2])
        minus = loss(eqx.tree_at(lambda m, n=name: getattr(m, n), model, value - step), inputs[2])
        fd = (plus - minus) / (2 * step)
        np.testing.assert_allclose(getattr(gradient, name), fd, rtol=1e-4, err_msg=name)
    snow_gradient = jax.grad(lambda s: loss(model, s))(inputs[2])
    for i in range(3):
        e = jnp.zeros(3).at[i].set(1e-6)
        fd = (loss(model, inputs[2] + e) - loss(model, inputs[2] - e)) / 2e-6
        np.testing.assert_allclose(snow_gradient[i], fd, rtol=1e-4)


def test_kudryavtsev_million_cell_years_under_half_a_second():
    n = 1_000_000
    rng = np.random.default_rng(0)
    air = jnp.asarray(rng.uniform(-15, 2, n))
    amplitude = jnp.asarray(rng.uniform(10, 25, n))
    snow = jnp.asarray(rng.uniform(0, 0.8, n))
    water = jnp.asarray(rng.uniform(0.1, 0.5, n))

    @jax.jit
    def run(air, amplitude, snow, water):
        return P.Kudryavtsev(1.0, 1.8, 2.4e6, 1.9e6, water)(air, amplitude, snow)["active_layer_thickness"]

    jax.block_until_ready(run(air, amplitude, snow, water))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        jax.block_until_ready(run(air, amplitude, snow, water))
        times.append(time.perf_counter() - start)
    print(f"Kudryavtsev, 1e6 cell-years: median {np.median(times):.3f} s")
    assert np.median(times) < 0.5


def test_kudryavtsev_refuses_bad_parameters():
    with pytest.raises(ValueError, match="k_frozen"):
        P.Kudryavtsev(1.0, 0.0, 2e6, 2e6, 0.3)
    with pytest.raises(ValueError, match="water_content"):
        P.Kudryavtsev(1.0, 1.0, 2e6, 2e6, -0.1)
    with pytest.raises(ValueError, match="ttop_form"):
        P.Kudryavtsev(1.0, 1.0, 2e6, 2e6, 0.3, ttop_form="other")
    with pytest.raises(ValueError, match="snow_conductivity"):
        P.Kudryavtsev(1.0, 1.0, 2e6, 2e6, 0.3, snow_conductivity="other")


def test_snow_conductivity_laws():
    # Sturm et al. (1997): 0.138 - 1.01 rho + 3.233 rho^2 [rho in g cm-3]; Yen (1981): 2.22 rho^1.88.
    np.testing.assert_allclose(P.sturm_snow_conductivity(300.0), 0.138 - 0.303 + 3.233 * 0.09)
    np.testing.assert_allclose(P.yen_snow_conductivity(1000.0), 2.22)


def test_n_factor_maps_air_to_ground_surface():
    surface = P.NFactor(freezing=0.5, thawing=0.75)
    values = surface.boundary_value(dict(air_temperature=jnp.array([10.0, -10.0, 0.0])))
    np.testing.assert_allclose(values, [7.5, -5.0, 0.0])
    with pytest.raises(ValueError, match="freezing"):
        P.NFactor(freezing=0.0, thawing=1.0)


def test_column_runs_on_air_temperature_with_n_factors():
    layer = P.SoilLayer.from_composition(top=0.0, porosity=0.4, saturation=1.0)
    time_axis = pd.date_range("2001-01-01", periods=60, freq="D")
    air = xr.Dataset(
        {"air_temperature": ("time", np.linspace(-20, 10, 60), {"units": "degC"})}, coords={"time": time_axis}
    )
    grid = P.Grid.uniform(depth=2.0, dz=0.05)
    halved = P.PermafrostColumn(grid=grid, layers=[layer], surface=P.NFactor(freezing=0.5, thawing=1.0))
    prescribed = P.PermafrostColumn(grid=grid, layers=[layer])
    surface = xr.Dataset(
        {"surface_temperature": ("time", np.where(air.air_temperature < 0, 0.5, 1.0) * air.air_temperature.values)},
        coords={"time": time_axis},
    )
    a = halved.simulate(air, initial_temperature=-2.0).temperature
    b = prescribed.simulate(surface, initial_temperature=-2.0).temperature
    np.testing.assert_allclose(a, b, atol=1e-10)
