"""Chunk-by-chunk runs over many sites or glaciers, in one process or on a Dask cluster,
each chunk's result written to its own netCDF file as soon as it is done."""

import concurrent.futures
import itertools
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import xarray as xr

MANIFEST = "manifest.json"
SECONDS = "cryograd_chunk_seconds"
"""The attribute of each part file with the seconds `function` took on it."""
_WRITING = threading.Lock()  # netCDF/HDF5 writes one at a time when chunks run in threads


def run_chunked(
    function,
    dataset: xr.Dataset,
    store,
    *,
    dim: str,
    chunk_size: int | None = None,
    client=None,
    threads: int = 1,
    progress: bool = True,
) -> xr.Dataset:
    """Apply `function` to `dataset` one chunk of members at a time, writing each chunk's
    result to `store` as it finishes; a rerun skips the chunks already written.

    **Arguments:**

    - `function`: `function(chunk) -> xr.Dataset`, from an `xr.Dataset` holding a slice
      of `dim` to a result with the same `dim` coordinate (e.g.
      `lambda ds: column.simulate(ds, initial_temperature=-1.0)`: one jitted, vmapped call
      per chunk). Must be picklable for a cluster (cloudpickle takes lambdas).
    - `dataset`: the inputs, with dimension `dim` (`site`, `glacier`, `cell`, ...). Its
      dask chunks along `dim` are the chunks, unless `chunk_size` is given.
    - `store`: a folder; chunk `[a, b)` is written to `part-<a>-<b>.nc`, first under a
      temporary name and then renamed, so a crash leaves no partial file. `manifest.json`
      records the chunking; a rerun with other chunks or another `dim` size is refused.
    - `client`: a `dask.distributed.Client`; the chunks then run as tasks on its workers
      (each writes its own file; a task lost with a worker is run again by Dask, and its
      file is replaced whole). Without a client they run here, one after another, or
      `threads` at a time in threads of this process: while one chunk's compiled code
      runs (JAX and native kernels release the GIL), the next chunk's Python work (its
      inputs, its file) goes on. Results are the same; `function` must be thread-safe.
    - `progress`: a bar over the chunks.

    **Returns** the combined result (each member exactly once, in the order of `dataset`):
    the chunks this call ran in this process as `function` returned them, the others (an
    earlier run's, or a cluster's) read from their files. Each part file records the
    seconds `function` took on its chunk in the attribute `cryograd_chunk_seconds`; the
    combined result has them all, in chunk order, under the same name.
    """
    if dim not in dataset.dims:
        raise ValueError(f"dim: {dim!r} is not a dimension of the dataset (it has {', '.join(map(str, dataset.dims))})")
    if int(threads) != threads or threads < 1:
        raise ValueError(f"threads: must be a positive integer, got {threads!r}")
    size = dataset.sizes[dim]
    bounds = _chunk_bounds(dataset, dim, chunk_size)
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    _check_manifest(store, dim, size, bounds)
    for stale in store.glob("part-*.tmp-*"):
        stale.unlink()  # left by a run that was killed while writing
    todo = [(a, b) for a, b in bounds if not _part(store, a, b).exists()]
    bar = _bar(len(bounds), len(bounds) - len(todo), progress)
    computed = {}  # first member -> result of the chunks run in this process (not read back from their files)
    try:
        if client is None and threads <= 1:
            for a, b in todo:
                computed[a] = _run_chunk(function, dataset.isel({dim: slice(a, b)}), _part(store, a, b))
                bar.update(1)
        elif client is None:
            with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                futures = {
                    pool.submit(_run_chunk, function, dataset.isel({dim: slice(a, b)}), _part(store, a, b)): a
                    for a, b in todo
                }
                try:
                    for future in concurrent.futures.as_completed(futures):
                        computed[futures[future]] = future.result()  # raises the chunk's error here
                        bar.update(1)
                finally:
                    for future in futures:
                        future.cancel()  # after an error, the chunks not started yet stay undone
        else:
            from distributed import as_completed

            futures = [
                client.submit(
                    _write_chunk, function, dataset.isel({dim: slice(a, b)}).load(), _part(store, a, b), pure=False
                )
                for a, b in todo
            ]
            for future in as_completed(futures):
                future.result()  # raises the chunk's error here
                bar.update(1)
    finally:
        bar.close()
    return _combine(store, computed)


def combine(store) -> xr.Dataset:
    """The result of a chunked run in `store`, every chunk read and joined along the
    manifest's dimension; `ValueError` if a chunk of the manifest is missing."""
    return _combine(Path(store), {})


def _combine(store: Path, computed: dict) -> xr.Dataset:
    """`combine`, taking the chunks in `computed` (first member -> the chunk's result, as
    written to its file) from memory instead of reading their files back."""
    manifest = json.loads((store / MANIFEST).read_text())
    dim = manifest["dim"]
    missing = [f"[{a}, {b})" for a, b in manifest["chunks"] if not _part(store, a, b).exists()]
    if missing:
        raise ValueError(f"store {store}: chunks {', '.join(missing)} of {dim} are not written yet; run again")
    parts = [computed[a] if a in computed else xr.load_dataset(_part(store, a, b)) for a, b in manifest["chunks"]]
    seconds = [part.attrs.pop(SECONDS, np.nan) for part in parts]
    combined = xr.concat(parts, dim=dim, data_vars="minimal", coords="minimal", compat="override", join="override")
    combined.attrs[SECONDS] = np.asarray(seconds, dtype=float)
    return combined


def _run_chunk(function, chunk: xr.Dataset, path: Path) -> xr.Dataset:
    started = time.perf_counter()
    result = function(chunk)
    if not isinstance(result, xr.Dataset):
        raise ValueError(f"function: must return an xr.Dataset, got {type(result).__name__}")
    result.attrs[SECONDS] = time.perf_counter() - started
    temporary = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex}")
    with _WRITING:
        result.to_netcdf(temporary)
    os.replace(temporary, path)  # atomic: the part is there whole or not at all
    return result


def _write_chunk(function, chunk: xr.Dataset, path: Path) -> str:
    """`_run_chunk` as a cluster task: its file is the result (the dataset stays on the worker)."""
    _run_chunk(function, chunk, path)
    return str(path)


def _part(store: Path, a: int, b: int) -> Path:
    return store / f"part-{a:09d}-{b:09d}.nc"


def _chunk_bounds(dataset, dim, chunk_size):
    size = dataset.sizes[dim]
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size: must be positive, got {chunk_size}")
        edges = [*list(range(0, size, chunk_size)), size]
    elif dataset.chunksizes.get(dim):
        edges = [0, *np.cumsum(dataset.chunksizes[dim]).tolist()]
    else:
        raise ValueError(f"chunk_size: give it, or chunk the dataset along {dim!r} with dask")
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _check_manifest(store, dim, size, bounds):
    manifest = dict(dim=dim, size=size, chunks=bounds)
    path = store / MANIFEST
    if path.exists():
        previous = json.loads(path.read_text())
        previous["chunks"] = [tuple(c) for c in previous["chunks"]]
        if previous != manifest:
            raise ValueError(
                f"store {store}: it holds a run with {previous['dim']} = {previous['size']} in "
                f"{len(previous['chunks'])} chunks, not this one ({dim} = {size} in {len(bounds)}); "
                "use another folder or remove it"
            )
    else:
        path.write_text(json.dumps(manifest))


def _bar(total, done, progress):
    from ._progress import progress_bar

    return progress_bar(total, "chunks", initial=done, unit="chunk", disable=not progress, file=sys.stderr)
