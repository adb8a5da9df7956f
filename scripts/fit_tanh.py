#!/usr/bin/env python3
"""Fits the rational tanh of Sources/CKernels/cells_math.h (cm_tanh).

tanh(x) = x * P(z) / Q(z), z = x^2, x clamped to [-C, C]: a minimax fit of f(z) = tanh(x)/x for
relative error on a dense grid (Chebyshev-spaced and uniform points), by linear programming
(scipy's HiGHS). Each round minimises max |P - f*Q| / (f * Q_prev) with Q(0) = 1, so the weight
tends to the true relative error of P/Q. Prints the coefficients (highest degree first, as Horner
uses them) and the fit's error in exact arithmetic; the float error is what the C tests check.

Needs numpy, scipy and mpmath (python3 -m pip install numpy scipy mpmath).
Usage: python3 scripts/fit_tanh.py [--p 5] [--q 4] [--clamp 9.0]
"""
import argparse

import mpmath as mp
import numpy as np
from scipy.optimize import linprog


def fit(dp, dq, clamp, rounds=10, n=3000):
    mp.mp.dps = 40
    x = np.unique(np.concatenate([np.linspace(0, clamp, n),
                                  clamp * (1 - np.cos(np.linspace(0, np.pi / 2, n)))]))
    z = x * x
    f = np.array([float(mp.tanh(mp.mpf(v)) / mp.mpf(v)) if v > 0 else 1.0 for v in x])
    P = np.vstack([z ** k for k in range(dp + 1)]).T
    Q = np.vstack([z ** k for k in range(1, dq + 1)]).T
    q_prev = np.ones_like(z)
    for _ in range(rounds):
        w = f * q_prev
        # variables: p_0..p_dp, q_1..q_dq, t; minimise t subject to |P p - f (1 + Q q)| <= t w
        upper = np.hstack([P, -f[:, None] * Q, -w[:, None]])
        lower = np.hstack([-P, f[:, None] * Q, -w[:, None]])
        cost = np.zeros(dp + dq + 2)
        cost[-1] = 1
        res = linprog(cost, A_ub=np.vstack([upper, lower]), b_ub=np.concatenate([f, -f]),
                      bounds=[(None, None)] * len(cost), method="highs")
        p = res.x[:dp + 1]
        q = np.concatenate([[1.0], res.x[dp + 1:dp + 1 + dq]])
        q_prev = np.polyval(q[::-1], z)
    err = np.max(np.abs(np.polyval(p[::-1], z) / q_prev - f) / f)
    return p, q, err


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=int, default=5, help="degree of P in x^2")
    ap.add_argument("--q", type=int, default=4, help="degree of Q in x^2")
    ap.add_argument("--clamp", type=float, default=9.0, help="|x| beyond which tanh is taken at the clamp")
    a = ap.parse_args()
    p, q, err = fit(a.p, a.q, a.clamp)
    print(f"relative error of the fit (exact arithmetic): {err:.3g}")
    print("P, highest degree first:", ", ".join(repr(float(v)) for v in p[::-1]))
    print("Q, highest degree first:", ", ".join(repr(float(v)) for v in q[::-1]))


if __name__ == "__main__":
    main()
