"""Lay out what students handed in as nbgrader submissions (``submitted/<student>/a2/``).

``SRC`` is what the LMS handed out: its download zip, or the folder it unzips to (see
:mod:`autograder.pipeline.downloads` for how Canvas and Moodle name things). Every name in it is a
source; sources are grouped by student, keyed by the LMS's id:

* **Canvas**: each uploaded file is a source; a student's files (notebooks, ``checkpoints.zip``,
  loose ``.pt`` files) make one submission; a repeated name (``01_theory-1.ipynb``, a resubmitted
  file) is the newest upload of that name, and the older one is listed and left out.
* **Moodle**: a folder per student ("download in folders", holding e.g. the student's ``a2.zip``)
  or, flat, the student's files each with the prefix.
* **Plain**: a folder or zip per student, named by the student (``--id-pattern REGEX``: the first
  group is the id); two sources with one id are duplicates, the newest is kept.

A submission's zips are unpacked where they are (into a folder named by the zip when its entries
do not share one folder, so a ``checkpoints.zip`` of loose files becomes ``checkpoints/``); loose
checkpoint files the notebooks read from ``checkpoints/`` are moved there. The shallowest folder
holding a notebook of the assignment is taken, with everything beside it. Each notebook's grading
cells are compared with the release (:mod:`autograder.engine.tampering`: duplicated, renamed,
re-tagged, added, deleted or edited cells are named; grading restores them).

Nothing is dropped silently: every name in ``SRC`` gets a row (collected, duplicate, older upload,
empty, unreadable, ignored with its reason, or skipped: a folder of macOS or Windows metadata), and
one student's files never stop the class. Zips are refused when unsafe (paths leaving the folder,
links, too large or too many files). File names may hold any bytes; tables show them escaped.

What the names say besides the id (LMS, LMS id, the name the LMS wrote, Canvas's ``LATE`` mark) and
the submission time (``--times``, or the LMS's zip times with ``--tz``; :mod:`autograder.pipeline.late`)
go into ``<course>/lms_students.csv``, for ``a2kit export`` and ``a2kit feedback``.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder.engine.course import Course
from autograder.engine.tampering import compare
from autograder.notebooks import notebook_folders

from . import late
from .downloads import Source, parse, resubmitted_name, shown, student_ids
from .lms import read_roster, update_roster

JUNK = {"__MACOSX", ".ipynb_checkpoints", ".DS_Store", "__pycache__", ".git", "Thumbs.db", "desktop.ini"}
METADATA = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}  # operating systems' files beside a download
MAX_SUBMISSION_BYTES = 500 * 1024**2  # a student's zips may not unpack to more than this
MAX_ZIP_MEMBERS = 2000
MAX_DOWNLOAD_BYTES = 64 * 1024**3     # the LMS's whole download
MAX_DOWNLOAD_MEMBERS = 200_000
UNPACK_DEPTH = 2                      # a zip in a zip is unpacked; deeper ones are left as they are


@dataclass
class Collected:
    """One source in ``SRC`` (or one student's sources) and what became of it."""

    source: str  # as shown: escaped where the name is not printable text
    student: str | None
    status: str  # collected | duplicate | older upload | empty | unreadable | ignored | skipped
    message: str = ""
    notebooks: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # assignment notebooks not handed in (they score 0)
    lms: dict = field(default_factory=dict)  # the roster row (autograder.pipeline.lms.ROSTER_COLUMNS)

    @property
    def ok(self) -> bool:
        """Nothing to look at: collected cleanly, a newer upload replaced this one, or OS metadata."""
        return (self.status == "collected" and not self.message) or self.status in ("older upload", "skipped")


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
                              "note": "; ".join(filter(None, [e.message, "missing " + ", ".join(e.missing) if e.missing else ""]))}
                             for e in self.entries], columns=["source", "student", "status", "notebooks", "note"])


# -- zips -----------------------------------------------------------------------------------------
def _safe_extract(zip_path: Path, dest: Path, max_bytes: int = MAX_SUBMISSION_BYTES,
                  max_members: int = MAX_ZIP_MEMBERS, keep_times: bool = False) -> int:
    """Unzip refusing paths that leave ``dest``, links, too many members and zip bombs; returns the bytes
    unpacked. ``keep_times``: give each file its entry's time as ``unzip`` does (a local wall-clock time)."""
    with zipfile.ZipFile(zip_path) as zf:
        members = zf.infolist()
        if len(members) > max_members:
            raise ValueError(f"{len(members)} files in the zip (at most {max_members})")
        size = sum(m.file_size for m in members)
        if size > max_bytes:
            raise ValueError(f"unpacks to more than {max_bytes // 1024**2} MB")
        for m in members:
            rel = PurePosixPath(m.filename)
            if rel.is_absolute() or ".." in rel.parts or (m.external_attr >> 16) & 0o170000 == 0o120000:
                raise ValueError(f"unsafe entry {shown(m.filename)!r} (absolute path, '..' or a link)")
        bad = zf.testzip()
        if bad:
            raise ValueError(f"corrupt entry {shown(bad)!r}")
        zf.extractall(dest)
        if keep_times:
            for m in members:
                if not m.is_dir():
                    stamp = time.mktime(m.date_time + (0, 0, -1))
                    os.utime(dest / m.filename, (stamp, stamp))
    return size


def _download(src: Path, tmp: Path) -> Path:
    """The folder of the download: ``src`` itself, or the LMS's download zip unpacked (its times kept)."""
    if src.is_dir():
        return src
    if src.is_file() and zipfile.is_zipfile(src):
        dest = tmp / "download"
        dest.mkdir()
        try:
            _safe_extract(src, dest, MAX_DOWNLOAD_BYTES, MAX_DOWNLOAD_MEMBERS, keep_times=True)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise ValueError(f"cannot unzip the download {src}: {exc}") from exc
        return dest
    raise FileNotFoundError(f"{src} is neither a folder of student folders or zip files nor an LMS download zip")


def _unpack_zips(folder: Path, budget: list[int], notes: list[str], depth: int = 0) -> None:
    """Unpack every zip under ``folder`` in place (see the module's docstring); a bad zip becomes a note."""
    zips = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".zip" and p.is_file() and not p.is_symlink()
                  and not set(p.relative_to(folder).parts) & JUNK)
    for path in zips:
        rel = shown(str(path.relative_to(folder)))
        try:
            with zipfile.ZipFile(path) as zf:
                names = [m.filename for m in zf.infolist() if not set(PurePosixPath(m.filename).parts) & JUNK]
            tops = {PurePosixPath(n).parts[0] for n in names if PurePosixPath(n).parts}
            in_one_folder = len(tops) == 1 and all(len(PurePosixPath(n).parts) > 1 or n.endswith("/") for n in names)
            alone = [p for p in path.parent.iterdir() if p.name not in JUNK] == [path]
            target = path.parent if in_one_folder or alone else path.with_name(path.stem)
            budget[0] -= _safe_extract(path, target, max_bytes=budget[0])
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            notes.append(f"{rel} not unpacked: {exc}")
        path.unlink()
    if zips and depth + 1 < UNPACK_DEPTH:
        _unpack_zips(folder, budget, notes, depth + 1)


# -- a submission's folder ------------------------------------------------------------------------
def _notebook_root(folder: Path, expected: set[str]) -> tuple[Path | None, list[str]]:
    """The shallowest folder under ``folder`` holding an assignment notebook, and every notebook seen."""
    notebooks = [p for p in folder.rglob("*.ipynb") if not (set(p.relative_to(folder).parts) & JUNK)]
    matching = [p for p in notebooks if not expected or p.stem in expected]
    if not matching:
        return None, [shown(p.name) for p in notebooks]
    root = min(matching, key=lambda p: (len(p.relative_to(folder).parts), str(p))).parent
    return root, [shown(p.name) for p in notebooks]


def _junk_and_links(folder: str, names: list[str]) -> set[str]:
    """copytree's ignore: junk folders and symbolic links (a link could point at the grader's files)."""
    return {n for n in names if n in JUNK or Path(folder, n).is_symlink()}


def _place(item: Path, dest: Path) -> None:
    """Copy the file or folder ``item`` to ``dest`` (links and junk left out; an existing file is replaced)."""
    if item.is_symlink():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if item.is_dir():
        shutil.copytree(item, dest, ignore=_junk_and_links, dirs_exist_ok=True)
    else:
        shutil.copy2(item, dest)


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
        _place(item, dest / item.name)
    return sorted(p.name for p in dest.glob("*.ipynb"))


def checkpoint_names(stems: set[str]) -> set[str]:
    """The checkpoint files the assignment's notebooks read from ``checkpoints/`` (the reference's names)."""
    folders = notebook_folders()
    return {p.name for stem in stems if stem in folders and folders[stem].checkpoints_dir.is_dir()
            for p in folders[stem].checkpoints_dir.iterdir() if p.is_file()}


def _file_checkpoints(root: Path, names: set[str], notes: list[str]) -> None:
    """Loose checkpoint files beside the notebooks (a Canvas upload cannot hold a folder) into ``checkpoints/``."""
    for name in sorted(names):
        loose, home = root / name, root / "checkpoints" / name
        if loose.is_file() and not home.exists():
            home.parent.mkdir(exist_ok=True)
            loose.rename(home)
            notes.append(f"moved {name} into checkpoints/ (where the notebooks read it)")


def _tampering_notes(dest: Path, release_dir: Path) -> list[str]:
    """Per notebook of ``dest``: what its grading cells changed against the release."""
    import nbformat

    notes = []
    for path in sorted(dest.glob("*.ipynb")):
        release = release_dir / path.name
        if not release.exists():
            continue
        try:
            problems = compare(nbformat.read(path, as_version=4), nbformat.read(release, as_version=4))
        except Exception as exc:  # not a notebook at all: nbgrader will fail on it, say so now
            problems = [f"not a readable notebook ({exc.__class__.__name__})"]
        if problems:
            notes.append(f"{path.stem}: " + "; ".join(problems))
    return notes


# -- sources --------------------------------------------------------------------------------------
def _sources(folder: Path, id_pattern: str | None) -> tuple[list[Collected], dict[tuple, list[tuple[Path, Source]]]]:
    """Every name in ``folder``: the skipped ones as entries, the others grouped by student key."""
    entries, groups = [], {}
    for item in sorted(folder.iterdir(), key=lambda p: os.fsencode(p.name)):
        name = item.name
        if name in METADATA:
            entries.append(Collected(shown(name), None, "skipped", "operating system metadata"))
        elif name.startswith("."):
            entries.append(Collected(shown(name), None, "ignored", "hidden name (starts with '.'): not collected; "
                                     "rename it if it is a submission"))
        elif item.is_symlink():
            entries.append(Collected(shown(name), None, "ignored", "a symbolic link: never followed"))
        else:
            source = parse(name, id_pattern)
            if source.lms in ("canvas", "moodle") or item.is_dir() or item.suffix.lower() == ".zip":
                groups.setdefault(source.key, []).append((item, source))
            else:
                entries.append(Collected(shown(name), None, "ignored", "not a folder, a zip file or an LMS's file name"))
    return entries, groups


def _gather(items: list[tuple[Path, Source]], staging: Path, wanted: set[str]) -> tuple[list[Path], list[Collected]]:
    """Copy one student's sources into ``staging``; returns the sources used and entries for the others."""
    used, others = [], []
    lms = items[0][1].lms
    if lms in ("canvas", "moodle"):
        uploads = [(i, s) for i, s in items if s.kind == "upload"]
        for item, source in items:
            if source.kind != "upload":
                what = {"text": "a Canvas text entry", "link": "a Canvas URL entry",
                        "onlinetext": "Moodle's online text"}.get(source.kind, f"Moodle's {source.kind} plugin")
                others.append(Collected(shown(item.name), None, "ignored", f"{what}, not a file upload"))
        newest: dict[str, tuple[Path, Source]] = {}
        ordered = sorted(uploads, key=lambda p: (p[1].attachment or 0, p[0].stat().st_mtime))
        for item, source in ordered:  # oldest first: a later upload of a name replaces an earlier one
            name = resubmitted_name(source.file, wanted) if source.file else ""
            if name in newest:
                older = newest[name][0]
                others.append(Collected(shown(older.name), None, "older upload",
                                        f"replaced by {shown(item.name)} (a later upload of {shown(name)})"))
                used.remove(older)
            newest[name] = (item, source)
            used.append(item)
            _place(item, staging / name if name else staging)
    else:
        ordered = sorted(items, key=lambda p: p[0].stat().st_mtime, reverse=True)
        item = ordered[0][0]
        for other, _ in ordered[1:]:
            others.append(Collected(shown(other.name), None, "duplicate",
                                    f"same student as {shown(item.name)}, which is newer and was kept"))
        used.append(item)
        _place(item, staging / (item.name if item.is_file() else ""))
    return used, others


def _source_time(used: list[Path], tz: str) -> str:
    """The newest time the LMS wrote on these sources (files, or the files of folders), read in ``tz``."""
    stamps = [p.stat().st_mtime for item in used
              for p in ([item] if item.is_file() else [q for q in item.rglob("*") if q.is_file() and not q.is_symlink()])]
    return late.iso(late.file_time(max(stamps), tz)) if stamps else ""


def _collect_student(student: str, items: list[tuple[Path, Source]], course: Course, expected: set[str],
                     wanted: set[str], checkpoints: set[str], tmp: Path, tz: str | None) -> list[Collected]:
    staging = tmp / "staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    used, others = _gather(items, staging, wanted)
    for entry in others:
        entry.student = student
    label = "; ".join(shown(p.name) for p in used)
    notes: list[str] = []
    _unpack_zips(staging, [MAX_SUBMISSION_BYTES], notes)
    root, seen = _notebook_root(staging, expected)
    if root is None:
        if notes:
            return [Collected(label, student, "unreadable", "; ".join(notes)), *others]
        note = f"no notebook of the assignment (found: {', '.join(seen)})" if seen else "no notebook at all"
        return [Collected(label, student, "empty", note), *others]
    _file_checkpoints(root, checkpoints, notes)
    dest = course.submitted_dir(student)
    notebooks = _copy_submission(root, dest, expected)
    extra = sorted(set(seen) - set(notebooks))
    missing = sorted(expected - {Path(n).stem for n in notebooks})
    notes += [f"ignored notebooks not in the assignment: {', '.join(extra)}"] if extra else []
    notes += [f"tampered: {t}" for t in _tampering_notes(dest, course.release_dir)]
    source = items[0][1]
    lms = source.lms
    timed = bool(tz) and lms != "canvas"  # Canvas's zip times are when it built the zip
    row = {"student": student, "name": shown(source.person) if lms else "", "source": label, "lms": lms,
           "lms_id": source.lms_id, "late": any(s.late for _, s in items),
           "submitted_at": _source_time(used, tz) if timed else "",
           "time_source": f"the LMS's file times, read in {tz}" if timed else ""}
    return [Collected(label, student, "collected", "; ".join(notes), notebooks, missing, row), *others]


def _apply_times(entries: list[Collected], times) -> None:
    """Submission times from the LMS's own record (``late.read_times``) win over file times."""
    by_lms = {(r.lms, r.lms_id): r for r in times.itertuples() if r.lms_id}
    by_student = {r.student: r for r in times.itertuples() if r.student}
    for entry in entries:
        if entry.status != "collected":
            continue
        found = by_lms.get((entry.lms["lms"], entry.lms["lms_id"])) or by_student.get(entry.student)
        if found is not None:
            entry.lms.update(submitted_at=found.submitted_at, time_source=found.time_source)


def _write_timestamps(course: Course, entries: list[Collected]) -> None:
    """nbgrader's ``timestamp.txt`` where the submission time is known (UTC)."""
    for entry in entries:
        if entry.status == "collected" and entry.lms.get("submitted_at"):
            t = late.parse_time(entry.lms["submitted_at"])
            (course.submitted_dir(entry.student) / "timestamp.txt").write_text(t.strftime("%Y-%m-%d %H:%M:%S.%f %Z"))


def collect(src: Path, course: Course, id_pattern: str | None = None, progress: bool = True,
            tz: str | None = None, times: Path | None = None) -> CollectReport:
    """Collect every student in ``src`` (a folder or the LMS's download zip) into ``course``'s submissions.

    ``tz``: the zone the LMS's zip times are in (without it no file time is used); ``times``: a file
    of submission times from the LMS (:func:`autograder.pipeline.late.read_times`).
    """
    from tqdm.auto import tqdm

    src = Path(src)
    if tz:
        late.zone(tz)
    time_table = late.read_times(Path(times), tz) if times else None
    expected = {p.stem for p in course.release_dir.glob("*.ipynb")} or {p.stem for p in course.source_dir.glob("*.ipynb")}
    checkpoints = checkpoint_names(expected)
    wanted = {f"{stem}.ipynb" for stem in expected} | checkpoints
    roster = read_roster(course)
    known = {(r.lms, r.lms_id): student for student, r in roster.iterrows() if r.lms and r.lms_id}
    with tempfile.TemporaryDirectory(prefix="a2kit-collect-") as tmp:
        folder = _download(src, Path(tmp))
        entries, groups = _sources(folder, id_pattern)
        ids = student_ids(list(groups), {key: items[0][1].person for key, items in groups.items()}, known)
        for key in tqdm(sorted(groups, key=lambda k: ids[k]), desc="collect", unit="student", disable=not progress):
            try:
                entries += _collect_student(ids[key], groups[key], course, expected, wanted, checkpoints, Path(tmp), tz)
            except Exception as exc:  # one student's files never stop the class
                names = "; ".join(shown(p.name) for p, _ in groups[key])
                entries.append(Collected(names, ids[key], "unreadable", f"not collected: {exc.__class__.__name__}: "
                                         f"{shown(str(exc))}"))
    if time_table is not None:
        _apply_times(entries, time_table)
    _write_timestamps(course, entries)
    update_roster(course, [e.lms for e in entries if e.status == "collected"])
    return CollectReport(entries)
