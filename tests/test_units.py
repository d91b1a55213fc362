"""Units at the edges (issue 27): the same physical inputs in other units give the same
answer through `simulate` (glacier and soil column) and the climate reader; a unit of the
wrong dimension, or a missing one where the value is ambiguous, is refused with the
variable and its units named. Expected values come from the reference units, not from
the conversion code."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg
from cryograd import _units
from tests._experiments import EXPERIMENTS

P = cg.physics
GLACIER = P.Hypsometry(elevation=[3400.0, 3100.0, 2800.0], area=[2e6, 3e6, 1e6])
TIME = pd.date_range("2000-01-01", periods=24, freq="MS")
DAYS = np.asarray(TIME.days_in_month, dtype=float)
RNG = np.random.default_rng(0)
CELSIUS = -4.0 - 8.0 * np.cos(2 * np.pi * (np.arange(24) - 0.5) / 12) + RNG.normal(0, 1, 24)
KG_M2 = RNG.uniform(20.0, 200.0, 24)  # precipitation per month [kg m-2]


def climate(temperature=CELSIUS, t_units="degC", precipitation=KG_M2, p_units="kg m-2"):
    t_attrs = {} if t_units is None else {"units": t_units}
    p_attrs = {} if p_units is None else {"units": p_units}
    return xr.Dataset(
        {"temperature": ("time", temperature, t_attrs), "precipitation": ("time", precipitation, p_attrs)},
        coords={"time": TIME},
        attrs={"reference_elevation": 3000.0},
    )


def balance(ds):
    return P.MonthlyTemperatureIndex(melt_factor=6.0).simulate(GLACIER, ds).specific_mass_balance.values


@pytest.mark.parametrize(
    ("values", "units"),
    [
        (KG_M2, "kg m-2"),
        (KG_M2, "mm"),
        (KG_M2 / 1000.0, "m"),  # a depth of water per month: read as kg m-2 until December 2026
        (KG_M2 / 10.0, "cm"),
        (KG_M2 / DAYS / 1000.0, "m day-1"),  # ERA5's monthly means, labelled with their rate
        (KG_M2 / DAYS, "mm day-1"),
        (KG_M2 / (DAYS * 86400.0), "kg m-2 s-1"),
        (KG_M2, "kg m-2 month-1"),
        (KG_M2 / 1000.0, "m month-1"),
    ],
)
def test_precipitation_in_any_unit_gives_the_same_glacier_balance(values, units):
    expected = balance(climate())
    np.testing.assert_allclose(balance(climate(precipitation=values, p_units=units)), expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("values", "units"),
    [(CELSIUS, "degC"), (CELSIUS + 273.15, "K"), (CELSIUS * 9 / 5 + 32, "degF"), (CELSIUS, "degrees_C")],
)
def test_temperature_in_any_unit_gives_the_same_glacier_balance(values, units):
    np.testing.assert_allclose(balance(climate(temperature=values, t_units=units)), balance(climate()), rtol=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(p_units="degC"), r"climate variable 'precipitation': units 'degC' are not an amount of water"),
        (dict(p_units=None), r"climate variable 'precipitation': no 'units' attribute"),
        (dict(p_units="kg m-2 K-1"), r"climate variable 'precipitation': units 'kg m-2 K-1' are not"),
        (dict(t_units="m"), r"climate variable 'temperature': units 'm' are not a temperature"),
        (dict(t_units="blorps"), r"climate variable 'temperature': units 'blorps' are not a unit this reader knows"),
    ],
)
def test_wrong_or_missing_climate_units_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        balance(climate(**change))


DAY_TIME = pd.date_range("2001-01-01", periods=60, freq="D")
AIR = -10.0 + 8.0 * np.sin(np.arange(60) / 9.0)
DEPTH_M = np.clip(0.3 + 0.2 * np.sin(np.arange(60) / 7.0), 0.0, None)


def column(surface):
    grid = P.Grid.geometric(depth=10.0, n=20, dz_top=0.05)
    return P.PermafrostColumn(grid=grid, layers=[P.SoilLayer.from_composition(0.0, 0.4)], surface=surface)


def snow_run(air=AIR, air_units="degC", depth=DEPTH_M, depth_units="m"):
    forcing = xr.Dataset(
        {
            "air_temperature": ("time", air, {"units": air_units}),
            "snow_depth": ("time", depth, {"units": depth_units}),
        },
        coords={"time": DAY_TIME},
    )
    return column(P.Snow(density=250.0, n_cells=2)).simulate(forcing, -3.0).temperature.values


@pytest.mark.parametrize(
    ("air", "air_units", "depth", "depth_units"),
    [
        (AIR + 273.15, "K", DEPTH_M, "m"),
        (AIR * 9 / 5 + 32, "degF", DEPTH_M, "m"),
        (AIR, "degC", DEPTH_M * 100.0, "cm"),
        (AIR, "degC", DEPTH_M * 1000.0, "mm"),
    ],
)
def test_column_forcing_in_other_units_gives_the_same_temperatures(air, air_units, depth, depth_units):
    np.testing.assert_allclose(snow_run(air, air_units, depth, depth_units), snow_run(), rtol=0, atol=1e-9)


def swe_run(values, units):
    forcing = xr.Dataset(
        {
            "air_temperature": ("time", AIR, {"units": "degC"}),
            "snow_water_equivalent": ("time", values, {"units": units}),
        },
        coords={"time": DAY_TIME},
    )
    return column(P.Snow(density=250.0, driver="swe", n_cells=2)).simulate(forcing, -3.0).temperature.values


def test_snow_water_equivalent_in_m_mm_and_kg_m2():
    swe = DEPTH_M * 0.25  # [m of water]
    reference = swe_run(swe, "m")
    np.testing.assert_allclose(swe_run(swe * 1000.0, "mm"), reference, rtol=0, atol=1e-9)
    np.testing.assert_allclose(swe_run(swe * 1000.0, "kg m-2"), reference, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match=r"'snow_water_equivalent': units 'mm day-1' are not a depth of water"):
        swe_run(swe, "mm day-1")


@pytest.mark.parametrize(
    ("name", "message"),
    [("snow_depth", "come in m, cm or mm alike"), ("snow_water_equivalent", "differ by 1000")],
)
def test_snow_amounts_without_units_are_refused(name, message):
    """30 cm of snow written as 30 would be 30 m: without units the value cannot tell."""
    forcing = xr.Dataset(
        {"air_temperature": ("time", AIR, {"units": "degC"}), name: ("time", DEPTH_M * 100.0)},
        coords={"time": DAY_TIME},
    )
    driver = "swe" if name == "snow_water_equivalent" else "depth"
    with pytest.raises(ValueError, match=rf"forcing variable '{name}' has no 'units' attribute; .*{message}"):
        column(P.Snow(density=250.0, driver=driver, n_cells=2)).simulate(forcing, -3.0)


def test_heat_flux_in_w_m2_and_mw_m2():
    def run(values, units):
        forcing = xr.Dataset({"surface_heat_flux": ("time", values, {"units": units})}, coords={"time": DAY_TIME})
        return column(P.PrescribedFlux()).simulate(forcing, -3.0).temperature.values

    flux = 30.0 * np.sin(np.arange(60) / 9.0)  # [W m-2]
    np.testing.assert_allclose(run(flux * 1000.0, "mW m-2"), run(flux, "W m-2"), rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match=r"'surface_heat_flux': units 'W m-1' cannot be converted to W m-2"):
        run(flux, "W m-1")


def test_conversions_against_hand_values():
    assert _units.to_celsius([32.0, 212.0], "degF", "t") == pytest.approx([0.0, 100.0], abs=1e-12)
    assert _units.to_celsius([0.0], "K", "t")[0] == -273.15
    assert _units.to_water_amount([2.5], "mm day-1", "p", 31 * 86400.0)[0] == pytest.approx(77.5, rel=1e-14)
    assert _units.to_water_amount([1e-5], "kg m-2 s-1", "p", 3600.0)[0] == pytest.approx(0.036, rel=1e-14)
    assert _units.convert([45.0], "cm", "m", "d")[0] == pytest.approx(0.45, rel=1e-15)


# --- configs: a [parameters.NAME] table in other units ---------------------------------------


@pytest.mark.parametrize(
    ("name", "spec", "expected"),
    [  # expected (init, bounds, prior) in the model's units, by hand
        (
            "lapse_rate",
            dict(init=-6.5, bounds=[-10.0, -3.0], units="K km-1", prior=dict(type="normal", mean=-6.0, std=1.0)),
            (-0.0065, (-0.010, -0.003), dict(mean=-0.006, std=0.001)),
        ),
        ("melt_threshold", dict(init=272.15, bounds=[268.15, 275.15], units="K"), (-1.0, (-5.0, 2.0), None)),
        ("melt_threshold", dict(init=32.0, units="degF"), (0.0, None, None)),
        (  # a temperature difference: 1.8 degF is 1 K (not 256 K)
            "temperature_bias",
            dict(init=1.8, bounds=[-9.0, 9.0], units="degF", prior=dict(type="normal", mean=0.0, std=1.8)),
            (1.0, (-5.0, 5.0), dict(mean=0.0, std=1.0)),
        ),
        ("temperature_bias", dict(init=0.5, units="degC"), (0.5, None, None)),
        (
            "melt_factor",
            dict(init=0.25, bounds=[0.05, 0.75], units="kg m-2 h-1 K-1"),
            (6.0, (1.2, 18.0), None),
        ),
        (
            "precipitation_factor",
            dict(init=250.0, units="percent", prior=dict(type="lognormal", median=250.0, sigma=0.5)),
            (2.5, None, dict(median=2.5, sigma=0.5)),
        ),
        (
            "k",
            dict(path="layers.1.k_thawed", init=812.0, bounds=[50.0, 3000.0], units="mW m-1 K-1"),
            (0.812, (0.05, 3.0), None),
        ),
        (
            "w",
            dict(path="layers.0.water_content", init=40.0, bounds=[5.0, 90.0], units="percent"),
            (0.4, (0.05, 0.9), None),
        ),
        ("c", dict(path="layers.2.c_frozen", init=1.9, units="MJ m-3 K-1"), (1.9e6, None, None)),
        ("g", dict(path="geothermal_flux", init=60.0, units="mW m-2"), (0.06, None, None)),
    ],
)
def test_config_parameters_in_other_units_are_converted(name, spec, expected):
    from cryograd._run.config import MODEL_UNITS, parameter

    init, bounds, prior = expected
    p = parameter(name, spec)
    assert p.units == MODEL_UNITS[spec.get("path", name).split(".")[-1]]
    assert p.init == pytest.approx(init, rel=1e-12, abs=1e-12)
    if bounds is not None:
        assert p.bounds == pytest.approx(bounds, rel=1e-12, abs=1e-12)
    for key, value in (prior or {}).items():
        assert getattr(p.prior, key) == pytest.approx(value, rel=1e-12, abs=1e-12)


def test_a_twin_truth_is_converted_with_its_table():
    from cryograd._run.config import in_model_units

    spec = dict(truth=dict(mean=0.25, std=0.02), bounds=[0.05, 0.75], units="kg m-2 h-1 K-1")
    converted = in_model_units("melt_factor", spec)
    assert converted["truth"]["mean"] == pytest.approx(6.0, rel=1e-12)
    assert converted["truth"]["std"] == pytest.approx(0.48, rel=1e-12)
    assert in_model_units("temperature_bias", dict(truth=-0.9, units="degF"))["truth"] == pytest.approx(-0.5, rel=1e-12)


def test_config_parameters_in_the_model_units_are_unchanged():
    from cryograd._run.config import parameter

    p = parameter("k", dict(path="layers.1.k_thawed", init=0.812, bounds=[0.05, 3.0], units="W m-1 K-1"))
    assert (p.init, p.bounds, p.units) == (0.812, (0.05, 3.0), "W m-1 K-1")
    p = parameter("lst_offset", dict(path="", init=0.3, units="K"))  # an operator's own: a label only
    assert (p.init, p.units) == (0.3, "K")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            'parameters.melt_factor.units="K"',
            "parameters.melt_factor: units 'K' cannot be converted to kg m-2 day-1 K-1",
        ),
        ('parameters.temperature_bias.units="kelvins per fortnight"', "parameters.temperature_bias: units "),
    ],
)
def test_config_parameters_in_a_wrong_unit_are_refused(tmp_path, capsys, override, message):
    from cryograd.cli import main

    config = EXPERIMENTS / "glacier_hintereisferner.toml"
    assert main(["run", str(config), "--out", str(tmp_path / "never"), "--set", override]) == 2
    assert message in capsys.readouterr().err


def test_a_glacier_config_in_other_units_fits_the_same_parameters():
    """The Hintereisferner experiment with its bias prior in degF and melt factor in
    kg m-2 h-1 K-1 builds the same parameters as the shipped config."""
    from cryograd._run import config as C
    from cryograd._run.glacier import GlacierExperiment

    path = EXPERIMENTS / "glacier_hintereisferner.toml"
    shipped = GlacierExperiment(C.load(path)).parameters
    converted = GlacierExperiment(
        C.load(
            path,
            [
                'parameters.melt_factor.units="kg m-2 h-1 K-1"',
                f"parameters.melt_factor.init={6.595 / 24}",
                f"parameters.melt_factor.bounds=[{1.5 / 24}, {17.0 / 24}]",
                'parameters.temperature_bias.units="degF"',
                "parameters.temperature_bias.prior.std=1.8",
            ],
        )
    ).parameters
    for a, b in zip(shipped, converted, strict=True):
        assert a.name == b.name and a.units == b.units
        assert a.init == pytest.approx(b.init, rel=1e-12)
        assert a.bounds == pytest.approx(b.bounds, rel=1e-12) if a.bounds else b.bounds is None
        assert repr(a.prior) == repr(b.prior) or a.prior.std == pytest.approx(b.prior.std, rel=1e-12)


def test_era5_bare_metres_are_per_day_on_monthly_means_and_per_hour_hourly():
    jan_feb = np.array([31.0, 29.0]) * 86400.0  # 2024: a leap February
    days = np.array([31.0, 29.0])
    assert _units.era5_precipitation([0.002, 0.001], "m", "tp", jan_feb, days) == pytest.approx([62.0, 29.0], rel=1e-14)
    assert _units.era5_precipitation([0.0005], "metre", "tp", [3600.0], [31.0]) == pytest.approx([0.5], rel=1e-14)
    assert _units.era5_precipitation([2.0], "mm", "tp", [3600.0], [31.0]) is None  # a depth per step, not ERA5's
    assert _units.era5_precipitation([2.0], "kg m-2", "tp", [3600.0], [31.0]) is None
    with pytest.raises(ValueError, match=r"tp in m \(ERA5's convention\) on a time step that is neither monthly"):
        _units.era5_precipitation([0.002], "m", "tp", [86400.0], [31.0])
