"""cryograd: differentiable permafrost and glacier models fitted to observations.

Importing cryograd turns on JAX's float64 mode (`jax_enable_x64`): freeze/thaw physics
near 0 degC cannot be resolved in float32.
"""

import jax

jax.config.update("jax_enable_x64", True)

from . import (
    assimilation as assimilation,
    data as data,
    physics as physics,
)
from ._chunked import combine as combine, run_chunked as run_chunked
from ._scale import shard as shard

__version__ = "0.1.0"
