"""a2kit collect: student folders and LMS zips become nbgrader submissions; problems are reported."""
import os
import time
import zipfile

import pytest

from autograder.pipeline.collect import collect, student_id
from toy_notebooks import graded_toy_course


@pytest.mark.parametrize("name, expected", [
    ("alice", "alice"),
    ("Bob.zip", "bob"),
    ("smithbob_12345_67890_a2.zip", "smithbob"),            # Canvas
    ("smithbob_late_12345_67890_a2.zip", "smithbob"),
    ("Carol Jones_998877_assignsubmission_file_", "carol_jones"),  # Moodle
    ("José Núñez!!", "jos_n_ez"),
])
def test_student_ids_from_names(name, expected):
    assert student_id(name) == expected


def test_custom_id_pattern():
    assert student_id("A2-s1234567-final.zip", r"^A2-(s\d+)-") == "s1234567"


@pytest.fixture
def course(tmp_path):
    return graded_toy_course(tmp_path)[0]


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
    _zip(src / "smithbob_1_2_a2.zip", {"a2/01_toy.ipynb": nb, "__MACOSX/a2/._01_toy.ipynb": "junk"})
    old = src / "SmithBob.zip"
    _zip(old, {"01_toy.ipynb": nb})
    past = time.time() - 3600
    os.utime(old, (past, past))  # older: the duplicate that is set aside
    _zip(src / "empty.zip", {"readme.txt": "I forgot the notebook"})
    (src / "broken.zip").write_bytes(b"this is not a zip")
    _zip(src / "evil.zip", {"../../outside.ipynb": nb})
    (src / "carol").mkdir()
    (src / "carol" / "01_toy.ipynb").write_bytes(nb)
    (src / "carol" / "Untitled.ipynb").write_bytes(nb)
    (src / "notes.txt").write_text("stray")

    report = collect(src, course, progress=False)
    by_source = {e.source: e for e in report.entries}
    assert report.students == ["alice", "carol", "smithbob"]
    assert by_source["SmithBob.zip"].status == "duplicate" and "smithbob_1_2_a2.zip" in by_source["SmithBob.zip"].message
    assert by_source["empty.zip"].status == "empty"
    assert by_source["broken.zip"].status == "unreadable"
    assert by_source["evil.zip"].status == "unreadable" and ".." in by_source["evil.zip"].message
    assert by_source["notes.txt"].status == "ignored"
    assert "Untitled.ipynb" in by_source["carol"].message
    assert report.needs_attention
    assert not (tmp_path / "outside.ipynb").exists()

    alice = course.submitted_dir("alice")
    assert (alice / "01_toy.ipynb").read_bytes() == nb
    assert (alice / "checkpoints" / "m.pt").read_bytes() == b"weights"
    assert not (alice / "checkpoints" / "passwd").exists()  # links are never followed
    assert (alice / "timestamp.txt").exists()
    assert sorted(p.name for p in course.submitted_dir("smithbob").iterdir()) == ["01_toy.ipynb", "timestamp.txt"]
    assert not (course.submitted_dir("carol") / "Untitled.ipynb").exists()
    assert set(report.table().columns) >= {"source", "student", "status", "note"}


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
    import nbformat

    release = nbformat.read(course.release_dir / "01_toy.ipynb", as_version=4)
    src = tmp_path / "inbox"

    def hand_in(student, edit):
        nb = nbformat.from_dict(release)
        edit(nb)
        (src / student).mkdir(parents=True)
        nbformat.write(nb, src / student / "01_toy.ipynb")

    def cell(nb, gid):
        return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)

    hand_in("honest", lambda nb: setattr(cell(nb, "double"), "source", "def double(x):\n    return 2 * x"))
    hand_in("deleter", lambda nb: nb.cells.remove(cell(nb, "test_double_hidden")))
    hand_in("editor", lambda nb: setattr(cell(nb, "test_double"), "source", "pass"))
    hand_in("locksmith", lambda nb: setattr(cell(nb, "imports"), "source", "import numpy as np\nimport os"))
    hand_in("renamer", lambda nb: cell(nb, "test_double").metadata.nbgrader.__setitem__("grade_id", "my_test"))
    notes = {e.student: e.message for e in collect(src, course, progress=False).entries}
    assert notes["honest"] == ""
    assert "test cell test_double_hidden deleted" in notes["deleter"]
    assert "test cell test_double edited" in notes["editor"]
    assert "read-only cell imports edited" in notes["locksmith"]
    assert "test cell test_double deleted" in notes["renamer"] and "unknown cell id my_test" in notes["renamer"]
