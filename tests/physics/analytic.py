"""Analytic solutions used by the verification tests (independent of the model code)."""

import math

import numpy as np


def neumann_lambda(k_thawed, c_thawed, k_frozen, c_frozen, latent, surface, initial):
    """lambda of the two-phase Neumann solution, front s = 2 lambda sqrt(kappa_t t),
    melting point 0 degC, by bisection on the Stefan condition."""
    kappa_t, kappa_f = k_thawed / c_thawed, k_frozen / c_frozen

    def stefan(lam):
        mu = lam * math.sqrt(kappa_t / kappa_f)
        into_front = k_thawed * surface * math.exp(-(lam**2)) / (math.erf(lam) * math.sqrt(math.pi * kappa_t))
        into_frozen = k_frozen * (-initial) * math.exp(-(mu**2)) / (math.erfc(mu) * math.sqrt(math.pi * kappa_f))
        return into_front - into_frozen - latent * lam * math.sqrt(kappa_t)

    low, high = 1e-9, 3.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if stefan(middle) > 0 else (low, middle)
    return 0.5 * (low + high)


def periodic_surface_solution(depth, time, mean, amplitude, period, diffusivity):
    """T(z, t) for T(0, t) = mean + amplitude sin(2 pi t / period) in a half-space."""
    omega = 2 * np.pi / period
    damping = np.sqrt(2 * diffusivity / omega)
    z = np.asarray(depth)[None, :]
    t = np.asarray(time)[:, None]
    return mean + amplitude * np.exp(-z / damping) * np.sin(omega * t - z / damping)
