"""Physical constants and default material properties, with their sources.

Every constant used by the physics lives here, in SI units (temperature in degC where
a temperature is meant, kelvin only for absolute-temperature factors).
"""

ZERO_CELSIUS = 273.15
"""Kelvin at 0 degC [K]."""

GRAVITY = 9.81
"""Standard gravity [m s-2]."""

WATER_DENSITY = 1000.0
"""Density of liquid water [kg m-3]."""

LATENT_HEAT_FUSION = 3.34e5
"""Specific latent heat of fusion of water [J kg-1] (Williams & Smith 1989)."""

LATENT_HEAT_FUSION_VOLUMETRIC = LATENT_HEAT_FUSION * WATER_DENSITY
"""Latent heat of fusion per volume of water, 3.34e8 [J m-3]."""

# Thermal conductivities of soil constituents [W m-1 K-1] (Hillel 1982; Westermann et
# al. 2016, CryoGrid 3 parameter set).
K_WATER = 0.57
K_ICE = 2.2
K_AIR = 0.025
K_MINERAL = 3.0
K_ORGANIC = 0.25

# Volumetric heat capacities of soil constituents [J m-3 K-1] (same sources).
C_WATER = 4.2e6
C_ICE = 1.9e6
C_AIR = 0.00125e6
C_MINERAL = 2.0e6
C_ORGANIC = 2.5e6

SPECIFIC_HEAT_ICE = 2100.0
"""Specific heat capacity of ice near 0 degC [J kg-1 K-1] (Fukusako 1990), used for snow."""

DEFAULT_GEOTHERMAL_FLUX = 0.053
"""Default upward heat flux at the bottom of the column [W m-2] (GIPL2 default;
Lachenbruch & Sass 1977 give 0.04-0.08 for Alaska)."""

ICE_DENSITY = 900.0
"""Density of glacier ice for mass-volume conversion [kg m-3] (Huss et al. 2010 use 900;
pure ice is 917, Cuffey & Paterson 2010)."""
