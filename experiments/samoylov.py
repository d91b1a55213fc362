"""Samoylov Island (Lena Delta) 1979-2020: a 42-year run over a snowpack, with spin-up,
reporting the active-layer thickness of every year.

    python experiments/samoylov.py [--forcing path.json] [--figure out.png]

Forcing: daily air temperature, snow water equivalent and snow density (ERA5 fitted to
the station; experiments/data), 1979-01-01 to 2020-12-31 (the file's lone 2021-01-01 is
dropped). The snowpack is `Snow(driver="swe", density=None, conductivity="prescribed")`:
depth and mass from the SWE and density series, 5 cells, and a snow conductivity of
0.25 W m-1 K-1 (SNOW_CONDUCTIVITY, a choice: the series' density is about 150 kg m-3
most of the winter, below the 156-600 kg m-3 range Sturm et al. 1997 fitted, and Sturm's
0.06 W m-1 K-1 there keeps the ground near 0 degC with thaw reaching about 8 m; wind-packed
tundra snow conducts more). The soil is a generic
polygonal-tundra profile (not calibrated): 0.15 m of saturated peat over ice-rich
organic silt (porosity 0.55) to 10 m and saturated sand below, with Dall'Amico freezing.
Spin-up: the first ten years (1979-1988) repeated until the ten-year mean profile changes
by less than 0.05 K, from the steady geotherm under -8 degC. Prints the ALT per year and
the run time.
"""

import argparse
import pathlib
import time

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import cryograd as cg

P = cg.physics
DEFAULT = pathlib.Path(__file__).parent / "data" / "samoylov_era5_fitted_daily_1979-2020.json"
SPIN_UP_YEARS = 10
SNOW_CONDUCTIVITY = 0.25
"""Snow thermal conductivity [W m-1 K-1] of the run (see the module docstring)."""
INITIAL_GEOTHERM = -8.0
"""Ground-surface temperature [degC] of the steady geotherm the spin-up starts from."""


def column() -> P.PermafrostColumn:
    layers = [
        P.SoilLayer.from_composition(top=0.0, porosity=0.8, saturation=1.0, organic=0.15),
        P.SoilLayer.from_composition(top=0.15, porosity=0.55, saturation=1.0, organic=0.05),
        P.SoilLayer.from_composition(top=10.0, porosity=0.3, saturation=1.0),
    ]
    return P.PermafrostColumn(
        grid=P.Grid.geometric(depth=50.0, n=80, dz_top=0.02),
        layers=layers,
        freeze_curve=P.DallAmico(alpha=[4.0, 2.0, 4.0], n=[2.0, 1.6, 2.0]),
        surface=P.Snow(density=None, driver="swe", conductivity="prescribed"),
        geothermal_flux=0.053,
    )


def run(path=DEFAULT, progress: bool = True):
    forcing_ds = cg.data.open_cryogrid_forcing(path).sel(time=slice("1979-01-01", "2020-12-31"))
    forcing_ds["snow_conductivity"] = ("time", np.full(forcing_ds.sizes["time"], SNOW_CONDUCTIVITY))
    col = column()
    forcing = {name: forcing_ds[name].values for name in col.surface.forcing_variables}
    start = time.perf_counter()
    cycle = {name: jnp.asarray(values[: 365 * SPIN_UP_YEARS]) for name, values in forcing.items()}
    geotherm = P.steady_state_temperature(eqx.tree_at(lambda c: c.surface, col, P.Prescribed()), INITIAL_GEOTHERM)
    initial, cycles = P.spin_up(col, cycle, geotherm, tolerance=0.05, max_cycles=30, progress=progress)
    spun = time.perf_counter() - start
    start = time.perf_counter()
    # a per-step progress bar needs the JAX solver; the native one runs the 42 years in seconds
    meter = diffrax.TqdmProgressMeter() if progress and not col.uses_native else None
    out = jax.jit(lambda f, t0: col.run(f, t0, 86400.0, progress_meter=meter))(
        {k: jnp.asarray(v) for k, v in forcing.items()}, initial
    )
    temperature = np.asarray(out["temperature"])
    elapsed = time.perf_counter() - start
    depth = P.thaw_depth(out["temperature"], out["liquid_water_fraction"], col.grid.edges)
    series = pd.Series(np.asarray(depth), index=forcing_ds.time.values)
    alt = series.groupby(series.index.year).max()
    snow = pd.Series(np.asarray(out["snow_depth"]), index=forcing_ds.time.values)
    info = dict(spin_up_cycles=cycles, spin_up_s=spun, run_s=elapsed, years=len(alt), cells=temperature.shape[1])
    return alt, snow, series, temperature, col, info


def plot(alt, snow, thaw, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=False)
    axes[0].bar(alt.index, alt.values, color="tab:brown")
    axes[0].set_ylabel("active-layer thickness [m]")
    axes[0].set_title("Samoylov 1979-2020 (ERA5 fitted forcing, generic soil, not calibrated)")
    axes[0].grid(alpha=0.3)
    window = slice("2010-01-01", "2012-12-31")
    axes[1].plot(thaw[window].index, -thaw[window].values, color="tab:red", label="thaw depth (negative down)")
    axes[1].fill_between(snow[window].index, snow[window].values, color="tab:blue", alpha=0.4, label="snow depth")
    axes[1].set_ylabel("[m]")
    axes[1].legend(loc="lower left")
    axes[1].grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forcing", default=DEFAULT)
    parser.add_argument("--figure", default=None)
    args = parser.parse_args()
    alt, snow, thaw, _, _, info = run(args.forcing)
    print(
        f"spin-up {info['spin_up_cycles']} cycles in {info['spin_up_s']:.1f} s; "
        f"{info['years']} years x {info['cells']} soil cells in {info['run_s']:.1f} s"
    )
    print("active-layer thickness [m] per year:")
    print(alt.round(3).to_string())
    print(
        f"mean {alt.mean():.3f} m, range {alt.min():.3f}-{alt.max():.3f} m, "
        f"trend {np.polyfit(alt.index, alt.values, 1)[0] * 10:.3f} m per decade"
    )
    if args.figure:
        plot(alt, snow, thaw, args.figure)


if __name__ == "__main__":
    main()
