"""LST and active-layer operators against independent computations: the column's boundary
rule, the xarray diagnostics, central differences; and their refusals."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg

A = cg.assimilation
P = cg.physics
DAY = 86400.0


def small_column(surface=None, k_thawed=0.8):
    return P.PermafrostColumn(
        grid=P.Grid.geometric(depth=15.0, n=30, dz_top=0.02),
        layers=[
            P.SoilLayer(top=0.0, water_content=0.4, k_thawed=k_thawed, k_frozen=1.6, c_thawed=2.5e6, c_frozen=1.9e6)
        ],
        freeze_curve=P.FreeWater(),
        surface=surface if surface is not None else P.Snow(density=250.0, freezing=0.7, thawing=1.2),
    )


@pytest.fixture(scope="module")
def forcing():
    return cg.data.synthetic_permafrost_forcing(jax.random.key(3), "2019-01-01", 2, mean_air_temperature=-6.0)


def arrays(forcing, column):
    return {k: jnp.asarray(forcing[k].values) for k in column.surface.forcing_variables}


def test_surface_temperature_follows_each_surface_s_rule(forcing):
    air = forcing.air_temperature.values
    snow = forcing.snow_depth.values
    column = small_column()
    out = column.run(arrays(forcing, column), jnp.full(30, -3.0), DAY)
    present = snow >= 0.01
    expected = np.where(present, np.minimum(air, 0.0), np.where(air < 0, 0.7 * air, 1.2 * air))
    np.testing.assert_array_equal(np.asarray(out["surface_temperature"]), expected)
    assert 0.2 < present.mean() < 0.8  # both branches are exercised

    prescribed = small_column(P.Prescribed())
    out = prescribed.run({"surface_temperature": jnp.asarray(air)}, jnp.full(30, -3.0), DAY, save_every=5)
    np.testing.assert_array_equal(np.asarray(out["surface_temperature"]), air[4::5])

    flux = small_column(P.PrescribedFlux())
    out = flux.run({"surface_heat_flux": jnp.zeros(40)}, jnp.full(30, -3.0), DAY)
    np.testing.assert_array_equal(np.asarray(out["surface_temperature"]), np.asarray(out["temperature"][:, 0]))

    ds = column.simulate(forcing, -3.0)
    assert ds.surface_temperature.attrs["units"] == "degC"
    np.testing.assert_array_equal(ds.surface_temperature.values, expected)


def test_lst_operator_samples_clear_days_and_adds_the_offset(forcing):
    times = pd.DatetimeIndex(forcing.time.values)
    surface = np.sin(np.arange(times.size) / 10.0) * 10.0
    clear = np.zeros(times.size, dtype=bool)
    clear[[3, 50, 51, 400]] = True
    lst_k = np.full(times.size, 250.0)
    lst_k[100] = np.nan  # a missing retrieval on a clear day is skipped too
    clear[100] = True
    lst = xr.DataArray(lst_k, coords=dict(time=times + pd.Timedelta(hours=10.5)), dims="time", attrs=dict(units="K"))
    operator = A.land_surface_temperature(lst, times, sigma=2.0, clear=clear, offset="lst_offset", end="2019-12-31")
    np.testing.assert_array_equal(np.asarray(operator.time_index), [3, 50, 51])  # 400 is after `end`
    np.testing.assert_allclose(operator.values, 250.0 - 273.15)
    predicted = operator.predict({"surface_temperature": jnp.asarray(surface)}, {"lst_offset": jnp.asarray(-1.5)})
    np.testing.assert_allclose(predicted, surface[[3, 50, 51]] - 1.5)

    member = A.land_surface_temperature(lst, times, clear=clear, offset="o", member=1)
    batched = jnp.stack([surface, surface + 7.0])
    predicted = member.predict({"surface_temperature": batched}, {"o": jnp.asarray([0.0, 2.0])})
    np.testing.assert_allclose(predicted, surface[[3, 50, 51, 400]] + 9.0)
    # a retrieval after the last modelled step is not compared with any step
    late = lst.assign_coords(time=lst.time + pd.Timedelta(days=2))
    assert A.land_surface_temperature(late, times[:400], clear=clear).values.size == 3


def test_lst_refusals(forcing):
    times = pd.DatetimeIndex(forcing.time.values)
    series = xr.DataArray(np.zeros(times.size), coords=dict(time=times), dims="time")
    with pytest.raises(ValueError, match="units"):
        A.land_surface_temperature(series, times)
    series.attrs["units"] = "degC"
    with pytest.raises(ValueError, match="no clear-sky"):
        A.land_surface_temperature(series, times, clear=np.zeros(times.size, bool))
    with pytest.raises(ValueError, match="clear has shape"):
        A.land_surface_temperature(series, times, clear=np.ones(3, bool))
    operator = A.land_surface_temperature(series, times, offset="lst_offset")
    column = small_column()
    with pytest.raises(ValueError, match=r"reads parameters \['lst_offset'\]"):
        A.Problem(column, lambda m, x: m.run(x, jnp.zeros(30), DAY), [A.Parameter("surface.thawing")], [operator], {})


def test_alt_operator_equals_the_simulated_active_layer(forcing):
    column = small_column()
    ds = column.simulate(forcing, -3.0)
    years = ds.active_layer_thickness.year.values
    observed = xr.DataArray(ds.active_layer_thickness.values + 0.01, coords=dict(year=years), dims="year")
    operator = A.active_layer_thickness(observed, forcing.time.values, column.grid.edges, sigma=0.05)
    out = column.run(arrays(forcing, column), jnp.full(30, -3.0), DAY)
    predicted = np.asarray(operator.predict(out, {}))
    np.testing.assert_allclose(predicted, ds.active_layer_thickness.values, rtol=1e-12)
    assert np.all(predicted > 0.3)  # a real active layer, not the zero of a frozen column

    partial = forcing.time.values[10:]
    with pytest.raises(ValueError, match=r"years \[2019\] are not modelled"):
        A.active_layer_thickness(observed, partial, column.grid.edges)
    with pytest.raises(ValueError, match="over year"):
        A.active_layer_thickness(observed.rename(year="time"), forcing.time.values, column.grid.edges)


def test_alt_gradient_matches_central_differences(forcing):
    """d ALT / d k_thawed in forward mode (as the permafrost fits use) against central
    differences. The ALT is piecewise smooth in the parameters (its pieces change where a
    cell's thaw state flips on some day); at k = 0.8 with bdf2+predicted, changes of 1e-4 and
    1e-5 cross such a flip (the difference quotients are off by 1.5 % and 1e-4), 1e-6 does
    not (3.6e-12)."""
    column = small_column()
    times = forcing.time.values
    observed = xr.DataArray([1.0, 1.0], coords=dict(year=[2019, 2020]), dims="year")
    operator = A.active_layer_thickness(observed, times, column.grid.edges)
    data = arrays(forcing, column)

    def alt(k):
        model = eqx.tree_at(lambda c: c.layers[0].k_thawed, column, k)
        out = model.run(data, jnp.full(30, -3.0), DAY, adjoint=diffrax.ForwardMode())
        return operator.predict(out, {})

    k0 = jnp.asarray(0.8)
    forward = np.asarray(jax.jacfwd(alt)(k0))
    h = 1e-6
    central = (np.asarray(alt(k0 + h)) - np.asarray(alt(k0 - h))) / (2 * h)
    assert np.all(forward > 0)  # a better-conducting thawed soil thaws deeper
    np.testing.assert_allclose(forward, central, rtol=1e-6)
