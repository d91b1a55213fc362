"""Reader of the Kudryavtsev-model annual input files of permamodel (`Ku_<site>_<site>_TA.txt` ...)."""

from pathlib import Path

import numpy as np
import xarray as xr

_SUFFIXES = {
    "TA": ("air_temperature", "degC", "mean annual air temperature"),
    "AA": ("temperature_amplitude", "K", "amplitude of the annual air-temperature cycle"),
    "SD": ("snow_depth", "m", "mean winter snow depth"),
}


def open_kudryavtsev_series(prefix, first_year) -> xr.Dataset:
    """Read the annual `<prefix>TA.txt`, `AA.txt` and `SD.txt` files (one value per line).

    **Arguments:** `prefix`: path prefix, e.g. `.../Ku_Barrow_Barrow_`; `first_year`: the
    calendar year of the first line (the files carry no dates; permamodel's Barrow and
    Fairbanks series start in 1961).

    **Returns:** `xr.Dataset` over `year` with `air_temperature` [degC],
    `temperature_amplitude` [K] and `snow_depth` [m].
    """
    prefix = str(prefix)
    data, length = {}, None
    for suffix, (name, units, long_name) in _SUFFIXES.items():
        path = Path(prefix + suffix + ".txt")
        if not path.is_file():
            raise ValueError(f"{path}: file not found")
        try:
            values = np.loadtxt(path, ndmin=1, dtype=np.float64)
        except ValueError as error:
            raise ValueError(f"{path}: expected one number per line ({error})") from None
        if values.ndim != 1:
            raise ValueError(f"{path}: expected one number per line")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{path}: {name} has non-finite values")
        if length is not None and len(values) != length:
            raise ValueError(f"{path}: {len(values)} years, but the other files have {length}")
        length = len(values)
        data[name] = ("year", values, {"units": units, "long_name": long_name})
    if np.any(data["temperature_amplitude"][1] <= 0):
        raise ValueError(f"{prefix}AA.txt: temperature amplitude must be positive")
    if np.any(data["snow_depth"][1] < 0):
        raise ValueError(f"{prefix}SD.txt: snow depth must be non-negative")
    return xr.Dataset(data, coords={"year": np.arange(int(first_year), int(first_year) + length)})
