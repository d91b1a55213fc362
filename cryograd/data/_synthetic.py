"""Synthetic data with realistic statistics, for twin experiments and scaling tests.

Every random draw takes an explicit `jax.random` key, so a twin is reproducible from its
seed. The generators are NumPy at the edges (they make inputs, they are not differentiated).
"""

import functools

import jax
import numpy as np
import pandas as pd
import xarray as xr

YEAR_DAYS = 365.25
WATER_DENSITY = 1000.0  # [kg m-3]


def _per_site(values: dict) -> tuple[dict, int | None]:
    arrays = {k: np.asarray(v, dtype=float) for k, v in values.items()}
    for name, value in arrays.items():
        if value.ndim > 1:
            raise ValueError(f"{name}: give a number or a 1-D list (one per site), got shape {value.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name}: must be finite, got {value}")
    sizes = {v.size for v in arrays.values() if v.ndim == 1}
    if len(sizes) > 1:
        raise ValueError(f"per-site lists must have one length; got {sorted(sizes)}")
    n = sizes.pop() if sizes else None
    return {k: np.broadcast_to(v, (n or 1,)).copy() for k, v in arrays.items()}, n


@functools.partial(jax.jit, static_argnums=1)
def _weather_draws(key, shape):
    """The three random fields of `synthetic_permafrost_forcing` in one compiled call:
    standard normal shocks, uniform wet-day draws, unit exponential amounts (site, time)."""
    k_weather, k_wet, k_amount = jax.random.split(key, 3)
    return (
        jax.random.normal(k_weather, shape),
        jax.random.uniform(k_wet, shape),
        jax.random.exponential(k_amount, shape),
    )


def _ar1(normal, std, correlation_days):
    """AR(1) series (site, time) from standard normal shocks `normal`, with stationary std
    `std` and e-folding time `correlation_days`: x_t = phi x_(t-1) + e_t, phi =
    exp(-1 / correlation_days), started from the stationary distribution."""
    import scipy.signal  # 0.7 s to import, which runs without synthetic weather need not pay

    phi = np.exp(-1.0 / np.asarray(correlation_days))
    shocks = normal * (np.asarray(std) * np.sqrt(1.0 - phi**2))[:, None]
    shocks[:, 0] = normal[:, 0] * np.asarray(std)  # the stationary start
    out = np.empty_like(shocks)
    for value in np.unique(phi):  # the recursion as a linear filter, sites of one phi together
        sites = phi == value
        out[sites] = scipy.signal.lfilter([1.0], [1.0, -value], shocks[sites], axis=1)
    return out


def _snow_water_equivalent(snowfall, melt):
    """The pack (site, time) [m] of W_t = max(W_(t-1) + snowfall_t - melt_t, 0), W_(-1) = 0,
    in closed form (Lindley): W_t = S_t - min(0, min_(k<=t) S_k) with S the cumulative sum
    of snowfall - melt."""
    total = np.cumsum(snowfall - melt, axis=1)
    return total - np.minimum(np.minimum.accumulate(total, axis=1), 0.0)


def synthetic_permafrost_forcing(
    key,
    start: str,
    years: int,
    *,
    mean_air_temperature=-8.0,
    amplitude=18.0,
    warmest_day=200.0,
    anomaly_std=3.5,
    anomaly_days=3.0,
    precipitation=0.25,
    wet_day_fraction=0.35,
    melt_factor=0.004,
    snow_density=250.0,
) -> xr.Dataset:
    """Daily air temperature and snow for one or many synthetic sites.

    Air temperature [degC] = mean + amplitude cos(2 pi (day of year - warmest_day) / 365.25)
    + an AR(1) weather anomaly (stationary std `anomaly_std` [K], e-folding time
    `anomaly_days` [day]). Precipitation falls on a random `wet_day_fraction` of days with
    exponentially distributed amounts that total `precipitation` [m water per year] on
    average; it is snow below 0 degC. Snow water equivalent grows with snowfall and melts by
    `melt_factor` [m water K-1 day-1] times the positive air temperature; snow depth [m] is
    SWE x 1000 / `snow_density`.

    **Arguments:** `key` a `jax.random` key; `start` the first day (date string); `years`
    the number of years (the last day is the day before `start` plus `years` years); the
    climate arguments are numbers or lists with one value per site (then every variable
    has a leading `site` dimension).

    **Returns:** `xr.Dataset` over (`site`,) `time` with `air_temperature` [degC],
    `precipitation` [m day-1 water], `snow_water_equivalent` [m] and `snow_depth` [m],
    ready for `PermafrostColumn.simulate` with a `Snow` surface.
    """
    if int(years) != years or years < 1:
        raise ValueError(f"years must be a positive integer, got {years!r}")
    values, n_site = _per_site(
        dict(
            mean_air_temperature=mean_air_temperature,
            amplitude=amplitude,
            warmest_day=warmest_day,
            anomaly_std=anomaly_std,
            anomaly_days=anomaly_days,
            precipitation=precipitation,
            wet_day_fraction=wet_day_fraction,
            melt_factor=melt_factor,
            snow_density=snow_density,
        )
    )
    for name in ("anomaly_days", "snow_density", "wet_day_fraction"):
        if np.any(values[name] <= 0):
            raise ValueError(f"{name} must be positive, got {values[name]}")
    for name in ("amplitude", "anomaly_std", "precipitation", "melt_factor"):
        if np.any(values[name] < 0):
            raise ValueError(f"{name} must not be negative, got {values[name]}")
    if np.any(values["wet_day_fraction"] > 1):
        raise ValueError(f"wet_day_fraction must lie in (0, 1], got {values['wet_day_fraction']}")
    try:
        first = pd.Timestamp(start)
        times = pd.date_range(first, first + pd.DateOffset(years=int(years)) - pd.Timedelta(days=1), freq="D")
    except (ValueError, TypeError):
        raise ValueError(f"start: {start!r} is not a date") from None
    sites = values["mean_air_temperature"].size
    shape = (sites, times.size)
    normal, uniform, exponential = (np.asarray(a) for a in _weather_draws(key, shape))
    day = times.day_of_year.values[None, :]
    v = {k: a[:, None] for k, a in values.items()}
    warmest, curve = np.unique(values["warmest_day"], return_inverse=True)  # the seasonal cosine once per warmest day
    seasonal = np.cos(2 * np.pi * (day - warmest[:, None]) / YEAR_DAYS)[curve.ravel()]
    air = v["mean_air_temperature"] + v["amplitude"] * seasonal
    air = air + _ar1(normal, values["anomaly_std"], values["anomaly_days"])
    wet = uniform < v["wet_day_fraction"]
    mean_amount = v["precipitation"] / (365.0 * v["wet_day_fraction"])
    precipitation = np.where(wet, exponential * mean_amount, 0.0)
    snowfall = np.where(air < 0.0, precipitation, 0.0)
    swe = _snow_water_equivalent(snowfall, v["melt_factor"] * np.maximum(air, 0.0))
    depth = swe * WATER_DENSITY / v["snow_density"]
    dims = ("site", "time") if n_site is not None else ("time",)

    def squeeze(a):
        return a if n_site is not None else a[0]

    ds = xr.Dataset(
        dict(
            air_temperature=(dims, squeeze(air), dict(units="degC", long_name="air temperature, daily mean")),
            precipitation=(dims, squeeze(precipitation), dict(units="m day-1", long_name="precipitation (water)")),
            snow_water_equivalent=(dims, squeeze(swe), dict(units="m", long_name="snow water equivalent")),
            snow_depth=(dims, squeeze(depth), dict(units="m", long_name="snow depth")),
        ),
        coords=dict(time=times),
        attrs=dict(title="cryograd synthetic permafrost forcing", source="cryograd.data.synthetic_permafrost_forcing"),
    )
    if n_site is not None:
        ds = ds.assign_coords(site=np.arange(n_site))
    return ds


def synthetic_clear_sky(key, times, *, clear_fraction=0.35, persistence=0.5, sites: int | None = None) -> xr.DataArray:
    """A clear-sky mask with cloudy spells: a two-state Markov chain per site whose clear
    days make up `clear_fraction` of the days on average, with lag-1 correlation
    `persistence` (0: independent days; towards 1: long clear and cloudy spells).

    **Returns:** a boolean DataArray over (`site`,) `time` (True: clear sky).
    """
    f, rho = float(clear_fraction), float(persistence)
    if not 0 < f < 1:
        raise ValueError(f"clear_fraction must lie in (0, 1), got {clear_fraction!r}")
    if not 0 <= rho < 1:
        raise ValueError(f"persistence must lie in [0, 1), got {persistence!r}")
    times = pd.DatetimeIndex(times)
    n = 1 if sites is None else int(sites)
    stay_clear = f + rho * (1.0 - f)  # P(clear | clear yesterday)
    become_clear = f * (1.0 - rho)  # P(clear | cloudy yesterday)
    k_first, k_days = jax.random.split(key)
    draws = np.asarray(jax.random.uniform(k_days, (n, times.size)))
    clear = np.empty((n, times.size), dtype=bool)
    clear[:, 0] = np.asarray(jax.random.uniform(k_first, (n,))) < f
    for t in range(1, times.size):
        clear[:, t] = draws[:, t] < np.where(clear[:, t - 1], stay_clear, become_clear)
    if sites is None:
        return xr.DataArray(clear[0], coords=dict(time=times), dims="time", name="clear_sky")
    return xr.DataArray(clear, coords=dict(site=np.arange(n), time=times), dims=("site", "time"), name="clear_sky")


def synthetic_glacier_region(
    key,
    n: int,
    *,
    median_area=2.0e6,
    area_spread=0.9,
    median_elevation=3080.0,
    elevation_spread=80.0,
    range_coefficient=620.0,
    range_exponent=0.3,
    range_spread=0.2,
    shape=2.5,
    bin_size=50.0,
):
    """Hypsometries of `n` synthetic glaciers with the statistics of an Alpine region.

    - Area [m2]: log-normal with median `median_area` and log-standard deviation
      `area_spread`.
    - Elevation range [m]: `range_coefficient` x (area / 1 km2)^`range_exponent` x a
      log-normal factor (log-sd `range_spread`). The defaults fit the 20 Oetztal glaciers of
      the `oetztal_outlines` sample (SRTM hypsometries, 0.3-17 km2, 450-1500 m), within
      about 20 %.
    - Shape: the area over the normalised elevation x (0 at the terminus, 1 at the top)
      follows a Beta(`shape`, `shape` x e^(0.25 N(0, 1))) density, so the area-weighted
      median lies near mid-range with a random skew (the Oetztal glaciers: 0.30-0.68).
    - Position: the area-weighted median elevation is normal with mean `median_elevation`
      and standard deviation `elevation_spread` [m].

    **Arguments:** `key` a `jax.random` key; the statistics above; `bin_size` the band
    height [m].

    **Returns:** `cg.physics.Hypsometry` with a leading glacier axis: band centres every
    `bin_size` from each glacier's terminus up, padded with zero-area bands.
    """
    from scipy.special import betainc, betaincinv  # NumPy edge: 20x faster than jax.scipy's here

    from ..physics import Hypsometry

    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    for name, value in dict(
        median_area=median_area, range_coefficient=range_coefficient, shape=shape, bin_size=bin_size
    ).items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
    k_area, k_range, k_skew, k_position = jax.random.split(key, 4)
    n = int(n)
    area = median_area * np.exp(area_spread * np.asarray(jax.random.normal(k_area, (n,))))
    height = range_coefficient * (area / 1e6) ** range_exponent
    height = height * np.exp(range_spread * np.asarray(jax.random.normal(k_range, (n,))))
    a = np.full(n, float(shape))
    b = shape * np.exp(0.25 * np.asarray(jax.random.normal(k_skew, (n,))))
    # The shape's CDF is taken piecewise linear between the nodes of a 2001-point grid of x;
    # only the nodes that bracket a band edge or the median are evaluated.
    x = np.linspace(0.0, 1.0, 2001)

    def cdf(j):
        return betainc(a[:, None], b[:, None], x[j])

    # the median: the grid interval whose CDF values bracket 0.5, near the exact inverse
    near = np.clip(np.floor(betaincinv(a, b, 0.5) * 2000).astype(int)[:, None] + np.arange(-2, 3), 0, 2000)
    values = cdf(near)
    pick = np.clip(np.sum(values <= 0.5, axis=1) - 1, 0, near.shape[1] - 2)[:, None]
    c0, c1 = np.take_along_axis(values, pick, 1)[:, 0], np.take_along_axis(values, pick + 1, 1)[:, 0]
    x0, x1 = x[np.take_along_axis(near, pick, 1)[:, 0]], x[np.take_along_axis(near, pick + 1, 1)[:, 0]]
    median_x = (x1 - x0) / (c1 - c0) * (0.5 - c0) + x0
    median = median_elevation + elevation_spread * np.asarray(jax.random.normal(k_position, (n,)))
    bottom = median - median_x * height
    n_bands = np.ceil(height / bin_size).astype(int)
    width = int(n_bands.max())
    edges = np.minimum(np.arange(width + 1)[None, :] * bin_size / height[:, None], 1.0)  # (glacier, edge)
    j = np.clip(np.searchsorted(x, edges, side="right") - 1, 0, 1999)
    lower, upper = cdf(j), cdf(j + 1)
    at_edges = np.where(edges >= 1.0, upper, (upper - lower) / (x[j + 1] - x[j]) * (edges - x[j]) + lower)
    mass = np.diff(at_edges, axis=1)
    bands = area[:, None] * mass / mass.sum(axis=1, keepdims=True)
    elevation = bottom[:, None] + (np.arange(width)[None, :] + 0.5) * bin_size
    return Hypsometry(elevation, bands)
