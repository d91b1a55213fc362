"""The projection pieces: the record's whole years repeated with a warming trend, and an
ensemble of columns run side by side with yearly statistics."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import cryograd as cg

P = cg.physics
DAY = 86400.0


def test_repeated_forcing_continues_the_seasons_and_adds_the_warming():
    """Day k after the record's last day takes the record's day (n + k) mod (365 x whole
    years), so the seasons go on; the warming grows linearly from the record's end."""
    record = {"air_temperature": np.arange(757.0), "snow_depth": np.arange(757.0) / 1000}
    forcing, warming = P.repeated_forcing(record, 3, warming_per_decade=0.5)
    k = np.arange(3 * 365)
    day = (757 + k) % 730
    assert day[0] == 27 and day[730 - 27] == 0  # a record from 1 July: 28 July continues it
    np.testing.assert_allclose(forcing["snow_depth"], day / 1000)
    np.testing.assert_allclose(forcing["air_temperature"] - day, 0.05 * (k + 1) / 365, rtol=0, atol=1e-12)
    np.testing.assert_allclose(warming, 0.05 * (k + 1) / 365)
    control, none = P.repeated_forcing(record, 3)
    np.testing.assert_array_equal(control["air_temperature"], day)
    assert not none.any()
    # no air temperature: the surface temperature is warmed
    surface, _ = P.repeated_forcing({"surface_temperature": np.zeros(400)}, 1, 1.0)
    np.testing.assert_allclose(surface["surface_temperature"][-1], 0.1)
    with pytest.raises(ValueError, match="300 days; it needs at least one whole year"):
        P.repeated_forcing({"air_temperature": np.zeros(300)}, 1, 0.5)
    with pytest.raises(ValueError, match="no air or surface temperature"):
        P.repeated_forcing({"snow_depth": np.zeros(400)}, 1, 0.5)


def test_yearly_runs_equal_each_column_s_own_summary():
    """Two columns of one structure (different conductivities, forcings and starts) run
    side by side give what each column's own `summarize` gives."""
    grid = P.Grid.geometric(depth=10.0, n=30, dz_top=0.05)
    layer = P.SoilLayer(top=0.0, water_content=0.3, k_thawed=1.2, k_frozen=2.0, c_thawed=2.5e6, c_frozen=1.9e6)
    column = P.PermafrostColumn(grid=grid, layers=[layer], freeze_curve=P.FreeWater(), surface=P.Prescribed())
    other = eqx.tree_at(lambda c: c.layers[0].k_frozen, column, 1.5)
    days = np.arange(2 * 365)
    surface = np.stack([-4 + 12 * np.sin(2 * np.pi * days / 365), -6 + 10 * np.sin(2 * np.pi * days / 365)])
    initial = np.stack([np.full(30, -2.0), np.full(30, -3.0)])
    out = P.yearly_runs([column, other], {"surface_temperature": surface}, initial, 2, DAY)
    assert out["max_thaw_depth"].shape == (2, 2) and out["mean_temperature"].shape == (2, 2, 30)
    period = jnp.asarray(days // 365)
    for k, c in enumerate([column, other]):
        own = c.summarize({"surface_temperature": jnp.asarray(surface[k])}, jnp.asarray(initial[k]), DAY, period, 2)
        np.testing.assert_allclose(out["max_thaw_depth"][k], own["max_thaw_depth"], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(out["mean_temperature"][k], own["mean_temperature"], rtol=1e-12, atol=1e-12)
    assert not np.allclose(out["mean_temperature"][0], out["mean_temperature"][1])
