"""Regenerate kudryavtsev_permamodel.npz: outputs of permamodel 0.2.3's `Ku_model`.

Not run by the tests (they read the stored file, so CI needs no permamodel). Run with

    python -m venv /tmp/pm && /tmp/pm/bin/pip install permamodel==0.2.3
    /tmp/pm/bin/python tests/physics/data/make_kudryavtsev_reference.py

Cases: permamodel's own 100-year test inputs (data/test_directory/inputs, soils and
constants of examples/Ku_example_config.toml), and the Barrow and Fairbanks annual series
(Ku_*_TA/AA/SD.txt, 1961-2015) with the Barrow settings of permamodel's examples/Ku_method.cfg
(snow density 200 kg m-3, water content 0.4, vegetation 0.02/0.03 m, 1.39e-6/5.56e-8 m2 s-1)
and the same soils and constants.
"""

import os

import numpy as np
import permamodel
import toml
import xarray as xr
from permamodel.components.Ku import Ku_model

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(permamodel.__file__)
VARIABLES = [
    "air_temperature",
    "temperature_amplitude",
    "snow_thickness",
    "snow_density",
    "soil_water_content",
    "frozen_vegetation_height",
    "thawed_vegetation_height",
    "frozen_vegetation_diffusivity",
    "thawed_vegetation_diffusivity",
]
OUTPUTS = [
    "bulk_thawed_conductivity",
    "bulk_frozen_conductivity",
    "bulk_thawed_heat_capacity",
    "bulk_frozen_heat_capacity",
    "ground_surface_temperature",
    "ground_surface_amplitude",
    "permafrost_temperature",
    "permafrost_amplitude",
    "critical_depth",
    "active_layer_thickness",
]


def run(inputs, config):
    years = len(inputs["air_temperature"])
    model = Ku_model()
    model.number_of_years, model.grid_shape = years, [1, 1]
    model.soils = {name: dict(props) for name, props in config["soils"].items()}
    model.constants = dict(config["constants"])
    for name in VARIABLES:
        value = np.broadcast_to(np.asarray(inputs[name], dtype=np.float64), (years,))
        setattr(model, name, xr.DataArray(value[:, None, None].copy(), dims=["time", "y", "x"]))
    for props in model.soils.values():
        fraction = np.full((years, 1, 1), props["scalar_fraction"])
        props["fraction"] = xr.DataArray(fraction, dims=["time", "y", "x"])
    out = {name: [] for name in OUTPUTS}
    for t in range(years):
        model.run_one_step(t)
        for name in OUTPUTS:
            out[name].append(float(np.asarray(getattr(model, name)).reshape(-1)[0]))
    return {name: np.array(values) for name, values in out.items()}


def main():
    config = toml.load(os.path.join(ROOT, "examples", "Ku_example_config.toml"))
    arrays = {}
    inputs = {
        name: xr.open_dataarray(os.path.join(ROOT, "data", "test_directory", "inputs", name + ".nc")).values.astype(
            np.float64
        )
        for name in VARIABLES
    }
    cases = {"permamodel_test": inputs}
    for site in ["Barrow", "Fairbanks"]:
        series = {key: np.loadtxt(os.path.join(HERE, f"Ku_{site}_{site}_{key}.txt")) for key in ["TA", "AA", "SD"]}
        cases[site] = dict(
            air_temperature=series["TA"],
            temperature_amplitude=series["AA"],
            snow_thickness=series["SD"],
            snow_density=200.0,
            soil_water_content=0.4,
            frozen_vegetation_height=0.02,
            thawed_vegetation_height=0.03,
            frozen_vegetation_diffusivity=1.39e-6,
            thawed_vegetation_diffusivity=5.56e-8,
        )
    for case, inputs in cases.items():
        years = len(inputs["air_temperature"])
        for name in VARIABLES:
            arrays[f"{case}/input/{name}"] = np.broadcast_to(np.asarray(inputs[name], np.float64), (years,))
        for name, values in run(inputs, config).items():
            arrays[f"{case}/output/{name}"] = values
    arrays["soils"] = np.array(
        [
            [
                p["scalar_fraction"],
                p["bulk_density"],
                p["heat_capacity"],
                p["conductivity_thawed_dry"],
                p["conductivity_frozen_dry"],
            ]
            for p in config["soils"].values()
        ]
    )
    arrays["constants"] = np.array(
        [config["constants"][k] for k in ["uwc", "snow_heat_capacity", "sec_per_a", "latent_heat"]]
    )
    np.savez_compressed(os.path.join(HERE, "kudryavtsev_permamodel.npz"), **arrays)
    print({k: v.shape for k, v in arrays.items()})


if __name__ == "__main__":
    main()
