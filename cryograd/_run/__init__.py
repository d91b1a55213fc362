"""The experiments behind `cryograd run` and `cryograd quickstart`."""

KINDS = ("glacier", "glacier_region", "glacier_region_twin", "permafrost_region", "permafrost_site", "permafrost_twin")


def runner(kind: str):
    """The module that validates and runs experiments of `kind` (one of `KINDS`)."""
    from importlib import import_module

    if kind == "permafrost":
        raise ValueError(
            "experiment.kind: 'permafrost' is now 'permafrost_site' (data.station became data.borehole, with "
            "forcing.upper = 'air'); see docs/experiments/permafrost_site.md"
        )
    if kind not in KINDS:
        raise ValueError(f"experiment.kind: {kind!r} is not one of {', '.join(KINDS)}")
    return import_module(f"{__name__}.{kind}")
