"""Forward run at the Arctic Village borehole (GTN-P 755, Alaska) driven by its measured 0 m temperature.

    python experiments/arctic_village.py [path/to/B755-Arctic_Village-Dataset.csv] [--figure out.png]

The hourly record (2007-03-28 .. 2009-04-25, 0-5 m) is averaged to days (a day needs 20 of
24 hours). The 0 m series has an 83-day gap in 2008, so the run covers its longest stretch
without a missing day, 2007-03-29 .. 2008-02-06 (nothing is interpolated). The column
starts from the first day's measured profile (the 5 m value held below 5 m), is forced by the
daily 0 m temperature, and is compared with the daily means at 0.5-5 m where they exist. Soil parameters are
generic, not calibrated: 0.15 m of saturated-to-half organic soil over saturated silty
mineral soil (porosity 0.35), free-water freezing, 0.053 W m-2 geothermal flux.
Prints one line per depth (MAE, RMSE, bias [K], n days) and returns the table.
"""

import argparse

import numpy as np
import xarray as xr
from _metrics import error_table

import cryograd as cg

P = cg.physics
DEFAULT = cg.data.sample_path("arctic_village")
DEPTHS = [0.5, 1.0, 2.0, 3.0, 4.0, 5.0]


def daily_means(hourly: xr.DataArray, minimum_hours: int = 20) -> xr.DataArray:
    """Daily means [degC] of an hourly series; NaN for days with fewer than `minimum_hours` values."""
    resampled = hourly.resample(time="1D")
    return resampled.mean().where(resampled.count() >= minimum_hours)


def column() -> P.PermafrostColumn:
    layers = [
        P.SoilLayer.from_composition(top=0.0, porosity=0.8, saturation=0.5, organic=0.15),
        P.SoilLayer.from_composition(top=0.15, porosity=0.35, saturation=1.0),
    ]
    return P.PermafrostColumn(grid=P.Grid.geometric(depth=30.0, n=100, dz_top=0.02), layers=layers)


def run(path=DEFAULT):
    measured = daily_means(cg.data.open_gtnp(path).ground_temperature)
    # The run covers the longest stretch of the 0 m series without a missing day
    # (2007-03-29 .. 2008-02-06 in this file); nothing is interpolated.
    surface = measured.sel(depth=0.0)
    valid = np.r_[0, surface.notnull().values.astype(int), 0]
    edges = np.flatnonzero(np.diff(valid))
    starts, ends = edges[::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    period = slice(int(starts[longest]), int(ends[longest]))
    measured, surface = measured.isel(time=period), surface.isel(time=period)
    forcing = xr.Dataset({"surface_temperature": surface.assign_attrs(units="degC")})
    # simulate interpolates the profile to cell centres; below 5 m the 5 m value is held.
    initial = measured.isel(time=0).dropna("depth").drop_vars("time")
    out = column().simulate(forcing, initial_temperature=initial, below="hold")
    # Day d's mean forcing drives the step that ends with day d; it is compared with day d's mean.
    modelled = out.temperature.interp(depth=DEPTHS)
    observed = measured.sel(depth=DEPTHS).sel(time=out.time)
    table = error_table(modelled, observed, DEPTHS)
    return table, modelled, observed


def plot(modelled, observed, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    for axis, depth in zip(axes, [0.5, 1.0, 2.0, 5.0], strict=True):
        axis.plot(observed.time, observed.sel(depth=depth), color="k", lw=1, label="measured (daily mean)")
        axis.plot(modelled.time, modelled.sel(depth=depth), color="tab:red", lw=1, label="cryograd")
        axis.set_ylabel(f"T at {depth:g} m [°C]")
        axis.grid(alpha=0.3)
    axes[0].legend(loc="upper right")
    axes[0].set_title("Arctic Village borehole (GTN-P 755): forced by measured 0 m temperature")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=DEFAULT)
    parser.add_argument("--figure", default=None)
    args = parser.parse_args()
    table, modelled, observed = run(args.path)
    print(f"run {str(modelled.time.values[0])[:10]} .. {str(modelled.time.values[-1])[:10]}")
    print(table.round(3).to_string())
    if args.figure:
        plot(modelled, observed, args.figure)


if __name__ == "__main__":
    main()
