"""Upper boundary conditions of the soil column."""

import abc
from typing import ClassVar

import equinox as eqx


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
