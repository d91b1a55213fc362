"""An inverse problem: a model, the parameters to fit, observations, and the posterior density.

The fitted quantities are packed into one flat unconstrained vector u (see
`_parameters`). For a batched problem (many sites or glaciers) the model's forward run is
`jax.vmap`ped over the members: shared parameters take one value, member-scoped ones one
value per member, and every observation sees the outputs with a leading member axis.
"""

import functools
import itertools
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._observations import AbstractObservation
from ._parameters import Parameter, split_path


class Problem:
    """Parameters of a model fitted to observations.

    **Arguments:**

    - `model`: the physics model (an `equinox.Module`, e.g. `MonthlyTemperatureIndex` or
      `PermafrostColumn`), holding the parameter start values unless a `Parameter` sets
      `init`.
    - `forward`: `forward(model, inputs) -> dict` of arrays, pure JAX (typically
      `lambda m, x: m.run(...)`).
    - `parameters`: `Parameter`s; names must be unique.
    - `observations`: observation operators.
    - `inputs`: pytree of arrays passed to `forward` (forcing, geometry).
    - `members`: number of sites/glaciers for a batched problem (`inputs` leaves then have
      a leading member axis, per `input_axes`), or None for one.
    - `input_axes`: `jax.vmap` in_axes for `inputs` (default 0).
    - `member_names`: labels of the members for reports.
    """

    def __init__(
        self,
        model,
        forward: Callable,
        parameters: Sequence[Parameter],
        observations: Sequence[AbstractObservation],
        inputs=None,
        *,
        members: int | None = None,
        input_axes=0,
        member_names: Sequence[str] | None = None,
    ):
        parameters = list(parameters)
        observations = list(observations)
        if not parameters:
            raise ValueError("parameters: give at least one Parameter to fit")
        if not observations:
            raise ValueError("observations: give at least one observation operator")
        for p in parameters:
            if not isinstance(p, Parameter):
                raise ValueError(f"parameters: expected Parameter, got {type(p).__name__}")
        for o in observations:
            if not isinstance(o, AbstractObservation):
                raise ValueError(f"observations: expected an observation operator, got {type(o).__name__}")
        for kind, names in (
            ("parameter", [p.name for p in parameters]),
            ("observation", [o.name for o in observations]),
        ):
            duplicated = sorted({n for n in names if names.count(n) > 1})
            if duplicated:
                raise ValueError(f"{kind} names must be unique; repeated: {duplicated}")
        names = {p.name for p in parameters}
        for o in observations:
            absent = [n for n in o.parameter_names if n not in names]
            if absent:
                raise ValueError(
                    f"observation {o.name!r} reads parameters {absent} that are not fitted; add "
                    f"Parameter({absent[0]!r}, path=None, init=...)"
                )
        if members is not None and (int(members) != members or members < 1):
            raise ValueError(f"members must be a positive integer or None, got {members!r}")
        if members is None and any(p.scope == "member" for p in parameters):
            raise ValueError("member-scoped parameters need a batched problem (members=...)")
        self.model = model
        self.forward = forward
        self.parameters = parameters
        self.observations = observations
        self.inputs = inputs
        self.members = None if members is None else int(members)
        self.input_axes = input_axes
        self.member_names = None if member_names is None else [str(m) for m in member_names]
        self._where = {}
        shapes, starts = {}, {}
        for p in parameters:
            if p.path is None:
                base = np.zeros(())
                self._where[p.name] = None
            elif callable(p.path):
                base = np.asarray(p.path(model), dtype=float)
                self._where[p.name] = (p.path, None)
            else:
                where, element = split_path(model, p.path)
                self._where[p.name] = (where, element)
                leaf = np.asarray(where(model), dtype=float)
                base = leaf if element is None else leaf[element]
            shape = base.shape if p.scope == "shared" else (self.members, *base.shape)
            start = base if p.init is None else p.init
            if p.init is None and p.path is None:
                raise ValueError(f"parameter {p.name!r} has no model path, so it needs an init value")
            try:
                start = np.broadcast_to(np.asarray(start, dtype=float), shape)
            except ValueError:
                raise ValueError(
                    f"parameter {p.name!r}: init of shape {np.shape(start)} does not fit {shape}"
                ) from None
            shapes[p.name], starts[p.name] = shape, start
        self.shapes = shapes
        self.u0 = np.concatenate([p.unconstrain(starts[p.name]).ravel() for p in parameters])
        sizes = [int(np.prod(shapes[p.name])) for p in parameters]
        self._slices = dict(zip([p.name for p in parameters], _slices(sizes), strict=True))

    # --- packing ----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of scalar unknowns."""
        return int(self.u0.size)

    def labels(self) -> list[str]:
        """One label per scalar unknown, e.g. 'melt_factor' or 'temperature_bias[RGI60-11.00897]'."""
        out = []
        for p in self.parameters:
            shape = self.shapes[p.name]
            if shape == ():
                out.append(p.name)
                continue
            for index in np.ndindex(shape):
                parts = list(index)
                if p.scope == "member" and self.member_names is not None:
                    parts[0] = self.member_names[index[0]]
                out.append(f"{p.name}[{','.join(str(i) for i in parts)}]")
        return out

    def values(self, u) -> dict:
        """Constrained parameter values by name (pure JAX)."""
        u = jnp.asarray(u)
        return {p.name: p.constrain(u[self._slices[p.name]].reshape(self.shapes[p.name])) for p in self.parameters}

    def unpack(self, u) -> dict:
        """Constrained values by name as NumPy arrays (for reports)."""
        return {name: np.asarray(v) for name, v in self.values(np.asarray(u)).items()}

    def constrain_flat(self, u):
        """The constrained values as a flat vector in the order of `labels()`."""
        return jnp.concatenate([jnp.ravel(v) for v in self.values(u).values()])

    def pack(self, values: dict) -> np.ndarray:
        """The unconstrained vector for constrained values by name (missing names: the start)."""
        u = self.u0.copy()
        for p in self.parameters:
            if p.name in values:
                v = np.broadcast_to(np.asarray(values[p.name], dtype=float), self.shapes[p.name])
                u[self._slices[p.name]] = p.unconstrain(v).ravel()
        return u

    def apply(self, model, values: dict, member=None):
        """`model` with the parameter leaves set; member-scoped values are taken at `member`
        (they are already per member when `member` is None inside the vmap)."""
        for p in self.parameters:
            where = self._where[p.name]
            if where is None:
                continue
            value = values[p.name]
            if p.scope == "member" and member is not None:
                value = value[member]
            selector, element = where
            leaf = jnp.asarray(selector(model), jnp.float64)
            new = jnp.broadcast_to(value, leaf.shape) if element is None else leaf.at[element].set(value)
            model = eqx.tree_at(selector, model, new, is_leaf=lambda x: x is None)
        return model

    def fitted_model(self, u, member=None):
        """The model with the values of `u` (one member's model for batched problems)."""
        if self.members is not None and member is None and any(p.scope == "member" for p in self.parameters):
            raise ValueError("this problem has member-scoped parameters; pass member=<index>")
        return self.apply(self.model, self.unpack(u), member=member)

    # --- the forward run and the density ------------------------------------------------------

    def outputs(self, u) -> dict:
        """The model's outputs for parameters `u` (a leading member axis when batched)."""
        return self._outputs(self.values(u))

    def _outputs(self, values: dict) -> dict:
        if self.members is None:
            return self.forward(self.apply(self.model, values), self.inputs)
        shared = {p.name: values[p.name] for p in self.parameters if p.scope == "shared"}
        member = {p.name: values[p.name] for p in self.parameters if p.scope == "member"}

        def one(member_values, inputs):
            return self.forward(self.apply(self.model, {**shared, **member_values}), inputs)

        return jax.vmap(one, in_axes=(0, self.input_axes))(member, self.inputs)

    def predictions(self, u) -> dict:
        """Predicted values of every observation, by name (compiled once per problem: run
        op by op, a batched model would hold every intermediate of every member)."""
        return self._compiled_predictions(u)

    @functools.cached_property
    def _compiled_predictions(self) -> Callable:
        def predictions(u):
            values = self.values(u)
            return self._predictions(self._outputs(values), values)

        return jax.jit(predictions)

    def _predictions(self, outputs: dict, values: dict) -> dict:
        return {o.name: o.predict(outputs, values) for o in self.observations}

    def neg_log_likelihood(self, u, predictions=None) -> dict:
        """-log likelihood of each observation type (up to constants), by name."""
        predictions = self.predictions(u) if predictions is None else predictions
        return {o.name: o.neg_log_likelihood(predictions[o.name]) for o in self.observations}

    def neg_log_prior(self, u):
        """-log prior density of the parameter values at `u` (up to constants; flat where a
        parameter has no prior)."""
        return self._neg_log_prior_of(self.values(u))

    def _neg_log_prior_of(self, values: dict):
        total = jnp.zeros(())
        for p in self.parameters:
            if p.prior is not None:
                total = total + p.prior.neg_log_density(values[p.name])
        return total

    def loss(self, u):
        """-log posterior density of the constrained values (up to a constant): the sum of the
        observation types' -log likelihoods and the priors'. Minimised by `fit`."""
        values = self.values(u)
        return self._loss_of(self._outputs(values), values)

    def _loss_of(self, outputs: dict, values: dict):
        """The loss from the model's outputs and the constrained values."""
        predictions = self._predictions(outputs, values)
        likelihood = sum(o.neg_log_likelihood(predictions[o.name]) for o in self.observations)
        return likelihood + self._neg_log_prior_of(values)

    def loss_and_gradient_by_members(self, u):
        """`loss(u)` and its gradient, by forward mode with one tangent per member-scoped
        scalar (all members at once) and per shared scalar (pure JAX).

        In a batched problem member m's outputs depend only on member m's values and the
        shared ones (the forward run is vmapped over members), so one forward-mode tangent
        that moves parameter k of every member together gives each member's own output
        derivatives, without mixing. The observations and priors are differentiated in
        reverse mode with respect to the outputs (cheap: no model run), and the two are
        chained. The cost is about (member scalars per member + shared scalars) forward
        runs, independent of the number of members; reverse mode through a long vmapped
        model run can cost far more (73x a forward run for `MonthlyTemperatureIndex`
        over 1,000 glaciers and 158x over 10,000, docs/benchmarks.md)."""
        if self.members is None:
            raise ValueError("the gradient by members needs a batched problem (members=...)")
        values, values_vjp = jax.vjp(self.values, jnp.asarray(u))
        outputs, linear = jax.linearize(self._outputs, values)
        value, (d_outputs, d_values) = jax.value_and_grad(self._loss_of, argnums=(0, 1))(outputs, values)
        gradient = dict(d_values)
        for p in self.parameters:
            shape = self.shapes[p.name]
            element_shape = shape[1:] if p.scope == "member" else shape
            columns = []
            for element in np.ndindex(element_shape):
                tangent = {name: jnp.zeros_like(v) for name, v in values.items()}
                index = (slice(None), *element) if p.scope == "member" else element
                tangent[p.name] = tangent[p.name].at[index].set(1.0)
                by_member = member_dot(d_outputs, linear(tangent))
                columns.append(by_member if p.scope == "member" else jnp.sum(by_member))
            if columns:
                chained = jnp.stack(columns, axis=-1).reshape(shape)
                gradient[p.name] = gradient[p.name] + chained
        (gradient_u,) = values_vjp(gradient)
        return value, gradient_u

    def log_density_unconstrained(self, u):
        """log posterior density of u (with the reparameterisation's Jacobian): what a
        sampler in the unconstrained space targets."""
        log_jacobian = sum(p.log_jacobian(jnp.asarray(u)[self._slices[p.name]]) for p in self.parameters)
        return -self.loss(u) + log_jacobian

    @property
    def least_squares(self) -> bool:
        """True when every term is a Gaussian residual (Gauss-Newton/Levenberg-Marquardt apply)."""
        return all(o.likelihood == "gaussian" for o in self.observations) and all(
            p.prior is None or p.prior.residual(jnp.zeros(self.shapes[p.name]) + 1.0) is not None
            for p in self.parameters
        )

    @functools.cached_property
    def residuals_and_jacobian(self) -> Callable:
        """u -> (whitened residuals, d residuals / d u by forward mode) in one call, compiled
        once per problem: the fit's cost figures, its Gauss-Newton/Levenberg-Marquardt steps
        and the Laplace approximation call the same compiled function. Takes and returns
        concrete arrays (not for use under `jax.jit`)."""

        def twice(u):
            r = self.residuals(u)
            return r, r

        jacobian = jax.jacfwd(twice, has_aux=True)
        return _one_compilation(jax.jit(lambda u: jacobian(u)[::-1]))

    @functools.cached_property
    def compiled_residuals(self) -> Callable:
        """`residuals` compiled once per problem (concrete arrays, as `residuals_and_jacobian`)."""
        return _one_compilation(jax.jit(self.residuals))

    def jacobian(self, u):
        """d residuals / d u by forward mode (`residuals_and_jacobian`)."""
        return self.residuals_and_jacobian(u)[1]

    def residuals(self, u):
        """All whitened residuals: observations, then the Gaussian-form priors; loss = |r|^2 / 2."""
        if not self.least_squares:
            raise ValueError("residuals need Gaussian likelihoods and Gaussian-form priors; use method='lbfgs'")
        predictions = self.predictions(u)
        values = self.values(u)
        parts = [o.residuals(predictions[o.name]) for o in self.observations]
        for p in self.parameters:
            if p.prior is not None and p.prior.residual(values[p.name]) is not None:
                parts.append(jnp.ravel(p.prior.residual(values[p.name])))
        return jnp.concatenate(parts)


def _one_compilation(function: Callable) -> Callable:
    """The jitted `function` of one array, called with a host copy of it and the default
    backend's first device as the default device: the context in which JAX runs host
    callbacks, so that calls from `fit`'s callbacks and direct calls share one compilation
    (a call in another context compiles the model again)."""
    device = jax.devices()[0]

    def call(u):
        with jax.default_device(device):
            return function(np.asarray(u))

    return call


def member_dot(cotangents, tangents):
    """sum(cotangents * tangents) over every output and every axis but the leading member
    axis: (member,). With tangents that move one parameter of every member at once, each
    member's own derivative (its outputs depend on no other member's values)."""
    terms = jax.tree.map(lambda g, t: jnp.sum((g * t).reshape(g.shape[0], -1), axis=1), cotangents, tangents)
    return sum(jax.tree.leaves(terms))


def _slices(sizes):
    starts = np.concatenate([[0], np.cumsum(sizes)])
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(starts)]
