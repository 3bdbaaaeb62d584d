"""Checks for notebook 2 (the numpy ConvNet): the student's layers against numbers we trust.

* ``check_forward`` / ``check_backward``: the visible checks, on small fixed inputs, against
  ``torch.nn.functional`` (forward) and against numeric gradients (backward);
* ``check_against_torch``: the hidden tests, random shapes, strides, paddings and batch sizes in
  float64, forward and backward against ``torch.nn.functional`` with autograd, relative error
  at most ``TOLERANCE``;
* ``check_sgd``: two updates against ``torch.optim.SGD`` (weights regularized, biases not);
  ``sgd_trajectory`` runs the same two updates with seeded values for the reference comparison.

Every failure raises ``AssertionError`` with the cause in plain words where it can be recognised
(flipped kernel, forgotten batch sum, batch average, mask from the wrong sign, regularized bias...).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..numpy_nn import ConvNet, Module, SoftmaxCrossEntropy, eval_numerical_gradient_array, rel_error

TOLERANCE = 1e-6          # hidden tests: float64 against torch
NUMERIC_TOLERANCE = 1e-6  # visible tests: against central differences (h = 1e-5)
KINDS = ("conv", "pool", "relu", "linear")


# -- what torch computes --------------------------------------------------------------------------
def _torch_out(kind: str, layer, x, w=None, b=None):
    import torch.nn.functional as F

    if kind == "conv":
        return F.conv2d(x, w, b, stride=layer.stride, padding=layer.padding)
    if kind == "pool":
        return F.max_pool2d(x, layer.kernel_size, layer.stride)
    if kind == "relu":
        return F.relu(x)
    if kind == "linear":
        return F.linear(x.flatten(1), w.T, b)  # the course's Linear keeps weight as [in_dim, out_dim]
    raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")


def torch_reference(kind: str, layer, x: np.ndarray, dout: np.ndarray | None = None,
                    weight: np.ndarray | None = None, bias: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``out`` (and with ``dout``: ``dx``, ``dw``, ``db``) from torch in float64 with autograd.

    The layer's hyperparameters (kernel_size, stride, padding) are read from ``layer``; its
    parameters are ``weight``/``bias`` when given, else the layer's own.
    """
    import torch

    params = kind in ("conv", "linear")
    if params:
        weight = layer.weight if weight is None else weight
        bias = layer.bias if bias is None else bias
    xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    wt = torch.tensor(np.asarray(weight, dtype=np.float64), requires_grad=True) if params else None
    bt = torch.tensor(np.asarray(bias, dtype=np.float64), requires_grad=True) if params else None
    out = _torch_out(kind, layer, xt, wt, bt)
    result = {"out": out.detach().numpy()}
    if dout is not None:
        out.backward(torch.tensor(np.asarray(dout, dtype=np.float64)))
        result["dx"] = xt.grad.numpy()
        if params:
            result["dw"], result["db"] = wt.grad.numpy(), bt.grad.numpy()
    return result


# -- diagnosis ------------------------------------------------------------------------------------
def _name(layer) -> str:
    return type(layer).__name__


def _close(got, want, tol) -> bool:
    got = np.asarray(got)
    return got.shape == np.shape(want) and np.all(np.isfinite(got)) and rel_error(got, want) <= tol


def _need_array(layer, attr: str, value, want_shape, step: str):
    if value is None:
        raise AssertionError(f"{_name(layer)}.{step} did not set self.{attr}: store the result in self.{attr}.")
    value = np.asarray(value)
    if value.dtype == object or not np.issubdtype(value.dtype, np.number):
        raise AssertionError(f"{_name(layer)}: self.{attr} is not a numeric array (got {type(value).__name__}).")
    return value


def _shape_message(layer, what, got_shape, want_shape, n):
    msg = f"{_name(layer)}: {what} has shape {tuple(got_shape)}, expected {tuple(want_shape)}"
    if tuple(got_shape) == (n, *want_shape):
        msg += (f". It keeps a batch axis of size {n}: the gradient of a parameter is the SUM of every image's "
                f"contribution, so sum over the batch axis")
    elif len(got_shape) == len(want_shape) and tuple(got_shape) == tuple(reversed(want_shape)):
        msg += " (transposed)"
    return msg + "."


def _param_grad_message(layer, attr, got, want, per_sample, n, tol, context):
    """Why the gradient ``got`` of a parameter differs from ``want`` (None when it does not).

    ``per_sample()`` returns the gradient of each image alone (called only when ``got`` is wrong).
    """
    if _close(got, want, tol):
        return None
    if got.shape != want.shape:
        return _shape_message(layer, f"self.{attr}", got.shape, want.shape, n)
    if n > 1 and _close(got, want / n, 1e-6):
        return (f"{_name(layer)}: self.{attr} is the batch AVERAGE of the images' gradients, {context}. The "
                f"upstream gradient dout already carries the 1/N of the mean loss: sum over the batch, do not average.")
    for i, single in enumerate(per_sample() if n > 1 else []):
        if n > 1 and _close(got, single, 1e-6):
            return (f"{_name(layer)}: self.{attr} holds the gradient of image {i} only (of the {n} in the batch), "
                    f"{context}. You forgot to sum over the batch: every image contributes to the gradient of a "
                    f"shared parameter (in a loop, accumulate with += instead of assigning).")
    return (f"{_name(layer)}: self.{attr} is wrong {context}: relative error {rel_error(got, want):.2e} "
            f"(allowed {tol:g}).")


def _out_message(kind, layer, x, out, want, tol, context):
    if out is None:
        return f"{_name(layer)}.forward returned None: return the output array."
    out = np.asarray(out)
    if out.shape != want.shape:
        return (f"{_name(layer)}.forward: output has shape {out.shape}, expected {want.shape} {context} "
                f"(N, C_out, H_out, W_out) with H_out = (H + 2*padding - kernel_size) // stride + 1."
                if kind in ("conv", "pool") else
                f"{_name(layer)}.forward: output has shape {out.shape}, expected {want.shape} {context}.")
    if _close(out, want, tol):
        return None
    if kind == "conv":
        flipped = torch_reference(kind, layer, x, weight=layer.weight[:, :, ::-1, ::-1].copy())["out"]
        if _close(out, flipped, 1e-6):
            return (f"{_name(layer)}.forward flips the kernel (a true convolution) {context}. Conv2D computes a "
                    f"cross-correlation, like torch.nn.functional.conv2d: weight[f, c, i, j] multiplies the input "
                    f"at (row + i, column + j) of the window, with no flip.")
    if kind in ("conv", "linear"):
        no_bias = want - (layer.bias[None, :, None, None] if kind == "conv" else layer.bias)
        if np.any(layer.bias) and _close(out, no_bias, 1e-6):
            return f"{_name(layer)}.forward forgets the bias {context}."
    return (f"{_name(layer)}.forward: wrong values {context}: relative error {rel_error(out, want):.2e} "
            f"(allowed {tol:g}).")


def _dx_message(kind, layer, x, dout, dx, want, tol, context):
    if dx.shape != want.shape:
        return (f"{_name(layer)}.backward: self.dx has shape {dx.shape}, expected {want.shape} (the shape of the "
                f"input x{', unflattened' if kind == 'linear' else ''}) {context}.")
    if _close(dx, want, tol):
        return None
    if kind == "relu":
        if _close(dx, dout, 1e-9):
            return (f"ReLU.backward lets the whole gradient through {context}: where the input x <= 0 the output "
                    f"does not depend on x, so dx must be 0 there (mask dout with x > 0).")
        if _close(dx, dout * (dout > 0), 1e-9):
            return (f"ReLU.backward masks with the sign of dout {context}: the mask comes from the forward input "
                    f"x (keep x in self.cache and use dout * (x > 0)).")
    if kind == "pool" and np.all(np.isfinite(dx)) and np.isclose(dx.sum(), dout.sum()) and np.count_nonzero(dx) > np.count_nonzero(want):
        return (f"MaxPooling.backward spreads the gradient over the window {context}: only the position of the "
                f"maximum influences the output, so only it receives dout.")
    return (f"{_name(layer)}.backward: self.dx is wrong {context}: relative error {rel_error(dx, want):.2e} "
            f"(allowed {tol:g}).")


def _per_sample(kind, layer, x, dout):
    """The parameter gradients of each image of the batch alone (to recognise a forgotten sum)."""
    return [torch_reference(kind, layer, x[i:i + 1], dout[i:i + 1]) for i in range(len(x))]


# -- the checks ------------------------------------------------------------------------------------
def _kind(layer, kind):
    if kind is None:
        names = {"Conv2D": "conv", "MaxPooling": "pool", "ReLU": "relu", "Linear": "linear"}
        kind = next((names[c.__name__] for c in type(layer).__mro__ if c.__name__ in names), None)
    if kind not in KINDS:
        raise ValueError(f"say which kind of layer this is: one of {KINDS}")
    return kind


def check_forward(layer, x: np.ndarray, kind: str | None = None, tol: float = TOLERANCE, context: str = "") -> np.ndarray:
    """``layer.forward(x)`` against torch.nn.functional; returns the output. Raises AssertionError."""
    kind = _kind(layer, kind)
    out = layer.forward(x.copy())
    want = torch_reference(kind, layer, x)["out"]
    message = _out_message(kind, layer, x, out, want, tol, context or f"on input of shape {x.shape}")
    if message:
        raise AssertionError(message)
    return np.asarray(out)


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
    layer.backward(dout)
    numeric = {"dx": eval_numerical_gradient_array(lambda _: layer.forward(x), x, dout)}
    if kind in ("conv", "linear"):
        numeric["dw"] = eval_numerical_gradient_array(lambda _: layer.forward(x), layer.weight, dout)
        numeric["db"] = eval_numerical_gradient_array(lambda _: layer.forward(x), layer.bias, dout)
    layer.forward(x.copy())
    layer.backward(dout)  # again: the numeric passes overwrote the cache
    context = f"when compared with numeric gradients on an input of shape {x.shape}"
    errors = {}
    dx = np.asarray(_need_array(layer, "dx", layer.dx, x.shape, "backward"))
    message = _dx_message(kind, layer, x, dout, dx, numeric["dx"], tol, context)
    if message:
        raise AssertionError(message)
    errors["dx"] = rel_error(dx, numeric["dx"])
    if kind in ("conv", "linear"):
        for attr, param in (("dw", "weight"), ("db", "bias")):
            got = _need_array(layer, attr, getattr(layer, attr, None), getattr(layer, param).shape, "backward")
            singles = lambda: [s[attr] for s in _per_sample(kind, layer, x, dout)]  # noqa: E731
            message = _param_grad_message(layer, attr, got, numeric[attr], singles, len(x), tol, context)
            if message:
                raise AssertionError(message)
            errors[attr] = rel_error(got, numeric[attr])
    return errors


def random_cases(kind: str, n_cases: int, seed: int) -> list[dict]:
    """Random layer configurations and input shapes (batch sizes 1-5, odd sizes, strides, paddings)."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n_cases):
        n = int(rng.integers(1, 6))
        if kind == "conv":
            k, s, p = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
            c_in, c_out = int(rng.integers(1, 5)), int(rng.integers(1, 6))
            h, w = int(rng.integers(max(1, k - 2 * p), 12)), int(rng.integers(max(1, k - 2 * p), 12))
            cases.append(dict(args=(c_in, c_out, k, s, p), x_shape=(n, c_in, h, w)))
        elif kind == "pool":
            k, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            c, h, w = int(rng.integers(1, 5)), int(rng.integers(k, 12)), int(rng.integers(k, 12))
            cases.append(dict(args=(k, s), x_shape=(n, c, h, w)))
        elif kind == "relu":
            shape = tuple(int(d) for d in rng.integers(1, 7, size=int(rng.integers(2, 5))))
            cases.append(dict(args=(), x_shape=(n, *shape[1:])))
        elif kind == "linear":
            feature_shape = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 4))))
            cases.append(dict(args=(int(np.prod(feature_shape)), int(rng.integers(1, 8))), x_shape=(n, *feature_shape)))
    return cases


def _describe(kind, args, x_shape):
    names = {"conv": ("in_channels", "out_channels", "kernel_size", "stride", "padding"),
             "pool": ("kernel_size", "stride"), "relu": (), "linear": ("in_dim", "out_dim")}[kind]
    settings = ", ".join(f"{k}={v}" for k, v in zip(names, args))
    return f"for a layer ({settings}) on input of shape {x_shape}" if settings else f"on input of shape {x_shape}"


def check_against_torch(layer_class: Callable, kind: str, n_cases: int = 12, seed: int = 0,
                        tol: float = TOLERANCE) -> float:
    """Forward and backward of ``layer_class`` on random cases against torch (float64, autograd).

    Returns the largest relative error seen; raises AssertionError naming the case and the cause.
    """
    rng = np.random.default_rng(seed + 1)
    worst = 0.0
    for case in random_cases(kind, n_cases, seed):
        layer = layer_class(*case["args"])
        context = _describe(kind, case["args"], case["x_shape"])
        if kind in ("conv", "linear"):
            layer.weight = rng.normal(size=np.shape(layer.weight))
            layer.bias = rng.normal(size=np.shape(layer.bias))
        x = rng.normal(size=case["x_shape"])
        out = layer.forward(x.copy())
        want = torch_reference(kind, layer, x)["out"]
        message = _out_message(kind, layer, x, out, want, tol, context)
        if message:
            raise AssertionError(message)
        dout = rng.normal(size=want.shape)
        ref = torch_reference(kind, layer, x, dout)
        layer.backward(dout.copy())
        dx = _need_array(layer, "dx", layer.dx, x.shape, "backward")
        message = _dx_message(kind, layer, x, dout, dx, ref["dx"], tol, context)
        if message:
            raise AssertionError(message)
        worst = max(worst, rel_error(out, want), rel_error(dx, ref["dx"]))
        if kind in ("conv", "linear"):
            for attr, param in (("dw", "weight"), ("db", "bias")):
                got = _need_array(layer, attr, getattr(layer, attr, None), np.shape(getattr(layer, param)), "backward")
                singles = lambda: [s[attr] for s in _per_sample(kind, layer, x, dout)]  # noqa: E731
                message = _param_grad_message(layer, attr, got, ref[attr], singles, len(x), tol, context)
                if message:
                    raise AssertionError(message)
                worst = max(worst, rel_error(got, ref[attr]))
    return worst


# -- SGD ------------------------------------------------------------------------------------------
class _Parameters(Module):
    """A stand-in layer with a weight and a bias whose gradients the check sets by hand."""

    def __init__(self, weight, bias):
        super().__init__()
        self.weight, self.bias = weight, bias
        self.dw = self.db = None


class _NoParameters(Module):
    """A stand-in layer without parameters (an optimizer must skip it)."""


def _sgd_setup(seed: int):
    rng = np.random.default_rng(seed)
    shapes = [((4, 3), (3,)), ((2, 3, 2, 2), (2,))]
    modules = [_Parameters(rng.normal(size=w), rng.normal(size=b)) for w, b in shapes]
    modules.insert(1, _NoParameters())
    grads = [[(rng.normal(size=w), rng.normal(size=b)) for w, b in shapes] for _ in range(2)]  # per step
    return ConvNet(modules, SoftmaxCrossEntropy()), grads


def sgd_trajectory(sgd_class: Callable, seed: int = 0, learning_rate: float = 0.1, reg: float = 0.05,
                   momentum: float = 0.9) -> dict[str, np.ndarray]:
    """Two ``update`` calls of ``sgd_class(model, learning_rate, reg, momentum)`` on seeded parameters
    and gradients; returns the parameters after each step (``step1_weight0``, ``step2_bias1``...)."""
    model, grads = _sgd_setup(seed)
    optimizer = sgd_class(model, learning_rate=learning_rate, reg=reg, momentum=momentum)
    layers = [m for m in model.modules if isinstance(m, _Parameters)]
    out = {}
    for step, step_grads in enumerate(grads, start=1):
        for layer, (dw, db) in zip(layers, step_grads):
            layer.dw, layer.db = dw.copy(), db.copy()
        optimizer.update(model)
        for i, layer in enumerate(layers):
            out[f"step{step}_weight{i}"] = np.array(layer.weight, dtype=np.float64)
            out[f"step{step}_bias{i}"] = np.array(layer.bias, dtype=np.float64)
    return out


def _torch_sgd_trajectory(seed, learning_rate, reg, momentum, bias_reg=False):
    import torch

    model, grads = _sgd_setup(seed)
    layers = [m for m in model.modules if isinstance(m, _Parameters)]
    weights = [torch.tensor(m.weight, requires_grad=True) for m in layers]
    biases = [torch.tensor(m.bias, requires_grad=True) for m in layers]
    # torch's momentum buffer b = momentum*b + g, p -= lr*b is our v = momentum*v - lr*g, p += v.
    optimizer = torch.optim.SGD([{"params": weights, "weight_decay": reg},
                                 {"params": biases, "weight_decay": reg if bias_reg else 0.0}],
                                lr=learning_rate, momentum=momentum)
    out = {}
    for step, step_grads in enumerate(grads, start=1):
        for w, b, (dw, db) in zip(weights, biases, step_grads):
            w.grad, b.grad = torch.tensor(dw), torch.tensor(db)
        optimizer.step()
        for i, (w, b) in enumerate(zip(weights, biases)):
            out[f"step{step}_weight{i}"] = w.detach().numpy().copy()
            out[f"step{step}_bias{i}"] = b.detach().numpy().copy()
    return out


def _matches(got, want, keys=None, tol=1e-9):
    keys = keys or want.keys()
    return all(k in got and _close(got[k], want[k], tol) for k in keys)


def compare_sgd(got: dict, want: dict, tol: float = TOLERANCE, seed: int = 0, learning_rate: float = 0.1,
                reg: float = 0.05, momentum: float = 0.9) -> None:
    """Raise AssertionError explaining how the trajectory ``got`` differs from ``want``."""
    if _matches(got, want, tol=tol):
        return
    step1 = [k for k in want if k.startswith("step1")]
    if _matches(got, _torch_sgd_trajectory(seed, learning_rate, reg, momentum, bias_reg=True)):
        raise AssertionError("SGD regularizes the biases too: apply reg * w to the weights only (module.weight); "
                             "biases are not regularized.")
    if _matches(got, _torch_sgd_trajectory(seed, learning_rate, 0.0, momentum)):
        raise AssertionError("SGD ignores the regularization: the weights' gradient is dw + reg * w.")
    if _matches(got, _torch_sgd_trajectory(seed, learning_rate, reg, 0.0)):
        raise AssertionError("SGD ignores the momentum: keep a velocity per parameter, v = momentum * v - "
                             "learning_rate * (dw + reg * w), then w += v.")
    if _matches(got, want, step1, tol):
        raise AssertionError("SGD's first update is right but the second is wrong: keep each parameter's velocity "
                             "between calls to update (e.g. in a dict on the optimizer), one velocity per parameter.")
    bad = next(k for k in want if k not in got or not _close(got[k], want[k], tol))
    detail = "missing" if bad not in got else f"relative error {rel_error(got[bad], want[bad]):.2e}"
    raise AssertionError(f"SGD: {bad.replace('_', ' ')} is wrong ({detail}). Expected v = momentum * v - "
                         f"learning_rate * (dw + reg * w) for weights (no reg for biases), then w += v.")


def check_sgd(sgd_class: Callable, seed: int = 0, learning_rate: float = 0.1, reg: float = 0.05,
              momentum: float = 0.9) -> None:
    """Two updates against torch.optim.SGD (weight decay on weights only, same momentum form)."""
    got = sgd_trajectory(sgd_class, seed, learning_rate, reg, momentum)
    want = _torch_sgd_trajectory(seed, learning_rate, reg, momentum)
    compare_sgd(got, want, seed=seed, learning_rate=learning_rate, reg=reg, momentum=momentum)
