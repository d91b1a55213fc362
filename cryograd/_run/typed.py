"""Typed experiment configs: one pydantic model per config section.

A kind's config is a `Config` subclass whose fields are its sections (`Section`
subclasses), each field a key with its type, default and description (`Field(description=
...)`, units in brackets). `problems` validates a config dict against it and turns every
error into one line `dotted.key: what is wrong` (an unknown key with the closest allowed
key), the format `config.refuse` lists; `key_table` gives the (key, type, default,
meaning) rows the docs' key tables are tested against.

TOML's integers are taken where a number is expected; booleans are not numbers, and
strings are not converted (strict validation otherwise).
"""

import difflib
import re
import types
import typing
from typing import Annotated, Any, Literal

import pydantic
from pydantic import ConfigDict, Field

__all__ = [
    "Config",
    "Date",
    "DatePeriod",
    "Field",
    "Fit",
    "ParameterTable",
    "Section",
    "experiment",
    "key_table",
    "one_of",
    "problems",
    "resolve",
    "resolved",
]


class Section(pydantic.BaseModel):
    """A config table: unknown keys refused, values checked strictly."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False)


class Config(Section):
    """A kind's whole config: one field per section (tables); `_source` and other keys
    starting with "_" (added by `config.load`) are not part of it."""


def problems(model: type[Config], config: dict) -> tuple[Config | None, list[str]]:
    """(the validated config or None, every problem as 'dotted.key: message')."""
    data = {k: v for k, v in config.items() if not str(k).startswith("_")}
    try:
        return model.model_validate(data), []
    except pydantic.ValidationError as error:
        lines = [line for e in error.errors(include_url=False) for line in _message(model, e)]
        return None, _first_type_error_per_key(lines)


def _first_type_error_per_key(lines: list[str]) -> list[str]:
    """The first 'Input should be a valid ...' line of each key (a value of the wrong type
    for every member of a union, such as a number or a list, gives one line per member)."""
    seen, kept = set(), []
    for line in lines:
        key, _, message = line.partition(": ")
        if message.startswith("Input should be a valid"):
            if key in seen:
                continue
            seen.add(key)
        kept.append(line)
    return kept


def resolved(instance: Config) -> dict:
    """The config with every default filled in, as plain TOML-like values (keys whose
    default is None, "not given", left out)."""
    return instance.model_dump(mode="json", exclude_none=True)


def resolve(model: type[Config], config: dict, further: list[str] = ()) -> dict:
    """`config` checked against `model` and refused (`config.refuse`) with every problem,
    the model's and `further` (a kind's checks of files and data); else the config with
    every default filled in (`resolved`), the keys starting with "_" kept."""
    from .config import refuse

    instance, found = problems(model, config)
    refuse(found + list(further))
    return resolved(instance) | {k: v for k, v in config.items() if str(k).startswith("_")}


def experiment(kind: str, seed: str) -> type[Section]:
    """The [experiment] section of `kind`: `name` (default: the kind), `kind`,
    `description` and `seed` (`seed`: what the seed draws)."""
    return pydantic.create_model(
        "Experiment",
        __base__=Section,
        name=(str, Field(kind, description="label of the run, used in figure titles and the output folder")),
        kind=(Literal[kind], Field(description=f"`{kind}`")),
        description=(str, Field("", description="free text, copied into the summary")),
        seed=(int, Field(0, description=seed)),
    )


# --- values -------------------------------------------------------------------------------


def one_of(choices):
    """A validator: the value must be one of `choices` ('...; use one of a, b')."""

    def check(value):
        if value not in choices:
            raise ValueError(f"{value!r}; use one of {', '.join(map(str, choices))}")
        return value

    return pydantic.AfterValidator(check)


def _date(value: str) -> str:
    import pandas as pd

    try:
        pd.Timestamp(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (write YYYY-MM-DD)") from None
    return value


def _iso(value):
    import datetime

    return value.isoformat() if isinstance(value, datetime.date) else value


Date = Annotated[str, pydantic.BeforeValidator(_iso), pydantic.AfterValidator(_date)]
"""A date: a string that is one ("2015-01-01"), or a TOML date (2015-01-01), kept as its
ISO text."""


# --- sections several kinds share ----------------------------------------------------------


class ParameterTable(Section):
    """A [parameters.NAME] table: one parameter to fit (`config.parameter` builds it)."""

    path: str | None = Field(None, description="the model leaf, e.g. 'surface.thawing' (default: NAME)")
    init: float | None = Field(None, description="start value [units]")
    bounds: list[float] | None = Field(None, description="[low, high] [units]")
    prior: dict | None = Field(None, description="{dist = 'normal' | 'lognormal' | 'uniform', ...}")
    scope: str = Field("shared", description="'shared' or 'per_site' / 'per_glacier' where the kind has them")
    units: str | None = Field(None, description="units of init, bounds and prior (converted to the model's)")

    @pydantic.field_validator("bounds")
    @classmethod
    def _bounds(cls, value):
        if value is not None and len(value) != 2:
            raise ValueError(f"bounds must be [low, high], got {value!r}")
        if value is not None and value[0] >= value[1]:
            raise ValueError(f"bounds [{value[0]}, {value[1]}] are reversed; write [{value[1]}, {value[0]}]")
        return value


def parameter_tables(tables: dict[str, ParameterTable], example: str) -> dict[str, ParameterTable]:
    """Each table built as a `Parameter` (bounds, priors, units checked); at least one."""
    from .config import parameter

    if not tables:
        raise ValueError(f"name at least one parameter to fit, e.g. [parameters.{example}]")
    problems = []
    for name, table in tables.items():
        try:
            parameter(name, table.model_dump(exclude_none=True))
        except (TypeError, ValueError) as error:
            text = str(error).removeprefix(f"parameters.{name}: ")
            problems.append(f"parameters.{name}: {text}")
    if problems:
        raise ValueError("\n".join(problems))
    return tables


class Fit(Section):
    method: str = Field(
        "levenberg_marquardt", description="levenberg_marquardt, gauss_newton, lbfgs or adam (cg.assimilation.METHODS)"
    )
    max_steps: int = Field(200, ge=1, description="iteration limit")
    rtol: float = Field(1e-6, gt=0, description="optimistix's Cauchy criterion on the parameters")
    atol: float = Field(1e-6, gt=0, description="optimistix's Cauchy criterion on the loss")
    checkpoint_every: int = Field(20, ge=1, description="steps between checkpoints (and per compiled chunk)")

    @pydantic.field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        from ..assimilation import METHODS

        if value not in METHODS:
            raise ValueError(f"{value!r} is not one of {', '.join(METHODS)}")
        return value


class DatePeriod(Section):
    """A period of days: start and end dates, in order."""

    start: Date = Field(description="first day (YYYY-MM-DD)")
    end: Date = Field(description="last day (YYYY-MM-DD)")

    @pydantic.model_validator(mode="after")
    def _in_order(self):
        import pandas as pd

        if pd.Timestamp(self.start) > pd.Timestamp(self.end):
            raise ValueError(f"start {self.start} is after end {self.end}; swap them")
        return self


def _message(model: type[Config], error: dict) -> list[str]:
    """The lines of one validation error: 'dotted.key: message'. A validator's message may
    hold several lines, each already naming its own key (left as it is)."""
    loc, _, _, branch = _walk(model, error["loc"])
    if branch is not None and branch != isinstance(error.get("input"), dict):
        return []  # the branch of a union (a number or a table) the value was not written as
    error = error | {"loc": loc}
    location = [str(part) for part in loc]
    key = ".".join(location)
    if error["type"] == "extra_forbidden":
        allowed = _fields_at(model, error["loc"][:-1])
        close = difflib.get_close_matches(location[-1], allowed, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(sorted(allowed))}"
        return [f"{key}: unknown key; {hint}"]
    if error["type"] == "missing":
        description = _description_at(model, error["loc"])
        return [f"{key}: missing ({description})" if description else f"{key}: missing"]
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if error["type"] not in ("value_error", "assertion_error"):
        message = f"{message}, got {error.get('input')!r}"
    lines = []
    for line in message.split("\n"):
        named = bool(location) and re.match(rf"{re.escape(location[0])}[.:]", line)
        lines.append(line if not key or named else f"{key}: {line}")
    return lines


def _walk(model, loc) -> tuple[tuple, type | None, object, bool | None]:
    """Follow an error's `loc` through the model. Returns (`loc` without pydantic's
    union-member tags such as 'float' or 'TruthDraw'; the section at its end, or None; the
    field that leads there, or None; for an error of a union member as a whole, whether
    that member is a table (section), else None).

    List indices and the NAMEs of tables of tables (such as [parameters.NAME]) are kept
    and stepped over. An optional section (`Section | None`) has no tag, and a loc whose
    tags were taken out already is followed into the union's section."""
    parts, current, options, table_keys, branch, field = [], model, (), False, None, None
    inside = False  # whether the loc goes on past the last union member's tag

    def only_section():
        models = [m for m in options if _is_model(m)]
        return models[0] if len(models) == 1 else None

    for part in loc:
        if isinstance(part, int) or table_keys:
            parts.append(part)
            table_keys, inside = False, True
            continue
        if current is None and options:
            section, optional = only_section(), len(options) == 2 and type(None) in options
            named = [m for m in options if _is_model(m) and m.__name__ == part]
            options = ()
            if named or not (section is not None and (optional or part in section.model_fields)):
                branch, inside = bool(named), False  # a member's tag
                current = named[0] if named else None
                continue
            current = section
        inside = True
        parts.append(part)
        field = current.model_fields.get(part) if _is_model(current) else None
        if field is None:
            current = None
            continue
        annotation = field.annotation
        table_keys = typing.get_origin(annotation) is dict
        union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
        options = typing.get_args(annotation) if union else ()
        current = None if union else _section_type(annotation)
    if current is None and options:
        current = only_section()
    return tuple(parts), current, field, (None if branch is None or inside else branch)


def _fields_at(model, loc) -> list[str]:
    """The field names of the section at `loc`."""
    _, section, _, _ = _walk(model, loc)
    return list(section.model_fields) if _is_model(section) else []


def _description_at(model, loc) -> str:
    """The description of the field at `loc`, or ''."""
    _, _, field, _ = _walk(model, loc)
    return (field.description or "") if field is not None else ""


def _is_model(value) -> bool:
    return isinstance(value, type) and issubclass(value, pydantic.BaseModel)


def _section_type(annotation):
    """The model inside an annotation (`Section`, `list[Section]`, `Section | None`, ...)."""
    if _is_model(annotation):
        return annotation
    for argument in typing.get_args(annotation):
        found = _section_type(argument)
        if found is not None:
            return found
    return None


def key_table(model: type[Section], prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """(dotted key, type, default, description) of every key, sections expanded; a list of
    tables is one row (its items' keys are in its description)."""
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # an optional section
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = options[0] if len(options) == 1 and _is_model(options[0]) else annotation
        if _is_model(annotation):
            rows.extend(key_table(annotation, f"{key}."))
            continue
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        rows.append((key, _type_name(annotation), default, field.description or ""))
    return rows


def _type_name(annotation) -> str:
    if annotation in (int,):
        return "integer"
    if annotation in (float,):
        return "number"
    if annotation is str:
        return "string"
    if annotation is bool:
        return "boolean"
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "string"
    if origin in (list, tuple):
        return "list"
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(dict.fromkeys(names))
    return getattr(annotation, "__name__", str(annotation))


# --- the soil column of the permafrost kinds ------------------------------------------------


class SoilLayerTable(Section):
    """One soil layer (`cg.physics.SoilLayer` arguments)."""

    top: float = Field(description="[m] top of the layer")
    water_content: float = Field(description="[m3 m-3]")
    k_thawed: float = Field(description="[W m-1 K-1]")
    k_frozen: float = Field(description="[W m-1 K-1]")
    c_thawed: float = Field(description="[J m-3 K-1]")
    c_frozen: float = Field(description="[J m-3 K-1]")

    @pydantic.model_validator(mode="after")
    def _soil(self):
        from .. import physics as P

        P.SoilLayer(**self.model_dump())  # the soil values themselves (positive conductivities, ...)
        return self


def _solver(value: str) -> str:
    from ..physics._column import SOLVERS

    one_of(SOLVERS).func(value)
    if value == "native":
        from ..physics import _native

        if not _native.available():
            raise ValueError("'native', but the native kernel was not built with this installation")
    return value


def _time_scheme(value: str) -> str:
    from ..physics._heat import TIME_SCHEMES

    return one_of(TIME_SCHEMES).func(value)


def _conductivity(value: str) -> str:
    from ..physics._heat import CONDUCTIVITIES

    return one_of(CONDUCTIVITIES).func(value)


class ColumnOptions(Section):
    """How a `PermafrostColumn` is solved (not given: the column's defaults)."""

    solver: Annotated[str, pydantic.AfterValidator(_solver)] | None = Field(
        None,
        description="`auto` (the column's default: the C++ kernel built at install where it can run the column, "
        "else JAX), `native` or `jax`",
    )
    time_scheme: Annotated[str, pydantic.AfterValidator(_time_scheme)] | None = Field(
        None, description="`bdf2` (the column's default, second order) or `euler` (first order)"
    )
    conductivity: Annotated[str, pydantic.AfterValidator(_conductivity)] | None = Field(
        None, description="`predicted` (the column's default) or `lagged`"
    )


class SnowColumn(ColumnOptions):
    """A soil column under a snowpack (`config.snow_column`): geometric grid, layers, `Snow`."""

    depth: float = Field(30.0, gt=0, description="[m] depth of the column's geometric grid")
    cells: int = Field(40, ge=2, description="cells of the grid")
    dz_top: float = Field(0.02, gt=0, description="[m] thickness of the top cell")
    geothermal_flux: float = Field(0.05, description="[W m-2] heat flux into the bottom")
    snow_density: float = Field(250.0, gt=0, description="[kg m-3] snow density")
    snow_min_depth: float = Field(0.02, ge=0, description="[m] snow thinner than this is not resolved")
    snow_cells: int = Field(3, ge=1, description="snow cells of the implicit solve")
    layers: list[SoilLayerTable] = Field(
        min_length=1,
        description="soil layers: `top` [m], `water_content` [m3 m-3], `k_thawed`, `k_frozen` [W m-1 K-1], "
        "`c_thawed`, `c_frozen` [J m-3 K-1]",
    )


# --- the glacier kinds -----------------------------------------------------------------------


class GlacierFit(Fit):
    gtol: float = Field(1e-6, gt=0, description="L-BFGS/Adam stop below this gradient norm [loss units]")


class GlacierUncertainty(Section):
    hessian: Annotated[str, one_of(("exact", "gauss_newton"))] = Field(
        "exact", description="the Laplace approximation's Hessian: 'exact' or 'gauss_newton'"
    )
    sampler: Annotated[str, one_of(("none", "nuts"))] = Field(
        "none", description="`nuts` checks the Laplace approximation with blackjax NUTS"
    )
    num_warmup: int = Field(500, ge=1, description="NUTS warm-up draws")
    num_samples: int = Field(1000, ge=1, description="NUTS kept draws")
    band_draws: int = Field(200, ge=2, description="Laplace draws for the figures' 5-95 % bands")


class YearSpan(Section):
    """Mass-balance years, first and last."""

    start: int = Field(description="first mass-balance year")
    end: int = Field(description="last mass-balance year")

    @pydantic.model_validator(mode="after")
    def _in_order(self):
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}; swap them")
        return self

    @property
    def years(self) -> set[int]:
        """The mass-balance years, first to last."""
        return set(range(self.start, self.end + 1))


class TemperatureIndexModel(Section):
    """Fixed values of `MonthlyTemperatureIndex` arguments (not given: OGGM 1.6.3's)."""

    melt_factor: float | None = Field(None, description="[kg m-2 day-1 K-1]")
    precipitation_factor: float | None = Field(None, description="[1]")
    temperature_bias: float | None = Field(None, description="[K]")
    melt_threshold: float | None = Field(None, description="[degC]")
    solid_threshold: float | None = Field(None, description="[degC]")
    liquid_threshold: float | None = Field(None, description="[degC]")
    lapse_rate: float | None = Field(None, description="[K m-1]")
    days_per_month: str | None = Field(None, description="how days per month are counted (the model's argument)")


def model_parameters(tables: dict[str, ParameterTable], example: str = "melt_factor") -> dict[str, ParameterTable]:
    """`parameter_tables`, each path (default NAME) a `MonthlyTemperatureIndex` parameter."""
    names = [n for n in TemperatureIndexModel.model_fields if n != "days_per_month"]
    wrong = [
        f"parameters.{name}: the model has no parameter {table.path or name!r}; fit one of {', '.join(names)} "
        "(or set path=)"
        for name, table in tables.items()
        if (table.path if table.path is not None else name) not in names
    ]
    if wrong:
        raise ValueError("\n".join(wrong))
    return parameter_tables(tables, example)


class Projection(Section):
    """[projection] (a shared section; the permafrost kind runs it): the record's climate
    repeated with a warming trend, run on from the record's end with the calibrated
    parameters and each Laplace draw, and again without the warming."""

    years: int = Field(ge=1, le=500, description="[yr] years projected after the record's last day")
    warming_per_decade: float = Field(
        description="[K per decade] added to the air temperature, growing linearly from the record's end"
    )
    magt_depths: list[Annotated[float, pydantic.Field(ge=0)]] = Field(
        [1.0, 5.0, 10.0], min_length=1, description="[m] depths of the projected mean annual ground temperature"
    )
