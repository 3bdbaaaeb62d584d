"""The class report's figures (seaborn on matplotlib's Agg backend), each from one of its tables.

Every function returns a matplotlib Figure; :func:`autograder.pipeline.html_page.figure` embeds it.
Per-class accuracies are on the graded test set, which has as many images of each class (the full
CIFAR-10 test set, or the fast mode's 100 per class), so a model's accuracy is its mean per-class accuracy.
"""
from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")  # no display: figures are written into the page

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

REFERENCE_STYLE = {"color": "crimson", "marker": "D", "s": 30, "zorder": 5, "label": "reference"}


def boxplot(**kwargs):
    """``seaborn.boxplot``, without the deprecation warning seaborn 0.13 triggers in matplotlib 3.11 (``vert``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="vert: bool was deprecated")
        return sns.boxplot(**kwargs)


def total_distribution(grades: pd.DataFrame, notebook_percent: pd.DataFrame):
    """Left: the students' totals (percent of the points); right: each notebook's percent, one box per notebook."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    sns.histplot(grades["percent"], bins=range(0, 105, 5), ax=left)
    median = grades["percent"].median()
    left.axvline(median, color="k", linestyle="--", linewidth=1)
    left.set(xlabel="total (% of the points)", ylabel="students", xlim=(0, 100),
             title=f"{len(grades)} students: median {median:.0f}%, mean {grades['percent'].mean():.0f}%")
    long = notebook_percent.melt(var_name="notebook", value_name="percent")
    boxplot(data=long, x="percent", y="notebook", ax=right, color="lightsteelblue", fliersize=2)
    right.set(xlabel="% of the notebook's points", ylabel="", xlim=(-2, 102), title="per notebook")
    fig.tight_layout()
    return fig


def difficulty(items: pd.DataFrame, title: str):
    """Mean share of the points per item, hardest at the top, coloured by notebook."""
    shown = items.sort_values("mean_share")
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(shown) + 1.2))
    sns.barplot(data=shown, x="mean_share", y="item", hue="notebook", dodge=False, ax=ax)
    ax.set(xlabel="mean share of the points (0: nobody, 1: everybody)", ylabel="", xlim=(0, 1), title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def hint_counts(hints: pd.DataFrame, students: int):
    """How many students each hint (known mistake) was shown to, most frequent at the top."""
    counts = hints.groupby("signature")["student"].nunique().sort_values(ascending=False)
    fig, ax = plt.subplots(figsize=(8, 0.35 * max(len(counts), 1) + 1.2))
    sns.barplot(x=counts.to_numpy(), y=counts.index.to_list(), ax=ax, color="darkorange")
    ax.set(xlabel=f"students (of {students})", ylabel="", title="Known mistakes: the hints that fired")
    fig.tight_layout()
    return fig


def model_accuracy(per_class: pd.DataFrame):
    """Each submitted model's accuracy across students (one box per model), the reference model's as a marker."""
    overall = per_class.groupby(["model", "student"])["accuracy"].mean().reset_index()
    reference = per_class.groupby("model")["reference"].mean()
    order = list(dict.fromkeys(per_class["model"]))
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(order) + 1.2))
    boxplot(data=overall, x="accuracy", y="model", order=order, ax=ax, color="lightsteelblue", fliersize=2)
    ax.scatter(reference.reindex(order).to_numpy(), range(len(order)), **REFERENCE_STYLE)
    ax.set(xlabel="test accuracy", ylabel="", xlim=(0, 1), title="Submitted models against the reference")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def per_class_boxes(per_class: pd.DataFrame, model: str):
    """One model's per-class accuracy across students (a box per class), the reference's as markers."""
    rows = per_class[per_class["model"] == model]
    classes = list(dict.fromkeys(rows["class"]))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    boxplot(data=rows, x="class", y="accuracy", order=classes, ax=ax, color="lightsteelblue", fliersize=2)
    reference = rows.groupby("class")["reference"].first().reindex(classes)
    if reference.notna().any():
        ax.scatter(range(len(classes)), reference.to_numpy(), **REFERENCE_STYLE)
        ax.legend(loc="lower left", fontsize=8)
    ax.set(xlabel="", ylabel="accuracy", ylim=(0, 1), title=f"{model}: {rows['student'].nunique()} students")
    ax.tick_params(axis="x", rotation=40)
    fig.tight_layout()
    return fig


def long_tail(paired: pd.DataFrame, rare: list[str]):
    """Each student's CB-Focal model against their cross-entropy model on the rarest classes (above the
    diagonal: CB-Focal helped); ``paired`` has student, ce_rare, cbfocal_rare."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle="--")
    sns.scatterplot(data=paired, x="ce_rare", y="cbfocal_rare", ax=ax, s=25)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="cross-entropy", ylabel="CB-Focal",
           title=f"Mean accuracy on the rarest classes\n({', '.join(rare)})")
    fig.tight_layout()
    return fig


def grading_time(status: pd.DataFrame):
    """Seconds each submission's latest grading took, by status."""
    timed = status.dropna(subset=["seconds"])
    fig, ax = plt.subplots(figsize=(7, 3))
    if len(timed):
        sns.histplot(data=timed.reset_index(), x="seconds", hue="status", multiple="stack", ax=ax, bins=20)
    ax.set(xlabel="seconds per submission", ylabel="students",
           title=f"Grading time ({len(timed)} of {len(status)} students timed)")
    fig.tight_layout()
    return fig


def hand_spread(hand: pd.DataFrame):
    """Scores of the answers graded by hand (graded ones only), one box and its points per question."""
    graded = hand[hand["graded"]].assign(share=lambda t: t["score"] / t["max_score"].replace(0, np.nan))
    order = list(dict.fromkeys(hand["grade_id"]))
    fig, ax = plt.subplots(figsize=(7, 0.6 * max(len(order), 1) + 1.2))
    if len(graded):
        boxplot(data=graded, x="share", y="grade_id", order=order, ax=ax, color="lightsteelblue", fliersize=0)
        sns.stripplot(data=graded, x="share", y="grade_id", order=order, ax=ax, color="k", size=3, alpha=0.5)
    ax.set(xlabel="share of the points", ylabel="", xlim=(-0.05, 1.05), title="Answers graded by hand")
    fig.tight_layout()
    return fig
