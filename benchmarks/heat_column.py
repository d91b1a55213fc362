"""Forward and gradient throughput of the soil column; prints one JSON object.

    python benchmarks/heat_column.py                       # 1, 64, 1024 columns, 20 years
    python benchmarks/heat_column.py --columns 1 64 --years 20 --gradient-columns 1 64
    python benchmarks/heat_column.py --snow                # air temperature over a snowpack

Columns have 100 layers (geometric grid to 30 m, 2 cm at the top, FreeWater: the
configuration of the Stefan verification), daily steps, a seasonal surface temperature
with noise. Forward keeps one profile per year; the gradient is of the mean squared
temperature at three depths. Times are the median of `--repeats` runs after a warm-up.
With `--snow` the same series is the air temperature over `Snow(density=250)` (5 snow
cells) with a snow depth that builds to 0.48 m in mid-January and is gone from late April
to October.
"""

import argparse
import json
import os
import platform
import resource

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import cryograd as cg
from cryograd._timing import median_seconds

P = cg.physics
DAY = 86400.0


def setup(n_columns, years, seed=0, snow=False):
    layers = [
        P.SoilLayer.from_composition(top=0.0, porosity=0.5, saturation=0.9, organic=0.2),
        P.SoilLayer.from_composition(top=0.3, porosity=0.4, saturation=1.0),
        P.SoilLayer.from_composition(top=2.0, porosity=0.3, saturation=1.0),
    ]
    surface_model = P.Snow(density=250.0) if snow else P.Prescribed()
    column = P.PermafrostColumn(
        grid=P.Grid.geometric(depth=30.0, n=100, dz_top=0.02), layers=layers, surface=surface_model
    )
    rng = np.random.default_rng(seed)
    day = np.arange(365 * years)
    mean = rng.uniform(-8, -2, (n_columns, 1))
    amplitude = rng.uniform(10, 20, (n_columns, 1))
    season = -np.cos(2 * np.pi * (day - 15) / 365)  # 1 in mid-January
    surface = mean + amplitude * season + rng.normal(0, 3, (n_columns, day.size))
    if snow:
        depth = np.broadcast_to(np.clip(0.4 * (season + 0.2), 0.0, None), surface.shape)
        forcing = dict(air_temperature=jnp.asarray(surface), snow_depth=jnp.asarray(depth))
    else:
        forcing = dict(surface_temperature=jnp.asarray(surface))
    return column, forcing, jnp.full(column.grid.n_cells, -3.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--gradient-columns", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--snow", action="store_true", help="Snow surface (air temperature and snow depth)")
    args = parser.parse_args()

    results = dict(
        machine=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(),
        devices=jax.local_device_count(),
        device=str(jax.devices()[0]),
        years=args.years,
        layers=100,
        snow=args.snow,
        forward={},
        gradient={},
    )
    for n in args.columns:
        column, surface, initial = setup(n, args.years, snow=args.snow)

        def forward(col, surface, initial=initial):
            run = lambda f: col.run(f, initial, DAY, save_every=365)["temperature"]  # noqa: E731
            return jax.vmap(run)(surface)

        seconds = median_seconds(eqx.filter_jit(forward), column, surface, repeats=args.repeats)
        results["forward"][n] = dict(
            seconds=seconds,
            column_years_per_second=n * args.years / seconds,
            layer_steps_per_second=n * 100 * 365 * args.years / seconds,
        )
        if n in args.gradient_columns:

            def loss(col, surface, initial=initial):
                def one(f):
                    out = col.run(f, initial, DAY)["temperature"]
                    return jnp.mean(out[:, jnp.array([10, 40, 70])] ** 2)

                return jnp.mean(jax.vmap(one)(surface))

            grad_seconds = median_seconds(eqx.filter_jit(eqx.filter_grad(loss)), column, surface, repeats=args.repeats)
            results["gradient"][n] = dict(
                seconds=grad_seconds,
                column_years_per_second=n * args.years / grad_seconds,
                ratio_to_forward=grad_seconds / seconds,
            )
    results["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
