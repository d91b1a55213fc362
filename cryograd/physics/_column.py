"""The permafrost soil column: parameters, the pure-JAX core `run`, and `simulate`."""

from collections.abc import Sequence

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import _constants as const
from ._freeze_curves import AbstractFreezeCurve, FreeWater, Tabulated
from ._grid import Grid
from ._heat import CONDUCTIVITIES, TIME_SCHEMES, HeatProblem, HeatState, ImplicitEnthalpy, explicit_tendency
from ._native import TABULATED, daily_summary, native_run, native_summary, unsupported
from ._soil import CellMaterial, SoilLayer, cell_material, layer_index
from ._surface import AbstractSurface, Prescribed
from ._validation import as_float_array, is_concrete

SOLVERS = ("auto", "jax", "native")


def _refuse_unconverged(value, missed):
    """`value`, raising (`eqx.error_if`) where the native kernel counted a step that
    missed its tolerance."""
    return eqx.error_if(value, missed, "solver='native': a step's Newton iteration did not reach its tolerance")


class PermafrostColumn(eqx.Module):
    """A 1-D soil column with freeze/thaw, solved by an implicit enthalpy scheme.

    **Arguments:**

    - `grid`: the `Grid` of cell edges [m].
    - `layers`: `SoilLayer`s sorted by `top`; the first starts at or above the grid's
      top edge, each holds the cells whose centres lie between its top and the next one's.
    - `freeze_curve`: `FreeWater()` (default), `DallAmico`, `PowerLaw`, `PiecewiseLinear`.
      Curve parameters may be scalars or sequences with one value per layer.
    - `surface`: upper boundary, `Prescribed()` (ground-surface temperature, default),
      `PrescribedFlux()`, `NFactor(...)` (air temperature) or `Snow(...)` (air
      temperature over a snowpack resolved as extra cells).
    - `geothermal_flux`: upward heat flux into the bottom of the column [W m-2]
      (default 0.053).
    - `bottom_temperature`: if given, a fixed temperature at the bottom edge [degC]
      instead of the geothermal flux.
    - `time_scheme`: `"bdf2"` (default; second order, L-stable; see docs/verification.md)
      or `"euler"` (backward Euler, first order, as GIPL2 and CryoGridLite).
    - `conductivity`: `"predicted"` (default; each step solved twice, the second time with
      the conductivities of the first solution: far more accurate at a moving front, about
      twice the Newton work) or `"lagged"` (conductivities of the start of each step).
      The defaults are the accurate pair; `time_scheme="euler", conductivity="lagged"` is
      the cheap first-order one.
    - `solver`: `"auto"` (default): `"native"` where it can run this column (see
      `unsupported`; and `run` without `progress_meter=` or an `adjoint=` other than
      `diffrax.ForwardMode()`), else `"jax"`.
      `"jax"`: Newton in JAX under `diffrax.diffeqsolve`, everything supported, on any
      backend; the reference. `"native"`: the same discrete problem, Newton to the same
      tolerance, in the C++ kernel built at install (`cryograd/_native/heat.cc`), on the
      CPU, for soil on the sharp `FreeWater()` curve, or on `PowerLaw` and `DallAmico`
      through a 96-node table of the curve (`Tabulated`, within 1e-4 K of it; measured
      2.3e-5 K), with or without `Snow`. Forward-mode derivatives replay its steps in JAX
      with the solutions known; reverse mode is the kernel's own adjoint for soil-only
      columns on `FreeWater()` and the replay's transpose otherwise, both in checkpointed
      segments of about a year (memory does not grow with the run length). Which one an
      `"auto"` column runs: `uses_native`.

    Every floating-point leaf (soil parameters, curve parameters, fluxes) can be
    differentiated with `jax.grad`/`eqx.filter_grad` through `run`.
    """

    grid: Grid
    layers: tuple[SoilLayer, ...]
    freeze_curve: AbstractFreezeCurve
    surface: AbstractSurface
    geothermal_flux: Float[Array, ""]
    bottom_temperature: Float[Array, ""] | None
    layer_of_cell: np.ndarray = eqx.field(static=True, converter=lambda x: tuple(int(i) for i in x))
    time_scheme: str = eqx.field(static=True)
    conductivity: str = eqx.field(static=True)
    solver: str = eqx.field(static=True)

    def __init__(
        self,
        grid: Grid,
        layers: Sequence[SoilLayer],
        freeze_curve: AbstractFreezeCurve = FreeWater(),
        surface: AbstractSurface = Prescribed(),
        geothermal_flux=const.DEFAULT_GEOTHERMAL_FLUX,
        bottom_temperature=None,
        *,
        time_scheme: str = "bdf2",
        conductivity: str = "predicted",
        solver: str = "auto",
    ):
        if not isinstance(grid, Grid):
            raise ValueError(f"grid must be a cryograd.physics.Grid, got {type(grid).__name__}")
        if isinstance(layers, SoilLayer):
            layers = [layers]
        layers = tuple(layers)
        if not layers or not all(isinstance(layer, SoilLayer) for layer in layers):
            raise ValueError("layers must be a non-empty sequence of SoilLayer")
        if not isinstance(freeze_curve, AbstractFreezeCurve):
            raise ValueError(f"freeze_curve must be a freeze curve, got {type(freeze_curve).__name__}")
        if not isinstance(surface, AbstractSurface):
            raise ValueError(f"surface must be a surface model, got {type(surface).__name__}")
        edges = np.asarray(grid.edges)
        tops = np.array([float(layer.top) for layer in layers])
        if np.any(np.diff(tops) <= 0):
            raise ValueError(f"layers must be sorted by strictly increasing top; got tops {tops.tolist()} m")
        if tops[0] > edges[0]:
            raise ValueError(f"layers: the first layer starts at {tops[0]} m, below the grid's top edge {edges[0]} m")
        if tops[-1] >= edges[-1]:
            raise ValueError(f"layers: a layer starts at {tops[-1]} m, at or below the grid's bottom {edges[-1]} m")
        index = layer_index(list(layers), np.asarray(grid.centres))
        empty = sorted(set(range(len(layers))) - set(index.tolist()))
        if empty:
            raise ValueError(f"layers: layer(s) {empty} contain no cell centre; refine the grid or merge them")
        for leaf in jax.tree_util.tree_leaves(freeze_curve):
            if np.ndim(leaf) > 1 or (np.ndim(leaf) == 1 and np.shape(leaf)[0] != len(layers)):
                raise ValueError(
                    f"freeze_curve: parameters must be scalars or have one value per layer ({len(layers)}), "
                    f"got shape {np.shape(leaf)}"
                )
        if time_scheme not in TIME_SCHEMES:
            raise ValueError(f"time_scheme must be one of {TIME_SCHEMES}, got {time_scheme!r}")
        if conductivity not in CONDUCTIVITIES:
            raise ValueError(f"conductivity must be one of {CONDUCTIVITIES}, got {conductivity!r}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        if is_concrete(geothermal_flux):
            as_float_array(geothermal_flux, "geothermal_flux")
        if bottom_temperature is not None and is_concrete(bottom_temperature):
            as_float_array(bottom_temperature, "bottom_temperature")
        self.grid = grid
        self.layers = layers
        self.freeze_curve = freeze_curve
        self.surface = surface
        self.geothermal_flux = jnp.asarray(geothermal_flux, dtype=jnp.float64)
        self.bottom_temperature = None if bottom_temperature is None else jnp.asarray(bottom_temperature, jnp.float64)
        self.layer_of_cell = index
        self.time_scheme = time_scheme
        self.conductivity = conductivity
        self.solver = solver
        if solver == "native":
            reason = unsupported(surface, freeze_curve)
            if reason is not None:
                raise ValueError(f"solver='native': {reason}")

    def replace(self, **changes) -> "PermafrostColumn":
        """This column with some of its constructor arguments changed (`solver`,
        `time_scheme`, `conductivity`, `geothermal_flux`, `surface`, ...), built again
        through the constructor so the new combination is checked."""
        arguments = dict(
            grid=self.grid,
            layers=self.layers,
            freeze_curve=self.freeze_curve,
            surface=self.surface,
            geothermal_flux=self.geothermal_flux,
            bottom_temperature=self.bottom_temperature,
            time_scheme=self.time_scheme,
            conductivity=self.conductivity,
            solver=self.solver,
        )
        unknown = sorted(set(changes) - set(arguments))
        if unknown:
            raise ValueError(f"replace: {unknown} are not PermafrostColumn arguments; use {sorted(arguments)}")
        return PermafrostColumn(**(arguments | changes))

    # --- per-cell views ------------------------------------------------------------------

    @property
    def material(self) -> CellMaterial:
        """Per-cell thermal properties (conductivities, heat capacities, water content) of the soil."""
        return cell_material(list(self.layers), np.asarray(self.layer_of_cell))

    @property
    def cell_freeze_curve(self) -> AbstractFreezeCurve:
        """The freeze curve with per-layer parameters expanded to one value per cell."""
        index = np.asarray(self.layer_of_cell)
        return jax.tree_util.tree_map(lambda p: p[index] if jnp.ndim(p) == 1 else p, self.freeze_curve)

    def enthalpy(self, temperature) -> Float[Array, " nz"]:
        """Cell enthalpies [J m-3] at cell temperatures [degC]."""
        return self.cell_freeze_curve.enthalpy(jnp.asarray(temperature, jnp.float64), self.material)

    def thermal_state(self, enthalpy):
        """(temperature [degC], liquid fraction [1], dT/dH) of cell enthalpies [J m-3]."""
        return self.cell_freeze_curve.state(enthalpy, self.material)

    @property
    def uses_native(self) -> bool:
        """Whether `run` (without `progress_meter=` or an `adjoint=` other than
        `diffrax.ForwardMode()`) and `summarize` use the native kernel: `solver="native"`,
        or `"auto"` where `unsupported` finds nothing against it (CPU backend, kernel
        built, a curve it supports)."""
        if self.solver == "auto":
            return unsupported(self.surface, self.freeze_curve) is None
        return self.solver == "native"

    def problem(self, forcing: dict, dt: float, *, native: bool | None = None) -> HeatProblem:
        """The discretised heat problem (cells, materials, boundary series) for `forcing` (dict of
        arrays) and time step `dt` [s]; the input of the implicit solver. `native`: whether it
        is for the native kernel, which takes smooth curves as a table (default `uses_native`)."""
        bottom = self.bottom_temperature  # tree_at/optimisers may have put plain floats here
        curve = self.cell_freeze_curve
        native = self.uses_native if native is None else native
        if native and isinstance(curve, TABULATED):  # the native solver's form of smooth curves
            curve = Tabulated.build(curve, self.material, self.layer_of_cell)
        return HeatProblem(
            thickness=self.grid.thickness,
            material=self.material,
            freeze_curve=curve,
            surface=self.surface,
            geothermal_flux=jnp.asarray(self.geothermal_flux, jnp.float64),
            bottom_temperature=None if bottom is None else jnp.asarray(bottom, jnp.float64),
            forcing={name: jnp.asarray(forcing[name], jnp.float64) for name in self.surface.forcing_variables},
            forcing_dt=float(dt),
            time_scheme=self.time_scheme,
            conductivity=self.conductivity,
        )

    # --- the pure-JAX core -----------------------------------------------------------------

    def run(
        self,
        forcing: dict,
        initial_temperature: Float[Array, " nz"],
        dt: float,
        *,
        save_every: int = 1,
        adjoint: diffrax.AbstractAdjoint | None = None,
        progress_meter: diffrax.AbstractProgressMeter | None = None,
        throw: bool = True,
    ) -> dict:
        """Integrate the column through the forcing with implicit daily (or any) steps.

        **Arguments:**

        - `forcing`: dict of arrays of shape (nt,) named like the surface's forcing
          variables (`surface_temperature` [degC] for `Prescribed()`), each value held
          over one step.
        - `initial_temperature`: cell temperatures [degC] at the start, shape (nz,).
        - `dt`: step length [s] (86400 for daily forcing).
        - `save_every`: keep every n-th step (1 keeps all).
        - `adjoint`: diffrax adjoint for reverse mode; default recursive checkpointing
          with at most 1024 stored states, so memory is bounded for long runs (solver
          "jax" only; an adjoint other than `diffrax.ForwardMode()`, which the native
          solver does without, makes an `"auto"` column run the JAX solver).
        - `progress_meter`: a diffrax progress meter, e.g. `diffrax.TqdmProgressMeter()`
          (solver "jax" only; given, an `"auto"` column runs the JAX solver).
        - `throw`: raise if a step fails to converge (else the result code is returned).

        **Returns:** dict with `temperature` and `liquid_water_fraction` (nsave, nz)
        [degC, 1], `enthalpy` (nsave, nz) [J m-3], `surface_temperature` (nsave,)
        [degC] (the temperature at the top of the column during the step: the boundary
        value for temperature-prescribed surfaces, which is the snow surface when there is
        snow; the top cell's temperature for flux surfaces), `surface_heat_input` and
        `bottom_heat_input` (nsave,) [J m-2] cumulative since the start (with BDF2 the
        step's boundary flux times 2/3 dt plus a third of the previous step's input),
        `result` (diffrax result code), and Newton's statistics over the steps up to the
        last saved one: `unconverged_steps` (steps that missed the tolerance; they raise
        unless `throw=False`), `mean_iterations` and `max_iterations` per step. Row j is
        the state at the end of step (j + 1) * save_every - 1. With a `Snow` surface also `snow_temperature` and
        `snow_liquid_fraction` (nsave, n_cells) [degC, 1] (NaN where there is no snow),
        `snow_enthalpy` (nsave, n_cells) [J m-3], `snow_thickness` (nsave, n_cells) [m],
        `snow_depth` (nsave,) [m] (0 below the thin-snow threshold) and `snow_heat_input`
        (nsave,) [J m-2], the heat that came and went with snow mass, cumulative. Energy
        balance: the change of sum(thickness x enthalpy) over snow and soil cells equals
        surface + bottom + snow heat input.
        """
        forward_mode = adjoint is None or isinstance(adjoint, diffrax.ForwardMode)  # the native solver has both modes
        native = self.uses_native and (self.solver == "native" or (forward_mode and progress_meter is None))
        problem = self.problem(forcing, dt, native=native)
        nt = jax.tree_util.tree_leaves(problem.forcing)[0].shape[0]
        y0 = HeatState.initial(self._start(problem, initial_temperature))

        if native:
            enthalpy, energy, statistics = native_run(problem, y0.enthalpy, save_every)
            missed = statistics[-1, 0] > 0 if statistics.shape[0] else jnp.zeros((), bool)
            failed, successful = diffrax.RESULTS.nonlinear_max_steps_reached, diffrax.RESULTS.successful
            result = diffrax.RESULTS.where(missed, failed, successful)
            enthalpy = _refuse_unconverged(enthalpy, missed) if throw else enthalpy
        else:
            enthalpy, energy, statistics, result = self._diffrax_run(
                problem, y0, nt, dt, save_every, adjoint, progress_meter, throw
            )
        ns = problem.n_snow
        temperature, fraction, _ = jax.vmap(lambda h: problem.freeze_curve.state(h, problem.material))(enthalpy[:, ns:])
        saved = jnp.arange(save_every, nt + 1, save_every) - 1  # the step each row ends
        if problem.surface.fixed_temperature:
            surface = jax.vmap(lambda i: problem.surface.boundary_value(problem.step_forcing(i)))(saved)
        else:
            surface = temperature[:, 0]
        out = dict(
            temperature=temperature,
            liquid_water_fraction=fraction,
            enthalpy=enthalpy[:, ns:],
            surface_temperature=jnp.broadcast_to(surface, saved.shape),
            surface_heat_input=energy[:, 0],
            bottom_heat_input=energy[:, 1],
            result=result,
            unconverged_steps=statistics[-1, 0],
            mean_iterations=statistics[-1, 1] / ((saved[-1] + 1) if saved.size else 1),
            max_iterations=statistics[-1, 2],
        )
        if ns:
            packs = jax.vmap(problem.snowpack)(saved)
            snow_temperature, snow_fraction, _ = jax.vmap(lambda h, p: FreeWater().state(h, p.material))(
                enthalpy[:, :ns], packs
            )
            out.update(
                snow_temperature=jnp.where(packs.present[:, None], snow_temperature, jnp.nan),
                snow_liquid_fraction=jnp.where(packs.present[:, None], snow_fraction, jnp.nan),
                snow_enthalpy=enthalpy[:, :ns],
                snow_thickness=packs.thickness,
                snow_depth=jnp.sum(packs.thickness, axis=1),
                snow_heat_input=energy[:, 2],
            )
        return out

    def summarize(
        self,
        forcing: dict,
        initial_temperature: Float[Array, " nz"],
        dt: float,
        period,
        periods: int,
        *,
        throw: bool = True,
    ) -> dict:
        """Run the column and keep only statistics per period (a year, a month) of each
        step's state, not the fields of every step: what a regional map needs.

        **Arguments:** `forcing`, `initial_temperature` and `dt` as `run`; `period` (nt,)
        integers: the period of each step (steps outside 0..periods-1 are left out);
        `periods`: their number (static); `throw`: raise if a step fails to converge.

        **Returns:** dict with, per period, `mean_temperature`, `max_temperature` and
        `min_temperature` (periods, nz) [degC] of every cell, `max_thaw_depth` (periods,)
        [m] (the largest `thaw_depth` of its steps), `steps` (periods,) (NaN means and
        infinite extremes where a period has none), and over all steps
        `unconverged_steps`, `mean_iterations` and `max_iterations` as `run`.

        With the native solver (`uses_native`) the statistics are taken in the kernel as it
        steps, and no field of every step is stored; derivatives (both modes) are those of
        the same statistics of `run`'s fields. With the JAX solver they are those statistics.
        """
        period = jnp.asarray(period)
        periods = int(periods)
        problem = self.problem(forcing, dt)
        nt = jax.tree_util.tree_leaves(problem.forcing)[0].shape[0]
        if nt < 1:
            raise ValueError("forcing: summarize needs at least one step")
        if period.shape != (nt,) or not jnp.issubdtype(period.dtype, jnp.integer):
            raise ValueError(f"period: one integer per step, shape ({nt},), got {period.dtype} {period.shape}")
        if periods < 1:
            raise ValueError(f"periods: must be >= 1, got {periods}")
        if not self.uses_native:
            out = self.run(forcing, initial_temperature, dt, throw=throw)
            summary = daily_summary(out["temperature"], out["liquid_water_fraction"], self.grid.edges, period, periods)
            statistics = {k: out[k] for k in ("unconverged_steps", "mean_iterations", "max_iterations")}
            return summary | statistics
        summary, statistics = native_summary(
            problem, self._start(problem, initial_temperature), period, self.grid.edges, periods
        )
        summary = _refuse_unconverged(summary, statistics[0] > 0) if throw else summary
        return summary | dict(
            unconverged_steps=statistics[0], mean_iterations=statistics[1] / max(nt, 1), max_iterations=statistics[2]
        )

    def _start(self, problem: HeatProblem, initial_temperature):
        """The start enthalpies [J m-3] of the snow (fresh snow of the first step's pack)
        and soil cells (from `initial_temperature` [degC], a number or one per cell)."""
        initial_temperature = jnp.broadcast_to(jnp.asarray(initial_temperature, jnp.float64), (self.grid.n_cells,))
        return jnp.concatenate([problem.initial_snow(), self.enthalpy(initial_temperature)])

    def _diffrax_run(self, problem, y0, nt, dt, save_every, adjoint, progress_meter, throw):
        """The JAX solver under `diffeqsolve`: (enthalpy, energy, statistics, result)."""

        def keep(t, y, args):
            return y.enthalpy, y.energy, y.statistics

        if save_every == 1:
            saveat = diffrax.SaveAt(steps=True, fn=keep)
        else:
            ts = dt * jnp.arange(save_every, nt + 1, save_every, dtype=jnp.float64)
            saveat = diffrax.SaveAt(ts=ts, fn=keep)
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(explicit_tendency),
            ImplicitEnthalpy(),
            t0=0.0,
            t1=nt * dt,
            dt0=dt,
            y0=y0,
            args=problem,
            saveat=saveat,
            stepsize_controller=diffrax.ConstantStepSize(),
            max_steps=nt,
            adjoint=adjoint if adjoint is not None else diffrax.RecursiveCheckpointAdjoint(checkpoints=min(nt, 1024)),
            progress_meter=progress_meter if progress_meter is not None else diffrax.NoProgressMeter(),
            throw=throw,
        )
        return (*solution.ys, solution.result)

    def simulate(self, forcing, initial_temperature=-1.0, dt: float = 86400.0, *, magt_depths=None, below=None):
        """Run the column on an `xr.Dataset` forcing and return a CF-annotated `xr.Dataset`.

        **Arguments:**

        - `forcing`: `time` coordinate (datetimes spaced by `dt`) and the surface's forcing
          variables (`surface_temperature` [degC, or K with `units: K`]); an extra `site`
          dimension runs all sites in one jitted, vmapped call.
        - `initial_temperature`: a float [degC] or a DataArray over `depth` [m],
          interpolated to cell centres (its shallowest value held above its depths).
        - `below`: what a profile gives below its deepest depth: `"hold"` (its deepest
          value), `"geotherm"` (steady conduction of the geothermal flux through the
          cells' conductivities, frozen or thawed as the deepest value) or `(depth [m],
          temperature [degC])` (linear to that temperature at that depth, held below).
          Default: hold, with a warning when the profile stops above the deepest cell.
        - `dt`: step [s]; the forcing's spacing must equal it.
        - `magt_depths`: depths [m] for the mean annual ground temperature
          (default 0, 1, 2, 5, 10).

        **Returns:** `temperature` (time, depth) [degC], `liquid_water_fraction` [1],
        `surface_temperature` (time) [degC] (the snow surface where there is snow),
        `thaw_depth` (time) [m], and per `year`: `active_layer_thickness` [m],
        `mean_annual_ground_temperature` (year, magt_depth) [degC],
        `zero_annual_amplitude_depth` [m] and `talik` [bool].
        """
        from ._xarray import DEFAULT_MAGT_DEPTHS, simulate

        return simulate(self, forcing, initial_temperature, dt, magt_depths or DEFAULT_MAGT_DEPTHS, below)
