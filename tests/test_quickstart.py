"""`cryograd quickstart`: both bundled calibrations end to end, with figures and headline numbers."""

import json
from pathlib import Path

import pytest

from cryograd._run import quickstart
from cryograd.cli import main

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def test_packaged_configs_are_the_experiments():
    """The quick start runs the package's copies of experiments/*.toml: they must not drift."""
    for experiment in quickstart.EXPERIMENTS:
        name = experiment["name"]
        assert quickstart.config_path(name).read_text() == (EXPERIMENTS / f"{name}.toml").read_text(), name


FIGURES = dict(
    hintereisferner={"mass_balance_by_year.png", "mass_balance_by_elevation.png", "convergence.png", "posterior.png"},
    gipl_station={"ground_temperature.png", "trumpet.png", "active_layer.png", "error_by_depth.png", "convergence.png"},
)


def quickstart_run(out, capsys):
    assert main(["quickstart", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())["quickstart"]
    assert set(summary) == {e["folder"] for e in quickstart.EXPERIMENTS}
    for folder, result in summary.items():
        assert result["headline"] in printed
        assert FIGURES[folder] <= set(result["figures"])
        assert (out / folder / "summary.json").is_file() and (out / folder / "result.nc").is_file()
        assert not (out / folder / "checkpoint.eqx").exists()
    return out


def test_quickstart_writes_results_figures_and_headline_numbers(tmp_path, capsys, monkeypatch):
    """The cheaper twin: the Hintereisferner half with two optimiser steps. The CI runs the
    whole quick start as its install line; `test_cli` and `test_cli_permafrost` check the
    numbers of both experiments as the quick start runs them, the slow twin the quick
    start's own."""
    first = quickstart.EXPERIMENTS[0]
    monkeypatch.setattr(quickstart, "EXPERIMENTS", (dict(first, quick=[*first["quick"], "fit.max_steps=2"]),))
    out = quickstart_run(tmp_path / "qs", capsys)
    assert json.loads((out / "hintereisferner" / "summary.json").read_text())["config"]["fit"]["max_steps"] == 2


@pytest.mark.slow
def test_quickstart_as_shipped_beats_oggm_and_gipl2(tmp_path, capsys):
    out = quickstart_run(tmp_path / "qs", capsys)
    held_out = json.loads((out / "hintereisferner" / "summary.json").read_text())["metrics"]["validation"]
    assert held_out["wgms_annual"]["rmse"] < 624.0 and held_out["wgms_annual"]["r"] > 0.68  # OGGM 1.6.3
    station = json.loads((out / "gipl_station" / "summary.json").read_text())["metrics"]
    validation = station["validation"]["ground_temperature"]["mean_mae_over_depths"]
    assert validation < 0.9
    assert validation < station["reference"]["validation"]["ground_temperature"]["mean_mae_over_depths"]
