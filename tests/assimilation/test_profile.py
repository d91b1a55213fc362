"""The binned elevation-change (dh profile) operator against a DeltaH glacier evolution:
exact values, mass conservation, a one-parameter twin, refusals."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import cryograd as cg

A = cg.assimilation
P = cg.physics
ICE = 900.0  # DeltaH's default ice density [kg m-3]


@pytest.fixture(scope="module")
def hef():
    """Hintereisferner's OGGM flowline under its HISTALP climate, mass-balance years 1991-2002."""
    glacier = cg.data.load_sample("hintereisferner_flowline")
    model = P.DeltaH(P.MonthlyTemperatureIndex(year_start_month=10, melt_factor=6.0, precipitation_factor=2.5))
    climate = cg.data.load_sample("hintereisferner_climate").sel(time=slice("1990-10-01", "2002-09-01"))
    arrays, years = model.mass_balance.climate_arrays(climate)
    return glacier, model, arrays, years


def _profile(glacier, change, bins, sigma):
    """A binned profile dataset in `open_geodetic_mb`'s layout from band changes [m]."""
    elevation, area = np.asarray(glacier.elevation), np.asarray(glacier.area)
    values = []
    for bottom, top in itertools.pairwise(bins):
        inside = (elevation >= bottom) & (elevation < top)
        values.append(np.sum(area[inside] * change[inside]) / np.sum(area[inside]))
    n = len(values)
    return xr.Dataset(
        dict(
            elevation_change=(("period", "bin"), np.array([values])),
            elevation_change_uncertainty=(("period", "bin"), np.full((1, n), sigma)),
        ),
        coords=dict(
            period=["1995-10-01_2002-10-01"], bin=bins[:-1], bin_bottom=("bin", bins[:-1]), bin_top=("bin", bins[1:])
        ),
    )


def test_profile_is_the_binned_thickness_change_and_conserves_mass(hef):
    glacier, model, arrays, years = hef
    out = model.run(glacier, arrays)
    thickness = np.asarray(out["thickness"])
    start, end = 1996, 2002
    first, last = np.flatnonzero(years == start)[0], np.flatnonzero(years == end)[0]
    change = thickness[last] - thickness[first - 1]
    bins = np.arange(2400.0, 3800.0, 100.0)
    profile = _profile(glacier, change, bins, 0.5)
    op = A.elevation_change_profile(profile, glacier, years, start, end)
    predicted = np.asarray(op.predict(out, {}))
    np.testing.assert_allclose(predicted, profile.elevation_change.values[0], rtol=1e-12)
    # the density convention widens each error by 60/850 of the change
    np.testing.assert_allclose(op.sigma, np.hypot(0.5, predicted * 60.0 / 850.0), rtol=1e-12)
    # mass: sum over bins of (bin area x change) x ice density = the mass change of the years
    bin_area = np.array(
        [
            np.sum(np.asarray(glacier.area)[(glacier.elevation >= b) & (glacier.elevation < t)])
            for b, t in itertools.pairwise(bins)
        ]
    )
    mass = np.sum(np.asarray(out["mass_change"])[first : last + 1])
    assert float(np.asarray(out["unmet_loss"]).sum()) == 0.0
    assert np.sum(bin_area * predicted) * ICE == pytest.approx(mass, rel=1e-10)


def test_a_dh_profile_recovers_the_melt_factor(hef):
    glacier, model, arrays, years = hef
    truth = 7.2
    true_model = P.DeltaH(P.MonthlyTemperatureIndex(year_start_month=10, melt_factor=truth, precipitation_factor=2.5))
    thickness = np.asarray(true_model.run(glacier, arrays)["thickness"])
    first, last = np.flatnonzero(years == 1996)[0], np.flatnonzero(years == 2002)[0]
    change = thickness[last] - thickness[first - 1]
    bins = np.arange(2400.0, 3800.0, 100.0)
    rng = np.random.default_rng(3)
    profile = _profile(glacier, change, bins, 1.0)
    profile["elevation_change"] = profile.elevation_change + rng.normal(0.0, 1.0, profile.elevation_change.shape)
    op = A.elevation_change_profile(profile, glacier, years, 1996, 2002)
    problem = A.Problem(
        model,
        lambda m, x: m.run(x["glacier"], x["climate"]),
        [A.Parameter("mass_balance.melt_factor", name="melt_factor", bounds=(1.5, 17.0))],
        [op],
        dict(glacier=glacier, climate=arrays),
    )
    result = A.fit(problem, "levenberg_marquardt", progress=False, max_steps=50)
    posterior = A.laplace(problem, result.u)
    value, std = float(posterior.mean[0]), float(posterior.std[0])
    assert abs(value - truth) <= 2 * std and abs(value - truth) <= 0.05 * truth
    assert std < 0.5


def test_bad_profiles_are_refused(hef):
    glacier, _, _, years = hef
    change = np.zeros(np.shape(glacier.elevation))
    profile = _profile(glacier, change, np.arange(2400.0, 3800.0, 100.0), 0.5)
    with pytest.raises(ValueError, match="the model must start before 1991"):
        A.elevation_change_profile(profile, glacier, years, 1991, 2002)
    with pytest.raises(ValueError, match=r"no glacier band lies in bins \['4000-4100 m'\]"):
        wide = profile.assign_coords(
            bin_bottom=("bin", [*profile.bin_bottom.values[:-1], 4000.0]),
            bin_top=("bin", [*profile.bin_top.values[:-1], 4100.0]),
        )
        A.elevation_change_profile(wide, glacier, years, 1996, 2002)
    with pytest.raises(ValueError, match="period '2000' is not in the profile"):
        A.elevation_change_profile(profile, glacier, years, 1996, 2002, period="2000")
    with pytest.raises(ValueError, match="has no 'elevation_change_uncertainty'"):
        A.elevation_change_profile(profile.drop_vars("elevation_change_uncertainty"), glacier, years, 1996, 2002)
    op = A.elevation_change_profile(profile, glacier, years, 1996, 2002)
    with pytest.raises(ValueError, match="needs a glacier-evolution run"):
        op.predict({"specific_mass_balance": jnp.zeros(years.size)}, {})


def test_the_real_gulkana_profile_reads_into_the_operator():
    """The shipped-format profile (Gulkana, 100 m bins, 2016-06 to 2017-06) on a glacier
    whose bands span it: one value per bin, errors widened by the density term."""
    from pathlib import Path

    profile = cg.data.open_geodetic_mb(
        Path(__file__).parents[1] / "data" / "files" / "gulkana_dh_profile" / "01.00570_elev_change_1d.csv"
    )
    elevation = np.arange(1325.0, 2300.0, 50.0)
    glacier = P.Hypsometry(elevation=elevation, area=np.full(elevation.size, 1e5))
    op = A.elevation_change_profile(profile, glacier, np.arange(2014, 2018), 2016, 2016)
    observed = profile.elevation_change.values[0]
    assert op.values.size == 10 and op.rows == (1, 2)
    np.testing.assert_allclose(op.values, observed)
    np.testing.assert_allclose(
        op.sigma, np.hypot(profile.elevation_change_uncertainty.values[0], observed * 60 / 850), rtol=1e-12
    )
