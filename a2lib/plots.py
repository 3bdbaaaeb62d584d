"""Figures the notebooks and the grader's feedback draw (seaborn/matplotlib).

Each function draws one figure on axes of its own and, given ``save=PATH``, also writes it as PNG. In a
notebook it shows the figure once and closes it, returning None (a returned figure in a cell's last line
would be shown a second time); elsewhere (scripts, tests, the grader) it returns the ``Figure``.
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


def _in_notebook() -> bool:
    """True in a Jupyter kernel with an inline backend (JupyterLab, Colab)."""
    import sys

    return "ipykernel" in sys.modules and "inline" in matplotlib.get_backend().lower()


def _finish(fig, save, show: bool | None = None):
    """Lay out, save where asked; in a notebook show the figure once, close it and return None, else return it."""
    fig.tight_layout()
    if save:
        fig.savefig(save, dpi=120)
    if _in_notebook() if show is None else show:
        from IPython.display import display

        display(fig)
        plt.close(fig)
        return None
    return fig


def _history_frame(history) -> pd.DataFrame:
    if isinstance(history, pd.DataFrame):
        return history
    if hasattr(history, "df"):
        return history.df
    return pd.DataFrame(history)


def learning_curves(histories, save=None, title: str | None = None, show: bool | None = None):
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
    return _finish(fig, save, show)


def per_class_bars(results: Mapping[str, pd.Series], save=None, title: str = "Per-class accuracy",
                   show: bool | None = None):
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
    return _finish(fig, save, show)


def confusion_heatmap(confusion: pd.DataFrame, normalize: bool = True, save=None, title: str = "Confusion matrix",
                      show: bool | None = None):
    """Heatmap of a confusion matrix (rows true class, columns predicted), row-normalized by default."""
    values = confusion.div(confusion.sum(axis=1).where(lambda s: s > 0), axis=0) if normalize else confusion
    fig, ax = plt.subplots(figsize=(7, 6))
    sns.heatmap(values, annot=True, fmt=".2f" if normalize else "d", cmap="Blues", cbar=False, ax=ax,
                vmin=0, vmax=1 if normalize else None)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return _finish(fig, save, show)


def sample_images(data, per_class: int = 8, save=None, title: str = "Sample training images, one row per class",
                  show: bool | None = None):
    """The first ``per_class`` images of each class of ``data`` (an ImageSet: uint8 images [N, 3, H, W])."""
    import numpy as np

    classes = list(data.classes)
    labels = np.asarray(data.labels)
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class * 0.9, len(classes) * 0.95), squeeze=False)
    for row, name in enumerate(classes):
        chosen = np.flatnonzero(labels == row)[:per_class]
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([]), ax.set_yticks([])
            ax.spines[:].set_visible(False)
            if col < len(chosen):
                ax.imshow(np.asarray(data.images[chosen[col]]).transpose(1, 2, 0))
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    fig.suptitle(title)
    return _finish(fig, save, show)


def class_counts(counts: pd.Series, save=None, title: str = "Training images per class (log scale)", log: bool = True,
                 show: bool | None = None):
    """Bars of images per class (``counts`` indexed by class name), on a log scale by default: the long tail."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    sns.barplot(x=[str(c) for c in counts.index], y=counts.to_numpy(), color="tab:blue", ax=ax)
    ax.set(yscale="log" if log else "linear", title=title, xlabel="", ylabel="images")
    ax.tick_params(axis="x", rotation=45)
    return _finish(fig, save, show)


def accuracy_against_counts(results: Mapping[str, pd.Series], counts: pd.Series, save=None,
                            title: str = "Per-class accuracy against training images", show: bool | None = None):
    """Per-class accuracy of several runs (name -> Series by class) against the training images of each class
    (``counts`` by class), a log x-axis: how accuracy follows the long tail, run by run."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, per_class in results.items():
        ax.plot(counts.reindex(per_class.index).to_numpy(), per_class.to_numpy(), marker="o", label=name)
    ax.set(xscale="log", ylim=(0, 1), xlabel="training images of the class (log scale)", ylabel="test accuracy",
           title=title)
    ax.legend(fontsize="small")
    return _finish(fig, save, show)
