"""Run a benchmark script with only `cryograd.physics` imported (not the data layer).

    python benchmarks/physics_only.py benchmarks/heat_column.py --columns 10000 --years 1

`import cryograd` also imports the data readers (geopandas, rasterio, pint, ...); a machine
that has JAX and its scientific stack but not those (the GPU machine of docs/benchmarks.md)
can still run the physics benchmarks through this wrapper. It turns on float64 as
`import cryograd` does.
"""

import pathlib
import runpy
import sys
import types

import jax

jax.config.update("jax_enable_x64", True)

root = pathlib.Path(__file__).resolve().parent.parent
package = types.ModuleType("cryograd")
package.__path__ = [str(root / "cryograd")]
sys.modules["cryograd"] = package
import cryograd.physics  # noqa: E402  (after the stand-in package)

package.physics = cryograd.physics

if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
