"""Figures the notebooks and the grader's feedback draw (seaborn/matplotlib).

Each function returns a matplotlib ``Figure`` and, given ``save=PATH``, also writes it as PNG.
"""
from __future__ import annotations

import os
from typing import Mapping

import matplotlib

if not os.environ.get("DISPLAY") and "MPLBACKEND" not in os.environ and "ipykernel" not in __import__("sys").modules:
    matplotlib.use("Agg")  # headless runs (CI, the grader) draw to files
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def _finish(fig, save):
    fig.tight_layout()
    if save:
        fig.savefig(save, dpi=120)
    return fig


def _history_frame(history) -> pd.DataFrame:
    if isinstance(history, pd.DataFrame):
        return history
    if hasattr(history, "df"):
        return history.df
    return pd.DataFrame(history)


def learning_curves(histories, save=None, title: str | None = None):
    """Loss and accuracy per epoch, training (solid) and validation (dashed).

    Args:
        histories: a :class:`a2lib.train.History` (or a DataFrame / dict of lists with columns
            epoch, train_loss, train_acc and optionally val_loss, val_acc), or a dict name -> such.
    """
    if not isinstance(histories, Mapping) or "epoch" in histories:
        histories = {"": histories}
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    palette = sns.color_palette(n_colors=max(1, len(histories)))
    for colour, (name, history) in zip(palette, histories.items()):
        df = _history_frame(history)
        label = f"{name} " if name else ""
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
            ax.plot(df["epoch"], df[f"train_{metric}"], color=colour, label=f"{label}train")
            if f"val_{metric}" in df and df[f"val_{metric}"].notna().any():
                ax.plot(df["epoch"], df[f"val_{metric}"], color=colour, linestyle="--", label=f"{label}validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    ax_acc.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return _finish(fig, save)


def per_class_bars(results: Mapping[str, pd.Series], save=None, title: str = "Per-class accuracy"):
    """Per-class accuracy of several runs side by side.

    Args:
        results: run name -> Series of accuracy indexed by class name (e.g. ``Evaluation.per_class``).
    """
    frame = pd.DataFrame(dict(results))
    frame.index.name = "class"
    long = frame.reset_index().melt(id_vars="class", var_name="run", value_name="accuracy")
    fig, ax = plt.subplots(figsize=(max(7, 0.8 * len(frame) * max(1, len(results)) / 2), 4))
    sns.barplot(data=long, x="class", y="accuracy", hue="run", ax=ax)
    ax.set(ylim=(0, 1), title=title, xlabel="")
    ax.tick_params(axis="x", rotation=45)
    return _finish(fig, save)


def confusion_heatmap(confusion: pd.DataFrame, normalize: bool = True, save=None, title: str = "Confusion matrix"):
    """Heatmap of a confusion matrix (rows true class, columns predicted), row-normalized by default."""
    values = confusion.div(confusion.sum(axis=1).where(lambda s: s > 0), axis=0) if normalize else confusion
    fig, ax = plt.subplots(figsize=(7, 6))
    sns.heatmap(values, annot=True, fmt=".2f" if normalize else "d", cmap="Blues", cbar=False, ax=ax,
                vmin=0, vmax=1 if normalize else None)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return _finish(fig, save)
