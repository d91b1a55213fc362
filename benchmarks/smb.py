"""Throughput of the monthly temperature-index SMB over a region; prints one JSON object.

    python benchmarks/smb.py                                  # 10,000 glaciers x 50 bands x 20 years
    python benchmarks/smb.py --glaciers 1000 --years 20 --repeats 5

Synthetic region: band elevations spread over 400-1,500 m per glacier between 2,000 and
3,800 m, random areas, an Alpine-like monthly climate per glacier (seasonal temperature
with interannual noise, 50-200 kg m-2 per month). The whole region is one jitted, vmapped
call of `MonthlyTemperatureIndex.run`; the time is the median of `--repeats` runs after a
warm-up. If `oggm` (1.6.3) is importable, its `MonthlyTIModel.get_specific_mb` runs on the
Hintereisferner inputs in tests/data/files for the same number of years, as the per
glacier-year comparison measured in the same run.
"""

import argparse
import json
import os
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import cryograd as cg
from cryograd._timing import median_seconds

P = cg.physics
FILES = cg.data.sample_path("hintereisferner_climate").parent


def region(n_glaciers, n_bands, years, seed=0):
    rng = np.random.default_rng(seed)
    top = rng.uniform(3000, 3800, (n_glaciers, 1))
    span = rng.uniform(400, 1500, (n_glaciers, 1))
    elevation = top - span * np.linspace(0, 1, n_bands)[None, :]
    area = rng.uniform(1e4, 1e6, (n_glaciers, n_bands))
    months = 12 * years
    month = np.tile(np.arange(1, 13), years)
    temperature = (
        rng.uniform(-6, 0, (n_glaciers, 1))
        - 9 * np.cos(2 * np.pi * (month - 1) / 12)[None, :]
        + rng.normal(0, 1.5, (n_glaciers, months))
    )
    precipitation = rng.uniform(50, 200, (n_glaciers, months))
    climate = dict(
        temperature=jnp.asarray(temperature),
        precipitation=jnp.asarray(precipitation),
        reference_elevation=jnp.asarray(rng.uniform(2500, 3500, n_glaciers)),
    )
    calendar = dict(month=jnp.asarray(month), days=jnp.asarray(np.full(months, 30.4)))
    return P.Hypsometry(elevation, area), climate, calendar


class StandIn:
    """What OGGM's MonthlyTIModel reads from a GlacierDirectory: Hintereisferner's files."""

    hemisphere = "nh"
    rgi_id = "RGI60-11.00897"

    def get_filepath(self, name, filesuffix="", **kwargs):
        return str(FILES / "climate_historical_hef_histalp.nc")

    def read_json(self, name, filesuffix="", **kwargs):
        return json.loads((FILES / "mb_calib.json").read_text())

    def get_climate_info(self, **kwargs):
        return dict(baseline_climate_source=self.read_json("mb_calib")["baseline_climate_source"])


def oggm_seconds_per_glacier_year(years, repeats):
    try:
        import pandas as pd
        from oggm import cfg
        from oggm.core.massbalance import MonthlyTIModel
    except ImportError:
        return None

    cfg.initialize_minimal()
    model = MonthlyTIModel(StandIn())
    flowline = pd.read_csv(FILES / "elevation_band_flowline.csv")
    heights, widths = flowline.surface_h_m.values, flowline.width_m.values
    span = np.arange(1980, 1980 + min(years, 23))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.get_specific_mb(heights=heights, widths=widths, year=span)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / span.size, int(heights.size)


def delta_h_seconds(n_glaciers, n_bands, years):
    """The Δh evolution of the same region over `years`: one timed run after compilation."""
    glacier, climate, calendar = region(n_glaciers, n_bands, years, seed=1)
    evolution = P.DeltaH(P.MonthlyTemperatureIndex(melt_factor=6.0, precipitation_factor=2.0))

    @eqx.filter_jit
    def run(evolution, glacier, climate):
        one = lambda g, c: evolution.run(g, dict(c, **calendar))  # noqa: E731
        out = jax.vmap(one)(glacier, climate)
        return out["volume"], out["initial_volume"], out["area"]

    start = time.perf_counter()
    jax.block_until_ready(run(evolution, glacier, climate))
    first = time.perf_counter() - start
    seconds = median_seconds(run, evolution, glacier, climate, repeats=1)
    volume, initial, area = (np.asarray(x) for x in run(evolution, glacier, climate))
    return dict(
        years=years,
        seconds=seconds,
        seconds_with_compilation=first,
        microseconds_per_glacier_year=1e6 * seconds / (n_glaciers * years),
        finite=bool(np.isfinite(volume).all() and np.isfinite(area).all()),
        volume_change_percent=float(100 * (volume[:, -1].sum() / initial.sum() - 1)),
        glaciers_gone=int((volume[:, -1] == 0).sum()),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glaciers", type=int, default=10_000)
    parser.add_argument("--bands", type=int, default=50)
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--evolution-years", type=int, default=50, help="years of the Δh run (0: skip it)")
    args = parser.parse_args()
    glacier, climate, calendar = region(args.glaciers, args.bands, args.years)
    model = P.MonthlyTemperatureIndex(melt_factor=6.0, precipitation_factor=2.0)

    @eqx.filter_jit
    def run(model, glacier, climate):
        one = lambda g, c: model.run(g, dict(c, **calendar))["specific_mass_balance"]  # noqa: E731
        return jax.vmap(one)(glacier, climate)

    seconds = median_seconds(run, model, glacier, climate, repeats=args.repeats)
    glacier_years = args.glaciers * args.years
    result = dict(
        glaciers=args.glaciers,
        bands=args.bands,
        years=args.years,
        device=str(jax.devices()[0]),
        cpu_count=os.cpu_count(),
        monthly_ti=dict(seconds=seconds, microseconds_per_glacier_year=1e6 * seconds / glacier_years),
    )
    if args.evolution_years:
        result["delta_h"] = delta_h_seconds(args.glaciers, args.bands, args.evolution_years)
    oggm = oggm_seconds_per_glacier_year(args.years, args.repeats)
    if oggm is not None:
        per_year, bands = oggm
        result["oggm_monthly_ti"] = dict(
            microseconds_per_glacier_year=1e6 * per_year,
            bands=bands,
            ratio_to_cryograd=per_year / (seconds / glacier_years),
        )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
