"""`cryograd run` on the GIPL2 station (a `permafrost_site` config driven by the station's air
temperature and snow): calibrate on the first year, validate on the rest."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import cryograd as cg
from cryograd.cli import main
from tests._experiments import assert_cf_units

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "permafrost_gipl_station.toml"


def test_gipl_station_validation_beats_gipl2(tmp_path, capsys):
    out = tmp_path / "gipl"
    # another station folder of the same format, passed with --set
    station = tmp_path / "station_copy"
    shutil.copytree(cg.data.sample_path("gipl_station"), station)
    # 5 Levenberg-Marquardt steps (the quick start takes 10, the experiment 20; the loss
    # after 5 is within 0.1 % of that after 10)
    overrides = ["--set", f"data.borehole={station}", "--set", "fit.max_steps=5"]
    code = main(["run", str(EXPERIMENT), "--out", str(out), "--no-progress", *overrides])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["data"]["borehole"] == str(station)
    validation = summary["metrics"]["validation"]["ground_temperature"]
    assert len(validation["by_depth"]) == 12
    assert validation["mean_mae_over_depths"] < 0.90  # GIPL2 with its own parameters: 0.98
    # the calibration helped in both periods, against the start values and the station's own set-up
    for baseline in ("start", "reference"):
        for period in ("calibration", "validation"):
            before = summary["metrics"][baseline][period]["ground_temperature"]["mean_mae_over_depths"]
            after = summary["metrics"][period]["ground_temperature"]["mean_mae_over_depths"]
            assert after < before
    assert summary["periods"] == dict(calibration=["2008-07-01", "2009-06-30"], validation=["2009-07-01", "2010-07-27"])
    assert summary["cost"]["model_runs"] > 0 and summary["cost"]["wall_time_s"] > 0
    assert len(summary["parameters"]) == 12
    assert all(p["std"] > 0 for p in summary["parameters"].values())
    for figure in ("ground_temperature", "error_by_depth", "convergence", "posterior"):
        assert (out / f"{figure}.png").stat().st_size > 10_000
    result = xr.open_dataset(out / "result.nc")
    assert_cf_units(result)
    sizes = {"time": 757, "depth": 12, "parameter": 12, "projection_year": 30, "magt_depth": 3, "year": 3}
    assert result.sizes == sizes | {"step": result.sizes["step"]}
    assert int(result.calibration.sum()) == 365
    assert not (out / "checkpoint.eqx").exists()
    # the predictive band: recomputed from result.nc, the share of validation values inside it
    coverage = summary["predictive_coverage"]
    validation_days = ~result.calibration.values
    measured = result.measured_temperature.values[validation_days]
    lower, upper = (result[f"temperature_p{q}"].values[validation_days] for q in ("05", "95"))
    known = np.isfinite(measured)
    inside = (lower[known] <= measured[known]) & (measured[known] <= upper[known])
    assert coverage["n"] == known.sum() == 4704
    assert coverage["validation_share_inside"] == pytest.approx(inside.mean(), abs=1e-12)
    assert 0.6 < coverage["validation_share_inside"] < 0.98  # the residual error makes the band (80.5 % shipped)
    assert coverage["validation_share_inside_parameters_only"] < 0.2  # independent-error Laplace: far too narrow
    fitted = result.temperature.values
    assert np.mean((result.temperature_p05.values <= fitted) & (fitted <= result.temperature_p95.values)) > 0.99
    # the projection (the shipped config's: 30 years, +0.6 K per decade): against the
    # control (no warming, same start), the warming deepens the active layer and warms the
    # ground at every MAGT depth by the end, for the calibrated parameters and the draws
    alt = result.projected_active_layer_thickness
    magt = result.projected_mean_annual_ground_temperature
    assert alt.sizes == {"projection_year": 30} and magt.sizes == {"projection_year": 30, "magt_depth": 3}
    change = result.projected_active_layer_thickness_change
    assert float(change[-5:].mean()) > 0.02 and float(result.projected_active_layer_thickness_change_p05[-1]) > 0
    np.testing.assert_allclose(change, alt - result.control_active_layer_thickness, rtol=0, atol=1e-12)
    assert bool((result.projected_mean_annual_ground_temperature_change[-1] > 0.1).all())
    assert bool((result.projected_mean_annual_ground_temperature_change_p05[-1] > 0).all())
    for name in ("projected_active_layer_thickness", "projected_mean_annual_ground_temperature"):
        assert bool((result[f"{name}_p95"] >= result[f"{name}_p05"]).all())
        assert float((result[f"{name}_p95"] - result[f"{name}_p05"]).max()) > 0
    np.testing.assert_allclose(result.projected_warming[-1], 0.06 * (29 * 365 + 183) / 365, rtol=1e-12)
    assert summary["projection"]["years"] == 30 and (out / "projection.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.borehole=/no/such/folder", "data.borehole: /no/such/folder does not exist"),
        ("parameters.n_thawing.bounds=[2.0, 0.3]", "bounds [2.0, 0.3] are reversed"),
        ('uncertainty.hessian="exact"', "only 'gauss_newton'"),
        ("calibration.end=2009-13-01", "calibration.end: '2009-13-01' is not a date"),
        ("initial.deep_temperature=warm", "initial.deep_temperature: 'warm'"),
        ('calibration.start="2008-08-01"', "start the calibration there"),
        ('validation.start="2009-06-01"', "lies inside the calibration period"),
        ('validation.end="2009-06-15"', "validation: end 2009-06-15 is before start 2009-07-01"),
        ('parameters.n_thawing.path="surface.thawin"', "surface.thawin"),
        ("projection.years=0", "projection.years: Input should be greater than or equal to 1"),
        ("projection.magt_depths=[1.0, 200.0]", "projection.magt_depths: 200 m lies below the column's base (90 m)"),
        ("projection.warming=1.0", "projection.warming: unknown key; allowed: magt_depths, warming_per_decade"),
        ("experiment.kind=permafrost", "'permafrost' is now 'permafrost_site'"),
    ],
)
def test_bad_permafrost_configs_fail_before_computing(tmp_path, capsys, override, message):
    out = tmp_path / "never"
    assert main(["run", str(EXPERIMENT), "--out", str(out), "--set", override]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
