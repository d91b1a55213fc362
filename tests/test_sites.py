"""Forward runs at real sites (experiments/), checked against the measurements."""

import importlib.util
from pathlib import Path

import numpy as np


def load(name):
    path = Path(__file__).parents[1] / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_arctic_village_forced_by_measured_surface_beats_persistence():
    site = load("arctic_village")
    table, _, observed = site.run()
    assert list(table.index) == site.DEPTHS and (table["n"] >= 60).all()
    # Persistence: the first day's measured profile held for the whole run. Conduction
    # from the measured surface must beat it at every depth, and stay within 1.5 K.
    persistence = np.abs(observed - observed.isel(time=0)).mean("time")
    for depth in site.DEPTHS:
        assert table.loc[depth, "mae"] < float(persistence.sel(depth=depth)), depth
    assert (table["mae"] < 1.5).all(), table
    print(table.assign(persistence_mae=persistence.values).round(3).to_string())
