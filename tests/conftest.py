"""Test-session settings shared by every test module."""

import gc
import os
import tempfile
from pathlib import Path

import jax
import pytest
from hypothesis import settings

import cryograd  # noqa: F401  (turns on float64 before any test builds arrays)

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
"""Hypothesis draws the same examples on every run (the CI's and yours: a failure
reproduces); HYPOTHESIS_PROFILE=explore draws new and more examples."""

# Compiled programs are kept on disk and shared by the pytest-xdist workers: the same
# column or glacier model compiled in several modules is compiled once per test run
# (and once per machine while the folder survives). CRYOGRAD_TEST_JAX_CACHE moves it.
_CACHE = Path(os.environ.get("CRYOGRAD_TEST_JAX_CACHE", Path(tempfile.gettempdir()) / "cryograd-test-jax-cache"))
jax.config.update("jax_compilation_cache_dir", str(_CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop each module's compiled programs when it ends. A worker otherwise holds
    every executable of the run; the last CI run aborted inside an XLA compile
    forty minutes in, after the same test had passed on its own at 1 GB."""
    yield
    jax.clear_caches()
    gc.collect()
