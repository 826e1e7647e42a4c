"""Derive the float32 tanh of csrc/rnnkit_native.cpp and measure its error.

tanh(x) ~ x P(x^2) / Q(x^2) with P of degree 5 and Q of degree 3 (Q(0) = 1),
fitted on (0, 9] by linearized least squares on the relative error,
reweighted by 1/Q a few times (Loeb's iteration). Beyond |x| = 9 tanh rounds
to +-1 in float32. Prints the coefficients and the max relative error of the
float32 evaluation (Horner, as in the C++) against float64 tanh.

    python benchmarks/fit_tanh.py
"""

from __future__ import annotations

import numpy as np

CLAMP, DEG_P, DEG_Q = 9.0, 5, 3


def fit(iters: int = 30):
    x = np.concatenate([np.linspace(1e-6, 1, 4000), np.linspace(1, CLAMP, 8000)])
    t = np.tanh(x)
    q = np.ones_like(x)
    for _ in range(iters):
        # x P(x^2) - t (Q(x^2) - 1) = t, relative to t, weighted by the last Q
        cols = [x * x ** (2 * k) for k in range(DEG_P + 1)] + [-t * x ** (2 * k) for k in range(1, DEG_Q + 1)]
        w = 1 / (t * q)
        sol, *_ = np.linalg.lstsq(np.stack(cols, 1) * w[:, None], t * w, rcond=None)
        p_coef, q_coef = sol[: DEG_P + 1], np.concatenate([[1.0], sol[DEG_P + 1 :]])
        q = np.polyval(q_coef[::-1], x * x)
    return p_coef, q_coef


def tanh32(x, p_coef, q_coef):
    x = np.clip(x.astype(np.float32), -CLAMP, CLAMP)
    x2 = x * x
    p = np.float32(p_coef[-1])
    for c in p_coef[-2::-1]:
        p = p * x2 + np.float32(c)
    q = np.float32(q_coef[-1])
    for c in q_coef[-2::-1]:
        q = q * x2 + np.float32(c)
    return np.clip(x * p / q, -1, 1)


def main():
    p_coef, q_coef = fit()
    print("P:", ", ".join(f"{c:.9e}" for c in p_coef))
    print("Q:", ", ".join(f"{c:.9e}" for c in q_coef))
    x = np.concatenate([np.logspace(-8, 1.5, 200_000), np.linspace(1e-7, 30, 400_000)])
    x = np.concatenate([x, -x]).astype(np.float32).astype(np.float64)
    rel = np.abs(tanh32(x, p_coef, q_coef).astype(np.float64) / np.tanh(x) - 1)
    print(f"max relative error (float32 evaluation vs float64 tanh): {rel.max():.2e}")


if __name__ == "__main__":
    main()
