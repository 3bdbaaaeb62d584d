"""Item analysis of a class's scores: how hard each test or question was and how well it separates students.

For an item (a test cell, or a question: the tests of one solution cell added up) scored for every
student: ``mean`` points, ``mean_share`` (mean / points: 1 is easy, 0 is hard), the share of students
with ``zero`` points and with ``full`` marks, and the ``discrimination`` index: the correlation of
the item's score with the rest of the total (the total minus the item), across students. Near 0 or
negative, the item does not go with the rest of the assignment (a test that measures something
else, or that is broken); empty when every student scored the same on it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def item_scores(tests: pd.DataFrame, by: str = "test") -> tuple[pd.DataFrame, pd.Series]:
    """``tests`` (student, notebook, ``by``, score, max_score) as a students x items table of points
    (columns ``(notebook, item)``), and each item's points."""
    scores = tests.pivot_table(index="student", columns=["notebook", by], values="score", aggfunc="sum", fill_value=0.0)
    maxima = tests.drop_duplicates(["notebook", "test"]).groupby(["notebook", by])["max_score"].sum()
    return scores, maxima.reindex(scores.columns)


def discrimination(item: pd.Series, total: pd.Series) -> float:
    """Correlation of ``item`` with ``total - item`` (both indexed by student); NaN when either is constant."""
    rest = total.reindex(item.index) - item
    if item.std() == 0 or rest.std() == 0 or len(item) < 3:
        return float("nan")
    return float(np.corrcoef(item.to_numpy(float), rest.to_numpy(float))[0, 1])


def item_statistics(scores: pd.DataFrame, maxima: pd.Series, total: pd.Series) -> pd.DataFrame:
    """One row per item of ``scores`` (students x items), hardest first: points, mean, mean_share, zero, full,
    discrimination. ``total``: each student's total points (hand-graded answers included)."""
    rows = []
    for column in scores.columns:
        item, points = scores[column], float(maxima[column])
        rows.append({"notebook": column[0], "item": column[1], "points": points, "mean": item.mean(),
                     "mean_share": item.mean() / points if points else float("nan"),
                     "zero": float((item <= 0).mean()), "full": float((item >= points - 1e-9).mean()),
                     "discrimination": discrimination(item, total)})
    table = pd.DataFrame(rows, columns=["notebook", "item", "points", "mean", "mean_share", "zero", "full",
                                        "discrimination"])
    return table.sort_values(["mean_share", "notebook", "item"]).reset_index(drop=True)
