"""Enhanced temperature-index melt (Pellicciotti et al. 2005) on the Hintereisferner AWS
forcing of 2018-2019, checked against the winter snow pits.

    python experiments/hintereisferner_aws.py

Input (tests/data/files/hef_aws_2018, COSIPY's example): hourly 2 m air temperature,
precipitation and incoming shortwave radiation at 3,300 m from 2018-09-17, and snow-pit
depths at two pits (2,650 and 2,970 m) from February to July 2019.

Two traps are handled and reported, not hidden: the temperature sensor fails on
2019-06-10 (a 35 K jump in an hour, then 233-242 K in June), so the forcing is cut before
the first hourly jump larger than 20 K; and the radiation has small negative night-time
values (sensor offset), set to 0.

The model (default parameters: precipitation factor 1, the AWS precipitation at every
elevation) runs once over the record at the AWS and at the pit elevations; at each pit
date before the cut its snow + firn (all snow fallen since 2018-09-17) is divided by the
measured depth: the bulk snow density the model implies. Pits after the cut are left out.
"""

import pathlib

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

import cryograd as cg

P = cg.physics
FILES = pathlib.Path(__file__).parents[1] / "tests" / "data" / "files" / "hef_aws_2018"
JUMP = 20.0  # [K per hour] a temperature change no weather makes at an AWS


def forcing(path=FILES / "HEF_input.nc"):
    """Hourly climate for the mass-balance models, cut before the sensor failure; returns
    (climate, cut time or None, number of negative radiation values set to 0)."""
    with xr.open_dataset(path) as ds:
        ds = ds.squeeze(("south_north", "west_east")).load()
    jumps = np.flatnonzero(np.abs(np.diff(ds["T2"].values)) > JUMP)
    cut = ds.time.values[jumps[0]] if jumps.size else None
    if cut is not None:
        ds = ds.sel(time=slice(None, cut))
    shortwave = ds["G"].values
    negative = int((shortwave < 0).sum())
    climate = xr.Dataset(
        dict(
            temperature=("time", ds["T2"].values, dict(units="K")),
            precipitation=("time", ds["RRR"].values, dict(units="kg m-2")),  # mm per hour
            shortwave_radiation=("time", np.maximum(shortwave, 0.0), dict(units="W m-2")),
        ),
        coords=dict(time=ds.time.values),
        attrs=dict(reference_elevation=float(ds["HGT"])),
    )
    return climate, cut, negative


def pits(path=FILES / "data_stakes_hef.csv", locations=FILES / "loc_stakes.csv"):
    """Pit depth measurements [m] with the pit elevation [m] (long table)."""
    depths = pd.read_csv(path, sep="\t", parse_dates=["TIMESTAMP"]).replace(-9999, np.nan)
    elevation = pd.read_csv(locations, sep="\t").set_index("id")["elev"]
    table = depths.melt(id_vars="TIMESTAMP", var_name="pit", value_name="depth [m]").dropna()
    table["elevation [m]"] = table["pit"].map(elevation).astype(float)
    return table.sort_values(["pit", "TIMESTAMP"]).reset_index(drop=True)


def run(model=None, precipitation_factor=None):
    """One run of the whole record at the AWS and the two pits; returns the pit table,
    the season's balance terms, the cut and the clipped-radiation count."""
    model = P.EnhancedTemperatureIndex() if model is None else model
    if precipitation_factor is not None:
        model = eqx.tree_at(lambda m: m.precipitation_factor, model, jnp.asarray(float(precipitation_factor)))
    climate, cut, negative = forcing()
    table = pits()
    table = table[table.TIMESTAMP <= pd.Timestamp(cut)] if cut is not None else table
    elevations = [3300.0, *sorted(table["elevation [m]"].unique(), reverse=True)]
    out = model.simulate(P.Hypsometry(elevations, np.ones(len(elevations))), climate, series=True)
    pack = (out.snow_series + out.firn_series).assign_coords(band=elevations)  # all snow since the start
    swe = [float(pack.sel(time=t, band=z)) for t, z in zip(table.TIMESTAMP, table["elevation [m]"], strict=True)]
    table = table.assign(**{"modelled SWE [kg m-2]": swe})
    table["implied density [kg m-3]"] = table["modelled SWE [kg m-2]"] / table["depth [m]"]
    return dict(
        table=table, cut=None if cut is None else pd.Timestamp(cut), clipped_radiation_hours=negative, season=out
    )


def main():
    result = run()
    print(f"temperature sensor failure: forcing cut at {result['cut']}")
    print(f"negative shortwave values set to 0: {result['clipped_radiation_hours']} hours")
    print(result["table"].to_string(index=False, float_format="%.1f"))
    season = result["season"].sel(year=2019)
    terms = ["accumulation", "rain", "melt", "refreezing", "mass_balance", "snow", "firn"]
    print("\n2018-10-01 to the cut [kg m-2] by elevation [m]:")
    print(season[terms].to_dataframe()[terms].set_index(season.elevation.values).round(0).to_string())


if __name__ == "__main__":
    main()
