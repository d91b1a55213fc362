"""Every glacier of Iceland fitted to GlaMBIE's GRACE series: the library-level first run
that `experiments/glacier_iceland_grace.toml` (issue 26) will turn into a configured
experiment. Prints one JSON object.

    python experiments/iceland_grace.py [--calibration 2003 2012] [--validation 2013 2019]

Inputs, all package samples: the RGI 6.0 hypsometries and outlines of Iceland's glaciers
(`iceland_hypsometry`, `iceland_outlines`; the one glacier without a hypsometry is left
out), the IMO monthly stations Grimsstadir and Akureyri (`iceland_station_*`; each glacier
takes its nearest, `cg.data.station_climate`, climatology 1981-2010), and GlaMBIE's mass
change of Iceland per hydrological year (`iceland_glambie`).

Model: `MonthlyTemperatureIndex` on hydrological years, one melt factor, precipitation
factor and temperature bias for the whole region (weak priors), fitted by
Levenberg-Marquardt to the gravimetry (GRACE/GRACE-FO) changes of the calibration years
with their GlaMBIE errors (`cg.assimilation.period_mass_change`). Compared, for the start
values, the fit to gravimetry and a fit to the DEM-differencing + glaciological series
alone, with both series in the calibration and validation years, and Hugonnet et al.
(2021) region-06 rates for 2000-2009 and 2010-2019 (gravimetry's years
without its own annual variability, 2016/17 and 2017/18, left out). The stations' record
ends in January 2020, so the last model year is 2018/19. No posterior here: the misfit is
far above GlaMBIE's errors (the stations are all in the north-east), so a Laplace
posterior on those errors alone would be overconfident.
"""

import argparse
import json
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import cryograd as cg
from cryograd._run.glacier_region import _months, period_years

A, P = cg.assimilation, cg.physics
SOURCES = ("gravimetry", "demdiff_and_glaciological")
HUGONNET_PERIODS = ("2000-01-01_2010-01-01", "2010-01-01_2020-01-01")
HUGONNET_FROM = 2000
"""Hugonnet et al. (2021) rates compared: model years 2000-2009 and 2010-2019 (hydrological
years, October 1999 - September 2009 and on: the calendar periods moved back 3 months)."""
INPUT_AXES = dict(glacier=0, climate=dict(temperature=0, precipitation=0, reference_elevation=0, month=None, days=None))


def parameters():
    return [
        A.Parameter("melt_factor", init=5.0, bounds=(1.5, 17.0), prior=A.LogNormal(5.0, 0.5)),
        A.Parameter("precipitation_factor", init=1.5, bounds=(0.1, 10.0), prior=A.LogNormal(1.5, 0.7)),
        A.Parameter("temperature_bias", init=0.0, prior=A.Normal(0.0, 1.5)),
    ]


def region():
    """The glaciers' hypsometry, ids, areas [m2], monthly climate arrays and model years."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the left-out glacier and the stations' own gaps are warned about
        glaciers, ids = cg.data.region_hypsometry(cg.data.load_sample("iceland_hypsometry"), drop_missing=True)
        stations = [cg.data.load_sample(f"iceland_station_{name}") for name in ("grimsstadir", "akureyri")]
    outlines = cg.data.load_sample("iceland_outlines").set_index("RGIId").loc[ids]
    climate = cg.data.station_climate(
        stations, outlines.CenLat.values, outlines.CenLon.values, glacier=ids, climatology=(1981, 2010)
    )
    model = P.MonthlyTemperatureIndex(year_start_month=10)
    arrays, years = model.climate_arrays(climate[["temperature", "precipitation", "reference_elevation"]], len(ids))
    area = np.asarray(glaciers.area).sum(axis=1)
    return model, glaciers, ids, area, {k: jnp.asarray(v) for k, v in arrays.items()}, np.asarray(years), climate


def _forward(model, inputs):
    return model.run(inputs["glacier"], inputs["climate"])


def run(calibration=(2003, 2012), validation=(2013, 2019)) -> dict:
    started = time.perf_counter()
    model, glaciers, ids, area, arrays, years, climate = region()
    glambie = cg.data.load_sample("iceland_glambie")

    def problem(source, first, last):
        months = _months(arrays, years, first, last)
        model_years = years[(years >= first) & (years <= last)]
        observation = A.period_mass_change(glambie, area, model_years, source=source, name=source)
        inputs = dict(glacier=glaciers, climate=months)
        return A.Problem(model, _forward, parameters(), [observation], inputs, members=len(ids), input_axes=INPUT_AXES)

    first = min(calibration[0], HUGONNET_FROM)
    whole_years = years[(years >= first) & (years <= validation[1])]
    runner = problem("gravimetry", first, validation[1])  # its outputs: every year
    hugonnet = cg.data.load_sample("hugonnet_regional").sel(region=6)
    annual = jax.jit(lambda u: runner.outputs(u)["specific_mass_balance"])

    def metrics(u):
        smb = dict(specific_mass_balance=annual(u))
        out = {}
        for source in SOURCES:
            for part, (first, last) in (("calibration", calibration), ("validation", validation)):
                operator = A.period_mass_change(glambie, area, whole_years, source=source, start=first, end=last)
                predicted, observed = np.asarray(operator.predict(smb, {})), np.asarray(operator.values)
                out.setdefault(part, {})[source] = dict(
                    rmse=float(np.sqrt(np.mean((predicted - observed) ** 2))),
                    bias=float(np.mean(predicted - observed)),
                    r=float(np.corrcoef(predicted, observed)[0, 1]),
                    n=int(observed.size),
                    observed_mean=float(observed.mean()),
                    modelled_mean=float(predicted.mean()),
                )
        # Hugonnet et al. (2021) region 06: the area-weighted mean specific rate [kg m-2 yr-1]
        for period in HUGONNET_PERIODS:
            start, end = period_years(period)
            rows = (whole_years >= start) & (whole_years <= end)
            if start >= whole_years[0] and end <= whole_years[-1]:
                row = hugonnet.sel(period=period)
                out.setdefault("hugonnet2021", {})[period] = dict(
                    modelled=float(np.mean(area @ np.asarray(smb["specific_mass_balance"])[:, rows]) / area.sum()),
                    observed=float(row.specific_mass_balance_rate),
                    uncertainty=float(row.specific_mass_balance_rate_uncertainty),
                    model_years=f"{start}-{end}",
                )
        return out

    start = problem("gravimetry", *calibration)
    results = dict(start=dict(parameters=start.unpack(start.u0), metrics=metrics(start.u0)))
    for source in SOURCES:
        fitted = A.fit(problem(source, *calibration), method="levenberg_marquardt", max_steps=100, progress=False)
        results[f"fit_to_{source}"] = dict(
            parameters=fitted.parameters, metrics=metrics(fitted.u), converged=bool(fitted.converged)
        )
    return dict(
        glaciers=len(ids),
        area_km2=float(area.sum() / 1e6),
        stations=climate.attrs["stations"],
        calibration=list(calibration),
        validation=list(validation),
        units="Gt per hydrological year",
        **results,
        wall_time_s=round(time.perf_counter() - started, 1),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=int, nargs=2, default=[2003, 2012])
    parser.add_argument("--validation", type=int, nargs=2, default=[2013, 2019])
    args = parser.parse_args()
    result = run(tuple(args.calibration), tuple(args.validation))
    print(json.dumps(jax.tree.map(lambda x: np.asarray(x).tolist() if hasattr(x, "shape") else x, result), indent=1))


if __name__ == "__main__":
    main()
