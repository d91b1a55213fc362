"""Forward run at the GIPL2 example station (Alaska) with the station's own parameters.

    python experiments/gipl_station.py [path/to/gipl_station_folder] [--figure out.png]

Everything comes from the station folder, nothing is fitted: the six soil layers (water
content, GIPL unfrozen-water curve a and b, thawed/frozen heat capacity and conductivity,
thickness), the grid nodes below the ground surface as cell edges, the initial profile
(its deepest value held below 1.11 m), and the daily air temperature, snow depth and snow
conductivity. Snow uses GIPL2's volumetric heat capacity 8.4e5 J m-3 K-1 and resolves the
pack as 5 cells; snow thinner than 1 cm is ignored. The forcing starts on 2008-07-01 (the
files carry day numbers only). Day d's forcing drives the step that ends day d, compared
with day d's measured mean at the 12 measured depths (0-1.15 m).

Prints one line per depth (MAE, RMSE, bias [K], n days), the mean MAE, and returns the table.
"""

import argparse

import xarray as xr
from _metrics import error_table

import cryograd as cg

P = cg.physics
DEFAULT = cg.data.sample_path("gipl_station")
START = "2008-07-01"


def column(station: xr.Dataset, snow: P.Snow | None = None) -> P.PermafrostColumn:
    """The station's column (its layers, PowerLaw curve per layer, nodes as edges)."""
    return cg.data.gipl_column(station, snow)


def initial_profile(station: xr.Dataset) -> xr.DataArray:
    """The station's initial temperatures below the ground surface [degC] over depth."""
    return cg.data.gipl_initial_temperature(station)


def run(path=DEFAULT, snow: P.Snow | None = None):
    station = cg.data.open_gipl_station(path, start=START)
    col = column(station, snow)
    forcing = station[list(col.surface.forcing_variables)]
    # GIPL2 holds the deepest initial value (1.11 m) down the whole column; so does this run
    out = col.simulate(forcing, initial_temperature=initial_profile(station), below="hold")
    measured = station.ground_temperature
    depths = measured.depth.values
    # Cell centres start 0.5 mm down; the surface value is taken from the top cell.
    modelled = out.temperature.interp(depth=depths, kwargs=dict(fill_value="extrapolate"))
    return error_table(modelled, measured, depths), modelled, measured, station


def plot(modelled, measured, station, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(5, 1, figsize=(9, 11), sharex=True)
    axes[0].plot(station.time, station.air_temperature, color="0.5", lw=0.8, label="air")
    axes[0].set_ylabel("air T [°C]")
    twin = axes[0].twinx()
    twin.fill_between(station.time, station.snow_depth, color="tab:blue", alpha=0.3, label="snow depth")
    twin.set_ylabel("snow depth [m]")
    for axis, depth in zip(axes[1:], [0.0, 0.14, 0.44, 1.15], strict=True):
        axis.plot(measured.time, measured.sel(depth=depth, method="nearest"), color="k", lw=1, label="measured")
        axis.plot(modelled.time, modelled.sel(depth=depth, method="nearest"), color="tab:red", lw=1, label="cryograd")
        axis.set_ylabel(f"T at {depth:g} m [°C]")
        axis.grid(alpha=0.3)
    axes[1].legend(loc="upper right")
    axes[0].set_title("GIPL2 example station: station parameters, no calibration")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=DEFAULT)
    parser.add_argument("--figure", default=None)
    args = parser.parse_args()
    table, modelled, measured, station = run(args.path)
    print(f"run {str(modelled.time.values[0])[:10]} .. {str(modelled.time.values[-1])[:10]}")
    print(table.round(3).to_string())
    print(f"mean MAE over {len(table)} depths: {table.mae.mean():.3f} K")
    if args.figure:
        plot(modelled, measured, station, args.figure)


if __name__ == "__main__":
    main()
