"""The LMS round trip: who is who in the LMS, and grade import files for Canvas and Moodle.

**The roster**, ``<course>/lms_students.csv``, is written by ``a2kit collect``: one row per collected
student with ``student`` (the nbgrader id), ``name`` (the name the LMS wrote), ``source`` (the
folders or files it came from), ``lms`` (``canvas``, ``moodle``, ``custom`` or empty), ``lms_id``
(Canvas's user id, Moodle's participant id: the key students are matched by), ``late`` (Canvas's
``LATE`` mark), ``submitted_at`` (ISO 8601, UTC; empty when no time is known) and ``time_source``
(where that time comes from). The late policy that reads it is :mod:`autograder.pipeline.late`.

**Canvas** (Grades → Export → CSV): header ``Student, ID, SIS User ID, SIS Login ID[, Integration
ID], Section``, then one column per assignment (``A2 (123456)``) and computed totals; a second row
``Points Possible``. The import file keeps the identifying columns, the ``Points Possible`` row and
the assignment's column (header unchanged) with each student's final points. Students are matched
by Canvas user id (``ID``) from the roster, else by name (``Smith, Alice`` → ``smithalice``, the
prefix Canvas gives downloaded files).

**Moodle**, either of two files. The gradebook's (Grades → Export → Plain text file): ``First name,
Last name, ID number, ..., Email address, Assignment: A2 (Real), ...``; the import file (Grades →
Import → CSV file, map ``ID number`` or ``Email address`` to the user) has those two columns and the
assignment's; students are matched by full name (the name in Moodle's folder names, from the
roster). Or the assignment's grading worksheet (Assignment → View all submissions → Download
grading worksheet): ``Identifier`` (``Participant 123456``), ``Full name``, ``Email address``,
``Status``, ``Grade``, ...; it is written back whole with ``Grade`` filled in (Upload grading
worksheet); students are matched by participant id (from the roster), else by name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .downloads import slug

ROSTER = "lms_students.csv"
ROSTER_COLUMNS = ["student", "name", "source", "lms", "lms_id", "late", "submitted_at", "time_source"]
CANVAS_ID_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID", "Section"]
POINTS_POSSIBLE = "Points Possible"
MOODLE_ID_COLUMNS = ["ID number", "Email address"]


# -- the roster -----------------------------------------------------------------------------------
def empty_roster() -> pd.DataFrame:
    """An empty roster."""
    return pd.DataFrame(columns=ROSTER_COLUMNS).set_index("student")


def read_roster(course) -> pd.DataFrame:
    """The roster indexed by student (empty when nothing was collected); every column as text."""
    path = Path(course.root) / ROSTER
    if not path.exists():
        return empty_roster()
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in ROSTER_COLUMNS:  # a roster written by an earlier version lacks some
        if column not in table:
            table[column] = ""
    return table[ROSTER_COLUMNS].set_index("student")


def update_roster(course, rows: list[dict]) -> Path:
    """Replace the rows of these students (a re-collect) and keep the others."""
    path = Path(course.root) / ROSTER
    new = pd.DataFrame(rows, columns=ROSTER_COLUMNS).astype(str).set_index("student")
    old = read_roster(course)
    table = pd.concat([old.drop(index=new.index, errors="ignore"), new]).sort_index()
    table.reset_index().to_csv(path, index=False, encoding="utf-8")
    return path


# -- matching -------------------------------------------------------------------------------------
@dataclass
class LmsImport:
    """An import file's table and, per student, how the matching went."""

    table: pd.DataFrame  # what is written (the LMS's columns)
    matches: pd.DataFrame  # student, lms_name, points, status: matched | no submission | not in the LMS file
    column: str  # the assignment's column

    @property
    def unmatched(self) -> list[str]:
        return self.matches.loc[self.matches["status"] == "not in the LMS file", "student"].tolist()


def _pick_column(columns: list[str], assignment: str, column: str | None, what: str) -> str:
    if column:
        if column not in columns:
            raise ValueError(f"No column {column!r} in the {what} (columns: {', '.join(columns)}).")
        return column
    named = [c for c in columns if re.search(rf"\b{re.escape(assignment)}\b", c, re.IGNORECASE)]
    chosen = columns if len(columns) == 1 else named
    if len(chosen) != 1:
        raise ValueError(f"Cannot tell which column of the {what} is the assignment's "
                         f"(candidates: {', '.join(named or columns) or 'none'}): pass --column.")
    return chosen[0]


def _match(lms_rows: pd.DataFrame, keys: list[pd.Series], grades: pd.Series) -> tuple[pd.Series, pd.DataFrame]:
    """Points per LMS row (NaN where no student matched) and the match table.

    ``keys``: per matching rule, the student id each LMS row stands for (first rule that hits wins);
    ``grades``: points per student.
    """
    owner = pd.Series([None] * len(lms_rows), index=lms_rows.index, dtype=object)
    for key in keys:
        free = owner.isna() & key.isin(grades.index) & ~key.isin(owner.dropna())
        owner[free] = key[free]
    points = owner.map(grades)
    row_of = {s: i for i, s in owner.dropna().items()}
    rows = [{"student": s, "points": grades[s], "status": "matched" if s in row_of else "not in the LMS file",
             "lms_row": row_of.get(s)} for s in grades.index]
    rows += [{"student": "", "points": float("nan"), "status": "no submission", "lms_row": i}
             for i in owner.index[owner.isna()]]
    return points, pd.DataFrame(rows, columns=["student", "points", "status", "lms_row"])


def by_name(names: pd.Series, roster: pd.DataFrame, lms: str) -> pd.Series:
    """The student id each LMS name stands for: the roster's student of that name in that LMS, else the
    name's slug (``Alice Smith`` → ``alice_smith``, the id a plain folder of that name gets)."""
    known = {}
    if len(roster) and "name" in roster:
        rows = roster[roster["lms"] == lms]
        for student, name in rows["name"].items():
            known.setdefault(str(name).strip().lower(), []).append(student)
    return names.map(lambda n: known[str(n).strip().lower()][0]
                     if len(known.get(str(n).strip().lower(), [])) == 1 else slug(str(n)))


# -- Canvas ---------------------------------------------------------------------------------------
def canvas_key(name: str) -> str:
    """Canvas's download prefix for a student's sortable name: ``Smith, Alice`` → ``smithalice``."""
    return re.sub(r"[^a-z]", "", str(name).lower())


def read_canvas(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """Canvas's gradebook export: (students, the Points Possible row(s), identifying columns, assignment columns)."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.columns = [c.strip() for c in table.columns]
    if "Student" not in table.columns or "ID" not in table.columns:
        raise ValueError(f"{path} is not a Canvas gradebook export (no Student and ID columns).")
    ids = [c for c in CANVAS_ID_COLUMNS if c in table.columns]
    assignments = [c for c in table.columns if re.search(r"\(\d+\)$", c)]
    possible = table["Student"].str.strip() == POINTS_POSSIBLE
    return table[~possible], table[possible], ids, assignments


def canvas_import(path: Path, points: pd.Series, roster: pd.DataFrame, max_points: float, assignment: str,
                  column: str | None = None) -> LmsImport:
    """The Canvas import file for ``points`` (per student) from Canvas's export at ``path``."""
    students, possible, ids, assignments = read_canvas(path)
    column = _pick_column(assignments, assignment, column, "Canvas export")
    by_user_id = roster.loc[roster["lms"] == "canvas", "lms_id"] if len(roster) else pd.Series(dtype=str)
    user_ids = pd.Series(dict(zip(by_user_id.values, by_user_id.index)))
    keys = [students["ID"].str.strip().map(user_ids), students["Student"].map(canvas_key)]
    values, matches = _match(students, keys, points)
    table = students[ids].copy()
    table[column] = values.round(2).astype(object).where(values.notna(), "")
    header = possible[ids].head(1).copy() if len(possible) else pd.DataFrame([{c: "" for c in ids}])
    header["Student"] = f"    {POINTS_POSSIBLE}"
    header[column] = f"{max_points:g}"
    matches["lms_name"] = matches["lms_row"].map(students["Student"])
    return LmsImport(pd.concat([header, table], ignore_index=True), matches.drop(columns="lms_row"), column)


# -- Moodle ---------------------------------------------------------------------------------------
def moodle_worksheet(students: pd.DataFrame, points: pd.Series, roster: pd.DataFrame) -> LmsImport:
    """The assignment's grading worksheet with ``Grade`` filled in (the rest as Moodle wrote it)."""
    by_participant = roster.loc[roster["lms"] == "moodle", "lms_id"] if len(roster) else pd.Series(dtype=str)
    participants = pd.Series(dict(zip(by_participant.values, by_participant.index)))
    keys = [students["Identifier"].str.extract(r"(\d+)", expand=False).map(participants),
            by_name(students["Full name"], roster, "moodle")]
    values, matches = _match(students, keys, points)
    table = students.copy()
    table["Grade"] = values.round(2).astype(object).where(values.notna(), table["Grade"])
    matches["lms_name"] = matches["lms_row"].map(students["Full name"])
    return LmsImport(table, matches.drop(columns="lms_row"), "Grade")


def moodle_import(path: Path, points: pd.Series, assignment: str, column: str | None = None,
                  roster: pd.DataFrame | None = None) -> LmsImport:
    """The Moodle import file from Moodle's gradebook export or grading worksheet (see the module's docstring)."""
    roster = roster if roster is not None else empty_roster()
    students = pd.read_csv(path, dtype=str, keep_default_na=False)
    students.columns = [c.strip() for c in students.columns]
    if {"Identifier", "Full name", "Grade"} <= set(students.columns):
        return moodle_worksheet(students, points, roster)
    if not {"First name", "Last name"} <= set(students.columns):
        raise ValueError(f"{path} is not a Moodle grade export (no First name and Last name columns).")
    ids = [c for c in MOODLE_ID_COLUMNS if c in students.columns]
    if not ids:
        raise ValueError(f"{path} has neither an ID number nor an Email address column to import by.")
    grade_columns = [c for c in students.columns if c.startswith("Assignment:")]
    column = _pick_column(grade_columns, assignment, column, "Moodle export")
    # the name in Moodle's folder "First Last_<participant>_assignsubmission_file_", kept in the roster
    key = by_name(students["First name"] + " " + students["Last name"], roster, "moodle")
    values, matches = _match(students, [key], points)
    table = students[ids].copy()
    table[column] = values.round(2).astype(object).where(values.notna(), "")
    matches["lms_name"] = matches["lms_row"].map(students["First name"] + " " + students["Last name"])
    return LmsImport(table, matches.drop(columns="lms_row"), column)
