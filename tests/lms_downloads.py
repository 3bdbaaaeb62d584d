"""A corpus of LMS downloads of a toy class, built the way each LMS names and nests its files.

The naming schemes follow the LMSs' own code (see ``autograder/pipeline/downloads.py``):

* Canvas's ``ContentZipper``: ``<sortable name, lower-cased, non-word characters removed>[_LATE]_<user
  id>_<attachment id>_<file>``, a flat zip of the latest attempt's files; a file uploaded again under
  the same name is ``<stem>-1<ext>`` (``Attachment.make_unique_filename``); its entries carry the
  time the zip was built.
* Moodle's ``download_submissions``: ``<Full Name>_<participant id>_assignsubmission_file_`` as a
  folder per student, or the same prefix before each file (flat); online text under
  ``..._assignsubmission_onlinetext_``; entries carry each file's upload time, a wall-clock time in
  the server's zone.

The class (``CLASS``): four students whose work is the toy notebook's solution, a wrong answer or
the blank release, two of them named 王小明 with different LMS ids; everyone hands in ``01_toy.ipynb``
and ``checkpoints/model.pt``. ``build(layout, release_course, folder)`` writes one download (a zip, as
the LMS hands it out) and says what ``a2kit collect`` must make of it (``Download.expected``).
"""
from __future__ import annotations

import io
import os
import re
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

LMS_ZONE = "Europe/Berlin"          # the zone the Moodle server writes its zip times in
DUE = "2026-03-01T23:59+01:00"
CHECKPOINT = b"\x80fake weights"     # checkpoints/model.pt: a file the notebooks would read


@dataclass(frozen=True)
class Student:
    canvas_name: str      # Canvas's sortable name ("Smith, Alice")
    moodle_name: str      # Moodle's full name ("Alice Smith")
    lms_id: str           # Canvas user id / Moodle participant id
    work: str             # solution | wrong | release: the toy case handed in
    submitted: str        # when (ISO 8601, with its zone)
    canvas_id: str        # the id collect gives a Canvas download's student
    moodle_id: str        # ... a Moodle download's

    @property
    def late(self) -> bool:
        return datetime.fromisoformat(self.submitted) > datetime.fromisoformat(DUE)


CLASS = [
    Student("Smith, Alice", "Alice Smith", "12345", "solution", "2026-03-01T20:15:00+01:00", "smithalice", "alice_smith"),
    Student("Núñez, José", "José Núñez", "12346", "wrong", "2026-03-02T09:30:00+01:00", "nunezjose", "jose_nunez"),
    Student("王, 小明", "王小明", "22222", "release", "2026-03-01T23:58:58+01:00", "canvas_22222", "moodle_22222"),
    Student("王, 小明", "王小明", "22223", "solution", "2026-03-03T00:00:00+01:00", "canvas_22223", "moodle_22223"),
]
SOURCES = {"solution": "return 2 * x", "wrong": "return abs(2 * x)", "release": "raise NotImplementedError"}
LAYOUTS = ("canvas_zip", "canvas_files", "canvas_resubmitted", "moodle_folders", "moodle_flat", "plain")


@dataclass
class Download:
    """A download and what collect must make of it: ``expected`` = {student id: {"work", "lms", "lms_id", "late"}}."""

    zip_path: Path
    expected: dict[str, dict] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)   # names listed but not collected (with a reason)
    older: list[str] = field(default_factory=list)     # Canvas uploads replaced by a later one


def canvas_name(sortable: str) -> str:
    """Canvas's file-name prefix for a sortable name (``sanitize_user_name``, then ``sanitize_file_name``)."""
    name = re.sub(r"_(\d+)_", r"\1", sortable).lower()
    return re.sub(r"[^\w]", "", name)


def _handed_in(work: str, release_course) -> dict[str, bytes]:
    """The files of a hand-in: ``{relative path: bytes}`` (the toy case's notebook and a checkpoint)."""
    from autograder.tools.corpus import Case, Edit, build_submission
    from toy_notebooks import WRONG_DOUBLE

    edits = [Edit("01_toy", "double", WRONG_DOUBLE)] if work == "wrong" else []
    case = Case(f"x_{work}", "", "release" if work == "release" else "solution", ["01_toy"], edits)
    folder = build_submission(case, release_course, student=f"staging_{work}")
    files = {"01_toy.ipynb": (folder / "01_toy.ipynb").read_bytes(), "checkpoints/model.pt": CHECKPOINT}
    shutil.rmtree(folder.parent)
    return files


def _zip_bytes(files: dict[str, bytes], top: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for rel, data in files.items():
            zf.writestr(f"{top}{rel}", data)
    return buf.getvalue()


def _wall(iso: str, zone: str = LMS_ZONE) -> tuple:
    """A zip entry's date_time: the wall-clock time of ``iso`` in ``zone``."""
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(zone)).timetuple()[:6]


def _write(zip_path: Path, entries: list[tuple[str, bytes, tuple]]) -> Path:
    with zipfile.ZipFile(zip_path, "w") as zf:
        for name, data, when in entries:
            info = zipfile.ZipInfo(name, date_time=when)
            info.external_attr = (0o40755 << 16) | 0x10 if name.endswith("/") else 0o644 << 16
            zf.writestr(info, data)
    return zip_path


def build(layout: str, release_course, folder: Path) -> Download:
    """The class's download in ``layout`` (one of ``LAYOUTS``) as ``folder/<layout>.zip``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    work = {s.lms_id: _handed_in(s.work, release_course) for s in CLASS}
    built = datetime(2026, 3, 10, 9, 0).timetuple()[:6]  # Canvas: the time it built the zip
    entries, download = [], Download(folder / f"{layout}.zip")
    attachment = iter(range(70001, 80000))
    for s in CLASS:
        files = work[s.lms_id]
        when = _wall(s.submitted)
        if layout.startswith("canvas"):
            prefix = f"{canvas_name(s.canvas_name)}{'_LATE' if s.late else ''}_{s.lms_id}"
            download.expected[s.canvas_id] = {"work": s.work, "lms": "canvas", "lms_id": s.lms_id, "late": s.late}
            if layout == "canvas_zip":
                entries.append((f"{prefix}_{next(attachment)}_a2.zip", _zip_bytes(files, "a2/"), built))
                continue
            if layout == "canvas_resubmitted":  # a first upload (the blank release), then the work again: "-1"
                first = f"{prefix}_{next(attachment)}_01_toy.ipynb"
                entries.append((first, _handed_in("release", release_course)["01_toy.ipynb"], built))
                download.older.append(first)
            suffix = "-1" if layout == "canvas_resubmitted" else ""
            entries.append((f"{prefix}_{next(attachment)}_01_toy{suffix}.ipynb", files["01_toy.ipynb"], built))
            entries.append((f"{prefix}_{next(attachment)}_checkpoints{suffix}.zip",
                            _zip_bytes({"model.pt": files["checkpoints/model.pt"]}, "checkpoints/"), built))
        elif layout.startswith("moodle"):
            prefix = f"{s.moodle_name}_{s.lms_id}_assignsubmission_file_"
            download.expected[s.moodle_id] = {"work": s.work, "lms": "moodle", "lms_id": s.lms_id, "late": False,
                                              "submitted": s.submitted}
            if layout == "moodle_folders" and s.work == "solution":  # an a2.zip in the student's folder
                entries.append((f"{prefix}/a2.zip", _zip_bytes(files, "a2/"), when))
            elif layout == "moodle_folders":  # the files as uploaded, a folder kept
                entries += [(f"{prefix}/{rel}", data, when) for rel, data in files.items()]
            else:  # flat: the prefix before each file (checkpoints zipped, as Moodle uploads hold no folder)
                entries.append((f"{prefix}01_toy.ipynb", files["01_toy.ipynb"], when))
                entries.append((f"{prefix}checkpoints.zip", _zip_bytes({"model.pt": files["checkpoints/model.pt"]}), when))
        else:  # a plain folder per student, named by the student
            sid = re.sub(r"[^a-z]", "", s.moodle_name.lower()) or f"student{s.lms_id}"
            download.expected[sid] = {"work": s.work, "lms": "", "lms_id": "", "late": False}
            entries += [(f"{sid}/{rel}", data, when) for rel, data in files.items()]
    if layout == "moodle_folders":
        online = f"{CLASS[1].moodle_name}_{CLASS[1].lms_id}_assignsubmission_onlinetext_"
        entries.append((f"{online}/onlinetext.html", b"<p>see my files</p>", _wall(CLASS[1].submitted)))
        download.ignored.append(online)
    if layout == "plain":
        entries.append(("__MACOSX/._alice", b"", built))
    _write(download.zip_path, entries)
    return download


def unzip(zip_path: Path, dest: Path) -> Path:
    """What ``unzip`` does with a download: the files, each with its entry's time as a local time of this
    machine (``TZ`` decides which), folders included."""
    dest = Path(dest)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
        for m in zf.infolist():
            stamp = time.mktime(m.date_time + (0, 0, -1))
            os.utime(dest / m.filename, (stamp, stamp))
    return dest


def canvas_times(path: Path) -> Path:
    """A CSV of the class's Canvas submission times (user id, ``submitted_at`` in UTC, as Canvas's API gives them)."""
    rows = ["ID,submitted_at"] + [f"{s.lms_id},{datetime.fromisoformat(s.submitted).astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}"
                                  for s in CLASS]
    path.write_text("\n".join(rows) + "\n")
    return path


def moodle_worksheet(path: Path, zone: str = LMS_ZONE) -> Path:
    """Moodle's grading worksheet for the class, its times written in ``zone`` as Moodle writes them."""
    lines = ["Identifier,Full name,Email address,Status,Grade,Maximum Grade,Grade can be changed,"
             "Last modified (submission),Last modified (grade),Feedback comments"]
    for s in CLASS:
        t = datetime.fromisoformat(s.submitted).astimezone(ZoneInfo(zone))
        text = f"{t:%A}, {t.day} {t:%B %Y}, {int(t.strftime('%I'))}:{t:%M %p}"
        lines.append(f'Participant {s.lms_id},{s.moodle_name},{s.lms_id}@uni.example,Submitted for grading,,3.00,Yes,"{text}",-,')
    path.write_text("\n".join(lines) + "\n")
    return path


def late_days(submitted: str, due: str = DUE) -> int:
    """Days started after ``due`` (the policy's rule, written again here from the definition)."""
    seconds = (datetime.fromisoformat(submitted) - datetime.fromisoformat(due)) / timedelta(seconds=1)
    return max(0, -(-int(seconds) // 86400))
