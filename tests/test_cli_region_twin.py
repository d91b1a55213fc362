"""`cryograd run` on the regional glacier twin: 50 synthetic glaciers, a GRACE-like series and
per-glacier geodetic rates; the regional melt factor must be recovered, the per-glacier biases
must be calibrated (their errors consistent with their posterior standard deviations)."""

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from cryograd.cli import main
from tests._experiments import assert_cf_units

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "glacier_region_twin_grace.toml"


def test_region_twin_recovers_the_melt_factor_and_the_biases(tmp_path, capsys):
    out = tmp_path / "region"
    code = main(["run", str(EXPERIMENT), "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    parameters = summary["parameters"]
    assert len(parameters) == 51
    melt = parameters["melt_factor"]
    assert melt["identifiable"] and melt["recovered"]
    assert abs(melt["value"] - melt["truth"]) <= min(2 * melt["std"], 0.05 * melt["truth"])
    # the regional series is what pins the melt factor: without it its std is several times larger
    ablation = summary["grace_ablation"]["melt_factor"]
    assert ablation["without_grace"]["std"] > 3 * ablation["with_grace"]["std"]
    # per-glacier biases: determined to a few tenths of a kelvin, errors consistent with the stds
    biases = [row for label, row in parameters.items() if label.startswith("temperature_bias[")]
    z = np.array([row["z"] for row in biases])
    assert len(biases) == 50 and np.mean(np.abs(z) <= 2) >= 0.85 and 0.7 < np.std(z) < 1.4
    assert max(row["std"] for row in biases) < 0.35
    assert summary["recovery"]["all"]
    # never-observed annual balances of each glacier in 1981-2000 follow the truth
    validation, start = summary["metrics"]["validation"], summary["metrics"]["start"]["validation"]
    assert validation["annual_balance"]["rmse"] < 0.3 * start["annual_balance"]["rmse"]
    assert validation["regional_annual_balance"]["rmse"] < 50.0
    assert summary["notes"] and "negative values" in summary["notes"][0]  # the HISTALP file's own defect, reported
    for figure in ("recovery", "mass_balance_by_year", "convergence"):
        assert (out / f"{figure}.png").stat().st_size > 10_000
    result = xr.open_dataset(out / "result.nc")
    assert_cf_units(result)
    assert result.sizes["glacier"] == 50 and result.sizes["year"] == 34
    assert not (out / "checkpoint.eqx").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("parameters.melt_factor.truth=20.0", "parameters.melt_factor.truth: 20.0 lies outside the bounds"),
        ("parameters.melt_factor.truth={mean = 6.0, std = 1.0}", "a drawn truth needs scope = 'glacier'"),
        ("parameters.temperature_bias.truth={mean = 0.0}", "parameters.temperature_bias.truth.std: missing"),
        (
            "parameters.temperature_bias.truth={mean = 0.0, std = 1.0, sd = 1.0}",
            "parameters.temperature_bias.truth.sd: unknown key; did you mean 'std'?",
        ),
        ('parameters.melt_factor.path="melt_facto"', "the model has no parameter 'melt_facto'"),
        ("validation.end=1975", "validation: start 1981 is after end 1975"),
        ("validation.end=2003", "validation: its years overlap the calibration years"),
        ("observations.geodetic.end=2016", "observations.geodetic: its period must lie inside the calibration"),
        ("data.climate=/no/such.nc", "data.climate: /no/such.nc does not exist"),
        ('uncertainty.hessian="diagonal"', "uncertainty.hessian: 'diagonal'"),
    ],
)
def test_bad_region_twin_configs_fail_before_computing(tmp_path, capsys, override, message):
    out = tmp_path / "never"
    assert main(["run", str(EXPERIMENT), "--out", str(out), "--set", override]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


SCALE = Path(__file__).resolve().parents[1] / "experiments" / "glacier_region_twin_scale.toml"


def test_region_twin_with_three_parameters_per_glacier_streams_each_glacier(tmp_path, capsys):
    """The 10,000-glacier config on 120 glaciers (360 unknowns): L-BFGS with the gradient by
    members, the member-block Laplace, the per-glacier results written chunk by chunk."""
    out = tmp_path / "scale"
    settings = ["synthetic.glaciers=120", "observations.grace.sigma=0.024", "output.chunk_size=50"]
    args = ["run", str(SCALE), "--out", str(out), "--no-progress"]
    for setting in settings:
        args += ["--set", setting]
    assert main(args) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"] == {}  # no shared parameter; 360 unknowns are summarised
    assert summary["cost"]["gradient"] == "members"
    assert summary["uncertainty"]["method"].startswith("laplace by members")
    for name in ("melt_factor", "precipitation_factor", "temperature_bias"):
        row = summary["member_parameters"][name]
        assert row["glaciers"] == 120
        # calibrated posteriors: the errors against the truth are consistent with the stds
        assert row["within_2_std"] >= 0.88 and 0.7 < row["z_std"] < 1.3, row
    # the geodetic rates pin the temperature bias far better than its prior (0.8 K)
    assert summary["member_parameters"]["temperature_bias"]["std_median"] < 0.5
    parts = sorted(p.name for p in (out / "glaciers").glob("part-*.nc"))
    assert parts == ["part-000000000-000000050.nc", "part-000000050-000000100.nc", "part-000000100-000000120.nc"]
    glaciers = xr.open_mfdataset(sorted((out / "glaciers").glob("part-*.nc")), combine="nested", concat_dim="glacier")
    result = xr.open_dataset(out / "result.nc")
    assert_cf_units(result)
    np.testing.assert_array_equal(glaciers.specific_mass_balance.values, result.specific_mass_balance.values)
    fitted = dict(zip(result.parameter.values, result.parameter_value.values, strict=True))
    assert glaciers.melt_factor.values[7] == fitted["melt_factor[G008]"]
