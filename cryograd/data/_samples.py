"""Real sample datasets shipped inside the package (sources and licences in
samples/CITATION.md). Nothing here touches the network."""

import functools
import json
from importlib import resources
from pathlib import Path

import geopandas as gpd

from ._climate import open_climate
from ._dem import open_dem
from ._gipl import open_gipl_station
from ._glacier_tables import open_flowline, open_geodetic_mb, open_wgms
from ._grace import open_grace
from ._gtnp import open_gtnp
from ._modis import open_modis_lst
from ._rgi import open_imo_station, open_rgi_hypsometry

ERA5_OETZTAL = ("sel_era5_monthly_t2m_1979-2018.nc", "sel_era5_monthly_prcp_1979-2018.nc", "sel_era5_invariant.nc")


def _json(path) -> dict:
    return json.loads(Path(path).read_text())


def _era5(folder):
    return open_climate([Path(folder) / name for name in ERA5_OETZTAL])


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
    "hintereisferner_dem": (
        "hintereisferner/hef_srtm.tif",
        open_dem,
        "SRTM 3 arc-second DEM around Hintereisferner (int16, EGM96, no nodata tag)",
    ),
    "hintereisferner_outline": (
        "hintereisferner/Hintereisferner_RGI6.shp",
        gpd.read_file,
        "RGI 6.0 outline of Hintereisferner (RGI60-11.00897, 8.036 km2)",
    ),
    "hintereisferner_climate": (
        "hintereisferner/climate_historical_hef_histalp.nc",
        open_climate,
        "OGGM's monthly HISTALP climate at Hintereisferner's reference point (3160 m), 1802-2002",
    ),
    "hintereisferner_histalp": (
        "hintereisferner/histalp_merged_hef.nc",
        open_climate,
        "HISTALP monthly temperature and precipitation, 3 x 3 grid points around Hintereisferner, 1801-2003",
    ),
    "hintereisferner_flowline": (
        "hintereisferner/elevation_band_flowline.csv",
        open_flowline,
        "OGGM's 56-band elevation-band flowline of Hintereisferner, as a Hypsometry",
    ),
    "hintereisferner_mb_calib": (
        "hintereisferner/mb_calib.json",
        _json,
        "OGGM 1.6.3's calibrated mass-balance parameters of Hintereisferner (dict)",
    ),
    "hintereisferner_wgms": (
        "hintereisferner/wgms_mbdata_491_hintereisferner.csv",
        open_wgms,
        "WGMS annual, winter and summer balances of Hintereisferner (WGMS 491), 1953-2020",
    ),
    "hintereisferner_wgms_profile": (
        "hintereisferner/wgms_mbprofile_491_hintereisferner.csv",
        open_wgms,
        "WGMS altitudinal mass-balance profiles of Hintereisferner",
    ),
    "oetztal_dem": (
        "oetztal/srtm_oetztal.tif",
        open_dem,
        "SRTM 3 arc-second DEM of the Oetztal Alps (int16, EGM96, no nodata tag)",
    ),
    "oetztal_outlines": (
        "oetztal/rgi_oetztal.shp",
        gpd.read_file,
        "RGI 5.0 outlines of 20 Oetztal glaciers (87.7 km2)",
    ),
    "oetztal_histalp": (
        "oetztal/HISTALP_oetztal.nc",
        open_climate,
        "HISTALP monthly temperature and precipitation on 7 x 7 grid points, 1801-2014 (67 negative "
        "precipitation values, set to 0 with a warning)",
    ),
    "oetztal_era5": (
        "oetztal",
        _era5,
        "ERA5 monthly 2 m temperature, precipitation and surface height, 4 x 4 points, 1979-2018 "
        "(legacy CDS layout, int16 packed)",
    ),
    "hugonnet_regional": (
        "regional/hugonnet2021_regional_rates.csv",
        open_geodetic_mb,
        "Hugonnet et al. 2021 regional glacier mass-balance rates, 19 RGI regions, 2000-2010, 2010-2020, "
        "2006-2019, 2000-2020 (dmdtda in mm w.e. yr-1)",
    ),
    "gipl_station": (
        "permafrost/gipl_station_2008",
        open_gipl_station,
        "GIPL2 example station in Alaska: forcing, soil layers and measured daily ground temperature from 2008-07",
    ),
    "arctic_village": (
        "permafrost/B755-Arctic_Village-Dataset.csv",
        open_gtnp,
        "GTN-P borehole 755, Arctic Village, Alaska: hourly ground temperature 0-5 m, 2007-03 to 2009-04",
    ),
    "gtnp_example": (
        "permafrost/example_gtnp.csv",
        open_gtnp,
        "GTN-P borehole (wide layout): daily ground temperature at 16 depths 0-7 m, 2014-12 to 2018-09 (warm "
        "permafrost near 0 degC)",
    ),
    "iceland_hypsometry": (
        "iceland/06_rgi60_Iceland_hypso.csv",
        open_rgi_hypsometry,
        "RGI 6.0 hypsometry of all 568 glaciers of Iceland (region 06), 50 m bands (one without a hypsometry)",
    ),
    "iceland_outlines": (
        "iceland/rgi60_outlines/06_rgi60_Iceland.shp",
        gpd.read_file,
        "RGI 6.0 outlines of all 568 glaciers of Iceland (EPSG:4326) with CenLat/CenLon and Zmin/Zmed/Zmax",
    ),
    "iceland_glambie": (
        "iceland/6_iceland_glambie_hydrological.csv",
        open_grace,
        "GlaMBIE glacier mass change of Iceland (RGI region 06) per hydrological year, 1999/00-2023/24: "
        "gravimetry (GRACE/GRACE-FO, 2002/03-2021/22), altimetry, DEM differencing + glaciological, combined",
    ),
    # positions and heights are not in the files: from public station lists, uncertain by tens of metres
    "iceland_station_grimsstadir": (
        "iceland/Stod_495_Grimsstadir.ManMedal.txt",
        functools.partial(open_imo_station, elevation=384.0, lat=65.642, lon=-16.128),
        "IMO monthly station 495 Grimsstadir a Fjollum (NE Iceland, about 384 m), 1949-01 to 2020-01",
    ),
    "iceland_station_akureyri": (
        "iceland/Stod_422_Akureyri.ManMedal.txt",
        functools.partial(open_imo_station, elevation=23.0, lat=65.68, lon=-18.10),
        "IMO monthly station 422 Akureyri (N Iceland, about 23 m), 1949-01 to 2020-03",
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
    """Open sample `name` with its reader (see `sample_names()` for the list): an xarray
    Dataset or DataArray for data, a GeoDataFrame for outlines, a `Hypsometry` for the
    flowline, a dict for calibrated parameters."""
    path = sample_path(name)
    return _SAMPLES[name][1](path)
