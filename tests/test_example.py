"""The README's example runs and gives a physically plausible active layer."""

import importlib.util
from pathlib import Path

import numpy as np


def test_column_example_prints_active_layer(capsys):
    path = Path(__file__).parents[1] / "experiments" / "column_example.py"
    spec = importlib.util.spec_from_file_location("column_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main()
    printed = capsys.readouterr().out
    assert printed.count("active-layer thickness") == 3
    alt = out["active_layer_thickness"].values
    assert np.all((alt > 0.2) & (alt < 3.0))  # a thaw season at MAGST -4 degC: decimetres to metres
    assert out["temperature"].attrs["units"] == "degC"
    assert out["temperature"].dtype == np.float64
    assert set(out["depth_bnds"].dims) == {"depth", "nv"}
