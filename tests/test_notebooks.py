"""The notebooks in experiments/notebooks run top to bottom, and are stored without outputs."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "experiments" / "notebooks").glob("*.ipynb"))


def test_the_five_notebooks_are_there():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip the outputs"


def run(path, shorten: bool):
    notebook = nbformat.read(path, as_version=4)
    if shorten:  # the cells' names, calls and data are what the default run checks
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.source = re.sub(r"\bmax_steps=\d+", "max_steps=2", cell.source)
                cell.source = re.sub(r"\bsteps=\d{3,}", "steps=100", cell.source)  # closure pre-training
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on the first error
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_with_short_fits(path):
    """The cheaper twin: every fit stopped after two steps (the slow twin runs them as stored)."""
    run(path, shorten=True)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path):
    run(path, shorten=False)
