"""Daily and enhanced temperature-index models: an independent loop, mass conservation with
refreezing and storage, limiting cases, gradients, the Hintereisferner AWS, bad input."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg
from tests._experiments import load_experiment
from tests.physics._regions import assert_region_equals_glaciers_alone, region_climate

P = cg.physics
GLACIER = P.Hypsometry(np.linspace(3500.0, 2600.0, 7), np.array([1.0, 2.0, 3.0, 3.0, 2.0, 1.0, 0.5]) * 1e5)


def daily_climate(years=3, start="2000-10-01", offset=0.0, seed=0, precipitation=None):
    """Daily Alpine-like climate at 3,000 m: seasonal cycle, weather noise, shortwave."""
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, periods=int(365.25 * years), freq="D")
    day = time.day_of_year.values
    temperature = offset - 6.0 - 9.0 * np.cos(2 * np.pi * (day - 15) / 365) + rng.normal(0, 3, time.size)
    rain = rng.gamma(0.6, 8.0, time.size) * (rng.random(time.size) < 0.5) if precipitation is None else precipitation
    shortwave = np.clip(200 - 120 * np.cos(2 * np.pi * (day + 10) / 365) + rng.normal(0, 40, time.size), 0, None)
    return xr.Dataset(
        dict(
            temperature=("time", temperature, dict(units="degC")),
            precipitation=("time", np.broadcast_to(rain, time.shape).astype(float), dict(units="kg m-2")),
            shortwave_radiation=("time", shortwave, dict(units="W m-2")),
        ),
        coords=dict(time=time),
        attrs=dict(reference_elevation=3000.0),
    )


def loop_daily(model, elevation, temperature, precipitation, days, year):
    """The daily model written as a plain loop over days and bands (linear melt and phase,
    Woodward refreezing), from the formulas in the docstring."""
    t = temperature[:, None] + float(model.temperature_bias) + float(model.lapse_rate) * (elevation - 3000.0)
    p = precipitation * float(model.precipitation_factor)
    snow = np.zeros(elevation.size)
    firn = np.zeros(elevation.size)
    labels = np.unique(year)
    out = {k: np.zeros((labels.size, elevation.size)) for k in ("mass_balance", "refreezing", "ice_melt")}
    for y, label in enumerate(labels):
        days_y = np.flatnonzero(year == label)
        annual = (t[days_y] * days[days_y, None]).sum(axis=0) / days[days_y].sum()
        left = np.maximum(10 * (-0.69 * annual + 0.0096), 0.0)
        firn, snow = firn + snow, np.zeros_like(snow)
        for i in days_y:
            for b in range(elevation.size):
                share = min(max((2.0 - t[i, b]) / 2.0, 0.0), 1.0)
                solid, rain = p[i] * share, p[i] * (1 - share)
                snow[b] += solid
                pdd = max(t[i, b], 0.0) * days[i]
                melt_snow = min(snow[b], float(model.snow_factor) * pdd)
                rest = 1.0 - (melt_snow / (float(model.snow_factor) * pdd) if pdd > 0 else 0.0)
                melt_firn = min(firn[b], rest * float(model.firn_factor) * pdd)
                rest -= melt_firn / (float(model.firn_factor) * pdd) if pdd > 0 else 0.0
                melt_ice = rest * float(model.ice_factor) * pdd
                snow[b] -= melt_snow
                firn[b] -= melt_firn
                refrozen = min(melt_snow + melt_firn + melt_ice + rain, left[b], snow[b] + firn[b])
                left[b] -= refrozen
                snow[b] += refrozen
                out["mass_balance"][y, b] += solid - melt_snow - melt_firn - melt_ice + refrozen
                out["refreezing"][y, b] += refrozen
                out["ice_melt"][y, b] += melt_ice
    return out


def test_daily_model_equals_an_independent_loop():
    climate = daily_climate(years=2.1)  # two whole years and October 2002 on
    model = P.DailyTemperatureIndex(precipitation_factor=1.3, temperature_bias=1.0)
    out = model.simulate(GLACIER, climate)
    time = climate.indexes["time"]
    year = time.year + (time.month >= 10)
    expected = loop_daily(
        model,
        np.asarray(GLACIER.elevation),
        climate.temperature.values,
        climate.precipitation.values,
        np.ones(time.size),
        year.values,
    )
    assert out.year.values.tolist() == [2001, 2002, 2003]
    assert out.complete.values.tolist() == [True, True, False]
    for name, values in expected.items():
        np.testing.assert_allclose(out[name].values, values, rtol=1e-12, atol=1e-9, err_msg=name)
    assert out.refreezing.values.max() > 10 and out.ice_melt.values.max() > 100  # both processes exercised


@pytest.mark.parametrize(
    "model",
    [
        P.DailyTemperatureIndex(),
        P.DailyTemperatureIndex(melt="softplus", phase="smooth", refreezing="fraction", refreezing_fraction=0.4),
        P.DailyTemperatureIndex(melt="expected", refreezing="none", precipitation_gradient=3e-4),
        P.EnhancedTemperatureIndex(),
        P.EnhancedTemperatureIndex(melt_smoothing=0.5, refreezing="fraction", refreezing_fraction=0.2),
    ],
    ids=["daily-woodward", "daily-smooth-fraction", "daily-expected-none", "eti-woodward", "eti-smooth-fraction"],
)
def test_mass_is_conserved_per_band_and_year(model):
    out = model.simulate(GLACIER, daily_climate(years=4, offset=2.0))
    stores = out.snow + out.firn
    change = stores.diff("year", label="upper")
    first = stores.isel(year=0)  # the run starts with no snow or firn
    storage = xr.concat([first, change], "year") - out.ice_melt  # the ice body loses its melt
    budget = out.accumulation - out.melt + out.refreezing
    scale = float(np.abs(out.accumulation).max())
    worst = float(np.abs(budget - storage).max()) / scale
    print(f"{model.__class__.__name__}: worst |acc - melt + refr - d(storage)| = {worst:.1e} of max accumulation")
    assert worst <= 1e-12
    # Liquid water: melt + rain is refrozen or runs off; balance is accumulation - melt + refreezing.
    np.testing.assert_allclose(out.melt + out.rain, out.refreezing + out.runoff, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(out.mass_balance, budget, rtol=1e-12, atol=1e-9)
    for name in ("snow", "firn", "refreezing", "runoff", "snow_melt", "firn_melt", "ice_melt"):
        assert float(out[name].min()) >= -1e-9, name
    assert float(out.refreezing.max()) > 0 or model.refreezing == "none"


def test_limiting_cases():
    model = P.DailyTemperatureIndex(precipitation_factor=1.5)
    cold = model.simulate(GLACIER, daily_climate(years=2, offset=-40.0, precipitation=2.0))
    # Every day below the melt and solid thresholds: no melt, all precipitation solid.
    assert float(np.abs(cold.melt).max()) == 0.0 and float(np.abs(cold.rain).max()) == 0.0
    days = cold.steps.values[:, None]
    np.testing.assert_allclose(cold.accumulation.values, 1.5 * 2.0 * days * np.ones(7), rtol=1e-13)
    np.testing.assert_allclose(cold.mass_balance, cold.accumulation, rtol=1e-13)
    # Snow left at the end of a year becomes firn at the start of the next.
    np.testing.assert_allclose(cold.firn.values[1:], (cold.snow + cold.firn).values[:-1], rtol=1e-13)
    warm = model.simulate(GLACIER, daily_climate(years=2, offset=40.0))
    assert float(np.abs(warm.accumulation).max()) == 0.0 and float(warm.melt.min()) > 0
    # Woodward: on a firn pack with more rain than it can refreeze, each year refreezes its
    # whole potential, 10 (-0.69 T_a + 0.0096) kg m-2 from the band's mean temperature T_a.
    rainy = P.DailyTemperatureIndex(solid_threshold=-40.0, liquid_threshold=-39.0)
    climate = daily_climate(years=2, offset=-5.0)
    out = rainy.run(GLACIER, arrays_of(rainy, climate), firn=1e4)
    t = climate.temperature
    year = t.time.dt.year + (t.time.dt.month >= 10)
    annual = t.groupby(year).mean().values[:, None] - 0.0065 * (np.asarray(GLACIER.elevation) - 3000.0)
    assert np.all(np.asarray(out["rain"]) > 500)
    np.testing.assert_allclose(out["refreezing"], np.maximum(-6.9 * annual + 0.096, 0.0), rtol=1e-12)


def test_expected_degree_days_and_smooth_variants_are_consistent():
    t = jnp.linspace(-15.0, 15.0, 301)
    model = P.DailyTemperatureIndex(melt="expected", temperature_std=2.5, melt_threshold=0.0)
    # Calov & Greve's closed form against the expectation computed by quadrature.
    x = np.linspace(-40, 40, 200001)
    weights = np.exp(-0.5 * (x / 2.5) ** 2) / (2.5 * np.sqrt(2 * np.pi))
    quadrature = np.array([np.trapezoid(np.maximum(ti + x, 0.0) * weights, x) for ti in np.asarray(t)])
    np.testing.assert_allclose(model.degree_days(t), quadrature, atol=1e-8)
    soft = P.DailyTemperatureIndex(melt="softplus", melt_smoothing=0.2).degree_days(t)
    np.testing.assert_allclose(soft, np.maximum(np.asarray(t), 0.0), atol=0.2 * np.log(2) + 1e-12)
    share = P.DailyTemperatureIndex(phase="smooth").solid_share(t)
    assert float(share[0]) > 1 - 1e-9 and float(share[-1]) < 1e-9 and abs(float(share[160]) - 0.5) < 1e-12


def arrays_of(model, climate):
    from cryograd.physics._smb_xarray import snowpack_climate

    arrays, days, *_ = snowpack_climate(climate, model.forcing_variables, model.year_start_month, None)
    return {k: jnp.asarray(v) for k, v in arrays.items()} | {"days": jnp.asarray(days)}


@pytest.mark.parametrize(
    "model, names",
    [
        (
            P.DailyTemperatureIndex(
                melt="softplus", phase="smooth", refreezing="fraction", refreezing_fraction=0.3, temperature_bias=0.5
            ),
            (
                "snow_factor",
                "firn_factor",
                "ice_factor",
                "precipitation_factor",
                "temperature_bias",
                "melt_threshold",
                "lapse_rate",
                "precipitation_gradient",
                "refreezing_fraction",
                "melt_smoothing",
            ),
        ),
        (
            P.DailyTemperatureIndex(melt="expected", phase="smooth", refreezing="woodward", temperature_std=2.0),
            (
                "snow_factor",
                "ice_factor",
                "precipitation_factor",
                "temperature_bias",
                "temperature_std",
                "solid_threshold",
                "liquid_threshold",
            ),
        ),
        (
            P.EnhancedTemperatureIndex(
                melt_smoothing=0.5, phase="smooth", refreezing="fraction", refreezing_fraction=0.2
            ),
            (
                "temperature_factor",
                "radiation_factor",
                "melt_threshold",
                "fresh_snow_albedo",
                "firn_albedo",
                "ice_albedo",
                "albedo_decay_days",
                "albedo_depth_scale",
                "precipitation_factor",
            ),
        ),
    ],
    ids=["daily-softplus", "daily-expected", "eti-smooth"],
)
def test_gradients_of_a_multi_year_loss_match_central_differences(model, names):
    climate = daily_climate(years=6, offset=1.0, seed=3)
    arrays = arrays_of(model, climate)
    target = jnp.asarray(np.random.default_rng(0).normal(-500, 600, arrays["temperature"].shape[0]))

    def loss(model, arrays):
        return jnp.mean((model.run(GLACIER, arrays)["specific_mass_balance"] - target) ** 2)

    grads = eqx.filter_jit(eqx.filter_grad(loss))(model, arrays)
    climate_grads = eqx.filter_jit(eqx.filter_grad(lambda a, m: loss(m, a)))(arrays, model)
    jitted = eqx.filter_jit(loss)
    checks = {}
    for name in names:
        base = float(getattr(model, name))
        eps = 1e-6 * max(abs(base), 1e-3)
        plus, minus = (
            eqx.tree_at(lambda m, n=name: getattr(m, n), model, jnp.asarray(base + s * eps)) for s in (1, -1)
        )
        checks[name] = (float(getattr(grads, name)), float((jitted(plus, arrays) - jitted(minus, arrays)) / (2 * eps)))
    for name in model.forcing_variables:
        # Steps with zero precipitation stay at zero (a negative amount is not a climate).
        keep = (arrays["days"] > 0) & ((arrays[name] > 0) if name == "precipitation" else True)
        direction = jnp.asarray(np.random.default_rng(1).normal(size=arrays[name].shape)) * keep
        scale = 1e-6
        shifted = [dict(arrays, **{name: arrays[name] + s * scale * direction}) for s in (1, -1)]
        fd = (jitted(model, shifted[0]) - jitted(model, shifted[1])) / (2 * scale)
        checks[f"{name} (random direction)"] = (float(jnp.sum(climate_grads[name] * direction)), float(fd))
    for name, (adjoint, finite) in checks.items():
        print(f"{name:36s} grad {adjoint: .10e} FD {finite: .10e} rel {abs(adjoint - finite) / abs(finite):.1e}")
        assert abs(adjoint - finite) <= 1e-4 * abs(finite), name


def test_enhanced_model_formula_and_albedo():
    model = P.EnhancedTemperatureIndex()
    # Bare ice, one hour at 5 degC and 600 W m-2: (0.05 x 5 + 0.0094 x 0.66 x 600) kg m-2.
    glacier = P.Hypsometry([3000.0], [1.0])
    hours = dict(
        temperature=jnp.full((1, 2), 5.0),
        precipitation=jnp.zeros((1, 2)),
        shortwave_radiation=jnp.full((1, 2), 600.0),
        days=jnp.full((1, 2), 1 / 24),
        reference_elevation=3000.0,
    )
    out = model.run(glacier, hours)
    np.testing.assert_allclose(out["ice_melt"], 2 * (0.05 * 5 + 0.0094 * (1 - 0.34) * 600), rtol=1e-13)
    below = model.run(glacier, dict(hours, temperature=jnp.full((1, 2), 0.99)))
    assert float(below["melt"].max()) == 0.0  # at or below T_T = 1 degC nothing melts
    # Snow albedo decays from fresh to firn with age; thin snow shows the surface below.
    ages = jnp.array([0.0, 10.0, 30.0, 300.0])
    albedo = model.albedo(ages, 1e6, 0.34)
    assert np.all(np.diff(np.asarray(albedo)) < 0) and abs(float(albedo[0]) - 0.75) < 1e-12
    assert abs(float(albedo[-1]) - 0.53) < 1e-6
    assert abs(float(model.albedo(0.0, 0.0, 0.34)) - 0.34) < 1e-12


def test_enhanced_model_on_the_hintereisferner_aws():
    aws = load_experiment("hintereisferner_aws")
    result = aws.run()
    print(result["table"].to_string())
    # The traps: the temperature sensor's failure is cut off, negative radiation zeroed.
    assert result["cut"] == pd.Timestamp("2019-06-10 02:00") and result["clipped_radiation_hours"] > 1000
    season = result["season"]
    assert season.time.values[-1] == np.datetime64("2019-06-10T02:00")
    # The stores after every hour add up to the yearly fluxes on the real forcing.
    pack = (season.snow_series + season.firn_series).isel(time=-1)
    first = (season.snow + season.firn).isel(year=0)
    budget = (season.accumulation - season.melt + season.refreezing + season.ice_melt).sum("year")
    np.testing.assert_allclose(pack, budget, rtol=1e-12, atol=1e-9)
    assert float(first.min()) >= 0
    # January 2019 at the AWS: no hour above T_T = 1 degC, so no melt; the snowfall is
    # the precipitation times the linear solid share, hour by hour.
    climate, _, _ = aws.forcing()
    january = climate.sel(time="2019-01")
    out = P.EnhancedTemperatureIndex().simulate(P.Hypsometry([3300.0], [1.0]), january)
    t = january.temperature.values - 273.15
    assert t.max() <= 1.0 and float(out.melt.sum()) == 0.0
    solid = january.precipitation.values * np.clip((2.0 - t) / 2.0, 0, 1)
    np.testing.assert_allclose(float(out.accumulation.sum()), solid.sum(), rtol=1e-12)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: P.DailyTemperatureIndex(snow_factor=30.0), "snow_factor"),
        (lambda: P.DailyTemperatureIndex(melt="cubic"), "melt"),
        (lambda: P.DailyTemperatureIndex(phase="step"), "phase"),
        (lambda: P.DailyTemperatureIndex(refreezing="all"), "refreezing"),
        (lambda: P.DailyTemperatureIndex(refreezing_fraction=1.5), "refreezing_fraction"),
        (lambda: P.DailyTemperatureIndex(year_start_month=0), "year_start_month"),
        (lambda: P.DailyTemperatureIndex(solid_threshold=3.0), "liquid_threshold"),
        (lambda: P.EnhancedTemperatureIndex(ice_albedo=1.2), "ice_albedo"),
    ],
)
def test_bad_arguments_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda c: c.drop_attrs(), "reference elevation"),
        (lambda c: c.isel(time=np.r_[0:10, 11:200]), "regular"),
        (lambda c: c.assign(temperature=c.temperature.where(c.time != c.time[5])), "NaN"),
        (lambda c: c.assign(precipitation=c.precipitation - 100.0), "negative"),
        (lambda c: c.drop_vars("shortwave_radiation"), "shortwave_radiation"),
    ],
)
def test_bad_climate_is_refused(change, match):
    with pytest.raises(ValueError, match=match):
        P.EnhancedTemperatureIndex().simulate(GLACIER, change(daily_climate(years=1)))


def test_region_in_one_batch_equals_glaciers_one_by_one():
    elevation = np.array([[3300.0, 3100.0, 2900.0], [3000.0, 2800.0, 0.0]])
    area = np.array([[1.0, 2.0, 1.0], [3.0, 1.0, 0.0]])  # second glacier padded
    region = region_climate(daily_climate(years=2), [3000.0, 2900.0], temperature_offset=[0.0, 1.5])
    for model in (P.DailyTemperatureIndex(), P.EnhancedTemperatureIndex()):
        assert_region_equals_glaciers_alone(model, elevation, area, region, ["specific_mass_balance"], rtol=1e-13)
