"""`cryograd run` on the 20 Oetztal glaciers (experiments/glacier_oetztal.toml): real DEM,
outlines and HISTALP, fitted to Hugonnet's region-11 rate and Hintereisferner's WGMS series,
validated on WGMS years never fitted. The NUTS check is left out here (about 25 s); the docs
report it from the full run."""

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr

import cryograd as cg
from cryograd._run import glacier_region
from cryograd.cli import main
from tests._experiments import assert_cf_units

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "glacier_oetztal.toml"
NO_SAMPLER = ["--set", 'uncertainty.sampler="none"', "--no-progress"]


@pytest.fixture(scope="module")
def oetztal(tmp_path_factory):
    out = tmp_path_factory.mktemp("oetztal") / "run"
    assert main(["run", str(EXPERIMENT), "--out", str(out), *NO_SAMPLER]) == 0
    return out, json.loads((out / "summary.json").read_text()), xr.load_dataset(out / "result.nc")


def test_oetztal_fit_predicts_held_out_years_and_the_regional_rate(oetztal):
    out, summary, result = oetztal
    assert set(summary["parameters"]) == {"melt_factor", "precipitation_factor", "temperature_bias"}
    assert all(0 < p["std"] < 1.0 for p in summary["parameters"].values())
    metrics, start = summary["metrics"], summary["metrics"]["start"]
    # Hintereisferner 1953-1980, never fitted: better than the start (OGGM-like) values and than
    # OGGM's own r of 0.68 (the baseline, 1953-2002)
    held_out = metrics["validation"]["wgms_annual"]
    assert held_out["n"] == 28
    assert held_out["rmse"] < start["validation"]["wgms_annual"]["rmse"] and held_out["r"] > 0.68
    assert metrics["calibration"]["wgms_annual"]["rmse"] < 0.5 * start["calibration"]["wgms_annual"]["rmse"]
    # the regional rate predicted by a fit to the WGMS series alone agrees with Hugonnet's
    check = summary["regional_check"]
    assert abs(check["difference_in_sigma"]) < 2.0
    assert check["observed_regional_rate"]["value"] == pytest.approx(-833.56)  # mm w.e. read as kg m-2
    # two paths to the regional value agree: the operator on the calibration run, and the
    # area-weighted mean of the glacier rates from the run over all years (same months)
    regional = metrics["calibration"]["regional_geodetic"]
    predicted = check["observed_regional_rate"]["value"] + regional["bias"]
    rates = np.array([summary["glaciers"][g]["rate"] for g in result.glacier.values])
    area = result.area.values
    assert float(area @ rates / area.sum()) == pytest.approx(predicted, rel=1e-10)
    # and the WGMS residuals from the all-years run equal the calibration metric
    years = (result.year >= 1981) & result.observed_annual_balance.notnull()
    hef = result.sel(glacier="RGI50-11.00897")
    rmse = float(np.sqrt(((hef.specific_mass_balance - hef.observed_annual_balance)[years] ** 2).mean()))
    assert rmse == pytest.approx(metrics["calibration"]["wgms_annual"]["rmse"], rel=1e-10)
    assert summary["region"]["glaciers"] == 20 and summary["region"]["area_km2"] == pytest.approx(87.7, abs=0.1)
    assert all(g["rate_p05"] < g["rate"] < g["rate_p95"] for g in summary["glaciers"].values())
    assert any("negative values of 'prcp'" in n for n in summary["notes"])
    assert any("mass-balance years 2000-2009" in n for n in summary["notes"])
    assert summary["cost"]["model_runs"] < 100
    figures = ("mass_balance_by_year", "glacier_rates", "glacier_map", "balance_by_elevation", "convergence")
    for figure in (*figures, "posterior"):
        assert (out / f"{figure}.png").stat().st_size > 10_000
    bands = result.sizes["band"]  # the DEM's 50 m bands between the lowest and highest glacier
    assert 30 < bands < 50
    sizes = {"glacier": 20, "year": 62, "band": bands, "parameter": 3, "parameter_2": 3, "step": len(result.loss)}
    assert result.sizes == sizes
    # the band balances add up to each glacier's specific balance
    weighted = (result.mass_balance.fillna(0.0) * result.band_area).sum("band") / result.area
    np.testing.assert_allclose(weighted, result.specific_mass_balance, rtol=1e-10, atol=1e-8)
    assert not (out / "checkpoint.eqx").exists()


def test_oetztal_runs_on_other_files_through_set(oetztal, tmp_path, capsys):
    """Five of the outlines and a copied WGMS file, given with --set data.*: each glacier's run
    with the start values is the same as in the 20-glacier region (glaciers are independent)."""
    _, _, full = oetztal
    outlines = gpd.read_file(cg.data.sample_path("oetztal_outlines"))
    chosen = ["RGI50-11.00897", "RGI50-11.00787", "RGI50-11.00746", "RGI50-11.00929", "RGI50-11.00684"]
    path = tmp_path / "five.gpkg"
    outlines[outlines.RGIId.isin(chosen)].to_file(path)
    wgms = tmp_path / "wgms_copy.csv"
    shutil.copy(cg.data.sample_path("hintereisferner_wgms"), wgms)
    out = tmp_path / "five"
    args = ["run", str(EXPERIMENT), "--out", str(out), "--set", f"data.outlines={path}", "--set", f"data.wgms={wgms}"]
    assert main([*args, *NO_SAMPLER]) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["region"]["glaciers"] == 5 and summary["config"]["data"]["wgms"] == str(wgms)
    result = xr.load_dataset(out / "result.nc")
    assert_cf_units(result)
    for glacier in result.glacier.values:
        np.testing.assert_allclose(
            result.specific_mass_balance_start.sel(glacier=glacier),
            full.specific_mass_balance_start.sel(glacier=glacier),
            rtol=1e-12,
        )


def test_wgms_glacier_is_matched_to_its_outline_across_rgi_versions():
    table = cg.data.load_sample("hintereisferner_wgms")  # rgi_id RGI60-11.00897
    notes = []
    ids = ["RGI50-11.00746", "RGI50-11.00897"]
    assert glacier_region._monitored(dict(data={}), table, ids, notes) == (491, 1)
    assert "matched to outline RGI50-11.00897" in notes[0]
    with pytest.raises(ValueError, match=r"data\.wgms_outline: cannot match WGMS glacier 491"):
        glacier_region._monitored(dict(data={}), table, ["RGI50-11.00746"], [])
    with pytest.raises(ValueError, match=r"data\.wgms_glacier: 17 is not in the WGMS table"):
        glacier_region._monitored(dict(data=dict(wgms_glacier=17)), table, ids, [])


def test_geodetic_periods_map_to_hydrological_years():
    assert glacier_region.period_years("2000-01-01_2010-01-01") == (2000, 2009)
    assert glacier_region.period_years("2000-10-01_2010-10-01") == (2001, 2010)
    assert glacier_region.period_years("2006-01-01_2019-01-01") == (2006, 2018)
    with pytest.raises(ValueError, match="covers no whole mass-balance year"):
        glacier_region.period_years("2000-01-01_2000-06-01")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.region=99", "data.region: 99 is not in the table"),
        ('data.period="2000-01-01_2020-01-01"', "data.period: its mass-balance years 2000-2019 must lie inside"),
        ('data.period="2000-2010"', "data.period: '2000-2010' must read 'YYYY-MM-DD_YYYY-MM-DD'"),
        ('data.wgms_outline="RGI50-11.99999"', "data.wgms_outline: no outline has id 'RGI50-11.99999'"),
        ("data.wgms_glacier=17", "data.wgms_glacier: 17 is not in the WGMS table"),
        ('data.id_column="rgi_id"', "data.id_column: the outlines have no column 'rgi_id'"),
        ("data.regional=/no/such.csv", "data.regional: /no/such.csv does not exist"),
        ("validation.end=1990", "validation: its years overlap the calibration years"),
        ("validation.start=1700", "the climate covers mass-balance years 1802-2014"),
        ('parameters.temperature_bias.scope="site"', "parameters.temperature_bias.scope: 'site'"),
        (
            "observations.regional.representativeness=-1.0",
            "observations.regional.representativeness: Input should be greater than or equal to 0",
        ),
        ('uncertainty.sampler="mcmc"', "uncertainty.sampler: 'mcmc'"),
        (
            "observations.wgms_annual.sigma=abc",
            "observations.wgms_annual.sigma: Input should be a valid number, got 'abc'",
        ),
        ("observations.wgms_annual.sigma=0", "observations.wgms_annual.sigma: Input should be greater than 0"),
    ],
)
def test_bad_oetztal_configs_fail_before_computing(tmp_path, capsys, override, message):
    out = tmp_path / "never"
    assert main(["run", str(EXPERIMENT), "--out", str(out), "--set", override]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
