"""a2kit collect: what LMSs hand out (Canvas, Moodle, plain folders) becomes nbgrader submissions; problems are listed."""
import os
import time
import zipfile
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from autograder.harness.cells import find_cell
from autograder.pipeline import lms
from autograder.pipeline.collect import collect
from autograder.pipeline.downloads import parse, plain_id, slug, student_ids
from lms_downloads import CHECKPOINT, CLASS, LAYOUTS, LMS_ZONE, SOURCES, build, canvas_times, moodle_worksheet, unzip
from toy_notebooks import graded_toy_course


# -- names ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [  # (lms, lms_id, person, late, attachment, file, kind)
    ("smithalice_12345_67890_a2.zip", ("canvas", "12345", "smithalice", False, 67890, "a2.zip", "upload")),
    ("smithalice_LATE_12345_67891_01_theory-1.ipynb", ("canvas", "12345", "smithalice", True, 67891, "01_theory-1.ipynb", "upload")),
    ("王小明_22222_70001_a2.zip", ("canvas", "22222", "王小明", False, 70001, "a2.zip", "upload")),
    ("LATE_anon_Xy7Qp_70002_a2.zip", ("canvas", "anon_Xy7Qp", "", True, 70002, "a2.zip", "upload")),  # anonymous grading
    ("smithalice_12345_text.html", ("canvas", "12345", "smithalice", False, None, "", "text")),
    ("Alice Smith_998877_assignsubmission_file_", ("moodle", "998877", "Alice Smith", False, None, "", "upload")),
    ("Alice Smith_998877_assignsubmission_file", ("moodle", "998877", "Alice Smith", False, None, "", "upload")),
    ("Alice Smith_998877_assignsubmission_file_a2.zip", ("moodle", "998877", "Alice Smith", False, None, "a2.zip", "upload")),
    ("Participant_998877_assignsubmission_onlinetext_", ("moodle", "998877", "Participant", False, None, "", "onlinetext")),
    ("alice", ("", "", "", False, None, "", "upload")),
    ("alice_2024_final.zip", ("", "", "", False, None, "", "upload")),
])
def test_lms_names_say_who_and_what(name, expected):
    s = parse(name)
    assert (s.lms, s.lms_id, s.person, s.late, s.attachment, s.file, s.kind) == expected


def test_ids_are_keyed_by_lms_id_never_by_a_transliterated_name():
    assert [slug(n) for n in ("José Núñez!!", "Bob.zip", "王小明", "m\udcfcller")] == ["jose_nunez", "bob_zip", "", "muller"]
    assert plain_id("王小明") != plain_id("王小红") and plain_id("王小明").startswith("unnamed_")
    keys = [("canvas", "1"), ("canvas", "2"), ("moodle", "3"), ("", "alice"), ("canvas", "4"), ("canvas", "5")]
    persons = {("canvas", "1"): "王小明", ("canvas", "2"): "王小明", ("moodle", "3"): "Alice Smith",
               ("canvas", "4"): "alice", ("canvas", "5"): "smithbob"}
    ids = student_ids(keys, persons, known={("canvas", "5"): "bob_from_last_week"})
    assert ids == {("canvas", "1"): "canvas_1", ("canvas", "2"): "canvas_2", ("moodle", "3"): "alice_smith",
                   ("", "alice"): "alice", ("canvas", "4"): "alice_4", ("canvas", "5"): "bob_from_last_week"}
    assert student_ids([("custom", "s1")], {("custom", "s1"): "S-1"}, {}) == {("custom", "s1"): "s_1"}


def test_custom_id_pattern():
    assert parse("A2-s1234567-final.zip", r"^A2-(s\d+)-").key == ("", "s1234567")


# -- the LMS download corpus ----------------------------------------------------------------------
@pytest.fixture
def course(tmp_path):
    return graded_toy_course(tmp_path)[0]


def _work(course, student) -> str:
    """Which hand-in of the class a collected submission is (solution, wrong, release), from its code."""
    nb = nbformat.read(course.submitted_dir(student) / "01_toy.ipynb", as_version=4)
    source = find_cell(nb, "double").source
    return next(w for w, text in SOURCES.items() if text in source)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_lms_layout_is_collected_whole(layout, course, tmp_path):
    download = build(layout, course, tmp_path / "downloads")
    for src in (download.zip_path, unzip(download.zip_path, tmp_path / "unzipped")):  # the zip, or the folder
        report = collect(src, course, progress=False)
        assert report.students == sorted(download.expected), report.table()
        roster = lms.read_roster(course)
        for student, want in download.expected.items():
            assert _work(course, student) == want["work"], student
            assert (course.submitted_dir(student) / "checkpoints" / "model.pt").read_bytes() == CHECKPOINT
            row = roster.loc[student]
            assert (row["lms"], row["lms_id"], row["late"]) == (want["lms"], want["lms_id"], str(want["late"]))
        status = {e.source: e.status for e in report.entries}
        assert [s for s in download.older if status.get(s) != "older upload"] == []
        assert [s for s in download.ignored if status.get(s) != "ignored"] == []
        others = [e for e in report.entries if e.status not in ("collected", "older upload", "ignored", "skipped")]
        assert others == [] and all(e.message == "" for e in report.entries if e.status == "collected"), report.table()
        assert report.needs_attention == bool(download.ignored)


def test_two_students_with_one_name_are_two_students(course, tmp_path):
    download = build("canvas_zip", course, tmp_path / "downloads")
    report = collect(download.zip_path, course, progress=False)
    wangs = [e for e in report.entries if e.lms.get("name") == "王小明"]
    assert sorted(e.student for e in wangs) == ["canvas_22222", "canvas_22223"]
    assert {_work(course, e.student) for e in wangs} == {"release", "solution"}
    # re-collected later with a third namesake: the first two keep their ids (the roster knows them)
    again = collect(download.zip_path, course, progress=False)
    assert sorted(e.student for e in again.entries if e.lms.get("name") == "王小明") == ["canvas_22222", "canvas_22223"]


# -- times ----------------------------------------------------------------------------------------
@pytest.fixture
def machine_zone(monkeypatch):
    """Set this process's local time zone (``TZ``, as a machine's would be); restored afterwards."""
    def set_zone(name):
        monkeypatch.setenv("TZ", name)
        time.tzset()
    yield set_zone
    monkeypatch.undo()
    time.tzset()


def test_zip_times_are_read_in_the_zone_named_never_the_machines(course, tmp_path, machine_zone):
    download = build("moodle_folders", course, tmp_path / "downloads")
    want = {s.moodle_id: pd.Timestamp(s.submitted).tz_convert("UTC").isoformat() for s in CLASS}
    for i, machine in enumerate(["UTC", "America/New_York", "Asia/Tokyo"]):
        machine_zone(machine)
        # the download itself, or unzipped (and collected) on that machine
        for src in (download.zip_path, unzip(download.zip_path, tmp_path / f"unzipped_{i}")):
            collect(src, course, progress=False, tz=LMS_ZONE)
            assert lms.read_roster(course)["submitted_at"].to_dict() == want, (machine, src)
    collect(download.zip_path, course, progress=False)  # without --tz no zip time is used
    assert set(lms.read_roster(course)["submitted_at"]) == {""}


def test_canvas_zip_times_are_never_used_its_late_mark_and_times_file_are(course, tmp_path):
    download = build("canvas_files", course, tmp_path / "downloads")
    collect(download.zip_path, course, progress=False, tz="UTC")  # Canvas's zip times are when it built the zip
    roster = lms.read_roster(course)
    assert set(roster["submitted_at"]) == {""} and roster.loc["smithalice", "late"] == "False"
    assert roster.loc["nunezjose", "late"] == "True"
    collect(download.zip_path, course, progress=False, times=canvas_times(tmp_path / "times.csv"))
    roster = lms.read_roster(course)
    assert roster.loc["nunezjose", "submitted_at"] == "2026-03-02T08:30:00+00:00"
    assert "times.csv" in roster.loc["nunezjose", "time_source"]
    assert (course.submitted_dir("nunezjose") / "timestamp.txt").read_text().startswith("2026-03-02 08:30:00")


def test_moodle_worksheet_times_need_the_zone_they_are_written_in(course, tmp_path):
    download = build("moodle_flat", course, tmp_path / "downloads")
    sheet = moodle_worksheet(tmp_path / "worksheet.csv", zone="America/New_York")
    with pytest.raises(ValueError, match="pass --tz"):
        collect(download.zip_path, course, progress=False, times=sheet)
    collect(download.zip_path, course, progress=False, times=sheet, tz="America/New_York")
    roster = lms.read_roster(course)
    want = {s.moodle_id: pd.Timestamp(s.submitted).tz_convert("UTC").floor("min").isoformat() for s in CLASS}
    assert roster["submitted_at"].to_dict() == want  # the worksheet's times are to the minute
    assert set(roster["time_source"]) == {"Moodle's grading worksheet, read in America/New_York"}


# -- everything listed, nothing stops the class ---------------------------------------------------
def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_collect_reports_every_problem(course, tmp_path):
    nb = (course.release_dir / "01_toy.ipynb").read_bytes()
    src = tmp_path / "inbox"
    (src / "alice" / "a2" / "checkpoints").mkdir(parents=True)
    (src / "alice" / "a2" / "01_toy.ipynb").write_bytes(nb)
    (src / "alice" / "a2" / "checkpoints" / "m.pt").write_bytes(b"weights")
    os.symlink("/etc/passwd", src / "alice" / "a2" / "checkpoints" / "passwd")
    _zip(src / "smithbob.zip", {"a2/01_toy.ipynb": nb, "__MACOSX/a2/._01_toy.ipynb": "junk"})
    old = src / "SmithBob"
    old.mkdir()
    (old / "01_toy.ipynb").write_bytes(nb)
    past = time.time() - 3600
    os.utime(old, (past, past))  # older: the duplicate that is set aside
    _zip(src / "empty.zip", {"readme.txt": "I forgot the notebook"})
    (src / "broken.zip").write_bytes(b"this is not a zip")
    _zip(src / "evil.zip", {"../../outside.ipynb": nb})
    (src / "carol").mkdir()
    (src / "carol" / "01_toy.ipynb").write_bytes(nb)
    (src / "carol" / "Untitled.ipynb").write_bytes(nb)
    (src / "notes.txt").write_text("stray")
    os.symlink("/etc", src / "linked")
    (src / ".DS_Store").write_bytes(b"\0")

    report = collect(src, course, progress=False)
    by_source = {e.source: e for e in report.entries}
    assert report.students == ["alice", "carol", "smithbob"]
    assert by_source["SmithBob"].status == "duplicate" and "smithbob.zip" in by_source["SmithBob"].message
    assert by_source["empty.zip"].status == "empty"
    assert by_source["broken.zip"].status == "unreadable"
    assert by_source["evil.zip"].status == "unreadable" and ".." in by_source["evil.zip"].message
    assert by_source["notes.txt"].status == "ignored"
    assert by_source["linked"].status == "ignored" and "link" in by_source["linked"].message
    assert by_source[".DS_Store"].status == "skipped" and by_source[".DS_Store"].ok
    assert "Untitled.ipynb" in by_source["carol"].message
    assert report.needs_attention
    assert not (tmp_path / "outside.ipynb").exists()

    alice = course.submitted_dir("alice")
    assert (alice / "01_toy.ipynb").read_bytes() == nb
    assert (alice / "checkpoints" / "m.pt").read_bytes() == b"weights"
    assert not (alice / "checkpoints" / "passwd").exists()  # links are never followed
    assert not (alice / "timestamp.txt").exists()  # no time known: nbgrader gets none
    assert sorted(p.name for p in course.submitted_dir("smithbob").iterdir()) == ["01_toy.ipynb"]
    assert not (course.submitted_dir("carol") / "Untitled.ipynb").exists()
    assert set(report.table().columns) >= {"source", "student", "status", "note"}


def test_file_names_are_data(course, tmp_path):
    """Any bytes a file system or zip holds: collected or listed with a reason, shown escaped, never a crash."""
    nb = (course.release_dir / "01_toy.ipynb").read_bytes()
    src = tmp_path / "inbox"
    src.mkdir()
    raw = os.fsencode(src)
    _zip(os.fsdecode(raw + b"/m\xfcller_2.zip"), {"01_toy.ipynb": nb})           # Latin-1, not UTF-8
    _zip(src / "..%2F..%2Fetc%2Fpasswd.zip", {"01_toy.ipynb": nb})
    for name in ("王小明", "王小红", "line\nbreak"):
        (src / name).mkdir()
        (src / name / "01_toy.ipynb").write_bytes(nb)
    odd = os.fsdecode(raw + b"/\xe9t\xe9")  # a folder hand-in holding an undecodable file name
    os.mkdir(odd)
    (Path(odd) / "01_toy.ipynb").write_bytes(nb)
    (Path(odd) / os.fsdecode(b"donn\xe9es.txt")).write_bytes(b"x")

    report = collect(src, course, progress=False)
    by_source = {e.source: e for e in report.entries}
    assert by_source["m\\xfcller_2.zip"].status == "collected" and by_source["m\\xfcller_2.zip"].student == "muller_2"
    assert by_source["..%2F..%2Fetc%2Fpasswd.zip"].status == "ignored"
    assert "hidden name" in by_source["..%2F..%2Fetc%2Fpasswd.zip"].message
    wangs = {by_source[n].student for n in ("王小明", "王小红")}
    assert len(wangs) == 2 and all(w.startswith("unnamed_") for w in wangs)
    assert by_source["line\\nbreak"].student == "line_break"
    assert by_source["\\xe9t\\xe9"].student == "ete"
    assert (course.submitted_dir("ete") / os.fsdecode(b"donn\xe9es.txt")).read_bytes() == b"x"
    roster = (course.root / "lms_students.csv").read_text(encoding="utf-8")  # written whole, as text
    assert "m\\xfcller_2.zip" in roster and "line\\nbreak" in roster
    text = report.table().to_string()
    assert "\udcfc" not in text and "\n break" not in text


def test_clean_inbox_needs_no_attention_and_recollect_replaces(course, tmp_path):
    nb = (course.release_dir / "01_toy.ipynb").read_bytes()
    src = tmp_path / "inbox"
    src.mkdir()
    _zip(src / "dave.zip", {"01_toy.ipynb": nb, "extra/notes.txt": "x"})
    first = collect(src, course, progress=False)
    assert first.students == ["dave"] and not first.needs_attention
    _zip(src / "dave.zip", {"01_toy.ipynb": nb})
    collect(src, course, progress=False)
    assert not (course.submitted_dir("dave") / "extra").exists()  # a new hand-in replaces the old one


def test_zip_bomb_is_refused(course, tmp_path, monkeypatch):
    import autograder.pipeline.collect as c

    monkeypatch.setattr(c, "MAX_SUBMISSION_BYTES", 1000)
    src = tmp_path / "inbox"
    src.mkdir()
    _zip(src / "eve.zip", {"01_toy.ipynb": "0" * 5000})
    report = collect(src, course, progress=False)
    assert report.entries[0].status == "unreadable" and "MB" in report.entries[0].message


def test_tampered_notebooks_are_reported(course, tmp_path):
    release = nbformat.read(course.release_dir / "01_toy.ipynb", as_version=4)
    src = tmp_path / "inbox"

    def hand_in(student, edit):
        nb = nbformat.from_dict(release)
        edit(nb)
        (src / student).mkdir(parents=True)
        nbformat.write(nb, src / student / "01_toy.ipynb")

    def cell(nb, gid):
        return find_cell(nb, gid)

    def duplicate(nb):
        nb.cells.append(nbformat.from_dict(dict(cell(nb, "test_double"), id="copy1")))

    def bonus(nb):
        nb.cells.append(nbformat.v4.new_code_cell("pass", metadata={"nbgrader": {
            "grade": True, "solution": False, "locked": True, "grade_id": "bonus", "points": 100, "schema_version": 3}}))

    hand_in("honest", lambda nb: setattr(cell(nb, "double"), "source", "def double(x):\n    return 2 * x"))
    hand_in("deleter", lambda nb: nb.cells.remove(cell(nb, "test_double_hidden")))
    hand_in("editor", lambda nb: setattr(cell(nb, "test_double"), "source", "pass"))
    hand_in("locksmith", lambda nb: setattr(cell(nb, "imports"), "source", "import numpy as np\nimport os"))
    hand_in("renamer", lambda nb: cell(nb, "test_double").metadata.nbgrader.__setitem__("grade_id", "my_test"))
    hand_in("copier", duplicate)
    hand_in("retagger", lambda nb: cell(nb, "double").metadata.nbgrader.update(solution=False, grade=True, points=5))
    hand_in("bonus", bonus)
    notes = {e.student: e.message for e in collect(src, course, progress=False).entries}
    assert notes["honest"] == ""
    assert "test cell test_double_hidden (2 points): deleted" in notes["deleter"]
    assert "test cell test_double (1 point): edited" in notes["editor"]
    assert "read-only cell imports: edited" in notes["locksmith"]
    assert "test cell test_double (1 point): renamed to 'my_test'" in notes["renamer"]
    assert "test cell test_double (1 point): duplicated" in notes["copier"]
    assert "solution cell double: re-tagged as a test cell (5 points)" in notes["retagger"]
    assert "test cell bonus (100 points): not in the release" in notes["bonus"]
