"""Running batches of sites or glaciers on every device: the batch axis sharded with
`jax.sharding`, so one jitted, vmapped call uses one GPU, several, or several CPU devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=N`) without code changes."""

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def shard(tree, devices=None, axis_name: str = "batch"):
    """`tree` with the leading (batch) axis of every array spread over `devices`.

    **Arguments:**

    - `tree`: a pytree (dict of forcing arrays, a batched model, ...) whose array leaves
      share a leading batch axis of sites or glaciers. Leaves that are not arrays stay as
      they are.
    - `devices`: the devices to use (default: all of `jax.devices()`).
    - `axis_name`: the name of the mesh axis.

    A jitted, vmapped function applied to the result runs each device's share of the
    batch on that device, and its outputs come back sharded the same way; the numbers do
    not change (each member is computed alone either way). The batch size must divide by
    the number of devices: pad it (for instance with copies of the last member) and drop
    the padding from the outputs.
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices: give at least one device")
    sharding = NamedSharding(Mesh(np.asarray(devices), (axis_name,)), PartitionSpec(axis_name))

    def place(leaf):
        if not (eqx.is_array(leaf) or isinstance(leaf, np.ndarray)):
            return leaf
        if leaf.ndim == 0:
            raise ValueError("tree: a scalar leaf has no batch axis to shard; keep shared values out of `tree`")
        if leaf.shape[0] % len(devices):
            raise ValueError(
                f"tree: a batch of {leaf.shape[0]} does not divide over {len(devices)} devices; "
                f"pad it to {-(-leaf.shape[0] // len(devices)) * len(devices)} members"
            )
        return jax.device_put(leaf, sharding)

    return jax.tree_util.tree_map(place, tree)
