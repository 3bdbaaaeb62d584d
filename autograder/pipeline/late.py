"""A late policy that no time zone can shift: submission times, due times, extensions, days late.

**Submission times** come, best first, from

1. the LMS's own record (``a2kit collect --times FILE``): Moodle's grading worksheet (*View all
   submissions → Download grading worksheet*, its ``Last modified (submission)`` column, written in
   the zone of the Moodle account that downloaded it: pass that zone, ``--tz Europe/Berlin``), or a
   CSV with a Canvas user id (``ID``) and a submission time (``submitted_at``, as Canvas's API and
   gradebook tools write it, ISO 8601 with its zone);
2. the times the LMS wrote into its zip, only with ``--tz`` naming the zone they are in (a zip
   stores wall-clock times without a zone, and ``unzip`` writes them as local times of the machine
   that unzips: collect the download's zip itself, or unzip and collect on the same machine).
   Canvas writes the time it built the zip, not the submission's: its sources get no zip time;
3. nothing: then Canvas's ``LATE`` mark (in its file names, set by Canvas against the due date it
   knows) is all there is. A late-marked submission without a time counts as 1 day late.

**Days late** are the days started after the due time, ``ceil((submitted - due) / 24 h)``: a
minute late is 1 day, 24 h and a minute is 2. The due time is the student's extension where
``extensions.csv`` (``student,due``) gives one, else ``--due``. A due time without an offset is read
in ``--tz``, and refused without one. Where Canvas's mark and the days disagree, the student's row
says so (``late_note``) and the command prints it.

**The penalty**: ``min(100, days * P)`` percent of the points (autograded plus hand-graded) per
started day, ``final = total * (1 - penalty / 100)``. ``--late-penalty`` without ``--due`` is refused.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

EXTENSIONS = "extensions.csv"
# Moodle's userdate() formats (English): "Sunday, 1 March 2026, 8:15 PM" (strftimedaydatetime) and relatives.
MOODLE_FORMATS = ("%A, %d %B %Y, %I:%M %p", "%A, %d %B %Y, %H:%M", "%d %B %Y, %I:%M %p", "%d/%m/%Y, %H:%M")
TIME_COLUMNS = ("Last modified (submission)", "submitted_at", "Submitted At", "Submitted at", "Submitted",
                "Submission date")
ID_COLUMNS = {"Identifier": "moodle", "ID": "canvas", "User ID": "canvas", "user_id": "canvas", "student": ""}
LATE_COLUMNS = ["submitted_at", "time_source", "due", "days_late", "penalty_percent", "late_note"]


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Berlin``, ``UTC``)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"Unknown time zone {name!r}: give an IANA name such as Europe/Berlin, "
                         "America/New_York or UTC.") from exc


def parse_time(text: str, tz: str | None = None) -> datetime:
    """An ISO 8601 time (``Z`` allowed); one without an offset is read in ``tz``, and refused without it."""
    t = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        if tz is None:
            raise ValueError(f"The time {text!r} has no time zone: write its offset (2026-03-01T23:59+01:00) "
                             "or pass --tz ZONE (e.g. --tz Europe/Berlin).")
        t = t.replace(tzinfo=zone(tz))
    return t


def parse_lms_time(text: str, tz: str | None) -> datetime | None:
    """A time as an LMS writes it: ISO 8601, or Moodle's ``Sunday, 1 March 2026, 8:15 PM`` (read in ``tz``);
    ``None`` for Moodle's ``-`` (no submission)."""
    text = str(text).strip()
    if text in ("", "-", "nan"):
        return None
    try:
        return parse_time(text, tz)
    except ValueError as exc:
        if "no time zone" in str(exc):
            raise
    for fmt in MOODLE_FORMATS:
        try:
            wall = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if tz is None:
            raise ValueError(f"Moodle writes {text!r} in the time zone of the account that downloaded it, "
                             "without saying which: pass --tz (e.g. --tz Europe/Berlin).")
        return wall.replace(tzinfo=zone(tz))
    raise ValueError(f"Cannot read the time {text!r} (ISO 8601 or Moodle's 'Sunday, 1 March 2026, 8:15 PM').")


def file_time(mtime: float, tz: str) -> datetime:
    """A file time as ``unzip`` wrote it (the zip's wall-clock time, as a local time of this machine),
    read as a wall-clock time in the zone ``tz`` the LMS wrote it in."""
    return datetime.fromtimestamp(mtime).replace(tzinfo=zone(tz))


def iso(t: datetime | None) -> str:
    """``t`` in UTC, ISO 8601 to the second (``""`` for None): how the roster stores times."""
    return t.astimezone(timezone.utc).isoformat(timespec="seconds") if t else ""


def read_times(path: Path, tz: str | None = None) -> pd.DataFrame:
    """Submission times from an LMS file: rows ``lms, lms_id, student, submitted_at`` (ISO, UTC), ``time_source``.

    Moodle's grading worksheet (``Identifier`` = ``Participant 123456``, ``Last modified (submission)``),
    or a CSV with an id column (``ID``: Canvas user id; ``student``: the kit's id) and a time column.
    """
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.columns = [c.strip() for c in table.columns]
    id_column = next((c for c in ID_COLUMNS if c in table.columns), None)
    time_column = next((c for c in TIME_COLUMNS if c in table.columns), None)
    if id_column is None or time_column is None:
        raise ValueError(f"{path} has no submission times: it needs an id column ({', '.join(ID_COLUMNS)}) and a "
                         f"time column ({', '.join(TIME_COLUMNS)}).")
    lms = ID_COLUMNS[id_column]
    label = "Moodle's grading worksheet" if id_column == "Identifier" else f"{Path(path).name} ({time_column})"
    rows = []
    for _, row in table.iterrows():
        key = row[id_column].strip()
        if lms == "moodle":
            key = "".join(ch for ch in key if ch.isdigit())
        t = parse_lms_time(row[time_column], tz)
        if key and t:
            rows.append({"lms": lms, "lms_id": key if lms else "", "student": "" if lms else key,
                         "submitted_at": iso(t), "time_source": label + (f", read in {tz}" if tz and lms == "moodle" else "")})
    return pd.DataFrame(rows, columns=["lms", "lms_id", "student", "submitted_at", "time_source"])


def read_extensions(path: Path, tz: str | None = None) -> dict[str, datetime]:
    """``extensions.csv``: ``student,due`` (the student's own due time, ISO 8601), one row per student."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.columns = [c.strip() for c in table.columns]
    if not {"student", "due"} <= set(table.columns):
        raise ValueError(f"{path} needs the columns student and due (the student's new due time, ISO 8601).")
    return {row["student"].strip(): parse_time(row["due"], tz) for _, row in table.iterrows() if row["student"].strip()}


@dataclass
class LatePolicy:
    """``due`` (None: no late policy), ``penalty_per_day`` percent, per-student ``extensions`` (new due times)."""

    due: datetime | None = None
    penalty_per_day: float = 0.0
    extensions: dict[str, datetime] = field(default_factory=dict)
    source: str = ""  # where the extensions came from

    @classmethod
    def from_options(cls, course_root: Path, due: str | None = None, late_penalty: float = 0.0,
                     tz: str | None = None, extensions: str | None = None) -> "LatePolicy":
        """The policy the command line asks for; ``extensions`` defaults to ``<course>/extensions.csv`` if present."""
        if late_penalty and not due:
            raise ValueError("--late-penalty needs --due (the due time it counts the days from).")
        if tz:
            zone(tz)
        path = Path(extensions) if extensions else Path(course_root) / EXTENSIONS
        if extensions and not path.exists():
            raise FileNotFoundError(f"No extensions file {path}")
        granted = read_extensions(path, tz) if path.exists() else {}
        return cls(parse_time(due, tz) if due else None, float(late_penalty), granted, str(path) if granted else "")

    def due_for(self, student: str) -> datetime | None:
        return self.extensions.get(student, self.due)

    def describe(self) -> str:
        """The policy in one line (the feedback page and the export print it)."""
        if self.due is None:
            return "no late policy"
        return (f"due {self.due.isoformat(sep=' ', timespec='minutes')}, {self.penalty_per_day:g}% of the points "
                "per day started after it (at most 100%)"
                + (f"; {len(self.extensions)} extension(s)" if self.extensions else ""))


def days_late(submitted: datetime | None, due: datetime) -> int:
    """Days started after ``due`` (0 when on time or unknown)."""
    if submitted is None:
        return 0
    return max(0, math.ceil((submitted - due).total_seconds() / 86400))


def _late_row(student: str, info: dict, policy: LatePolicy) -> dict:
    """One student's late columns (see ``LATE_COLUMNS``)."""
    due = policy.due_for(student)
    text = str(info.get("submitted_at") or "")
    submitted = parse_time(text) if text else None
    canvas = info.get("lms") == "canvas"
    marked = str(info.get("late", "")).strip().lower() == "true"
    extended = student in policy.extensions
    note = ""
    if submitted is not None:
        days = days_late(submitted, due)
        if canvas and not extended and marked != (days > 0):
            note = (f"Canvas marks it {'late' if marked else 'on time'}, its time says "
                    f"{days} day(s) late: counted {days}")
    elif canvas and marked and not extended:
        days = 1
        note = "late by Canvas's LATE mark, no submission time known: counted as 1 day"
    elif canvas and marked:
        days = 0
        note = "Canvas's LATE mark is against Canvas's due date; an extension applies and no time is known: not counted late"
    else:
        days = 0
        note = "" if canvas else "no submission time known: counted on time"
    return {"submitted_at": text, "time_source": info.get("time_source", ""),
            "due": due.isoformat(timespec="minutes"), "days_late": days,
            "penalty_percent": min(100.0, days * policy.penalty_per_day), "late_note": note}


def late_columns(students: list[str], roster: pd.DataFrame, policy: LatePolicy) -> pd.DataFrame:
    """Per student (index): ``LATE_COLUMNS`` under ``policy`` (empty frame without a due time)."""
    if policy.due is None:
        return pd.DataFrame(index=pd.Index(students, name="student"))
    rows = {s: _late_row(s, roster.loc[s].to_dict() if s in roster.index else {}, policy) for s in students}
    return pd.DataFrame.from_dict(rows, orient="index", columns=LATE_COLUMNS).rename_axis("student")


def warnings(table: pd.DataFrame, policy: LatePolicy) -> list[str]:
    """What the instructor should read about lateness: disagreements, missing times, unknown extensions."""
    out = []
    if "late_note" in table:
        out += [f"{s}: {note}" for s, note in table["late_note"].items() if note]
    unknown = sorted(set(policy.extensions) - set(table.index))
    if unknown:
        out.append(f"extensions for students with no grade: {', '.join(unknown)} ({policy.source})")
    return out
