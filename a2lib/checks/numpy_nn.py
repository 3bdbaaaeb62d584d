"""Checks for notebook 2 (the numpy ConvNet): the student's layers against numbers that give no answer away.

* ``check_forward``: the visible forward checks, on the notebook's fixed inputs, against stored
  digests (a few random projections of the right output, and of the outputs of typical mistakes),
  or against the student's own naive loop (``check_against_naive``);
* ``check_backward``: against numeric gradients (central differences) of the student's own forward;
* ``check_sgd``: two updates against stored digests of the right trajectory and of typical mistakes;
* ``check_overfit``: the 50-image experiment's training accuracy.

Nothing here computes a layer's output or gradient: the digests are written by the instructor kit
(``autograder/notebooks/02_numpy_convnet/digests.py``), whose references run torch in the trusted
process. The message builders (``out_message``, ``dx_message``, ``param_grad_message``,
``sgd_message``, ``overfit_message``) take what the result must be as an :class:`Expected` (full
arrays on the grader's side, digests here) and name the cause where it can be recognised (flipped
kernel, forgotten batch sum, batch average, mask from the wrong sign, regularized bias...). A layer
is described by its ``kind`` (``conv``, ``pool``, ``relu``, ``linear``) and its hyperparameters
``hyper`` (``kernel_size``, ``stride``, ``padding``; empty for ReLU and Linear).
"""
from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np

from . import call, fail_if, not_written_message
from ..numpy_nn import ConvNet, Module, SoftmaxCrossEntropy, eval_numerical_gradient_array, rel_error

TOLERANCE = 1e-6          # float64 against the reference
NUMERIC_TOLERANCE = 1e-6  # visible tests: against central differences (h = 1e-5)
KINDS = ("conv", "pool", "relu", "linear")
NAMES = {"conv": "Conv2D", "pool": "MaxPooling", "relu": "ReLU", "linear": "Linear"}
HAS_PARAMS = ("conv", "linear")
GRADIENTS = {kind: ("dx", "dw", "db") if kind in HAS_PARAMS else ("dx",) for kind in KINDS}  # what backward sets
OVERFIT_THRESHOLD = 0.9
N_PROJECTIONS = 4  # numbers stored per array (at most half its size), so the answer cannot be read back


# -- what a result must be: full arrays (the grader) or digests (the visible checks) ------------------
def _seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "little")


def project(key: str, value) -> np.ndarray:
    """Fixed random projections of ``value`` (float64): ``N_PROJECTIONS``, at most half its size (at least one),
    the same for the same key and size."""
    value = np.asarray(value, dtype=np.float64).ravel()
    n = max(1, min(N_PROJECTIONS, value.size // 2))
    return np.random.default_rng(_seed(key, value.size)).normal(size=(n, value.size)) @ value


def case_key(kind: str, hyper: dict, *arrays) -> str:
    """A name for a fixed input (the layer, its hyperparameters, x, weight, bias): where its digest is stored."""
    h = hashlib.sha256(f"{kind}|{sorted(hyper.items())}".encode())
    for a in arrays:
        if a is not None:
            a = np.ascontiguousarray(a, dtype=np.float64)
            h.update(str(a.shape).encode() + a.tobytes())
    return h.hexdigest()[:24]


class Expected:
    """What the results must be, and what typical mistakes give: ``variants[name][key]`` with
    ``shapes[key]`` (``name`` "right" or a mistake: "flipped", "no_bias", "bias_reg"...).

    ``projected``: the variants are digests (:func:`project` of each array), never the arrays.
    """

    def __init__(self, variants: dict, shapes: dict, projected: bool = False):
        self.variants, self.shapes, self.projected = variants, {k: tuple(v) for k, v in shapes.items()}, projected

    @classmethod
    def exact(cls, right: dict, **mistakes: dict) -> "Expected":
        """From full arrays (the grader's references)."""
        return cls({"right": right, **mistakes}, {k: np.shape(v) for k, v in right.items()})

    @classmethod
    def digests(cls, stored: dict) -> "Expected":
        """From a stored digest ``{"shapes": {key: shape}, "variants": {name: {key: projections}}}``."""
        return cls({n: {k: np.asarray(v) for k, v in d.items()} for n, d in stored["variants"].items()},
                   stored["shapes"], projected=True)

    def _pair(self, got, key, variant):
        want = self.variants[variant][key]
        return (project(key, got), want) if self.projected else (np.asarray(got, dtype=np.float64), want)

    def matches(self, got: dict, variant: str = "right", keys=None, tol: float = 1e-9) -> bool:
        """``got[key]`` has the shape and values of the variant for every key (those in ``keys``)."""
        if variant not in self.variants:
            return False
        for key in keys or self.variants[variant]:
            value = got.get(key)
            if value is None:
                return False
            value = np.asarray(value)
            if (value.dtype == object or not np.issubdtype(value.dtype, np.number) or value.shape != self.shapes[key]
                    or not np.all(np.isfinite(value))):
                return False
            if not rel_error(*self._pair(value, key, variant)) <= tol:
                return False
        return True

    def error(self, got, key: str) -> float:
        """The relative error of ``got`` (the shape of ``key``) against the right value (of the digests)."""
        return rel_error(*self._pair(got, key, "right"))


def digest_of(expected: Expected) -> dict:
    """The storable digest of full references (what ``Expected.digests`` reads)."""
    return {"shapes": {k: list(v) for k, v in expected.shapes.items()},
            "variants": {n: {k: [float(p) for p in project(k, v)] for k, v in d.items()}
                         for n, d in expected.variants.items()}}


# -- diagnosis: pure functions of numbers -------------------------------------------------------------
def close(got, want, tol) -> bool:
    """Same shape, finite, and within relative error ``tol``."""
    got = np.asarray(got)
    return got.shape == np.shape(want) and bool(np.all(np.isfinite(got))) and rel_error(got, want) <= tol


def _shape_message(name, what, got_shape, want_shape, n):
    msg = f"{name}: {what} has shape {tuple(got_shape)}, expected {tuple(want_shape)}"
    if tuple(got_shape) == (n, *want_shape):
        msg += (f". It keeps a batch axis of size {n}: the gradient of a parameter is the SUM of every image's "
                f"contribution, so sum over the batch axis")
    elif len(got_shape) == len(want_shape) and tuple(got_shape) == tuple(reversed(want_shape)):
        msg += " (transposed)"
    return msg + "."


def numeric_message(name: str, attr: str, value) -> str | None:
    """Why ``value`` (the forward output for ``attr`` "out", else self.<attr>) is not a numeric array; None if it is."""
    what = "the output" if attr == "out" else f"self.{attr}"
    if value is None:
        return (f"{name}.forward returned None: return the output array." if attr == "out" else
                f"{name}.backward did not set self.{attr}: store the result in self.{attr}.")
    value = np.asarray(value)
    if value.dtype == object or not np.issubdtype(value.dtype, np.number):
        return f"{name}: {what} is not a numeric array (got {type(value).__name__})."
    return None


def param_grad_message(kind: str, attr: str, got, want, per_sample: Callable[[], list], n: int, tol: float,
                       context: str) -> str | None:
    """Why the gradient ``got`` of a parameter (``attr``: dw or db) differs from ``want``; None if it does not.

    ``per_sample()`` returns the gradient of each image alone (called only when ``got`` is wrong);
    ``n`` is the batch size.
    """
    name, got = NAMES[kind], np.asarray(got)
    if close(got, want, tol):
        return None
    if got.shape != np.shape(want):
        return _shape_message(name, f"self.{attr}", got.shape, np.shape(want), n)
    if n > 1 and close(got, want / n, 1e-6):
        return (f"{name}: self.{attr} is the batch AVERAGE of the images' gradients, {context}. The "
                f"upstream gradient dout already carries the 1/N of the mean loss: sum over the batch, do not average.")
    for i, single in enumerate(per_sample() if n > 1 else []):
        if close(got, single, 1e-6):
            return (f"{name}: self.{attr} holds the gradient of image {i} only (of the {n} in the batch), "
                    f"{context}. You forgot to sum over the batch: every image contributes to the gradient of a "
                    f"shared parameter (in a loop, accumulate with += instead of assigning).")
    return f"{name}: self.{attr} is wrong {context}: relative error {rel_error(got, want):.2e} (allowed {tol:g})."


def out_message(kind: str, out, expected: Expected, tol: float = TOLERANCE, context: str = "",
                name: str | None = None) -> str | None:
    """Why ``out`` is not the layer's forward output (``expected``'s "out"); None if it is.

    Shapes are compared before values; names a flipped kernel and a forgotten bias where
    ``expected`` has those variants ("flipped", "no_bias"). ``name``: what the messages call the
    function (default ``<Layer>.forward``).
    """
    message = numeric_message(NAMES[kind], "out", out)
    if message:
        return message
    name = name or f"{NAMES[kind]}.forward"
    out, want_shape = np.asarray(out), expected.shapes["out"]
    if out.shape != want_shape:
        return (f"{name}: output has shape {out.shape}, expected {want_shape} {context} "
                f"(N, C_out, H_out, W_out) with H_out = (H + 2*padding - kernel_size) // stride + 1."
                if kind in ("conv", "pool") else
                f"{name}: output has shape {out.shape}, expected {want_shape} {context}.")
    if expected.matches({"out": out}, tol=tol):
        return None
    if kind == "conv" and expected.matches({"out": out}, "flipped", tol=1e-6):
        return (f"{name} flips the kernel (a true convolution) {context}. Conv2D computes a "
                f"cross-correlation, like torch.nn.functional.conv2d: weight[f, c, i, j] multiplies the input "
                f"at (row + i, column + j) of the window, with no flip.")
    if kind in HAS_PARAMS and expected.matches({"out": out}, "no_bias", tol=1e-6):
        return f"{name} forgets the bias {context}."
    if not np.all(np.isfinite(out)):
        return f"{name}: the output holds NaN or infinite values {context}."
    return (f"{name}: wrong values {context}: relative error {expected.error(out, 'out'):.2e} "
            f"(allowed {tol:g}).")


def dx_message(kind: str, dout, dx, want, tol: float, context: str) -> str | None:
    """Why ``dx`` (the layer's self.dx for upstream gradient ``dout``) differs from ``want``; None if it does not."""
    name = NAMES[kind]
    message = numeric_message(name, "dx", dx)
    if message:
        return message
    dx = np.asarray(dx)
    if dx.shape != want.shape:
        return (f"{name}.backward: self.dx has shape {dx.shape}, expected {want.shape} (the shape of the "
                f"input x{', unflattened' if kind == 'linear' else ''}) {context}.")
    if close(dx, want, tol):
        return None
    if kind == "relu":
        if close(dx, dout, 1e-9):
            return (f"ReLU.backward lets the whole gradient through {context}: where the input x <= 0 the output "
                    f"does not depend on x, so dx must be 0 there (mask dout with x > 0).")
        if close(dx, dout * (dout > 0), 1e-9):
            return (f"ReLU.backward masks with the sign of dout {context}: the mask comes from the forward input "
                    f"x (keep x in self.cache and use dout * (x > 0)).")
    if kind == "pool" and np.all(np.isfinite(dx)):
        message = pool_dx_message(dout, dx, want, context)
        if message:
            return message
    return f"{name}.backward: self.dx is wrong {context}: relative error {rel_error(dx, want):.2e} (allowed {tol:g})."


def pool_dx_message(dout, dx, want, context: str) -> str | None:
    """The usual MaxPooling.backward mistakes, recognised from properties of dx (no reference layer needed):
    a gradient spread over the window, overlapping windows assigned instead of added, dout sent to the
    wrong position of the window."""
    same_total = abs(dx.sum() - dout.sum()) <= 1e-6 * (1 + np.abs(dout).sum())
    inside = np.all((want != 0) | (dx == 0))  # dx is nonzero only where the right dx is
    if same_total and np.count_nonzero(dx) > np.count_nonzero(want):
        return (f"MaxPooling.backward spreads the gradient over the window {context}: only the position of the "
                f"maximum influences the output, so only it receives dout.")
    if inside and not same_total and np.mean(np.isclose(dx, want)) > 0.5:  # right but at the shared positions
        return (f"MaxPooling.backward loses gradient where windows overlap {context}: when stride < kernel_size "
                f"one position can be the maximum of two windows and must receive both their dout. Add (+=) into "
                f"dx, do not assign (=).")
    if same_total and not inside:
        return (f"MaxPooling.backward sends dout to the wrong position of the window {context}: the right amounts, "
                f"at places that are not the window's maximum. Check how the argmax of the flattened window becomes "
                f"(row, column): index // kernel_size is the row, index % kernel_size the column, counted from "
                f"the window's corner (row_out * stride, col_out * stride).")
    return None


def backward_message(kind: str, dout, got: dict, want: dict, tol: float, context: str,
                     per_sample: Callable[[], list] | None = None) -> str | None:
    """The first problem of the gradients ``got`` (dx, and dw, db for conv/linear) against ``want``; None if none.

    ``per_sample()`` returns each image's gradients alone (``[{"dw": .., "db": ..}, ...]``), to
    recognise a forgotten batch sum; called only when a parameter's gradient is wrong.
    """
    message = dx_message(kind, dout, got.get("dx"), want["dx"], tol, context)
    if message or kind not in HAS_PARAMS:
        return message
    singles_cache = []

    def singles_of(attr):
        if per_sample is None:
            return []
        if not singles_cache:
            singles_cache.append(per_sample())
        return [s[attr] for s in singles_cache[0]]

    for attr in ("dw", "db"):
        message = numeric_message(NAMES[kind], attr, got.get(attr))
        if message:
            return message
        message = param_grad_message(kind, attr, got[attr], want[attr], lambda a=attr: singles_of(a), len(dout),
                                     tol, context)
        if message:
            return message
    return None


# -- the visible checks ---------------------------------------------------------------------------
def _kind(layer, kind):
    if kind is None:
        by_name = {v: k for k, v in NAMES.items()}
        kind = next((by_name[c.__name__] for c in type(layer).__mro__ if c.__name__ in by_name), None)
    if kind not in KINDS:
        raise ValueError(f"say which kind of layer this is: one of {KINDS}")
    return kind


def hyperparameters(layer) -> dict:
    """The layer's kernel_size, stride and padding (those it has)."""
    return {k: getattr(layer, k) for k in ("kernel_size", "stride", "padding") if hasattr(layer, k)}


def _params(layer, kind):
    return (layer.weight, layer.bias) if kind in HAS_PARAMS else (None, None)


def stored_expected(kind: str, hyper: dict, x, weight=None, bias=None) -> Expected:
    """The stored digests for this fixed input; AssertionError when the input is not one the notebook uses."""
    from .digests import LAYER_DIGESTS

    stored = LAYER_DIGESTS.get(case_key(kind, hyper, x, weight, bias))
    if stored is None:
        raise AssertionError(f"{NAMES[kind]}: the check knows the right output only for the notebook's own fixed "
                             f"input (the cell as it was given): run the check cell unchanged.")
    return Expected.digests(stored)


def check_forward(layer, x: np.ndarray, kind: str | None = None, tol: float = TOLERANCE, context: str = "") -> np.ndarray:
    """``layer.forward(x)`` on the notebook's fixed input against the stored digests; returns the output.

    Raises AssertionError with the cause (wrong shape, flipped kernel, forgotten bias, wrong values).
    """
    kind = _kind(layer, kind)
    weight, bias = _params(layer, kind)
    expected = stored_expected(kind, hyperparameters(layer), x, weight, bias)
    out = call(f"{NAMES[kind]}.forward", layer.forward, x.copy())
    fail_if(out_message(kind, out, expected, tol=tol, context=context or f"on input of shape {x.shape}"))
    return np.asarray(out)


# The fixed case of the naive convolution's check (the same as the Conv2D forward check's):
# 2 images, 3 -> 2 channels, 4x4 kernel, stride 2, padding 1.
NAIVE_CASE = dict(x=np.linspace(-0.1, 0.5, num=2 * 3 * 5 * 5).reshape(2, 3, 5, 5),
                  weight=np.linspace(-0.2, 0.3, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4), bias=np.array([0.1, -0.2]),
                  stride=2, padding=1)


def check_conv_naive(conv_forward_naive: Callable) -> np.ndarray:
    """``conv_forward_naive(x, weight, bias, stride, padding)`` on :data:`NAIVE_CASE` against the stored digests."""
    case = NAIVE_CASE
    hyper = dict(kernel_size=case["weight"].shape[-1], stride=case["stride"], padding=case["padding"])
    expected = stored_expected("conv", hyper, case["x"], case["weight"], case["bias"])
    out = call("conv_forward_naive", conv_forward_naive, case["x"].copy(), case["weight"].copy(), case["bias"].copy(),
               case["stride"], case["padding"])
    fail_if(out_message("conv", out, expected, context=f"on input of shape {case['x'].shape}", name="conv_forward_naive"))
    return np.asarray(out)


def check_against_naive(layer, naive: Callable, x: np.ndarray, tol: float = TOLERANCE) -> np.ndarray:
    """``layer.forward(x)`` against the student's own naive loop ``naive(x, weight, bias, stride, padding)``.

    Both are the student's: the naive one checked on its own (stored digests), this one must agree with
    it on any input. Returns the layer's output.
    """
    out = call("Conv2D.forward", layer.forward, x.copy())
    weight, bias = np.asarray(layer.weight), np.asarray(layer.bias)
    want = call("conv_forward_naive", naive, x.copy(), weight.copy(), bias.copy(), layer.stride, layer.padding)
    fail_if(numeric_message("conv_forward_naive", "out", want))
    want = np.asarray(want, dtype=np.float64)
    flipped = naive(x.copy(), weight[:, :, ::-1, ::-1].copy(), bias.copy(), layer.stride, layer.padding)
    mistakes = dict(flipped={"out": np.asarray(flipped, dtype=np.float64)})
    if np.any(bias) and want.ndim == 4:
        mistakes["no_bias"] = {"out": want - bias[None, :, None, None]}
    context = f"(compared with your conv_forward_naive on an input of shape {x.shape})"
    fail_if(out_message("conv", out, Expected.exact({"out": want}, **mistakes), tol=tol, context=context))
    return np.asarray(out)


def layer_gradients(layer, kind: str) -> dict:
    """What ``backward`` left on the layer: dx, and dw, db for a layer with parameters."""
    return {attr: getattr(layer, attr, None) for attr in GRADIENTS[kind]}


def numeric_gradients(layer, kind: str, x: np.ndarray, dout: np.ndarray) -> dict[str, np.ndarray]:
    """Central differences of ``sum(layer.forward(x) * dout)`` for x (and weight, bias): what backward must give."""
    x = np.array(x, dtype=np.float64)
    numeric = {"dx": eval_numerical_gradient_array(lambda _: layer.forward(x), x, dout)}
    if kind in HAS_PARAMS:
        numeric["dw"] = eval_numerical_gradient_array(lambda _: layer.forward(x), layer.weight, dout)
        numeric["db"] = eval_numerical_gradient_array(lambda _: layer.forward(x), layer.bias, dout)
    return numeric


def check_backward(layer, x: np.ndarray, dout: np.ndarray | None = None, kind: str | None = None,
                   tol: float = NUMERIC_TOLERANCE, seed: int = 0) -> dict[str, float]:
    """``layer.backward`` against numeric gradients (central differences) of ``sum(forward(x) * dout)``.

    Returns the relative errors ``{"dx": .., "dw": .., "db": ..}``; raises AssertionError with the cause.
    """
    kind = _kind(layer, kind)
    x = np.array(x, dtype=np.float64)
    out = np.asarray(call(f"{NAMES[kind]}.forward", layer.forward, x.copy()))
    if dout is None:
        dout = np.random.default_rng(seed).normal(size=out.shape)
    numeric = numeric_gradients(layer, kind, x, dout)
    layer.forward(x.copy())
    call(f"{NAMES[kind]}.backward", layer.backward, dout)  # after the numeric passes, which overwrote the cache
    got = layer_gradients(layer, kind)
    context = f"when compared with numeric gradients on an input of shape {x.shape}"
    per_sample = lambda: [numeric_gradients(layer, kind, x[i:i + 1], dout[i:i + 1]) for i in range(len(x))]  # noqa: E731
    fail_if(backward_message(kind, dout, got, numeric, tol, context, per_sample))
    return {attr: rel_error(got[attr], numeric[attr]) for attr in got}


# -- SGD ------------------------------------------------------------------------------------------
SGD_SETTINGS = dict(learning_rate=0.1, reg=0.05, momentum=0.9)
SGD_SHAPES = [((4, 3), (3,)), ((2, 3, 2, 2), (2,))]  # (weight, bias) of two layers; a layer without any between


def sgd_problem(seed=0) -> dict[str, np.ndarray]:
    """Parameters and two steps' gradients: ``weight0``, ``bias0``, ..., ``step1_dw0``, ``step2_db1``...

    ``seed``: an int or a numpy Generator.
    """
    rng = np.random.default_rng(seed)
    problem = {}
    for i, (w, b) in enumerate(SGD_SHAPES):
        problem[f"weight{i}"], problem[f"bias{i}"] = rng.normal(size=w), rng.normal(size=b)
    for step in (1, 2):
        for i, (w, b) in enumerate(SGD_SHAPES):
            problem[f"step{step}_dw{i}"], problem[f"step{step}_db{i}"] = rng.normal(size=w), rng.normal(size=b)
    return problem


class _Parameters(Module):
    """A stand-in layer with a weight and a bias whose gradients the check sets by hand."""

    def __init__(self, weight, bias):
        super().__init__()
        self.weight, self.bias = weight, bias
        self.dw = self.db = None


def sgd_trajectory(sgd_class: Callable, problem: dict, learning_rate: float = 0.1, reg: float = 0.05,
                   momentum: float = 0.9) -> dict[str, np.ndarray]:
    """Two ``update`` calls of ``sgd_class(model, learning_rate, reg, momentum)`` on ``problem``
    (:func:`sgd_problem`); returns the parameters after each step (``step1_weight0``, ``step2_bias1``...)."""
    layers = [_Parameters(np.array(problem[f"weight{i}"], dtype=np.float64), np.array(problem[f"bias{i}"], dtype=np.float64))
              for i in range(len(SGD_SHAPES))]
    model = ConvNet([layers[0], Module(), *layers[1:]], SoftmaxCrossEntropy())  # Module(): no parameters
    optimizer = sgd_class(model, learning_rate=learning_rate, reg=reg, momentum=momentum)
    out = {}
    for step in (1, 2):
        for i, layer in enumerate(layers):
            layer.dw, layer.db = problem[f"step{step}_dw{i}"].copy(), problem[f"step{step}_db{i}"].copy()
        optimizer.update(model)
        for i, layer in enumerate(layers):
            out[f"step{step}_weight{i}"] = np.array(layer.weight, dtype=np.float64)
            out[f"step{step}_bias{i}"] = np.array(layer.bias, dtype=np.float64)
    return out


SGD_MISTAKES = ("bias_reg", "no_reg", "no_momentum")  # the variants an SGD Expected may hold besides "right"


def sgd_message(got: dict, expected: Expected, tol: float = TOLERANCE) -> str | None:
    """Why the trajectory ``got`` (:func:`sgd_trajectory`'s keys) is not ``expected``'s; None if it is.

    The usual mistakes are recognised where ``expected`` holds their trajectories (:data:`SGD_MISTAKES`).
    """
    if expected.matches(got, tol=tol):
        return None
    if expected.matches(got, "bias_reg"):
        return ("SGD regularizes the biases too: apply reg * w to the weights only (module.weight); "
                "biases are not regularized.")
    if expected.matches(got, "no_reg"):
        return "SGD ignores the regularization: the weights' gradient is dw + reg * w."
    if expected.matches(got, "no_momentum"):
        return ("SGD ignores the momentum: keep a velocity per parameter, v = momentum * v - "
                "learning_rate * (dw + reg * w), then w += v.")
    keys = list(expected.shapes)
    if expected.matches(got, keys=[k for k in keys if k.startswith("step1")], tol=tol):
        return ("SGD's first update is right but the second is wrong: keep each parameter's velocity "
                "between calls to update (e.g. in a dict on the optimizer), one velocity per parameter.")
    bad = next(k for k in keys if not expected.matches(got, keys=[k], tol=tol))
    value = got.get(bad)
    if value is None:
        detail = "missing"
    elif np.shape(value) != expected.shapes[bad]:
        detail = f"shape {np.shape(value)}, expected {expected.shapes[bad]}"
    else:
        try:
            detail = f"relative error {expected.error(value, bad):.2e}"
        except (TypeError, ValueError):
            detail = "not numbers"
    return (f"SGD: {bad.replace('_', ' ')} is wrong ({detail}). Expected v = momentum * v - "
            f"learning_rate * (dw + reg * w) for weights (no reg for biases), then w += v.")


def check_sgd(sgd_class: Callable, seed: int = 0) -> None:
    """Two updates (problem ``seed``, settings ``SGD_SETTINGS``) against the stored digests of the right
    trajectory and of the usual mistakes (biases regularized, no regularization, no momentum)."""
    from .digests import SGD_DIGESTS

    if str(seed) not in SGD_DIGESTS:
        raise AssertionError("check_sgd knows the right trajectory only for the notebook's problem: run the cell unchanged.")
    problem = sgd_problem(seed)
    got = call("SGD.update", sgd_trajectory, sgd_class, problem, **SGD_SETTINGS)
    fail_if(sgd_message(got, Expected.digests(SGD_DIGESTS[str(seed)])))


# -- the students' own checks ---------------------------------------------------------------------------
def own_gradient_check_message(errors) -> str | None:
    """Why ``errors`` ({"dx": .., "dw": ..}: the student's relative errors between Linear.backward and numeric
    gradients) does not show a working gradient check; None if it does."""
    if errors is None:  # the check cell passes globals().get("my_errors")
        return not_written_message("Your gradient check (my_errors)")
    if not isinstance(errors, dict) or not {"dx", "dw"} <= set(errors):
        return 'my_errors must be a dict {"dx": relative error, "dw": relative error}.'
    try:
        values = {k: float(errors[k]) for k in ("dx", "dw")}
    except (TypeError, ValueError):
        return "my_errors must hold numbers: the relative errors rel_error(analytic, numeric)."
    for name, value in values.items():
        if not np.isfinite(value) or value > 1e-6:
            return (f"Your gradient check finds a relative error of {value:.2e} for {name} (a correct backward gives "
                    f"below 1e-7): either Linear.backward or the check is wrong. Call forward and backward before the "
                    f"numeric gradients, and compare linear.{name} with the numeric gradient of the same array.")
    if all(v == 0.0 for v in values.values()):
        return ("Both relative errors are exactly 0: numeric gradients are never exact, so the check compares an array "
                "with itself. Compare linear.dx and linear.dw with eval_numerical_gradient_array's results.")
    return None


def check_own_gradient_check(errors) -> None:
    """The student's own gradient check of Linear: small relative errors, computed (not copied)."""
    fail_if(own_gradient_check_message(errors))


def initial_loss_message(loss, n_classes: int = 10) -> str | None:
    """Why ``loss`` (an untrained network's mean cross-entropy) is not about ln(n_classes); None if it is."""
    if loss is None:  # the check cell passes globals().get("initial_loss")
        return not_written_message("initial_loss")
    try:
        loss = float(loss)
    except (TypeError, ValueError):
        return "initial_loss must be a number: the mean cross-entropy that model.forward(x, y) returns."
    expected = np.log(n_classes)
    if np.isfinite(loss) and abs(loss - expected) <= 0.5:
        return None
    return (f"The untrained network's loss is {loss:.3f}, far from ln {n_classes} = {expected:.3f}. With small random "
            f"weights the scores are nearly equal, so softmax gives each class about 1/{n_classes}: look at the "
            f"initialization's scale and at what you passed (the images with the mean subtracted, their labels).")


def check_initial_loss(loss, n_classes: int = 10) -> float:
    """An untrained network's loss must be close to ln(n_classes); returns it."""
    fail_if(initial_loss_message(loss, n_classes))
    return float(loss)


# -- the 50-image experiment ------------------------------------------------------------------------
def overfit_message(accuracy: float, epochs: int = 10) -> str | None:
    """Why a training accuracy on the 50 images is too low; None when it reaches the threshold."""
    if accuracy >= OVERFIT_THRESHOLD:
        return None
    return (f"Training accuracy on the 50 images is {accuracy:.2f} after {epochs} epochs; a working network reaches "
            f"at least {OVERFIT_THRESHOLD}. Check the layers' tests above, then SGD (sign of the update, velocity "
            "kept between calls).")


def check_overfit(accuracy: float) -> float:
    """The 50-image experiment's final training accuracy must reach 0.9; returns it."""
    fail_if(overfit_message(float(accuracy)))
    return float(accuracy)
