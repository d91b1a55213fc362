"""Readers of real data formats. Each returns CF-annotated xarray objects and raises
ValueError naming the file and the field when a file is not what it claims to be."""

from ._borehole import (
    AIR_VARIABLES as AIR_VARIABLES,
    open_active_layer as open_active_layer,
    open_borehole as open_borehole,
    open_site_forcing as open_site_forcing,
    point_lst as point_lst,
)
from ._climate import open_climate as open_climate
from ._cryogrid import open_cryogrid_forcing as open_cryogrid_forcing
from ._dem import (
    elevation_change as elevation_change,
    geodetic_mass_balance as geodetic_mass_balance,
    hypsometry as hypsometry,
    open_dem as open_dem,
    open_outlines as open_outlines,
    outline_mask as outline_mask,
    pixel_area as pixel_area,
    write_dem as write_dem,
)
from ._gipl import (
    gipl_column as gipl_column,
    gipl_initial_temperature as gipl_initial_temperature,
    open_gipl_station as open_gipl_station,
)
from ._glacier_tables import (
    open_flowline as open_flowline,
    open_geodetic_mb as open_geodetic_mb,
    open_wgms as open_wgms,
)
from ._grace import (
    apply_gain_factors as apply_gain_factors,
    cell_area as cell_area,
    glacier_mascons as glacier_mascons,
    open_grace as open_grace,
    regional_mass as regional_mass,
    write_csr_mascons as write_csr_mascons,
    write_gsfc_mascons as write_gsfc_mascons,
    write_jpl_mascons as write_jpl_mascons,
)
from ._gtnp import open_gtnp as open_gtnp
from ._kudryavtsev import open_kudryavtsev_series as open_kudryavtsev_series
from ._modis import (
    MANDATORY_QA as MANDATORY_QA,
    extract_points as extract_points,
    open_appeears_lst as open_appeears_lst,
    open_modis_lst as open_modis_lst,
    quality_mask as quality_mask,
    write_modis_lst as write_modis_lst,
)
from ._rgi import (
    open_imo_station as open_imo_station,
    open_rgi_hypsometry as open_rgi_hypsometry,
    open_station_csv as open_station_csv,
    region_hypsometry as region_hypsometry,
)
from ._samples import load_sample as load_sample, sample_names as sample_names, sample_path as sample_path
from ._station_climate import station_climate as station_climate
from ._synthetic import (
    synthetic_clear_sky as synthetic_clear_sky,
    synthetic_glacier_region as synthetic_glacier_region,
    synthetic_permafrost_forcing as synthetic_permafrost_forcing,
)
