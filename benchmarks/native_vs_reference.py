"""The native solver against the converged JAX solver over 20 years at two real sites;
prints one JSON object.

    python benchmarks/native_vs_reference.py
    python benchmarks/native_vs_reference.py --time-scheme euler --conductivity lagged

Sites (issue 24's accuracy point "against the converged reference at the same steps"):

- the GIPL2 example station (`load_sample("gipl_station")`): its soil column with GIPL's
  power-law unfrozen water per layer and its snow (prescribed conductivity), driven by its
  first two years of daily air temperature, snow depth and snow conductivity repeated ten
  times, from its initial profile;
- Samoylov Island (`experiments/samoylov.py`'s column: Dall'Amico freezing, a snowpack from
  the SWE and density series), 1979-1998 of its ERA5-fitted daily forcing, from the steady
  geotherm under -8 degC.

Both solvers take the same daily steps of the same scheme; the JAX solver iterates Newton to
round-off on the exact curve, the native one solves the same steps with the curve's table
(`Tabulated`). Reported per site: the largest difference of the active-layer thickness of
any year [m] (thaw depth from the liquid fraction), the RMS and largest difference of the
daily temperatures of all cells [K], and both solvers' wall time (after compilation).
"""

import argparse
import importlib.util
import json
import pathlib
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import cryograd as cg

P = cg.physics
DAY = 86400.0
ROOT = pathlib.Path(__file__).resolve().parent.parent


def _samoylov_module():
    spec = importlib.util.spec_from_file_location("samoylov", ROOT / "experiments" / "samoylov.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gipl_site(years):
    station = cg.data.load_sample("gipl_station")
    column = cg.data.gipl_column(station)
    days = 730
    forcing = {
        name: jnp.asarray(np.tile(station[name].values[:days], -(-365 * years // days))[: 365 * years])
        for name in column.surface.forcing_variables
    }
    profile = cg.data.gipl_initial_temperature(station)
    initial = jnp.asarray(np.interp(np.asarray(column.grid.centres), profile.depth.values, profile.values))
    return column, forcing, initial


def samoylov_site(years):
    module = _samoylov_module()
    column = module.column()
    data = cg.data.open_cryogrid_forcing(module.DEFAULT).sel(time=slice("1979-01-01", f"{1978 + years}-12-31"))
    data["snow_conductivity"] = ("time", np.full(data.sizes["time"], module.SNOW_CONDUCTIVITY))
    forcing = {name: jnp.asarray(data[name].values) for name in column.surface.forcing_variables}
    bare = eqx.tree_at(lambda c: c.surface, column, P.Prescribed())
    initial = P.steady_state_temperature(bare, module.INITIAL_GEOTHERM)
    return column, forcing, initial


def compare(column, forcing, initial, options):
    runs, seconds = {}, {}
    for solver in ("jax", "native"):
        col = column.replace(solver=solver, **options)

        @eqx.filter_jit
        def run(c):
            out = c.run(forcing, initial, DAY)
            depth = P.thaw_depth(out["temperature"], out["liquid_water_fraction"], c.grid.edges)
            return out["temperature"], depth, out["unconverged_steps"]

        jax.block_until_ready(run(col))
        start = time.perf_counter()
        runs[solver] = [np.asarray(x) for x in run(col)]
        seconds[solver] = time.perf_counter() - start
    (t_ref, d_ref, missed_ref), (t_nat, d_nat, missed_nat) = runs["jax"], runs["native"]
    n_years = d_ref.size // 365
    alt_ref = d_ref[: 365 * n_years].reshape(n_years, 365).max(axis=1)
    alt_nat = d_nat[: 365 * n_years].reshape(n_years, 365).max(axis=1)
    difference = t_nat - t_ref
    return dict(
        years=n_years,
        cells=int(t_ref.shape[1]),
        active_layer_thickness_m=[round(float(a), 4) for a in alt_ref],
        alt_max_difference_m=float(np.abs(alt_nat - alt_ref).max()),
        temperature_rms_difference_K=float(np.sqrt(np.mean(difference**2))),
        temperature_max_difference_K=float(np.abs(difference).max()),
        unconverged_steps=dict(jax=float(missed_ref), native=float(missed_nat)),
        seconds=dict(jax=round(seconds["jax"], 3), native=round(seconds["native"], 3)),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--time-scheme", default="bdf2", choices=("euler", "bdf2"))
    parser.add_argument("--conductivity", default="predicted", choices=("lagged", "predicted"))
    args = parser.parse_args()
    options = dict(time_scheme=args.time_scheme, conductivity=args.conductivity)
    results = dict(options=options, machine=str(jax.devices()[0]))
    for name, site in (("gipl_station", gipl_site), ("samoylov", samoylov_site)):
        results[name] = compare(*site(args.years), options)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
