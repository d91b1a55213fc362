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
        (lambda: P.Grid([0.0, 0.1, 0.1, 0.3]), "edges"),
        (lambda: P.Grid([0.0, 0.2, 0.1]), "edges"),
        (lambda: P.Grid.uniform(depth=1.0, dz=0.3), "dz"),
        (lambda: P.Grid.geometric(depth=1.0, n=100, dz_top=0.1), "dz_top"),
        (lambda: P.SoilLayer(0.0, 0.3, k_thawed=-1.0, k_frozen=2.0, c_thawed=2e6, c_frozen=2e6), "k_thawed"),
        (lambda: P.SoilLayer(0.0, 0.3, k_thawed=1.0, k_frozen=2.0, c_thawed=0.0, c_frozen=2e6), "c_thawed"),
        (lambda: P.SoilLayer(0.0, 0.5, 1.0, 2.0, 2e6, 2e6, porosity=0.4), "water_content"),
        (lambda: P.SoilLayer.from_composition(0.0, porosity=0.4, saturation=1.2), "saturation"),
        (lambda: P.PowerLaw(a=0.1, b=0.5), "b"),
        (lambda: P.PiecewiseLinear(t_end=0.5), "t_end"),
        (lambda: P.DallAmico(alpha=1.0, n=0.9), "n"),
        (lambda: column(layers=[P.SoilLayer.from_composition(0.5, 0.4)]), "layers"),
        (
            lambda: column(layers=[P.SoilLayer.from_composition(0.0, 0.4), P.SoilLayer.from_composition(3.0, 0.4)]),
            "layers",
        ),
        (
            lambda: column(
                layers=[
                    P.SoilLayer.from_composition(0.0, 0.4),
                    P.SoilLayer.from_composition(1.0, 0.3),
                    P.SoilLayer.from_composition(0.5, 0.3),
                ]
            ),
            "sorted",
        ),
    ],
)
def test_construction_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (forcing().drop_vars("time"), "time"),
        (forcing(time=pd.DatetimeIndex(["2000-01-02", "2000-01-01", "2000-01-03"])), "sorted"),
        (forcing(time=pd.DatetimeIndex(["2000-01-01", "2000-01-01", "2000-01-02"])), "duplicated"),
        (forcing(values=np.r_[np.zeros(4), np.nan, np.zeros(5)]), "NaN"),
        (forcing().rename(surface_temperature="air_temperature"), "surface_temperature"),
        (forcing(values=np.full(10, 265.0), units=None), "kelvin"),
        (forcing(units="degF"), "units"),
        (forcing(time=pd.date_range("2000-01-01", periods=10, freq="2D")), "dt"),
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
