"""Parameters to fit: which model leaf each controls, bounds as a reparameterisation, priors.

A parameter lives in two spaces. The optimiser and the sampler work on an unconstrained
value u (any real number); the model sees theta = T(u) inside the bounds:

    bounds (lo, hi):   theta = lo + (hi - lo) sigmoid(u)
    bounds (lo, None): theta = lo + softplus(u)
    bounds (None, hi): theta = hi - softplus(u)
    no bounds:         theta = u

Priors are densities of theta. The Gaussian-form priors (`Normal`, `LogNormal`,
`TruncatedNormal`) also give residuals, so Gauss-Newton and Levenberg-Marquardt see them
as extra rows of the least-squares problem.
"""

import math
import re
from collections.abc import Callable, Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

Scope = Literal["shared", "member"]
SCOPES = {"shared": "shared", "member": "member", "site": "member", "glacier": "member"}


# --- priors ----------------------------------------------------------------------------------


class AbstractPrior(eqx.Module):
    """A prior density of a parameter's value theta (in the parameter's units)."""

    def neg_log_density(self, theta):
        """-log p(theta), up to a constant, summed over the elements of theta."""
        residual = self.residual(theta)
        return 0.5 * jnp.sum(residual**2)

    def residual(self, theta):
        """Whitened residual r with -log p = r^2 / 2 + const, or None for priors without one."""
        return None

    @property
    def support(self) -> tuple[float | None, float | None]:
        """The interval the density lives on; the parameter's bounds default to it."""
        return (None, None)


class Normal(AbstractPrior):
    """Normal prior N(mean, std^2) [the parameter's units]."""

    mean: float
    std: float

    def __init__(self, mean: float, std: float):
        _positive(std, "Normal prior std")
        self.mean, self.std = float(mean), float(std)

    def residual(self, theta):
        return (theta - self.mean) / self.std


class LogNormal(AbstractPrior):
    """Log-normal prior: log(theta) ~ N(log(median), sigma^2); theta > 0.

    The density is taken in log(theta) (no 1/theta factor), so the prior is a Gaussian
    residual in log space and its mode is the median.
    """

    median: float
    sigma: float

    def __init__(self, median: float, sigma: float):
        _positive(median, "LogNormal prior median")
        _positive(sigma, "LogNormal prior sigma")
        self.median, self.sigma = float(median), float(sigma)

    def residual(self, theta):
        return (jnp.log(theta) - math.log(self.median)) / self.sigma

    @property
    def support(self):
        return (0.0, None)


class TruncatedNormal(AbstractPrior):
    """Normal prior N(mean, std^2) restricted to [low, high], which become the bounds."""

    mean: float
    std: float
    low: float | None
    high: float | None

    def __init__(self, mean: float, std: float, low: float | None = None, high: float | None = None):
        _positive(std, "TruncatedNormal prior std")
        if low is not None and high is not None and not float(low) < float(high):
            raise ValueError(f"TruncatedNormal prior: low ({low}) must be below high ({high})")
        self.mean, self.std = float(mean), float(std)
        self.low = None if low is None else float(low)
        self.high = None if high is None else float(high)

    def residual(self, theta):
        return (theta - self.mean) / self.std

    @property
    def support(self):
        return (self.low, self.high)


class Uniform(AbstractPrior):
    """Uniform prior on [low, high]; the interval becomes the parameter's bounds."""

    low: float
    high: float

    def __init__(self, low: float, high: float):
        if not float(low) < float(high):
            raise ValueError(f"Uniform prior: low ({low}) must be below high ({high})")
        self.low, self.high = float(low), float(high)

    def neg_log_density(self, theta):
        return jnp.zeros(())

    def residual(self, theta):
        return jnp.zeros((0,))  # flat inside the bounds: no term

    @property
    def support(self):
        return (self.low, self.high)


PRIORS = {"normal": Normal, "lognormal": LogNormal, "truncated_normal": TruncatedNormal, "uniform": Uniform}


def prior_from_config(spec, where: str) -> AbstractPrior | None:
    """A prior from a TOML table such as {type = "normal", mean = 5.0, std = 2.0}."""
    if spec is None or isinstance(spec, AbstractPrior):
        return spec
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"{where}: a prior is a table with a 'type' ({', '.join(PRIORS)}), got {spec!r}")
    kind = str(spec["type"]).lower().replace("-", "_")
    if kind not in PRIORS:
        raise ValueError(f"{where}: unknown prior type {spec['type']!r}; use one of {', '.join(PRIORS)}")
    arguments = {k: v for k, v in spec.items() if k != "type"}
    try:
        return PRIORS[kind](**arguments)
    except TypeError as error:
        raise ValueError(f"{where}: {error}") from None


def _positive(value, name):
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")


# --- paths into a model ----------------------------------------------------------------------

_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")


def parse_path(path: str) -> tuple[str | int, ...]:
    """'layers.0.k_thawed' -> ('layers', 0, 'k_thawed'); 'freeze_curve.a[2]' works too."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"a parameter path must be a non-empty string, got {path!r}")
    text = path.replace("[", ".").replace("]", "")
    parts = text.split(".")
    if not all(_PART.fullmatch(part) for part in parts):
        raise ValueError(f"parameter path {path!r}: use dotted names and integer indices, e.g. 'layers.0.k_thawed'")
    return tuple(int(part) if part.isdigit() else part for part in parts)


def _child(node, part, path):
    if isinstance(part, int):
        if isinstance(node, list | tuple) or (hasattr(node, "shape") and np.ndim(node) >= 1):
            if part >= len(node):
                raise ValueError(f"parameter path {path!r}: index {part} out of range (length {len(node)})")
            return node[part]
        raise ValueError(f"parameter path {path!r}: cannot index {type(node).__name__} with {part}")
    if isinstance(node, dict):
        if part not in node:
            raise ValueError(f"parameter path {path!r}: no key {part!r}; keys are {sorted(node)}")
        return node[part]
    if not hasattr(node, part):
        fields = [f for f in getattr(node, "__dataclass_fields__", {}) if not f.startswith("_")]
        raise ValueError(f"parameter path {path!r}: {type(node).__name__} has no field {part!r}; fields: {fields}")
    return getattr(node, part)


def _is_array(node) -> bool:
    return isinstance(node, jax.Array | np.ndarray | float | int)


def split_path(model, path: str):
    """(selector of the array leaf, element index or None) for a dotted path."""
    parts = parse_path(path)
    node = model
    for depth, part in enumerate(parts):
        if _is_array(node):
            if depth != len(parts) - 1 or not isinstance(part, int):
                raise ValueError(f"parameter path {path!r}: indexes past an array leaf")
            _child(node, part, path)
            return _selector(parts[:depth]), part
        node = _child(node, part, path)
    if node is None:
        raise ValueError(f"parameter path {path!r} points at None: the model does not use this parameter")
    if not _is_array(node):
        raise ValueError(f"parameter path {path!r} points at a {type(node).__name__}, not a number or array")
    return _selector(parts), None


def with_leaves(model, values: dict):
    """`model` with the leaves at dotted parameter paths set (path -> value, e.g.
    `{"layers.0.k_frozen": 1.8, "geothermal_flux": 0.06}`); a value fills the whole leaf,
    or one element where the path ends in an index (`"melt_factor.3"`). The leaves become
    float64 arrays."""
    for path, value in values.items():
        where, element = split_path(model, path)
        leaf = jnp.asarray(where(model), jnp.float64)
        new = jnp.broadcast_to(value, leaf.shape) if element is None else leaf.at[element].set(value)
        model = eqx.tree_at(where, model, new)
    return model


def _selector(parts):
    def where(model):
        node = model
        for part in parts:
            node = node[part] if isinstance(part, int) or isinstance(node, dict) else getattr(node, part)
        return node

    return where


# --- parameters -----------------------------------------------------------------------------


class Parameter:
    """A fitted quantity: the model leaf it controls, its bounds, prior, scope and start.

    **Arguments:**

    - `name`: label in results (default: the path).
    - `path`: dotted path of the model leaf, e.g. `"melt_factor"`, `"layers.0.k_thawed"`,
      `"freeze_curve.a.2"` (element 2 of an array leaf) or `"surface.density"`; or a
      callable `where(model) -> leaf` as for `eqx.tree_at`; or `None` for a parameter that
      only observation operators use (for example an LST-surface offset).
    - `init`: start value [the leaf's units]; default: the model's current value.
    - `bounds`: (low, high) [units], either may be None; enforced by the
      reparameterisation. Defaults to the prior's support.
    - `prior`: `Normal`, `LogNormal`, `TruncatedNormal`, `Uniform` or None (flat).
    - `scope`: `"shared"` (one value) or `"member"` (one value per site or glacier of a
      batched problem; `"site"` and `"glacier"` are aliases).
    - `units`: for reports.
    """

    def __init__(
        self,
        path: str | Callable | None,
        *,
        name: str | None = None,
        init=None,
        bounds: Sequence[float | None] | None = None,
        prior: AbstractPrior | dict | None = None,
        scope: str = "shared",
        units: str = "",
    ):
        if name is None:
            if not isinstance(path, str):
                raise ValueError("a Parameter with a callable or no path needs a name")
            name = path
        if isinstance(path, str):
            parse_path(path)
        elif path is not None and not callable(path):
            raise ValueError(f"parameter {name!r}: path must be a dotted string, a callable or None, got {path!r}")
        if scope not in SCOPES:
            raise ValueError(f"parameter {name!r}: scope must be one of {sorted(SCOPES)}, got {scope!r}")
        prior = prior_from_config(prior, f"parameter {name!r}")
        support = prior.support if prior is not None else (None, None)
        if bounds is None:
            bounds = support
        if len(tuple(bounds)) != 2:
            raise ValueError(f"parameter {name!r}: bounds must be (low, high), got {bounds!r}")
        low, high = (None if b is None or not np.isfinite(b) else float(b) for b in bounds)
        if low is not None and high is not None and not low < high:
            raise ValueError(f"parameter {name!r}: bounds must be (low, high) with low < high, got {tuple(bounds)}")
        for side, (bound, limit) in enumerate(zip((low, high), support, strict=True)):
            if limit is not None and (bound is None or (bound < limit if side == 0 else bound > limit)):
                raise ValueError(
                    f"parameter {name!r}: bounds {tuple(bounds)} reach outside the prior's support {support}"
                )
        self.name = str(name)
        self.path = path
        self.init = None if init is None else np.asarray(init, dtype=float)
        self.bounds = (low, high)
        self.prior = prior
        self.scope = SCOPES[scope]
        self.units = units

    def __repr__(self):
        return f"Parameter({self.name!r}, bounds={self.bounds}, prior={self.prior}, scope={self.scope!r})"

    # The reparameterisation, elementwise.
    def constrain(self, u):
        """The parameter value for an unconstrained `u` (pure JAX): a scaled sigmoid between two
        bounds, an exponential above a lower bound, the identity without bounds."""
        low, high = self.bounds
        if low is not None and high is not None:
            return low + (high - low) * jax.nn.sigmoid(u)
        if low is not None:
            return low + jax.nn.softplus(u)
        if high is not None:
            return high - jax.nn.softplus(u)
        return u

    def unconstrain(self, theta) -> np.ndarray:
        """The unconstrained `u` of a value `theta` (the inverse of `constrain`); `ValueError` if
        `theta` is not strictly inside the bounds."""
        theta = np.asarray(theta, dtype=float)
        low, high = self.bounds
        if (low is not None and np.any(theta <= low)) or (high is not None and np.any(theta >= high)):
            raise ValueError(
                f"parameter {self.name!r}: start value {theta} must lie strictly inside bounds {self.bounds}"
            )
        if low is not None and high is not None:
            share = (theta - low) / (high - low)
            return np.log(share) - np.log1p(-share)
        if low is not None:
            return _inverse_softplus(theta - low)
        if high is not None:
            return _inverse_softplus(high - theta)
        return theta

    def log_jacobian(self, u):
        """log |d theta / d u|, summed (for sampling in u)."""
        low, high = self.bounds
        if low is not None and high is not None:
            return jnp.sum(math.log(high - low) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u))
        if low is not None or high is not None:
            return jnp.sum(jax.nn.log_sigmoid(u))
        return jnp.zeros(())


def _inverse_softplus(y):
    return np.where(y > 30, y, np.log(np.expm1(np.minimum(y, 30))))


# --- closures (networks inside the physics) ---------------------------------------------------


def closure_parameters(model, where: Callable, *, name: str = "closure", prior_std: float | None = None) -> list:
    """One unbounded `Parameter` per floating-point array of a closure inside `model`.

    **Arguments:** `model`, the physics model; `where(model)`, the closure (or any
    sub-module) whose weights to fit, e.g. `lambda m: m.surface.closure`; `name`, the
    prefix of the labels (`name.network.layers[0].weight`); `prior_std`, a Normal(0,
    prior_std) prior on every weight (weight decay; its residuals enter Gauss-Newton),
    or None for none.

    Fit them with `fit(..., method="adam")` or `"lbfgs"` (reverse-mode gradients): a
    network has too many unknowns for forward-mode Jacobians.
    """
    node = where(model)
    leaves, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(node, eqx.is_inexact_array))
    if not leaves:
        raise ValueError(f"closure_parameters: {type(node).__name__} has no floating-point arrays to fit")
    prior = None if prior_std is None else Normal(0.0, prior_std)
    return [
        Parameter(_key_selector(where, path), name=f"{name}{jax.tree_util.keystr(path)}", prior=prior)
        for path, _ in leaves
    ]


def _key_selector(where, path):
    def select(model):
        node = where(model)
        for key in path:
            if isinstance(key, jax.tree_util.GetAttrKey):
                node = getattr(node, key.name)
            elif isinstance(key, jax.tree_util.SequenceKey):
                node = node[key.idx]
            elif isinstance(key, jax.tree_util.DictKey):
                node = node[key.key]
            else:
                raise ValueError(f"closure_parameters: cannot follow {key!r}")
        return node

    return select
