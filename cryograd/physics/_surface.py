"""Upper boundary conditions of the soil column."""

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._validation import as_float_array, is_concrete, require_positive


class AbstractSurface(eqx.Module):
    """How the ground surface is forced.

    A surface reads the forcing variables it names for one time step and returns either
    the ground-surface temperature [degC] (`fixed_temperature = True`, a Dirichlet
    condition on the top edge) or the heat flux into the ground [W m-2]
    (`fixed_temperature = False`).
    """

    forcing_variables: ClassVar[tuple[str, ...]]
    fixed_temperature: ClassVar[bool]

    @abc.abstractmethod
    def boundary_value(self, forcing: dict):
        """Ground-surface temperature [degC] or downward heat flux [W m-2] for one step,
        from `forcing`, a dict of scalars named like the forcing variables."""


class Prescribed(AbstractSurface):
    """Ground-surface temperature prescribed by the forcing variable
    `surface_temperature` [degC] (Dirichlet condition at the top edge)."""

    forcing_variables: ClassVar[tuple[str, ...]] = ("surface_temperature",)
    fixed_temperature: ClassVar[bool] = True

    def boundary_value(self, forcing):
        return forcing["surface_temperature"]


class PrescribedFlux(AbstractSurface):
    """Heat flux into the ground prescribed by the forcing variable `surface_heat_flux`
    [W m-2], positive downward (Neumann condition at the top edge)."""

    forcing_variables: ClassVar[tuple[str, ...]] = ("surface_heat_flux",)
    fixed_temperature: ClassVar[bool] = False

    def boundary_value(self, forcing):
        return forcing["surface_heat_flux"]


class NFactor(AbstractSurface):
    """Ground-surface temperature from air temperature by n-factors (Lunardini 1978):
    T_gs = n_f T_air below 0 degC and n_t T_air above (Dirichlet condition at the top edge).

    **Arguments:** `freezing` (n_f, default 1) and `thawing` (n_t, default 1) [1],
    positive. Forcing variable: `air_temperature` [degC]. Where snow insulates the ground
    n_f is typically 0.2-0.7; bare ground or vegetation gives n_t 0.7-1.3 (Klene et al. 2001).
    """

    freezing: Float[Array, ""]
    thawing: Float[Array, ""]
    forcing_variables: ClassVar[tuple[str, ...]] = ("air_temperature",)
    fixed_temperature: ClassVar[bool] = True

    def __init__(self, freezing: ArrayLike = 1.0, thawing: ArrayLike = 1.0):
        for name, value in (("freezing", freezing), ("thawing", thawing)):
            if is_concrete(value):
                require_positive(as_float_array(value, name), name)
        self.freezing = jnp.asarray(freezing, jnp.float64)
        self.thawing = jnp.asarray(thawing, jnp.float64)

    def boundary_value(self, forcing):
        return n_factor_temperature(forcing["air_temperature"], self.freezing, self.thawing)


def n_factor_temperature(air_temperature, freezing, thawing):
    """Ground-surface temperature [degC] from air temperature [degC] and n-factors [1]."""
    air = jnp.asarray(air_temperature, jnp.float64)
    return jnp.where(air < 0.0, freezing * air, thawing * air)
