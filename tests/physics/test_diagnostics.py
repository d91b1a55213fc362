"""The permafrost diagnostics on hand-built profiles whose answers are worked out here:
four 1 m cells (edges 0-4 m, centres 0.5, 1.5, 2.5, 3.5 m), one case per branch."""

import numpy as np
import pytest

import cryograd as cg

P = cg.physics
EDGES = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
CENTRES = 0.5 * (EDGES[1:] + EDGES[:-1])


@pytest.mark.parametrize(
    ("temperature", "fraction", "expected"),
    [
        # thawed over frozen: the 0 degC isotherm halfway between 1 degC at 1.5 m and -1 at 2.5 m
        ([3.0, 1.0, -1.0, -3.0], [1, 1, 0, 0], 2.0),
        # a cell on the melting plateau, a quarter liquid: thawed in its upper quarter
        ([2.0, 0.0, -1.0, -2.0], [1, 0.25, 0, 0], 1.25),
        # autumn freeze-back: frozen top over a thawed layer; the thawed layer's bottom, a
        # third of the way from 1 degC at 2.5 m to -2 degC at 3.5 m
        ([-1.0, 2.0, 1.0, -2.0], [0, 1, 1, 0], 2.5 + 1.0 / 3.0),
        # thawed to the bottom of the column: the bottom edge
        ([1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1], 4.0),
        # a frozen top over a layer thawed to the bottom: the bottom edge
        ([-1.0, 1.0, 2.0, 3.0], [0, 1, 1, 1], 4.0),
        # nothing thawed
        ([-1.0, -2.0, -3.0, -4.0], [0, 0, 0, 0], 0.0),
    ],
    ids=["interpolated", "plateau", "freeze-back", "to-the-bottom", "frozen-top-to-the-bottom", "frozen"],
)
def test_thaw_depth_branches(temperature, fraction, expected):
    depth = P.thaw_depth(np.array(temperature), np.array(fraction, dtype=float), EDGES)
    assert float(depth) == pytest.approx(expected, abs=1e-12)


def test_thaw_depth_batches_over_leading_axes():
    temperature = np.array([[3.0, 1.0, -1.0, -3.0], [-1.0, 2.0, 1.0, -2.0]])
    fraction = np.array([[1, 1, 0, 0], [0, 1, 1, 0]], dtype=float)
    np.testing.assert_allclose(P.thaw_depth(temperature, fraction, EDGES), [2.0, 2.5 + 1.0 / 3.0], atol=1e-12)


def test_zero_annual_amplitude_depth():
    from cryograd.physics._diagnostics import zero_annual_amplitude_depth

    annual_min = np.zeros((3, 4))
    annual_max = np.array(
        [
            [10.0, 1.0, 0.05, 0.01],  # range falls through 0.1 K between 1.5 m (1 K) and 2.5 m (0.05 K)
            [5.0, 2.0, 0.5, 0.2],  # never below 0.1 K: NaN
            [0.05, 0.02, 0.01, 0.0],  # below from the top: the first centre
        ]
    )
    depth = zero_annual_amplitude_depth(annual_max, annual_min, CENTRES)
    assert depth[0] == pytest.approx(1.5 + (1.0 - 0.1) / (1.0 - 0.05), abs=1e-12)
    assert np.isnan(depth[1])
    assert depth[2] == 0.5


def test_talik():
    from cryograd.physics._diagnostics import talik

    annual_min = np.array(
        [
            [-5.0, -1.0, 0.5, 2.0],  # seasonally frozen top over ground above 0 all year: talik
            [-5.0, -1.0, -0.5, -0.1],  # frozen throughout
            [0.5, 1.0, 2.0, 3.0],  # nothing froze: no seasonal frost, no talik
            [-5.0, 0.5, -1.0, -2.0],  # an unfrozen layer between frozen ones
            [0.5, -1.0, 1.0, 2.0],  # above 0 at the top, then frozen, then above 0 below it
        ]
    )
    assert talik(annual_min).tolist() == [True, False, False, True, True]


def test_mean_annual_ground_temperature_at_depths():
    from cryograd.physics._diagnostics import interpolate_depths

    means = np.array([[-1.0, -2.0, -4.0, -5.0], [1.0, 0.0, -1.0, -3.0]])
    out = interpolate_depths(means, CENTRES, [0.0, 0.5, 2.0, 3.0, 3.5, 10.0])
    # above the first centre the first value; linear between centres; NaN below the last
    np.testing.assert_allclose(out[0, :5], [-1.0, -1.0, -3.0, -4.5, -5.0], atol=1e-12)
    np.testing.assert_allclose(out[1, :5], [1.0, 1.0, -0.5, -2.0, -3.0], atol=1e-12)
    assert np.isnan(out[:, 5]).all()


def test_interpolate_depths_equals_numpy_interp_row_by_row():
    from cryograd.physics._diagnostics import interpolate_depths

    rng = np.random.default_rng(4)
    centres = np.cumsum(rng.uniform(0.05, 1.0, 30))
    values = rng.normal(size=(7, 3, 30))
    depths = np.concatenate([[0.0, centres[0], centres[-1], centres[-1] + 1.0], centres[5:8], rng.uniform(0, 20, 40)])
    out = interpolate_depths(values, centres, depths)
    held = interpolate_depths(values, centres, depths, hold_below=True)
    assert out.shape == held.shape == (7, 3, depths.size)
    for index in np.ndindex(values.shape[:-1]):
        expected = np.interp(depths, centres, values[index], right=np.nan)
        np.testing.assert_array_equal(out[index], expected)  # bit for bit, NaN where np.interp gives NaN
        np.testing.assert_array_equal(held[index], np.interp(depths, centres, values[index]))  # the last value below


@pytest.mark.parametrize(
    ("maximum", "expected"),
    [
        ([4.0, 2.0, -2.0, -3.0], 2.0),  # 0 degC halfway between 1.5 m (+2) and 2.5 m (-2)
        ([4.0, np.nan, 1.0, -1.0], 3.0),  # a sensor without a value is skipped
        ([-0.5, -1.0, -2.0, -3.0], 0.0),  # the top sensor never thaws
        ([3.0, 2.0, 1.0, 0.5], np.nan),  # the deepest sensor thaws too: deeper than the sensors
        ([np.nan] * 4, np.nan),
    ],
)
def test_envelope_thaw_depth(maximum, expected):
    np.testing.assert_equal(P.envelope_thaw_depth(CENTRES, maximum), expected)


def test_yearly_sensor_statistics_of_a_worked_record():
    """Two years of daily values at the four centres: 2001 whole (a seasonal wave whose
    warmest day, 2 July, has 3 - 2 z degC: 0 degC at 1.5 m), 2002 only 100 days at
    -1 degC (too few for a MAGT)."""
    import pandas as pd
    import xarray as xr

    time = pd.date_range("2001-01-01", "2002-04-10", freq="D")
    season = np.where(time.year == 2001, np.sin(np.pi * (time.day_of_year - 1) / 364.0), 0.0)
    values = season[:, None] * (4.0 - 2.0 * CENTRES)[None, :] - 1.0
    temperature = xr.DataArray(values, coords=dict(time=time, depth=CENTRES), dims=("time", "depth"))
    out = P.yearly_sensor_statistics(temperature)
    assert out.year.values.tolist() == [2001, 2002] and out.days.values.tolist() == [365, 100]
    np.testing.assert_allclose(out.active_layer_thickness.sel(year=2001), 1.5, atol=1e-12)
    assert out.active_layer_thickness.sel(year=2002) == 0.0  # -1 degC all through
    np.testing.assert_allclose(out.mean_annual_ground_temperature.sel(year=2001), values[:365].mean(axis=0))
    assert np.isnan(out.mean_annual_ground_temperature.sel(year=2002)).all()  # 100 of the 330 days needed
    assert out.active_layer_thickness.attrs["units"] == "m"
    with pytest.raises(ValueError, match="temperature: dims"):
        P.yearly_sensor_statistics(temperature.rename(depth="z"))
