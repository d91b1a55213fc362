"""Calibration wall time per glacier: 3 parameters per glacier fitted jointly to geodetic
rates and one GRACE-like series, with a Laplace posterior; prints one JSON object.

    python benchmarks/glacier_calibration.py                      # 1,000 and 10,000 glaciers
    python benchmarks/glacier_calibration.py --glaciers 2000 --repeats 5

The region, observations and settings are experiments/glacier_region_twin_scale.toml's, with
the GRACE error scaled with the number of glaciers (the same error of the regional
balance). For each size it times, after compilation: the loss (one forward run of every
glacier), its gradient by members and in reverse mode (medians of `--repeats`); then the
whole L-BFGS fit and the member-block Laplace posterior.

If `oggm` (1.6.3) is importable, the equivalent OGGM calibration is timed beside it: the
melt factor of one glacier found by `scipy.optimize.brentq` on `MonthlyTIModel`'s specific
balance over 1983-2002 against a geodetic value, as `mb_calibration_from_scalar_mb` does
(Hintereisferner's climate and elevation-band flowline, the files of benchmarks/smb.py).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from cryograd import assimilation as A
from cryograd._run.glacier_region_twin import RegionTwin
from cryograd._timing import median_seconds

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "experiments" / "glacier_region_twin_scale.toml"


def cryograd_calibration(n, repeats):
    config = tomllib.loads(CONFIG.read_text())
    config["synthetic"]["glaciers"] = n
    config["observations"]["grace"]["sigma"] *= n / 10_000
    tick = time.perf_counter()
    twin = RegionTwin(config)
    problem = twin.problem()
    setup = time.perf_counter() - tick
    u = jnp.asarray(problem.u0)
    loss = jax.jit(problem.loss)
    by_members = jax.jit(problem.loss_and_gradient_by_members)
    reverse = jax.jit(jax.value_and_grad(problem.loss))
    times = {
        name: median_seconds(function, u, repeats=repeats, budget=60.0)
        for name, function in (("loss", loss), ("gradient_by_members", by_members), ("gradient_reverse", reverse))
    }
    tick = time.perf_counter()
    fitted = A.fit(problem, "lbfgs", max_steps=1000, progress=False)
    fit = time.perf_counter() - tick
    tick = time.perf_counter()
    posterior = A.laplace_by_members(problem, fitted.u)
    laplace = time.perf_counter() - tick
    truth = np.concatenate([np.asarray(twin.truth_values[p.name]) for p in problem.parameters])
    z = (posterior.mean - truth) / posterior.std
    return dict(
        glaciers=n,
        unknowns=problem.size,
        setup_s=round(setup, 2),
        loss_s=round(times["loss"], 4),
        gradient_by_members_s=round(times["gradient_by_members"], 4),
        gradient_reverse_s=round(times["gradient_reverse"], 4),
        gradient_by_members_over_loss=round(times["gradient_by_members"] / times["loss"], 2),
        gradient_reverse_over_loss=round(times["gradient_reverse"] / times["loss"], 2),
        fit_s=round(fit, 2),
        fit_steps=fitted.steps,
        fit_model_runs=fitted.model_runs,
        fit_converged=fitted.converged,
        laplace_s=round(laplace, 2),
        fit_and_laplace_per_glacier_ms=round(1e3 * (fit + laplace) / n, 3),
        within_2_std=round(float(np.mean(np.abs(z) <= 2)), 4),
    )


def oggm_calibration_seconds(repeats):
    try:
        from oggm.core.massbalance import MonthlyTIModel
        from scipy.optimize import brentq
    except ImportError:
        return None
    sys.path.insert(0, str(Path(__file__).parent))
    import pandas as pd
    from oggm import cfg
    from smb import FILES, StandIn

    cfg.initialize_minimal()
    model = MonthlyTIModel(StandIn())
    flowline = pd.read_csv(FILES / "elevation_band_flowline.csv")
    heights, widths = flowline.surface_h_m.values, flowline.width_m.values
    years = np.arange(1983, 2003)  # the 20 years before the end of the sample climate
    target = -1000.0  # kg m-2 yr-1, a geodetic value

    def misfit(melt_factor):
        model.melt_f = melt_factor
        return np.mean(model.get_specific_mb(heights=heights, widths=widths, year=years)) - target

    times, roots, calls = [], [], []
    for _ in range(repeats):
        counter = [0]

        def counted(m, counter=counter):
            counter[0] += 1
            return misfit(m)

        tick = time.perf_counter()
        roots.append(brentq(counted, 1.5, 17.0, xtol=1e-2))  # melt factor bounds of OGGM 1.6.3, to 0.01
        times.append(time.perf_counter() - tick)
        calls.append(counter[0])
    return dict(
        seconds_per_glacier=statistics.median(times),
        melt_factor=roots[0],
        model_calls=calls[0],
        note="brentq over MonthlyTIModel.get_specific_mb, one parameter, no uncertainty",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glaciers", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    result = dict(
        machine=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(),
        device=str(jax.devices()[0]),
        cryograd=[cryograd_calibration(n, args.repeats) for n in args.glaciers],
    )
    oggm = oggm_calibration_seconds(args.repeats)
    if oggm is not None:
        result["oggm_root_finding"] = oggm
        largest = result["cryograd"][-1]
        result["oggm_seconds_for_the_largest_region"] = round(oggm["seconds_per_glacier"] * largest["glaciers"], 1)
        result["cryograd_over_oggm_per_glacier"] = round(
            largest["fit_and_laplace_per_glacier_ms"] / (1e3 * oggm["seconds_per_glacier"]), 3
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
