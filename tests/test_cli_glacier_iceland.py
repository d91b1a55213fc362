"""`cryograd run experiments/glacier_iceland_grace.toml`: all 567 glaciers of Iceland (RGI 6
hypsometry, two IMO stations) fitted to GlaMBIE's GRACE series with an estimated model error,
validated on held-out GRACE years, the independent DEM + glaciological series and Hugonnet
et al. (2021). The outputs are a contract (issue 26): names, dimensions and units. The NUTS
check is left out here (about 60 s); the docs report it from the full run."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg
from cryograd._run import config as run_config, glacier_region
from cryograd.cli import main
from tests._experiments import assert_cf_units

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "glacier_iceland_grace.toml"


@pytest.fixture(scope="module")
def iceland(tmp_path_factory):
    out = tmp_path_factory.mktemp("iceland") / "run"
    no_sampler = ["--set", 'uncertainty.sampler="none"']  # the NUTS check takes ~60 s; the docs report it
    assert main(["run", str(EXPERIMENT), "--out", str(out), "--no-progress", *no_sampler]) == 0
    return out, json.loads((out / "summary.json").read_text()), xr.load_dataset(out / "result.nc")


def test_outputs_follow_the_contract(iceland):
    out, summary, result = iceland
    assert result.mass_balance.dims == ("year", "glacier", "band")
    assert result.specific_mass_balance.dims == ("year", "glacier")
    assert result.elevation.dims == ("glacier", "band") and result.elevation.attrs["units"] == "m"
    assert result.mass_balance.attrs["units"] == "kg m-2" and result.specific_mass_balance.attrs["units"] == "kg m-2"
    assert result.regional_mass_change.dims == ("year",) and result.regional_mass_change.attrs["units"] == "Gt"
    assert result.sizes["glacier"] == 567 and result.glacier.dtype.kind == "U"
    assert "RGI60-06.00560" not in result.glacier.values  # the one glacier without a hypsometry
    assert result.glacier.values[0].startswith("RGI60-06.")
    # hydrological years labelled by their end: Hugonnet 2000-2009 needs model years from 2000
    np.testing.assert_array_equal(result.year.values, np.arange(2000, 2020))
    assert np.all(result.regional_mass_change_p05 <= result.regional_mass_change)
    assert np.all(result.regional_mass_change <= result.regional_mass_change_p95)
    assert_cf_units(result)
    for part in ("calibration", "validation"):
        for series in ("grace", "demdiff_glaciological"):
            assert {"rmse", "bias", "r", "n"} <= set(summary["metrics"][part][series])
            assert summary["metrics"][part][series]["units"] == "Gt"
    for figure in ("regional_mass_change", "glacier_map", "balance_by_elevation", "convergence", "posterior"):
        assert (out / f"{figure}.png").stat().st_size > 10_000, figure
    assert summary["wall_time_s"] < 300  # the limit is 5 minutes on the 2-core machine


def test_balances_add_up_over_bands_and_glaciers(iceland):
    _, _, result = iceland
    # specific balance = band balances weighted by band area (NaN bands have no ice)
    weighted = (result.mass_balance.fillna(0.0) * result.band_area).sum("band") / result.area
    np.testing.assert_allclose(weighted, result.specific_mass_balance, rtol=1e-10, atol=1e-8)
    # regional change [Gt] = sum over glaciers of area x specific balance
    total = (result.specific_mass_balance * result.area).sum("glacier") / 1e12
    np.testing.assert_allclose(total, result.regional_mass_change, rtol=1e-10)
    # the band areas are the RGI table's: 11,059.6 km2 without the left-out glacier
    assert float(result.area.sum()) / 1e6 == pytest.approx(11059.7 - 0.126, abs=0.05)


def test_observed_series_are_glambie_s_own_numbers(iceland):
    _, _, result = iceland
    table = pd.read_csv(cg.data.sample_path("iceland_glambie"))  # read as plain CSV
    end_year = np.floor(table.end_dates).astype(int)  # hydrological year 2002.75-2003.75 ends in 2003
    for year in (2003, 2010, 2015):
        row = table[end_year == year].iloc[0]
        assert float(result.observed_grace.sel(year=year)) == row.gravimetry_gt
        assert float(result.observed_grace_uncertainty.sel(year=year)) == row.gravimetry_gt_errors
        assert float(result.observed_demdiff_glaciological.sel(year=year)) == row.demdiff_and_glaciological_gt
    # the GRACE/GRACE-FO gap years carry no variability of their own: not compared
    assert np.isnan(result.observed_grace.sel(year=[2017, 2018])).all()


def test_fit_beats_the_start_values_on_held_out_years(iceland):
    _, summary, _ = iceland
    metrics, start = summary["metrics"], summary["metrics"]["start"]
    assert metrics["validation"]["grace"]["n"] == 5  # 2013-2016 and 2019
    assert metrics["validation"]["demdiff_glaciological"]["n"] == 7
    for part in ("calibration", "validation"):
        for series in ("grace", "demdiff_glaciological"):
            assert metrics[part][series]["rmse"] < start[part][series]["rmse"], (part, series)
    # Hugonnet et al. (2021), 2000-2009: the fit within 2 sigma, the start values far off
    fitted, first = summary["regional_rates"]["fitted"], summary["regional_rates"]["start"]
    decade = "2000-01-01_2010-01-01"
    assert abs(fitted[decade]["modelled"] - fitted[decade]["observed"]) < 2 * fitted[decade]["uncertainty"]
    assert abs(first[decade]["modelled"] - first[decade]["observed"]) > 5 * first[decade]["uncertainty"]
    assert fitted[decade]["p05"] < fitted[decade]["observed"] < fitted[decade]["p95"]
    compared = summary["compared_fit"]
    assert compared["fitted_to"] == "demdiff_glaciological" and compared["converged"]


def test_model_error_meets_the_degrees_of_freedom(iceland):
    """The estimated model error s makes the first fit's chi-square equal its n - p; checked
    from the fitted run's residuals, which moved little when the errors were widened."""
    _, summary, result = iceland
    error = summary["model_error"]
    assert error["dof"] == error["n"] - 3 and error["chi_square_without"] > 10 * error["dof"]
    years = (result.year >= 2003) & (result.year <= 2012) & np.isfinite(result.observed_grace)
    residual = (result.regional_mass_change - result.observed_grace)[years].values
    sigma2 = result.observed_grace_uncertainty[years].values ** 2 + error["value"] ** 2
    assert np.sum(residual**2 / sigma2) == pytest.approx(error["dof"], rel=0.25)
    # the posterior carries it: parameter stds of the order of the priors', not GlaMBIE-error tiny,
    # and the 90 % predictive ranges hold most held-out years (the docs compare a run without it)
    assert summary["parameters"]["melt_factor"]["std"] > 0.3
    for series in ("grace", "demdiff_glaciological"):
        assert summary["metrics"]["validation"][series]["coverage_90"] >= 0.7


def test_station_climate_and_its_choices_are_recorded(iceland):
    _, summary, result = iceland
    notes = " ".join(summary["notes"])
    assert "Grímsstaðir" in notes and "nearest" in notes and "1981-2010" in notes
    assert "RGI60-06.00560" in notes  # the glacier left out, named
    assert set(np.unique(result.grid_height.values)) == {384.0, 23.0}  # each glacier: its nearest station


def _config(**changes):
    config = run_config.load(EXPERIMENT)
    for key, value in changes.items():
        run_config.set_key(config, key, value)
    return config


def test_bad_configs_are_refused_before_running():
    problems = "\n".join(glacier_region.validate(_config(**{"data.dem": "sample:oetztal_dem"})))
    assert "either dem" in problems
    problems = "\n".join(glacier_region.validate(_config(**{"validation.compare_fit_to": "altimetry"})))
    assert "validation.compare_fit_to" in problems and "demdiff_glaciological" in problems
    config = _config()
    config["data"]["stations"].append({"file": "/nowhere/Stod_1_X.txt"})
    problems = "\n".join(glacier_region.validate(config))
    assert "elevation, lat and lon" in problems and "does not exist" in problems
    config = _config()
    del config["data"]["glambie"]
    assert "give data.glambie" in "\n".join(glacier_region.validate(config))


def test_calibration_years_outside_the_series_and_unknown_sources_are_refused():
    config = glacier_region.resolve(_config(**{"calibration.start": 1990, "calibration.end": 1999}))
    with pytest.raises(ValueError, match="no gravimetry period"):
        glacier_region.Region(config)
    config = glacier_region.resolve(_config(**{"observations.grace.source": "grace_jpl"}))
    with pytest.raises(ValueError, match=r"observations\.grace\.source.*sources"):
        glacier_region.Region(config)


def test_a_given_model_error_widens_every_calibration_error():
    config = glacier_region.resolve(_config(**{"observations.grace.model_error": 5.0}))
    region = glacier_region.Region(config)
    plain = region.operators(("grace",))[0]
    region.model_error = 5.0
    widened = region.operators(("grace",))[0]
    np.testing.assert_allclose(np.asarray(widened.sigma) ** 2, np.asarray(plain.sigma) ** 2 + 25.0, rtol=1e-12)
    assert plain.values.size == 10  # 2002/03-2011/12


def test_a_user_station_file_runs_through_the_config(tmp_path):
    """A station file of the user's own (here a copy of a sample) with its position given."""
    path = tmp_path / "Stod_495_copy.txt"
    shutil.copy(cg.data.sample_path("iceland_station_grimsstadir"), path)
    config = _config()
    config["data"]["stations"] = [{"file": str(path), "elevation": 384.0, "lat": 65.642, "lon": -16.128}]
    region = glacier_region.Region(glacier_region.resolve(config))
    assert np.all(region.grid_height == 384.0) and region.n == 567
