"""The samples shipped with the package: each opens with its reader, each file is cited,
and together they stay within 15 MB."""

import socket
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr

import cryograd as cg
import cryograd.data as D

SAMPLES = Path(D.__file__).parent / "samples"


@pytest.mark.parametrize("name", sorted(D.sample_names()))
def test_every_sample_opens(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # oetztal_histalp's negative precipitation, tested elsewhere
        sample = D.load_sample(name)
    assert isinstance(sample, (xr.Dataset, xr.DataArray, gpd.GeoDataFrame, cg.physics.Hypsometry, dict))
    assert D.sample_path(name).exists() and str(D.sample_path(name)).startswith(str(SAMPLES))


def test_readers_do_not_touch_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access: {args}")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for name in D.sample_names():
            D.load_sample(name)
        D.hypsometry(D.load_sample("oetztal_dem"), D.sample_path("oetztal_outlines"))
        dem = D.load_sample("oetztal_dem")
        D.geodetic_mass_balance(dem.copy(data=np.zeros(dem.shape)), D.load_sample("oetztal_outlines"), years=1.0)
        D.open_climate(D.sample_path("oetztal_histalp"), lat=46.8, lon=10.76, elevation=3000.0)


def test_samples_are_cited_and_small():
    files = [p for p in SAMPLES.rglob("*") if p.is_file() and p.name != "CITATION.md"]
    assert sum(p.stat().st_size for p in files) <= 15e6  # measured 8.92 MB
    citation = (SAMPLES / "CITATION.md").read_text()
    for name in D.sample_names():
        assert f"`{name}`" in citation, name
    for path in files:  # every file is named in CITATION.md, by name, shapefile stem or station folder
        relative = path.relative_to(SAMPLES)
        key = relative.parts[1] if len(relative.parts) > 2 else path.name
        assert key in citation or path.stem + ".{" in citation, relative


def test_hintereisferner_samples_agree():
    """The DEM hypsometry and OGGM's flowline describe one glacier (different outlines and DEMs)."""
    from_dem = D.hypsometry(D.load_sample("hintereisferner_dem"), D.load_sample("hintereisferner_outline"))
    flowline = D.load_sample("hintereisferner_flowline")
    assert float(from_dem.total_area) == pytest.approx(float(flowline.total_area), rel=0.005)  # measured 0.02 %
    mean_dem = float(np.sum(from_dem.elevation * from_dem.area) / from_dem.total_area)
    mean_flowline = float(np.sum(flowline.elevation * flowline.area) / flowline.total_area)
    assert abs(mean_dem - mean_flowline) < 10.0  # measured 3032.2 vs 3031.0 m
