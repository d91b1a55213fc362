"""Forward and gradient throughput of the soil column; prints one JSON object.

    python benchmarks/heat_column.py                       # 1, 64, 1024 columns, 20 years
    python benchmarks/heat_column.py --columns 1 64 --years 20 --gradient-columns 1 64
    python benchmarks/heat_column.py --snow                # air temperature over a snowpack
    python benchmarks/heat_column.py --c-reference ../shared/bench/heat_ref.c   # + the C loop's ratio
    python benchmarks/heat_column.py --solver jax --time-scheme euler --conductivity lagged

With `--c-reference` the plain C loop (one linearised implicit pass per day, columns
innermost) is compiled with gcc -O3 -march=native -ffast-math and run for the same column
counts and years in the same process, and each forward figure gets its `ratio_to_c`.
Newton statistics per run: mean iterations per step (averaged over columns), the most
iterations in a step, and the share of column-steps that missed the tolerance.

Columns have 100 layers (geometric grid to 30 m, 2 cm at the top, FreeWater: the
configuration of the Stefan verification), daily steps, a seasonal surface temperature
with noise. Forward keeps one profile per year; the gradient is of the mean squared
temperature at three depths of those yearly profiles. Times are the median of `--repeats` runs after a warm-up.
The C loop runs on one core; the native solver uses `--threads` threads (default all
cores), so a `--threads 1` run gives the ratio per core. With `--snow` the same series is
the air temperature over `Snow(density=250)` (5 snow cells) with a snow depth that builds
to 0.48 m in mid-January and is gone from late April to October.

`--output FILE` writes the JSON object after every measurement too (what a time limit
leaves). `peak_memory_mb` is the process's peak resident set; on a GPU,
`device_peak_memory_mb` is the device allocator's peak. On a machine without the data
layer's packages run it through `benchmarks/physics_only.py`.
"""

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import tempfile

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import cryograd as cg
from cryograd._timing import median_seconds

P = cg.physics
DAY = 86400.0


def setup(n_columns, years, seed=0, snow=False, **options):
    layers = [
        P.SoilLayer.from_composition(top=0.0, porosity=0.5, saturation=0.9, organic=0.2),
        P.SoilLayer.from_composition(top=0.3, porosity=0.4, saturation=1.0),
        P.SoilLayer.from_composition(top=2.0, porosity=0.3, saturation=1.0),
    ]
    surface_model = P.Snow(density=250.0) if snow else P.Prescribed()
    column = P.PermafrostColumn(
        grid=P.Grid.geometric(depth=30.0, n=100, dz_top=0.02), layers=layers, surface=surface_model, **options
    )
    rng = np.random.default_rng(seed)
    day = np.arange(365 * years)
    mean = rng.uniform(-8, -2, (n_columns, 1))
    amplitude = rng.uniform(10, 20, (n_columns, 1))
    season = -np.cos(2 * np.pi * (day - 15) / 365)  # -1 in mid-January (coldest)
    surface = mean + amplitude * season + rng.normal(0, 3, (n_columns, day.size))
    if snow:
        depth = np.broadcast_to(np.clip(0.4 * (0.2 - season), 0.0, None), surface.shape)  # winter snow
        forcing = dict(air_temperature=jnp.asarray(surface), snow_depth=jnp.asarray(depth))
    else:
        forcing = dict(surface_temperature=jnp.asarray(surface))
    return column, forcing, jnp.full(column.grid.n_cells, -3.0)


def c_reference(source, columns, years):
    """Column-years per second of the plain C loop at `source` for each column count."""
    binary = os.path.join(tempfile.mkdtemp(), "heat_ref")
    subprocess.run(["gcc", "-O3", "-march=native", "-ffast-math", source, "-o", binary, "-lm"], check=True)
    rates = {}
    for n in columns:
        runs = []
        for _ in range(3):
            printed = subprocess.run([binary, str(n), str(years)], check=True, capture_output=True, text=True).stdout
            runs.append(float(re.search(r"([0-9.]+) col-years/s", printed).group(1)))
        rates[n] = sorted(runs)[1]  # median of 3
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--gradient-columns", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--snow", action="store_true", help="Snow surface (air temperature and snow depth)")
    parser.add_argument("--c-reference", help="path of heat_ref.c (the plain C loop) to run beside")
    parser.add_argument(
        "--c-columns", type=int, nargs="+", help="column counts the C loop runs for (default: those of --columns)"
    )
    parser.add_argument("--output", help="also write the JSON object to this file, after every measurement")
    # the defaults are PermafrostColumn's
    parser.add_argument("--solver", choices=["auto", "jax", "native"], default="auto")
    parser.add_argument("--time-scheme", choices=["euler", "bdf2"], default="bdf2")
    parser.add_argument("--conductivity", choices=["lagged", "predicted"], default="predicted")
    parser.add_argument(
        "--threads", type=int, default=0, help="native solver's threads (CRYOGRAD_NATIVE_THREADS; 0: all cores)"
    )
    args = parser.parse_args()
    if args.threads > 0:
        os.environ["CRYOGRAD_NATIVE_THREADS"] = str(args.threads)
    threads = int(os.environ.get("CRYOGRAD_NATIVE_THREADS", 0)) or os.cpu_count()
    options = dict(solver=args.solver, time_scheme=args.time_scheme, conductivity=args.conductivity)

    results = dict(
        machine=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(),
        devices=jax.local_device_count(),
        device=str(jax.devices()[0]),
        device_kind=jax.devices()[0].device_kind,
        jax_version=jax.__version__,
        years=args.years,
        layers=100,
        snow=args.snow,
        **options,
        native_threads=None,
        forward={},
        gradient={},
    )

    def report():
        results["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stats = jax.devices()[0].memory_stats() or {}  # None on the CPU
        if "peak_bytes_in_use" in stats:
            results["device_peak_memory_mb"] = stats["peak_bytes_in_use"] / 2**20
        if args.output:
            with open(args.output, "w") as file:
                json.dump(results, file, indent=1)

    c_columns = args.c_columns or args.columns
    reference = c_reference(args.c_reference, c_columns, args.years) if args.c_reference else {}
    results["c_column_years_per_second"] = reference
    for n in args.columns:
        column, surface, initial = setup(n, args.years, snow=args.snow, **options)
        results["native_threads"] = threads if column.uses_native else None

        def forward(col, surface, initial=initial):
            def run(f):
                out = col.run(f, initial, DAY, save_every=365)
                return out["temperature"], out["mean_iterations"], out["max_iterations"], out["unconverged_steps"]

            return jax.vmap(run)(surface)

        jitted = eqx.filter_jit(forward)
        _, mean_iterations, max_iterations, unconverged = jitted(column, surface)  # also the warm-up
        seconds = median_seconds(jitted, column, surface, repeats=args.repeats, warm_up=False)
        results["forward"][n] = dict(
            seconds=seconds,
            column_years_per_second=n * args.years / seconds,
            layer_steps_per_second=n * 100 * 365 * args.years / seconds,
            newton_mean_iterations=float(np.mean(mean_iterations)),
            newton_max_iterations=float(np.max(max_iterations)),
            share_of_steps_not_converged=float(np.sum(unconverged)) / (n * 365 * args.years),
        )
        if n in reference:
            results["forward"][n].update(
                c_column_years_per_second=reference[n],
                ratio_to_c=n * args.years / seconds / reference[n],
            )
        report()
        if n in args.gradient_columns:

            def loss(col, surface, initial=initial):
                def one(f):
                    out = col.run(f, initial, DAY, save_every=365)["temperature"]
                    return jnp.mean(out[:, jnp.array([10, 40, 70])] ** 2)

                return jnp.mean(jax.vmap(one)(surface))

            grad_seconds = median_seconds(eqx.filter_jit(eqx.filter_grad(loss)), column, surface, repeats=args.repeats)
            results["gradient"][n] = dict(
                seconds=grad_seconds,
                column_years_per_second=n * args.years / grad_seconds,
                ratio_to_forward=grad_seconds / seconds,
            )
            report()
    report()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
