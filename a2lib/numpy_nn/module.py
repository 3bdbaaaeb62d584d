"""The base class of every numpy layer."""
from __future__ import annotations

import numpy as np

PARAMETERS = {"weight": "dw", "bias": "db"}  # parameter attribute -> its gradient attribute


class Module:
    """A layer with ``forward(x) -> out`` and ``backward(dout)``.

    ``forward`` keeps what ``backward`` needs in ``self.cache``; ``backward`` takes the upstream
    gradient ``dout`` (same shape as ``out``) and sets ``self.dx`` (same shape as ``x``), and for a
    layer with parameters also ``self.dw`` and ``self.db`` (same shapes as ``self.weight`` and
    ``self.bias``). Gradients are of the loss of the whole batch: contributions of the batch's
    images add up.
    """

    def __init__(self):
        self.cache = None
        self.dx = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, dout: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def params(self) -> dict[str, np.ndarray]:
        """The layer's parameters by name (``weight``, ``bias``); empty for a layer without any."""
        return {name: getattr(self, name) for name in PARAMETERS if getattr(self, name, None) is not None}

    def grads(self) -> dict[str, np.ndarray | None]:
        """The gradients of :meth:`params`, by the same names (None before ``backward``)."""
        return {name: getattr(self, PARAMETERS[name], None) for name in self.params()}

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.params().items())
        return f"{type(self).__name__}({shapes})"
