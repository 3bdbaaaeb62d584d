"""Checks for notebook 1 (theory): convolution as a matrix, local linearity of ReLU networks, word limits.

Every check compares with numbers computed independently (``torch.nn.functional.conv2d``, autograd)
and raises ``AssertionError`` with the cause in plain words (shape, flipped kernel, wrong ordering...).
"""
from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np

from ..numpy_nn import rel_error

TOLERANCE = 1e-6
Q1 = dict(input_shape=(1, 3, 3), stride=4, padding=2)


# -- Q1: convolution as a matrix --------------------------------------------------------------------
def _conv(x: np.ndarray, w: np.ndarray, stride: int, padding: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        return F.conv2d(torch.tensor(x), torch.tensor(np.ascontiguousarray(w)), stride=stride, padding=padding).numpy()


def output_shape(w_shape, input_shape, stride, padding) -> tuple[int, int, int]:
    c_out, _, k_h, k_w = w_shape
    _, h, w = input_shape
    return c_out, (h + 2 * padding - k_h) // stride + 1, (w + 2 * padding - k_w) // stride + 1


def _as_matrix(A, name):
    if A is None:
        raise AssertionError(f"{name} returned None: return the matrix as a numpy array.")
    try:
        return np.asarray(A, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{name} must be a numeric array: {exc}") from None


def compare_conv_matrix(A, w: np.ndarray, input_shape, stride: int, padding: int, name: str = "A",
                        n_probes: int = 20, seed: int = 0) -> None:
    """``A @ x`` (x flattened row-major) against conv2d on random inputs; names a flipped kernel."""
    A = _as_matrix(A, name)
    c_out, h_out, w_out = output_shape(w.shape, input_shape, stride, padding)
    want_shape = (c_out * h_out * w_out, int(np.prod(input_shape)))
    case = f"(kernel {w.shape}, input {tuple(input_shape)}, stride {stride}, padding {padding})"
    if A.shape != want_shape:
        extra = " (transposed: rows are outputs, columns are inputs)" if A.shape == want_shape[::-1] else ""
        raise AssertionError(f"{name} has shape {A.shape}, expected {want_shape}{extra} {case}: one row per output "
                             f"value (C_out={c_out}, H_out={h_out}, W_out={w_out}), one column per input value.")
    x = np.random.default_rng(seed).normal(size=(n_probes, *input_shape))
    got = x.reshape(n_probes, -1) @ A.T
    want = _conv(x, w, stride, padding).reshape(n_probes, -1)
    if rel_error(got, want) <= TOLERANCE:
        return
    flipped = _conv(x, w[:, :, ::-1, ::-1], stride, padding).reshape(n_probes, -1)
    if rel_error(got, flipped) <= TOLERANCE:
        raise AssertionError(f"{name} uses a flipped kernel {case}: that is a true convolution. The layer computes "
                             f"a cross-correlation (like torch.nn.functional.conv2d): w[i, j] multiplies the input "
                             f"at offset (i, j) of the window, with no flip.")
    raise AssertionError(f"{name} @ x differs from conv2d {case}: relative error {rel_error(got, want):.2e}. Rows are "
                         f"the outputs flattened row-major (channel, row, column), columns the inputs flattened "
                         f"the same way; remember the zero padding (padded positions have no column).")


def check_q1_matrix(q1_matrix: Callable[[np.ndarray], np.ndarray], n_kernels: int = 3, seed: int = 0) -> None:
    """``q1_matrix(w)`` for the Q1 case (3x3 kernel and input, stride 4, padding 2) on random kernels."""
    rng = np.random.default_rng(seed)
    for _ in range(n_kernels):
        w = rng.normal(size=(3, 3))
        A = q1_matrix(w.copy())
        compare_conv_matrix(A, w[None, None], seed=seed, name="q1_matrix(w)", **Q1)


def check_conv_as_matrix(conv_as_matrix: Callable, cases: Sequence[dict] | None = None, n_cases: int = 8,
                         seed: int = 0) -> None:
    """``conv_as_matrix(w, input_shape, stride, padding)`` against conv2d, on ``cases`` or random ones."""
    rng = np.random.default_rng(seed)
    if cases is None:
        cases = []
        for _ in range(n_cases):
            k, s, p = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
            c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            h, w = int(rng.integers(max(1, k - 2 * p), 8)), int(rng.integers(max(1, k - 2 * p), 8))
            cases.append(dict(w_shape=(c_out, c_in, k, k), input_shape=(c_in, h, w), stride=s, padding=p))
    for case in cases:
        w = rng.normal(size=case["w_shape"])
        A = conv_as_matrix(w.copy(), tuple(case["input_shape"]), case["stride"], case["padding"])
        compare_conv_matrix(A, w, case["input_shape"], case["stride"], case["padding"],
                            name="conv_as_matrix(...)", seed=seed)


# -- Q2: a ReLU network is locally linear ------------------------------------------------------------
Q2_NETWORK = dict(
    weights=[np.array([[1.5], [0.5]]), np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([[1.0, 1.0]])],
    biases=[np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([-1.0])],
)
Q2_POINTS = (2.0, -1.0, 1.0)


def _network(weights, biases):
    import torch

    ws = [torch.tensor(np.asarray(w, dtype=np.float64)) for w in weights]
    bs = [torch.tensor(np.asarray(b, dtype=np.float64)) for b in biases]

    def h(x):
        for i, (w, b) in enumerate(zip(ws, bs)):
            x = w @ x + b
            if i < len(ws) - 1:
                x = torch.relu(x)
        return x

    return h


def autograd_linearization(weights, biases, x0) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) with W = dh/dx at x0 (autograd) and b = h(x0) - W x0."""
    import torch
    from torch.autograd.functional import jacobian

    h = _network(weights, biases)
    x = torch.tensor(np.atleast_1d(np.asarray(x0, dtype=np.float64)))
    W = jacobian(h, x).numpy()
    with torch.no_grad():
        b = h(x).numpy() - W @ x.numpy()
    return W, b


def _pair(answer, where):
    try:
        W, b = answer
    except (TypeError, ValueError):
        raise AssertionError(f"{where}: give a pair (W, b), got {answer!r}.") from None
    try:
        return np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        raise AssertionError(f"{where}: W and b must be numbers or numeric arrays, got {answer!r}.") from None


def _compare_linearization(W, b, want_W, want_b, h_x0, x0, where):
    if W.size != want_W.size:
        raise AssertionError(f"{where}: W has {W.size} entries, expected shape {want_W.shape} (outputs x inputs).")
    if b.size != want_b.size:
        raise AssertionError(f"{where}: b has {b.size} entries, expected shape {want_b.shape}.")
    W, b = W.reshape(want_W.shape), b.reshape(want_b.shape)
    if rel_error(W, want_W) > TOLERANCE:
        raise AssertionError(f"{where}: W is wrong (expected the derivative dh/dx at x0: multiply the weight matrices, "
                             f"keeping only the ReLUs that are active at x0).")
    if rel_error(b, want_b) > TOLERANCE:
        if b.shape == h_x0.shape and rel_error(b, h_x0) <= TOLERANCE:
            raise AssertionError(f"{where}: b equals h(x0), but b must make W x0 + b = h(x0): b = h(x0) - W x0.")
        raise AssertionError(f"{where}: W is right but b is wrong: b = h(x0) - W x0.")


def check_q2_answers(answers: dict) -> None:
    """``answers = {x0: (W, b)}`` for the Q2 network at x0 = 2, -1, 1, against autograd."""
    if not isinstance(answers, dict):
        raise AssertionError(f"Q2_ANSWERS must be a dict {{x0: (W, b)}}, got {type(answers).__name__}.")
    for x0 in Q2_POINTS:
        if x0 not in answers:
            raise AssertionError(f"Q2_ANSWERS has no entry for x0 = {x0:g} (keys: {sorted(answers)}).")
        W, b = _pair(answers[x0], f"x0 = {x0:g}")
        want_W, want_b = autograd_linearization(Q2_NETWORK["weights"], Q2_NETWORK["biases"], x0)
        h_x0 = want_W @ np.atleast_1d(x0) + want_b
        _compare_linearization(W, b, want_W, want_b, h_x0, np.atleast_1d(x0), f"Q2 at x0 = {x0:g}")


def random_networks(n_cases: int, seed: int):
    """Random ReLU networks (2-4 layers, widths 1-5) with a random input point."""
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        widths = [int(d) for d in rng.integers(1, 6, size=int(rng.integers(3, 6)))]
        weights = [rng.normal(size=(widths[i + 1], widths[i])) for i in range(len(widths) - 1)]
        biases = [rng.normal(size=widths[i + 1]) for i in range(len(widths) - 1)]
        yield weights, biases, rng.normal(size=widths[0])


def check_linearize(linearize: Callable, n_cases: int = 10, seed: int = 0, include_q2: bool = True) -> None:
    """``linearize(weights, biases, x0) -> (W, b)`` against autograd on random networks (and Q2's)."""
    cases = list(random_networks(n_cases, seed))
    if include_q2:
        cases = [(Q2_NETWORK["weights"], Q2_NETWORK["biases"], np.array([x0])) for x0 in Q2_POINTS] + cases
    for weights, biases, x0 in cases:
        shapes = " -> ".join(str(w.shape[1]) for w in weights) + f" -> {weights[-1].shape[0]}"
        where = f"linearize on a network of widths {shapes} at x0 = {np.round(x0, 3)}"
        want_W, want_b = autograd_linearization(weights, biases, x0)
        W, b = _pair(linearize([w.copy() for w in weights], [b_.copy() for b_ in biases], x0.copy()), where)
        h_x0 = want_W @ x0 + want_b
        _compare_linearization(W, b, want_W, want_b, h_x0, x0, where)


# -- Q3: written answers ---------------------------------------------------------------------------
STUBS = ("YOUR ANSWER HERE", "YOUR CODE HERE", "NotImplementedError")  # what the release has in place of answers


def answer_text(text: str) -> str:
    """The answer without nbgrader's solution markers (present when the source notebook runs)."""
    return "\n".join(line for line in text.splitlines() if not re.match(r"\s*### (BEGIN|END) SOLUTION", line))


def count_words(text: str) -> int:
    return len(re.findall(r"[^\W_]+(?:['’-][^\W_]+)*", answer_text(text)))


def check_word_limit(text, limit: int = 70, name: str = "Your answer") -> int:
    """A non-empty written answer of at most ``limit`` words; returns the word count."""
    if not isinstance(text, str):
        raise AssertionError(f"{name} must be a string (put your text between the triple quotes).")
    if not answer_text(text).strip() or any(stub in text for stub in STUBS):
        raise AssertionError(f"{name} is empty: write it between the triple quotes.")
    words = count_words(text)
    if words > limit:
        raise AssertionError(f"{name} has {words} words: the limit is {limit}. Cut {words - limit}.")
    print(f"{name}: {words} words (limit {limit}).")
    return words
