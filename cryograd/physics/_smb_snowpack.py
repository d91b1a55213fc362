"""Temperature-index mass balance with a snowpack carried between time steps.

`DailyTemperatureIndex` and `EnhancedTemperatureIndex` share one bookkeeping per band and
time step (daily, hourly or monthly; `days` gives each step's length):

    T      = T_ref + temperature_bias + lapse_rate (z - z_ref)                       [degC]
    P      = P_ref precipitation_factor max(1 + precipitation_gradient (z - z_ref), 0)
    solid  = P share(T),  rain = P - solid      (share: linear ramp between the solid and
                                                 liquid thresholds, or a logistic of the
                                                 same midpoint and slope)
    snow  += solid
    melt   = snow first, then firn, then ice, each with its own potential melt over the
             part of the step its predecessor did not use up
    refreezing of melt and rain into the snow/firn pack (never more than the pack's mass)
    mass balance = solid - melt + refreezing                                     [kg m-2]

At the start of each mass-balance year the snow left becomes firn. Stores: snow S and
firn F [kg m-2] per band, and the ice below; per band and year

    accumulation - melt + refreezing = ΔS + ΔF - ice melt                        (exactly)

Refreezing: `"none"`; `"fraction"` (a fixed fraction of melt and rain); or `"woodward"`
(Woodward et al. 1997): a yearly potential R = max(-0.69 T_a + 0.0096, 0) cm w.e. from
the band's mean annual air temperature T_a [degC], used up by the liquid water of the
year.

Years are laid out as (year, step) arrays, padded with zero-length steps (no
precipitation), which change nothing.
"""

import abc
import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
from jaxtyping import Array, Float

from ._smb import PRECIPITATION_FACTOR_BOUNDS, TEMPERATURE_BIAS_BOUNDS, Hypsometry, safe_ratio
from ._validation import as_float_array, is_concrete, require_in_range

Phase = Literal["linear", "smooth"]
Refreezing = Literal["none", "fraction", "woodward"]
MeltCurve = Literal["linear", "softplus", "expected"]

DEGREE_DAY_FACTOR_BOUNDS = (0.5, 20.0)
"""Bounds of the degree-day factors [kg m-2 day-1 K-1] (Hock 2003, Table 2: 2.5-11.6 for
snow, 6.6-20 for ice)."""
WOODWARD_SLOPE = -0.69
"""Refreezing potential per degree of mean annual air temperature [cm w.e. K-1] (Woodward
et al. 1997)."""
WOODWARD_INTERCEPT = 0.0096
"""Refreezing potential at 0 degC [cm w.e.] (Woodward et al. 1997)."""
PACK_FLUXES = (
    "accumulation",
    "rain",
    "snow_melt",
    "firn_melt",
    "ice_melt",
    "melt",
    "refreezing",
    "runoff",
    "mass_balance",
)


def _scalar(value, name, bounds=None):
    if is_concrete(value):
        array = as_float_array(value, name)
        if array.ndim != 0:
            raise ValueError(f"{name} must be a scalar, got shape {array.shape}")
        if bounds is not None:
            require_in_range(array, name, *bounds)
    return jnp.asarray(value, jnp.float64)


class AbstractSnowpackMassBalance(eqx.Module):
    """Shared snow/firn/ice bookkeeping of the sub-monthly temperature-index models."""

    precipitation_factor: eqx.AbstractVar[Float[Array, ""]]
    temperature_bias: eqx.AbstractVar[Float[Array, ""]]
    solid_threshold: eqx.AbstractVar[Float[Array, ""]]
    liquid_threshold: eqx.AbstractVar[Float[Array, ""]]
    lapse_rate: eqx.AbstractVar[Float[Array, ""]]
    precipitation_gradient: eqx.AbstractVar[Float[Array, ""]]
    refreezing_fraction: eqx.AbstractVar[Float[Array, ""]]
    phase: eqx.AbstractVar[Phase]
    refreezing: eqx.AbstractVar[Refreezing]
    year_start_month: eqx.AbstractVar[int]

    @abc.abstractmethod
    def potential_melt(self, temperature, step: dict, surface: dict):
        """Potential melt [kg m-2] of snow, firn and ice over the step, and the updated
        extra surface state (e.g. snow age)."""

    def initial_surface(self, shape) -> dict:
        """Extra surface state carried between steps (none here; the enhanced model adds snow age)."""
        return {}

    @property
    def forcing_variables(self) -> tuple[str, ...]:
        """Climate variables `simulate` needs."""
        return ("temperature", "precipitation")

    def solid_share(self, temperature):
        """Fraction of precipitation falling as snow [1]."""
        span = self.liquid_threshold - self.solid_threshold
        if self.phase == "linear":
            return jnp.clip((self.liquid_threshold - temperature) / span, 0.0, 1.0)
        middle = 0.5 * (self.liquid_threshold + self.solid_threshold)
        return jax.nn.sigmoid(-4.0 * (temperature - middle) / span)  # same slope at the middle

    def run(self, glacier: Hypsometry, climate: dict, snow=None, firn=None, series: bool = False) -> dict:
        """Annual balances of one glacier (pure JAX).

        **Arguments:** `glacier` (band,); `climate` a dict of (year, step) arrays:
        `temperature` [degC] and `precipitation` [kg m-2 per step] at the scalar
        `reference_elevation` [m], `days` (each step's length [day]; 0 on padding steps,
        which must have no precipitation), plus the forcing the melt model needs;
        `snow`, `firn` the initial stores (band,) [kg m-2], default 0; `series` (static)
        adds the stores after every step, `snow_series` and `firn_series` (year, step, band).

        **Returns:** (year, band) [kg m-2]: the fluxes `accumulation`, `rain`,
        `snow_melt`, `firn_melt`, `ice_melt`, `melt`, `refreezing`, `runoff` and
        `mass_balance` summed over the year, and the stores `snow` and `firn` at its end;
        `specific_mass_balance` (year,) [kg m-2].
        """
        z = glacier.elevation
        height = z - climate["reference_elevation"]
        zeros = jnp.zeros_like(z)
        snow = zeros if snow is None else jnp.asarray(snow, jnp.float64) + zeros
        firn = zeros if firn is None else jnp.asarray(firn, jnp.float64) + zeros
        band_temperature = (climate["temperature"] + self.temperature_bias)[..., None] + self.lapse_rate * height
        # The refreezing potential of each year from the band's mean annual temperature.
        annual_mean = safe_ratio(
            jnp.sum(band_temperature * climate["days"][..., None], axis=1), jnp.sum(climate["days"], axis=1)[:, None]
        )
        potential = jnp.maximum(10.0 * (WOODWARD_SLOPE * annual_mean + WOODWARD_INTERCEPT), 0.0)  # [kg m-2]
        scale = jnp.maximum(1.0 + self.precipitation_gradient * height, 0.0)

        def step(carry, forcing):
            snow, firn, left, surface = carry
            temperature = forcing["temperature"]
            total = forcing["precipitation"] * self.precipitation_factor * scale
            solid = total * self.solid_share(temperature)
            rain = total - solid
            snow = snow + solid
            pot_snow, pot_firn, pot_ice, surface = self.potential_melt(
                temperature, forcing, surface | {"snow": snow, "firn": firn, "solid": solid}
            )
            snow_melt = jnp.minimum(snow, pot_snow)
            rest = 1.0 - safe_ratio(snow_melt, pot_snow)
            firn_melt = jnp.minimum(firn, rest * pot_firn)
            rest = rest - safe_ratio(firn_melt, pot_firn)
            ice_melt = jnp.maximum(rest, 0.0) * pot_ice
            snow, firn = snow - snow_melt, firn - firn_melt
            liquid = snow_melt + firn_melt + ice_melt + rain
            pack = snow + firn
            if self.refreezing == "none":
                refrozen = jnp.zeros_like(liquid)
            elif self.refreezing == "fraction":
                refrozen = jnp.minimum(self.refreezing_fraction * liquid, pack)
            else:
                refrozen = jnp.minimum(jnp.minimum(liquid, left), pack)
                left = left - refrozen
            snow = snow + refrozen
            melt = snow_melt + firn_melt + ice_melt
            fluxes = dict(
                accumulation=solid,
                rain=rain,
                snow_melt=snow_melt,
                firn_melt=firn_melt,
                ice_melt=ice_melt,
                melt=melt,
                refreezing=refrozen,
                runoff=liquid - refrozen,
                mass_balance=solid - melt + refrozen,
            )
            if series:
                fluxes.update(snow_series=snow, firn_series=firn)
            return (snow, firn, left, surface), fluxes

        def year(carry, inputs):
            forcing, potential = inputs
            snow, firn, surface = carry
            firn, snow = firn + snow, jnp.zeros_like(snow)  # last year's snow becomes firn
            (snow, firn, _, surface), fluxes = jax.lax.scan(step, (snow, firn, potential, surface), forcing)
            out = {name: value.sum(axis=0) for name, value in fluxes.items() if not name.endswith("_series")}
            out.update({name: value for name, value in fluxes.items() if name.endswith("_series")})
            return (snow, firn, surface), dict(out, snow=snow, firn=firn)

        forcing = {k: v for k, v in climate.items() if jnp.ndim(v) == 2}
        forcing["temperature"] = band_temperature
        _, out = jax.lax.scan(year, (zeros, firn + snow, self.initial_surface(z.shape)), (forcing, potential))
        out["specific_mass_balance"] = glacier.specific(out["mass_balance"])
        return out

    def simulate(self, glacier: Hypsometry, climate, series: bool = False):
        """Annual mass balance of a glacier (or a region) from an `xr.Dataset` of regular
        (hourly, daily) or monthly steps.

        **Arguments:** `glacier` a `Hypsometry`; `climate` with a `time` coordinate,
        `temperature` [degC] and `precipitation` [kg m-2 per step] (dims `time`, or
        (`time`, `glacier`)), the variables the melt model needs, and the reference
        elevation [m] as `attrs["reference_elevation"]` or a (`glacier`) variable. Each
        mass-balance year starts in `year_start_month` and is labelled by the calendar
        year it ends in; partial years at either end are kept and flagged.

        **Returns:** `xr.Dataset` over `year` (and `band`): the fluxes and stores of
        `run`, `specific_mass_balance`, `steps` and `complete` (whole year or not); with
        `series=True` also `snow_series` and `firn_series` (time, band) [kg m-2] after
        each step.

        The Woodward refreezing potential of a partial year comes from the mean
        temperature of the part the climate covers.
        """
        from ._smb_xarray import simulate_snowpack

        return simulate_snowpack(self, glacier, climate, series)


def _common(obj, **values):
    """Checks and sets the parameters shared by the snowpack models."""
    if values["phase"] not in ("linear", "smooth"):
        raise ValueError(f"phase must be 'linear' or 'smooth', got {values['phase']!r}")
    if values["refreezing"] not in ("none", "fraction", "woodward"):
        raise ValueError(f"refreezing must be 'none', 'fraction' or 'woodward', got {values['refreezing']!r}")
    month = values["year_start_month"]
    if int(month) != month or not 1 <= month <= 12:
        raise ValueError(f"year_start_month must be an integer month 1-12, got {month!r}")
    obj.precipitation_factor = _scalar(
        values["precipitation_factor"], "precipitation_factor", PRECIPITATION_FACTOR_BOUNDS
    )
    obj.temperature_bias = _scalar(values["temperature_bias"], "temperature_bias", TEMPERATURE_BIAS_BOUNDS)
    obj.solid_threshold = _scalar(values["solid_threshold"], "solid_threshold")
    obj.liquid_threshold = _scalar(values["liquid_threshold"], "liquid_threshold")
    if is_concrete(obj.solid_threshold, obj.liquid_threshold) and not obj.liquid_threshold > obj.solid_threshold:
        raise ValueError(
            f"liquid_threshold ({values['liquid_threshold']}) must be above "
            f"solid_threshold ({values['solid_threshold']})"
        )
    obj.lapse_rate = _scalar(values["lapse_rate"], "lapse_rate")
    obj.precipitation_gradient = _scalar(values["precipitation_gradient"], "precipitation_gradient", (-1e-3, 1e-3))
    obj.refreezing_fraction = _scalar(values["refreezing_fraction"], "refreezing_fraction", (0.0, 1.0))
    obj.phase = values["phase"]
    obj.refreezing = values["refreezing"]
    obj.year_start_month = int(month)


class DailyTemperatureIndex(AbstractSnowpackMassBalance):
    """Temperature-index mass balance with separate degree-day factors for snow, firn and
    ice and a snowpack carried between steps (daily steps, or monthly with `melt="expected"`).

    **Arguments:**

    - `snow_factor`, `firn_factor`, `ice_factor`: degree-day factors [kg m-2 day-1 K-1],
      defaults 4.1, 4.98 and 5.86 (PyGEM's defaults: ice = snow / 0.7, firn their mean);
      bounds 0.5-20.
    - `precipitation_factor` [1] (default 1, bounds 0.1-10), `temperature_bias` [K]
      (default 0, bounds +/-15), `lapse_rate` [K m-1] (default -0.0065).
    - `precipitation_gradient`: relative increase of precipitation per metre above the
      reference [m-1], default 0 (bounds +/-1e-3).
    - `melt_threshold` [degC], default 0; `solid_threshold`, `liquid_threshold` [degC],
      defaults 0 and 2; `phase`: `"linear"` ramp between them or `"smooth"` (logistic).
    - `melt`: the positive degree-days of a step, `"linear"` max(T - T_m, 0);
      `"softplus"` s log(1 + exp((T - T_m)/s)) with s = `melt_smoothing` [K] (default 0.5);
      or `"expected"`, E[max(T - T_m, 0)] for T normal with standard deviation
      `temperature_std` [K] (default 3; Calov & Greve 2005), for monthly steps.
    - `refreezing`: `"none"`, `"fraction"` (`refreezing_fraction` [1] of melt and rain,
      default 0) or `"woodward"` (default).
    - `year_start_month`: default 10 (October-September years, labelled by their end);
      snow turns into firn at the start of each year.
    """

    snow_factor: Float[Array, ""]
    firn_factor: Float[Array, ""]
    ice_factor: Float[Array, ""]
    precipitation_factor: Float[Array, ""]
    temperature_bias: Float[Array, ""]
    melt_threshold: Float[Array, ""]
    solid_threshold: Float[Array, ""]
    liquid_threshold: Float[Array, ""]
    lapse_rate: Float[Array, ""]
    precipitation_gradient: Float[Array, ""]
    refreezing_fraction: Float[Array, ""]
    melt_smoothing: Float[Array, ""]
    temperature_std: Float[Array, ""]
    phase: Phase = eqx.field(static=True)
    melt: MeltCurve = eqx.field(static=True)
    refreezing: Refreezing = eqx.field(static=True)
    year_start_month: int = eqx.field(static=True)

    def __init__(
        self,
        snow_factor=4.1,
        firn_factor=4.98,
        ice_factor=5.86,
        precipitation_factor=1.0,
        temperature_bias=0.0,
        melt_threshold=0.0,
        solid_threshold=0.0,
        liquid_threshold=2.0,
        lapse_rate=-0.0065,
        precipitation_gradient=0.0,
        phase: Phase = "linear",
        melt: MeltCurve = "linear",
        melt_smoothing=0.5,
        temperature_std=3.0,
        refreezing: Refreezing = "woodward",
        refreezing_fraction=0.0,
        year_start_month: int = 10,
    ):
        if melt not in ("linear", "softplus", "expected"):
            raise ValueError(f"melt must be 'linear', 'softplus' or 'expected', got {melt!r}")
        for name, value in (("snow_factor", snow_factor), ("firn_factor", firn_factor), ("ice_factor", ice_factor)):
            setattr(self, name, _scalar(value, name, DEGREE_DAY_FACTOR_BOUNDS))
        self.melt_threshold = _scalar(melt_threshold, "melt_threshold")
        self.melt_smoothing = _scalar(melt_smoothing, "melt_smoothing", (1e-3, 10.0))
        self.temperature_std = _scalar(temperature_std, "temperature_std", (1e-3, 20.0))
        self.melt = melt
        _common(
            self,
            precipitation_factor=precipitation_factor,
            temperature_bias=temperature_bias,
            solid_threshold=solid_threshold,
            liquid_threshold=liquid_threshold,
            lapse_rate=lapse_rate,
            precipitation_gradient=precipitation_gradient,
            refreezing_fraction=refreezing_fraction,
            phase=phase,
            refreezing=refreezing,
            year_start_month=year_start_month,
        )

    def degree_days(self, temperature):
        """Positive degree-days per day of step [K] at `temperature` [degC]."""
        excess = temperature - self.melt_threshold
        if self.melt == "linear":
            return jnp.maximum(excess, 0.0)
        if self.melt == "softplus":
            return self.melt_smoothing * jax.nn.softplus(excess / self.melt_smoothing)
        sigma = self.temperature_std
        x = excess / sigma
        return sigma * jnp.exp(-0.5 * x**2) / math.sqrt(2 * math.pi) + excess * 0.5 * jsp.erfc(-x / math.sqrt(2))

    def potential_melt(self, temperature, step, surface):
        pdd = self.degree_days(temperature) * step["days"][..., None]
        return self.snow_factor * pdd, self.firn_factor * pdd, self.ice_factor * pdd, {}


class EnhancedTemperatureIndex(AbstractSnowpackMassBalance):
    """Enhanced temperature-index melt (Pellicciotti et al. 2005) with a snowpack.

    melt = (TF T + SRF (1 - albedo) G) x hours where T > T_T, else 0 [kg m-2]; G is the
    incoming shortwave radiation [W m-2] (climate variable `shortwave_radiation`).

    **Arguments:**

    - `temperature_factor` TF [kg m-2 h-1 K-1], default 0.05; `radiation_factor` SRF
      [kg m-2 h-1 (W m-2)-1], default 0.0094; `melt_threshold` T_T [degC], default 1
      (Pellicciotti et al. 2005, Haut Glacier d'Arolla).
    - Albedo (Oerlemans & Knap 1998): snow albedo decays with the snow's age a [day],
      a_snow = `firn_albedo` + (`fresh_snow_albedo` - `firn_albedo`) exp(-a / `albedo_decay_days`),
      and thin snow shows the surface below (firn, or ice of albedo `ice_albedo`),
      albedo = a_snow + (a_below - a_snow) exp(-S / `albedo_depth_scale`) with S the snow
      [kg m-2]. Albedos [1], defaults 0.75 (fresh snow), 0.53 (firn) and 0.34 (ice);
      `albedo_decay_days` [day], default 21.9; `albedo_depth_scale` [kg m-2], default 10
      (their 3.2 cm of snow at about 300 kg m-3). Snowfall resets the age smoothly:
      a -> (a + dt) exp(-solid / 5 kg m-2).
    - `melt_smoothing` [K]: 0 (default) for the sharp threshold, or the width s of a
      logistic gate 1 / (1 + exp(-(T - T_T) / s)), which makes melt smooth in T.
    - The precipitation, phase, refreezing and year arguments of `DailyTemperatureIndex`.
    """

    temperature_factor: Float[Array, ""]
    radiation_factor: Float[Array, ""]
    melt_threshold: Float[Array, ""]
    fresh_snow_albedo: Float[Array, ""]
    firn_albedo: Float[Array, ""]
    ice_albedo: Float[Array, ""]
    albedo_decay_days: Float[Array, ""]
    albedo_depth_scale: Float[Array, ""]
    melt_smoothing: Float[Array, ""]
    precipitation_factor: Float[Array, ""]
    temperature_bias: Float[Array, ""]
    solid_threshold: Float[Array, ""]
    liquid_threshold: Float[Array, ""]
    lapse_rate: Float[Array, ""]
    precipitation_gradient: Float[Array, ""]
    refreezing_fraction: Float[Array, ""]
    phase: Phase = eqx.field(static=True)
    refreezing: Refreezing = eqx.field(static=True)
    year_start_month: int = eqx.field(static=True)
    sharp_threshold: bool = eqx.field(static=True)

    def __init__(
        self,
        temperature_factor=0.05,
        radiation_factor=0.0094,
        melt_threshold=1.0,
        fresh_snow_albedo=0.75,
        firn_albedo=0.53,
        ice_albedo=0.34,
        albedo_decay_days=21.9,
        albedo_depth_scale=10.0,
        melt_smoothing=0.0,
        precipitation_factor=1.0,
        temperature_bias=0.0,
        solid_threshold=0.0,
        liquid_threshold=2.0,
        lapse_rate=-0.0065,
        precipitation_gradient=0.0,
        phase: Phase = "linear",
        refreezing: Refreezing = "woodward",
        refreezing_fraction=0.0,
        year_start_month: int = 10,
    ):
        self.temperature_factor = _scalar(temperature_factor, "temperature_factor", (0.0, 1.0))
        self.radiation_factor = _scalar(radiation_factor, "radiation_factor", (0.0, 0.1))
        self.melt_threshold = _scalar(melt_threshold, "melt_threshold")
        for name, value in (
            ("fresh_snow_albedo", fresh_snow_albedo),
            ("firn_albedo", firn_albedo),
            ("ice_albedo", ice_albedo),
        ):
            setattr(self, name, _scalar(value, name, (0.0, 1.0)))
        self.albedo_decay_days = _scalar(albedo_decay_days, "albedo_decay_days", (1e-3, 1e3))
        self.albedo_depth_scale = _scalar(albedo_depth_scale, "albedo_depth_scale", (1e-3, 1e3))
        self.melt_smoothing = _scalar(melt_smoothing, "melt_smoothing", (0.0, 10.0))
        # A smoothing given as a traced value is always a logistic gate.
        self.sharp_threshold = is_concrete(melt_smoothing) and float(melt_smoothing) == 0.0
        _common(
            self,
            precipitation_factor=precipitation_factor,
            temperature_bias=temperature_bias,
            solid_threshold=solid_threshold,
            liquid_threshold=liquid_threshold,
            lapse_rate=lapse_rate,
            precipitation_gradient=precipitation_gradient,
            refreezing_fraction=refreezing_fraction,
            phase=phase,
            refreezing=refreezing,
            year_start_month=year_start_month,
        )

    def initial_surface(self, shape):
        """Surface state carried between steps: snow `age` [day], zero at the start."""
        return {"age": jnp.zeros(shape)}

    @property
    def forcing_variables(self) -> tuple[str, ...]:
        """Climate variables `simulate` needs: also `shortwave_radiation` [W m-2]."""
        return ("temperature", "precipitation", "shortwave_radiation")

    def albedo(self, age, snow, below):
        """Surface albedo [1] for snow age [day], snow [kg m-2] over a surface of albedo `below`."""
        snow_albedo = self.firn_albedo + (self.fresh_snow_albedo - self.firn_albedo) * jnp.exp(
            -age / self.albedo_decay_days
        )
        return snow_albedo + (below - snow_albedo) * jnp.exp(-snow / self.albedo_depth_scale)

    def potential_melt(self, temperature, step, surface):
        days = step["days"][..., None]
        hours = 24.0 * days
        radiation = step["shortwave_radiation"][..., None]
        excess = temperature - self.melt_threshold
        if self.sharp_threshold:
            gate = (excess > 0).astype(temperature.dtype)
        else:
            gate = jax.nn.sigmoid(excess / self.melt_smoothing)

        def rate(albedo):
            energy = self.temperature_factor * temperature + self.radiation_factor * (1 - albedo) * radiation
            return gate * jnp.maximum(energy, 0.0) * hours

        # Age grows with time; the snow that fell in this step resets it (smoothly).
        age = (surface["age"] + days) * jnp.exp(-surface["solid"] / 5.0)
        below = self.firn_albedo + (self.ice_albedo - self.firn_albedo) * jnp.exp(
            -surface["firn"] / self.albedo_depth_scale
        )
        pot_snow = rate(self.albedo(age, surface["snow"], below))
        return pot_snow, rate(self.firn_albedo), rate(self.ice_albedo), {"age": age}
