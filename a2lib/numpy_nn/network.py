"""A network as a list of numpy layers followed by a loss."""
from __future__ import annotations

import numpy as np


class ConvNet:
    """``ConvNet(modules, criterion)``: the layers in order, then the loss (e.g. SoftmaxCrossEntropy).

    ``forward(x, y) -> (probs, loss)`` runs the layers and the loss; ``backward()`` runs the loss's
    backward, then every layer's in reverse order, so each layer ends up with its ``dx`` (and
    ``dw``/``db``). An optimizer then walks ``model.modules``.
    """

    def __init__(self, modules, criterion):
        self.modules = list(modules)
        self.criterion = criterion

    def scores(self, x: np.ndarray) -> np.ndarray:
        for module in self.modules:
            x = module.forward(x)
        return x

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        return self.criterion.forward(self.scores(x), y)

    def backward(self) -> None:
        self.criterion.backward()
        dout = self.criterion.dx
        for module in reversed(self.modules):
            module.backward(dout)
            dout = module.dx

    def predict(self, x: np.ndarray, batch_size: int = 250) -> np.ndarray:
        """Predicted labels [N], computed in batches."""
        return np.concatenate([self.scores(x[i:i + batch_size]).argmax(axis=1) for i in range(0, len(x), batch_size)])

    def __repr__(self) -> str:
        inner = "\n".join(f"  {m!r}" for m in self.modules)
        return f"ConvNet(\n{inner}\n  {type(self.criterion).__name__}()\n)"
