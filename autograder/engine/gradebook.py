"""Gradebook I/O: a template out of the main gradebook, a scratch course's rows back into it.

Workers grade in scratch courses with their own SQLite gradebook (copied from a template holding
only the assignment's definitions); the instructor's process is the only writer of the main
gradebook (SQLite or any SQLAlchemy URL, e.g. PostgreSQL).
"""
from __future__ import annotations

from datetime import datetime

from . import compat


def copy_assignment(src_url: str, dst_url: str, assignment: str, course_id: str | None = None) -> None:
    """Copy ``assignment``'s definitions (notebooks, graded/solution/task/source cells) between gradebooks."""
    from nbgrader.api import Gradebook

    compat.apply()
    with Gradebook(src_url, course_id) as src, Gradebook(dst_url, course_id) as dst:
        a = src.find_assignment(assignment)
        dst.update_or_create_assignment(assignment, duedate=a.duedate)
        for nb in a.notebooks:
            dst.update_or_create_notebook(nb.name, assignment, kernelspec=nb.kernelspec)
            for c in nb.grade_cells:
                dst.update_or_create_grade_cell(c.name, nb.name, assignment, max_score=c.max_score, cell_type=c.cell_type)
            for c in nb.solution_cells:
                dst.update_or_create_solution_cell(c.name, nb.name, assignment)
            for c in nb.task_cells:
                dst.update_or_create_task_cell(c.name, nb.name, assignment, max_score=c.max_score, cell_type=c.cell_type)
            for c in nb.source_cells:
                dst.update_or_create_source_cell(c.name, nb.name, assignment, cell_type=c.cell_type, locked=c.locked,
                                                 source=c.source, checksum=c.checksum)


def read_rows(db_url: str, assignment: str, student: str, course_id: str | None = None) -> dict:
    """The gradebook rows autograde wrote for ``student`` (JSON-able)."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url, course_id) as gb:
        sub = gb.find_submission(assignment, student)
        rows = {"timestamp": sub.timestamp.isoformat() if sub.timestamp else None, "notebooks": {}}
        for nb in sub.notebooks:
            rows["notebooks"][nb.name] = {
                "late_submission_penalty": nb.late_submission_penalty,
                "grades": {g.name: {"auto_score": g.auto_score, "needs_manual_grade": g.needs_manual_grade}
                           for g in nb.grades},
                "comments": {c.name: c.auto_comment for c in nb.comments},
            }
    return rows


def merge_rows(course, student: str, rows: dict) -> None:
    """Write a scratch course's rows into ``course``'s gradebook (manual grades there are kept)."""
    from nbgrader.api import Gradebook

    course_id = course.config.CourseDirectory.course_id
    with Gradebook(course.db_url, course_id) as gb:
        gb.update_or_create_student(student)
        kwargs = {"timestamp": datetime.fromisoformat(rows["timestamp"])} if rows.get("timestamp") else {}
        gb.update_or_create_submission(course.assignment, student, **kwargs)
        for nb_name, nb in rows["notebooks"].items():
            snb = gb.find_submission_notebook(nb_name, course.assignment, student)
            snb.late_submission_penalty = nb["late_submission_penalty"]
            grades = {g.name: g for g in snb.grades}
            for name, values in nb["grades"].items():
                grades[name].auto_score = values["auto_score"]
                grades[name].needs_manual_grade = values["needs_manual_grade"]
            comments = {c.name: c for c in snb.comments}
            for name, text in nb["comments"].items():
                comments[name].auto_comment = text
        gb.db.commit()


def in_gradebook(course, student: str) -> bool:
    """Whether ``course``'s gradebook holds a submission of ``student``."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url, course.config.CourseDirectory.course_id) as gb:
        try:
            gb.find_submission(course.assignment, student)
            return True
        except MissingEntry:
            return False
