"""Hidden tests of notebook 1 (theory): Q1 matrices against conv2d, Q2 against autograd, Q3's length.

The Q2 reference (torch autograd) lives here, in the trusted process: the student package holds no
function that computes an answer.

Each test decides its whole cell: the cases of the cell's visible check plus random cases drawn
from ``ctx.rng`` (unpredictable to the student). The student's functions run in their kernel and
send back numbers; the message builders of ``a2lib.checks.theory`` judge them here.
"""
from __future__ import annotations

import ast

import numpy as np

from a2lib.checks import theory as checks
from autograder.harness import Context, Fail, StudentError, fail_on, grades
from autograder.notebooks.not_written import explain_not_written


NOTEBOOK = "01_theory"
READABLE_KERNEL = np.arange(1.0, 10.0).reshape(3, 3)  # w(i, j) = 3 i + j + 1, as in the visible cell


# -- Q1 ---------------------------------------------------------------------------------------------
@grades(NOTEBOOK, "test_q1_matrix")
@explain_not_written
def q1_matrix(ctx: Context) -> str:
    """``q1_matrix(w)`` (4, 9) for the readable kernel 1..9, the visible kernels and random ones, against
    conv2d computed here; the readable kernel's matrix also against the reference solution's."""
    readable = ctx.session.call("q1_matrix", READABLE_KERNEL, what="q1_matrix(w)")
    fail_on(checks.conv_matrix_message(readable, READABLE_KERNEL[None, None], name="q1_matrix(w)", **checks.Q1))
    if not checks.rel_error(readable, ctx.reference("theory")["q1_matrix_arange"]) <= checks.TOLERANCE:
        raise Fail("q1_matrix differs from the reference matrix for the kernel 1..9.")
    for w in checks.q1_kernels(3) + checks.q1_kernels(10, ctx.rng("kernels")):
        A = ctx.session.call("q1_matrix", w, what="q1_matrix(w)")
        fail_on(checks.conv_matrix_message(A, w[None, None], name="q1_matrix(w)", **checks.Q1))
    return "Q1a: correct."


def _conv_as_matrix(ctx: Context, w: np.ndarray, case: dict, name: str = "conv_as_matrix(...)") -> None:
    """One ``conv_as_matrix(w, input_shape, stride, padding)`` call in the kernel, judged here."""
    shape, stride, padding = [int(d) for d in case["input_shape"]], int(case["stride"]), int(case["padding"])
    A = ctx.session.run("A = conv_as_matrix(w, tuple(shape), stride, padding)", ["A"], what="conv_as_matrix",
                        w=w, shape=shape, stride=stride, padding=padding)["A"]
    fail_on(checks.conv_matrix_message(A, w, shape, stride, padding, name=name))


@grades(NOTEBOOK, "test_conv_as_matrix")
@explain_not_written
def conv_as_matrix(ctx: Context) -> str:
    """The visible cell: the Q1 case (kernel from seed 0) and the three fixed cases (kernels from seed 0), then
    the same cases with fresh kernels from ``ctx.rng`` (a table of the visible answers earns nothing)."""
    w = np.random.default_rng(0).normal(size=(3, 3))[None, None]
    _conv_as_matrix(ctx, w, dict(checks.Q1), name="conv_as_matrix(w, (1, 3, 3), 4, 2)")
    rng = np.random.default_rng(0)
    for case in checks.CONV_AS_MATRIX_CASES:
        _conv_as_matrix(ctx, checks.conv_kernel(case, rng), case)
    fresh = ctx.rng("fresh")
    _conv_as_matrix(ctx, fresh.normal(size=(1, 1, 3, 3)), dict(checks.Q1), name="conv_as_matrix(w, (1, 3, 3), 4, 2)")
    for case in checks.CONV_AS_MATRIX_CASES:
        _conv_as_matrix(ctx, checks.conv_kernel(case, fresh), case)
    return "Q1b: correct on the visible cases."


def random_conv_cases(rng: np.random.Generator, n_cases: int) -> list[dict]:
    """Random kernels (1-4, C_in and C_out 1-3), inputs (up to 7x7), strides 1-3, paddings 0-2."""
    cases = []
    for _ in range(n_cases):
        k, s, p = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
        c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        h, w = int(rng.integers(max(1, k - 2 * p), 8)), int(rng.integers(max(1, k - 2 * p), 8))
        cases.append(dict(w_shape=(c_out, c_in, k, k), input_shape=(c_in, h, w), stride=s, padding=p))
    return cases


@grades(NOTEBOOK, "test_conv_as_matrix_hidden")
@explain_not_written
def conv_as_matrix_hidden(ctx: Context) -> str:
    """25 random kernels, shapes, strides and paddings against conv2d."""
    rng = ctx.rng("cases")
    for case in random_conv_cases(rng, 25):
        _conv_as_matrix(ctx, checks.conv_kernel(case, rng), case)
    return "Q1b: correct on the hidden cases."


# -- Q2 ---------------------------------------------------------------------------------------------
def autograd_linearization(weights, biases, x0) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) with W = dh/dx at x0 (torch autograd, float64) and b = h(x0) - W x0.

    weights [W_l: (d_l, d_{l-1})], biases [b_l: (d_l,)], x0: (d_0,) -> W: (d_L, d_0), b: (d_L,).
    """
    import torch
    from torch.autograd.functional import jacobian

    ws = [torch.tensor(np.asarray(w, dtype=np.float64)) for w in weights]
    bs = [torch.tensor(np.asarray(b, dtype=np.float64)) for b in biases]

    def h(x):
        for i, (w, b) in enumerate(zip(ws, bs)):
            x = w @ x + b
            if i < len(ws) - 1:
                x = torch.relu(x)
        return x

    x = torch.tensor(np.atleast_1d(np.asarray(x0, dtype=np.float64)))
    W = jacobian(h, x).numpy()
    with torch.no_grad():
        b = h(x).numpy() - W @ x.numpy()
    return W, b


def judge_linearization(W, b, weights, biases, x0, where: str) -> None:
    """Fail with the cause when (W, b) is not autograd's linearization of the network at x0."""
    want_W, want_b = autograd_linearization(weights, biases, x0)
    fail_on(checks.linearization_message(W, b, want_W, want_b, x0, where))


# Runs in the kernel: whether Q2_ANSWERS is a dict, then whether it has each point.
Q2_KEYS = """
import numpy as np
answers = globals().get("Q2_ANSWERS")
keys = np.array([isinstance(answers, dict)] + [isinstance(answers, dict) and x in answers for x in points])
"""


@grades(NOTEBOOK, "test_q2_answers")
def q2_answers(ctx: Context) -> str:
    """``Q2_ANSWERS[x0] = (W, b)`` at x0 = 2, -1, -3 against autograd, read back as numbers."""
    keys = ctx.session.run(Q2_KEYS, ["keys"], what="Q2_ANSWERS",
                           points=list(checks.Q2_POINTS))["keys"]
    if keys.shape != (1 + len(checks.Q2_POINTS),) or not keys[0]:
        raise Fail("Q2_ANSWERS must be a dict {x0: (W, b)}.")
    for x0, present in zip(checks.Q2_POINTS, keys[1:]):
        if not present:
            raise Fail(checks.missing_point_message(x0))
        where = f"Q2 at x0 = {x0:g}"
        try:
            got = ctx.session.run("W, b = Q2_ANSWERS[x0]", ["W", "b"], what=f"Q2_ANSWERS[{x0:g}]", x0=x0)
        except StudentError as exc:
            raise Fail(f"{where}: give a pair (W, b) of numbers or numeric arrays ({exc}).") from None
        judge_linearization(got["W"], got["b"], checks.Q2_NETWORK["weights"], checks.Q2_NETWORK["biases"], x0, where)
    return "Q2a: correct."


def _linearize(ctx: Context, weights, biases, x0) -> None:
    """One ``linearize(weights, biases, x0)`` call in the kernel (layers sent as w0, b0, w1, ...), judged here."""
    names = ", ".join(f"w{i}" for i in range(len(weights))), ", ".join(f"b{i}" for i in range(len(biases)))
    layers = {f"w{i}": w for i, w in enumerate(weights)} | {f"b{i}": b for i, b in enumerate(biases)}
    where = checks.linearize_where(weights, x0)
    try:
        got = ctx.session.run(f"W, b = linearize([{names[0]}], [{names[1]}], x0)", ["W", "b"], what="linearize",
                              x0=np.asarray(x0, dtype=np.float64), **layers)
    except StudentError as exc:
        if "raised NotImplementedError" in str(exc):
            raise
        raise Fail(f"{where}: {exc} (linearize must return a pair (W, b) of numeric arrays)") from None
    judge_linearization(got["W"], got["b"], weights, biases, x0, where)


@grades(NOTEBOOK, "test_linearize")
@explain_not_written
def linearize(ctx: Context) -> str:
    """The Q2 network at its points, the visible random networks (seed 0) and 30 networks from ``ctx.rng``."""
    for case in checks.linearize_cases(3, 0) + checks.linearize_cases(30, ctx.rng("networks"), include_q2=False):
        _linearize(ctx, *case)
    return "Q2b: correct."


# -- Q3 ---------------------------------------------------------------------------------------------
def assigned_string(source: str, name: str):
    """The string literal assigned to ``name`` in a cell's ``source``; None unless that is the cell's only
    binding of ``name`` (no second assignment, ``+=``, loop or conditional that could change it).

    Read from the submitted source (the answer is text, not code to run): the kernel is never asked.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    stores = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == name
              and isinstance(node.ctx, ast.Store)]
    if len(stores) != 1:
        return None
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and node.targets[0] is stores[0]
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    return None


@grades(NOTEBOOK, "test_dead_relu_word_limit")
def dead_relu_word_limit(ctx: Context) -> str:
    """Q3's answer, read from the submitted cell's text (a string literal), is not empty and has at most 70 words.

    The kernel is never asked: a value it computed (a ``str`` subclass whose ``encode`` or ``split``
    lies, a string built at run time) is a claim the grader cannot check, so the answer must be the literal.
    """
    text = assigned_string(ctx.cell_source("dead_relu_answer"), "DEAD_RELU_ANSWER")
    if text is None:
        raise Fail("Q3: write your answer as plain text between the triple quotes of DEAD_RELU_ANSWER = \"\"\"...\"\"\" "
                   "(a string literal, nothing computed): the grader counts the words of the text in the cell.")
    fail_on(checks.word_limit_message(text, limit=70, name="Q3"))
    return checks.word_count_line(text, limit=70, name="Q3")
