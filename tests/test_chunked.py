"""Chunked runs: equal to one call, resumable after an interrupt, and the same on a Dask
cluster of two worker processes, even when one worker is killed mid-run."""

import threading
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cryograd as cg

P = cg.physics
SITES = 10


def forcing(sites=SITES, days=365, seed=0):
    rng = np.random.default_rng(seed)
    day = np.arange(days)
    values = rng.uniform(-9, -1, (sites, 1)) + 15 * np.sin(2 * np.pi * day / 365) + rng.normal(0, 2, (sites, days))
    time = pd.date_range("2020-01-01", periods=days, freq="D")
    return xr.Dataset(
        {"surface_temperature": (("site", "time"), values, {"units": "degC"})},
        coords={"site": [f"s{i:02d}" for i in range(sites)], "time": time},
    )


def simulator(sleep=0.0, fail_flag=None):
    """A picklable chunk function (a closure, so cloudpickle sends it by value): the
    column's yearly output for the chunk's sites; optionally slow, or failing once for the
    chunk holding site s08 while `fail_flag` (a path) does not exist."""
    column = P.PermafrostColumn(
        grid=P.Grid.geometric(depth=15.0, n=20, dz_top=0.05),
        layers=[P.SoilLayer(top=0.0, water_content=0.35, k_thawed=1.1, k_frozen=1.9, c_thawed=2.6e6, c_frozen=1.9e6)],
    )

    def simulate(chunk):
        import time
        from pathlib import Path

        if fail_flag is not None and "s08" in chunk.site.values and not Path(fail_flag).exists():
            Path(fail_flag).touch()
            raise RuntimeError("interrupted")
        time.sleep(sleep)
        out = column.simulate(chunk, initial_temperature=-2.0)
        return out[["temperature", "active_layer_thickness"]]

    return simulate


def test_chunks_equal_one_call_and_a_rerun_skips_them(tmp_path):
    data = forcing()
    whole = simulator()(data)
    result = cg.run_chunked(simulator(), data, tmp_path / "store", dim="site", chunk_size=4, progress=False)
    assert sorted(p.name for p in (tmp_path / "store").glob("part-*")) == [
        "part-000000000-000000004.nc",
        "part-000000004-000000008.nc",
        "part-000000008-000000010.nc",
    ]
    assert list(result.site.values) == list(data.site.values)
    np.testing.assert_allclose(result.temperature, whole.temperature, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.active_layer_thickness, whole.active_layer_thickness, rtol=0, atol=1e-12)

    def never(chunk):
        raise AssertionError("a finished chunk ran again")

    again = cg.run_chunked(never, data, tmp_path / "store", dim="site", chunk_size=4, progress=False)
    # the first run combined the chunks it kept in memory, the rerun reads every file back
    xr.testing.assert_identical(again, result)
    xr.testing.assert_identical(cg.combine(tmp_path / "store"), result)


def test_an_interrupted_run_resumes_with_the_missing_chunks_only(tmp_path):
    data = forcing()
    store = tmp_path / "store"
    with pytest.raises(RuntimeError, match="interrupted"):
        cg.run_chunked(simulator(fail_flag=tmp_path / "failed"), data, store, dim="site", chunk_size=4, progress=False)
    assert len(list(store.glob("part-*.nc"))) == 2
    with pytest.raises(ValueError, match=r"chunks \[8, 10\) of site are not written yet"):
        cg.combine(store)
    calls = []
    inner = simulator()

    def counting(chunk):
        calls.append(list(chunk.site.values))
        return inner(chunk)

    result = cg.run_chunked(counting, data, store, dim="site", chunk_size=4, progress=False)
    assert calls == [["s08", "s09"]]
    np.testing.assert_allclose(result.temperature, simulator()(data).temperature, rtol=0, atol=1e-12)


def test_chunks_in_threads_equal_chunks_in_turn_and_an_error_stops_the_run(tmp_path):
    """Two chunks at once in threads of this process (`threads=2`): every part file is that
    of the run one chunk after another; a chunk that fails raises here, and a rerun
    makes only the chunks not written."""
    data = forcing()
    in_turn = cg.run_chunked(simulator(), data, tmp_path / "turn", dim="site", chunk_size=2, progress=False)
    seen = set()

    def noting(chunk):
        seen.add(threading.get_ident())
        return simulator(sleep=0.2)(chunk)

    threaded = cg.run_chunked(noting, data, tmp_path / "threads", dim="site", chunk_size=2, threads=2, progress=False)
    assert len(seen) == 2  # the chunks did run in two threads
    for name in ("temperature", "active_layer_thickness"):
        np.testing.assert_array_equal(threaded[name].values, in_turn[name].values)
    store = tmp_path / "failing"
    with pytest.raises(RuntimeError, match="interrupted"):
        cg.run_chunked(
            simulator(fail_flag=tmp_path / "failed"), data, store, dim="site", chunk_size=2, threads=2, progress=False
        )
    assert not (store / "part-000000008-000000010.nc").exists()
    again = cg.run_chunked(simulator(), data, store, dim="site", chunk_size=2, threads=2, progress=False)
    np.testing.assert_array_equal(again.temperature.values, in_turn.temperature.values)
    with pytest.raises(ValueError, match="threads: must be a positive integer, got 0"):
        cg.run_chunked(simulator(), data, tmp_path / "zero", dim="site", chunk_size=2, threads=0)


def test_refusals(tmp_path):
    data = forcing(sites=4, days=30)
    with pytest.raises(ValueError, match="dim: 'glacier' is not a dimension"):
        cg.run_chunked(simulator(), data, tmp_path / "a", dim="glacier", chunk_size=2)
    with pytest.raises(ValueError, match="chunk_size: give it, or chunk the dataset"):
        cg.run_chunked(simulator(), data, tmp_path / "a", dim="site")
    cg.run_chunked(simulator(), data.chunk(site=2), tmp_path / "b", dim="site", progress=False)
    with pytest.raises(ValueError, match="holds a run with site = 4 in 2 chunks"):
        cg.run_chunked(simulator(), data, tmp_path / "b", dim="site", chunk_size=1, progress=False)


def local_cluster():
    distributed = pytest.importorskip("distributed")
    return distributed, distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )


def test_dask_cluster_matches_one_process(tmp_path):
    """The cheaper twin of the killed-worker test: the same chunks on two worker processes."""
    data = forcing()
    reference = cg.run_chunked(simulator(), data, tmp_path / "local", dim="site", chunk_size=2, progress=False)
    distributed, cluster = local_cluster()
    with cluster, distributed.Client(cluster) as client:
        result = cg.run_chunked(
            simulator(), data, tmp_path / "cluster", dim="site", chunk_size=2, client=client, progress=False
        )
    xr.testing.assert_allclose(result, reference, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_dask_cluster_survives_a_killed_worker(tmp_path):
    """(slow: a killed worker's replacement starts and compiles again)"""
    data = forcing()
    reference = cg.run_chunked(simulator(), data, tmp_path / "local", dim="site", chunk_size=2, progress=False)
    distributed, cluster = local_cluster()
    with cluster, distributed.Client(cluster) as client:
        # kill one worker process while the chunks run: its tasks go to the other (or to the
        # worker its nanny restarts), and every chunk is still written exactly once
        store = tmp_path / "killed"
        victims = []

        def kill_one_worker_when_work_starts():
            deadline = time.time() + 120
            while time.time() < deadline and not list(store.glob("part-*.nc")):
                time.sleep(0.05)
            victim = sorted(client.scheduler_info()["workers"])[0]
            victims.append(victim)
            try:
                client.run(lambda: __import__("os")._exit(1), workers=[victim])
            except Exception:
                pass

        killer = threading.Thread(target=kill_one_worker_when_work_starts)
        killer.start()
        killed = cg.run_chunked(
            simulator(sleep=1.0), data, store, dim="site", chunk_size=1, client=client, progress=False
        )
        killer.join()
        assert victims and victims[0] not in client.scheduler_info()["workers"]  # it did die
        # one finished part per chunk (a worker killed while writing would leave only a
        # temporary file, which the next run removes and combine never reads)
        assert len(list(store.glob("part-*.nc"))) == SITES
        assert list(killed.site.values) == list(data.site.values)
        xr.testing.assert_allclose(killed, reference, rtol=0, atol=1e-12)
