"""`cryograd quickstart`: the two bundled calibrations end to end, on the sample data.

1. Hintereisferner (Ötztal Alps): the monthly temperature-index model fitted to the WGMS
   annual balances 1953-2002, with leave-years-out validation.
2. The GIPL2 example station (Alaska): 12 snow, surface and soil parameters of a soil
   column fitted to the first year of daily ground temperatures at 12 depths, validated on
   the following year.

The configs are the package's copies of `experiments/glacier_hintereisferner.toml` and
`experiments/permafrost_gipl_station.toml`. The quick start runs them with two settings
changed to stay within a few minutes on a laptop CPU: no NUTS check of the Laplace
posterior on Hintereisferner, and 10 instead of 20 Levenberg-Marquardt steps on the
station. `--full` runs the experiments as they are.
"""

import json
import time
from importlib import resources
from pathlib import Path

from . import config as cfg, report

EXPERIMENTS = (
    dict(
        name="glacier_hintereisferner",
        folder="hintereisferner",
        title="Hintereisferner: temperature-index SMB fitted to WGMS 1953-2002",
        quick=["uncertainty.sampler=none"],
    ),
    dict(
        name="permafrost_gipl_station",
        folder="gipl_station",
        title="GIPL2 station: soil column fitted to a year of ground temperatures at 12 depths",
        quick=["fit.max_steps=10"],
    ),
)


def config_path(name: str) -> Path:
    """The packaged copy of experiments/NAME.toml."""
    return Path(str(resources.files("cryograd._run.experiments").joinpath(f"{name}.toml")))


def run(out: Path, *, full: bool = False, progress: bool = True) -> dict:
    """Run both experiments into `out`/<folder>/ and write `out`/summary.json with the
    headline numbers. Returns that summary."""
    from . import runner

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for number, experiment in enumerate(EXPERIMENTS, start=1):
        print(f"[{number}/{len(EXPERIMENTS)}] {experiment['title']}", flush=True)
        config = cfg.load(config_path(experiment["name"]), [] if full else experiment["quick"])
        folder = out / experiment["folder"]
        summary = runner(config["experiment"]["kind"]).run(config, folder, progress=progress)
        results[experiment["folder"]] = dict(
            folder=str(folder),
            figures=sorted(p.name for p in folder.glob("*.png")),
            headline=_headline(experiment["folder"], summary),
            parameters={k: v["value"] for k, v in summary["parameters"].items()},
            wall_time_s=summary["wall_time_s"],
            settings="as in experiments/" if full else f"quick start: {', '.join(experiment['quick'])}",
        )
        print(f"      {results[experiment['folder']]['headline']}", flush=True)
    combined = dict(
        quickstart=results,
        wall_time_s=round(time.perf_counter() - started, 1),
        versions=report.versions(),
    )
    (out / "summary.json").write_text(json.dumps(combined, indent=2) + "\n")
    return combined


def _headline(folder: str, summary: dict) -> str:
    if folder == "hintereisferner":
        held = summary["metrics"]["validation"]["wgms_annual"]
        return (
            f"held-out WGMS years: RMSE {held['rmse']:.0f} kg m-2, r {held['r']:.2f} "
            f"(OGGM 1.6.3, calibrated on all these years: 624, 0.68)"
        )
    validation = summary["metrics"]["validation"]["ground_temperature"]["mean_mae_over_depths"]
    reference = summary["metrics"]["reference"]["validation"]["ground_temperature"]["mean_mae_over_depths"]
    return (
        f"validation year: daily MAE {validation:.2f} K averaged over 12 depths "
        f"(the station's own parameters: {reference:.2f} K)"
    )
