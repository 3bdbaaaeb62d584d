"""What the class got, as tables: read from the gradebook, the autograded folders, the grading log and the roster.

:func:`read_class` reads every graded student once, through the same functions as the rest of the
kit: ``export.grade_sheet`` (points per notebook, total, the late penalty, final, percent), ``feedback.read_student`` (each
test's score and message, the hints the feedback page shows, per-class accuracy of the submitted
models, hand grades; given the gradebook's cells read for the whole class at once by
:mod:`.gradebook_cells`), ``engine.grade.read_grading_log`` (status, seconds, message of the latest
grading) and ``lms.read_roster`` (submission times, Canvas's late mark). It works on whatever the
course holds now: after a regrade it reads the new grades. Students are ids only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from autograder.engine.course import Course
from autograder.engine.grade import read_grading_log
from autograder.harness.cells import autograded_cells, grade_id, is_solution_cell, is_test_cell

from . import late, lms
from .export import grade_sheet
from .feedback import SIGNATURES, read_student
from .gradebook_cells import cell_grades, hand_of, scores_of

TIMED_OUT = re.compile(r"time limit|wall-clock limit|CPU-time limit|timed out", re.IGNORECASE)
LOOKUP = re.compile(r"mirror images|lookup|looks its inputs up", re.IGNORECASE)


@dataclass
class ClassResults:
    """The class in long tables (one row per student and thing), each with a ``student`` column or index.

    grades: ``export.grade_sheet`` (index student: one column per notebook, total, max, penalty, final, percent).
    tests: student, notebook, question, test, score, max_score, message (one row per autograded test cell).
    hints: student, signature, hint (the feedback page's hints, by ``feedback.SIGNATURES`` name).
    per_class: student, model, class, accuracy, reference (the submitted models, per class of the test set).
    hand: student, notebook, grade_id, score, max_score, graded (the answers graded by hand).
    status: index student: status, seconds, peak_MB, message, graded_at, timed_out, lookup, late, submitted_at.
    """

    grades: pd.DataFrame
    tests: pd.DataFrame
    hints: pd.DataFrame
    per_class: pd.DataFrame
    hand: pd.DataFrame
    status: pd.DataFrame

    @property
    def students(self) -> list[str]:
        return sorted(self.status.index)


def questions(source_dir) -> dict[tuple[str, str], str]:
    """``{(notebook, test): question}``: each autograded test cell belongs to the solution cell above it
    (the code it tests, e.g. ``conv2d`` for ``test_conv_forward``); a test above every solution is its own."""
    import nbformat

    out = {}
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        current = None
        for cell in nbformat.read(path, as_version=4).cells:
            if is_solution_cell(cell) and not is_test_cell(cell):
                current = grade_id(cell)
            elif cell.cell_type == "code" and is_test_cell(cell):
                out[path.stem, grade_id(cell)] = current or grade_id(cell)
    return out


def _signature(hint: str) -> str:
    return next((s.name for s in SIGNATURES if hint.startswith(s.hint)), "other")


def student_tables(course: Course, student: str, rows: pd.DataFrame, cells: dict, asked: dict) -> dict[str, list]:
    """One student's rows of each long table, from ``feedback.read_student`` (given the gradebook ``rows``)."""
    fb = read_student(course, student, scores=scores_of(rows), hand=hand_of(rows), cells=cells)
    return {
        "tests": [{"student": student, "notebook": t.notebook, "question": asked.get((t.notebook, t.grade_id), t.grade_id),
                   "test": t.grade_id, "score": t.score, "max_score": t.max_score, "message": t.message} for t in fb.tests],
        "hints": [{"student": student, "signature": _signature(h), "hint": h} for h in fb.hints],
        "per_class": [{"student": student, "model": r.model, "class": c, "accuracy": acc,
                       "reference": (r.reference or {}).get(c, float("nan"))}
                      for r in fb.per_class for c, acc in r.per_class.items()],
        "hand": [{"student": student, **{k: h[k] for k in ("notebook", "grade_id", "score", "max_score", "graded")}}
                 for h in fb.hand],
    }


def status_table(course: Course, students: list[str], policy: late.LatePolicy | None = None) -> pd.DataFrame:
    """Index student: the latest grading's status, seconds, peak_MB, message and time (``grading_log.csv``;
    "graded" with no time for a student graded before the log existed), whether it timed out or was
    flagged as a lookup model (from the message), and whether it was late: days late under ``policy``
    (:mod:`.late`: the LMS's times, extensions), or Canvas's mark where there is no due time."""
    policy = policy or late.LatePolicy()
    log = read_grading_log(course)
    roster = lms.read_roster(course)
    table = pd.DataFrame(index=pd.Index(sorted(set(students) | set(log.index)), name="student"))
    for column in ("status", "message", "graded_at"):
        table[column] = log[column].reindex(table.index) if column in log else None
    for column in ("seconds", "peak_MB"):
        table[column] = pd.to_numeric(log[column], errors="coerce").reindex(table.index) if column in log else float("nan")
    table["status"] = table["status"].fillna("graded")
    table["message"] = table["message"].fillna("").astype(str)
    table["timed_out"] = table["message"].str.contains(TIMED_OUT)
    table["lookup"] = (table["status"] == "flagged") & table["message"].str.contains(LOOKUP)
    submitted = roster["submitted_at"].reindex(table.index).fillna("") if len(roster) else pd.Series("", index=table.index)
    if policy.due is not None:
        days = late.late_columns(list(table.index), roster, policy)["days_late"]
        table["late"] = days.reindex(table.index).fillna(0).astype(int) > 0
    elif len(roster) and "late" in roster:
        table["late"] = roster["late"].reindex(table.index).astype(str).str.lower().eq("true")
    else:
        table["late"] = False
    table["submitted_at"] = submitted
    return table


def read_class(course: Course, policy: late.LatePolicy | None = None,
               students: list[str] | None = None) -> ClassResults:
    """Every student of ``course`` (or ``students``) read once; ``policy`` (the feedback's and the export's
    late policy) gives the late penalty, the final grade and who was late."""
    grades = grade_sheet(course, policy)
    if students is not None:
        grades = grades.reindex([s for s in grades.index if s in set(students)])
    cells = autograded_cells(course.source_dir)
    asked = questions(course.source_dir)
    gradebook = cell_grades(course)
    by_student = dict(tuple(gradebook.groupby("student"))) if len(gradebook) else {}
    parts: dict[str, list] = {"tests": [], "hints": [], "per_class": [], "hand": []}
    for student in grades.index:
        rows = by_student.get(student, gradebook.iloc[:0])
        for name, found in student_tables(course, student, rows, cells, asked).items():
            parts[name].extend(found)
    columns = {"tests": ["student", "notebook", "question", "test", "score", "max_score", "message"],
               "hints": ["student", "signature", "hint"],
               "per_class": ["student", "model", "class", "accuracy", "reference"],
               "hand": ["student", "notebook", "grade_id", "score", "max_score", "graded"]}
    tables = {name: pd.DataFrame(rows, columns=columns[name]) for name, rows in parts.items()}
    known = list(grades.index) if students is None else list(students)
    status = status_table(course, known, policy)
    if students is not None:
        status = status.reindex([s for s in status.index if s in set(students)])
    return ClassResults(grades, tables["tests"], tables["hints"], tables["per_class"], tables["hand"], status)
