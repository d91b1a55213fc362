"""Units at the edges, through pint.

CF unit strings ("kg m-2 s-1", "degC", "mm day-1", "W m-2") are parsed by pint, checked
for the dimension a variable needs and converted to the model's units. A unit of the
wrong dimension, or one pint cannot read, is refused with a ValueError that names the
variable and its units.

Amounts of water (precipitation, snow water equivalent) take any of three forms:

- a mass per area per step: `kg m-2` (= mm of water);
- a depth of water per step: `m`, `mm`, `cm` (x 1000 kg m-3);
- a rate: `kg m-2 s-1`, `mm day-1`, `m day-1`, ..., times the length of each step. A
  rate per month (`kg m-2 month-1`, `mm month-1`) is that month's amount on a monthly
  series (pint's month is a twelfth of a year; the calendar month is meant).

ERA5's monthly means of `tp` are in m per day (the mean daily accumulation), written `m`
in the files: `cg.data.open_climate` turns them into kg m-2 per month itself
(`era5_precipitation`); a bare `m` handed to `simulate` is read as a depth per step, which
for that field would be wrong by the days of the month, so label such a field `m day-1`.
"""

import functools
import re
import threading

import numpy as np

WATER_DENSITY = 1000.0  # [kg m-3]: a depth of water as a mass per area

_ALIASES = {
    "degrees_C": "degC",
    "degree_C": "degC",
    "degrees_celsius": "degC",
    "degree_celsius": "degC",
    "degree_Celsius": "degC",
    "celsius": "degC",
    "Celsius": "degC",
    "deg C": "degC",
    "°C": "degC",
    "C": "degC",
    "degrees_K": "K",
    "degK": "K",
    "degrees_F": "degF",
    "degree_F": "degF",
    "°F": "degF",
    "1": "dimensionless",
    "degrees_north": "degree",  # CF latitude and longitude
    "degree_north": "degree",
    "degrees_N": "degree",
    "degrees_east": "degree",
    "degree_east": "degree",
    "degrees_E": "degree",
    "mm w.e.": "mm",
}
_POWER = re.compile(r"(?<=[A-Za-z])(-?\d+)\b")  # CF's m-2 is pint's m**-2


_REGISTRY = []
_MAKING = threading.Lock()


def registry():
    """pint's unit registry, made at its first use (pint and its registry take ~0.4 s to
    load); one for the process, also when threads ask for it at once (units of two
    registries do not mix)."""
    if not _REGISTRY:
        with _MAKING:
            if not _REGISTRY:
                import pint

                _REGISTRY.append(pint.UnitRegistry())
    return _REGISTRY[0]


def parse(units, name: str):
    """The pint unit of a CF unit string; `name` (the variable) goes into the error."""
    import pint

    text = str(units).strip()
    text = _ALIASES.get(text, text)
    try:
        return registry().parse_units(_POWER.sub(r"**\1", text))
    except (pint.errors.PintError, AttributeError, TypeError, ValueError, AssertionError) as error:
        raise ValueError(f"{name}: units {units!r} are not a unit this reader knows ({error})") from None


@functools.cache
def dimension(expression: str):
    """The dimensionality of a pint unit expression ("m", "kg m**-2 s**-1", ...)."""
    return registry().parse_units(expression).dimensionality


def to_celsius(values, units, name: str) -> np.ndarray:
    """Temperatures [degC] from `units` (K, degC, degF, ...). Without units the values are
    taken as degC, unless they reach above 150, which looks like kelvin: refused."""
    values = np.asarray(values, dtype=np.float64)
    if units is None:
        if values.size and np.nanmax(values) > 150.0:
            raise ValueError(
                f"{name}: no 'units' attribute and values up to {np.nanmax(values):.1f}, which look like kelvin; "
                "set units='K' (converted) or 'degC'"
            )
        return values
    unit = parse(units, name)
    if unit.dimensionality != dimension("K"):
        raise ValueError(f"{name}: units {units!r} are not a temperature (K, degC, degF)")
    return registry().Quantity(values, unit).to("degC").magnitude


def convert(values, units, to: str, name: str) -> np.ndarray:
    """`values` in `units` converted to `to` (a multiplicative unit: m, W m-2, kg m-3, ...);
    a unit of another dimension is refused."""
    values = np.asarray(values, dtype=np.float64)
    unit, target = parse(units, name), parse(to, to)
    if unit.dimensionality != target.dimensionality:
        raise ValueError(f"{name}: units {units!r} cannot be converted to {to} (another dimension)")
    return registry().Quantity(values, unit).to(target).magnitude


def to_water_depth(values, units, name: str) -> np.ndarray:
    """A depth of water [m] (a state such as snow water equivalent) from a depth (m, mm)
    or a mass per area (kg m-2); rates and other dimensions are refused."""
    values = np.asarray(values, dtype=np.float64)
    unit = parse(units, name)
    quantity = registry().Quantity(values, unit)
    if unit.dimensionality == dimension("m"):
        return quantity.to("m").magnitude
    if unit.dimensionality == dimension("kg m**-2"):
        return quantity.to("kg m**-2").magnitude / WATER_DENSITY
    raise ValueError(f"{name}: units {units!r} are not a depth of water (m, mm) nor a mass per area (kg m-2)")


def to_water_amount(values, units, name: str, step_seconds, monthly: bool = False) -> np.ndarray:
    """Amounts of water per step [kg m-2] from a mass per area or depth of water per step,
    or a rate times the length of each step (`step_seconds` [s], broadcast against the
    values; with `monthly`, a rate per month is the step's amount). Units are required."""
    if units is None:
        raise ValueError(
            f"{name}: no 'units' attribute; give the amount per step (kg m-2, mm, m) or a rate (kg m-2 s-1, mm day-1)"
        )
    values = np.asarray(values, dtype=np.float64)
    unit = parse(units, name)
    given = unit.dimensionality
    quantity = registry().Quantity(values, unit)
    if given == dimension("kg m**-2"):
        return quantity.to("kg m**-2").magnitude
    if given == dimension("m"):
        return quantity.to("m").magnitude * WATER_DENSITY
    if given in (dimension("kg m**-2 s**-1"), dimension("m s**-1")):
        if monthly and "month" in str(unit):
            per_step = quantity * registry().month
        else:
            per_step = quantity * registry().Quantity(np.asarray(step_seconds, dtype=np.float64), "s")
        if given == dimension("kg m**-2 s**-1"):
            return per_step.to("kg m**-2").magnitude
        return per_step.to("m").magnitude * WATER_DENSITY
    raise ValueError(
        f"{name}: units {units!r} are not an amount of water (kg m-2, mm, m) nor a rate (kg m-2 s-1, mm day-1)"
    )


def convert_setting(value, units, to: str, name: str, spread: bool = False):
    """A config value (a parameter's start, bound or prior location) in `units` converted
    to the model's unit `to`; with `spread` (a standard deviation), only the scale is
    converted. The model keeps absolute temperatures in degC, so a model unit of exactly
    `K` is a temperature difference (a bias, an offset): 1 degC or 1 K of it is 1 K and
    1 degF is 5/9 K, never 273.15 K. A unit of another dimension is refused."""
    import pint

    unit, target = parse(units, name), parse(to, to)
    if unit.dimensionality != target.dimensionality:
        raise ValueError(f"{name}: units {units!r} cannot be converted to {to} (another dimension)")

    def absolute(x):
        try:
            return float(registry().Quantity(float(x), unit).to(target).magnitude)
        except pint.errors.PintError as error:  # an offset unit inside a compound one (degC m-1)
            raise ValueError(f"{name}: units {units!r} cannot be converted to {to} ({error})") from None

    if spread or target == registry().kelvin:
        return (absolute(1.0) - absolute(0.0)) * float(value)
    return absolute(value)


def monthly_steps(step_seconds) -> bool:
    """Whether steps of these lengths [s] are calendar months (28 to 31 days each)."""
    seconds = np.asarray(step_seconds, dtype=np.float64)
    return bool(seconds.size) and bool(np.all((seconds >= 28 * 86400.0) & (seconds <= 31 * 86400.0)))


def era5_precipitation(values, units, name: str, step_seconds, days_in_month) -> np.ndarray | None:
    """ERA5's own precipitation convention, or None for a file that does not follow it.

    ERA5 writes `tp` in bare metres (`m`): on monthly means it is the mean daily
    accumulation (m per day), on hourly files the hour's total. Amounts per step [kg m-2]:
    monthly steps (28-31 days) times the days of each month (`days_in_month`), hourly
    steps (3600 s) as they are. A bare length on any other step is refused: its meaning is
    not ERA5's. `step_seconds` (one per step) decides which it is."""
    if units is None or parse(units, name) != registry().meter:  # ERA5's is metres exactly; mm or cm are per step
        return None
    metres = convert(values, units, "m", name)
    seconds = np.asarray(step_seconds, dtype=np.float64)
    if monthly_steps(seconds):
        return metres * WATER_DENSITY * np.asarray(days_in_month, dtype=np.float64)
    if seconds.size and np.allclose(seconds, 3600.0):
        return metres * WATER_DENSITY
    raise ValueError(f"{name} in {units} (ERA5's convention) on a time step that is neither monthly nor hourly")
