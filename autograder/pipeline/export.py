"""Grades out of the gradebook: a CSV, a grade-distribution plot and a per-test failure table.

``export(course, out)`` writes into ``out`` (default ``<course>/exports``):

* ``grades.csv`` — one row per student: one column per notebook (its points, autograded and
  hand-graded), then ``autograded`` (points of the test cells, decided by the grader), ``hand``
  (points given by hand in formgrader so far), ``hand_to_grade`` (points of answers nobody graded
  yet), ``total`` (autograded + hand), ``max``; with a due time (``--due``) the late policy's
  columns (``submitted_at``, ``time_source``, ``due``, ``days_late``, ``penalty_percent``,
  ``late_note``: :mod:`autograder.pipeline.late`); then ``penalty`` (points taken for lateness),
  ``final`` (total − penalty: what the LMS gets) and ``percent`` (final of max);
* ``grade_distribution.png`` — a histogram of the final grades (percent of max), students counted
  in whole numbers;
* ``test_failures.csv`` — one row per autograded test cell: its points, how many students failed it
  (scored below full marks) out of how many were graded, and the share;
* with ``canvas`` / ``moodle`` (the LMS's own gradebook export): ``canvas_import.csv`` /
  ``moodle_import.csv``, each student's ``final`` in the assignment's column, ready to import, and
  ``lms_matches.csv``: every student with how they were matched (unmatched ones listed).

:func:`grade_sheet` is the table both ``export`` and ``a2kit feedback`` read: the page a student
gets shows the numbers the LMS gets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from autograder.engine.course import Course
from autograder.harness.cells import autograded_cells

from . import late, lms

POINT_COLUMNS = ["autograded", "hand", "hand_to_grade", "total", "max"]


def grades_table(course: Course) -> pd.DataFrame:
    """One row per student with a submission (index ``student``): one column per notebook, then
    ``POINT_COLUMNS`` (see the module's docstring)."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    empty = pd.DataFrame(columns=POINT_COLUMNS)
    if course.db_url.startswith("sqlite:///") and not Path(course.db_url[len("sqlite:///"):]).exists():
        return empty  # nothing graded yet; do not create a gradebook as a side effect
    with Gradebook(course.db_url) as gb:
        try:
            assignment = gb.find_assignment(course.assignment)
        except MissingEntry:
            return empty
        parts = [nb.name for nb in assignment.notebooks]
        maximum = sum(nb.max_score for nb in assignment.notebooks)
        for sub in assignment.submissions:
            row = {"student": sub.student.id, "autograded": 0.0, "hand": 0.0, "hand_to_grade": 0.0}
            for nb in sub.notebooks:
                by_hand = {c.name for c in nb.notebook.solution_cells}  # a graded answer cell is graded by hand
                row[nb.name] = nb.score
                for g in nb.grades:
                    if g.name not in by_hand:
                        row["autograded"] += g.score or 0.0
                    elif g.manual_score is None and g.auto_score is None:
                        row["hand_to_grade"] += g.max_score
                    else:
                        row["hand"] += g.score or 0.0
            rows.append(row)
    table = pd.DataFrame(rows, columns=["student", *parts, "autograded", "hand", "hand_to_grade"])
    table = table.set_index("student").sort_index().fillna(0.0)
    table["total"] = table["autograded"] + table["hand"]
    table["max"] = float(maximum)
    return table


def grade_sheet(course: Course, policy: late.LatePolicy | None = None) -> pd.DataFrame:
    """``grades_table`` with the late policy applied: its columns, ``penalty``, ``final`` and ``percent``."""
    policy = policy or late.LatePolicy()
    table = grades_table(course)
    if policy.due is not None:
        columns = late.late_columns(list(table.index), lms.read_roster(course), policy)
        table = table.join(columns)
        share = table["penalty_percent"].astype(float) / 100
    else:
        share = 0.0
    table["final"] = (table["total"] * (1 - share)).round(2)
    table["penalty"] = (table["total"] - table["final"]).round(2)
    table["percent"] = (100 * table["final"] / table["max"]).round(1) if len(table) else []
    ordered = [c for c in table.columns if c not in ("penalty", "final", "percent")] + ["penalty", "final", "percent"]
    return table[ordered]


def failure_table(course: Course) -> pd.DataFrame:
    """Per autograded test cell: points, students failed, students graded, share failed."""
    cells = autograded_cells(course.source_dir)
    students = grades_table(course).index.tolist()
    failed = {(nb, gid): 0 for nb, ids in cells.items() for gid in ids}
    for student in students:
        scores = course.scores(student)
        for nb, ids in cells.items():
            for gid, points in ids.items():
                score = scores.get(nb, {}).get(gid, (None, points))[0] or 0.0
                failed[nb, gid] += score < points
    table = pd.DataFrame([{"notebook": nb, "test": gid, "points": cells[nb][gid], "failed": n,
                           "graded": len(students), "share_failed": round(n / len(students), 3) if students else 0.0}
                          for (nb, gid), n in failed.items()])
    return table.sort_values(["share_failed", "notebook"], ascending=[False, True]).reset_index(drop=True) if len(table) else table


def distribution_figure(grades: pd.DataFrame):
    """A histogram of the final grades (``percent``: final points of max), whole students on the y axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.histplot(grades["percent"], bins=range(0, 105, 5), ax=ax)
    late_part = " − late penalty" if grades["penalty"].astype(float).gt(0).any() else ""
    ax.set(xlabel=f"final grade (% of {grades['max'].iloc[0]:g} points: autograded + hand{late_part})",
           ylabel="students", xlim=(0, 100),
           title=f"Final grades ({len(grades)} students, median {grades['percent'].median():.0f}%)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def distribution_plot(grades: pd.DataFrame, save: Path) -> Path:
    """``distribution_figure`` saved as ``save`` (PNG)."""
    import matplotlib.pyplot as plt

    fig = distribution_figure(grades)
    fig.savefig(save, dpi=110)
    plt.close(fig)
    return save


@dataclass
class ExportResult:
    grades: pd.DataFrame
    failures: pd.DataFrame
    grades_csv: Path
    failures_csv: Path
    plot: Path | None
    lms_files: list[Path] = field(default_factory=list)
    lms_matches: pd.DataFrame | None = None  # student, points, status, lms_name, lms (one row per student and LMS row)
    warnings: list[str] = field(default_factory=list)  # about lateness: disagreements, missing times, extensions

    @property
    def unmatched(self) -> list[str]:
        m = self.lms_matches
        return [] if m is None else sorted(set(m.loc[m["status"] == "not in the LMS file", "student"]))


def export(course: Course, out: Path | None = None, *, canvas: Path | None = None, moodle: Path | None = None,
           policy: late.LatePolicy | None = None, column: str | None = None) -> ExportResult:
    """Write the exports (see the module's docstring) under the late ``policy`` (default: none)."""
    out = Path(out) if out else course.root / "exports"
    out.mkdir(parents=True, exist_ok=True)
    policy = policy or late.LatePolicy()
    grades, failures = grade_sheet(course, policy), failure_table(course)
    roster = lms.read_roster(course)
    grades.to_csv(out / "grades.csv")
    failures.to_csv(out / "test_failures.csv", index=False)
    plot = distribution_plot(grades, out / "grade_distribution.png") if len(grades) else None
    result = ExportResult(grades, failures, out / "grades.csv", out / "test_failures.csv", plot,
                          warnings=late.warnings(grades, policy))
    points = grades["final"]
    max_points = float(grades["max"].iloc[0]) if len(grades) else 0.0
    imports = []
    if canvas:
        imports.append(("canvas", lms.canvas_import(Path(canvas), points, roster, max_points, course.assignment, column)))
    if moodle:
        imports.append(("moodle", lms.moodle_import(Path(moodle), points, course.assignment, column, roster)))
    for name, made in imports:
        made.table.to_csv(out / f"{name}_import.csv", index=False)
        result.lms_files.append(out / f"{name}_import.csv")
        made.matches.insert(0, "lms", name)
    if imports:
        result.lms_matches = pd.concat([m.matches for _, m in imports], ignore_index=True)
        result.lms_matches.to_csv(out / "lms_matches.csv", index=False)
    return result
