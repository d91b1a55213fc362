"""GlaMBIE's per-period regional mass change as an observation (`period_mass_change`), on the
real Iceland file (the `iceland_glambie` sample) and on small hand-made series."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg

A = cg.assimilation


@pytest.fixture(scope="module")
def iceland():
    return cg.data.load_sample("iceland_glambie")


@pytest.fixture(scope="module")
def table():
    # the same file read as plain CSV, independently of cg.data.open_grace
    return pd.read_csv(cg.data.sample_path("iceland_glambie"))


def test_reader_keeps_each_source_and_its_variability_flag(iceland, table):
    for source in ("gravimetry", "altimetry", "demdiff_and_glaciological"):
        np.testing.assert_array_equal(iceland[f"{source}_mass_change"].values, table[f"{source}_gt"].to_numpy())
        np.testing.assert_array_equal(
            iceland[f"{source}_mass_change_uncertainty"].values, table[f"{source}_gt_errors"].to_numpy()
        )
        np.testing.assert_array_equal(
            iceland[f"{source}_annual_variability"].values, table[f"{source}_annual_variability"].to_numpy()
        )
    assert iceland.attrs["years"] == "hydrological"


def test_calibration_years_pick_the_hydrological_years_one_to_one(iceland, table):
    years = np.arange(2001, 2021)  # model year y: 1 October y-1 to 1 October y
    operator = A.period_mass_change(iceland, np.ones(3), years, start=2003, end=2012)
    assert operator.labels[0] == "2002-10-01/2003-10-01" and operator.labels[-1] == "2011-10-01/2012-10-01"
    weights = np.asarray(operator.weights)
    np.testing.assert_array_equal(weights.sum(axis=1), 1.0)
    np.testing.assert_array_equal(years[weights.argmax(axis=1)], np.arange(2003, 2013))
    rows = (table.end_dates > 2002.9) & (table.end_dates < 2012.9)
    np.testing.assert_array_equal(operator.values, table.gravimetry_gt[rows].to_numpy())
    np.testing.assert_array_equal(operator.sigma, table.gravimetry_gt_errors[rows].to_numpy())
    assert operator.units == "Gt"


def test_gap_years_without_own_variability_are_left_out(iceland, table):
    years = np.arange(2013, 2021)
    kept = A.period_mass_change(iceland, np.ones(1), years)
    everything = A.period_mass_change(iceland, np.ones(1), years, own_variability_only=False)
    flagged = table[(table.end_dates > 2012.9) & (table.end_dates < 2020.9)].gravimetry_annual_variability
    assert len(everything.labels) == 8 and len(kept.labels) == 8 - int(flagged.isna().sum()) == 6
    assert "2016-10-01/2017-10-01" in everything.labels and "2016-10-01/2017-10-01" not in kept.labels


def test_prediction_is_the_summed_change_of_the_glaciers(iceland):
    years = np.arange(2003, 2008)
    area = np.array([1e9, 2e9])  # m2
    smb = np.array([[-1000.0, -500.0, 0.0, 200.0, -100.0], [-2000.0, 0.0, 100.0, -300.0, 0.0]])  # kg m-2
    operator = A.period_mass_change(iceland, area, years, source="demdiff_and_glaciological")
    predicted = operator.predict(dict(specific_mass_balance=jnp.asarray(smb)), {})
    expected = (1e9 * smb[0] + 2e9 * smb[1]) / 1e12  # Gt per hydrological year
    np.testing.assert_allclose(predicted, expected, rtol=1e-14)


def _series(bounds, values, errors=True):
    bounds = np.array([[np.datetime64(a), np.datetime64(b)] for a, b in bounds], "datetime64[ns]")
    ds = xr.Dataset(coords=dict(time=bounds[:, 0] + (bounds[:, 1] - bounds[:, 0]) / 2))
    ds["time_bounds"] = (("time", "bounds"), bounds)
    ds["gravimetry_mass_change"] = ("time", np.asarray(values, float))
    if errors:
        ds["gravimetry_mass_change_uncertainty"] = ("time", np.ones(len(values)))
    return ds


def test_a_period_across_model_years_takes_each_years_share():
    # calendar-year model (year_start_month=1); one period from 1 July 2010 to 1 July 2011
    series = _series([("2010-07-01", "2011-07-01"), ("2011-07-01", "2012-07-01")], [-2.0, -3.0])
    operator = A.period_mass_change(series, np.ones(1), [2010, 2011, 2012], year_start_month=1)
    first = np.asarray(operator.weights)[0]
    np.testing.assert_allclose(first, [184 / 365, 181 / 365, 0.0])  # days of 2010 and 2011 inside
    # periods reaching into years outside start..end are not kept
    assert A.period_mass_change(series, np.ones(1), [2010, 2011, 2012], year_start_month=1, end=2011).labels == (
        "2010-07-01/2011-07-01",
    )


def test_refusals(iceland):
    years = np.arange(2003, 2013)
    with pytest.raises(ValueError, match="without errors"):
        A.period_mass_change(_series([("2002-10-01", "2003-10-01")], [1.0], errors=False), np.ones(1), years)
    with pytest.raises(ValueError, match=r"sources: .*gravimetry"):
        A.period_mass_change(iceland, np.ones(1), years, source="lidar")
    with pytest.raises(ValueError, match="no gravimetry period lies inside the model years 2003-2012 limited to 2025"):
        A.period_mass_change(iceland, np.ones(1), years, start=2025)
    with pytest.raises(ValueError, match="consecutive"):
        A.period_mass_change(iceland, np.ones(1), [2003, 2005])
    with pytest.raises(ValueError, match="area"):
        A.period_mass_change(iceland, np.zeros(2), years)


def test_model_error_is_added_in_quadrature_per_model_year(iceland, table):
    years = np.arange(2001, 2021)
    plain = A.period_mass_change(iceland, np.ones(3), years, start=2003, end=2012)
    widened = A.period_mass_change(iceland, np.ones(3), years, start=2003, end=2012, model_error=4.0)
    # annual periods: one model year each, so sigma^2 grows by exactly 16 Gt^2
    np.testing.assert_allclose(np.asarray(widened.sigma) ** 2, np.asarray(plain.sigma) ** 2 + 16.0, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(widened.values), np.asarray(plain.values))
    with pytest.raises(ValueError, match="model_error"):
        A.period_mass_change(iceland, np.ones(3), years, model_error=-1.0)
