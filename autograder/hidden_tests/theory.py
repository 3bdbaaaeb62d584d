"""Hidden tests of notebook 1 (theory): Q1 matrices against conv2d, Q2 against autograd, Q3's length."""
from __future__ import annotations

import numpy as np

from a2lib.checks import theory as checks
from autograder.harness import Context, grades

NOTEBOOK = "01_theory"


@grades(NOTEBOOK, "test_q1_matrix")
def q1_matrix(ctx: Context) -> str:
    """``q1_matrix(w)`` for the readable kernel 1..9 and random kernels, against conv2d computed here."""
    kernels = [np.arange(1.0, 10.0).reshape(3, 3)] + [ctx.rng().normal(size=(3, 3)) for _ in range(10)]
    for w in kernels:
        A = ctx.session.call("q1_matrix", w, what="q1_matrix(w)")
        checks.compare_conv_matrix(A, w[None, None], name="q1_matrix(w)", **checks.Q1)
    return "Q1a: correct."
