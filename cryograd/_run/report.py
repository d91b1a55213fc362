"""Shared pieces of experiment outputs: error metrics, summary.json, figure helpers."""

import json
import platform
from importlib import metadata

import numpy as np
import xarray as xr

PACKAGES = ("cryograd", "jax", "jaxlib", "equinox", "optax", "optimistix", "diffrax", "blackjax", "xarray", "numpy")


def metrics(modelled, observed) -> dict:
    """MAE, RMSE, bias (modelled - observed), Pearson r and n over paired finite values."""
    m, o = np.asarray(modelled, dtype=float), np.asarray(observed, dtype=float)
    keep = np.isfinite(m) & np.isfinite(o)
    m, o = m[keep], o[keep]
    if m.size == 0:
        return dict(mae=None, rmse=None, bias=None, r=None, n=0)
    d = m - o
    r = float(np.corrcoef(m, o)[0, 1]) if m.size > 2 and np.std(m) > 0 and np.std(o) > 0 else None
    return dict(
        mae=float(np.mean(np.abs(d))),
        rmse=float(np.sqrt(np.mean(d**2))),
        bias=float(np.mean(d)),
        r=r,
        n=int(m.size),
    )


def parameter_summary(posterior, units: dict) -> tuple[dict, dict]:
    """summary.json's `parameters` (label -> value, std, units; `units` by parameter name,
    labels like 'name[member]' take their parameter's) and `correlation` of a Posterior."""
    parameters = {
        label: dict(value=float(m), std=float(s), units=units.get(label.split("[")[0], ""))
        for label, m, s in zip(posterior.labels, posterior.mean, posterior.std, strict=True)
    }
    correlation = dict(labels=posterior.labels, matrix=np.round(posterior.correlation, 4).tolist())
    return parameters, correlation


RECOVERY_Z = 2.0
RECOVERY_RELATIVE = 0.05


def recovery(posterior, truth: dict) -> dict:
    """A twin's parameters against their truth (label -> truth value): the error in
    posterior standard deviations (`z`) and relative to |truth|. A parameter is
    `identifiable` when its 2-std interval fits inside 5 % of |truth| (a bias of 0.1 K
    known to 0.15 K is determined, but not to 5 %); `recovered` when |z| <= 2 and the
    relative error is <= 5 %."""
    table = {}
    for label, value, std in zip(posterior.labels, posterior.mean, posterior.std, strict=True):
        true = float(truth[label])
        z = (value - true) / std
        relative = abs(value - true) / abs(true) if true != 0 else float("inf")
        table[label] = dict(
            truth=true,
            z=float(z),
            relative_error=float(relative),
            identifiable=bool(RECOVERY_Z * std <= RECOVERY_RELATIVE * abs(true)),
            recovered=bool(abs(z) <= RECOVERY_Z and relative <= RECOVERY_RELATIVE),
        )
    return table


def recovery_summary(table: dict) -> dict:
    """Counts over a `recovery` table: how many parameters are identifiable, how many of
    those are recovered, and the share of all within 2 std of the truth."""
    identifiable = [row for row in table.values() if row["identifiable"]]
    recovered = sum(row["recovered"] for row in identifiable)
    return dict(
        criterion=(
            f"recovered: |fitted - truth| <= {RECOVERY_Z:g} Laplace std and <= {RECOVERY_RELATIVE:.0%} of |truth|; "
            f"identifiable: {RECOVERY_Z:g} std <= {RECOVERY_RELATIVE:.0%} of |truth|"
        ),
        parameters=len(table),
        identifiable=len(identifiable),
        recovered=int(recovered),
        all=bool(recovered == len(identifiable)),
        within_2_std=float(np.mean([abs(row["z"]) <= RECOVERY_Z for row in table.values()])),
    )


def sampler_summary(samples, posterior) -> dict:
    """summary.json's `sampler`: NUTS means and stds, and the Laplace std over NUTS's."""
    return dict(
        method="nuts (blackjax)",
        std={lb: float(s) for lb, s in zip(samples.labels, samples.std, strict=True)},
        mean={lb: float(m) for lb, m in zip(samples.labels, samples.mean, strict=True)},
        laplace_to_sampler_std_ratio={
            lb: float(a / b) for lb, a, b in zip(samples.labels, posterior.std, samples.std, strict=True)
        },
        diagnostics=samples.diagnostics,
    )


def posterior_variables(ds, posterior, units: dict, *, truth=None, correlation=False):
    """`ds` with the `parameter` coordinate and the Laplace posterior's `parameter_value`,
    `parameter_std`, and optionally `parameter_truth` (values in label order, for twins)
    and `parameter_correlation` (parameter, parameter_2). Parameters differ in units, so
    theirs are in the `parameter_units` coordinate (`units`: parameter name -> units; a
    label `bias[3]` takes the units of `bias`), which the value variables name in their
    `units_metadata`."""
    names = [label.split("[")[0] for label in posterior.labels]
    ds = ds.assign_coords(
        parameter=("parameter", posterior.labels),
        parameter_units=("parameter", [units.get(name) or "1" for name in names], dict(long_name="units by parameter")),
    )
    by_parameter = dict(units_metadata="parameter_units")  # one unit per parameter, not one for all
    ds["parameter_value"] = ("parameter", posterior.mean, dict(by_parameter, long_name="fitted value"))
    ds["parameter_std"] = (
        "parameter",
        posterior.std,
        dict(by_parameter, long_name="Laplace posterior standard deviation"),
    )
    if truth is not None:
        ds["parameter_truth"] = (
            "parameter",
            np.asarray(truth, dtype=float),
            dict(by_parameter, long_name="twin truth"),
        )
    if correlation:
        ds["parameter_correlation"] = (
            ("parameter", "parameter_2"),
            posterior.correlation,
            dict(units="1", long_name="Laplace posterior correlation"),
        )
    return ds


def put(ds: xr.Dataset, dims, **variables) -> xr.Dataset:
    """Add variables over `dims` to `ds` (in place, and returned): NAME=(values, units,
    long_name), units or long_name None where the variable has none."""
    for name, (values, units, long_name) in variables.items():
        attrs = {key: value for key, value in (("units", units), ("long_name", long_name)) if value is not None}
        ds[name] = (dims, values, attrs)
    return ds


def stage(progress: bool, text: str) -> None:
    """Say on stderr which step of a run starts (with progress on)."""
    if progress:
        import sys

        print(f"  {text} ...", file=sys.stderr, flush=True)


def loss_variable(ds, result):
    """`ds` with the fit's `loss` after each optimiser step (each chunk for Gauss-Newton and
    Levenberg-Marquardt) over a `step` coordinate holding the steps taken by then."""
    ds["loss"] = (
        "step",
        np.asarray(result.history),
        dict(long_name="-log posterior after the steps in `step`", units="1"),
    )
    return ds.assign_coords(
        step=("step", np.asarray(result.history_steps, dtype=int), dict(long_name="optimiser steps taken"))
    )


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_summary(path, summary: dict) -> None:
    path.write_text(json.dumps(summary, indent=2, default=_jsonable) + "\n")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "legend.fontsize": 9})
    return plt


def save(figure, path, dpi: int = 120) -> None:
    """Lay `figure` out tightly, write it to `path` (PNG, `dpi`) and close it."""
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    pyplot().close(figure)


def annual_balance_figure(path, ds, title: str, fitted: str, *, held_out=None, calibration=None) -> None:
    """A glacier's annual specific balance [kg m-2] by year: the run of the fitted values
    (labelled `fitted`) with its 5-95 % parameter band, the start values' run, the WGMS
    balances, and where given the held-out predictions and the calibration years'
    (first, last) span. `ds` holds these variables over `year` for this glacier."""
    plt = pyplot()
    years = ds.year.values
    figure, axis = plt.subplots(figsize=(10, 4.6))
    band = (ds.specific_mass_balance_p05, ds.specific_mass_balance_p95)
    axis.fill_between(years, *band, color="tab:red", alpha=0.2, label=f"{fitted}, 5-95 % (parameter uncertainty)")
    axis.plot(years, ds.specific_mass_balance, color="tab:red", lw=1.2, label=fitted)
    axis.plot(years, ds.specific_mass_balance_start, color="0.5", lw=1, ls="--", label="start values")
    if held_out is not None:
        axis.plot(
            years, held_out, "s", mfc="none", color="tab:blue", ms=5, label="held-out prediction (leave-years-out)"
        )
    axis.plot(years, ds.observed_annual_balance, "k.-", lw=0.8, label="WGMS annual balance")
    if calibration is not None:
        axis.axvspan(calibration[0] - 0.5, calibration[1] + 0.5, color="tab:green", alpha=0.08, label="calibration")
    axis.axhline(0, color="0.7", lw=0.6)
    axis.set_xlabel("hydrological year (labelled by its end)")
    axis.set_ylabel("specific mass balance [kg m-2]")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left", ncol=3 if calibration is not None else 2, fontsize=8)
    save(figure, path)


def convergence_figure(path, fits: dict, title: str) -> None:
    """The loss (-log posterior) against optimiser steps for one or more fits (label ->
    `FitResult`), from the start values (step 0)."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.2))
    values = []
    for label, result in fits.items():
        steps = [0, *result.history_steps]
        loss = [result.start_loss, *result.history]
        values += loss
        axis.plot(steps, loss, marker="o", ms=3, label=f"{label} ({result.steps} steps)")
    values = np.asarray(values, dtype=float)
    if np.all(values > 0) and values.max() > 10 * values.min():
        axis.set_yscale("log")
    axis.set_xlabel(f"optimiser step ({next(iter(fits.values())).method})")
    axis.set_ylabel("-log posterior (up to a constant) [1]")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, ncol=2 if len(fits) > 3 else 1)
    save(figure, path)


def posterior_figure(path, posterior, units: dict, title: str, samples=None) -> None:
    """Marginals (Laplace Gaussian, NUTS histogram) on the diagonal, pairs below."""
    plt = pyplot()
    k = len(posterior.labels)
    figure, axes = plt.subplots(k, k, figsize=(2.9 * k + 0.6, 2.7 * k + 0.4), squeeze=False)
    rng = np.random.default_rng(0)
    covariance = posterior.correlation * np.outer(posterior.std, posterior.std)
    draws = rng.multivariate_normal(posterior.mean, covariance, size=2000, method="eigh")
    for i in range(k):
        for j in range(k):
            axis = axes[i, j]
            if j > i:
                axis.axis("off")
                continue
            if i == j:
                grid = np.linspace(
                    posterior.mean[i] - 4 * posterior.std[i], posterior.mean[i] + 4 * posterior.std[i], 200
                )
                density = np.exp(-0.5 * ((grid - posterior.mean[i]) / posterior.std[i]) ** 2)
                density /= posterior.std[i] * np.sqrt(2 * np.pi)
                if samples is not None:
                    axis.hist(samples[:, i], bins=40, density=True, color="0.75", label="NUTS")
                axis.plot(grid, density, color="tab:red", label="Laplace")
                axis.set_yticks([])
                axis.set_title(
                    f"{_label(posterior.labels[i], units)}\n= {posterior.mean[i]:.4g} ± {posterior.std[i]:.2g}",
                    fontsize=9,
                )
                if i == 0:
                    axis.set_ylabel("probability density")
                    axis.legend(loc="upper right")
            else:
                if samples is not None:
                    axis.plot(samples[:, j], samples[:, i], ".", ms=1.5, color="0.6", label="NUTS")
                axis.plot(draws[:, j], draws[:, i], ".", ms=1.0, color="tab:red", alpha=0.25, label="Laplace")
                axis.set_ylabel(_label(posterior.labels[i], units))
            if i == k - 1:
                axis.set_xlabel(_label(posterior.labels[j], units))
            axis.grid(alpha=0.3)
    figure.suptitle(title)
    save(figure, path, dpi=110)


def _label(name, units):
    unit = units.get(name.split("[")[0], "")
    return f"{name} [{unit}]" if unit else name


def correlation_figure(path, posterior, title: str) -> None:
    """Posterior correlation matrix, labelled with value +- std, for many parameters."""
    plt = pyplot()
    k = len(posterior.labels)
    figure, axis = plt.subplots(figsize=(1.0 * k + 3.5, 0.8 * k + 2.0))
    image = axis.imshow(posterior.correlation, cmap="RdBu_r", vmin=-1, vmax=1)
    names = [
        f"{lb} = {m:.3g} ± {s:.2g}" for lb, m, s in zip(posterior.labels, posterior.mean, posterior.std, strict=True)
    ]
    axis.set_xticks(range(k), posterior.labels, rotation=60, ha="right")
    axis.set_yticks(range(k), names)
    for i in range(k):
        for j in range(k):
            axis.text(j, i, f"{posterior.correlation[i, j]:.2f}", ha="center", va="center", fontsize=7)
    figure.colorbar(image, ax=axis, label="posterior correlation [1]")
    axis.set_title(title)
    save(figure, path, dpi=110)
