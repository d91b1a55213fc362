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
