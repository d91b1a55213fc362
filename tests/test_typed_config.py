"""Typed configs (`cryograd._run.typed`, pydantic): every problem of a config with its
dotted key, the closest key for a typo at any depth, TOML's integers taken as numbers but
not booleans, and `--dry-run` printing the config with its defaults filled in."""

import json

from cryograd._run import permafrost_region as R, typed
from cryograd.cli import main

MINIMAL = """
[experiment]
kind = "permafrost_region"

[region]
cells = 4
mean_air_temperature = [-2, -8]
amplitude = [15.0, 20.0]
precipitation = [0.3, 0.2]

[forcing]
start = "2015-01-01"
years = 1

[model]
layers = [{top = 0.0, water_content = 0.3, k_thawed = 1.2, k_frozen = 1.8, c_thawed = 2.4e6, c_frozen = 1.9e6}]
"""


def config(**changes):
    import tomllib

    base = tomllib.loads(MINIMAL)
    for key, value in changes.items():
        section, name = key.split("__")
        base[section][name] = value
    return base


def test_a_valid_config_gets_its_defaults_and_integers_as_numbers():
    instance, problems = typed.problems(R.RegionConfig, config())
    assert problems == []
    resolved = typed.resolved(instance)
    assert resolved["region"]["mean_air_temperature"] == [-2.0, -8.0]
    assert resolved["run"] == {"chunk_size": 250, "workers": 0}
    assert resolved["model"]["snow_cells"] == 3 and "solver" not in resolved["model"]  # not given: the column's
    assert resolved["experiment"]["name"] == "permafrost_region"


def test_every_problem_is_listed_with_its_dotted_key():
    bad = config(region__rows=True, forcing__years="ten", model__snow_cels=2)
    bad["model"]["layers"] = [{"top": 0.0, "water_content": 0.3, "k_thawd": 1.2}]
    bad["equilibrium"] = {"layr": 0}
    _, problems = typed.problems(R.RegionConfig, bad)
    expected = [
        "region.rows: Input should be a valid integer, got True",
        "forcing.years: Input should be a valid integer, got 'ten'",
        "model.snow_cels: unknown key; did you mean 'snow_cells'?",
        "model.layers.0.k_thawd: unknown key; did you mean 'k_thawed'?",
        "model.layers.0.c_frozen: missing",
        "equilibrium.layr: unknown key; did you mean 'layer'?",
    ]
    for line in expected:
        assert any(p.startswith(line) for p in problems), (line, problems)
    assert "model.layers.0.c_frozen: missing ([J m-3 K-1])" in problems  # with the key's description
    _, problems = typed.problems(R.RegionConfig, {"experiment": {"kind": "permafrost_region"}})
    assert {"region: missing", "forcing: missing", "model: missing"} <= set(problems)


def test_dry_run_prints_the_resolved_config(tmp_path, capsys):
    path = tmp_path / "minimal.toml"
    path.write_text(MINIMAL)
    assert main(["run", str(path), "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["forcing"]["anomaly_std"] == 3.5 and printed["model"]["magt_depths"] == [0.0, 1.0, 2.0, 5.0, 10.0]
    assert printed["_source"] == str(path)
    assert main(["run", str(path), "--dry-run", "--set", "run.chunk_sise=3"]) == 2
    assert "run.chunk_sise: unknown key; did you mean 'chunk_size'?" in capsys.readouterr().err


def test_key_table_lists_every_key_with_its_default():
    rows = {key: (kind, default) for key, kind, default, _ in typed.key_table(R.RegionConfig)}
    assert rows["region.cells"] == ("integer", None)
    assert rows["forcing.anomaly_days"] == ("number", 3.0)
    assert rows["model.layers"][0] == "list" and "model.layers.top" not in rows
    assert rows["run.workers"] == ("integer", 0)
