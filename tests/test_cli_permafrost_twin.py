"""`cryograd run` on the permafrost twin: synthetic LST, boreholes and ALT from known
parameters; the fit must recover them (|error| <= 2 Laplace std and <= 5 %)."""

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from cryograd.cli import main
from tests._experiments import assert_cf_units

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "permafrost_twin_lst.toml"


def test_twin_recovers_every_parameter(tmp_path, capsys):
    out = tmp_path / "twin"
    code = main(["run", str(EXPERIMENT), "--out", str(out), "--no-progress"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    summary = json.loads((out / "summary.json").read_text())
    parameters = summary["parameters"]
    assert len(parameters) >= 6
    # Errors in Laplace standard deviations: for a correct posterior about N(0, 1), so with
    # 11 parameters one beyond 2 std is common (all within 2 std has probability 0.57);
    # seed 0 puts the silt's frozen conductivity at 2.02 std. Asserted: every error within
    # 3 std and 5 %, at most one beyond 2 std, and the errors' RMS in std near 1 (its 95 %
    # range for 11 normal errors is about 0.6-1.4; measured 1.0-1.1 for seeds 0, 1, 2).
    z = []
    for name, row in parameters.items():
        error = row["value"] - row["truth"]
        z.append(error / row["std"])
        assert abs(error) <= 3 * row["std"], name
        assert abs(error) <= 0.05 * abs(row["truth"]), name
        # the start was far from the truth, so the recovery is the fit's doing
        start = summary["config"]["parameters"][name]["init"]
        assert abs(start - row["truth"]) > 5 * abs(error), name
    z = np.asarray(z)
    assert np.sum(np.abs(z) > 2) <= 1 and 0.5 < np.sqrt(np.mean(z**2)) < 1.6, z
    # identifiable to 5 % (2 std <= 5 % of |truth|): all but the LST offset, whose 2-std
    # interval (about +-0.12 K) is wider than 5 % of its 2 K truth although it is recovered
    recovery = summary["recovery"]
    assert recovery["within_2_std"] >= 1 - 1.5 / len(parameters)
    assert recovery["identifiable"] == len(parameters) - 1
    assert recovery["recovered"] >= recovery["identifiable"] - 1
    assert f"recovered {recovery['recovered']} of {recovery['identifiable']} identifiable" in printed.out
    # every observation kind was used, and the validation year (noise-free truth) is matched
    assert set(summary["observations"]) == {"lst", "boreholes", "alt"}
    validation, start = summary["metrics"]["validation"], summary["metrics"]["start"]["validation"]
    assert validation["boreholes"]["rmse"] < 0.05 < start["boreholes"]["rmse"]
    # the yearly largest thaw depth can jump by a few cm on one day where the front cell
    # switches between the isotherm interpolation and the liquid-share rule of thaw_depth
    # (seed 0: 5.8 cm at one site in the validation year; 1-4 mm RMSE for seeds 1 and 2)
    assert validation["alt"]["rmse"] < 0.05 and start["alt"]["rmse"] > 0.2
    # the LST residuals of the fit are its noise: RMSE close to the 2 K sigma, no bias left
    lst = summary["metrics"]["calibration"]["lst"]
    assert 1.8 < lst["rmse"] < 2.2 and abs(lst["bias"]) < 0.2
    # the optimiser's work in model runs (each with its Jacobian); in forward-equivalents it
    # is no longer a useful bound: the native forward run takes 6 ms, the Jacobian of 11
    # columns through the snow replay about 19 of them (546 forward-equivalents)
    assert summary["cost"]["model_runs"] <= 40
    for figure in ("ground_temperature", "recovery", "convergence", "posterior"):
        assert (out / f"{figure}.png").stat().st_size > 10_000
    result = xr.open_dataset(out / "result.nc")
    assert_cf_units(result)
    assert result.sizes["site"] == 3 and result.sizes["depth"] == 7 and result.sizes["year"] == 4
    assert int(result.lst_observed.notnull().sum()) > 1000
    assert not (out / "checkpoint.eqx").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("parameters.n_thawing.truth=2.5", "parameters.n_thawing.truth: 2.5 lies outside the bounds"),
        ('observations.lst.offset="n_thawing"', "must name a parameter with path"),
        ("observations.boreholes.depths=[0.5, 40.0]", "within the column"),
        ('calibration.end="2025-06-01"', "leaves no validation day"),
        ('validation.start="2023-06-01"', "validation.start: inside the calibration period"),
        ("synthetic.precipitation=[0.3, 0.2]", "synthetic.precipitation: 2 values for 3 sites"),
        ('uncertainty.hessian="exact"', "only 'gauss_newton'"),
        ("model.layers=[{top = 0.0}]", "model.layers.0.water_content: missing"),
        ("parameters.n_thawing.bounds=[2.0, 0.3]", "bounds [2.0, 0.3] are reversed"),
        ("synthetic.sitez=1", "synthetic.sitez: unknown key; did you mean 'sites'?"),
        ("observations.boreholes={sigma = 0.1}", "observations.boreholes.depths: missing"),
    ],
)
def test_bad_twin_configs_fail_before_computing(tmp_path, capsys, override, message):
    out = tmp_path / "never"
    assert main(["run", str(EXPERIMENT), "--out", str(out), "--set", override]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_twin_parameter_without_truth_is_refused(tmp_path, capsys):
    text = EXPERIMENT.read_text().replace("truth = 1.15\n", "")
    config = tmp_path / "twin.toml"
    config.write_text(text)
    assert main(["run", str(config), "--out", str(tmp_path / "never"), "--dry-run"]) == 2
    assert "parameters.n_thawing.truth: missing" in capsys.readouterr().err
