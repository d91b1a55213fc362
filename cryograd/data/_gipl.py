"""Reader of a GIPL2 station folder (Jafarov et al. 2012; github.com/Elchin/GIPL).

Layout: `in/bound.txt`, `in/snow.txt`, `in/rsnow.txt` (a count line, then `day value`
rows: air temperature [degC], snow depth [m], snow thermal conductivity [W m-1 K-1]),
`in/grid.txt` (a count, the node depths [m, negative above the ground], the number of
output nodes and their 1-based indices), `in/initial.txt` (an ignored number and a count,
a header, then `depth temperature` rows), `in/mineral.txt` and `in/organic.txt` (an ignored
line, then `site n_layers`, then per layer: water content, unfrozen-water a and b,
heat capacity thawed and frozen [J m-3 K-1], conductivity thawed and frozen
[W m-1 K-1], thickness [m]; organic layers lie above the mineral ones), and `mesres.txt`
(measured daily ground temperature [degC] at the output nodes, one row per forcing day).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

LAYER_FIELDS = (
    ("water_content", "m3 m-3", "total volumetric water content"),
    ("unfrozen_water_a", "m3 m-3", "unfrozen water content at -1 degC (theta_u = a |T|^b)"),
    ("unfrozen_water_b", "1", "exponent b of the unfrozen water curve"),
    ("c_thawed", "J m-3 K-1", "volumetric heat capacity of thawed soil"),
    ("c_frozen", "J m-3 K-1", "volumetric heat capacity of frozen soil"),
    ("k_thawed", "W m-1 K-1", "thermal conductivity of thawed soil"),
    ("k_frozen", "W m-1 K-1", "thermal conductivity of frozen soil"),
    ("layer_thickness", "m", "layer thickness"),
)
GIPL_SNOW_HEAT_CAPACITY = 8.4e5
"""GIPL2's volumetric heat capacity of snow [J m-3 K-1]."""


def _numbers(path: Path) -> list[list[float]]:
    """Rows of numbers of a whitespace-separated text file (blank lines skipped)."""
    if not path.is_file():
        raise ValueError(f"{path}: file not found (a GIPL station folder needs it)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append([float(token) for token in line.split()])
        except ValueError:
            raise ValueError(f"{path}, line {number}: expected numbers, got {line.strip()!r}") from None
    return rows


def _series(path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(day numbers, values) of a GIPL `count / day value` series file."""
    rows = _numbers(path)
    if not rows or len(rows[0]) != 1:
        raise ValueError(f"{path}: the first line must hold the number of {name} values")
    count = int(rows[0][0])
    body = rows[1:]
    if len(body) != count:
        raise ValueError(f"{path}: header says {count} {name} values, found {len(body)} rows")
    if any(len(row) != 2 for row in body):
        raise ValueError(f"{path}: every {name} row must be 'day value'")
    days, values = np.array(body).T
    if np.any(np.diff(days) <= 0):
        raise ValueError(f"{path}: {name} day numbers must increase")
    return days, values


def _layers(path: Path) -> np.ndarray:
    rows = _numbers(path)
    if len(rows) < 2 or len(rows[1]) != 2:
        raise ValueError(f"{path}: the second line must be 'site number_of_layers'")
    count = int(rows[1][1])
    body = rows[2 : 2 + count]
    if len(body) != count or any(len(row) != len(LAYER_FIELDS) for row in body):
        raise ValueError(
            f"{path}: expected {count} layer rows of {len(LAYER_FIELDS)} numbers "
            f"({', '.join(name for name, *_ in LAYER_FIELDS)})"
        )
    return np.array(body, dtype=np.float64).reshape(count, len(LAYER_FIELDS))


def open_gipl_station(folder, start=None) -> xr.Dataset:
    """Read a GIPL2 station folder: forcing, soil layers, grid, initial and measured temperatures.

    **Arguments:**

    - `folder`: the station folder (holding `in/` and `mesres.txt`).
    - `start`: date of forcing day 1 (anything `pandas.Timestamp` takes). GIPL files
      carry day numbers only; without `start` the `time` coordinate is the day number and
      the dataset cannot drive `simulate` until it is given. For the bundled 2008 station
      the first day is 2008-07-01.

    **Returns:** an `xr.Dataset` with
    `air_temperature` [degC], `snow_depth` [m], `snow_conductivity` [W m-1 K-1] over `time`;
    `ground_temperature` (time, depth) [degC], measured, on the output nodes' depths [m]
    (NaN where missing); per `layer` (top down, organic first): the fields of
    `LAYER_FIELDS` and `layer_top` [m]; `grid_node_depth` (node) [m, negative above the
    ground]; `initial_temperature` (initial_depth) [degC].
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder (open_gipl_station wants a GIPL station folder)")
    inputs = folder / "in"
    days, air = _series(inputs / "bound.txt", "air temperature")
    series = {"air_temperature": air}
    for name, file in (("snow_depth", "snow.txt"), ("snow_conductivity", "rsnow.txt")):
        other_days, values = _series(inputs / file, name)
        if not np.array_equal(other_days, days):
            raise ValueError(f"{inputs / file}: its day numbers differ from bound.txt's")
        series[name] = values
    if np.any(series["snow_depth"] < 0):
        raise ValueError(f"{inputs / 'snow.txt'}: negative snow depth")
    if np.any(series["snow_conductivity"] <= 0):
        raise ValueError(f"{inputs / 'rsnow.txt'}: snow conductivity must be positive")
    if np.any(np.diff(days) != 1):
        raise ValueError(f"{inputs / 'bound.txt'}: day numbers must be consecutive (daily forcing)")

    grid_rows = _numbers(inputs / "grid.txt")
    flat = [value for row in grid_rows for value in row]
    n_nodes = int(flat[0]) if flat else 0
    if len(flat) < n_nodes + 2:
        raise ValueError(f"{inputs / 'grid.txt'}: expected {n_nodes} node depths and the output node list")
    nodes = np.array(flat[1 : 1 + n_nodes])
    n_out = int(flat[1 + n_nodes])
    outputs = np.array(flat[2 + n_nodes : 2 + n_nodes + n_out], dtype=int)
    if np.any(np.diff(nodes) <= 0):
        raise ValueError(f"{inputs / 'grid.txt'}: node depths must increase")
    if len(outputs) != n_out or np.any((outputs < 1) | (outputs > n_nodes)):
        raise ValueError(f"{inputs / 'grid.txt'}: output node indices must be {n_out} numbers in 1..{n_nodes}")
    depth = nodes[outputs - 1]

    rows = _numbers(folder / "mesres.txt")
    if any(len(row) != n_out for row in rows):
        raise ValueError(f"{folder / 'mesres.txt'}: every row must hold {n_out} temperatures (grid.txt output nodes)")
    measured = np.array(rows, dtype=np.float64).reshape(len(rows), n_out)
    if len(measured) > len(days):
        raise ValueError(f"{folder / 'mesres.txt'}: {len(measured)} rows but only {len(days)} forcing days")
    ground = np.full((len(days), n_out), np.nan)
    ground[: len(measured)] = measured
    ground[ground <= -999] = np.nan

    initial = _initial(inputs / "initial.txt")

    layers = _layers(inputs / "mineral.txt")
    if (inputs / "organic.txt").is_file():
        layers = np.concatenate([_layers(inputs / "organic.txt"), layers])
    if np.any(layers[:, 7] <= 0):
        raise ValueError(f"{inputs / 'mineral.txt'}: layer thickness must be positive")
    tops = np.concatenate([[0.0], np.cumsum(layers[:-1, 7])])

    if start is None:
        time = xr.Variable("time", days.astype(int), {"long_name": "day number of the GIPL forcing"})
    else:
        time = pd.Timestamp(start) + pd.to_timedelta(days - days[0], unit="D")
    data = {
        "air_temperature": ("time", series["air_temperature"], {"units": "degC", "long_name": "air temperature"}),
        "snow_depth": ("time", series["snow_depth"], {"units": "m", "long_name": "snow depth"}),
        "snow_conductivity": (
            "time",
            series["snow_conductivity"],
            {"units": "W m-1 K-1", "long_name": "snow thermal conductivity"},
        ),
        "ground_temperature": (
            ("time", "depth"),
            ground,
            {"units": "degC", "long_name": "measured ground temperature"},
        ),
        "layer_top": ("layer", tops, {"units": "m", "long_name": "depth of the layer top"}),
        "grid_node_depth": ("node", nodes, {"units": "m", "long_name": "GIPL grid node depth, negative above ground"}),
        "initial_temperature": ("initial_depth", initial[:, 1], {"units": "degC", "long_name": "initial temperature"}),
    }
    for index, (name, units, long_name) in enumerate(LAYER_FIELDS):
        data[name] = ("layer", layers[:, index], {"units": units, "long_name": long_name})
    coords = {
        "time": time,
        "depth": ("depth", depth, {"units": "m", "positive": "down", "long_name": "depth of the output nodes"}),
        "initial_depth": ("initial_depth", initial[:, 0], {"units": "m", "positive": "down"}),
    }
    return xr.Dataset(data, coords=coords, attrs={"source": f"GIPL2 station folder {folder.name}"})


def _initial(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ValueError(f"{path}: file not found (a GIPL station folder needs it)")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    try:
        count = int(float(lines[0].split()[1]))
    except (IndexError, ValueError):
        raise ValueError(f"{path}: the first line must be 'flag number_of_points'") from None
    body = lines[2 : 2 + count]
    try:
        rows = np.array([[float(token) for token in line.split()] for line in body])
    except ValueError:
        raise ValueError(f"{path}: expected 'depth temperature' rows after the header") from None
    if rows.shape != (count, 2):
        raise ValueError(f"{path}: header says {count} points, expected that many 'depth temperature' rows")
    return rows


def gipl_column(station: xr.Dataset, surface=None):
    """The station's soil column as a `PermafrostColumn`: its layers (water content,
    thawed/frozen heat capacity and conductivity), GIPL's unfrozen-water curve per layer as
    `PowerLaw(a, b)`, and its grid nodes at and below the ground surface as cell edges [m].

    `station` from `open_gipl_station`; `surface` the upper boundary (default GIPL2's snow:
    `Snow(conductivity="prescribed", heat_capacity=8.4e5)`, driven by the station's air
    temperature, snow depth and snow conductivity).
    """
    from .. import physics as P

    missing = [
        name for name in ("layer_top", "grid_node_depth", *(name for name, *_ in LAYER_FIELDS)) if name not in station
    ]
    if missing:
        raise ValueError(f"station: missing {missing}; open it with cryograd.data.open_gipl_station")
    layers = [
        P.SoilLayer(
            top=float(station.layer_top[i]),
            water_content=float(station.water_content[i]),
            k_thawed=float(station.k_thawed[i]),
            k_frozen=float(station.k_frozen[i]),
            c_thawed=float(station.c_thawed[i]),
            c_frozen=float(station.c_frozen[i]),
        )
        for i in range(station.sizes["layer"])
    ]
    nodes = station.grid_node_depth.values
    curve = P.PowerLaw(a=station.unfrozen_water_a.values, b=station.unfrozen_water_b.values)
    if surface is None:
        surface = P.Snow(conductivity="prescribed", heat_capacity=GIPL_SNOW_HEAT_CAPACITY)
    return P.PermafrostColumn(grid=P.Grid(nodes[nodes >= 0.0]), layers=layers, freeze_curve=curve, surface=surface)


def gipl_initial_temperature(station: xr.Dataset) -> xr.DataArray:
    """The station's initial temperatures [degC] at and below the ground surface, over `depth` [m]."""
    if "initial_temperature" not in station:
        raise ValueError("station: no initial_temperature; open it with cryograd.data.open_gipl_station")
    initial = station.initial_temperature.rename(initial_depth="depth")
    return initial.where(initial.depth >= 0.0, drop=True)
