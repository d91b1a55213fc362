"""`cryograd quickstart`: both bundled calibrations end to end, with figures and headline numbers."""

import json
from pathlib import Path

from cryograd._run import quickstart
from cryograd.cli import main

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def test_packaged_configs_are_the_experiments():
    """The quick start runs the package's copies of experiments/*.toml: they must not drift."""
    for experiment in quickstart.EXPERIMENTS:
        name = experiment["name"]
        assert quickstart.config_path(name).read_text() == (EXPERIMENTS / f"{name}.toml").read_text(), name


def test_quickstart_writes_results_figures_and_headline_numbers(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    hef, gipl = summary["quickstart"]["hintereisferner"], summary["quickstart"]["gipl_station"]
    assert hef["headline"] in printed and gipl["headline"] in printed
    assert {"mass_balance_by_year.png", "mass_balance_by_elevation.png", "convergence.png", "posterior.png"} <= set(
        hef["figures"]
    )
    assert {
        "ground_temperature.png",
        "trumpet.png",
        "active_layer.png",
        "error_by_depth.png",
        "convergence.png",
    } <= set(gipl["figures"])
    for folder in ("hintereisferner", "gipl_station"):
        assert (out / folder / "summary.json").is_file() and (out / folder / "result.nc").is_file()
        assert not (out / folder / "checkpoint.eqx").exists()
    held_out = json.loads((out / "hintereisferner" / "summary.json").read_text())["metrics"]["validation"]
    assert held_out["wgms_annual"]["rmse"] < 624.0 and held_out["wgms_annual"]["r"] > 0.68  # OGGM 1.6.3
    station = json.loads((out / "gipl_station" / "summary.json").read_text())["metrics"]
    validation = station["validation"]["ground_temperature"]["mean_mae_over_depths"]
    assert validation < 0.9
    assert validation < station["reference"]["validation"]["ground_temperature"]["mean_mae_over_depths"]
