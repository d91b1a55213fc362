"""Monthly climate for every glacier of a region from a few stations."""

import warnings

import numpy as np
import pandas as pd
import xarray as xr

EARTH_RADIUS_KM = 6371.0
METHODS = ("nearest", "inverse_distance")


def _distance_km(lat1, lon1, lat2, lon2):
    """Great-circle distance [km] (haversine) between points given in degrees."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat, dlon = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _station_name(ds, k):
    return str(ds.attrs.get("station_name") or ds.attrs.get("source") or f"station {k}")


def _checked_station(ds, k):
    name = _station_name(ds, k)
    if not isinstance(ds, xr.Dataset):
        raise ValueError(
            f"stations[{k}]: expected an xarray Dataset (cg.data.open_imo_station), got {type(ds).__name__}"
        )
    for variable in ("temperature", "precipitation"):
        if variable not in ds or ds[variable].dims != ("time",):
            raise ValueError(f"stations[{k}] ({name}): needs a {variable!r} variable over time")
    position = {}
    for key in ("lat", "lon", "reference_elevation"):
        value = ds.attrs.get(key)
        try:
            position[key] = float(value)
        except (TypeError, ValueError):
            position[key] = np.nan
        if not np.isfinite(position[key]):
            raise ValueError(
                f"stations[{k}] ({name}): attribute {key!r} missing or not a number (give the station's "
                "position and height, e.g. open_imo_station(path, elevation=..., lat=..., lon=...))"
            )
    times = pd.DatetimeIndex(ds.indexes["time"])
    if times.size == 0 or not np.all((times.day == 1) & (times.normalize() == times)):
        raise ValueError(f"stations[{k}] ({name}): time must be the first day of each month")
    return name, position, times


def station_climate(
    stations,
    lat,
    lon,
    *,
    glacier=None,
    method: str = "nearest",
    power: float = 2.0,
    lapse_rate: float = -0.0065,
    climatology: tuple[int, int] | None = None,
) -> xr.Dataset:
    """Monthly temperature and precipitation for every glacier from a few stations, in the
    convention of a region's `open_climate` dataset: `temperature` [degC] and
    `precipitation` [kg m-2 per month] over (time, glacier) at `reference_elevation`
    (glacier) [m], ready for `MonthlyTemperatureIndex.simulate` with the region's
    `Hypsometry`, whose `temperature_bias` and `precipitation_factor` are then the
    regional corrections a fit estimates.

    **Arguments:**

    - `stations`: datasets of `cg.data.open_imo_station` (or the same layout): `temperature`
      and `precipitation` over a monthly `time`, attributes `lat`, `lon` [degree] and
      `reference_elevation` [m].
    - `lat`, `lon`: each glacier's position [degree] (e.g. RGI's CenLat, CenLon);
      `glacier` its ids (default 0..n-1).
    - `method`: `"nearest"`: each glacier takes its nearest station; `"inverse_distance"`:
      all stations, weighted by distance^-`power`.
    - `lapse_rate` [K m-1]: moves each station's temperature to the glacier's reference
      elevation, the weighted mean of its stations' heights (with `"nearest"`: the nearest
      station's own).
    - `climatology`: (first, last) calendar years of the monthly climatology; default the
      stations' common period.

    The climatology and the anomalies are kept apart. A glacier's climatology (per calendar
    month) is the weighted mean of its stations' climatologies, each from that station's own
    record. Its anomaly each month (temperature: the difference from the climatology;
    precipitation: the ratio to it) comes from its stations that have a value that month,
    weights renormalised over them, with `"nearest"` from the nearest station that has one.
    So a station's gap is bridged by its neighbours' anomalies, never by a constant, and
    counted: `months_from_other_stations` (glacier) per variable. A month no station has
    stays NaN (counted in the attribute `missing_months`).

    **Returns:** `xr.Dataset` over the stations' common months: `temperature`,
    `precipitation` (time, glacier), `reference_elevation` (glacier), the parts
    `temperature_climatology`, `precipitation_climatology` (month, glacier),
    `temperature_anomaly` [K], `precipitation_ratio` [1] (time, glacier), `station_weight`
    and `station_distance` [km] (glacier, station), the months bridged; attributes record
    the method, power, lapse rate, climatology years and station names.

    Raises `ValueError` for a station without position, height or variables, stations
    without common months, a climatology period outside them or a calendar month without
    any value at a station in it, positions that are not finite, and an unknown method.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not float(power) > 0:
        raise ValueError(f"power must be positive, got {power!r}")
    stations = list(stations)
    if not stations:
        raise ValueError("stations: give at least one station")
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    if lat.shape != lon.shape or lat.ndim != 1:
        raise ValueError(f"lat and lon must be 1-D and of one length, got {lat.shape} and {lon.shape}")
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon)) and np.all(np.abs(lat) <= 90)):
        raise ValueError("lat, lon: every glacier needs a finite position (latitude within +-90)")
    glacier = np.arange(lat.size) if glacier is None else np.asarray(glacier)
    if glacier.shape != lat.shape:
        raise ValueError(f"glacier: {glacier.size} ids for {lat.size} positions")

    checked = [_checked_station(ds, k) for k, ds in enumerate(stations)]
    names = [c[0] for c in checked]
    first = max(c[2][0] for c in checked)
    last = min(c[2][-1] for c in checked)
    if first > last:
        spans = ", ".join(f"{n} {c[2][0]:%Y-%m}..{c[2][-1]:%Y-%m}" for n, c in zip(names, checked, strict=True))
        raise ValueError(f"stations: no month common to all stations ({spans})")
    time = pd.date_range(first, last, freq="MS")
    years = (time[0].year, time[-1].year) if climatology is None else tuple(int(y) for y in climatology)
    if len(years) != 2 or years[0] > years[1] or years[0] < time[0].year or years[1] > time[-1].year:
        raise ValueError(
            f"climatology: {climatology!r} must be (first, last) years inside the stations' common period "
            f"{time[0]:%Y-%m}..{time[-1]:%Y-%m}"
        )
    month = time.month.values
    in_period = (time.year >= years[0]) & (time.year <= years[1])

    S, n = len(stations), lat.size
    elevation = np.array([c[1]["reference_elevation"] for c in checked])
    distance = _distance_km(
        lat[:, None], lon[:, None], np.array([c[1]["lat"] for c in checked]), np.array([c[1]["lon"] for c in checked])
    )  # (glacier, station)
    if method == "nearest":
        weight = np.zeros((n, S))
        weight[np.arange(n), np.argmin(distance, axis=1)] = 1.0
    else:
        at_station = distance < 1e-6
        inverse = np.where(at_station.any(axis=1, keepdims=True), at_station, np.maximum(distance, 1e-6) ** -power)
        weight = inverse / inverse.sum(axis=1, keepdims=True)
    reference = weight @ elevation  # (glacier,)

    out = xr.Dataset(coords=dict(time=time, glacier=glacier, month=np.arange(1, 13), station=names))
    for variable in ("temperature", "precipitation"):
        series = np.stack([ds[variable].reindex(time=time).values.astype(float) for ds in stations])  # (S, t)
        clim = np.full((S, 12), np.nan)
        for s in range(S):
            for m in range(1, 13):
                values = series[s, in_period & (month == m)]
                if not np.any(np.isfinite(values)):
                    raise ValueError(
                        f"stations[{s}] ({names[s]}): no {variable} in calendar month {m} of the climatology "
                        f"years {years[0]}-{years[1]}"
                    )
                clim[s, m - 1] = np.nanmean(values)
        at_month = clim[:, month - 1]  # (S, t)
        if variable == "temperature":
            anomaly = series - at_month
            # each station's climatology moved to the glacier's reference elevation
            moved = clim[None, :, :] + lapse_rate * (reference[:, None, None] - elevation[None, :, None])
            glacier_clim = np.einsum("gs,gsm->mg", weight, moved)
        else:
            lost = (at_month <= 0) & (series > 0)
            if lost.any():
                s, t = np.argwhere(lost)[0]
                raise ValueError(
                    f"stations[{s}] ({names[s]}): precipitation in {time[t]:%Y-%m} but none in that calendar month "
                    f"over the climatology years {years[0]}-{years[1]}: its ratio to the climatology is undefined; "
                    "choose other climatology years"
                )
            anomaly = np.where(at_month > 0, series / np.where(at_month > 0, at_month, 1.0), 1.0)
            anomaly = np.where(np.isfinite(series), anomaly, np.nan)
            glacier_clim = (weight @ clim).T  # (month, glacier)
        present = np.isfinite(anomaly)  # (S, t)
        if method == "nearest":
            order = np.argsort(distance, axis=1)  # stations by distance, per glacier
            chosen = np.full((n, time.size), -1)
            for rank in range(S - 1, -1, -1):  # the nearest station with a value wins
                station = order[:, rank][:, None]
                chosen = np.where(present[station, np.arange(time.size)[None, :]], station, chosen)
            field = np.where(chosen >= 0, anomaly[np.maximum(chosen, 0), np.arange(time.size)[None, :]], np.nan)
            bridged = (chosen != np.argmin(distance, axis=1)[:, None]) & (chosen >= 0)
        else:
            w = weight[:, :, None] * present[None, :, :]  # (glacier, S, t)
            total = w.sum(axis=1)
            field = np.where(
                total > 0, np.einsum("gst,st->gt", w, np.nan_to_num(anomaly)) / np.where(total > 0, total, 1), np.nan
            )
            bridged = (total < 1.0 - 1e-12) & (total > 0)
        field = field.T  # (t, glacier)
        clim_now = glacier_clim[month - 1]  # (t, glacier)
        value = clim_now + field if variable == "temperature" else clim_now * field
        missing = int(np.sum(~np.isfinite(field).all(axis=1)))
        if missing:
            warnings.warn(
                f"station_climate: no station has {variable} in {missing} month(s); left as NaN", stacklevel=2
            )
        units = "degC" if variable == "temperature" else "kg m-2"
        out[variable] = (("time", "glacier"), value, dict(units=units, missing_months=missing))
        part = "temperature_anomaly" if variable == "temperature" else "precipitation_ratio"
        out[part] = (("time", "glacier"), field, dict(units="K" if variable == "temperature" else "1"))
        out[f"{variable}_climatology"] = (("month", "glacier"), glacier_clim, dict(units=units))
        out[f"{variable}_months_from_other_stations"] = (
            ("glacier",),
            bridged.sum(axis=1),
            dict(long_name=f"months whose {variable} anomaly came from other than the glacier's own stations"),
        )
    out["temperature"].attrs["long_name"] = "monthly mean air temperature at reference_elevation"
    out["precipitation"].attrs.update(long_name="precipitation per month", cell_methods="time: sum")
    out["reference_elevation"] = ("glacier", reference, dict(units="m"))
    out["station_weight"] = (("glacier", "station"), weight, dict(units="1"))
    out["station_distance"] = (("glacier", "station"), distance, dict(units="km"))
    out.attrs.update(
        method=method,
        power=float(power) if method == "inverse_distance" else np.nan,
        lapse_rate=float(lapse_rate),
        climatology_years=f"{years[0]}-{years[1]}",
        stations=", ".join(names),
        station_elevations=", ".join(f"{z:g}" for z in elevation),
        source="cg.data.station_climate",
    )
    return out
