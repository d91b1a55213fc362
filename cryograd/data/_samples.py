"""Real sample datasets shipped inside the package (sources and licences in
samples/CITATION.md). Nothing here touches the network."""

from importlib import resources
from pathlib import Path

from ._grace import open_grace
from ._modis import open_modis_lst

_SAMPLES = {
    "modis_tile": (
        "modis/MOD11A1.A2019305.h14v09.006.2019306084028.hdf",
        open_modis_lst,
        "MOD11A1 C6 daily 1 km LST tile h14v09 (north-eastern Brazil), 2019-11-01",
    ),
    "greenland_grace": (
        "grace/greenland_mass_200204_202408.txt",
        open_grace,
        "JPL GRACE/GRACE-FO Greenland mass anomaly [Gt], 2002-04 to 2024-08 (RL06.3Mv4)",
    ),
    "greenland_imbie": (
        "grace/imbie_greenland_2021_Gt.csv",
        open_grace,
        "IMBIE 2021 Greenland mass balance [Gt/yr] and cumulative [Gt], 1992-2020",
    ),
}


def sample_names() -> dict:
    """Names of the samples `load_sample` knows, with a one-line description of each."""
    return {name: description for name, (_, _, description) in _SAMPLES.items()}


def sample_path(name: str) -> Path:
    """Path of the file (or folder) of sample `name` inside the installed package."""
    if name not in _SAMPLES:
        raise ValueError(f"name: unknown sample {name!r}; choose from {sorted(_SAMPLES)}")
    return Path(str(resources.files("cryograd.data") / "samples" / _SAMPLES[name][0]))


def load_sample(name: str):
    """Open sample `name` with its reader (see `sample_names()` for the list)."""
    path = sample_path(name)
    return _SAMPLES[name][1](path)
