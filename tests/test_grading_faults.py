"""Faults of the grading machine are never the student's, and notebooks of a submission are isolated.

A two-notebook toy course: ``01_toy``'s code plants files (a startup file in its home, a file where
the notebook lives) that ``02_toy``'s kernel must not see; ``02_toy`` reports what it sees of the data
folder (training batches: yes; the test set: no), also when the data folder is a symlink.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat as nbf
import pytest

from autograder.tools.corpus import Case, Edit, build_submission
from autograder.engine.course import Course
from toy_notebooks import TOY_FOLDERS, write_toy_notebooks

KIT = Path(__file__).resolve().parent.parent
TOY_TESTS = [TOY_FOLDERS]
PLANT = """import os
from pathlib import Path
startup = Path.home() / ".ipython" / "profile_default" / "startup"
startup.mkdir(parents=True, exist_ok=True)
(startup / "99-planted.py").write_text("PLANTED = True")
Path("planted.txt").write_text("x")
def double(x):
    return 2 * x
"""


def _course(root: Path, cases: list[Case]) -> Course:
    course = Course(root / "course")
    course.sync_source(write_toy_notebooks(root / "notebooks", second=True))
    course.generate_release()
    for case in cases:
        build_submission(case, course)
    return course


def _probe(course: Course, student: str) -> dict:
    nb = nbf.read(course.autograded_dir(student) / "02_toy.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")
    return json.loads(text.split("PROBE", 1)[1].splitlines()[0])


@pytest.fixture(scope="module")
def linked_data(tmp_path_factory):
    """A synthetic CIFAR-10 reached through a symlinked folder, as on many grading machines."""
    from a2lib.data import write_synthetic_cifar10

    tmp = tmp_path_factory.mktemp("data")
    write_synthetic_cifar10(tmp / "real", n_train_per_class=5, n_test_per_class=2, seed=0)
    (tmp / "linked").symlink_to(tmp / "real")
    return tmp / "linked"


def test_notebooks_are_isolated_and_see_training_data_only(tmp_path, linked_data):
    from autograder.engine.grade import grade_submissions

    course = _course(tmp_path, [Case("planter", "plants files for the next notebook", "solution", ["01_toy", "02_toy"],
                                     [Edit("01_toy", "double", PLANT)])])
    report = grade_submissions(course, workers=1, timeout_s=120, progress=False, notebook_folders=TOY_TESTS,
                               env={"A2_DATA": str(linked_data)})
    assert report.results["planter"].status == "graded", report.results["planter"].message
    found = _probe(course, "planter")
    assert found["planted_file"] is False and found["planted_startup"] is False
    assert not any("planted" in f for f in found["home_files"])
    assert found["train_images"] == 50 and "test_images" not in found
    assert found["data_error"] in ("DataNotFoundError", "FileNotFoundError")
    # Nothing the kernels wrote came back: the autograded folder holds the submission and the notebooks.
    assert sorted(p.name for p in course.autograded_dir("planter").rglob("*") if p.is_file()) == \
        sorted(p.name for p in course.submitted_dir("planter").rglob("*") if p.is_file())
    assert report.results["planter"].scores["01_toy"] == {"test_double": (1.0, 1.0), "test_double_hidden": (2.0, 2.0)}


def test_a_machine_fault_is_reported_before_grading_never_a_zero(tmp_path):
    """No test set on the grading machine: nothing is graded, every submission says why, none gets 0."""
    from a2lib.data import write_synthetic_cifar10
    from autograder.engine.grade import grade_submissions

    data = tmp_path / "data"
    write_synthetic_cifar10(data, n_train_per_class=2, n_test_per_class=1, seed=0)
    (data / "cifar-10-batches-py" / "test_batch").unlink()
    course = _course(tmp_path, [Case("solution", "the solution", "solution", ["01_toy", "02_toy"])])
    report = grade_submissions(course, workers=1, progress=False, notebook_folders=TOY_TESTS, env={"A2_DATA": str(data)})
    result = report.results["solution"]
    assert result.status == "failed" and "not graded" in result.message and "test set" in result.message
    assert report.needs_attention
    from autograder.engine.gradebook import in_gradebook

    assert not in_gradebook(course, "solution")


def test_a_graded_cell_without_a_hidden_test_stops_grading(tmp_path):
    from autograder.engine.grade import grade_submissions
    from toy_notebooks import toy_notebook

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nbf.write(toy_notebook(), notebooks / "05_untested.ipynb")  # no hidden tests registered for it
    course = Course(tmp_path / "course")
    course.sync_source(notebooks)
    course.generate_release()
    build_submission(Case("solution", "the solution", "solution", ["05_untested"]), course)
    report = grade_submissions(course, workers=1, progress=False, notebook_folders=TOY_TESTS)
    assert report.results["solution"].status == "failed"
    assert "no hidden test decides 05_untested/test_double" in report.results["solution"].message


GRADE_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from autograder.engine.course import Course
    from autograder.engine.grade import grade_submissions

    if __name__ == "__main__":
        grade_submissions(Course({course!r}), workers=2, timeout_s=600, progress=False, notebook_folders=[{folders!r}])
""")


def _kernels_under(folder: Path) -> list[int]:
    """Processes whose command line mentions ``folder`` (the grading scratch lives there)."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(folder) in cmdline and ("ipykernel_launcher" in cmdline or "autograder.isolation.kernel" in cmdline):
                pids.append(int(entry.name))
    return pids


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_no_kernel_outlives_a_stopped_grading(tmp_path, signum):
    loop = "def double(x):\n    return 2 * x\nwhile True:\n    pass\n"
    course = _course(tmp_path, [Case(f"loop{i}", "loops", "solution", ["01_toy"], [Edit("01_toy", "double", loop)])
                                for i in range(2)])
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    script = tmp_path / "grade.py"
    script.write_text(GRADE_SCRIPT.format(tests=str(KIT / "tests"), course=str(course.root), folders=TOY_FOLDERS))
    proc = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "TMPDIR": str(scratch)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _kernels_under(scratch) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _kernels_under(scratch), "no kernel started within 2 minutes"
        time.sleep(2)
        proc.send_signal(signum)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _kernels_under(scratch) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _kernels_under(scratch) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_preflight_without_the_sandbox_accepts_a_visible_test_set(tmp_path, linked_data, monkeypatch):
    """--unsafe has no sandbox, so nothing can hide the test set: grading goes on (with the warning)."""
    from autograder.engine import preflight as module
    from autograder.engine.preflight import GradingUnavailable, preflight

    preflight({}, {"A2_DATA": str(linked_data)}, unsafe=True, notebook_folders=[])
    original = module.data_view
    test_batch = lambda root: {str(Path(original(root)[0]) / "cifar-10-batches-py" / "test_batch"):
                               str((Path(root) / "cifar-10-batches-py" / "test_batch").resolve())}
    # a sandbox that showed the test set would be refused
    monkeypatch.setattr(module, "data_view", lambda root: (original(root)[0], {**original(root)[1], **test_batch(root)}))
    with pytest.raises(GradingUnavailable, match="the sandbox can see the test set"):
        preflight({}, {"A2_DATA": str(linked_data)}, unsafe=False, notebook_folders=[])


def test_a_missing_internal_stops_grading_before_the_fork_server_starts(tmp_path, monkeypatch):
    """The compatibility check runs before the code it guards: with an internal gone, the fork server
    (which reads ``multiprocessing.forkserver`` internals) never starts and every submission says why."""
    from autograder.engine import compat, grade, scheduling

    course = _course(tmp_path, [Case("solution", "the solution", "solution", ["01_toy", "02_toy"])])
    started = []
    monkeypatch.setattr(grade, "start_forkserver", lambda: started.append(1))
    monkeypatch.setattr(compat, "INTERNALS", compat.INTERNALS + [("multiprocessing.forkserver", "gone", "a test")])
    report = grade.grade_submissions(course, workers=2, progress=False, notebook_folders=TOY_TESTS)
    assert started == []
    result = report.results["solution"]
    assert result.status == "failed" and "multiprocessing.forkserver.gone" in result.message
    with pytest.raises(RuntimeError, match="forkserver.gone"):
        scheduling.start_forkserver.__wrapped__()
