"""Reader of CryoGrid.jl JSON forcing files (e.g. the Samoylov ERA5-fitted daily series)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

# CryoGrid.jl name -> (cryograd name, units, long name)
_VARIABLES = {
    "Tair": ("air_temperature", "degC", "air temperature"),
    "swe": ("snow_water_equivalent", "m", "snow water equivalent"),
    "\u03c1sn": ("snow_density", "kg m-3", "snow density"),  # Greek rho + "sn" in the file
    "pr": ("precipitation", "m s-1", "precipitation rate"),
    "Lin": ("longwave_down", "W m-2", "incoming longwave radiation"),
    "Sin": ("shortwave_down", "W m-2", "incoming shortwave radiation"),
}


def open_cryogrid_forcing(path) -> xr.Dataset:
    """Read a CryoGrid.jl forcing JSON `{"data": {name: [...]}, "timestamps": [...]}`.

    Known variables are renamed to cryograd's names with units (`Tair` ->
    `air_temperature` [degC], `swe` -> `snow_water_equivalent` [m], `\u03c1sn` (rho) ->
    `snow_density` [kg m-3], and the radiation and precipitation variables); unknown ones
    are kept under their own names without units. Null entries become NaN. Timestamps
    must be sorted and unique.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(content, dict) or not isinstance(content.get("data"), dict) or "timestamps" not in content:
        raise ValueError(f"{path}: expected an object with 'data' (variables) and 'timestamps'")
    try:
        times = pd.to_datetime(pd.Series(content["timestamps"]), format="ISO8601")
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: 'timestamps' are not ISO dates ({error})") from None
    if times.duplicated().any() or not times.is_monotonic_increasing:
        raise ValueError(f"{path}: 'timestamps' must be sorted and unique")
    data = {}
    for name, values in content["data"].items():
        if not isinstance(values, list) or len(values) != len(times):
            raise ValueError(f"{path}: variable {name!r} has {len(values)} values for {len(times)} timestamps")
        try:
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: variable {name!r} holds non-numeric values") from None
        new_name, units, long_name = _VARIABLES.get(name, (name, None, name))
        attrs = {"long_name": long_name, "cryogrid_name": name} | ({"units": units} if units else {})
        data[new_name] = ("time", array, attrs)
    if not data:
        raise ValueError(f"{path}: 'data' holds no variables")
    return xr.Dataset(data, coords={"time": times.to_numpy()}, attrs={"source": f"CryoGrid.jl forcing {path.name}"})
