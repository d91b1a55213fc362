"""Initial temperature profiles that stop above the bottom of the grid: the caller's rule
below the deepest depth (hold, geotherm, linear to a deep value), and a warning naming the
rule when none was chosen. Expected values are computed here by hand."""

import contextlib
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg
from cryograd.physics._xarray import initial_profile
from tests._experiments import assert_cf_units

P = cg.physics


@contextlib.contextmanager
def warnings_as_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def column(flux=0.06):
    layer = P.SoilLayer(top=0.0, water_content=0.3, k_thawed=1.2, k_frozen=2.0, c_thawed=2.5e6, c_frozen=2.0e6)
    return P.PermafrostColumn(grid=P.Grid.uniform(depth=10.0, dz=0.5), layers=[layer], geothermal_flux=flux)


def shallow(deepest_value=-2.0):
    """Measured at 0.25, 1 and 5 m; the grid's centres go to 9.75 m."""
    return xr.DataArray([-6.0, -4.0, deepest_value], coords={"depth": [0.25, 1.0, 5.0]}, dims="depth")


def test_a_profile_shallower_than_the_grid_warns_and_holds_unless_a_rule_is_chosen():
    col = column()
    centres = np.asarray(col.grid.centres)
    with pytest.warns(UserWarning, match=r"stops at 5 m, above the deepest cell centre \(9.75 m\): holding"):
        held = initial_profile(shallow(), centres)
    np.testing.assert_array_equal(held[centres > 5.0], -2.0)
    np.testing.assert_allclose(held[centres <= 1.0], np.interp(centres[centres <= 1.0], [0.25, 1.0], [-6.0, -4.0]))
    with warnings_as_errors():
        np.testing.assert_array_equal(initial_profile(shallow(), centres, below="hold"), held)
        full = xr.DataArray(np.linspace(-6, -1, 20), coords={"depth": centres}, dims="depth")
        initial_profile(full, centres)  # reaches the deepest centre: nothing to say


def test_linear_to_a_deep_value_then_held():
    centres = np.asarray(column().grid.centres)
    with warnings_as_errors():
        profile = initial_profile(shallow(), centres, below=(9.0, 1.0))
    # from -2 degC at 5 m to +1 degC at 9 m: 0.75 K per m, then 1 degC
    for z, t in zip(centres, profile, strict=True):
        if 5.0 < z <= 9.0:
            assert t == pytest.approx(-2.0 + 0.75 * (z - 5.0), abs=1e-12)
        elif z > 9.0:
            assert t == 1.0


@pytest.mark.parametrize(("deepest_value", "k"), [(-2.0, 2.0), (1.5, 1.2)])
def test_geotherm_continues_by_steady_conduction(deepest_value, k):
    """One soil layer: the temperature rises by q / k per metre below 5 m, with the frozen
    conductivity under a frozen deepest value and the thawed one under a thawed value."""
    col = column(flux=0.06)
    centres = np.asarray(col.grid.centres)
    with warnings_as_errors():
        profile = initial_profile(shallow(deepest_value), centres, below="geotherm", column=col)
    below = centres > 5.0
    np.testing.assert_allclose(profile[below], deepest_value + 0.06 / k * (centres[below] - 5.0), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("below", "match"),
    [
        ("extrapolate", "below must be 'hold', 'geotherm' or"),
        ((4.0, 0.0), "below: the deep depth 4 m must lie below the profile's deepest, 5 m"),
        ((9.0,), "below must be 'hold', 'geotherm' or"),
    ],
)
def test_bad_rules_are_refused(below, match):
    with pytest.raises(ValueError, match=match):
        initial_profile(shallow(), np.asarray(column().grid.centres), below=below)


def test_simulate_takes_the_rule_and_warns_without_one():
    col = column()
    time = pd.date_range("2001-01-01", periods=5, freq="D")
    forcing = xr.Dataset({"surface_temperature": ("time", np.full(5, -3.0), {"units": "degC"})}, coords={"time": time})
    with pytest.warns(UserWarning, match="choose with below="):
        col.simulate(forcing, shallow())
    with warnings_as_errors():
        out = col.simulate(forcing, shallow(), below=(9.0, 1.0))
    assert float(out.temperature.isel(time=0).sel(depth=9.75)) > 0.0  # started at +1 degC, 4 days of conduction
    assert_cf_units(out)
