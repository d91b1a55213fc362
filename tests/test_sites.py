"""Forward runs at real sites (experiments/), checked against the measurements."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np

import cryograd as cg
from tests._experiments import load_experiment


def test_arctic_village_forced_by_measured_surface_beats_persistence():
    site = load_experiment("arctic_village")
    table, _, observed = site.run()
    assert list(table.index) == site.DEPTHS and (table["n"] >= 60).all()
    # Persistence: the first day's measured profile held for the whole run. Conduction
    # from the measured surface must beat it at every depth, and stay within 1.5 K.
    persistence = np.abs(observed - observed.isel(time=0)).mean("time")
    for depth in site.DEPTHS:
        assert table.loc[depth, "mae"] < float(persistence.sel(depth=depth)), depth
    assert (table["mae"] < 1.5).all(), table
    print(table.assign(persistence_mae=persistence.values).round(3).to_string())


def test_gipl_station_with_its_own_parameters_within_1_2_k():
    site = load_experiment("gipl_station")
    table, _, measured, _ = site.run()
    assert len(table) == 12 and (table["n"] == measured.sizes["time"]).all()
    print(table.round(3).to_string())
    print(f"mean MAE {table.mae.mean():.3f} K (GIPL2 on the same inputs: 0.98 K)")
    assert table.mae.mean() <= 1.2
    # The snow matters: the same column with the air temperature on bare ground is worse.
    bare, *_ = site.run(snow=cg.physics.NFactor())
    assert bare.mae.mean() > table.mae.mean() + 0.1, bare.mae.mean()


def test_site_loss_gradients_match_central_differences():
    """A year at the GIPL station: gradients of the squared misfit to the measured
    temperatures with respect to n-factors (air temperature on bare ground), snow density
    (Sturm conductivity, heat capacity, latent heat) and soil parameters agree with
    float64 central differences to 1e-4 relative."""
    site = load_experiment("gipl_station")
    station = cg.data.open_gipl_station(site.DEFAULT, start=site.START).isel(time=slice(0, 365))
    measured = jnp.asarray(station.ground_temperature.values)
    initial = site.initial_profile(station)
    columns = {
        "n-factors": site.column(station, cg.physics.NFactor(freezing=0.6, thawing=0.9)),
        "snow": site.column(station, cg.physics.Snow(density=280.0)),
    }
    cells = None

    def loss(column, forcing, initial_cells):
        out = column.run(forcing, initial_cells, 86400.0)
        return jnp.mean((out["temperature"][:, cells] - measured) ** 2)

    checks = {}
    for name, column in columns.items():
        centres = np.asarray(column.grid.centres)
        cells = jnp.asarray(np.abs(centres[:, None] - station.depth.values[None, :]).argmin(axis=0))
        forcing = {v: jnp.asarray(station[v].values) for v in column.surface.forcing_variables}
        initial_cells = jnp.asarray(np.interp(centres, initial.depth.values, initial.values))
        value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(loss))
        _, grads = value_and_grad(column, forcing, initial_cells)
        jitted = eqx.filter_jit(loss)
        selectors = {
            "layers[0].k_frozen": lambda c: c.layers[0].k_frozen,
            "layers[1].c_thawed": lambda c: c.layers[1].c_thawed,
            "layers[2].water_content": lambda c: c.layers[2].water_content,
            "freeze_curve.a": lambda c: c.freeze_curve.a,
        }
        if name == "snow":
            selectors["snow density"] = lambda c: c.surface.density
        else:
            selectors["n_f"] = lambda c: c.surface.freezing
            selectors["n_t"] = lambda c: c.surface.thawing
        for label, where in selectors.items():
            base = np.asarray(where(column), dtype=float)
            direction = np.zeros_like(base)
            direction.flat[0] = 1.0
            eps = 1e-5 * abs(base.flat[0])
            shifted = [eqx.tree_at(where, column, jnp.asarray(base + s * eps * direction)) for s in (1, -1)]
            fd = (jitted(shifted[0], forcing, initial_cells) - jitted(shifted[1], forcing, initial_cells)) / (2 * eps)
            adjoint = float(np.asarray(where(grads)).flat[0])
            checks[f"{name}: {label}"] = (adjoint, float(fd))
    for label, (adjoint, finite) in checks.items():
        print(f"{label:32s} grad {adjoint: .8e}  FD {finite: .8e}  rel {abs(adjoint - finite) / abs(finite):.1e}")
    for label, (adjoint, finite) in checks.items():
        assert abs(adjoint - finite) <= 1e-4 * abs(finite), label
