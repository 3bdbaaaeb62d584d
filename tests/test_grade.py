"""The grading engine on a toy notebook: grades equal plain serial nbgrader's, re-runs grade only
what changed, hostile submissions are contained, reference values reach only the test cells.

One class is graded once (module fixture, 2 workers) and every test reads its outcome.
"""
from __future__ import annotations

import json
import shutil
import socket
import threading
from pathlib import Path

import nbformat as nbf
import pytest

from autograder.corpus import Case, Edit, build_submission
from autograder.course import Course
from toy_notebooks import toy_notebook

KIT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # one grading of the class: ~1 minute on 2 cores


def reference_notebook():
    """The toy notebook (``double(x)``, a public test worth 1 point) whose 2-point test's hidden part
    reads reference values."""
    nb = toy_notebook()
    nb.cells[-1].source = (
        'assert double(3) == 6, "double(3) should be 6"\n### BEGIN HIDDEN TESTS\nimport a2lib.reference\n'
        'ref = a2lib.reference.load("toy")\nassert double(int(ref["x"])) == int(ref["want"]), '
        '"double is wrong on the reference case"\n### END HIDDEN TESTS')
    return nb


WRONG = "def double(x):\n    return abs(2 * x)\n"
# Hostile submissions: each replaces the solution cell; the tests below check the effects from outside.
LOOP = "while True:\n    pass\n"
MEMORY = ("import numpy as np\ndef double(x):\n    return 2 * x\n"
          "big = np.ones(8 * 2**30 // 8)  # 8 GB against a 2 GB limit\n")
BOMB = ("import os, time\nstarted = 0\nfor _ in range(5000):  # bounded: stops by itself at 5,000\n    try:\n"
        "        pid = os.fork()\n    except OSError:\n        break\n    if pid == 0:  # exits at once, but counts until reaped\n"
        "        os._exit(0)\n    started += 1\nfor _ in range(started):\n    os.wait()\n"
        "open('bomb.txt', 'w').write(str(started))\ndef double(x):\n    return 2 * x\n")
CHEAT = ("def double(x):\n    import a2lib.reference\n    return int(a2lib.reference.load('toy')['want'])\n")
SUICIDE = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"


def snoop(port: int, gradebook: Path, outside: Path, references: Path) -> str:
    """A cell that tries to reach the network, read the grader's secrets and damage files outside."""
    return f'''import json, os, socket, glob
found = {{}}
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"hi")
    found["network"] = True
except OSError:
    found["network"] = False
found["gradebook"] = os.path.exists({str(gradebook)!r})
found["references_on_disk"] = glob.glob({str(references.parent)!r} + "/**/toy.json", recursive=True) + \
    [p for p in [{str(KIT / "autograder")!r}] if os.path.exists(p)]
try:
    import a2lib.reference
    found["references_loaded"] = str(a2lib.reference.load("toy"))
except Exception as exc:
    found["references_loaded"] = exc.__class__.__name__
for path in [{str(gradebook)!r}, {str(outside)!r}]:
    try:
        os.remove(path)
        found.setdefault("deleted", []).append(path)
    except OSError:
        pass
try:
    open({str(gradebook)!r}, "w").write("garbage")
    found["wrote_gradebook"] = True
except OSError:
    found["wrote_gradebook"] = False
json.dump(found, open("snoop.json", "w"))
def double(x):
    return 2 * x
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded by the engine (2 workers), and the same submissions by plain serial nbgrader."""
    from autograder.grade import grade_submissions

    tmp = tmp_path_factory.mktemp("grade")
    notebooks = tmp / "notebooks"
    notebooks.mkdir()
    nbf.write(reference_notebook(), notebooks / "01_toy.ipynb")
    references = tmp / "reference"
    references.mkdir()
    (references / "toy.json").write_text(json.dumps({"x": -7, "want": -14}))
    outside = tmp / "outside.txt"
    outside.write_text("keep me")

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(1)
    connections = []
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            try:
                connections.append(server.accept()[0].recv(10))
            except OSError:
                pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()

    course = Course(tmp / "course")
    course.sync_source(notebooks)
    course.generate_release()
    gradebook = course.root / "gradebook.db"
    edits = {"solution": None, "wrong": WRONG, "loop": LOOP, "memory": MEMORY, "bomb": BOMB, "cheat": CHEAT,
             "suicide": SUICIDE, "snoop": snoop(server.getsockname()[1], gradebook, outside, references)}
    for name, source in edits.items():
        build_submission(Case(name, name, "solution", ["01_toy"], [Edit("01_toy", "double", source)] if source else []),
                         course)

    mp = pytest.MonkeyPatch()
    mp.setenv("A2_REFERENCE_DIR", str(references))
    try:
        before = gradebook.stat().st_mtime_ns
        report = grade_submissions(course, workers=2, cell_timeout_s=10, timeout_s=120, memory_gb=2, progress=False)
        # Plain serial nbgrader on the trusted submissions, for the equality check.
        serial = Course(tmp / "serial")
        shutil.copytree(course.source_dir, serial.source_dir)
        serial.generate_release()
        for name in ("solution", "wrong"):
            shutil.copytree(course.submitted_dir(name), serial.submitted_dir(name))
            assert serial.api().autograde(serial.assignment, name)["success"]
    finally:
        mp.undo()
        stop.set()
        listener.join()
        server.close()
    return {"course": course, "report": report, "serial": serial, "outside": outside, "connections": connections,
            "references": references, "gradebook_mtime": before}


def _points(report, student):
    return {gid: s for gid, (s, _) in report.results[student].scores["01_toy"].items()}


def test_grades_equal_serial_nbgrader(graded):
    course, serial = graded["course"], graded["serial"]
    for student in ("solution", "wrong"):
        assert graded["report"].results[student].status == "graded"
        assert course.scores(student) == serial.scores(student)
        mine = nbf.read(course.autograded_dir(student) / "01_toy.ipynb", as_version=4)
        theirs = nbf.read(serial.autograded_dir(student) / "01_toy.ipynb", as_version=4)
        assert [c.get("outputs", []) for c in mine.cells] == [c.get("outputs", []) for c in theirs.cells]
    assert _points(graded["report"], "solution") == {"test_double": 1.0, "test_double_hidden": 2.0}
    assert _points(graded["report"], "wrong") == {"test_double": 1.0, "test_double_hidden": 0.0}


def test_infinite_loop_is_interrupted_and_scored(graded):
    result = graded["report"].results["loop"]
    assert result.status == "graded"
    assert _points(graded["report"], "loop") == {"test_double": 0.0, "test_double_hidden": 0.0}
    assert "time limit" in result.message


def test_memory_bomb_hits_the_limit_and_is_reported(graded):
    result = graded["report"].results["memory"]
    assert result.status == "graded" and "memory limit" in result.message
    assert result.peak_memory_mb < 2048


def test_process_bomb_stops_at_the_limit(graded):
    from autograder.sandbox import Limits

    started = int((graded["course"].autograded_dir("bomb") / "bomb.txt").read_text())
    assert 0 < started < Limits().nproc
    assert _points(graded["report"], "bomb") == {"test_double": 1.0, "test_double_hidden": 2.0}


def test_no_network_no_secrets_no_damage_outside(graded):
    found = json.loads((graded["course"].autograded_dir("snoop") / "snoop.json").read_text())
    assert found["network"] is False and graded["connections"] == []
    assert found["gradebook"] is False and found["wrote_gradebook"] is False
    assert found["references_on_disk"] == [] and found["references_loaded"] == "FileNotFoundError"
    assert "deleted" not in found and graded["outside"].read_text() == "keep me"
    assert (graded["references"] / "toy.json").exists()
    # the real hidden test still got its reference values: full marks
    assert _points(graded["report"], "snoop") == {"test_double": 1.0, "test_double_hidden": 2.0}


def test_student_code_cannot_read_reference_values_during_a_test(graded):
    assert _points(graded["report"], "cheat") == {"test_double": 0.0, "test_double_hidden": 0.0}
    nb = nbf.read(graded["course"].autograded_dir("cheat") / "01_toy.ipynb", as_version=4)
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "PermissionError" in outputs


def test_a_dead_kernel_is_retried_then_reported(graded):
    result = graded["report"].results["suicide"]
    assert result.attempts == 2
    assert result.status == "failed" and "kernel" in result.message
    assert graded["report"].needs_attention


def test_rerun_grades_only_what_changed(graded, monkeypatch):
    from autograder.grade import grade_submissions

    monkeypatch.setenv("A2_REFERENCE_DIR", str(graded["references"]))
    course = graded["course"]
    nb_path = course.submitted_dir("wrong") / "01_toy.ipynb"
    nb = nbf.read(nb_path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "double")
    cell.source = "def double(x):\n    return x + x\n"
    nbf.write(nb, nb_path)
    report = grade_submissions(course, ["solution", "wrong"], workers=1, progress=False,
                               env={"A2_FAST": "1"})
    assert report.results["solution"].status == "unchanged"
    assert report.results["solution"].scores == course.scores("solution")
    assert report.results["wrong"].status == "graded"
    assert _points(report, "wrong") == {"test_double": 1.0, "test_double_hidden": 2.0}
    forced = grade_submissions(course, ["solution"], workers=1, force=True, progress=False)
    assert forced.results["solution"].status == "graded"


def test_workers_start_cleanly_after_in_process_grading(graded, monkeypatch):
    """Grading in this process first (``workers=1``: kernels, ZeroMQ, threads) must not break the
    workers a later parallel run starts (they fork from a clean server, not from this process)."""
    from autograder.grade import grade_submissions

    monkeypatch.setenv("A2_REFERENCE_DIR", str(graded["references"]))
    course = graded["course"]
    first = grade_submissions(course, ["solution"], workers=1, force=True, progress=False)
    again = grade_submissions(course, ["solution", "wrong"], workers=2, force=True, progress=False)
    assert first.results["solution"].status == again.results["solution"].status == "graded"
    assert again.results["wrong"].status == "graded"
    assert _points(again, "solution") == {"test_double": 1.0, "test_double_hidden": 2.0}


def sleep_forever(job):
    """A grading task that never returns (a worker that hangs)."""
    import time

    time.sleep(600)


def test_a_stalled_cluster_is_reported_instead_of_waited_on(monkeypatch):
    import autograder.grade as grade
    from tqdm import tqdm

    monkeypatch.setattr(grade, "STALL_GRACE_S", 3)
    # Six submissions on two workers: four in flight (the window), two still waiting to be sent.
    students = [f"hung{i}" for i in range(6)]
    jobs = {s: {"student": s, "limits": {"wall_s": 1.0}, "submission": {"01_toy.ipynb": b""}} for s in students}
    report = grade.GradeReport()
    grade._run_jobs(None, jobs, dict.fromkeys(students, "digest"), {}, report, tqdm(disable=True), workers=2,
                    scheduler=None, task=sleep_forever)
    assert sorted(report.results) == students
    for result in report.results.values():
        assert result.status == "failed" and "grading stalled" in result.message and "a2kit grade" in result.message


def fail_at_once(job):
    """A grading task that reports a plain failure straight away."""
    return {"student": job["student"], "ok": False, "retry": False, "seconds": 0.0, "peak_memory_mb": 0.0,
            "message": "no notebook"}


def test_a_class_larger_than_the_window_is_graded_whole_and_quietly(recwarn):
    import autograder.grade as grade
    from tqdm import tqdm

    # 12 MB each: above Dask's "large graph" warning, which the grader expects and silences.
    students = [f"s{i:02d}" for i in range(11)]
    jobs = {s: {"student": s, "limits": {"wall_s": 60.0}, "submission": {"big.bin": bytes(12_000_000)}}
            for s in students}
    report = grade.GradeReport()
    grade._run_jobs(None, jobs, dict.fromkeys(students, "digest"), {}, report, tqdm(disable=True), workers=2,
                    scheduler=None, task=fail_at_once)
    assert sorted(report.results) == students and all(r.message == "no notebook" for r in report.results.values())
    assert not [w for w in recwarn if "large graph" in str(w.message)]


def test_kernels_split_the_cores_between_workers():
    from autograder.grade import kernel_threads

    assert kernel_threads(2, cpus=2) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    assert kernel_threads(3, cpus=16)["OMP_NUM_THREADS"] == "5"
    assert kernel_threads(8, cpus=2)["OMP_NUM_THREADS"] == "1"  # never zero
