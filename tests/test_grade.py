"""The grading engine on a toy notebook: grades equal plain serial nbgrader's, re-runs grade only
what changed, hostile submissions are contained, points are decided outside the student's kernel.

One class is graded once (module fixture, 2 workers) and every test reads its outcome. The toy's
hidden tests are in ``toy_folders/`` (``TOY_FOLDERS``).
"""
from __future__ import annotations

import json
import shutil
import socket
import threading
from pathlib import Path

import nbformat as nbf
import pytest

from autograder.tools.corpus import Case, Edit, build_submission
from autograder.engine.course import Course
from toy_notebooks import TOY_FOLDERS, toy_notebook

KIT = Path(__file__).resolve().parent.parent


TOY_TESTS = [TOY_FOLDERS]


WRONG = "def double(x):\n    return abs(2 * x)\n"
# Hostile submissions: each replaces the solution cell; the tests below check the effects from outside.
LOOP = "while True:\n    pass\n"
MEMORY = ("import numpy as np\ndef double(x):\n    return 2 * x\n"
          "big = np.ones(8 * 2**30 // 8)  # 8 GB against a 2 GB limit\n")
BOMB = ("import os, time\nstarted = 0\nfor _ in range(5000):  # bounded: stops by itself at 5,000\n    try:\n"
        "        pid = os.fork()\n    except OSError:\n        break\n    if pid == 0:  # exits at once, but counts until reaped\n"
        "        os._exit(0)\n    started += 1\nfor _ in range(started):\n    os.wait()\n"
        "print(f'BOMB{started}')\ndef double(x):\n    return 2 * x\n")
# Cheats: each must get 0 for the tests of a wrong double.
ALWAYS_EQUAL = ("class Anything(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
                "def double(x):\n    return Anything(0)\n")
FRAMES = ("import sys, gc\ndef double(x):\n    seen = [f.f_locals for f in [sys._getframe(i) for i in range(1, 4)]]\n"
          "    found = [o for o in gc.get_objects() if isinstance(o, dict) and 'want' in o]\n"
          "    return abs(2 * x) if not found else found[0]['want']\n")
PATCHED = ("import numpy as np, builtins\nnp.allclose = np.array_equal = lambda *a, **k: True\n"
           "builtins.float = lambda *a: 0.0\ndef double(x):\n    return abs(2 * x)\n")
# Honest, but chatty: printing to stderr, logging and warning cost nothing.
CHATTY = ("import sys, logging, warnings\ndef double(x):\n    print('computing', x, file=sys.stderr)\n"
          "    logging.warning('double called')\n    warnings.warn('a warning')\n    return 2 * x\n")
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
found["references_on_disk"] = glob.glob({str(references)!r} + "/*") + \
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
open("snoop.json", "w").write("written in the kernel's scratch copy")
print("SNOOP" + json.dumps(found))
def double(x):
    return 2 * x
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded by the engine (2 workers), and the same submissions by plain serial nbgrader."""
    from autograder.engine.grade import grade_submissions

    tmp = tmp_path_factory.mktemp("grade")
    notebooks = tmp / "notebooks"
    notebooks.mkdir()
    nbf.write(toy_notebook(), notebooks / "01_toy.ipynb")
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
    edits = {"solution": None, "wrong": WRONG, "loop": LOOP, "memory": MEMORY, "bomb": BOMB, "suicide": SUICIDE,
             "always_equal": ALWAYS_EQUAL, "frames": FRAMES, "patched": PATCHED, "chatty": CHATTY,
             "snoop": snoop(server.getsockname()[1], gradebook, outside, KIT / "autograder" / "notebooks")}
    for name, source in edits.items():
        build_submission(Case(name, name, "solution", ["01_toy"], [Edit("01_toy", "double", source)] if source else []),
                         course)

    try:
        before = gradebook.stat().st_mtime_ns
        report = grade_submissions(course, workers=2, cell_timeout_s=10, timeout_s=120, memory_gb=2, progress=False,
                                   notebook_folders=TOY_TESTS)
        # Plain serial nbgrader on the trusted submissions, for the equality check.
        serial = Course(tmp / "serial")
        shutil.copytree(course.source_dir, serial.source_dir)
        serial.generate_release()
        for name in ("solution", "wrong"):
            shutil.copytree(course.submitted_dir(name), serial.submitted_dir(name))
            assert serial.api().autograde(serial.assignment, name)["success"]
    finally:
        stop.set()
        listener.join()
        server.close()
    return {"course": course, "report": report, "serial": serial, "outside": outside, "connections": connections,
            "gradebook_mtime": before}


def _printed(course, student: str, marker: str) -> str:
    """What the student's own cell printed after ``marker`` (its stdout, in the autograded notebook)."""
    nb = nbf.read(course.autograded_dir(student) / "01_toy.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")
    return text.split(marker, 1)[1].splitlines()[0]


def _points(report, student):
    return {gid: s for gid, (s, _) in report.results[student].scores["01_toy"].items()}


def test_grades_equal_serial_nbgrader(graded):
    course, serial = graded["course"], graded["serial"]
    for student in ("solution", "wrong"):
        assert graded["report"].results[student].status == "graded"
        assert course.scores(student) == serial.scores(student)
    wrong = nbf.read(course.autograded_dir("wrong") / "01_toy.ipynb", as_version=4)
    verdict = json.dumps([c.get("outputs", []) for c in wrong.cells])
    assert "double(-7) should be -14" in verdict  # the hidden test's message, written by the harness
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
    from autograder.isolation.sandbox import Limits

    started = int(_printed(graded["course"], "bomb", "BOMB"))
    assert 0 < started < Limits().nproc
    assert _points(graded["report"], "bomb") == {"test_double": 1.0, "test_double_hidden": 2.0}


def test_no_network_no_secrets_no_damage_outside(graded):
    found = json.loads(_printed(graded["course"], "snoop", "SNOOP"))
    assert found["network"] is False and graded["connections"] == []
    assert found["gradebook"] is False and found["wrote_gradebook"] is False
    assert found["references_on_disk"] == [] and found["references_loaded"] == "ModuleNotFoundError"
    assert "deleted" not in found and graded["outside"].read_text() == "keep me"
    # A file the kernel wrote stays in its scratch copy: it never reaches the course (nor feedback).
    assert not (graded["course"].autograded_dir("snoop") / "snoop.json").exists()
    assert _points(graded["report"], "snoop") == {"test_double": 1.0, "test_double_hidden": 2.0}


@pytest.mark.parametrize("cheat, public", [("always_equal", 0.0), ("frames", 1.0), ("patched", 1.0)])
def test_cheats_in_the_kernel_change_no_verdict(graded, cheat, public):
    """An object equal to everything, a look for expected values in frames and gc, patched comparisons
    and builtins: the verdicts are reached outside the kernel, on plain numbers. (``frames`` and
    ``patched`` fall back to the wrong ``abs(2 * x)``, right for x = 1 only.)"""
    assert _points(graded["report"], cheat) == {"test_double": public, "test_double_hidden": 0.0}


def test_output_of_honest_code_never_costs_a_point(graded):
    assert graded["report"].results["chatty"].status == "graded"
    assert _points(graded["report"], "chatty") == {"test_double": 1.0, "test_double_hidden": 2.0}


def test_a_dead_kernel_is_retried_then_reported(graded):
    result = graded["report"].results["suicide"]
    assert result.attempts == 2
    assert result.status == "failed" and "kernel" in result.message
    assert graded["report"].needs_attention


def test_rerun_grades_only_what_changed_and_says_why(graded, tmp_path):
    """The regrade key: a submission is graded again when its files, the mode or a hidden test changed
    (and the report says which); with everything equal the grade is reused."""
    from autograder.engine.grade import grade_submissions

    course = graded["course"]
    nb_path = course.submitted_dir("wrong") / "01_toy.ipynb"
    nb = nbf.read(nb_path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "double")
    cell.source = "def double(x):\n    return x + x\n"
    nbf.write(nb, nb_path)
    same_limits = dict(cell_timeout_s=10, timeout_s=120, memory_gb=2)

    def grade(students, folders=TOY_TESTS, **options):
        return grade_submissions(course, students, workers=1, progress=False, notebook_folders=folders,
                                 **{**same_limits, **options})

    fast = grade(["solution", "wrong"], env={"A2_FAST": "1"})   # the class was graded in full mode
    assert fast.results["solution"].status == "graded" and fast.results["solution"].why == "mode changed"
    assert fast.results["wrong"].why == "submission changed, mode changed"
    assert _points(fast, "wrong") == {"test_double": 1.0, "test_double_hidden": 2.0}
    again = grade(["solution", "wrong"], env={"A2_FAST": "1"})
    assert again.results["solution"].status == again.results["wrong"].status == "unchanged"
    assert again.results["solution"].scores == course.scores("solution")
    assert "why" in again.table().columns
    # A comment appended to a hidden-test module: every submission it touches is graded again.
    changed = tmp_path / "toy_folders"
    shutil.copytree(TOY_FOLDERS, changed)
    with open(changed / "01_toy" / "hidden_tests.py", "a") as f:
        f.write("\n# changed by the instructor\n")
    edited = grade(["solution"], folders=[str(changed)], env={"A2_FAST": "1"})
    assert edited.results["solution"].status == "graded" and edited.results["solution"].why == "hidden tests changed"
    limits = grade(["solution"], folders=[str(changed)], env={"A2_FAST": "1"}, timeout_s=100)
    assert limits.results["solution"].why == "limits changed"
    forced = grade(["solution"], folders=[str(changed)], env={"A2_FAST": "1"}, timeout_s=100, force=True)
    assert forced.results["solution"].status == "graded" and forced.results["solution"].why == "forced"


@pytest.mark.slow
def test_a_kernel_killed_on_a_busy_machine_is_retried_then_failed_never_scored(graded):
    """A kernel the wall clock kills before it used its CPU-time budget (here: sleeping, as a kernel
    starved by a loaded machine would) is the machine's fault: graded again, then ``failed`` with that
    cause, nothing merged (no test scores 0), and the class needs attention (``a2kit grade`` exits 1)."""
    from autograder.engine.grade import grade_submissions

    course = graded["course"]
    build_submission(Case("starved", "starved", "solution", ["01_toy"],
                          [Edit("01_toy", "double", "import time\ntime.sleep(600)\n")]), course)
    report = grade_submissions(course, ["starved"], workers=1, timeout_s=4, cell_timeout_s=120, progress=False,
                               notebook_folders=TOY_TESTS)
    result = report.results["starved"]
    assert result.status == "failed" and result.attempts == 2, result
    assert "machine was too busy" in result.message and "CPU-time budget" in result.message
    assert report.needs_attention and result.scores == {}
    assert not course.autograded_dir("starved").exists()


def test_workers_start_cleanly_after_in_process_grading(graded, monkeypatch):
    """Grading in this process first (``workers=1``: kernels, ZeroMQ, threads) must not break the
    workers a later parallel run starts (they fork from a clean server, not from this process)."""
    from autograder.engine.grade import grade_submissions

    course = graded["course"]
    first = grade_submissions(course, ["solution"], workers=1, force=True, progress=False, notebook_folders=TOY_TESTS)
    again = grade_submissions(course, ["solution", "wrong"], workers=2, force=True, progress=False,
                              notebook_folders=TOY_TESTS)
    assert first.results["solution"].status == again.results["solution"].status == "graded"
    assert again.results["wrong"].status == "graded"
    assert _points(again, "solution") == {"test_double": 1.0, "test_double_hidden": 2.0}
