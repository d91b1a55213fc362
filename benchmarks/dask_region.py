"""The regional permafrost example on a Dask LocalCluster of 1 and of 2 worker processes,
against one process; prints one JSON object.

    python benchmarks/dask_region.py                          # experiments/permafrost_region.toml
    python benchmarks/dask_region.py --cells 2000 --rows 40   # a smaller region

Each run writes into a new temporary folder (nothing is skipped) through `cryograd run`'s
runner. Times are the wall time of the chunks (`execution.chunks_wall_time_s`: from the
first submitted chunk to the last written one, each worker compiling once), without the
cluster's start. The results of every run are compared with the one-process run,
variable by variable (largest absolute difference).
"""

import argparse
import json
import os
import platform
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import xarray as xr

from cryograd._run import permafrost_region

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "experiments" / "permafrost_region.toml"))
    parser.add_argument("--cells", type=int)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="0 is this process")
    args = parser.parse_args()
    config = tomllib.loads(Path(args.config).read_text())
    if args.cells:
        config["region"]["cells"] = args.cells
    if args.rows:
        config["region"]["rows"] = args.rows
    runs, results = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for workers in args.workers:
            config["run"]["workers"] = workers
            out = Path(folder) / f"workers-{workers}"
            summary = permafrost_region.run(config, out, progress=False)
            runs[workers] = summary["execution"]
            results[workers] = xr.load_dataset(out / "result.nc")
    reference = results[args.workers[0]]
    differences = {
        workers: max(
            float(np.nanmax(np.abs(reference[v].values.astype(float) - result[v].values.astype(float))))
            for v in reference.data_vars
        )
        for workers, result in results.items()
    }
    times = {w: runs[w]["chunks_wall_time_s"] for w in runs}
    out = dict(
        machine=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(),
        cells=config["region"]["cells"],
        years=config["forcing"]["years"],
        column_cells=config["model"]["cells"],
        chunk_size=config["run"]["chunk_size"],
        runs={str(w): runs[w] for w in runs},
        largest_difference_from_first={str(w): d for w, d in differences.items()},
    )
    if 1 in times and 2 in times:
        out["speed_up_1_to_2_workers"] = round(times[1] / times[2], 3)
    if 0 in times and 2 in times:
        out["speed_up_one_process_to_2_workers"] = round(times[0] / times[2], 3)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
