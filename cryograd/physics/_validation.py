"""Checks of static input, raising ValueError naming the argument."""

import jax
import numpy as np


def is_concrete(*values) -> bool:
    """True when no value is a JAX tracer (so numpy checks are possible)."""
    leaves = jax.tree_util.tree_leaves(values)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def as_float_array(value, name: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric, got {value!r}") from error
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return array


def require_positive(value, name: str) -> None:
    array = np.asarray(value)
    if np.any(array <= 0):
        raise ValueError(f"{name} must be positive, got {value!r}")


def require_non_negative(value, name: str) -> None:
    array = np.asarray(value)
    if np.any(array < 0):
        raise ValueError(f"{name} must be non-negative, got {value!r}")


def require_in_range(value, name: str, low: float, high: float) -> None:
    array = np.asarray(value)
    if np.any(array < low) or np.any(array > high):
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value!r}")
