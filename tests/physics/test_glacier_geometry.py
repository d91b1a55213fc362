"""Glacier geometry: volume-area thickness, the Δh-parameterisation, mass through time,
melting away, gradients, regions and bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cryograd as cg
from cryograd.physics._glacier_geometry import redistribute
from tests._experiments import load_experiment
from tests.physics._regions import assert_region_equals_glaciers_alone, region_climate

P = cg.physics
HEF = load_experiment("hintereisferner")


def huss(hr, area_m2):
    """Huss et al. (2010) normalised thickness change, their published coefficients."""
    if area_m2 > 20e6:
        a, b, c, gamma = -0.02, 0.12, 0.0, 6
    elif area_m2 > 5e6:
        a, b, c, gamma = -0.05, 0.19, 0.01, 4
    else:
        a, b, c, gamma = -0.30, 0.60, 0.09, 2
    return np.maximum((hr + a) ** gamma + b * (hr + a) + c, 0.0)


def test_volume_area_scaling():
    glacier = HEF.glacier()
    thickness = np.asarray(P.volume_area_thickness(glacier))
    area = np.asarray(glacier.area)
    volume_km3 = 0.034 * (area.sum() / 1e6) ** 1.375
    np.testing.assert_allclose((area * thickness).sum(), volume_km3 * 1e9, rtol=1e-13)
    assert np.ptp(thickness[area > 0]) == 0.0  # uniform over the bands


@pytest.mark.parametrize("area_km2", [2.0, 8.0, 40.0])
def test_thickness_change_has_the_huss_shape_and_the_volume(area_km2):
    n = 30
    surface = np.linspace(3600.0, 2600.0, n)
    area = np.full(n, area_km2 * 1e6 / n)
    thickness = np.full(n, 200.0)
    loss = 0.02 * (area * thickness).sum()  # small: no band runs out of ice
    classes = P.DeltaH(P.MonthlyTemperatureIndex())
    from cryograd.physics._glacier_geometry import _size_coefficients

    coefficients = _size_coefficients(classes.size_class, area.sum())
    new, unmet = redistribute(jnp.asarray(thickness), jnp.asarray(area), jnp.asarray(surface), coefficients, -loss)
    change = thickness - np.asarray(new)
    shape = huss((surface.max() - surface) / np.ptp(surface), area.sum())
    np.testing.assert_allclose((area * change).sum(), loss, rtol=1e-12)
    np.testing.assert_allclose(change, shape * loss / (area * shape).sum(), rtol=1e-10, atol=1e-12)
    assert float(unmet) == 0.0


def test_bands_empty_in_order_and_volume_is_conserved():
    rng = np.random.default_rng(2)
    n = 25
    area = rng.uniform(1e4, 1e5, n)
    thickness = rng.uniform(5.0, 60.0, n)
    thickness[[4, 9]] = 0.0  # bands already without ice keep none
    surface = np.linspace(3400.0, 2600.0, n)
    coefficients = jnp.asarray((-0.05, 0.19, 0.01, 4.0))
    volume = (area * thickness).sum()
    # bands run out of ice in the order of thickness over the Huss thinning h_i / s_i
    hr = (surface.max() - surface) / np.ptp(surface)
    shape = np.maximum((hr - 0.05) ** 4 + 0.19 * (hr - 0.05) + 0.01, 0.0)
    order = [int(i) for i in np.argsort(thickness / shape) if thickness[i] > 0]
    previous, partial = set(), False
    for fraction in (0.1, 0.5, 0.9, 0.999, 1.0, 1.3):
        new, unmet = redistribute(
            jnp.asarray(thickness), jnp.asarray(area), jnp.asarray(surface), coefficients, -fraction * volume
        )
        new = np.asarray(new)
        assert np.all(new >= 0) and np.all(new <= thickness)
        assert np.all(new[[4, 9]] == 0.0)
        emptied = {int(i) for i in np.flatnonzero((new == 0.0) & (thickness > 0))}
        if fraction < 1.0:
            assert emptied == set(order[: len(emptied)]), (fraction, sorted(emptied))
            assert previous <= emptied
            previous, partial = emptied, partial or 0 < len(emptied) < len(order)
        removed = (area * (thickness - new)).sum() + float(unmet)
        np.testing.assert_allclose(removed, fraction * volume, rtol=1e-12)
        assert (float(unmet) > 1e-12 * volume) == (fraction > 1.0)  # round-off at exactly 1
    assert partial  # some losses emptied some bands but not all
    gained, _ = redistribute(
        jnp.asarray(thickness), jnp.asarray(area), jnp.asarray(surface), coefficients, 0.1 * volume
    )
    np.testing.assert_allclose((area * np.asarray(gained)).sum(), 1.1 * volume, rtol=1e-12)
    assert np.all(np.asarray(gained)[[4, 9]] == 0.0)  # no advance onto bands without ice


def hef_evolution(bias=0.0, feedback=True):
    model = HEF.model()
    model = eqx.tree_at(lambda m: m.temperature_bias, model, jnp.asarray(bias))
    return P.DeltaH(model, elevation_feedback=feedback)


def test_mass_through_time_is_the_sum_of_the_balances():
    climate = HEF.climate().sel(time=slice("1950-01-01", "2002-12-01"))
    out = hef_evolution().simulate(HEF.glacier(), climate)
    mass = np.concatenate([[float(out.initial_mass)], out.mass.values]) * 1e12  # [kg]
    change = out.mass_change.values + out.unmet_loss.values  # the loss beyond the ice is not taken
    print(
        f"Hintereisferner 1950-2002: volume {float(out.initial_volume) / 1e9:.3f} "
        f"-> {float(out.volume[-1]) / 1e9:.3f} km3"
    )
    np.testing.assert_allclose(np.diff(mass), change, rtol=1e-9, atol=1e-12 * mass[0])
    assert float(out.unmet_loss.max()) == 0.0
    assert float(out.area[-1]) < float(out.initial_area)  # the terminus bands emptied
    # Specific balance over the area at the start of each year.
    areas = np.concatenate([[float(out.initial_area)], out.area.values[:-1]])
    np.testing.assert_allclose(out.specific_mass_balance.values * areas, out.mass_change.values, rtol=1e-12)
    # Surface lowering warms the bands: more loss with the elevation feedback than without.
    fixed = hef_evolution(feedback=False).simulate(HEF.glacier(), climate)
    assert float(out.volume[-1]) < float(fixed.volume[-1])


def test_a_glacier_can_melt_away_without_nan():
    climate = HEF.climate().sel(time=slice("1950-01-01", "2002-12-01"))
    out = hef_evolution(bias=8.0).simulate(HEF.glacier(), climate)
    assert float(out.volume[-1]) == 0.0 and float(out.area[-1]) == 0.0 and float(out.mass[-1]) == 0.0
    for name in ("specific_mass_balance", "volume", "area", "mass", "thickness", "unmet_loss"):
        assert np.isfinite(out[name].values).all(), name
    gone = int(np.argmax(out.volume.values == 0))
    assert np.all(out.specific_mass_balance.values[gone + 1 :] == 0.0)
    # All the mass is accounted for: the balances' loss beyond the ice left is the unmet loss.
    total = out.mass_change.values.sum() + out.unmet_loss.values.sum()
    np.testing.assert_allclose(total, -float(out.initial_mass) * 1e12, rtol=1e-10)
    assert float(out.unmet_loss.sum()) > 0

    arrays = climate_arrays(climate)
    grad = jax.grad(lambda b: final_volume(hef_evolution(b), arrays))(jnp.asarray(8.0))
    assert np.isfinite(float(grad))


def climate_arrays(climate):
    return {
        "temperature": jnp.asarray(climate.temperature.values),
        "precipitation": jnp.asarray(climate.precipitation.values),
        "reference_elevation": jnp.asarray(climate.attrs["reference_elevation"]),
        "month": jnp.asarray(climate.time.dt.month.values),
        "days": jnp.asarray(climate.time.dt.days_in_month.values, float),
    }


def final_volume(evolution, arrays):
    return evolution.run(HEF.glacier(), arrays)["volume"][-1]


def test_gradients_of_the_final_volume_match_central_differences():
    arrays = climate_arrays(HEF.climate().sel(time=slice("1950-01-01", "1999-12-01")))
    evolution = hef_evolution(bias=0.5)
    grads = eqx.filter_jit(eqx.filter_grad(final_volume))(evolution, arrays)
    jitted = eqx.filter_jit(final_volume)
    for path in ("melt_factor", "precipitation_factor", "temperature_bias", "lapse_rate"):
        get = lambda e, p=path: getattr(e.mass_balance, p)  # noqa: E731
        base = float(get(evolution))
        eps = 1e-6 * max(abs(base), 1e-2)
        plus, minus = (eqx.tree_at(get, evolution, jnp.asarray(base + s * eps)) for s in (1, -1))
        fd = float((jitted(plus, arrays) - jitted(minus, arrays)) / (2 * eps))
        adjoint = float(get(grads))
        print(f"{path:22s} grad {adjoint: .8e} FD {fd: .8e} rel {abs(adjoint - fd) / abs(fd):.1e}")
        assert abs(adjoint - fd) <= 1e-4 * abs(fd), path


def test_region_in_one_batch_equals_glaciers_one_by_one():
    glacier = HEF.glacier()
    z, a = np.asarray(glacier.elevation), np.asarray(glacier.area)
    elevation = np.stack([z, np.concatenate([z[:40] - 300.0, np.zeros(z.size - 40)])])
    area = np.stack([a, np.concatenate([a[:40] * 0.3, np.zeros(z.size - 40)])])  # padded small glacier
    region = region_climate(HEF.climate().sel(time=slice("1960-01-01", "1989-12-01")), [3160.0, 2860.0])
    names = ["volume", "area", "specific_mass_balance"]
    assert_region_equals_glaciers_alone(hef_evolution(), elevation, area, region, names, rtol=1e-12)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: P.DeltaH(P.DailyTemperatureIndex()), "mass_balance"),
        (lambda: P.DeltaH(P.MonthlyTemperatureIndex(), size_class="huge"), "size_class"),
        (lambda: P.DeltaH(P.MonthlyTemperatureIndex(), ice_density=-1.0), "ice_density"),
        (lambda: hef_evolution().simulate(HEF.glacier(), HEF.climate(), thickness=np.ones(3)), "thickness"),
        (lambda: hef_evolution().simulate(HEF.glacier(), HEF.climate(), thickness=-np.ones(56)), "thickness"),
    ],
)
def test_bad_input_is_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()
