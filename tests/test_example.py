"""The README's example runs and gives a physically plausible active layer."""

import numpy as np

from tests._experiments import load_experiment


def test_column_example_prints_active_layer(capsys):
    module = load_experiment("column_example")
    out = module.main()
    printed = capsys.readouterr().out
    assert printed.count("active-layer thickness") == 3
    alt = out["active_layer_thickness"].values
    assert np.all((alt > 0.2) & (alt < 3.0))  # a thaw season at MAGST -4 degC: decimetres to metres
    assert out["temperature"].attrs["units"] == "degC"
    assert out["temperature"].dtype == np.float64
    assert set(out["depth_bnds"].dims) == {"depth", "nv"}
