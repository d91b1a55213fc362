"""Median wall time of JAX calls: the benchmark scripts and `fit`'s cost figures use it."""

import statistics
import time

import jax


def median_seconds(function, *args, repeats: int, budget: float | None = None, warm_up: bool = True) -> float:
    """Median wall time [s] of `function(*args)` over `repeats` runs after one warm-up
    (which also compiles), waiting for JAX results to be ready. With `budget` [s], fewer
    runs (at least one) when `repeats` of them would take longer than that.
    `warm_up=False` when the caller has already run (and compiled) it."""
    if warm_up:
        jax.block_until_ready(function(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        times.append(time.perf_counter() - start)
        if budget is not None and sum(times) >= budget:
            break
    return statistics.median(times)
