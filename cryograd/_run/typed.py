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
import types
import typing
from typing import Annotated, Any

import pydantic
from pydantic import ConfigDict, Field

__all__ = [
    "Config",
    "DatePeriod",
    "Field",
    "Fit",
    "ParameterTable",
    "Section",
    "Uncertainty",
    "date_text",
    "key_table",
    "one_of",
    "problems",
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
        return None, [_message(model, e) for e in error.errors(include_url=False)]


def resolved(instance: Config) -> dict:
    """The config with every default filled in, as plain TOML-like values (keys whose
    default is None, "not given", left out)."""
    return instance.model_dump(mode="json", exclude_none=True)


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


date_text = pydantic.AfterValidator(_date)
"""A validator: the string must be a date."""


# --- sections several kinds share ----------------------------------------------------------


class ParameterTable(Section):
    """A [parameters.NAME] table: one parameter to fit (`config.parameter` builds it)."""

    path: str | None = Field(None, description="the model leaf, e.g. 'surface.thawing' (default: NAME)")
    init: float | None = Field(None, description="start value [units]")
    bounds: list[float] | None = Field(None, description="[low, high] [units]")
    prior: dict | None = Field(None, description="{dist = 'normal' | 'lognormal' | 'uniform', ...}")
    scope: str = Field("shared", description="'shared' or 'per_site' / 'per_glacier' where the kind has them")
    units: str | None = Field(None, description="units of init, bounds and prior (converted to the model's)")


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
            problems.append(f"{name}: {text}")
    if problems:
        raise ValueError("; ".join(problems))
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


class Uncertainty(Section):
    hessian: str = Field("exact", description="the Laplace approximation's Hessian: 'exact' or 'gauss_newton'")


class DatePeriod(Section):
    """A period of days: start and end dates, in order."""

    start: Annotated[str, date_text] = Field(description="first day (YYYY-MM-DD)")
    end: Annotated[str, date_text] = Field(description="last day (YYYY-MM-DD)")

    @pydantic.model_validator(mode="after")
    def _in_order(self):
        import pandas as pd

        if pd.Timestamp(self.start) > pd.Timestamp(self.end):
            raise ValueError(f"start {self.start} is after end {self.end}; swap them")
        return self


def _message(model: type[Config], error: dict) -> str:
    location = [str(part) for part in error["loc"]]
    key = ".".join(location)
    if error["type"] == "extra_forbidden":
        allowed = _fields_at(model, error["loc"][:-1])
        close = difflib.get_close_matches(location[-1], allowed, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(sorted(allowed))}"
        return f"{key}: unknown key; {hint}"
    if error["type"] == "missing":
        description = _description_at(model, error["loc"])
        return f"{key}: missing ({description})" if description else f"{key}: missing"
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if error["type"] not in ("value_error", "assertion_error"):
        message = f"{message}, got {error.get('input')!r}"
    return f"{key}: {message}" if key else message


def _walk(model, loc):
    """(the section at `loc`, the field that leads there): list indices and the keys of
    tables of tables (such as [parameters.NAME]) are skipped."""
    current, field, table_keys = model, None, False
    for part in loc:
        if isinstance(part, int):
            continue
        if table_keys:  # a NAME of a dict of sections
            table_keys = False
            continue
        if not _is_model(current) or part not in current.model_fields:
            return None, None
        field = current.model_fields[part]
        current = _section_type(field.annotation)
        table_keys = typing.get_origin(field.annotation) is dict
    return current, field


def _fields_at(model, loc) -> list[str]:
    """The field names of the section at `loc`."""
    current, _ = _walk(model, loc)
    return list(current.model_fields) if _is_model(current) else []


def _description_at(model, loc) -> str:
    """The description of the field at `loc`, or ''."""
    _, field = _walk(model, loc)
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
