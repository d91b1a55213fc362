"""Load a script from experiments/ as a module, for tests that run the real experiments."""

import importlib.util
import sys
from pathlib import Path

EXPERIMENTS = Path(__file__).parents[1] / "experiments"


def load_experiment(name: str):
    """The module experiments/`name`.py (its folder goes on sys.path, as when it runs as a script)."""
    if str(EXPERIMENTS) not in sys.path:
        sys.path.insert(0, str(EXPERIMENTS))
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_cf_units(ds) -> None:
    """Every floating-point variable and coordinate of an output dataset carries a `units`
    attribute that the units library reads (a CF/UDUNITS string), so Panoply, cf-xarray
    and cryograd's own readers can convert it; a variable over parameters of different
    units names the coordinate that holds them in `units_metadata`."""
    import numpy as np

    from cryograd import _units

    missing, unreadable = [], []
    for name, variable in {**ds.coords, **ds.data_vars}.items():
        if not np.issubdtype(variable.dtype, np.floating):
            continue
        by_coordinate = variable.attrs.get("units_metadata")  # one unit per entry, in a coordinate
        if by_coordinate is not None:
            assert by_coordinate in ds.coords, f"{name}: units_metadata names {by_coordinate!r}, not a coordinate"
            every = [str(u) for u in np.atleast_1d(ds[by_coordinate].values)]
        elif "units" in variable.attrs:
            every = [variable.attrs["units"]]
        else:
            missing.append(name)
            continue
        for units in every:
            try:
                _units.parse(units, name)
            except ValueError:
                unreadable.append(f"{name} [{units}]")
    assert not missing, f"variables without units: {missing}"
    assert not unreadable, f"units the units library cannot read: {unreadable}"
