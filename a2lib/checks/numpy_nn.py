"""Checks for notebook 2 (the numpy ConvNet): the student's layers against numbers we trust.

* ``check_forward`` / ``check_backward``: the visible checks, on small fixed inputs, against
  ``torch.nn.functional`` (forward) and against numeric gradients (backward);
* ``check_sgd``: two updates against ``torch.optim.SGD`` (weights regularized, biases not);
* ``check_overfit``: the 50-image experiment's training accuracy.

The message builders (``out_message``, ``dx_message``, ``param_grad_message``, ``sgd_message``,
``overfit_message``) are pure functions of numbers: arrays in, a plain-words message (or None)
out, naming the cause where it can be recognised (flipped kernel, forgotten batch sum, batch
average, mask from the wrong sign, regularized bias...). The visible checks apply them to the
student's layers here; the grader's hidden tests apply them to the numbers the student's kernel
sends back. A layer is described by its ``kind`` (``conv``, ``pool``, ``relu``, ``linear``) and its
hyperparameters ``hyper`` (``kernel_size``, ``stride``, ``padding``; empty for ReLU and Linear).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import fail_if
from ..numpy_nn import ConvNet, Module, SoftmaxCrossEntropy, eval_numerical_gradient_array, rel_error

TOLERANCE = 1e-6          # float64 against torch
NUMERIC_TOLERANCE = 1e-6  # visible tests: against central differences (h = 1e-5)
KINDS = ("conv", "pool", "relu", "linear")
NAMES = {"conv": "Conv2D", "pool": "MaxPooling", "relu": "ReLU", "linear": "Linear"}
HAS_PARAMS = ("conv", "linear")
GRADIENTS = {kind: ("dx", "dw", "db") if kind in HAS_PARAMS else ("dx",) for kind in KINDS}  # what backward sets
OVERFIT_THRESHOLD = 0.9


# -- what torch computes --------------------------------------------------------------------------
def _torch_out(kind: str, hyper: dict, x, w=None, b=None):
    import torch.nn.functional as F

    if kind == "conv":
        return F.conv2d(x, w, b, stride=hyper["stride"], padding=hyper["padding"])
    if kind == "pool":
        return F.max_pool2d(x, hyper["kernel_size"], hyper["stride"])
    if kind == "relu":
        return F.relu(x)
    if kind == "linear":
        return F.linear(x.flatten(1), w.T, b)  # the course's Linear keeps weight as [in_dim, out_dim]
    raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")


def torch_reference(kind: str, hyper: dict, x: np.ndarray, dout: np.ndarray | None = None,
                    weight: np.ndarray | None = None, bias: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``out`` (and with ``dout``: ``dx``, ``dw``, ``db``) from torch in float64 with autograd.

    x: (N, ...) the layer's input; dout: the shape of ``out``; weight/bias: for conv and linear.
    """
    import torch

    params = kind in HAS_PARAMS
    xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    wt = torch.tensor(np.asarray(weight, dtype=np.float64), requires_grad=True) if params else None
    bt = torch.tensor(np.asarray(bias, dtype=np.float64), requires_grad=True) if params else None
    out = _torch_out(kind, hyper, xt, wt, bt)
    result = {"out": out.detach().numpy()}
    if dout is not None:
        out.backward(torch.tensor(np.asarray(dout, dtype=np.float64)))
        result["dx"] = xt.grad.numpy()
        if params:
            result["dw"], result["db"] = wt.grad.numpy(), bt.grad.numpy()
    return result


def per_sample_grads(kind: str, hyper: dict, x, dout, weight, bias) -> list[dict[str, np.ndarray]]:
    """The parameter gradients of each image of the batch alone (to recognise a forgotten sum)."""
    return [torch_reference(kind, hyper, x[i:i + 1], dout[i:i + 1], weight, bias) for i in range(len(x))]


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


def out_message(kind: str, hyper: dict, x, out, weight=None, bias=None, tol: float = TOLERANCE,
                context: str = "") -> str | None:
    """Why ``out`` is not the layer's forward output on ``x`` (torch's); None if it is.

    Shapes are compared before values; names a flipped kernel and a forgotten bias.
    """
    name = NAMES[kind]
    message = numeric_message(name, "out", out)
    if message:
        return message
    out = np.asarray(out)
    want = torch_reference(kind, hyper, x, weight=weight, bias=bias)["out"]
    if out.shape != want.shape:
        return (f"{name}.forward: output has shape {out.shape}, expected {want.shape} {context} "
                f"(N, C_out, H_out, W_out) with H_out = (H + 2*padding - kernel_size) // stride + 1."
                if kind in ("conv", "pool") else
                f"{name}.forward: output has shape {out.shape}, expected {want.shape} {context}.")
    if close(out, want, tol):
        return None
    if kind == "conv":
        flipped = torch_reference(kind, hyper, x, weight=np.asarray(weight)[:, :, ::-1, ::-1].copy(), bias=bias)["out"]
        if close(out, flipped, 1e-6):
            return (f"{name}.forward flips the kernel (a true convolution) {context}. Conv2D computes a "
                    f"cross-correlation, like torch.nn.functional.conv2d: weight[f, c, i, j] multiplies the input "
                    f"at (row + i, column + j) of the window, with no flip.")
    if kind in HAS_PARAMS:
        no_bias = want - (bias[None, :, None, None] if kind == "conv" else bias)
        if np.any(bias) and close(out, no_bias, 1e-6):
            return f"{name}.forward forgets the bias {context}."
    return (f"{name}.forward: wrong values {context}: relative error {rel_error(out, want):.2e} "
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
    if (kind == "pool" and np.all(np.isfinite(dx)) and abs(dx.sum() - dout.sum()) <= 1e-6 * (1 + abs(dout.sum()))
            and np.count_nonzero(dx) > np.count_nonzero(want)):
        return (f"MaxPooling.backward spreads the gradient over the window {context}: only the position of the "
                f"maximum influences the output, so only it receives dout.")
    return f"{name}.backward: self.dx is wrong {context}: relative error {rel_error(dx, want):.2e} (allowed {tol:g})."


def backward_message(kind: str, hyper: dict, x, dout, got: dict, want: dict, tol: float, context: str,
                     weight=None, bias=None) -> str | None:
    """The first problem of the gradients ``got`` (dx, and dw, db for conv/linear) against ``want``; None if none."""
    message = dx_message(kind, dout, got.get("dx"), want["dx"], tol, context)
    if message or kind not in HAS_PARAMS:
        return message
    for attr in ("dw", "db"):
        message = numeric_message(NAMES[kind], attr, got.get(attr))
        if message:
            return message
        singles = lambda: [s[attr] for s in per_sample_grads(kind, hyper, x, dout, weight, bias)]  # noqa: E731
        message = param_grad_message(kind, attr, got[attr], want[attr], singles, len(x), tol, context)
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


def check_forward(layer, x: np.ndarray, kind: str | None = None, tol: float = TOLERANCE, context: str = "") -> np.ndarray:
    """``layer.forward(x)`` against torch.nn.functional; returns the output. Raises AssertionError."""
    kind = _kind(layer, kind)
    out = layer.forward(x.copy())
    fail_if(out_message(kind, hyperparameters(layer), x, out, *_params(layer, kind), tol=tol,
                        context=context or f"on input of shape {x.shape}"))
    return np.asarray(out)


def layer_gradients(layer, kind: str) -> dict:
    """What ``backward`` left on the layer: dx, and dw, db for a layer with parameters."""
    return {attr: getattr(layer, attr, None) for attr in GRADIENTS[kind]}


def check_backward(layer, x: np.ndarray, dout: np.ndarray | None = None, kind: str | None = None,
                   tol: float = NUMERIC_TOLERANCE, seed: int = 0) -> dict[str, float]:
    """``layer.backward`` against numeric gradients (central differences) of ``sum(forward(x) * dout)``.

    Returns the relative errors ``{"dx": .., "dw": .., "db": ..}``; raises AssertionError with the cause.
    """
    kind = _kind(layer, kind)
    x = np.array(x, dtype=np.float64)
    out = np.asarray(layer.forward(x.copy()))
    if dout is None:
        dout = np.random.default_rng(seed).normal(size=out.shape)
    numeric = {"dx": eval_numerical_gradient_array(lambda _: layer.forward(x), x, dout)}
    if kind in HAS_PARAMS:
        numeric["dw"] = eval_numerical_gradient_array(lambda _: layer.forward(x), layer.weight, dout)
        numeric["db"] = eval_numerical_gradient_array(lambda _: layer.forward(x), layer.bias, dout)
    layer.forward(x.copy())
    layer.backward(dout)  # after the numeric passes, which overwrote the cache
    got = layer_gradients(layer, kind)
    context = f"when compared with numeric gradients on an input of shape {x.shape}"
    fail_if(backward_message(kind, hyperparameters(layer), x, dout, got, numeric, tol, context, *_params(layer, kind)))
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


def torch_sgd_trajectory(problem: dict, learning_rate: float = 0.1, reg: float = 0.05, momentum: float = 0.9,
                         bias_reg: bool = False) -> dict[str, np.ndarray]:
    """The same two steps with ``torch.optim.SGD`` (weight decay on weights only unless ``bias_reg``)."""
    import torch

    n = len(SGD_SHAPES)
    weights = [torch.tensor(np.asarray(problem[f"weight{i}"], dtype=np.float64), requires_grad=True) for i in range(n)]
    biases = [torch.tensor(np.asarray(problem[f"bias{i}"], dtype=np.float64), requires_grad=True) for i in range(n)]
    # torch's momentum buffer b = momentum*b + g, p -= lr*b is our v = momentum*v - lr*g, p += v.
    optimizer = torch.optim.SGD([{"params": weights, "weight_decay": reg},
                                 {"params": biases, "weight_decay": reg if bias_reg else 0.0}],
                                lr=learning_rate, momentum=momentum)
    out = {}
    for step in (1, 2):
        for i, (w, b) in enumerate(zip(weights, biases)):
            w.grad, b.grad = torch.tensor(problem[f"step{step}_dw{i}"]), torch.tensor(problem[f"step{step}_db{i}"])
        optimizer.step()
        for i, (w, b) in enumerate(zip(weights, biases)):
            out[f"step{step}_weight{i}"] = w.detach().numpy().copy()
            out[f"step{step}_bias{i}"] = b.detach().numpy().copy()
    return out


def _matches(got, want, keys=None, tol=1e-9):
    keys = keys or want.keys()
    return all(k in got and close(got[k], want[k], tol) for k in keys)


def sgd_message(got: dict, problem: dict, want: dict | None = None, tol: float = TOLERANCE,
                learning_rate: float = 0.1, reg: float = 0.05, momentum: float = 0.9) -> str | None:
    """Why the trajectory ``got`` (:func:`sgd_trajectory`'s keys) differs from ``want``; None if it does not.

    ``want`` defaults to torch's trajectory on ``problem``; the usual mistakes are recognised by
    comparing with torch's trajectory for that mistake.
    """
    want = torch_sgd_trajectory(problem, learning_rate, reg, momentum) if want is None else want
    if _matches(got, want, tol=tol):
        return None
    if _matches(got, torch_sgd_trajectory(problem, learning_rate, reg, momentum, bias_reg=True)):
        return ("SGD regularizes the biases too: apply reg * w to the weights only (module.weight); "
                "biases are not regularized.")
    if _matches(got, torch_sgd_trajectory(problem, learning_rate, 0.0, momentum)):
        return "SGD ignores the regularization: the weights' gradient is dw + reg * w."
    if _matches(got, torch_sgd_trajectory(problem, learning_rate, reg, 0.0)):
        return ("SGD ignores the momentum: keep a velocity per parameter, v = momentum * v - "
                "learning_rate * (dw + reg * w), then w += v.")
    if _matches(got, want, [k for k in want if k.startswith("step1")], tol):
        return ("SGD's first update is right but the second is wrong: keep each parameter's velocity "
                "between calls to update (e.g. in a dict on the optimizer), one velocity per parameter.")
    bad = next(k for k in want if k not in got or not close(got[k], want[k], tol))
    if bad not in got:
        detail = "missing"
    elif np.shape(got[bad]) != np.shape(want[bad]):
        detail = f"shape {np.shape(got[bad])}, expected {np.shape(want[bad])}"
    else:
        detail = f"relative error {rel_error(got[bad], want[bad]):.2e}"
    return (f"SGD: {bad.replace('_', ' ')} is wrong ({detail}). Expected v = momentum * v - "
            f"learning_rate * (dw + reg * w) for weights (no reg for biases), then w += v.")


def check_sgd(sgd_class: Callable, seed: int = 0, **settings) -> None:
    """Two updates against torch.optim.SGD (weight decay on weights only, same momentum form).

    ``settings``: learning_rate, reg, momentum (default ``SGD_SETTINGS``).
    """
    problem = sgd_problem(seed)
    settings = {**SGD_SETTINGS, **settings}
    fail_if(sgd_message(sgd_trajectory(sgd_class, problem, **settings), problem, **settings))


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
