"""Hintereisferner with OGGM 1.6.3's calibrated monthly temperature-index parameters,
against the WGMS annual balances: the baseline the assimilation issue must beat.

    python experiments/hintereisferner.py [--figure out.png]

Inputs (the package's `hintereisferner_*` samples, OGGM sample data and WGMS): OGGM's monthly
HISTALP climate at its reference point (ref_hgt 3160 m), the 56-band elevation-band
flowline (band area = width x dx) and `mb_calib.json` (melt factor 6.594952...,
precipitation factor 2.5, no temperature bias). Calendar years, 365/12 days per month,
as in OGGM 1.6.3. Compared with the WGMS annual balance 1953-2002 (the years the climate
covers). Prints RMSE, bias and correlation, and returns them with the series.
"""

import argparse
import json

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

import cryograd as cg

P = cg.physics
FILES = cg.data.sample_path("hintereisferner_climate").parent
PERIOD = (1953, 2002)


def climate(path=FILES / "climate_historical_hef_histalp.nc") -> xr.Dataset:
    """OGGM's climate file as the SMB models' climate (temperature, precipitation, reference elevation)."""
    return cg.data.open_climate(path)


def glacier() -> P.Hypsometry:
    """OGGM's 56-band elevation-band flowline (band area = width x dx)."""
    return cg.data.load_sample("hintereisferner_flowline")


def model() -> P.MonthlyTemperatureIndex:
    calib = cg.data.load_sample("hintereisferner_mb_calib")
    params = calib["mb_global_params"]
    return P.MonthlyTemperatureIndex(
        melt_factor=calib["melt_f"],
        precipitation_factor=calib["prcp_fac"],
        temperature_bias=calib["temp_bias"],
        melt_threshold=params["temp_melt"],
        solid_threshold=params["temp_all_solid"],
        liquid_threshold=params["temp_all_liq"],
        lapse_rate=params["temp_default_gradient"],
        days_per_month="constant",
        year_start_month=1,
    )


def wgms(path=FILES / "wgms_mbdata_491_hintereisferner.csv") -> pd.Series:
    table = pd.read_csv(path)
    return table.set_index("YEAR")["ANNUAL_BALANCE"].dropna()


def run():
    mb = model().simulate(glacier(), climate())
    modelled = mb.specific_mass_balance.to_series()
    observed = wgms()
    years = [y for y in range(PERIOD[0], PERIOD[1] + 1) if y in observed.index and y in modelled.index]
    m, o = modelled.loc[years].values, observed.loc[years].values
    stats = dict(
        n=len(years),
        rmse=float(np.sqrt(np.mean((m - o) ** 2))),
        bias=float(np.mean(m - o)),
        r=float(np.corrcoef(m, o)[0, 1]),
        modelled_mean=float(m.mean()),
        observed_mean=float(o.mean()),
    )
    return stats, modelled, observed


def plot(modelled, observed, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4))
    axis.plot(modelled.index, modelled.values, color="tab:red", lw=1, label="cryograd (OGGM 1.6.3 parameters)")
    axis.plot(observed.index, observed.values, "k.-", lw=0.8, label="WGMS annual balance")
    axis.axhline(0, color="0.6", lw=0.5)
    axis.set_xlim(1900, 2021)
    axis.set_ylabel("specific mass balance [kg m-2]")
    axis.set_title("Hintereisferner: monthly temperature index, HISTALP")
    axis.legend(loc="lower left")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def evolution(start="1950-01-01", end="2002-12-01", temperature_bias=0.0):
    """The glacier's geometry through time with the same parameters: `DeltaH` from a
    volume-area initial thickness (xr.Dataset of `DeltaH.simulate`)."""
    mass_balance = eqx.tree_at(lambda m: m.temperature_bias, model(), jnp.asarray(float(temperature_bias)))
    return P.DeltaH(mass_balance).simulate(glacier(), climate().sel(time=slice(start, end)))


def plot_evolution(path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for bias, color in ((0.0, "tab:blue"), (1.0, "tab:orange"), (2.0, "tab:red")):
        out = evolution(temperature_bias=bias)
        years = np.concatenate([[out.year.values[0] - 1], out.year.values])
        label = f"temperature bias {bias:+.0f} K"
        volume = np.concatenate([[float(out.initial_volume)], out.volume.values]) / 1e9
        area = np.concatenate([[float(out.initial_area)], out.area.values]) / 1e6
        axes[0].plot(years, volume, color=color, label=label)
        axes[1].plot(years, area, color=color, label=label)
        if bias == 0.0:
            thickness = out.thickness.values
            z = out.elevation.values
            for index, style in ((0, "-"), (len(out.year) // 2, "--"), (-1, ":")):
                axes[2].plot(thickness[index], z, "k" + style, lw=1, label=f"end of {out.year.values[index]}")
    axes[0].set_ylabel("ice volume [km3]")
    axes[1].set_ylabel("glacier area [km2]")
    axes[2].set_xlabel("ice thickness [m]")
    axes[2].set_ylabel("band elevation [m]")
    for axis in axes[:2]:
        axis.set_xlabel("year")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("Hintereisferner, Δh-parameterisation with OGGM 1.6.3 parameters (HISTALP)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", default=None)
    parser.add_argument("--evolution-figure", default=None, help="volume, area and thickness 1950-2002 (DeltaH)")
    args = parser.parse_args()
    stats, modelled, observed = run()
    print(json.dumps({k: round(v, 3) for k, v in stats.items()}))
    if args.figure:
        plot(modelled, observed, args.figure)
    if args.evolution_figure:
        out = evolution()
        print(
            f"DeltaH 1950-2002: volume {float(out.initial_volume) / 1e9:.3f} -> {float(out.volume[-1]) / 1e9:.3f} km3, "
            f"area {float(out.initial_area) / 1e6:.2f} -> {float(out.area[-1]) / 1e6:.2f} km2"
        )
        plot_evolution(args.evolution_figure)


if __name__ == "__main__":
    main()
