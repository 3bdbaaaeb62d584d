"""Checks for notebook 1 (theory): convolution as a matrix, local linearity of ReLU networks, word limits.

The message builders (``conv_matrix_message``, ``linearization_message``, ``local_fit_message``,
``word_limit_message``) are pure functions of numbers: arrays in, a plain-words message (or None)
out. The visible checks compare with properties of the question only (``conv2d`` on random inputs,
h(x) itself around x0), never with a function that computes an answer; the grader's hidden tests
pass their own references (autograd, in the trusted process) to the same builders.
"""
from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np

from . import call, fail_if, not_written_message
from ..numpy_nn import rel_error

TOLERANCE = 1e-6
Q1 = dict(input_shape=(1, 3, 3), stride=4, padding=2)
# The visible Q1b cases of the notebook (the check cell passes them to check_conv_as_matrix).
CONV_AS_MATRIX_CASES = (
    dict(w_shape=(1, 1, 2, 2), input_shape=(1, 3, 3), stride=1, padding=0),
    dict(w_shape=(2, 2, 3, 3), input_shape=(2, 4, 5), stride=1, padding=1),
    dict(w_shape=(2, 1, 3, 2), input_shape=(1, 5, 4), stride=2, padding=1),
)


# -- Q1: convolution as a matrix --------------------------------------------------------------------
def _conv(x: np.ndarray, w: np.ndarray, stride: int, padding: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        # A copy, not np.ascontiguousarray: a flipped kernel with a size-1 axis counts as contiguous to numpy
        # and keeps its negative stride, which torch refuses.
        return F.conv2d(torch.tensor(np.array(x, copy=True)), torch.tensor(np.array(w, copy=True)), stride=stride,
                        padding=padding).numpy()


def output_shape(w_shape, input_shape, stride, padding) -> tuple[int, int, int]:
    """(C_out, H_out, W_out) of a convolution with kernel ``w_shape`` on an input (C_in, H, W)."""
    c_out, _, k_h, k_w = w_shape
    _, h, w = input_shape
    return c_out, (h + 2 * padding - k_h) // stride + 1, (w + 2 * padding - k_w) // stride + 1


def conv_matrix_message(A, w: np.ndarray, input_shape, stride: int, padding: int, name: str = "A",
                        n_probes: int = 20, seed: int = 0) -> str | None:
    """Why ``A`` (C_out*H_out*W_out, C_in*H*W) is not the matrix of conv2d with kernel ``w``; None if it is.

    ``A @ x`` (x flattened row-major) is compared with conv2d on random inputs; names a transposed
    matrix and a flipped kernel. ``A`` is checked for shape before any arithmetic.
    """
    if A is None:
        return f"{name} returned None: return the matrix as a numpy array."
    try:
        A = np.asarray(A, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return f"{name} must be a numeric array: {exc}"
    c_out, h_out, w_out = output_shape(w.shape, input_shape, stride, padding)
    want_shape = (c_out * h_out * w_out, int(np.prod(input_shape)))
    case = f"(kernel {w.shape}, input {tuple(input_shape)}, stride {stride}, padding {padding})"
    if A.shape != want_shape:
        extra = " (transposed: rows are outputs, columns are inputs)" if A.shape == want_shape[::-1] else ""
        return (f"{name} has shape {A.shape}, expected {want_shape}{extra} {case}: one row per output "
                f"value (C_out={c_out}, H_out={h_out}, W_out={w_out}), one column per input value.")
    x = np.random.default_rng(seed).normal(size=(n_probes, *input_shape))
    got = x.reshape(n_probes, -1) @ A.T
    want = _conv(x, w, stride, padding).reshape(n_probes, -1)
    if rel_error(got, want) <= TOLERANCE:
        return None
    flipped = _conv(x, w[:, :, ::-1, ::-1], stride, padding).reshape(n_probes, -1)
    if rel_error(got, flipped) <= TOLERANCE:
        return (f"{name} uses a flipped kernel {case}: that is a true convolution. The layer computes "
                f"a cross-correlation (like torch.nn.functional.conv2d): w[i, j] multiplies the input "
                f"at offset (i, j) of the window, with no flip.")
    return (f"{name} @ x differs from conv2d {case}: relative error {rel_error(got, want):.2e}. Rows are "
            f"the outputs flattened row-major (channel, row, column), columns the inputs flattened "
            f"the same way; remember the zero padding (padded positions have no column).")


def compare_conv_matrix(A, w: np.ndarray, input_shape, stride: int, padding: int, name: str = "A",
                        n_probes: int = 20, seed: int = 0) -> None:
    """Raise AssertionError with :func:`conv_matrix_message`'s message when ``A`` is wrong."""
    fail_if(conv_matrix_message(A, w, input_shape, stride, padding, name, n_probes, seed))


def q1_kernels(n_kernels: int = 3, seed=0) -> list[np.ndarray]:
    """``n_kernels`` random 3x3 kernels (``seed``: an int or a numpy Generator)."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(3, 3)) for _ in range(n_kernels)]


def check_q1_matrix(q1_matrix: Callable[[np.ndarray], np.ndarray], n_kernels: int = 3, seed: int = 0) -> None:
    """``q1_matrix(w)`` for the Q1 case (3x3 kernel and input, stride 4, padding 2) on random kernels."""
    for w in q1_kernels(n_kernels, seed):
        compare_conv_matrix(call("q1_matrix", q1_matrix, w.copy()), w[None, None], seed=seed, name="q1_matrix(w)", **Q1)


def conv_kernel(case: dict, rng) -> np.ndarray:
    """A random kernel of ``case["w_shape"]`` (C_out, C_in, k_h, k_w) drawn from ``rng``."""
    return rng.normal(size=case["w_shape"])


def check_conv_as_matrix(conv_as_matrix: Callable, cases: Sequence[dict] = CONV_AS_MATRIX_CASES,
                         seed: int = 0) -> None:
    """``conv_as_matrix(w, input_shape, stride, padding)`` against conv2d on ``cases`` (random kernels)."""
    rng = np.random.default_rng(seed)
    for case in cases:
        w = conv_kernel(case, rng)
        A = call("conv_as_matrix", conv_as_matrix, w.copy(), tuple(case["input_shape"]), case["stride"], case["padding"])
        compare_conv_matrix(A, w, case["input_shape"], case["stride"], case["padding"],
                            name="conv_as_matrix(...)", seed=seed)


# -- Q2: a ReLU network is locally linear ------------------------------------------------------------
Q2_NETWORK = dict(
    weights=[np.array([[1.5], [0.5]]), np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([[1.0, 1.0]])],
    biases=[np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([-1.0])],
)
# Three points on three different linear pieces of h (at x0 = -3 no unit of the first layer is active).
Q2_POINTS = (2.0, -1.0, -3.0)


def network_output(weights, biases, x) -> np.ndarray:
    """h(x) of the ReLU network (weights [W_l: (d_l, d_{l-1})], biases [b_l: (d_l,)]) at x: (d_0,) -> (d_L,).

    The network of the question itself (a ReLU after every layer but the last), not an answer.
    """
    a = np.atleast_1d(np.asarray(x, dtype=np.float64))
    for i, (w, b) in enumerate(zip(weights, biases)):
        a = np.asarray(w, dtype=np.float64) @ a + np.asarray(b, dtype=np.float64)
        if i < len(weights) - 1:
            a = np.maximum(a, 0.0)
    return a


def pair_message(answer, where: str) -> str | None:
    """Why ``answer`` is not a pair (W, b) of numbers or numeric arrays; None if it is."""
    try:
        W, b = answer
    except (TypeError, ValueError):
        return f"{where}: give a pair (W, b), got {answer!r}."
    try:
        np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        return f"{where}: W and b must be numbers or numeric arrays, got {answer!r}."
    return None


def linearization_message(W, b, want_W, want_b, x0, where: str) -> str | None:
    """Why (W, b) is not the linearization (want_W, want_b) at x0; None if it is.

    W: (d_L, d_0) (any shape with d_L * d_0 entries), b: (d_L,); ``want_W``/``want_b`` come from the
    grader's own reference (autograd, in the trusted process).
    """
    W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
    want_W, want_b = np.asarray(want_W, dtype=np.float64), np.asarray(want_b, dtype=np.float64)
    x0 = np.atleast_1d(np.asarray(x0, dtype=np.float64))
    if W.size != want_W.size:
        return f"{where}: W has {W.size} entries, expected shape {want_W.shape} (outputs x inputs)."
    if b.size != want_b.size:
        return f"{where}: b has {b.size} entries, expected shape {want_b.shape}."
    W, b = W.reshape(want_W.shape), b.reshape(want_b.shape)
    if not rel_error(W, want_W) <= TOLERANCE:
        return W_MISTAKE.format(where=where)
    if not rel_error(b, want_b) <= TOLERANCE:
        if rel_error(b, want_W @ x0 + want_b) <= TOLERANCE:
            return B_IS_H.format(where=where)
        return B_MISTAKE.format(where=where)
    return None


W_MISTAKE = ("{where}: W is wrong (expected the derivative dh/dx at x0: multiply the weight matrices, "
             "keeping only the ReLUs that are active at x0).")
B_IS_H = "{where}: b equals h(x0), but b must make W x0 + b = h(x0): b = h(x0) - W x0."
B_MISTAKE = "{where}: W is right but b is wrong: b = h(x0) - W x0."


def local_fit_message(W, b, weights, biases, x0, where: str, n_directions: int = 3, seed: int = 0) -> str | None:
    """Why W x + b is not h(x) around x0; None if it is. What the visible checks use: properties of h alone.

    On the linear piece that holds x0, h(x0 + t u) = W (x0 + t u) + b exactly; the check compares
    central differences of h along ``n_directions`` random directions u with W u, and W x0 + b with h(x0).
    """
    x0 = np.atleast_1d(np.asarray(x0, dtype=np.float64))
    W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
    h0 = network_output(weights, biases, x0)
    if W.size != h0.size * x0.size:
        return f"{where}: W has {W.size} entries, expected shape {(h0.size, x0.size)} (outputs x inputs)."
    if b.size != h0.size:
        return f"{where}: b has {b.size} entries, expected shape {(h0.size,)}."
    W, b = W.reshape(h0.size, x0.size), b.reshape(h0.size)
    step = 1e-6 * (1.0 + np.abs(x0).max())  # small enough to stay on x0's linear piece
    for u in np.random.default_rng(seed).normal(size=(n_directions, x0.size)):
        slope = (network_output(weights, biases, x0 + step * u) - network_output(weights, biases, x0 - step * u)) / (2 * step)
        if not rel_error(W @ u, slope) <= 1e-5:
            return W_MISTAKE.format(where=where)
    if not rel_error(W @ x0 + b, h0) <= TOLERANCE:
        return B_IS_H.format(where=where) if rel_error(b, h0) <= TOLERANCE else B_MISTAKE.format(where=where)
    return None


def missing_point_message(x0: float, keys=None) -> str:
    """Q2_ANSWERS lacks the point x0 (``keys``: the ones it has, when known)."""
    return f"Q2_ANSWERS has no entry for x0 = {x0:g}" + (f" (keys: {sorted(keys)})." if keys is not None else ".")


def check_q2_answers(answers: dict) -> None:
    """``answers = {x0: (W, b)}`` for the Q2 network at x0 = 2, -1, -3: W x + b must be h(x) around x0."""
    if answers is None:  # the check cell passes globals().get("Q2_ANSWERS"): the cell above has not run yet
        raise AssertionError(not_written_message("Q2_ANSWERS"))
    if not isinstance(answers, dict):
        raise AssertionError(f"Q2_ANSWERS must be a dict {{x0: (W, b)}}, got {type(answers).__name__}.")
    for x0 in Q2_POINTS:
        if x0 not in answers:
            raise AssertionError(missing_point_message(x0, answers))
        where = f"Q2 at x0 = {x0:g}"
        fail_if(pair_message(answers[x0], where))
        W, b = answers[x0]
        fail_if(local_fit_message(W, b, Q2_NETWORK["weights"], Q2_NETWORK["biases"], x0, where))


def random_networks(n_cases: int, seed=0):
    """Random ReLU networks (2-4 layers, widths 1-5) with a random input point.

    Yields (weights [W_l: (d_l, d_{l-1})], biases [b_l: (d_l,)], x0: (d_0,)); ``seed`` is an int or a Generator.
    """
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        widths = [int(d) for d in rng.integers(1, 6, size=int(rng.integers(3, 6)))]
        weights = [rng.normal(size=(widths[i + 1], widths[i])) for i in range(len(widths) - 1)]
        biases = [rng.normal(size=widths[i + 1]) for i in range(len(widths) - 1)]
        yield weights, biases, rng.normal(size=widths[0])


def linearize_cases(n_cases: int, seed=0, include_q2: bool = True) -> list[tuple]:
    """The Q2 network at its three points (with ``include_q2``), then ``n_cases`` random networks."""
    cases = [(Q2_NETWORK["weights"], Q2_NETWORK["biases"], np.array([x0])) for x0 in Q2_POINTS] if include_q2 else []
    return cases + list(random_networks(n_cases, seed))


def linearize_where(weights, x0) -> str:
    """The case in words: the network's widths and the point."""
    shapes = " -> ".join(str(w.shape[1]) for w in weights) + f" -> {weights[-1].shape[0]}"
    return f"linearize on a network of widths {shapes} at x0 = {np.round(x0, 3)}"


def check_linearize(linearize: Callable, n_cases: int = 10, seed: int = 0, include_q2: bool = True) -> None:
    """``linearize(weights, biases, x0) -> (W, b)`` on random networks (and Q2's): W x + b must be h(x) around x0."""
    for weights, biases, x0 in linearize_cases(n_cases, seed, include_q2):
        where = linearize_where(weights, x0)
        answer = call("linearize", linearize, [w.copy() for w in weights], [b_.copy() for b_ in biases], x0.copy())
        fail_if(pair_message(answer, where))
        fail_if(local_fit_message(*answer, weights, biases, x0, where))


# -- Q3: written answers ---------------------------------------------------------------------------
STUBS = ("YOUR ANSWER HERE", "YOUR CODE HERE", "NotImplementedError")  # what the release has in place of answers


def answer_text(text: str) -> str:
    """The answer without nbgrader's solution markers (present when the source notebook runs)."""
    return "\n".join(line for line in text.splitlines() if not re.match(r"\s*### (BEGIN|END) SOLUTION", line))


def count_words(text: str) -> int:
    return len(re.findall(r"[^\W_]+(?:['’-][^\W_]+)*", answer_text(text)))


def word_limit_message(text, limit: int = 70, name: str = "Your answer") -> str | None:
    """Why ``text`` is not a non-empty written answer of at most ``limit`` words; None if it is."""
    if not isinstance(text, str):
        return f"{name} must be a string (put your text between the triple quotes)."
    if not answer_text(text).strip() or any(stub in text for stub in STUBS):
        return f"{name} is empty: write it between the triple quotes."
    words = count_words(text)
    if words > limit:
        return f"{name} has {words} words: the limit is {limit}. Cut {words - limit}."
    return None


def word_count_line(text: str, limit: int = 70, name: str = "Your answer") -> str:
    """What a passing word-limit check says."""
    return f"{name}: {count_words(text)} words (limit {limit})."


def check_word_limit(text, limit: int = 70, name: str = "Your answer") -> int:
    """A non-empty written answer of at most ``limit`` words; returns the word count."""
    fail_if(word_limit_message(text, limit, name))
    print(word_count_line(text, limit, name))
    return count_words(text)
