"""The experiment pipeline of `cryograd run`: the stages every fitting kind shares.

1. **resolve**: the config checked against the kind's typed model and its files, every
   default filled in; refused with every problem at once (`typed.resolve`);
2. **build**: the kind's `Experiment` from its sections: data, model, forcing, initial state
   and observations, with the kind's own refusals; nothing is written before this ends;
3. **fit**: `config.calibrate` on `Experiment.setup()`'s problem (checkpointed, resumed
   after an interrupt); a kind that fits nothing (a forward run over a region) returns no
   problem and skips this stage and the next;
4. **uncertainty**: `Experiment.uncertainty` (default: the Laplace approximation with the
   config's Hessian, and NUTS where `uncertainty.sampler` asks for it);
5. **evaluate**: `Experiment.evaluate`: the kind's runs, metrics, result.nc contents,
   figures and summary entries (`Outcome`);
6. **write**: result.nc (with the config as an attribute), the figures, and summary.json
   with the entries every kind has (experiment, parameters, correlation, metrics, cost,
   sampler, notes, seed, versions, wall time, config) and the kind's own.

A kind is an `Experiment` subclass plus its typed config; `run(Kind, config, out)` is its
`cryograd run`.
"""

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import xarray as xr

from . import report
from .config import calibrate, laplace_and_sampler, remove_checkpoint


@dataclasses.dataclass
class Outcome:
    """What a kind's evaluation hands back: `metrics` ({calibration, validation, start, ...}
    -> observation -> mae, rmse, bias, r, n), the `dataset` of result.nc, a `figures(out)`
    callable, and its own `summary` entries (they may replace the shared ones)."""

    metrics: dict
    dataset: xr.Dataset
    figures: Callable[[Path], None]
    summary: dict = dataclasses.field(default_factory=dict)


class Experiment:
    """A kind's experiment, built from its resolved config (stage 2). Subclasses set
    `parameters` (the fitted `Parameter`s), add to `notes`, and implement `problem` and
    `evaluate`; `fit_options` go to `config.calibrate` (e.g. `gradient="forward"`)."""

    fit_options: dict = {}  # noqa: RUF012 (read only; a subclass sets its own)

    def __init__(self, config: dict):
        self.config = config
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def problem(self):
        """The inverse problem (`cg.assimilation.Problem`) the fit solves."""
        raise NotImplementedError

    def setup(self, progress: bool):
        """The problem of stage 3; a kind may do work first (e.g. estimate an error term)."""
        return self.problem()

    def uncertainty(self, problem, result, progress: bool):
        """(posterior, samples) at the fit's optimum."""
        sampler = self.config.get("uncertainty", {}).get("sampler") == "nuts"
        report.stage(progress, "uncertainty: Laplace approximation" + (" and NUTS" if sampler else ""))
        return laplace_and_sampler(problem, result.u, self.config)

    def evaluate(self, problem, result, posterior, samples, out: Path, progress: bool) -> Outcome:
        raise NotImplementedError


def run(kind: type[Experiment], config: dict, out: Path, progress: bool = True) -> dict:
    """Stages 2-6 for a resolved `config` of `kind`: the summary (also written to
    `out/summary.json`, beside `out/result.nc` and the figures)."""
    started = time.perf_counter()
    experiment = kind(config)
    problem = experiment.setup(progress)
    out.mkdir(parents=True, exist_ok=True)
    result = checkpoint = posterior = samples = None
    if problem is not None:  # a kind that fits nothing (a forward run) has no problem
        result, checkpoint = calibrate(problem, config, out, progress, **experiment.fit_options)
        posterior, samples = experiment.uncertainty(problem, result, progress)
    outcome = experiment.evaluate(problem, result, posterior, samples, out, progress)
    report.stage(progress, f"writing result.nc and figures to {out}")
    outcome.dataset.attrs["config"] = json.dumps(config)
    outcome.dataset.to_netcdf(out / "result.nc")
    outcome.figures(out)
    summary = dict(experiment=config["experiment"]["name"])
    if result is not None:
        summary.update(_fitted(experiment, problem, result, posterior, samples, outcome))
    summary.update(outcome.summary)
    summary.update(
        notes=experiment.notes,
        seed=int(config["experiment"].get("seed", 0)),
        versions=report.versions(),
        wall_time_s=round(time.perf_counter() - started, 2),
        config=config,
    )
    report.write_summary(out / "summary.json", summary)
    if checkpoint is not None:
        remove_checkpoint(checkpoint)
    return summary


def _fitted(experiment, problem, result, posterior, samples, outcome) -> dict:
    """The summary entries of a fit: parameters (value, std, units), their correlation,
    metrics, cost and the sampler's check."""
    units = {p.name: p.units for p in experiment.parameters}
    if "parameters" in outcome.summary:  # the kind's own table (e.g. per-glacier values kept apart)
        parameters, correlation = outcome.summary["parameters"], outcome.summary.get("correlation")
    elif posterior is not None:
        parameters, correlation = report.parameter_summary(posterior, units)
    else:
        values = problem.values(result.u)
        parameters = {k: dict(value=float(v), std=None, units=units.get(k, "")) for k, v in values.items()}
        correlation = None
    return dict(
        parameters=parameters,
        correlation=correlation,
        metrics=outcome.metrics,
        cost=result.cost(),
        sampler=None if samples is None else report.sampler_summary(samples, posterior),
    )
