"""Satellite-LST boundary: gap filling, the learnable offset, the observation operator."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import cryograd as cg
from tests._experiments import load_experiment

P = cg.physics
DAY = 86400.0


def cloudy(n, cloud_fraction, seed):
    """A clear-sky mask with clouds in spells (two-state Markov chain), True = clear."""
    rng = np.random.default_rng(seed)
    stay = 0.8
    clear = np.empty(n, dtype=bool)
    clear[0] = True
    p_clear_to_cloud = cloud_fraction * (1 - stay) / max(1 - cloud_fraction, 1e-9)
    for i in range(1, n):
        if clear[i - 1]:
            clear[i] = rng.uniform() >= min(p_clear_to_cloud, 1.0)
        else:
            clear[i] = rng.uniform() >= stay
    return clear


def observations(truth, diurnal, cloud_fraction, seed, noise=0.0, start="2008-07-01"):
    rng = np.random.default_rng(seed + 100)
    n = truth.size
    day = np.where(cloudy(n, cloud_fraction, seed), truth + diurnal + rng.normal(0, noise, n), np.nan)
    night = np.where(cloudy(n, cloud_fraction, seed + 1), truth - diurnal + rng.normal(0, noise, n), np.nan)
    time = xr.date_range(start, periods=n, freq="D")
    return xr.Dataset(
        {
            "land_surface_temperature_day": ("time", day + 273.15, {"units": "K"}),
            "land_surface_temperature_night": ("time", night + 273.15, {"units": "K"}),
        },
        coords={"time": time},
    )


def test_harmonic_climatology_and_diurnal_range_are_recovered_exactly_without_weather():
    time = xr.date_range("2010-01-01", periods=3 * 365, freq="D")
    phase = 2 * np.pi * np.arange(time.size) / 365.25  # days since 1 January of the first year
    truth = -5.0 - 14.0 * np.cos(phase) + 3.0 * np.sin(phase) + 1.5 * np.cos(2 * phase) - 0.7 * np.sin(2 * phase)
    obs = observations(truth, diurnal=4.0, cloud_fraction=0.6, seed=0, start="2010-01-01")
    filled = P.gap_fill_lst(obs)
    assert float(filled.observed.mean()) < 0.7  # plenty of gaps
    np.testing.assert_allclose(filled.land_surface_temperature.values, truth, atol=1e-9)
    np.testing.assert_allclose(filled.attrs["diurnal_half_range"], 4.0, atol=1e-9)
    np.testing.assert_allclose(filled.land_surface_temperature_anomaly.values, 0.0, atol=1e-9)


def test_anomaly_is_interpolated_linearly_and_relaxes_in_long_gaps():
    days = np.arange(60, dtype=float)
    values = np.full(60, np.nan)
    values[[10, 20, 59]] = [2.0, 4.0, 0.0]  # on a zero climatology (one harmonic fits 0 exactly)
    out = P.fill_lst_gaps(days, values, np.full(60, np.nan), n_harmonics=0, decay_days=5.0)
    climatology = float(out["climatology"][0])
    anomaly = np.asarray(out["anomaly"])
    assert np.allclose(out["climatology"], climatology)
    a10, a20 = 2.0 - climatology, 4.0 - climatology
    # Day 15: halfway between days 10 and 20, 5 days from each: linear value x exp(-1).
    np.testing.assert_allclose(anomaly[15], 0.5 * (a10 + a20) * np.exp(-1.0), rtol=1e-12)
    np.testing.assert_allclose(anomaly[12], (a10 + 0.2 * (a20 - a10)) * np.exp(-2 / 5), rtol=1e-12)
    np.testing.assert_allclose(anomaly[0], a10 * np.exp(-10 / 5), rtol=1e-12)  # before the first: held, relaxed
    np.testing.assert_allclose(anomaly[[10, 20]], [a10, a20], rtol=1e-12)


def test_gap_filled_lst_drives_the_gipl_column_nearly_as_well_as_the_measured_surface():
    """Twin on real ground temperature: the GIPL station's measured 0 m temperature is the
    truth; clear-sky "LST" is sampled from it with 4 K diurnal offsets, 1.5 K noise and 60 %
    clouds in spells. The gap-filled series must be close to the truth and drive the
    column almost as well as the measured surface itself."""
    site = load_experiment("gipl_station")
    station = cg.data.open_gipl_station(site.DEFAULT, start=site.START)
    truth = station.ground_temperature.sel(depth=0.0).values
    obs = observations(truth, diurnal=4.0, cloud_fraction=0.6, seed=7, noise=1.5)
    filled = P.gap_fill_lst(obs)
    error = filled.land_surface_temperature.values - truth
    climatology_error = filled.land_surface_temperature_climatology.values - truth
    gaps = ~filled.observed.values
    rmse = float(np.sqrt(np.mean(error**2)))
    clear_rmse, gap_rmse = (float(np.sqrt(np.mean(error[m] ** 2))) for m in (~gaps, gaps))
    climatology_rmse = float(np.sqrt(np.mean(climatology_error**2)))
    print(
        f"gap fill vs measured 0 m: RMSE {rmse:.2f} K (clear days {clear_rmse:.2f}, gap days {gap_rmse:.2f}), "
        f"climatology alone {climatology_rmse:.2f}"
    )
    assert gaps.mean() > 0.3
    assert rmse < 2.5
    assert np.sqrt(np.mean(error[gaps] ** 2)) < 0.8 * np.sqrt(np.mean(climatology_error[gaps] ** 2))
    assert abs(filled.attrs["diurnal_half_range"] - 4.0) < 0.2

    column = site.column(station, P.Prescribed())
    initial = site.initial_profile(station)
    depths = [0.44, 1.15]

    def mae(surface, forcing):
        changed = eqx.tree_at(lambda c: c.surface, column, surface)
        out = changed.simulate(forcing, initial_temperature=initial, below="hold")
        modelled = out.temperature.interp(depth=depths)
        return np.abs(modelled - station.ground_temperature.sel(depth=depths)).mean("time").values

    measured_surface = xr.Dataset({"surface_temperature": ("time", truth)}, coords={"time": station.time})
    reference = mae(P.Prescribed(), measured_surface)
    from_lst = mae(P.SatelliteLST(), filled[["land_surface_temperature"]])
    print(f"MAE at {depths} m: measured surface {np.round(reference, 3)}, gap-filled LST {np.round(from_lst, 3)}")
    assert np.all(from_lst < reference + 0.3)


def test_offsets_shift_the_surface_and_observe_inverts_them():
    col = P.PermafrostColumn(
        P.Grid.geometric(depth=10.0, n=30, dz_top=0.02),
        [P.SoilLayer.from_composition(top=0.0, porosity=0.4)],
        surface=P.SatelliteLST(offset=1.5, snow_offset=2.0, snow_cover=True),
    )
    days = np.arange(200)
    lst = jnp.asarray(-10.0 * np.cos(2 * np.pi * days / 365))
    cover = jnp.asarray((np.cos(2 * np.pi * days / 365) > 0.3).astype(float))
    initial = jnp.full(30, -2.0)
    out = col.run({"land_surface_temperature": lst, "snow_cover": cover}, initial, DAY)
    prescribed = eqx.tree_at(lambda c: c.surface, col, P.Prescribed())
    expected = prescribed.run({"surface_temperature": lst + 1.5 + 2.0 * cover}, initial, DAY)
    np.testing.assert_allclose(np.asarray(out["temperature"]), np.asarray(expected["temperature"]), atol=1e-12)
    np.testing.assert_allclose(np.asarray(col.surface.observe(lst + 1.5 + 2.0 * cover, cover)), np.asarray(lst))


def test_lst_offset_is_recovered_by_gauss_newton_through_the_column():
    """Synthetic truth with offset 2.5 K: ground temperatures at 0.1-1 m from a column
    forced by LST + 2.5; starting from 0, five Gauss-Newton steps with the forward-mode
    derivative through the implicit solver recover the offset (the error falls about
    quadratically: 0.67, 0.11, 6e-3, 2e-5 K after the first four with bdf2+predicted)."""
    col = P.PermafrostColumn(
        P.Grid.geometric(depth=10.0, n=30, dz_top=0.02),
        [P.SoilLayer.from_composition(top=0.0, porosity=0.4)],
        freeze_curve=P.DallAmico(alpha=3.0, n=1.6),
        surface=P.SatelliteLST(offset=2.5),
    )
    days = np.arange(365)
    lst = jnp.asarray(-6.0 - 14.0 * np.cos(2 * np.pi * (days - 15) / 365))
    initial = jnp.full(30, -3.0)
    cells = jnp.array([4, 10, 16])

    @eqx.filter_jit
    def ground(offset):
        column = eqx.tree_at(lambda c: c.surface.offset, col, offset)
        out = column.run({"land_surface_temperature": lst}, initial, DAY, adjoint=diffrax.ForwardMode())
        return out["temperature"][:, cells].ravel()

    measured = ground(jnp.asarray(2.5))
    offset = jnp.asarray(0.0)
    iterates = []
    for _ in range(5):
        value, slope = jax.jvp(ground, (offset,), (jnp.ones(()),))
        offset = offset - jnp.dot(slope, value - measured) / jnp.dot(slope, slope)
        iterates.append(float(offset))
    print(f"Gauss-Newton iterates of the offset: {np.round(iterates, 7)} K (truth 2.5)")
    assert abs(float(offset) - 2.5) < 1e-8


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda ds: ds.drop_vars(["land_surface_temperature_day", "land_surface_temperature_night"]), "need"),
        (lambda ds: ds.isel(time=slice(0, None, 2)), "consecutive days"),
        (lambda ds: ds.where(ds.time < ds.time[20]), "clear-sky values on"),
        (
            lambda ds: ds.assign(land_surface_temperature_day=ds.land_surface_temperature_day.assign_attrs(units="F")),
            "units",
        ),
    ],
)
def test_gap_fill_refuses_bad_observations(change, match):
    truth = -5.0 - 10.0 * np.cos(2 * np.pi * np.arange(400) / 365)
    obs = observations(truth, diurnal=3.0, cloud_fraction=0.5, seed=2)
    with pytest.raises(ValueError, match=match):
        P.gap_fill_lst(change(obs))
