"""The grader's own layers and optimizer for notebook 2: torch in float64 with autograd, in the trusted process.

What the hidden tests (and the digests of the visible checks) compare the student's numbers with.
The student package holds none of this: a function returning a layer's ``out, dx, dw, db`` would be
an answer oracle.
"""
from __future__ import annotations

import numpy as np

from a2lib.checks.numpy_nn import HAS_PARAMS, KINDS, SGD_SHAPES, Expected


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


def forward_expected(kind: str, hyper: dict, x, weight=None, bias=None) -> Expected:
    """The right forward output, and those of a flipped kernel and a forgotten bias (conv, linear)."""
    out = torch_reference(kind, hyper, x, weight=weight, bias=bias)["out"]
    mistakes = {}
    if kind == "conv":
        flipped = np.asarray(weight)[:, :, ::-1, ::-1].copy()
        mistakes["flipped"] = {"out": torch_reference(kind, hyper, x, weight=flipped, bias=bias)["out"]}
    if kind in HAS_PARAMS and np.any(bias):
        mistakes["no_bias"] = {"out": out - (np.asarray(bias)[None, :, None, None] if kind == "conv" else bias)}
    return Expected.exact({"out": out}, **mistakes)


def per_sample_grads(kind: str, hyper: dict, x, dout, weight, bias) -> list[dict[str, np.ndarray]]:
    """The parameter gradients of each image of the batch alone (to recognise a forgotten sum)."""
    return [torch_reference(kind, hyper, x[i:i + 1], dout[i:i + 1], weight, bias) for i in range(len(x))]


def torch_sgd_trajectory(problem: dict, learning_rate: float = 0.1, reg: float = 0.05, momentum: float = 0.9,
                         bias_reg: bool = False) -> dict[str, np.ndarray]:
    """Two steps of ``torch.optim.SGD`` on ``problem`` (``a2lib.checks.numpy_nn.sgd_problem``): the parameters
    after each (weight decay on weights only unless ``bias_reg``)."""
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


def sgd_expected(problem: dict, learning_rate: float = 0.1, reg: float = 0.05, momentum: float = 0.9,
                 right: dict | None = None) -> Expected:
    """torch's trajectory (or ``right``), with those of the usual mistakes: biases regularized, no
    regularization, no momentum."""
    settings = dict(learning_rate=learning_rate, reg=reg, momentum=momentum)
    return Expected.exact(torch_sgd_trajectory(problem, **settings) if right is None else right,
                          bias_reg=torch_sgd_trajectory(problem, **settings, bias_reg=True),
                          no_reg=torch_sgd_trajectory(problem, learning_rate, 0.0, momentum),
                          no_momentum=torch_sgd_trajectory(problem, learning_rate, reg, 0.0))
