"""Pure-JAX physics: soil columns with freeze/thaw, equilibrium permafrost models and glacier mass balance."""

from ._closures import (
    AbstractClosure as AbstractClosure,
    MLPClosure as MLPClosure,
    NeuralSurfaceOffset as NeuralSurfaceOffset,
    neural_melt_factor as neural_melt_factor,
)
from ._column import PermafrostColumn as PermafrostColumn
from ._diagnostics import (
    envelope_thaw_depth as envelope_thaw_depth,
    interpolate_depths as interpolate_depths,
    thaw_depth as thaw_depth,
)
from ._equilibrium import (
    Kudryavtsev as Kudryavtsev,
    degree_days as degree_days,
    kudryavtsev_soil as kudryavtsev_soil,
    sturm_snow_conductivity as sturm_snow_conductivity,
    ttop as ttop,
    yen_snow_conductivity as yen_snow_conductivity,
)
from ._freeze_curves import (
    AbstractFreezeCurve as AbstractFreezeCurve,
    DallAmico as DallAmico,
    FreeWater as FreeWater,
    PiecewiseLinear as PiecewiseLinear,
    PowerLaw as PowerLaw,
    Tabulated as Tabulated,
)
from ._glacier_geometry import DeltaH as DeltaH, volume_area_thickness as volume_area_thickness
from ._grid import Grid as Grid
from ._heat import ImplicitEnthalpy as ImplicitEnthalpy
from ._initial import (
    spin_up as spin_up,
    steady_state_temperature as steady_state_temperature,
)
from ._lst import SatelliteLST as SatelliteLST, fill_lst_gaps as fill_lst_gaps, gap_fill_lst as gap_fill_lst
from ._projection import YEAR_DAYS as YEAR_DAYS, repeated_forcing as repeated_forcing, yearly_runs as yearly_runs
from ._smb import Hypsometry as Hypsometry, MonthlyTemperatureIndex as MonthlyTemperatureIndex
from ._smb_snowpack import (
    AbstractSnowpackMassBalance as AbstractSnowpackMassBalance,
    DailyTemperatureIndex as DailyTemperatureIndex,
    EnhancedTemperatureIndex as EnhancedTemperatureIndex,
)
from ._snow import Snow as Snow
from ._soil import SoilLayer as SoilLayer
from ._surface import (
    AbstractSurface as AbstractSurface,
    NFactor as NFactor,
    Prescribed as Prescribed,
    PrescribedFlux as PrescribedFlux,
)
from ._xarray import yearly_sensor_statistics as yearly_sensor_statistics
