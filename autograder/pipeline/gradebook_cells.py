"""Every graded cell of every submission, read from the gradebook in two queries.

nbgrader's objects load a submission's grades one lazy query at a time (about 130 queries and 0.1-0.2 s
per student): fine for one student's feedback, minutes for a class of 300. :func:`cell_grades` asks
SQLite or PostgreSQL once for the whole class, and :func:`scores_of` / :func:`hand_of` give one
student's part in the shapes of ``Course.scores`` and ``formgrade.hand_grades``, so that
``feedback.read_student`` can be given them instead of reading them itself.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from autograder.engine.course import Course

from .formgrade import hand_status

COLUMNS = ["student", "notebook", "grade_id", "score", "max_score", "auto_score", "manual_score", "cell_type",
           "answer", "comment", "auto_comment"]


def cell_grades(course: Course) -> pd.DataFrame:
    """One row per student and grade cell: ``COLUMNS``. ``answer``: a written answer (graded by hand);
    ``comment``: the grader's comment on that cell ("" when none); ``auto_comment``: nbgrader's own
    ("No response." for an answer left as released). Empty before anything was graded."""
    from nbgrader.api import (Assignment, BaseCell, Comment, Gradebook, Grade, Notebook, SolutionCell, Student,
                              SubmittedAssignment, SubmittedNotebook)

    if course.db_url.startswith("sqlite:///") and not Path(course.db_url[len("sqlite:///"):]).exists():
        return pd.DataFrame(columns=COLUMNS)  # nothing graded yet; do not create a gradebook as a side effect
    with Gradebook(course.db_url) as gb:
        def submitted(*columns):
            return (gb.db.query(*columns).select_from(SubmittedAssignment)
                    .join(SubmittedNotebook, SubmittedNotebook.assignment_id == SubmittedAssignment.id)
                    .join(Student, Student.id == SubmittedAssignment.student_id)
                    .join(Assignment, Assignment.id == SubmittedAssignment.assignment_id)
                    .join(Notebook, Notebook.id == SubmittedNotebook.notebook_id)
                    .filter(Assignment.name == course.assignment))
        grades = (submitted(Student.id, Notebook.name, BaseCell.name, Grade.score, Grade.max_score, Grade.auto_score,
                            Grade.manual_score, Grade.cell_type)
                  .join(Grade, Grade.notebook_id == SubmittedNotebook.id)
                  .join(BaseCell, BaseCell.id == Grade.cell_id).all())
        comments = (submitted(Student.id, Notebook.name, BaseCell.name, Comment.comment, Comment.auto_comment)
                    .join(Comment, Comment.notebook_id == SubmittedNotebook.id)
                    .join(BaseCell, BaseCell.id == Comment.cell_id).all())
        answers = {(nb, cell) for nb, cell in gb.db.query(Notebook.name, SolutionCell.name).select_from(SolutionCell)
                   .join(Notebook, Notebook.id == SolutionCell.notebook_id)
                   .join(Assignment, Assignment.id == Notebook.assignment_id)
                   .filter(Assignment.name == course.assignment).all()}
    table = pd.DataFrame([tuple(r) for r in grades], columns=COLUMNS[:8])
    said = {(s, nb, cell): (text, auto) for s, nb, cell, text, auto in comments}
    keys = list(zip(table["student"], table["notebook"], table["grade_id"]))
    table["answer"] = [(nb, cell) in answers for nb, cell in zip(table["notebook"], table["grade_id"])]
    table["comment"] = [said.get(key, ("", ""))[0] or "" for key in keys]
    table["auto_comment"] = [said.get(key, ("", ""))[1] or "" for key in keys]
    return table.sort_values(["student", "notebook", "grade_id"]).reset_index(drop=True)


def scores_of(rows: pd.DataFrame) -> dict[str, dict[str, tuple[float, float]]]:
    """One student's rows of :func:`cell_grades` as ``Course.scores`` gives them: ``{notebook: {grade_id: (score, max)}}``
    for the autograded cells (an automatic score, or a code cell)."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for r in rows.itertuples():
        if not pd.isna(r.auto_score) or r.cell_type == "code":
            out.setdefault(r.notebook, {})[r.grade_id] = (r.score, r.max_score)
    return out


def hand_of(rows: pd.DataFrame) -> list[dict]:
    """One student's rows of :func:`cell_grades` as ``formgrade.hand_grades`` gives them: the written answers
    and any cell a grader scored by hand, with the same ``status``."""
    out = []
    for r in rows.itertuples():
        if r.answer or not pd.isna(r.manual_score):
            status = hand_status(None if pd.isna(r.manual_score) else r.manual_score, r.auto_comment)
            out.append({"notebook": r.notebook, "grade_id": r.grade_id, "score": r.score, "max_score": r.max_score,
                        "graded": status != "to grade", "status": status, "comment": r.comment})
    return out
