"""Monthly temperature-index SMB: OGGM 1.6.3 parity, limiting cases, gradients, bad input."""

from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg
from tests._experiments import assert_cf_units, load_experiment
from tests.physics._regions import assert_region_equals_glaciers_alone, region_climate

P = cg.physics
HERE = Path(__file__).parent


HEF = load_experiment("hintereisferner")


def plain_numpy_specific_mb(
    temp, prcp, ref_hgt, heights, widths, melt_f, prcp_fac, t_melt=-1.0, t_solid=0.0, t_liq=2.0, grad=-0.0065
):
    """The stated formula written out in numpy, calendar years, 365/12 days."""
    t = temp[:, None] + grad * (heights[None, :] - ref_hgt)
    melt = melt_f * (365 / 12) * np.clip(t - t_melt, 0, None)
    solid = (prcp * prcp_fac)[:, None] * np.clip((t_liq - t) / (t_liq - t_solid), 0, 1)
    annual = (solid - melt).reshape(-1, 12, heights.size).sum(axis=1)
    return annual @ widths / widths.sum(), annual


def test_hintereisferner_matches_plain_numpy_and_oggm_1_6_3():
    climate = HEF.climate()
    flowline = pd.read_csv(HEF.FILES / "elevation_band_flowline.csv")
    model = HEF.model()
    out = model.simulate(HEF.glacier(), climate)
    assert_cf_units(out)
    years = out.year.values
    assert years[0] == 1802 and years[-1] == 2002

    independent, bands = plain_numpy_specific_mb(
        climate.temperature.values,
        climate.precipitation.values,
        climate.attrs["reference_elevation"],
        flowline.surface_h_m.values,
        flowline.width_m.values,
        float(model.melt_factor),
        float(model.precipitation_factor),
    )
    np.testing.assert_allclose(out.specific_mass_balance.values, independent, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(out.mass_balance.values, bands, rtol=1e-12, atol=1e-9)

    # OGGM 1.6.3 itself (tests/physics/data/make_oggm_reference.py, run in a venv with oggm).
    oggm = np.load(HERE / "data" / "oggm_hintereisferner.npz")
    np.testing.assert_array_equal(oggm["years"], years)
    relative = np.abs(out.specific_mass_balance.values - oggm["specific_mass_balance"]) / np.abs(
        oggm["specific_mass_balance"]
    )
    print(f"worst relative difference to OGGM 1.6.3 over 1802-2002: {relative.max():.2g}")
    assert relative.max() <= 1e-11  # measured 3.4e-13 (December 2026)
    np.testing.assert_allclose(
        out.mass_balance.sel(year=1990).values, oggm["band_mass_balance_1990"], rtol=1e-12, atol=0
    )  # measured 1.4e-15 relative
    # OGGM calibrated the melt factor so that 1953-2002 averages the WGMS mean, -448.12.
    mean = float(out.specific_mass_balance.sel(year=slice(1953, 2002)).mean())
    np.testing.assert_allclose(mean, -448.12, rtol=1e-12)  # measured -448.1199999999993


def test_wgms_baseline_reproduces_oggm_skill():
    stats, _, _ = HEF.run()
    print(stats)
    assert stats["n"] == 50
    assert abs(stats["rmse"] - 624) < 1.0 and abs(stats["r"] - 0.68) < 0.005


def synthetic_climate(years=5, offset=0.0, start="2000-01-01", precipitation=100.0):
    time = xr.date_range(start, periods=12 * years, freq="MS")
    month = np.asarray(time.month)
    temperature = offset - 8.0 * np.cos(2 * np.pi * (month - 1) / 12)
    return xr.Dataset(
        dict(
            temperature=("time", temperature, dict(units="degC")),
            precipitation=("time", np.full(time.size, precipitation), dict(units="kg m-2")),
        ),
        coords=dict(time=time),
        attrs=dict(reference_elevation=3000.0),
    )


def test_limiting_cases_and_balance_terms():
    glacier = P.Hypsometry([3300.0, 3100.0, 2900.0], [1e5, 2e5, 1e5])
    model = P.MonthlyTemperatureIndex(melt_factor=6.0, precipitation_factor=2.0)
    cold = model.simulate(glacier, synthetic_climate(offset=-30.0))  # every month below -1 degC: no melt
    # All precipitation solid below the solid threshold: 12 x 100 x 2 per year on every band.
    np.testing.assert_allclose(cold.mass_balance.values, 2400.0, rtol=1e-14)
    warm = model.simulate(glacier, synthetic_climate(offset=30.0))  # all liquid: only melt
    assert np.all(warm.mass_balance.values < -10000.0)
    # Annual = sum of the months, terms add up, specific = area-weighted mean.
    climate = synthetic_climate(offset=2.0)
    arrays = {
        "temperature": jnp.asarray(climate.temperature.values),
        "precipitation": jnp.asarray(climate.precipitation.values),
        "reference_elevation": 3000.0,
        "month": jnp.asarray(climate.time.dt.month.values),
        "days": jnp.asarray(climate.time.dt.days_in_month.values, float),
    }
    monthly = model.monthly(glacier.elevation, arrays)
    annual = model.run(glacier, arrays)
    np.testing.assert_allclose(
        annual["mass_balance"], monthly["mass_balance"].reshape(5, 12, 3).sum(axis=1), rtol=1e-13
    )
    np.testing.assert_allclose(annual["accumulation"] - annual["melt"], annual["mass_balance"], rtol=1e-13)
    np.testing.assert_allclose(
        annual["specific_mass_balance"], annual["mass_balance"] @ np.array([1, 2, 1]) / 4, rtol=1e-13
    )


def test_calendar_days_and_monthly_parameters():
    glacier = P.Hypsometry([2500.0], [1.0])
    climate = synthetic_climate(offset=10.0, start="2001-01-01", years=1, precipitation=0.0)
    constant = P.MonthlyTemperatureIndex(days_per_month="constant").simulate(glacier, climate)
    calendar = P.MonthlyTemperatureIndex(days_per_month="calendar").simulate(glacier, climate)
    t = climate.temperature.values - 0.0065 * (2500 - 3000)
    days = climate.time.dt.days_in_month.values
    np.testing.assert_allclose(calendar.specific_mass_balance.values, -5.0 * np.sum(days * (t + 1.0)), rtol=1e-13)
    np.testing.assert_allclose(constant.specific_mass_balance.values, -5.0 * 365 / 12 * np.sum(t + 1.0), rtol=1e-13)
    bias = np.zeros(12)
    bias[6] = 2.0  # only July warmer
    monthly_bias = P.MonthlyTemperatureIndex(temperature_bias=bias).simulate(glacier, climate)
    np.testing.assert_allclose(
        monthly_bias.specific_mass_balance.values - constant.specific_mass_balance.values, -5.0 * 365 / 12 * 2.0
    )


def test_hydrological_years_with_winter_and_summer():
    glacier = P.Hypsometry([3300.0, 3100.0], [1.0, 1.0])
    model = P.MonthlyTemperatureIndex(year_start_month=10)
    climate = synthetic_climate(years=4, offset=3.0)
    out = model.simulate(glacier, climate)
    # January 2000 .. December 2003: whole years Oct 2000 - Sep 2001 .. Oct 2002 - Sep 2003.
    assert out.year.values.tolist() == [2001, 2002, 2003]
    calendar = P.MonthlyTemperatureIndex(year_start_month=1)
    shifted = calendar.simulate(
        glacier, climate.isel(time=slice(9, 45)).assign_coords(time=xr.date_range("2001-01-01", periods=36, freq="MS"))
    )
    np.testing.assert_allclose(out.specific_mass_balance.values, shifted.specific_mass_balance.values, rtol=1e-13)
    np.testing.assert_allclose(out.winter_balance + out.summer_balance, out.specific_mass_balance, rtol=1e-13)
    assert np.all(out.winter_balance.values > 0) and np.all(out.summer_balance.values < 0)


def test_region_in_one_batch_equals_glaciers_one_by_one():
    elevation = np.array([[3300.0, 3100.0, 2900.0], [3000.0, 2800.0, 0.0]])
    area = np.array([[1.0, 2.0, 1.0], [3.0, 1.0, 0.0]])  # second glacier padded
    region = region_climate(synthetic_climate(years=3), [3000.0, 2900.0], temperature_offset=[0.0, 1.5])
    assert_region_equals_glaciers_alone(
        P.MonthlyTemperatureIndex(), elevation, area, region, ["specific_mass_balance"], rtol=1e-13
    )


def test_gradients_of_a_multi_decade_loss_match_central_differences():
    climate = HEF.climate().sel(time=slice("1950-01-01", "1999-12-01"))
    glacier = HEF.glacier()
    model = P.MonthlyTemperatureIndex(melt_factor=6.5, precipitation_factor=2.5, temperature_bias=0.3)
    arrays = {
        "temperature": jnp.asarray(climate.temperature.values),
        "precipitation": jnp.asarray(climate.precipitation.values),
        "reference_elevation": jnp.asarray(3160.0),
        "month": jnp.asarray(climate.time.dt.month.values),
        "days": jnp.asarray(climate.time.dt.days_in_month.values, float),
    }
    target = jnp.asarray(np.random.default_rng(0).normal(-500, 600, 50))

    def loss(model, arrays):
        return jnp.mean((model.run(glacier, arrays)["specific_mass_balance"] - target) ** 2)

    grads = eqx.filter_jit(eqx.filter_grad(loss))(model, arrays)
    climate_grads = eqx.filter_jit(eqx.filter_grad(lambda a, m: loss(m, a)))(arrays, model)
    jitted = eqx.filter_jit(loss)
    checks = {}
    for name in (
        "melt_factor",
        "precipitation_factor",
        "temperature_bias",
        "melt_threshold",
        "solid_threshold",
        "liquid_threshold",
        "lapse_rate",
    ):
        base = float(getattr(model, name))
        eps = 1e-6 * max(abs(base), 1e-2)
        plus, minus = (
            eqx.tree_at(lambda m, n=name: getattr(m, n), model, jnp.asarray(base + s * eps)) for s in (1, -1)
        )
        checks[name] = (float(getattr(grads, name)), float((jitted(plus, arrays) - jitted(minus, arrays)) / (2 * eps)))
    for name in ("temperature", "precipitation"):
        direction = jnp.asarray(np.random.default_rng(1).normal(size=arrays[name].shape))
        scale = 1e-6 * (1.0 if name == "temperature" else 10.0)
        shifted = [dict(arrays, **{name: arrays[name] + s * scale * direction}) for s in (1, -1)]
        fd = (jitted(model, shifted[0]) - jitted(model, shifted[1])) / (2 * scale)
        checks[f"{name} (random direction)"] = (float(climate_grads[name] @ direction), float(fd))
    for name, (adjoint, finite) in checks.items():
        print(f"{name:36s} grad {adjoint: .10e} FD {finite: .10e} rel {abs(adjoint - finite) / abs(finite):.1e}")
        assert abs(adjoint - finite) <= 1e-4 * abs(finite), name


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: P.Hypsometry([3000.0, 3100.0, 3050.0], [1.0, 1.0, 1.0]), "sorted"),
        (lambda: P.Hypsometry([3000.0, 2900.0], [1.0, -1.0]), "area"),
        (lambda: P.Hypsometry([3000.0, 2900.0], [1.0]), "same shape"),
        (lambda: P.MonthlyTemperatureIndex(melt_factor=20.0), "melt_factor"),
        (lambda: P.MonthlyTemperatureIndex(precipitation_factor=0.0), "precipitation_factor"),
        (lambda: P.MonthlyTemperatureIndex(temperature_bias=np.zeros(11)), "temperature_bias"),
        (lambda: P.MonthlyTemperatureIndex(days_per_month="julian"), "days_per_month"),
        (lambda: P.MonthlyTemperatureIndex(year_start_month=13), "year_start_month"),
        (lambda: P.MonthlyTemperatureIndex(solid_threshold=2.0, liquid_threshold=1.0), "liquid_threshold"),
    ],
)
def test_bad_arguments_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda c: c.drop_attrs(), "reference elevation"),
        (lambda c: c.isel(time=slice(0, None, 2)), "monthly"),
        (lambda c: c.assign(temperature=c.temperature.where(c.time != c.time[5])), "NaN"),
        (lambda c: c.assign(precipitation=c.precipitation - 200.0), "negative"),
        (lambda c: c.drop_vars("precipitation"), "precipitation"),
    ],
)
def test_bad_climate_is_refused(change, match):
    glacier = P.Hypsometry([3000.0, 2900.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=match):
        P.MonthlyTemperatureIndex().simulate(glacier, change(synthetic_climate()))
