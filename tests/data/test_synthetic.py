"""Synthetic forcing and cloud masks: the statistics they promise, reproducibility, refusals."""

import jax
import numpy as np
import pytest

import cryograd as cg


def test_forcing_statistics_per_site():
    ds = cg.data.synthetic_permafrost_forcing(
        jax.random.key(0),
        "2001-01-01",
        30,
        mean_air_temperature=[-2.0, -12.0],
        amplitude=15.0,
        anomaly_std=3.0,
        anomaly_days=4.0,
        precipitation=[0.4, 0.1],
    )
    assert ds.air_temperature.dims == ("site", "time")
    assert str(ds.time.values[-1])[:10] == "2030-12-31"  # 30 calendar years
    air = ds.air_temperature.values
    np.testing.assert_allclose(air.mean(axis=1), [-2.0, -12.0], atol=0.3)
    seasonal = air - ds.air_temperature.groupby("time.dayofyear").mean().sel(dayofyear=ds.time.dt.dayofyear).values
    anomaly = seasonal[0]
    np.testing.assert_allclose(anomaly.std(), 3.0, rtol=0.1)
    np.testing.assert_allclose(np.corrcoef(anomaly[1:], anomaly[:-1])[0, 1], np.exp(-1 / 4.0), atol=0.03)
    yearly = ds.precipitation.values.sum(axis=1) / 30
    np.testing.assert_allclose(yearly, [0.4, 0.1], rtol=0.05)
    # snow: mass balance of the pack, nothing left in the warm site's July, depth from density
    swe = ds.snow_water_equivalent.values
    np.testing.assert_allclose(ds.snow_depth.values, swe * 1000 / 250.0)
    july = ds.time.dt.month.values == 7
    assert swe[0, july].max() == 0.0 and swe[0].max() > 0.1
    snowfall = np.where(air < 0, ds.precipitation.values, 0.0)
    assert np.all(np.diff(swe, axis=1) <= snowfall[:, 1:] + 1e-12)


def test_forcing_is_reproducible_from_its_key():
    a = cg.data.synthetic_permafrost_forcing(jax.random.key(5), "2020-01-01", 1)
    b = cg.data.synthetic_permafrost_forcing(jax.random.key(5), "2020-01-01", 1)
    c = cg.data.synthetic_permafrost_forcing(jax.random.key(6), "2020-01-01", 1)
    assert a.air_temperature.dims == ("time",)
    np.testing.assert_array_equal(a.air_temperature.values, b.air_temperature.values)
    assert not np.allclose(a.air_temperature.values, c.air_temperature.values)


def test_clear_sky_fraction_and_spells():
    times = np.arange("2000-01-01", "2040-01-01", dtype="datetime64[D]")
    mask = cg.data.synthetic_clear_sky(jax.random.key(1), times, clear_fraction=0.3, persistence=0.6, sites=2).values
    assert mask.dtype == bool and mask.shape == (2, times.size)
    np.testing.assert_allclose(mask.mean(axis=1), 0.3, atol=0.02)
    lag = np.corrcoef(mask[0, 1:].astype(float), mask[0, :-1].astype(float))[0, 1]
    np.testing.assert_allclose(lag, 0.6, atol=0.03)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(years=0), "years"),
        (dict(start="not a date"), "start"),
        (dict(mean_air_temperature=[-1.0, -2.0], precipitation=[0.1, 0.2, 0.3]), "one length"),
        (dict(wet_day_fraction=1.5), "wet_day_fraction"),
        (dict(anomaly_days=0.0), "anomaly_days"),
        (dict(precipitation=-0.1), "precipitation"),
        (dict(mean_air_temperature=float("nan")), "finite"),
    ],
)
def test_forcing_refusals(kwargs, match):
    arguments = dict(start="2020-01-01", years=1) | kwargs
    with pytest.raises(ValueError, match=match):
        cg.data.synthetic_permafrost_forcing(jax.random.key(0), **arguments)


def test_clear_sky_refusals():
    with pytest.raises(ValueError, match="clear_fraction"):
        cg.data.synthetic_clear_sky(jax.random.key(0), ["2020-01-01"], clear_fraction=1.0)
    with pytest.raises(ValueError, match="persistence"):
        cg.data.synthetic_clear_sky(jax.random.key(0), ["2020-01-01"], persistence=1.0)


def _ranges(hypsometry, bin_size=50.0):
    area, elevation = np.asarray(hypsometry.area), np.asarray(hypsometry.elevation)
    total = area.sum(axis=1)
    height = np.array([np.ptp(e[a > 0]) + bin_size for e, a in zip(elevation, area, strict=True)])
    return total, height


def test_glacier_region_statistics_match_the_oetztal_glaciers():
    region = cg.data.synthetic_glacier_region(jax.random.key(2), 2000)
    total, height = _ranges(region)
    np.testing.assert_allclose(np.median(total), 2.0e6, rtol=0.1)
    slope = np.polyfit(np.log(total / 1e6), np.log(height), 1)[0]
    np.testing.assert_allclose(slope, 0.3, atol=0.03)
    # area-weighted median elevations centre on 3080 m
    area, elevation = np.asarray(region.area), np.asarray(region.elevation)
    cumulative = np.cumsum(area, axis=1) / total[:, None]
    median = elevation[np.arange(2000), np.argmax(cumulative >= 0.5, axis=1)]
    np.testing.assert_allclose(median.mean(), 3080.0, atol=10.0)
    # the real glaciers (SRTM hypsometries inside their RGI outlines) sit inside the generator's spread
    real_area, real_height = _ranges(
        cg.data.hypsometry(cg.data.load_sample("oetztal_dem"), cg.data.load_sample("oetztal_outlines"))
    )
    predicted = 620.0 * (real_area / 1e6) ** 0.3
    ratio = real_height / predicted
    assert 0.85 < np.median(ratio) < 1.15 and np.all(np.abs(np.log(ratio)) < 3 * 0.2)


def test_glacier_region_refusals():
    with pytest.raises(ValueError, match="n must be"):
        cg.data.synthetic_glacier_region(jax.random.key(0), 0)
    with pytest.raises(ValueError, match="bin_size"):
        cg.data.synthetic_glacier_region(jax.random.key(0), 3, bin_size=0.0)
