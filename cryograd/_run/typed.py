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
from typing import Any

import pydantic
from pydantic import ConfigDict, Field

__all__ = ["Config", "Field", "Section", "key_table", "problems", "resolved"]


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
    """The config with every default filled in, as plain TOML-like values."""
    return instance.model_dump(mode="json")


def _message(model: type[Config], error: dict) -> str:
    location = [str(part) for part in error["loc"]]
    key = ".".join(location)
    if error["type"] == "extra_forbidden":
        allowed = _fields_at(model, error["loc"][:-1])
        close = difflib.get_close_matches(location[-1], allowed, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(sorted(allowed))}"
        return f"{key}: unknown key; {hint}"
    if error["type"] == "missing":
        return f"{key}: missing"
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if error["type"] not in ("value_error", "assertion_error"):
        message = f"{message}, got {error.get('input')!r}"
    return f"{key}: {message}" if key else message


def _fields_at(model, loc) -> list[str]:
    """The field names of the section at `loc` (list indices skipped)."""
    current = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if _is_model(current) else None
        if field is None:
            return []
        current = _section_type(field.annotation)
    return list(current.model_fields) if _is_model(current) else []


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
