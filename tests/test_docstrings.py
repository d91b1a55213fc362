"""Every public name has a docstring, and every physical quantity a model takes states its units."""

import dataclasses
import inspect
import re

import equinox as eqx
import pytest

import cryograd as cg

NAMESPACES = (cg.physics, cg.assimilation, cg.data)


def public(module):
    return [(name, getattr(module, name)) for name in sorted(dir(module)) if not name.startswith("_")]


def public_methods(cls):
    """Public methods and properties that cryograd defines (not those inherited from diffrax etc.)."""
    for name in dir(cls):
        owner = next((c for c in cls.__mro__ if name in vars(c)), None)
        if name.startswith("_") or owner is None or not owner.__module__.startswith("cryograd"):
            continue
        attribute = inspect.getattr_static(cls, name)
        function = attribute.__func__ if isinstance(attribute, classmethod | staticmethod) else attribute
        if inspect.isfunction(function) or isinstance(attribute, property):
            yield name


def test_public_names_and_methods_have_docstrings():
    missing = []
    for module in NAMESPACES:
        for name, obj in public(module):
            if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)):
                continue
            if not inspect.getdoc(obj):
                missing.append(f"{module.__name__}.{name}")
            if inspect.isclass(obj):
                missing += [
                    f"{module.__name__}.{name}.{method}"
                    for method in public_methods(obj)
                    if not inspect.getdoc(getattr(obj, method))
                ]
    assert not missing, "no docstring: " + ", ".join(missing)


def quantity_fields(cls):
    """The floating-point fields of a model: its physical quantities and learnable leaves."""
    return [
        field.name
        for field in dataclasses.fields(cls)
        if field.init and not field.name.startswith("_") and re.search(r"\bFloat\b|\bfloat\b", str(field.type))
    ]


def documented_with_units(name, docs):
    """True when `name` appears in backticks in one of `docs` and the text from there to the
    end of its bullet or paragraph gives units in brackets ([1] for pure numbers)."""
    for doc in docs:
        for match in re.finditer(rf"`{name}`", doc):
            rest = doc[match.end() :]
            end = re.search(r"\n- |\n\n|\Z", rest)
            if "[" in rest[: end.start()]:
                return True
    return False


MODELS = [
    obj
    for _, obj in public(cg.physics)
    if inspect.isclass(obj) and issubclass(obj, eqx.Module) and not inspect.isabstract(obj) and quantity_fields(obj)
]
MODELS_BY_NAME = {cls.__name__ for cls in MODELS}


@pytest.mark.parametrize("cls", MODELS, ids=lambda cls: cls.__name__)
def test_model_quantities_state_units(cls):
    doc = inspect.getdoc(cls)
    # a docstring may defer to another model's arguments by naming it (`DailyTemperatureIndex`)
    referenced = [
        inspect.getdoc(getattr(cg.physics, name)) for name in re.findall(r"`(\w+)`", doc) if name in MODELS_BY_NAME
    ]
    missing = [name for name in quantity_fields(cls) if not documented_with_units(name, [doc, *referenced])]
    assert not missing, f"{cls.__name__}: fields without units in the docstring: {', '.join(missing)}"


def test_units_check_can_fail():
    assert documented_with_units("k", ["- `k`: conductivity [W m-1 K-1]."])
    assert not documented_with_units("k", ["- `k`: conductivity.\n- `c`: capacity [J m-3 K-1]."])
    assert not documented_with_units("c", ["- `k`: conductivity [W m-1 K-1]."])
