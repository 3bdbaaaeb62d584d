"""Softmax followed by the mean cross-entropy over the batch."""
from __future__ import annotations

import numpy as np


class SoftmaxCrossEntropy:
    """``forward(x, y) -> (probs, loss)``; ``backward()`` sets ``dx`` = d loss / d scores.

    x: scores [N, C]; y: integer labels [N]. The loss is the mean over the batch, so ``dx``
    carries the factor 1/N and the layers below simply sum their images' contributions.
    """

    def __init__(self):
        self.cache = None
        self.dx = None

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        shifted = x - x.max(axis=1, keepdims=True)  # no overflow in exp
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        probs = np.exp(log_probs)
        n = x.shape[0]
        loss = float(-log_probs[np.arange(n), y].mean())
        self.cache = (probs, y)
        return probs, loss

    def backward(self) -> None:
        probs, y = self.cache
        n = probs.shape[0]
        dx = probs.copy()
        dx[np.arange(n), y] -= 1.0
        self.dx = dx / n
