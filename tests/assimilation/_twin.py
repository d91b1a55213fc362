"""A small twin problem: Hintereisferner's geometry and HISTALP climate, synthetic balances
from known parameters with seeded Gaussian noise."""

import numpy as np
import xarray as xr

import cryograd as cg

A = cg.assimilation
P = cg.physics
TRUTH = dict(melt_factor=5.2, precipitation_factor=1.8, temperature_bias=1.5)
SIGMA = dict(annual=80.0, winter=40.0, geodetic=30.0)


def forward(model, inputs):
    return model.run(inputs["glacier"], inputs["climate"])


def setup(start=1903, end=2002, seed=0):
    model = P.MonthlyTemperatureIndex(year_start_month=10)
    climate = cg.data.load_sample("hintereisferner_climate")
    arrays, years = model.climate_arrays(climate.sel(time=slice(f"{start - 1}-10-01", f"{end}-09-01")))
    inputs = dict(glacier=cg.data.load_sample("hintereisferner_flowline"), climate=arrays)
    truth = P.MonthlyTemperatureIndex(year_start_month=10, **TRUTH)
    out = forward(truth, inputs)
    rng = np.random.default_rng(seed)
    annual = np.asarray(out["specific_mass_balance"]) + rng.normal(0, SIGMA["annual"], years.size)
    winter = np.asarray(out["winter_balance"]) + rng.normal(0, SIGMA["winter"], years.size)
    geodetic = float(np.mean(out["specific_mass_balance"])) + rng.normal(0, SIGMA["geodetic"])
    table = xr.Dataset(
        dict(
            annual_balance=(("glacier", "year"), annual[None]),
            winter_balance=(("glacier", "year"), winter[None]),
            summer_balance=(("glacier", "year"), (annual - winter)[None]),
        ),
        coords=dict(glacier=[1], year=years),
    )
    observations = [
        A.glaciological_balances(table, years, kind="annual", sigma=SIGMA["annual"]),
        A.glaciological_balances(table, years, kind="winter", sigma=SIGMA["winter"]),
        A.geodetic_balance(geodetic, SIGMA["geodetic"], years, start, end),
    ]
    parameters = [
        A.Parameter("melt_factor", init=6.0, bounds=(1.5, 17.0)),
        A.Parameter("precipitation_factor", init=2.5, bounds=(0.1, 10.0)),
        A.Parameter("temperature_bias", init=0.0, prior=A.Normal(0.0, 2.0)),
    ]
    return A.Problem(model, forward, parameters, observations, inputs), years
