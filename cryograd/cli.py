"""The `cryograd` command.

cryograd run CONFIG.toml [--set key=value ...] [--out DIR] [--dry-run] [--no-progress]
cryograd quickstart [--out DIR] [--full] [--no-progress]
"""

import argparse
import gc
import json
import sys
from pathlib import Path

from ._run import runner as experiment_runner


def _run(args) -> int:
    from ._run import config as cfg

    try:
        config = cfg.load(args.config, args.set or [])
        kind = config.get("experiment", {}).get("kind")
        runner = experiment_runner(kind)  # ValueError naming the kinds for an unknown one
        if args.dry_run:
            problems = runner.validate(config)
            resolved = runner.resolve(config) if hasattr(runner, "resolve") and not problems else config
            print(json.dumps(resolved, indent=2, default=str))  # with every default, where the kind has a typed model
            cfg.refuse(problems)
            return 0
        out = Path(args.out) if args.out else Path("results") / config.get("experiment", {}).get("name", kind)
        summary = runner.run(config, out, progress=not args.no_progress)
    except ValueError as error:
        print(f"cryograd run: {error}", file=sys.stderr)
        return 2
    print(f"results in {out}/ (summary.json, result.nc, *.png)")
    for label, value in summary.get("parameters", {}).items():
        std = "" if value["std"] is None else f" +- {value['std']:.2g}"
        truth = ""
        if "truth" in value:
            verdict = "recovered" if value["recovered"] else "NOT recovered"
            verdict = verdict if value["identifiable"] else f"not identifiable to 5 %, {verdict}"
            error = f"error {value['z']:+.1f} std, {value['relative_error']:.1%}"
            truth = f"  (truth {value['truth']:.4g}, {error}: {verdict})"
        print(f"  {label} = {value['value']:.4g}{std} {value['units']}{truth}")
    if "recovery" in summary:
        recovery = summary["recovery"]
        print(
            f"  recovered {recovery['recovered']} of {recovery['identifiable']} identifiable parameters "
            f"({recovery['parameters']} fitted, {recovery['within_2_std']:.0%} within 2 std of the truth)"
        )
        print(f"  ({recovery['criterion']})")
    for period in ("calibration", "validation"):
        for name, m in summary.get("metrics", {}).get(period, {}).items():
            if "mean_mae_over_depths" in m:
                print(f"  {period} {name}: daily MAE averaged over depths {m['mean_mae_over_depths']:.3f} K")
            if m["n"]:
                r = "n/a" if m["r"] is None else f"{m['r']:.3f}"
                print(f"  {period} {name}: RMSE {m['rmse']:.4g}, bias {m['bias']:+.4g}, r {r}, n {m['n']}")
    check = summary.get("regional_check")
    if check:
        p, o = check["predicted_regional_rate"], check["observed_regional_rate"]
        print(
            f"  regional rate predicted from the WGMS series alone: {p['value']:.0f} +- {p['std']:.0f}, observed "
            f"{o['value']:.0f} +- {o['total_sigma']:.0f} kg m-2 yr-1 ({check['difference_in_sigma']:+.2f} combined std)"
        )
    cost = summary.get("cost")
    if cost:
        print(
            f"  cost: {cost['model_runs']} model runs, {cost['forward_equivalents']} forward-equivalents, "
            f"{cost['wall_time_s']} s"
        )
    execution = summary.get("execution")
    if execution:
        where = f"{execution['workers']} Dask workers" if execution["workers"] else "this process"
        print(
            f"  {execution['chunks']} chunks of {execution['chunk_size']} in {where}: "
            f"{execution['chunks_wall_time_s']} s, {execution['column_years_per_s']} column-years/s"
        )
    return 0


def _quickstart(args) -> int:
    from ._run import quickstart

    out = Path(args.out)
    try:
        summary = quickstart.run(out, full=args.full, progress=not args.no_progress)
    except ValueError as error:
        print(f"cryograd quickstart: {error}", file=sys.stderr)
        return 2
    print(f"done in {summary['wall_time_s']:.0f} s; results in {out}/")
    for result in summary["quickstart"].values():
        print(f"  {result['folder']}/: {', '.join(result['figures'])}, summary.json, result.nc")
    print(f"  {out}/summary.json: the headline numbers of both")
    return 0


RUN_EPILOG = """\
experiment kinds (experiment.kind in the config):
  glacier              one glacier's SMB fitted to WGMS and geodetic balances (glacier_hintereisferner.toml)
  glacier_region       many glaciers fitted jointly to regional and in-situ balances (glacier_oetztal.toml)
  glacier_region_twin  a synthetic region fitted to a GRACE-like series (glacier_region_twin_grace.toml)
  permafrost_region    equilibrium and transient runs of a synthetic region, chunked (permafrost_region.toml)
  permafrost_site      a soil column fitted to one borehole's temperatures (permafrost_borehole.toml,
                       permafrost_gipl_station.toml)
  permafrost_twin      synthetic sites fitted to satellite LST, boreholes and ALT (permafrost_twin_lst.toml)

outputs: DIR/summary.json (parameters with std, metrics, cost, versions), DIR/result.nc, DIR/*.png.
The config is checked before anything runs: unknown keys, wrong types, missing files and
reversed bounds are reported together. An interrupted run resumes from DIR/checkpoint.eqx.

examples:
  cryograd run experiments/glacier_hintereisferner.toml --out results/hef
  cryograd run experiments/glacier_hintereisferner.toml --set data.wgms=my_series.csv --dry-run
  cryograd run experiments/permafrost_gipl_station.toml --set fit.max_steps=5
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="cryograd",
        description="Differentiable permafrost and glacier models fitted to satellite and in-situ data.",
        epilog="Start with `cryograd quickstart`; `cryograd COMMAND --help` describes each command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run a calibration experiment from a TOML config",
        description="Fit a model to observations as a TOML config describes, validate it, and write results.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("config", help="the experiment's TOML file (see experiments/*.toml)")
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key (dotted path, TOML value; repeatable), e.g. --set data.wgms=my_wgms.csv; "
        "data paths given here are relative to the working directory",
    )
    run.add_argument("--out", help="output folder (default results/<experiment name>)")
    run.add_argument(
        "--dry-run", action="store_true", help="print the resolved config as JSON, check it, and stop before computing"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    quick = commands.add_parser(
        "quickstart",
        help="run the bundled Hintereisferner and GIPL-station calibrations (a few minutes)",
        description=(
            "Calibrate the monthly temperature-index model of Hintereisferner to its WGMS series and a soil column "
            "to the GIPL2 example station's ground temperatures, on the sample data shipped with cryograd; write "
            "results and figures and print the headline numbers. No network is used."
        ),
    )
    quick.add_argument("--out", default="cryograd-quickstart", help="output folder (default ./cryograd-quickstart)")
    quick.add_argument(
        "--full",
        action="store_true",
        help="run the experiments exactly as experiments/*.toml (NUTS on Hintereisferner, 20 LM steps; ~3.5 min)",
    )
    quick.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "quickstart":
        return _quickstart(args)
    return 1


def entry() -> None:
    """The `cryograd` command (and `python -m cryograd.cli`): `main`, then the process ends.
    Python's finalisation would first collect every object jax, xarray and the rest of
    the stack made, several times over (1.1 s after the region experiment); they are
    frozen out of the collector instead, as the process hands its memory back whole.
    Outputs are written and closed by then."""
    try:
        code = main()
    finally:
        gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
