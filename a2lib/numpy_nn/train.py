"""Mini-batch training of a numpy ConvNet with any optimizer that has ``update(model)``."""
from __future__ import annotations

import time
from typing import Iterator

import numpy as np
import pandas as pd


def iterate_minibatches(n: int, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    """Index arrays of the batches of one epoch (shuffled when ``rng`` is given)."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.predict(x) == y).mean())


def fit(model, optimizer, x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None, epochs: int = 10, batch_size: int = 64, seed: int = 0,
        progress: bool = True) -> pd.DataFrame:
    """Train ``model`` (a :class:`ConvNet`) for ``epochs`` epochs; return the per-epoch history.

    Columns: epoch, train_loss (mean over the epoch's batches), train_acc (measured after the
    epoch), val_loss, val_acc (NaN without validation data), seconds. The DataFrame is what
    :func:`a2lib.plots.learning_curves` draws.
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    rows = []
    for epoch in tqdm(range(1, epochs + 1), desc="epochs", disable=not progress, leave=False):
        start = time.perf_counter()
        losses, sizes = [], []
        for idx in iterate_minibatches(len(x), batch_size, rng):
            _, loss = model.forward(x[idx], y[idx])
            model.backward()
            optimizer.update(model)
            losses.append(loss)
            sizes.append(len(idx))
        row = {"epoch": epoch, "train_loss": float(np.average(losses, weights=sizes)),
               "train_acc": accuracy(model, x, y), "val_loss": np.nan, "val_acc": np.nan}
        if x_val is not None:
            row["val_loss"] = _mean_loss(model, x_val, y_val, batch_size)
            row["val_acc"] = accuracy(model, x_val, y_val)
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_loss(model, x, y, batch_size):
    total = 0.0
    for idx in iterate_minibatches(len(x), max(batch_size, 250)):
        _, loss = model.forward(x[idx], y[idx])
        total += loss * len(idx)
    return total / len(x)
