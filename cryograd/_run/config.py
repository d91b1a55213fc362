"""Experiment configs: TOML files, `--set key=value` overrides, data references, checks.

Data references are strings: `sample:NAME` for a sample shipped with the package
(`cg.data.sample_names()`), or a file/folder path. Paths in the TOML file are relative to
the file's folder; paths given with `--set` are relative to the working directory.
"""

import copy
import tomllib
from pathlib import Path

from .. import data as cgdata

NOT_PATHS = {
    "data.start",
    "data.id_column",
    "data.period",
    "data.wgms_outline",
    "data.station_method",
    "data.borehole_id",
    "data.lst_site",
}
"""[data] keys that hold values, not file references."""


class ConfigError(ValueError):
    """A config that cannot run; the message lists every problem found."""


def refuse(problems: list[str]) -> None:
    """Raise one `ConfigError` listing every problem, if there are any."""
    if problems:
        raise ConfigError("the config has problems:\n  " + "\n  ".join(problems))


def load(path, overrides=()) -> dict:
    """The config at `path` with `overrides` ("dotted.key=value", value in TOML syntax,
    bare words taken as strings) applied; data paths resolved."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        config = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path}: not valid TOML ({error})") from None
    _resolve_data(config, path.parent)
    problems = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"--set {item!r}: expected key=value")
            continue
        value = parse_value(text)
        key = key.strip()
        if key.startswith("data.") and key not in NOT_PATHS and isinstance(value, str):
            value = _resolve_reference(value, Path.cwd())
        try:
            set_key(config, key, value)
        except ConfigError as error:
            problems.append(str(error))
    if problems:
        raise ConfigError("\n".join(problems))
    config.setdefault("_source", str(path))
    return config


def parse_value(text: str):
    """A `--set` value: TOML syntax (numbers, booleans, arrays, quoted strings), or a bare string."""
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_key(config: dict, key: str, value) -> None:
    node = config
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part!r} is a value, not a table")
        node = child
    node[parts[-1]] = value


def _resolve_reference(value: str, base: Path) -> str:
    if value.startswith("sample:"):
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _resolve_data(config: dict, base: Path) -> None:
    data = config.get("data")
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        if f"data.{key}" in NOT_PATHS:
            continue
        if isinstance(value, str):
            data[key] = _resolve_reference(value, base)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            data[key] = [_resolve_reference(v, base) for v in value]
        elif isinstance(value, list):  # [[data.KEY]] tables: each one's `file`
            for table in value:
                if isinstance(table, dict) and isinstance(table.get("file"), str):
                    table["file"] = _resolve_reference(table["file"], base)


def data_path(reference: str) -> Path:
    """The file or folder a data reference names."""
    if reference.startswith("sample:"):
        return cgdata.sample_path(reference.removeprefix("sample:"))
    return Path(reference)


ARGUMENTS = {  # a reader's argument named at the start of its error: the config key
    "borehole_id": "data.borehole_id",
    "lat, lon": "data.lat, data.lon",
    "columns": "data.forcing_columns",
    "site": "data.lst_site",
    "id_column": "data.id_column",
}


def keyed(key: str, read, *args, **kwargs):
    """`read(*args, **kwargs)`, its ValueError naming the config key: the one its message
    starts with (`ARGUMENTS`), else `key`."""
    try:
        return read(*args, **kwargs)
    except ValueError as error:
        text = str(error)
        for argument, name in ARGUMENTS.items():
            if text.startswith(f"{argument}: "):
                raise ValueError(f"{name}: {text.removeprefix(argument + ': ')}") from None
        raise ValueError(f"{key}: {text}") from None


def open_climate_noting(reference: str | list[str], notes: list, **kwargs):
    """`cg.data.open_climate` of a data reference (or a list of them, read as one); its
    warnings (a file's own defects, such as negative precipitation set to 0) are appended
    to `notes` as 'climate: ...'."""
    import warnings

    paths = [data_path(r) for r in (reference if isinstance(reference, list) else [reference])]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        climate = cgdata.open_climate(paths if len(paths) > 1 else paths[0], **kwargs)
    notes.extend(f"climate: {w.message}" for w in caught)
    return climate


def grid_point(data: dict) -> dict:
    """The `lat`, `lon` arguments of `open_climate` from [data] latitude and longitude
    (none where the config gives none: a file of one point)."""
    given = [key for key in ("latitude", "longitude") if key in data]
    if len(given) == 1:
        raise ValueError(f"data.{given[0]}: give data.latitude and data.longitude together (or neither)")
    return dict(lat=data["latitude"], lon=data["longitude"]) if given else {}


def check_files(config: dict, keys) -> list[str]:
    """Problems with data references: missing files or unknown samples."""
    problems = []
    data = config.get("data", {})
    for key in keys:
        value = data.get(key)
        if value is None:
            continue
        references = value if isinstance(value, list) else [value]
        references = [r.get("file") if isinstance(r, dict) else r for r in references]
        for reference in references:
            if not isinstance(reference, str):  # a wrong type: the schema check reports it
                continue
            if reference.startswith("sample:"):
                name = reference.removeprefix("sample:")
                if name not in cgdata.sample_names():
                    problems.append(f"data.{key}: no sample named {name!r}; see cryograd.data.sample_names()")
            elif not Path(reference).exists():
                problems.append(f"data.{key}: {reference} does not exist")
    return problems


MODEL_UNITS = {
    # MonthlyTemperatureIndex
    "melt_factor": "kg m-2 day-1 K-1",
    "precipitation_factor": "1",
    "temperature_bias": "K",
    "melt_threshold": "degC",
    "solid_threshold": "degC",
    "liquid_threshold": "degC",
    "lapse_rate": "K m-1",
    # PermafrostColumn: soil layers, surfaces, snow, the bottom boundary
    "top": "m",
    "water_content": "m3 m-3",
    "porosity": "m3 m-3",
    "residual_water_content": "m3 m-3",
    "k_thawed": "W m-1 K-1",
    "k_frozen": "W m-1 K-1",
    "c_thawed": "J m-3 K-1",
    "c_frozen": "J m-3 K-1",
    "thawing": "1",
    "freezing": "1",
    "conductivity_scale": "1",
    "density": "kg m-3",
    "heat_capacity": "J m-3 K-1",
    "geothermal_flux": "W m-2",
    "bottom_temperature": "degC",
    "offset": "K",
    "snow_offset": "K",
}
"""The model's unit of each parameter leaf (the last part of a path). A [parameters.NAME]
table's `units` may be any unit of the same dimension: its init, bounds and prior are
converted to these. A `K` here is a temperature difference (absolute temperatures are degC)."""

_PRIOR_SPREADS = {"std"}
_PRIOR_LOCATIONS = {"mean", "median", "low", "high"}


def model_units(path: str) -> str | None:
    """The model's unit of the leaf a parameter path ends in, if cryograd knows it."""
    leaf = str(path).replace("]", "").replace("[", ".").split(".")[-1]
    return MODEL_UNITS.get(leaf)


def in_model_units(name: str, spec: dict) -> dict:
    """A [parameters.NAME] table with its init, bounds, prior and (twins) truth converted
    from its `units` to the model's unit of its leaf (`MODEL_UNITS`); unchanged when it
    gives no units, the model's, or the leaf is not one cryograd knows."""
    from .. import _units

    path = spec.get("path", name)
    model = model_units(path) if path else None
    given = spec.get("units")
    if model is None or given is None or given == model:
        return spec
    where = f"parameters.{name}"

    def convert(value, spread=False):
        if not isinstance(value, int | float):  # a wrong type: the schema check reports it
            return value
        return _units.convert_setting(value, given, model, where, spread)

    out = dict(spec, units=model)
    if "init" in spec:
        out["init"] = convert(spec["init"])
    if isinstance(spec.get("bounds"), list):
        out["bounds"] = [convert(b) for b in spec["bounds"]]
    for key in ("prior", "truth"):  # a prior table; a twin's truth: a number or {mean, std}
        value = spec.get(key)
        if isinstance(value, dict):  # lognormal's sigma is of the logarithm: unchanged
            converted = _PRIOR_LOCATIONS | _PRIOR_SPREADS
            out[key] = {k: convert(v, spread=k in _PRIOR_SPREADS) if k in converted else v for k, v in value.items()}
        elif value is not None:
            out[key] = convert(value)
    return out


def parameter(name: str, spec: dict, units: str = ""):
    """The `Parameter` of a [parameters.NAME] table (`path` defaults to NAME; `path = ""`
    for a parameter only an observation operator reads, such as an LST offset). When the
    table's `units` differ from the model's unit of that leaf (`MODEL_UNITS`), its init,
    bounds and prior are converted (K km-1 to K m-1, mW m-1 K-1 to W m-1 K-1, K to degC);
    a unit of another dimension is refused. `units` is the default when neither is known."""
    from ..assimilation import Parameter

    bounds = spec.get("bounds")
    if bounds is not None and len(bounds) != 2:
        raise ValueError(f"bounds must be [low, high], got {bounds!r}")
    path = spec.get("path", name)
    model = model_units(path) if path else None
    spec = in_model_units(name, spec)
    bounds = spec.get("bounds")
    if bounds is not None and bounds[0] >= bounds[1]:
        raise ValueError(f"bounds [{bounds[0]}, {bounds[1]}] are reversed; write [{bounds[1]}, {bounds[0]}]")
    return Parameter(
        path if path != "" else None,
        name=name,
        init=spec.get("init"),
        bounds=None if bounds is None else tuple(bounds),
        prior=spec.get("prior"),
        scope=spec.get("scope", "shared"),
        units=spec.get("units", model if model is not None else units),
    )


def laplace_and_sampler(problem, u, config: dict):
    """The Laplace posterior at `u` with the config's [uncertainty] hessian, and NUTS draws
    when `sampler = "nuts"` (else None)."""
    import jax

    from ..assimilation import laplace, sample

    uncertainty = config.get("uncertainty", {})
    laplace_posterior = laplace(problem, u, hessian=uncertainty.get("hessian", "exact"))
    samples = None
    if uncertainty.get("sampler", "none") == "nuts":
        samples = sample(
            problem,
            u,
            jax.random.key(int(config.get("experiment", {}).get("seed", 0))),
            num_warmup=uncertainty.get("num_warmup", 500),
            num_samples=uncertainty.get("num_samples", 1000),
        )
    return laplace_posterior, samples


def fit_settings(config: dict) -> tuple[str, dict]:
    """(method, the other [fit] keys as `fit` keyword arguments); Levenberg-Marquardt by default."""
    settings = dict(config.get("fit", {}))
    return settings.pop("method", "levenberg_marquardt"), settings


def calibrate(problem, config: dict, out: Path, progress: bool, **options):
    """An experiment's main fit with its [fit] settings, checkpointed in `out` under the
    config's tag (an interrupted run of the same config resumes). Returns (FitResult,
    checkpoint path); remove the checkpoint once the run's outputs are written."""
    from ..assimilation import fit

    method, settings = fit_settings(config)
    checkpoint, tag = prepare_checkpoint(out, config)
    result = fit(
        problem,
        method,
        progress=progress,
        description="calibration",
        checkpoint=checkpoint,
        checkpoint_tag=tag,
        **options,
        **settings,
    )
    return result, checkpoint


def prepare_checkpoint(out: Path, config: dict) -> tuple[Path, str]:
    """The checkpoint file in `out` and the config's tag; a checkpoint left by another
    config is removed (with a message), one left by this config is kept to resume."""
    import hashlib
    import json
    import sys

    checkpoint = out / "checkpoint.eqx"
    tag = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    if checkpoint.exists() and _checkpoint_tag(checkpoint) != tag:
        print(f"{checkpoint} is from another config; starting afresh", file=sys.stderr)
        remove_checkpoint(checkpoint)
    return checkpoint, tag


def _checkpoint_tag(path: Path) -> str | None:
    import json

    meta = path.with_name(path.name + ".json")
    try:
        return json.loads(meta.read_text()).get("tag")
    except (OSError, ValueError):
        return None


def remove_checkpoint(path: Path) -> None:
    """Remove a checkpoint and its metadata (after a finished run: nothing to resume)."""
    for p in (path, path.with_name(path.name + ".json")):
        p.unlink(missing_ok=True)


def copy_config(config: dict) -> dict:
    return copy.deepcopy(config)


COLUMN_OPTIONS = ("solver", "time_scheme", "conductivity")
"""[model] keys that choose how a `PermafrostColumn` is solved (`typed.ColumnOptions`)."""


def column_options(model: dict) -> dict:
    """The `PermafrostColumn` solver arguments given in a [model] table (`COLUMN_OPTIONS`)."""
    return {key: model[key] for key in COLUMN_OPTIONS if model.get(key) is not None}


def snow_column(model: dict, *, depth: float = 30.0, cells: int = 40, dz_top: float = 0.02):
    """The `PermafrostColumn` of a [model] table: a geometric grid (`depth` [m], `cells`,
    `dz_top` [m]; the keyword values are the defaults), `layers` (`SoilLayer` arguments),
    free-water freezing and a `Snow` surface (`snow_density` [kg m-3], default 250;
    `snow_min_depth` [m], 0.02; `snow_cells`, 3), `geothermal_flux` [W m-2], 0.05, and the
    solver keys of `COLUMN_OPTIONS`."""
    from .. import physics as P

    grid = P.Grid.geometric(
        depth=model.get("depth", depth), n=model.get("cells", cells), dz_top=model.get("dz_top", dz_top)
    )
    snow = P.Snow(
        density=model.get("snow_density", 250.0),
        min_depth=model.get("snow_min_depth", 0.02),
        n_cells=model.get("snow_cells", 3),
    )
    return P.PermafrostColumn(
        grid=grid,
        layers=[P.SoilLayer(**layer) for layer in model["layers"]],
        freeze_curve=P.FreeWater(),
        surface=snow,
        geothermal_flux=model.get("geothermal_flux", 0.05),
        **column_options(model),
    )
