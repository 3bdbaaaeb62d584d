"""The similarity check's page: flagged pairs with their matching slices side by side. It flags; a person decides.

Written to ``<course>/reports/similarity.html``: self-contained, for the instructor only.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from . import html_page as H
from .similarity import SimilarityResult, settings_text
from .winnowing import BINS

CAVEAT = ("<p class=\"note\"><b>This page flags, it never decides.</b> A flagged pair shares an unusual amount of "
          "code or text; that can be honest (code from the lectures or a tutorial, a study group the course allows, a "
          "short answer with one natural form), and copying can go unflagged (rewritten by hand, or copied from "
          "outside the class). Read the matching slices side by side and hear the students before concluding "
          "anything. Students appear by id; nothing here is meant for them.</p>")


def similarity_figure(parts: pd.DataFrame, threshold: float):
    """Every pair of each part by MOSS's measure (shared fingerprints over the smaller one's): one bar chart per part."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = parts[parts["pairs"] > 0]
    fig, axes = plt.subplots(1, max(len(shown), 1), figsize=(3.2 * max(len(shown), 1), 2.6), squeeze=False)
    for ax, (_, row) in zip(axes[0], shown.iterrows()):
        ax.bar(BINS[:-1], row["histogram"], width=BINS[1] - BINS[0], align="edge", color="steelblue")
        ax.axvline(threshold, color="crimson", linestyle="--", linewidth=1)
        ax.set_yscale("symlog")
        ax.set(title=f"{row['part']} ({row['kind']})", xlabel="shared fingerprints", xlim=(0, 1))
    axes[0][0].set_ylabel("pairs of students")
    fig.tight_layout()
    return fig


def students_table(result: SimilarityResult) -> pd.DataFrame:
    """One row per student compared: flagged pairs, the other students, the highest similarity, and the highest
    share of their code found in the instructor's solution."""
    flagged = result.flagged
    rows = []
    for student in result.students:
        mine = flagged[(flagged["student_a"] == student) | (flagged["student_b"] == student)]
        others = sorted((set(mine["student_a"]) | set(mine["student_b"])) - {student})
        solution = result.reference[(result.reference["student"] == student) & (result.reference["kind"] == "code")]
        rows.append({"student": student, "flagged pairs": len(mine), "with": ", ".join(others),
                     "highest similarity": mine["similarity"].max() if len(mine) else float("nan"),
                     "code from the solution": solution["share"].max() if len(solution) else float("nan")})
    return pd.DataFrame(rows).set_index("student")


def side_by_side(result: SimilarityResult) -> str:
    """Each flagged pair of each part: both texts, the matching slices highlighted (copydetect's highlighting)."""
    blocks = []
    for row in result.flagged.itertuples():
        texts = result.slices.get((row.part, row.student_a, row.student_b))
        if texts is None:
            continue
        what = "lower-case words of the answer" if row.kind == "text" else "solution cells"
        blocks.append(
            f"<details><summary><b>{H.esc(row.student_a)}</b> and <b>{H.esc(row.student_b)}</b>: {H.esc(row.part)} "
            f"({what}), similarity {row.similarity_a:.2f} / {row.similarity_b:.2f}, {row.overlap} characters shared"
            f"</summary><div class=\"side\"><div><h4>{H.esc(row.student_a)}</h4><pre>{texts[0]}</pre></div>"
            f"<div><h4>{H.esc(row.student_b)}</h4><pre>{texts[1]}</pre></div></div></details>")
    return "\n".join(blocks) or '<p class="muted">No pair is flagged.</p>'


def render(result: SimilarityResult, course_root) -> str:
    pairs = result.flagged_students()
    close = result.reference[result.reference["share"] >= result.threshold].sort_values(["part", "share"],
                                                                                        ascending=[True, False])
    parts = result.parts.drop(columns=["histogram"])
    intro = (CAVEAT + f"<p>{len(result.students)} students of {H.esc(course_root)}, written "
             f"{datetime.now():%Y-%m-%d %H:%M}. Compared per notebook: the students' solution cells (starter code "
             "of the release removed), and each written answer. Settings: " + H.esc(settings_text(result)) + ".</p>")
    sections = [
        ("pairs", "Flagged pairs", f"<p>{len(pairs)} pair{'' if len(pairs) == 1 else 's'} of students flagged in at least one part.</p>"
         + H.table(pairs, "flagged-pairs", index=False) + "<h3>Side by side</h3>" + side_by_side(result)),
        ("parts", "Per part", "<p>Every pair of students of each part by the share of fingerprints they have in "
         "common (MOSS's measure; the dashed line is the threshold): a copied pair stands apart from the class.</p>"
         + H.figure(similarity_figure(result.parts, result.threshold), "pairs by shared fingerprints")
         + H.table(parts, "parts", index=False)),
        ("solution", "Close to the instructor's solution",
         "<p>Students whose code or answer shares at least the threshold of its fingerprints with the instructor's "
         "solution (starter code removed). A leaked solution shows up here; so does a submission that only filled "
         "in the instructor's code.</p>" + H.table(close, "solution-matches", index=False)),
        ("students", "Students", H.table(students_table(result), "students")),
    ]
    return H.page("A2 similarity check", intro, sections)


def write_similarity(result: SimilarityResult, course_root, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "similarity.html"
    path.write_text(render(result, course_root))
    return path
