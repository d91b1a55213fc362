"""Observation operators and parameters: exact values on constructed inputs, refusals."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg

A = cg.assimilation
P = cg.physics


def test_ground_temperature_interpolates_between_cell_centres():
    centres = np.array([0.05, 0.15, 0.3, 0.6, 1.0])
    times = pd.date_range("2020-01-01", periods=4, freq="D")
    temperature = -2.0 + 3.0 * centres[None, :] + np.arange(4)[:, None]  # linear in depth
    measured = xr.DataArray(
        np.array([[np.nan, -1.1], [-0.5, np.nan], [0.2, 0.9], [1.0, 2.0]]),
        dims=("time", "depth"),
        coords=dict(time=times, depth=[0.2, 0.8]),
    )
    operator = A.ground_temperature(measured, times, centres, sigma=0.3)
    assert operator.values.size == 6  # NaN skipped
    predicted = operator.predict({"temperature": jnp.asarray(temperature)}, {})
    rows = [int(label.split("@")[0][-1]) - 1 for label in operator.labels]
    depths = [float(label.split("@")[1][:-1]) for label in operator.labels]
    # the observed values are the measured entries at those times and depths
    measured_there = [float(measured.isel(time=r).sel(depth=d)) for r, d in zip(rows, depths, strict=True)]
    np.testing.assert_array_equal(operator.values, measured_there)
    assert sorted(measured_there) == [-1.1, -0.5, 0.2, 0.9, 1.0, 2.0]
    expected = -2.0 + 3.0 * np.array(depths) + np.array(rows)
    np.testing.assert_allclose(predicted, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="outside the column"):
        A.GroundTemperature("x", [0], [5.0], centres, [1.0], 0.5)


def test_regional_mass_change_is_blind_to_the_series_reference():
    """Adding a constant to the GRACE series changes nothing (the offset is profiled out),
    and a model that matches the series' changes has zero residual."""
    years = np.arange(2003, 2011)
    area = np.array([2e6, 5e6])
    smb = np.array([np.linspace(-500, -900, years.size), np.linspace(-300, -700, years.size)])  # kg m-2
    mass = np.cumsum(area @ smb) / 1e12  # Gt at each year end
    ends = pd.DatetimeIndex([pd.Timestamp(int(y), 10, 1) for y in years])
    series = xr.Dataset(
        dict(mass=("time", mass + 123.0), mass_uncertainty=("time", np.full(years.size, 0.001))),
        coords=dict(time=ends),
    )
    operator = A.regional_mass_change(series, area, years)
    outputs = {"specific_mass_balance": jnp.asarray(smb)}
    predicted = operator.predict(outputs, {})
    np.testing.assert_allclose(operator.residuals(predicted), 0.0, atol=1e-9)
    shifted = A.regional_mass_change(series.assign(mass=series.mass - 1000.0), area, years)
    np.testing.assert_allclose(shifted.neg_log_likelihood(shifted.predict(outputs, {})), 0.0, atol=1e-12)
    worse = {"specific_mass_balance": jnp.asarray(smb * 1.1)}
    assert operator.neg_log_likelihood(operator.predict(worse, {})) > 1.0


def test_geodetic_operators():
    years = np.arange(2000, 2010)
    op = A.geodetic_balance(-800.0, 100.0, years, 2001, 2004)
    smb = jnp.asarray(np.arange(10.0) * -100.0)
    assert float(op.predict({"specific_mass_balance": smb}, {})[0]) == pytest.approx(-250.0)
    value, sigma = A.geodetic_from_dh(-1.0, 0.1)
    assert value == pytest.approx(-850.0)
    assert sigma == pytest.approx(np.hypot(85.0, 60.0))
    with pytest.raises(ValueError, match=r"years \[2010\] are not modelled"):
        A.geodetic_balance(-800.0, 100.0, years, 2005, 2010)


def test_regional_balance_is_the_area_weighted_period_mean():
    """The regional rate of 3 glaciers over 2002-2005 equals the hand-computed area-weighted
    mean of their period means; a big glacier counts for its area."""
    years = np.arange(2000, 2010)
    area = np.array([1e6, 3e6, 6e6])
    rng = np.random.default_rng(1)
    smb = rng.normal(-800.0, 400.0, (3, years.size))
    op = A.regional_balance(-700.0, 120.0, area, years, 2002, 2005, label="2002-01-01_2006-01-01")
    rows = slice(2, 6)
    expected = sum(a * smb[g, rows].mean() for g, a in enumerate(area)) / area.sum()
    predicted = op.predict({"specific_mass_balance": jnp.asarray(smb)}, {})
    np.testing.assert_allclose(predicted, [expected], rtol=1e-13)
    assert op.labels == ("2002-01-01_2006-01-01",) and op.units == "kg m-2 yr-1"
    np.testing.assert_allclose(op.residuals(predicted), (expected + 700.0) / 120.0, rtol=1e-12)
    # one glacier changed by +100 moves the regional value by 100 x its area share
    moved = smb.copy()
    moved[2] += 100.0
    shift = op.predict({"specific_mass_balance": jnp.asarray(moved)}, {}) - predicted
    np.testing.assert_allclose(shift, [60.0], rtol=1e-12)
    with pytest.raises(ValueError, match=r"years \[2010\] are not modelled"):
        A.regional_balance(-700.0, 120.0, area, years, 2008, 2010)
    with pytest.raises(ValueError, match="area must be"):
        A.regional_balance(-700.0, 120.0, np.zeros(3), years, 2002, 2005)
    with pytest.raises(ValueError, match="one regional value"):
        A.regional_balance([-700.0, -600.0], 120.0, area, years, 2002, 2005)


def test_correlated_errors_whiten_residuals():
    cov = A.exponential_covariance([1.0, 2.0, 1.5], [0.0, 1.0, 2.0], 1.5)
    op = A.Series("s", "x", [0, 1, 2], [0.0, 0.0, 0.0], [1.0, 2.0, 1.5], covariance=cov)
    d = jnp.asarray([0.3, -0.2, 0.5])
    np.testing.assert_allclose(2 * op.neg_log_likelihood(d), d @ np.linalg.solve(cov, d), rtol=1e-12)


def test_parameters_paths_bounds_and_priors():
    model = P.MonthlyTemperatureIndex(precipitation_factor=np.full(12, 2.0))
    p = A.Parameter("precipitation_factor.3", bounds=(0.1, 10.0))
    problem = A.Problem(model, lambda m, x: {"y": m.precipitation_factor}, [p], [A.Series("y", "y", [3], [4.0], 1.0)])
    fitted = problem.fitted_model(problem.pack({"precipitation_factor.3": 4.0}))
    np.testing.assert_allclose(fitted.precipitation_factor, [2, 2, 2, 4, 2, 2, 2, 2, 2, 2, 2, 2])
    for value in (0.2, 5.0, 9.9):
        assert float(p.constrain(p.unconstrain(value))) == pytest.approx(value, rel=1e-12)
    q = A.Parameter("x", prior=A.LogNormal(2.0, 0.5), init=3.0)
    assert q.bounds == (0.0, None)
    assert float(q.constrain(q.unconstrain(1e-3))) == pytest.approx(1e-3, rel=1e-9)
    with pytest.raises(ValueError, match="low < high"):
        A.Parameter("melt_factor", bounds=(17.0, 1.5))
    with pytest.raises(ValueError, match="outside the prior's support"):
        A.Parameter("melt_factor", bounds=(-1.0, 5.0), prior=A.LogNormal(2.0, 0.5))
    with pytest.raises(ValueError, match="has no field 'melt_fator'"):
        A.Problem(model, lambda m, x: {}, [A.Parameter("melt_fator")], [A.Series("y", "y", [0], [1.0], 1.0)])
    with pytest.raises(ValueError, match="strictly inside bounds"):
        A.Problem(
            model,
            lambda m, x: {},
            [A.Parameter("melt_factor", init=20.0, bounds=(1.5, 17.0))],
            [A.Series("y", "y", [0], [1.0], 1.0)],
        )
    with pytest.raises(ValueError, match="unknown prior type"):
        A.Parameter("melt_factor", prior={"type": "gamma", "a": 1})
    with pytest.raises(ValueError, match="sigma must be positive"):
        A.Series("y", "y", [0], [1.0], 0.0)


def test_serially_correlated_errors_whiten_as_the_dense_exponential_covariance():
    """`ErrorModel(..., correlation_time, times, series)`: the sparse whitening of each
    series (gaps, unequal sigma, values given out of time order, two series interleaved)
    gives the same -log likelihood as the dense covariance sigma_i sigma_j exp(-|dt| / tau)
    per series through its Cholesky factor, and the same whitened residuals in time order."""
    import jax.numpy as jnp

    from cryograd.assimilation._observations import ErrorModel, exponential_covariance

    rng = np.random.default_rng(3)
    days = np.array([0, 1, 2, 5, 6, 7, 8, 20, 21, 22], dtype=float)  # gaps of 3 and 12 days
    times = np.concatenate([days, days[:7] + 0.5])
    series = np.array([0.4] * 10 + [1.2] * 7)  # two sensor depths
    sigma = rng.uniform(0.2, 0.6, times.size)
    values = rng.normal(size=times.size)
    shuffle = rng.permutation(times.size)
    times, series, sigma, values = times[shuffle], series[shuffle], sigma[shuffle], values[shuffle]
    predicted = values + rng.normal(0, 0.5, times.size)
    tau = 3.0
    serial = ErrorModel("t", values, sigma, correlation_time=tau, times=times, series=series)
    dense = {}
    for depth in (0.4, 1.2):
        mask = np.flatnonzero(series == depth)
        order = mask[np.argsort(times[mask])]
        covariance = exponential_covariance(sigma[order], times[order], tau)
        dense[depth] = (order, ErrorModel("d", values[order], sigma[order], covariance=covariance))

    from cryograd.assimilation._observations import AbstractObservation

    class Values(AbstractObservation):
        error: ErrorModel

        def predict(self, outputs, parameters):
            return outputs

    whitened = np.asarray(Values(serial).residuals(jnp.asarray(predicted)))
    total = 0.0
    for order, error in dense.values():
        expected = np.asarray(Values(error).residuals(jnp.asarray(predicted[order])))
        np.testing.assert_allclose(whitened[order], expected, rtol=0, atol=1e-12)
        total += 0.5 * float(np.sum(expected**2))
    assert float(Values(serial).neg_log_likelihood(jnp.asarray(predicted))) == pytest.approx(total, rel=1e-12)
    independent = 0.5 * np.sum(((predicted - values) / sigma) ** 2)
    assert abs(total - independent) > 1e-3 * independent  # the correlation matters here


def test_serially_correlated_errors_refuse_bad_times():
    from cryograd.assimilation._observations import ErrorModel

    with pytest.raises(ValueError, match="correlation_time must be a positive number"):
        ErrorModel("t", [1.0, 2.0], 0.5, correlation_time=0.0, times=[0.0, 1.0])
    with pytest.raises(ValueError, match="needs the values' times"):
        ErrorModel("t", [1.0, 2.0], 0.5, correlation_time=2.0)
    with pytest.raises(ValueError, match="two values at the same time"):
        ErrorModel("t", [1.0, 2.0], 0.5, correlation_time=2.0, times=[1.0, 1.0])
    with pytest.raises(ValueError, match="not both"):
        ErrorModel("t", [1.0, 2.0], 0.5, correlation_time=2.0, times=[0.0, 1.0], covariance=np.eye(2))
