"""Throughput of the Kudryavtsev and TTOP equilibrium models; prints one JSON object.

    python benchmarks/equilibrium.py --cells 1000000 --years 1

Random cells (air temperature -15..2 degC, amplitude 10-25 K, snow 0-0.8 m, water content
0.1-0.5), one jitted elementwise call; median of `--repeats` runs after a warm-up. If
permamodel (0.2.3) is importable, its vectorised `Ku_model` runs the same cells, one year
per `run_one_step`, for the ratio.
"""

import argparse
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

import cryograd as cg
from cryograd._timing import median_seconds

P = cg.physics


def permamodel_seconds(air, amplitude, snow, water, repeats):
    try:
        import xarray as xr
        from permamodel.components.Ku import Ku_model
    except ImportError:
        return None
    years, n = air.shape
    model = Ku_model()
    model.number_of_years, model.grid_shape = years, [1, n]
    model.constants = dict(uwc=0.05, snow_heat_capacity=2090.0, sec_per_a=31556926.0, latent_heat=3.34e5)
    fields = dict(
        air_temperature=air,
        temperature_amplitude=amplitude,
        snow_thickness=snow,
        soil_water_content=water,
        snow_density=np.full_like(air, 250.0),
        frozen_vegetation_height=np.zeros_like(air),
        thawed_vegetation_height=np.zeros_like(air),
        frozen_vegetation_diffusivity=np.full_like(air, 2.39e-6),
        thawed_vegetation_diffusivity=np.full_like(air, 1.0556e-6),
    )
    for name, value in fields.items():
        setattr(model, name, xr.DataArray(value[:, None, :], dims=["time", "y", "x"]))
    model.soils = {
        "silt": dict(
            heat_capacity=1300.0,
            bulk_density=1400.0,
            conductivity_thawed_dry=1.05,
            conductivity_frozen_dry=1.25,
            fraction=xr.DataArray(np.ones((years, 1, n)), dims=["time", "y", "x"]),
        )
    }

    def run():
        for t in range(years):
            model.run_one_step(t)

    return median_seconds(run, repeats=repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--years", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.years, args.cells)
    air, amplitude = rng.uniform(-15, 2, shape), rng.uniform(10, 25, shape)
    snow, water = rng.uniform(0, 0.8, shape), rng.uniform(0.1, 0.5, shape)
    arrays = [jnp.asarray(a) for a in (air, amplitude, snow, water)]

    @jax.jit
    def kudryavtsev(air, amplitude, snow, water):
        soil = P.kudryavtsev_soil(water, [1.0], [1400.0], [1300.0], [1.05], [1.25])
        return P.Kudryavtsev(**soil, water_content=water)(air, amplitude, snow)["active_layer_thickness"]

    @jax.jit
    def ttop(air, amplitude, snow, water):
        return P.ttop(amplitude * 100.0, (amplitude - air) * 120.0, 0.9, 0.5, 0.7)

    cell_years = args.cells * args.years
    results = dict(cells=args.cells, years=args.years, cpu_count=os.cpu_count(), devices=jax.local_device_count())
    for name, function in (("kudryavtsev", kudryavtsev), ("ttop", ttop)):
        seconds = median_seconds(lambda f=function: jax.block_until_ready(f(*arrays)), repeats=args.repeats)
        results[name] = dict(seconds=seconds, microseconds_per_cell_year=1e6 * seconds / cell_years)
    reference = permamodel_seconds(air, amplitude, snow, water, args.repeats)
    if reference is not None:
        results["permamodel_kudryavtsev"] = dict(
            seconds=reference,
            microseconds_per_cell_year=1e6 * reference / cell_years,
            ratio_to_cryograd=reference / results["kudryavtsev"]["seconds"],
        )
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
