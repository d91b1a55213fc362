"""Every Python block of README.md runs as pasted (issue 27): each in a namespace of its
own, on the shipped samples. The default run shortens the fits (`max_steps=N` -> 2: the
blocks' names, calls and data are what this checks); the slow twin runs them verbatim."""

import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def run(index: int, shorten: bool) -> dict:
    matplotlib.use("Agg")
    code = BLOCKS[index]
    if shorten:
        code = re.sub(r"max_steps=\d+", "max_steps=2", code)
    namespace = {"__name__": f"readme_block_{index + 1}"}
    exec(compile(code, f"README.md python block {index + 1}", "exec"), namespace)
    return namespace


def test_readme_has_its_blocks():
    assert len(BLOCKS) == 5


RESULT = ["posterior", "posterior", "factor", "out", "evolution"]
"""The name each block ends by defining."""


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs_as_pasted_with_short_fits(index):
    namespace = run(index, shorten=True)
    assert RESULT[index] in namespace, f"block {index + 1} no longer defines {RESULT[index]}"
    if RESULT[index] == "factor":
        assert np.all(np.isfinite(np.asarray(namespace["factor"])))
    if RESULT[index] == "out":  # the soil-column block's comment gives what it prints
        printed = re.search(r"# \[([0-9. ]+)\] m", BLOCKS[index]).group(1)
        expected = [float(x) for x in printed.split()]
        np.testing.assert_allclose(namespace["out"]["active_layer_thickness"].values, expected, atol=0.005)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs_verbatim(index):
    run(index, shorten=False)
