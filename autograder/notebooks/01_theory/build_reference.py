"""Reference values of notebook 1 (theory), from the source notebook's solutions.

``theory``: the Q1 matrix for the kernel w(i, j) = 3 i + j + 1 (a hidden test compares the
student's ``q1_matrix`` with it), and the Q2 linearizations (W, b) at x0 = 2, -1, 1 from the
solution's ``linearize`` (the kit's tests check them against autograd).
"""
from __future__ import annotations

import numpy as np

from a2lib.checks.theory import Q2_NETWORK, Q2_POINTS


def build(ns: dict) -> dict:
    values = {"q1_matrix_arange": np.asarray(ns["q1_matrix"](np.arange(1.0, 10.0).reshape(3, 3)))}
    for x0 in Q2_POINTS:
        W, b = ns["linearize"](Q2_NETWORK["weights"], Q2_NETWORK["biases"], np.array([x0]))
        values[f"q2_W_at_{x0:g}"], values[f"q2_b_at_{x0:g}"] = np.asarray(W), np.asarray(b)
    return {"theory": values}
