"""A real browser (Debian's headless Chromium, driven by Playwright) through JupyterLab and formgrader.

The instructor: ``a2kit formgrade`` → formgrader's Manual Grading → a score and a comment for Q3 of a
graded student → ``a2kit export`` and ``a2kit feedback`` carry them. The student: the release's
notebook 1 in JupyterLab, a flipped-kernel answer to Q1a, its check's message, then nbgrader's Validate.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from autograder.engine.course import Course
from autograder.engine.grade import grade_submissions, grading_env
from autograder.pipeline.cli import main
from autograder.pipeline.release import release
from autograder.tools.corpus import Case, build_submission
from autograder.pipeline.formgrade import hand_grades, lab_server
from services import require_chromium

pytestmark = pytest.mark.browser
Q3 = "dead_relu_answer"  # notebook 1's written answer, graded by hand (2 points)
FLIPPED = ("def q1_matrix(w):\n    A = np.zeros((4, 9))\n"
           "    A[0, 0], A[1, 2], A[2, 6], A[3, 8] = w[0, 0], w[0, 2], w[2, 0], w[2, 2]\n    return A")


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Course:
    """Notebook 1 released, and alice's solution graded (sandboxed, fast mode): 11 of 13 points, Q3 left."""
    root = tmp_path_factory.mktemp("browser")
    course = Course(root / "course")
    release(course, names=["01_theory"])
    build_submission(Case("solution", "", "solution", ["01_theory"]), course, "alice")
    assert not grade_submissions(course, workers=1, env=grading_env(None, fast=True), progress=False).needs_attention
    return course


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    chromium = require_chromium()
    with sync_playwright() as pw:
        # no Chromium sandbox (it needs user namespaces CI machines may not have; the pages are our own),
        # and /tmp instead of a container's small /dev/shm
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


def start_formgrade(course: Course, log: Path) -> tuple[subprocess.Popen, str]:
    """``a2kit formgrade`` as an instructor runs it; returns the process and the formgrader URL it prints."""
    proc = subprocess.Popen([sys.executable, "-m", "autograder.pipeline.cli", "-q", "--course", str(course.root), "formgrade"],
                            stdout=subprocess.PIPE, stderr=open(log, "w"), stdin=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if line.startswith("Formgrader:"):
            return proc, line.split()[1]
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError(f"a2kit formgrade printed no address; its log: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Ctrl-C, as in a terminal (the command stops its JupyterLab), then make sure the whole group is gone."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def test_hand_grade_in_formgrader_counts_in_export_and_feedback(course, browser, tmp_path):
    proc, url = start_formgrade(course, tmp_path / "formgrade.log")
    try:
        page = browser.new_page()
        page.goto(url)  # the token in the printed address logs the browser in
        page.get_by_role("link", name="Manual Grading").first.click()
        page.get_by_role("link", name="a2").first.click()
        page.get_by_role("link", name="01_theory").first.click()
        page.locator('a[href*="/formgrader/submissions/"]').first.click()
        # the score and comment boxes save only once formgrader has loaded their grades and comments
        page.wait_for_function("() => window.formgrader && formgrader.grades && formgrader.grades.loaded"
                               " && formgrader.comments && formgrader.comments.loaded", timeout=60_000)
        page.fill(f"#{Q3}", "1.5")
        page.fill(f"#{Q3}-comment", "Right idea: say why the gradient through a dead unit is zero.")
        page.locator(f"#{Q3}-comment").blur()  # formgrader saves a field when it loses focus
        deadline = time.monotonic() + 30  # the score and the comment are saved by two requests
        while not any(h["graded"] and h["comment"] for h in hand_grades(course, "alice")) and time.monotonic() < deadline:
            time.sleep(0.3)
    finally:
        stop(proc)
    assert hand_grades(course, "alice") == [{"notebook": "01_theory", "grade_id": Q3, "score": 1.5, "max_score": 2.0,
                                              "graded": True, "status": "graded",
                                              "comment": "Right idea: say why the gradient through a dead unit is zero."}]
    assert main(["-q", "--course", str(course.root), "export"]) == 0
    grades = pd.read_csv(course.root / "exports" / "grades.csv", index_col="student")
    assert (grades.loc["alice", "01_theory"], grades.loc["alice", "total"], grades.loc["alice", "max"]) == (12.5, 12.5, 13)
    assert (grades.loc["alice", "autograded"], grades.loc["alice", "hand"], grades.loc["alice", "final"]) == (11, 1.5, 12.5)
    assert main(["-q", "--course", str(course.root), "feedback"]) == 0
    for page in ("a2kit_feedback.html", "01_theory.html"):
        assert "say why the gradient through a dead unit is zero" in (course.feedback_dir("alice") / page).read_text()
    before = hand_grades(course, "alice")
    assert not grade_submissions(course, workers=1, force=True, env=grading_env(None, fast=True), progress=False).needs_attention
    assert hand_grades(course, "alice") == before  # a regrade keeps the hand grades


def test_student_runs_a_check_and_validates_in_jupyterlab(course, browser, tmp_path):
    student = tmp_path / "student"
    shutil.copytree(course.release_dir, student / "a2")
    settings = tmp_path / "lab-settings"  # every cell in the page (no windowing), no news pop-up
    for plugin, values in {"notebook-extension/tracker": {"windowingMode": "none"},
                           "apputils-extension/notification": {"fetchNews": "false"}}.items():
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {"A2_FAST": "1", "JUPYTERLAB_SETTINGS_DIR": str(settings)}
    with lab_server(student, env=env, log=tmp_path / "lab.log") as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            student_session(page, server, cell_indices(student / "a2" / "01_theory.ipynb"))
        except Exception:
            page.screenshot(path=str(tmp_path / "jupyterlab.png"))  # what the student saw
            raise


def run_cell(cells, index: int) -> None:
    """Run one code cell as a student does (select it, Shift+Enter) and wait until it has run."""
    prompt = cells.nth(index).locator(".jp-InputPrompt").first
    prompt.click()
    cells.page.keyboard.press("Shift+Enter")
    cells.page.wait_for_function("p => /\\[\\d+\\]/.test(p.textContent)", arg=prompt.element_handle(), timeout=60_000)


def cell_indices(path) -> dict[str, int]:
    """Position of each cell in the notebook, by nbgrader grade_id (as JupyterLab lists them)."""
    import nbformat

    cells = nbformat.read(path, as_version=4).cells
    return {c.metadata.get("nbgrader", {}).get("grade_id"): i for i, c in enumerate(cells)}


def student_session(page, server, at: dict[str, int]) -> None:
    page.goto(server.link("lab/tree/a2/01_theory.ipynb"))
    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    cells.nth(at["test_q1_matrix"]).wait_for(timeout=60_000)
    page.locator(".jp-StatusBar-Widget").get_by_text("Idle").first.wait_for(timeout=60_000)  # the kernel is up
    for first in ("install", "setup"):  # the student package's install cell (a no-op here), then the set-up
        run_cell(cells, at[first])
    editor = cells.nth(at["q1_matrix"]).locator(".cm-content")  # Q1a's answer: the kernel flipped
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(FLIPPED)
    assert "w[0, 0], w[0, 2], w[2, 0], w[2, 2]" in editor.inner_text()
    run_cell(cells, at["q1_matrix"])
    run_cell(cells, at["test_q1_matrix"])  # its check
    check_output = cells.nth(at["test_q1_matrix"]).locator(".jp-OutputArea")
    check_output.get_by_text("uses a flipped kernel").first.wait_for(timeout=30_000)
    assert "cross-correlation" in check_output.inner_text()

    page.get_by_role("button", name="Validate").click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Validation Results").wait_for(timeout=120_000)
    dialog.get_by_text("uses a flipped kernel").first.wait_for(timeout=10_000)
    assert "The following cell failed" in dialog.inner_text()
