"""Lay out what students handed in as nbgrader submissions (``submitted/<student>/a2/``).

``SRC`` is a folder holding, per student, either a folder or a zip file (what an LMS exports).
The student id comes from the name: an LMS prefix is recognised (Moodle
``Alice Smith_123456_assignsubmission_file_``, Canvas ``smithalice_12345_67890_a2.zip``), anything
else is the name without extension; ids are lower-cased with runs of other characters made ``_``.
``--id-pattern`` gives a regular expression whose first group is the id, for other LMSs.

Inside a submission the notebooks may sit at the top or in sub-folders: the shallowest folder
holding a notebook of the assignment is taken, with everything beside it (``checkpoints/``...).
Each notebook is compared with the release through nbgrader's cell checksums: a deleted or edited
test cell, an edited read-only cell or a changed cell id is reported as tampering (nbgrader grades
with its own copy of the tests anyway, but the instructor should know). Nothing is dropped silently: duplicates (two sources, one id: the newest is kept), empty
submissions (no notebook of the assignment), unreadable or unsafe zips (corrupt, paths leaving the
folder, too large) and stray files are all reported, and make ``needs_attention`` true.

What the LMS names carry besides the id (Canvas user id, Moodle participant id, Canvas's ``LATE``
mark) and the time of each source (its file time: a zip entry's time, kept by ``unzip``) go into
``<course>/lms_students.csv`` (see ``autograder.pipeline.lms``), so that ``a2kit export`` can match students
in the LMS's gradebook and apply a late policy.
"""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from autograder.engine.course import Course
from autograder.harness.cells import cells_by_id, grade_id, is_solution_cell, nbgrader_meta

from .lms import lms_name, student_id, update_roster

JUNK = {"__MACOSX", ".ipynb_checkpoints", ".DS_Store", "__pycache__", ".git"}
MAX_SUBMISSION_BYTES = 500 * 1024**2  # a zip may not unpack to more than this
MAX_ZIP_MEMBERS = 2000


@dataclass
class Collected:
    """One source in ``SRC`` and what became of it."""

    source: str
    student: str | None
    status: str  # collected | duplicate | empty | unreadable | ignored
    message: str = ""
    notebooks: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # assignment notebooks not handed in (they score 0)
    lms: dict = field(default_factory=dict)  # lms, lms_id, late (from the name), submitted_at (file time)

    @property
    def ok(self) -> bool:
        return self.status == "collected" and not self.message


@dataclass
class CollectReport:
    entries: list[Collected]

    @property
    def students(self) -> list[str]:
        return sorted(e.student for e in self.entries if e.status == "collected")

    @property
    def needs_attention(self) -> bool:
        return any(not e.ok for e in self.entries)

    def table(self):
        import pandas as pd

        return pd.DataFrame([{"source": e.source, "student": e.student or "", "status": e.status,
                              "notebooks": len(e.notebooks),
                              "note": "; ".join(filter(None, [e.message, "missing " + ", ".join(e.missing) if e.missing else ""]))} for e in self.entries])


def _notebook_root(folder: Path, expected: set[str]) -> tuple[Path | None, list[str]]:
    """The shallowest folder under ``folder`` holding an assignment notebook, and every notebook seen."""
    notebooks = [p for p in folder.rglob("*.ipynb") if not (set(p.relative_to(folder).parts) & JUNK)]
    matching = [p for p in notebooks if not expected or p.stem in expected]
    if not matching:
        return None, [p.name for p in notebooks]
    root = min(matching, key=lambda p: (len(p.relative_to(folder).parts), str(p))).parent
    return root, [p.name for p in notebooks]


def _safe_extract(zip_path: Path, dest: Path) -> None:
    """Unzip refusing paths that leave ``dest``, links, too many members and zip bombs."""
    with zipfile.ZipFile(zip_path) as zf:
        members = zf.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise ValueError(f"{len(members)} files in the zip (at most {MAX_ZIP_MEMBERS})")
        if sum(m.file_size for m in members) > MAX_SUBMISSION_BYTES:
            raise ValueError(f"unpacks to more than {MAX_SUBMISSION_BYTES // 1024**2} MB")
        for m in members:
            rel = PurePosixPath(m.filename)
            if rel.is_absolute() or ".." in rel.parts or (m.external_attr >> 16) & 0o170000 == 0o120000:
                raise ValueError(f"unsafe entry {m.filename!r} (absolute path, '..' or a link)")
        bad = zf.testzip()
        if bad:
            raise ValueError(f"corrupt entry {bad!r}")
        zf.extractall(dest)


def _junk_and_links(folder: str, names: list[str]) -> set[str]:
    """copytree's ignore: junk folders and symbolic links (a link could point at the grader's files)."""
    return {n for n in names if n in JUNK or Path(folder, n).is_symlink()}


def _copy_submission(root: Path, dest: Path, expected: set[str]) -> list[str]:
    """Copy the notebooks of the assignment and everything beside them (junk aside) into ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for item in root.iterdir():
        if item.name in JUNK or item.is_symlink():
            continue
        if item.suffix == ".ipynb" and expected and item.stem not in expected:
            continue
        if item.is_dir():
            shutil.copytree(item, dest / item.name, ignore=_junk_and_links)
        else:
            shutil.copy2(item, dest / item.name)
    return sorted(p.name for p in dest.glob("*.ipynb"))


def tampering(submitted, release) -> list[str]:
    """Read-only and test cells of the ``release`` notebook that ``submitted`` deleted, edited or renamed."""
    from nbgrader.utils import compute_checksum

    protected = {gid: c for gid, c in cells_by_id(release).items()
                 if (nbgrader_meta(c).get("locked") or nbgrader_meta(c).get("grade")) and not is_solution_cell(c)}
    known = {grade_id(c) for c in release.cells}
    submitted_cells = cells_by_id(submitted)
    problems = []
    for gid, cell in protected.items():
        kind = "test cell" if nbgrader_meta(cell).get("grade") else "read-only cell"
        if gid not in submitted_cells:
            problems.append(f"{kind} {gid} deleted")
        elif compute_checksum(submitted_cells[gid]) != compute_checksum(cell):
            problems.append(f"{kind} {gid} edited")
    problems += [f"unknown cell id {gid}" for gid in submitted_cells if gid not in known]
    return problems


def _tampering_notes(dest: Path, release_dir: Path) -> list[str]:
    import nbformat

    notes = []
    for path in sorted(dest.glob("*.ipynb")):
        release = release_dir / path.name
        if not release.exists():
            continue
        try:
            problems = tampering(nbformat.read(path, as_version=4), nbformat.read(release, as_version=4))
        except Exception as exc:  # not a notebook at all: nbgrader will fail on it, say so now
            problems = [f"not a readable notebook ({exc.__class__.__name__})"]
        if problems:
            notes.append(f"{path.stem}: " + ", ".join(problems))
    return notes


def _file_time(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)


def collect(src: Path, course: Course, id_pattern: str | None = None, progress: bool = True) -> CollectReport:
    """Collect every student folder or zip in ``src`` into ``course``'s submissions (and the LMS roster)."""
    from tqdm.auto import tqdm

    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"{src} is not a folder of student folders or zip files")
    expected = {p.stem for p in course.release_dir.glob("*.ipynb")} or {p.stem for p in course.source_dir.glob("*.ipynb")}
    entries: list[Collected] = []
    candidates: dict[str, list[Path]] = {}
    for item in sorted(src.iterdir()):
        if item.name in JUNK or item.name.startswith("."):
            continue
        if item.is_dir() or item.suffix.lower() == ".zip":
            candidates.setdefault(student_id(item.name, id_pattern), []).append(item)
        else:
            entries.append(Collected(item.name, None, "ignored", "not a folder or a zip file"))
    for student, items in tqdm(sorted(candidates.items()), desc="collect", unit="student", disable=not progress):
        items = sorted(items, key=lambda p: p.stat().st_mtime, reverse=True)
        for other in items[1:]:
            entries.append(Collected(other.name, student, "duplicate",
                                     f"same student id as {items[0].name}, which is newer and was kept"))
        entry = _collect_one(items[0], student, course, expected)
        if entry.status == "collected":
            entry.lms = {**lms_name(items[0].name, id_pattern), "source": items[0].name,
                         "submitted_at": _file_time(items[0]).isoformat(timespec="seconds")}
        entries.append(entry)
    update_roster(course, [e.lms for e in entries if e.lms])
    return CollectReport(entries)


def _collect_one(item: Path, student: str, course: Course, expected: set[str]) -> Collected:
    with tempfile.TemporaryDirectory(prefix="a2kit-collect-") as tmp:
        folder = item
        if item.is_file():
            try:
                _safe_extract(item, Path(tmp))
            except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
                return Collected(item.name, student, "unreadable", f"cannot unzip: {exc}")
            folder = Path(tmp)
        root, seen = _notebook_root(folder, expected)
        if root is None:
            note = f"no notebook of the assignment (found: {', '.join(seen)})" if seen else "no notebook at all"
            return Collected(item.name, student, "empty", note)
        dest = course.submitted_dir(student)
        notebooks = _copy_submission(root, dest, expected)
        (dest / "timestamp.txt").write_text(_file_time(item).strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
    others = sorted(set(seen) - set(notebooks))
    missing = sorted(expected - {Path(n).stem for n in notebooks})
    notes = [f"ignored notebooks not in the assignment: {', '.join(others)}"] if others else []
    notes += [f"tampered: {t}" for t in _tampering_notes(course.submitted_dir(student), course.release_dir)]
    return Collected(item.name, student, "collected", "; ".join(notes), notebooks, missing)
