"""Grades out of the gradebook: a CSV, a grade-distribution plot and a per-test failure table.

``export(course, out)`` writes into ``out`` (default ``<course>/exports``):

* ``grades.csv`` — one row per student; one column per part (notebook) with its points, then
  ``total``, ``max`` and ``percent``;
* ``grade_distribution.png`` — a histogram of the students' percentages;
* ``test_failures.csv`` — one row per autograded test cell: its points, how many students failed it
  (scored below full marks) out of how many were graded, and the share;
* with ``due`` (and ``late_penalty``, percent per started day): ``grades.csv`` gains
  ``submitted_at``, ``days_late``, ``penalty_percent`` and ``final`` (see ``autograder.pipeline.lms``);
* with ``canvas`` / ``moodle`` (the LMS's own gradebook export): ``canvas_import.csv`` /
  ``moodle_import.csv``, each student's points (``final``) in the assignment's column, ready to
  import, and ``lms_matches.csv``: every student with how they were matched (unmatched ones listed).

Hand grades (formgrader) are in the gradebook's scores, so they count here like autograded ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from autograder.engine.course import Course
from autograder.harness.cells import autograded_cells

from . import lms


def grades_table(course: Course) -> pd.DataFrame:
    """One row per student with a submission (index ``student``), one column per notebook, total, max, percent."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    empty = pd.DataFrame(columns=["total", "max", "percent"])
    if course.db_url.startswith("sqlite:///") and not Path(course.db_url[len("sqlite:///"):]).exists():
        return empty  # nothing graded yet; do not create a gradebook as a side effect
    with Gradebook(course.db_url) as gb:
        try:
            assignment = gb.find_assignment(course.assignment)
        except MissingEntry:
            return empty
        parts = [nb.name for nb in assignment.notebooks]
        maxima = {nb.name: nb.max_score for nb in assignment.notebooks}
        for sub in assignment.submissions:
            row = {"student": sub.student.id}
            row.update({nb.name: nb.score for nb in sub.notebooks})
            rows.append(row)
    table = pd.DataFrame(rows, columns=["student", *parts]).set_index("student").sort_index()
    table = table.fillna(0.0)
    table["total"] = table[parts].sum(axis=1)
    table["max"] = sum(maxima.values())
    table["percent"] = (100 * table["total"] / table["max"]).round(1) if len(table) else []
    return table


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


def distribution_plot(grades: pd.DataFrame, save: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.histplot(grades["percent"], bins=range(0, 105, 5), ax=ax)
    ax.set(xlabel="autograded points (%)", ylabel="students", xlim=(0, 100),
           title=f"Grade distribution ({len(grades)} students, median {grades['percent'].median():.0f}%)")
    fig.tight_layout()
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

    @property
    def unmatched(self) -> list[str]:
        m = self.lms_matches
        return [] if m is None else sorted(set(m.loc[m["status"] == "not in the LMS file", "student"]))


def export(course: Course, out: Path | None = None, *, canvas: Path | None = None, moodle: Path | None = None,
           due: str | None = None, late_penalty: float = 0.0, column: str | None = None) -> ExportResult:
    """Write the exports (see the module's docstring); ``due`` is an ISO 8601 time (UTC without a zone)."""
    out = Path(out) if out else course.root / "exports"
    out.mkdir(parents=True, exist_ok=True)
    grades, failures = grades_table(course), failure_table(course)
    roster = lms.read_roster(course)
    if due:
        grades = lms.apply_late_policy(grades, roster, lms.parse_time(due), late_penalty)
    grades.to_csv(out / "grades.csv")
    failures.to_csv(out / "test_failures.csv", index=False)
    plot = distribution_plot(grades, out / "grade_distribution.png") if len(grades) else None
    result = ExportResult(grades, failures, out / "grades.csv", out / "test_failures.csv", plot)
    points = grades["final"] if "final" in grades else grades["total"]
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
