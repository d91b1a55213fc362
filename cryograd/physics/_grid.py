"""Vertical finite-volume grid of a soil column."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._validation import as_float_array, is_concrete


class Grid(eqx.Module):
    """Cell edges of a 1-D column [m], positive down from the ground surface.

    The unknowns live at cell centres; the surface boundary acts on the first edge and
    the lower boundary on the last one.

    **Arguments:**

    - `edges`: strictly increasing cell edges [m], at least two.

    **Example:**

    ```python
    grid = cg.physics.Grid.uniform(depth=20.0, dz=0.02)   # 1000 cells of 2 cm
    grid.centres[:2]                                       # [0.01, 0.03]
    ```
    """

    edges: Float[Array, " nedges"]

    def __init__(self, edges):
        if is_concrete(edges):
            values = as_float_array(edges, "edges")
            if values.ndim != 1 or values.size < 2:
                raise ValueError(f"edges must be a 1-D sequence of at least 2 depths, got shape {values.shape}")
            if np.any(np.diff(values) <= 0):
                bad = int(np.argmax(np.diff(values) <= 0))
                raise ValueError(
                    f"edges must be strictly increasing (positive down); edges[{bad + 1}] = "
                    f"{values[bad + 1]} follows edges[{bad}] = {values[bad]}"
                )
        self.edges = jnp.asarray(edges, dtype=jnp.float64)

    @classmethod
    def uniform(cls, depth: float, dz: float) -> "Grid":
        """Cells of equal thickness `dz` [m] from 0 to `depth` [m]."""
        if not depth > 0:
            raise ValueError(f"depth must be positive, got {depth!r}")
        if not dz > 0:
            raise ValueError(f"dz must be positive, got {dz!r}")
        n = depth / dz
        if abs(n - round(n)) > 1e-9 * n:
            raise ValueError(f"depth ({depth} m) must be a whole multiple of dz ({dz} m)")
        return cls(np.linspace(0.0, depth, round(n) + 1))

    @classmethod
    def geometric(cls, depth: float, n: int, dz_top: float) -> "Grid":
        """`n` cells from 0 to `depth` [m] whose thickness grows by a constant ratio from
        `dz_top` [m] at the surface."""
        if not depth > 0:
            raise ValueError(f"depth must be positive, got {depth!r}")
        if int(n) != n or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if not 0 < dz_top <= depth:
            raise ValueError(f"dz_top must lie in (0, depth], got {dz_top!r}")
        if dz_top * n > depth:
            raise ValueError(f"n * dz_top = {n * dz_top} m exceeds depth = {depth} m: cells could not grow downwards")

        def total(ratio: float) -> float:
            return dz_top * n if ratio == 1.0 else dz_top * (ratio**n - 1.0) / (ratio - 1.0)

        low, high = 1.0, 2.0
        while total(high) < depth:
            high *= 2.0
        for _ in range(200):  # bisection to round-off on the growth ratio
            middle = 0.5 * (low + high)
            low, high = (middle, high) if total(middle) < depth else (low, middle)
        ratio = 0.5 * (low + high)
        thickness = dz_top * ratio ** np.arange(n)
        edges = np.concatenate([[0.0], np.cumsum(thickness)])
        edges[-1] = depth
        return cls(edges)

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return self.edges.shape[0] - 1

    @property
    def thickness(self) -> Float[Array, " nz"]:
        """Cell thicknesses [m]."""
        return jnp.diff(self.edges)

    @property
    def centres(self) -> Float[Array, " nz"]:
        """Cell centres [m]."""
        return 0.5 * (self.edges[1:] + self.edges[:-1])
