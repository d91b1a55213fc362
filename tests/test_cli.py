"""`cryograd run`: the Hintereisferner experiment end to end, overrides, and config checks."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg
from cryograd.cli import main
from tests._experiments import assert_cf_units

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "glacier_hintereisferner.toml"


def test_hintereisferner_beats_oggm_on_held_out_years(tmp_path, capsys):
    out = tmp_path / "hef"
    # another WGMS file of the same format, passed with --set
    wgms = tmp_path / "wgms_copy.csv"
    shutil.copy(cg.data.sample_path("hintereisferner_wgms"), wgms)
    code = main(
        [
            "run",
            str(EXPERIMENT),
            "--out",
            str(out),
            "--no-progress",
            "--set",
            'uncertainty.sampler="none"',
            "--set",
            f"data.wgms={wgms}",
        ]
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["data"]["wgms"] == str(wgms)
    validation = summary["metrics"]["validation"]["wgms_annual"]
    assert validation["n"] == 50
    assert validation["rmse"] < 624.0  # OGGM 1.6.3 on 1953-2002
    assert validation["r"] > 0.68
    assert summary["cost"]["forward_equivalents"] < 500
    assert summary["cost"]["converged"]
    for name in ("melt_factor", "precipitation_factor", "temperature_bias"):
        assert summary["parameters"][name]["std"] > 0
    for figure in ("mass_balance_by_year", "mass_balance_by_elevation", "convergence", "posterior"):
        assert (out / f"{figure}.png").stat().st_size > 10_000
    result = xr.open_dataset(out / "result.nc")
    assert_cf_units(result)
    assert result.sizes["year"] == 50 and "specific_mass_balance_validation" in result
    assert not (out / "checkpoint.eqx").exists()
    # the WGMS altitudinal profile drawn on the by-elevation figure: the file's mean over the
    # years it shares with the model, at elevations measured in all of them (read here with pandas)
    table = pd.read_csv(cg.data.sample_path("hintereisferner_wgms_profile"), index_col=0)
    shared = table.loc[1964:2002]
    complete = shared.notna().all()
    assert result.sizes["profile_elevation"] == complete.sum() == 24
    np.testing.assert_allclose(result.observed_profile, shared.loc[:, complete].mean(), rtol=1e-12)
    np.testing.assert_allclose(
        result.modelled_profile, result.mass_balance.sel(year=slice(1964, 2002)).mean("year"), rtol=1e-12
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("fit.metod=lbfgs", "fit.metod: unknown key; did you mean 'method'?"),
        ("data.climate=/no/such/file.nc", "data.climate: /no/such/file.nc does not exist"),
        ("parameters.melt_factor.bounds=[17.0, 1.5]", "bounds [17.0, 1.5] are reversed; write [1.5, 17.0]"),
        ("calibration.start=abc", "calibration.start: Input should be a valid integer, got 'abc'"),
        ("parameters.melt_fator.init=3.0", "the model has no parameter 'melt_fator'"),
        ('uncertainty.sampler="nut"', "uncertainty.sampler: 'nut'; use one of none, nuts"),
        ("data.wgms_profile=sample:hintereisferner_wgms", "is not a WGMS profile table"),
        ("calibration.end=1960", "data.wgms_profile: no year between calibration.start 1953 and end 1960"),
        ("data.latitude=46.8", "data.latitude: give data.latitude and data.longitude together"),
    ],
)
def test_bad_configs_fail_before_computing(tmp_path, capsys, override, message):
    out = tmp_path / "never"
    assert main(["run", str(EXPERIMENT), "--out", str(out), "--set", override]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_every_problem_is_listed_at_once(tmp_path, capsys):
    code = main(
        [
            "run",
            str(EXPERIMENT),
            "--out",
            str(tmp_path / "x"),
            "--set",
            "fit.metod=lbfgs",
            "--set",
            "data.wgms=missing.csv",
            "--set",
            "validation.folds=1",
        ]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert "fit.metod" in error and "data.wgms" in error and "validation.folds" in error


def test_dry_run_prints_the_resolved_config(capsys):
    assert main(["run", str(EXPERIMENT), "--dry-run", "--set", "fit.max_steps=7"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["fit"]["max_steps"] == 7
    assert printed["data"]["wgms"] == "sample:hintereisferner_wgms"
