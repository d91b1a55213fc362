"""Tridiagonal solves (Thomas algorithm) as `lax.scan`s over the cell axis."""

import jax
import jax.numpy as jnp


def solve_tridiagonal(lower, diagonal, upper, rhs):
    """Solve a tridiagonal system along axis 0.

    Row i reads lower[i] x[i-1] + diagonal[i] x[i] + upper[i] x[i+1] = rhs[i];
    lower[0] and upper[-1] are ignored. No pivoting: the matrix must be diagonally
    dominant by rows or by columns (the heat-conduction Jacobians are, by columns).
    """
    zero = jnp.zeros_like(rhs[0])

    def forward(carry, row):
        upper_prev, rhs_prev = carry
        a, b, c, d = row
        inverse_pivot = 1.0 / (b - a * upper_prev)
        scaled = (c * inverse_pivot, (d - a * rhs_prev) * inverse_pivot)
        return scaled, scaled

    lower = lower.at[0].set(0.0)
    _, (upper_scaled, rhs_scaled) = jax.lax.scan(forward, (zero, zero), (lower, diagonal, upper, rhs))

    def backward(x_next, row):
        c, d = row
        x = d - c * x_next
        return x, x

    _, solution = jax.lax.scan(backward, zero, (upper_scaled, rhs_scaled), reverse=True)
    return solution
