"""Bad input raises ValueError naming the argument or variable."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg

P = cg.physics


def column(**kwargs):
    defaults = dict(grid=P.Grid.uniform(depth=2.0, dz=0.1), layers=[P.SoilLayer.from_composition(0.0, 0.4)])
    return P.PermafrostColumn(**(defaults | kwargs))


def forcing(values=None, units="degC", time=None):
    time = pd.date_range("2000-01-01", periods=10, freq="D") if time is None else time
    values = np.linspace(-5, 5, len(time)) if values is None else values
    attrs = {} if units is None else {"units": units}
    return xr.Dataset({"surface_temperature": ("time", values, attrs)}, coords={"time": time})


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: P.Grid([0.0, 0.1, 0.1, 0.3]), r"^edges must be strictly increasing"),
        (lambda: P.Grid([0.0, 0.2, 0.1]), r"^edges must be strictly increasing"),
        (lambda: P.Grid.uniform(depth=1.0, dz=0.3), r"must be a whole multiple of dz"),
        (lambda: P.Grid.geometric(depth=1.0, n=100, dz_top=0.1), r"^n \* dz_top = 10.0 m exceeds depth"),
        (
            lambda: P.SoilLayer(0.0, 0.3, k_thawed=-1.0, k_frozen=2.0, c_thawed=2e6, c_frozen=2e6),
            r"^k_thawed must be positive",
        ),
        (
            lambda: P.SoilLayer(0.0, 0.3, k_thawed=1.0, k_frozen=2.0, c_thawed=0.0, c_frozen=2e6),
            r"^c_thawed must be positive",
        ),
        (
            lambda: P.SoilLayer(0.0, 0.5, 1.0, 2.0, 2e6, 2e6, porosity=0.4),
            r"^water_content \(0.5\) must not exceed porosity",
        ),
        (lambda: P.SoilLayer.from_composition(0.0, porosity=0.4, saturation=1.2), r"^saturation must be <= 1"),
        (lambda: P.PowerLaw(a=0.1, b=0.5), r"^b must be negative"),
        (lambda: P.PiecewiseLinear(t_end=0.5), r"^t_end must be below 0 degC"),
        (lambda: P.DallAmico(alpha=1.0, n=0.9), r"^n must exceed 1"),
        (lambda: column(layers=[P.SoilLayer.from_composition(0.5, 0.4)]), r"^layers: the first layer starts at 0.5 m"),
        (
            lambda: column(layers=[P.SoilLayer.from_composition(0.0, 0.4), P.SoilLayer.from_composition(3.0, 0.4)]),
            r"^layers: a layer starts at 3.0 m, at or below the grid's bottom",
        ),
        (
            lambda: column(
                layers=[
                    P.SoilLayer.from_composition(0.0, 0.4),
                    P.SoilLayer.from_composition(1.0, 0.3),
                    P.SoilLayer.from_composition(0.5, 0.3),
                ]
            ),
            r"^layers must be sorted by strictly increasing top",
        ),
    ],
)
def test_construction_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (forcing().drop_vars("time"), r"^forcing has no 'time' coordinate"),
        (forcing(time=pd.DatetimeIndex(["2000-01-02", "2000-01-01", "2000-01-03"])), r"^forcing 'time' is not sorted"),
        (
            forcing(time=pd.DatetimeIndex(["2000-01-01", "2000-01-01", "2000-01-02"])),
            r"^forcing 'time' has duplicated times",
        ),
        (forcing(values=np.r_[np.zeros(4), np.nan, np.zeros(5)]), r"^forcing variable 'surface_temperature' has NaN"),
        (forcing().rename(surface_temperature="air_temperature"), r"^forcing lacks required variable"),
        (
            forcing(values=np.full(10, 265.0), units=None),
            r"no 'units' attribute and values up to 265.0, which look like kelvin",
        ),
        (forcing(units="m s-1"), r"^forcing variable 'surface_temperature': units 'm s-1' are not a temperature"),
        (
            forcing(time=pd.date_range("2000-01-01", periods=10, freq="2D")),
            r"^forcing 'time' must be evenly spaced by dt",
        ),
    ],
)
def test_forcing_errors(data, match):
    with pytest.raises(ValueError, match=match):
        column().simulate(data, initial_temperature=-1.0)


def test_kelvin_forcing_is_converted():
    celsius = column().simulate(forcing(), initial_temperature=-1.0)
    kelvin = column().simulate(forcing(np.linspace(-5, 5, 10) + 273.15, units="K"), initial_temperature=-1.0)
    np.testing.assert_allclose(kelvin["temperature"].values, celsius["temperature"].values, atol=1e-9)


def test_site_dimension_runs_every_site_like_one():
    data = forcing()
    sites = xr.concat([data, data + 2.0], dim="site").assign_coords(site=["a", "b"])
    both = column().simulate(sites, initial_temperature=-1.0)
    second = column().simulate(data + 2.0, initial_temperature=-1.0)
    assert both["temperature"].dims == ("site", "time", "depth")
    np.testing.assert_allclose(both["temperature"].sel(site="b").values, second["temperature"].values, atol=1e-12)
