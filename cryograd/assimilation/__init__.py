"""Assimilation: parameters, priors, observation operators, fitting and uncertainty."""

from ._fit import METHODS as METHODS, FitResult as FitResult, fit as fit
from ._observations import (
    DENSITY as DENSITY,
    DENSITY_SIGMA as DENSITY_SIGMA,
    AbstractObservation as AbstractObservation,
    ActiveLayerThickness as ActiveLayerThickness,
    ElevationChangeProfile as ElevationChangeProfile,
    ErrorModel as ErrorModel,
    GroundTemperature as GroundTemperature,
    LandSurfaceTemperature as LandSurfaceTemperature,
    PeriodMean as PeriodMean,
    RegionalBalance as RegionalBalance,
    RegionalMassChange as RegionalMassChange,
    RegionalPeriodChange as RegionalPeriodChange,
    Series as Series,
    active_layer_thickness as active_layer_thickness,
    elevation_change_profile as elevation_change_profile,
    exponential_covariance as exponential_covariance,
    geodetic_balance as geodetic_balance,
    geodetic_from_dh as geodetic_from_dh,
    glaciological_balances as glaciological_balances,
    ground_temperature as ground_temperature,
    land_surface_temperature as land_surface_temperature,
    period_mass_change as period_mass_change,
    regional_balance as regional_balance,
    regional_mass_change as regional_mass_change,
)
from ._parameters import (
    AbstractPrior as AbstractPrior,
    LogNormal as LogNormal,
    Normal as Normal,
    Parameter as Parameter,
    TruncatedNormal as TruncatedNormal,
    Uniform as Uniform,
    closure_parameters as closure_parameters,
    with_leaves as with_leaves,
)
from ._problem import Problem as Problem
from ._uncertainty import (
    Posterior as Posterior,
    chi_square_model_error as chi_square_model_error,
    laplace as laplace,
    laplace_by_members as laplace_by_members,
    parameter_draws as parameter_draws,
    sample as sample,
)
