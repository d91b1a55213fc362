"""Closures: learnable functions that stand in for a model's parameterisations.

A closure is an ordinary leaf of the model it sits in (an `equinox.Module`), so it is
jitted, vmapped and differentiated with the rest of the physics: `jax.grad` of any loss
of the model's outputs reaches the network's weights, and the same `fit` (or optax
directly) trains them together with the physical parameters.

Where a closure can go:

- `NeuralSurfaceOffset(...)` as a soil column's `surface`: the ground-surface temperature
  is the air temperature plus a learned offset of air temperature, snow depth and day of
  year (it replaces n-factors and a resolved snowpack);
- `MonthlyTemperatureIndex(melt_factor=neural_melt_factor(...))`: the melt factor is a
  learned positive function of the band's air temperature, the month and the elevation;
- any other place that calls a closure with named inputs: subclass `AbstractClosure`
  (a network, a lookup table, a physical formula with free constants).

`MLPClosure` is the network: inputs are centred and scaled (or encoded as sine and cosine
when periodic), passed through an `equinox.nn.MLP`, and mapped to the output as
`centre + scale y` or, for positive quantities, `centre exp(scale y)`. Its last layer
starts at zero, so a new closure returns `centre` everywhere: the constant physical
default. `MLPClosure.mimic` trains it to reproduce any other default function.
"""

import abc
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, PRNGKeyArray

from ._surface import AbstractSurface


class AbstractClosure(eqx.Module):
    """A learnable function of named inputs that replaces a parameterisation.

    `closure(inputs)` takes a mapping of input name -> array (the names in
    `input_names`; shapes broadcast against each other; extra names are ignored) and
    returns an array of the broadcast shape. It must be pure JAX.
    """

    input_names: eqx.AbstractVar[tuple[str, ...]]

    @abc.abstractmethod
    def __call__(self, inputs: Mapping[str, ArrayLike]) -> Array:
        """The closure's value for `inputs` (elementwise over the broadcast shape)."""

    def _check_inputs(self, inputs: Mapping[str, ArrayLike]) -> None:
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise ValueError(
                f"{type(self).__name__} needs inputs {list(self.input_names)}; missing {missing} "
                f"(given: {sorted(inputs)})"
            )


class MLPClosure(AbstractClosure):
    """A multilayer perceptron of named inputs (`equinox.nn.MLP`, tanh hidden layers).

    **Arguments:**

    - `input_names`: the inputs, in order.
    - `key`: a `jax.random` key for the weights.
    - `centre`, `scale`: per input, the value subtracted and the divisor [the input's
      units] that bring it to order one (default 0 and 1).
    - `period`: per input, `None` or its period [the input's units]; a periodic input
      (day of year: 365.25, month: 12) enters as sin and cos of 2 pi x / period.
    - `output_centre`, `output_scale`: the output is `output_centre + output_scale y`,
      or `output_centre exp(output_scale y)` when `positive` (then `output_centre` > 0),
      with y the network's output [the closure's units].
    - `width`, `depth`: hidden units per layer and number of hidden layers.
    - `zero_init`: start the last layer at zero (default True), so the closure starts
      as the constant `output_centre` and gradients still reach every layer after the
      first step.
    """

    network: eqx.nn.MLP
    input_names: tuple[str, ...] = eqx.field(static=True)
    centre: tuple[float, ...] = eqx.field(static=True)
    scale: tuple[float, ...] = eqx.field(static=True)
    period: tuple[float | None, ...] = eqx.field(static=True)
    output_centre: float = eqx.field(static=True)
    output_scale: float = eqx.field(static=True)
    positive: bool = eqx.field(static=True)

    def __init__(
        self,
        input_names: Sequence[str],
        *,
        key: PRNGKeyArray,
        centre: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
        period: Sequence[float | None] | None = None,
        output_centre: float = 0.0,
        output_scale: float = 1.0,
        positive: bool = False,
        width: int = 16,
        depth: int = 2,
        zero_init: bool = True,
    ):
        names = tuple(str(n) for n in input_names)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"input_names must be distinct names, got {input_names!r}")
        n = len(names)
        centre = (0.0,) * n if centre is None else tuple(float(c) for c in centre)
        scale = (1.0,) * n if scale is None else tuple(float(s) for s in scale)
        period = (None,) * n if period is None else tuple(None if p is None else float(p) for p in period)
        for label, values in (("centre", centre), ("scale", scale), ("period", period)):
            if len(values) != n:
                raise ValueError(f"{label} needs one value per input ({n}), got {len(values)}")
        for label, values in (("scale", scale), ("period", tuple(p for p in period if p is not None))):
            if not all(np.isfinite(v) and v > 0 for v in values):
                raise ValueError(f"{label} must be positive, got {values}")
        if not np.isfinite(output_scale) or output_scale <= 0:
            raise ValueError(f"output_scale must be positive, got {output_scale!r}")
        if positive and not output_centre > 0:
            raise ValueError(f"a positive closure needs output_centre > 0, got {output_centre!r}")
        if int(width) != width or width < 1 or int(depth) != depth or depth < 1:
            raise ValueError(f"width and depth must be positive integers, got {width!r} and {depth!r}")
        features = sum(2 if p is not None else 1 for p in period)
        network = eqx.nn.MLP(features, "scalar", int(width), int(depth), activation=jnp.tanh, key=key)
        network = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64) if eqx.is_array(x) else x, network)
        if zero_init:
            last = network.layers[-1]
            network = eqx.tree_at(
                lambda m: (m.layers[-1].weight, m.layers[-1].bias),
                network,
                (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)),
            )
        self.network = network
        self.input_names = names
        self.centre, self.scale, self.period = centre, scale, period
        self.output_centre = float(output_centre)
        self.output_scale = float(output_scale)
        self.positive = bool(positive)

    def features(self, inputs: Mapping[str, ArrayLike]):
        """The network's input vectors (..., features): scaled inputs and periodic encodings."""
        self._check_inputs(inputs)
        arrays = jnp.broadcast_arrays(*[jnp.asarray(inputs[n], jnp.float64) for n in self.input_names])
        columns = []
        for x, c, s, p in zip(arrays, self.centre, self.scale, self.period, strict=True):
            if p is None:
                columns.append((x - c) / s)
            else:
                angle = 2.0 * jnp.pi * x / p
                columns += [jnp.sin(angle), jnp.cos(angle)]
        return jnp.stack(columns, axis=-1)

    def __call__(self, inputs):
        x = self.features(inputs)
        y = jax.vmap(self.network)(x.reshape(-1, x.shape[-1])).reshape(x.shape[:-1])
        if self.positive:
            return self.output_centre * jnp.exp(self.output_scale * y)
        return self.output_centre + self.output_scale * y

    def mimic(
        self,
        function: Callable[[Mapping[str, Array]], Array],
        samples: Mapping[str, ArrayLike],
        *,
        steps: int = 2000,
        learning_rate: float = 1e-2,
    ) -> tuple["MLPClosure", float]:
        """This closure trained (Adam, full batch) to reproduce `function` on `samples`.

        **Arguments:** `function(inputs) -> array`, the default it should reproduce (for
        example the n-factor offset); `samples`, input name -> 1-D array of the points
        to match it on; `steps` and `learning_rate` of Adam.

        **Returns:** the trained closure and the root-mean-square difference to
        `function` on the samples [the closure's units].
        """
        self._check_inputs(samples)
        inputs = {name: jnp.asarray(samples[name], jnp.float64) for name in self.input_names}
        target = jnp.broadcast_to(
            jnp.asarray(function(inputs), jnp.float64), jnp.broadcast_shapes(*[v.shape for v in inputs.values()])
        )
        optimiser = optax.adam(learning_rate)

        def loss(closure):
            return jnp.mean((closure(inputs) - target) ** 2)

        @eqx.filter_jit
        def train(closure):
            params, static = eqx.partition(closure, eqx.is_inexact_array)

            def step(carry, _):
                params, state = carry
                value, grads = jax.value_and_grad(lambda p: loss(eqx.combine(p, static)))(params)
                updates, state = optimiser.update(grads, state, params)
                return (optax.apply_updates(params, updates), state), value

            (params, _), _ = jax.lax.scan(step, (params, optimiser.init(params)), None, length=int(steps))
            return eqx.combine(params, static)

        trained = train(self)
        return trained, float(jnp.sqrt(loss(trained)))


class NeuralSurfaceOffset(AbstractSurface):
    """Ground-surface temperature = air temperature + a learned surface offset.

    The offset [K] is a closure of the forcing, by default an `MLPClosure` of
    `air_temperature` [degC], `snow_depth` [m] and `day_of_year` [1-366] (periodic). It
    replaces n-factors and a resolved snowpack: the top of the soil is held at the
    result (a Dirichlet condition). A new default closure gives offset 0 (n-factors 1).

    **Arguments:** `key` for a new default network (with `width`, `depth`), or `closure`,
    any `AbstractClosure` whose inputs are forcing variables. Forcing variables: the
    closure's inputs plus `air_temperature`; `simulate` derives `day_of_year` from the
    forcing's time coordinate when the dataset lacks it.
    """

    closure: AbstractClosure
    fixed_temperature: ClassVar[bool] = True

    def __init__(
        self,
        key: PRNGKeyArray | None = None,
        *,
        closure: AbstractClosure | None = None,
        width: int = 16,
        depth: int = 2,
    ):
        if (key is None) == (closure is None):
            raise ValueError("NeuralSurfaceOffset: give either key (a new network) or closure")
        if closure is None:
            closure = MLPClosure(
                ("air_temperature", "snow_depth", "day_of_year"),
                key=key,
                centre=(0.0, 0.0, 0.0),
                scale=(15.0, 0.3, 1.0),
                period=(None, None, 365.25),
                output_scale=5.0,
                width=width,
                depth=depth,
            )
        if not isinstance(closure, AbstractClosure):
            raise ValueError(f"closure must be an AbstractClosure, got {type(closure).__name__}")
        self.closure = closure

    @property
    def forcing_variables(self) -> tuple[str, ...]:
        """Forcing variables the surface reads: `air_temperature` [degC] and the closure's other inputs."""
        return ("air_temperature", *(n for n in self.closure.input_names if n != "air_temperature"))

    def boundary_value(self, forcing):
        return forcing["air_temperature"] + self.closure(forcing)


MELT_FACTOR_INPUTS = ("temperature", "month", "elevation")


def neural_melt_factor(
    key: PRNGKeyArray,
    *,
    melt_factor: float = 5.0,
    elevation: tuple[float, float] = (3000.0, 500.0),
    temperature_scale: float = 5.0,
    output_scale: float = 0.5,
    width: int = 16,
    depth: int = 2,
) -> MLPClosure:
    """A neural melt factor for `MonthlyTemperatureIndex(melt_factor=...)`.

    A positive `MLPClosure` of the band's monthly air `temperature` [degC], the calendar
    `month` (1-12, periodic) and the band `elevation` [m]:
    melt_factor * exp(output_scale * MLP) [kg m-2 day-1 K-1]. It starts equal to the
    constant `melt_factor`.

    **Arguments:** `key`; `melt_factor`, the constant it starts from; `elevation`, the
    (centre, scale) [m] that bring the glacier's elevations to order one; the network's
    `temperature_scale` [K], `output_scale` [1], `width` and `depth`.
    """
    return MLPClosure(
        MELT_FACTOR_INPUTS,
        key=key,
        centre=(0.0, 0.0, float(elevation[0])),
        scale=(float(temperature_scale), 1.0, float(elevation[1])),
        period=(None, 12.0, None),
        output_centre=float(melt_factor),
        output_scale=output_scale,
        positive=True,
        width=width,
        depth=depth,
    )
