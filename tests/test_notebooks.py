"""Generic checks of every notebook in notebooks/ (they are picked up as they appear).

* the release (nbgrader generate_assignment) contains no solution and no hidden test;
* the source notebook executes end to end in fast mode (A2_FAST=1) without an error (notebooks 3 and 4:
  from the release, in tests/test_walkthrough.py);
* the source's solutions, submitted, get full marks on every autograded cell, and the blank release
  gets zero on every one without the grader failing (from the corpus run, graded once).
"""
import shutil

import nbformat
import pytest

from autograder.harness.cells import autograded_cells, grade_id as _grade_id, is_test_cell
from autograder.locations import KIT_DATA, KIT_ROOT, SOURCE_NOTEBOOKS
from autograder.pipeline.release import RELEASED_FOLDERS
from autograder.pipeline.student_package import cell_solution_lines
from kit_corpus import AVAILABLE, graded_corpus, released_course
from notebook_settings import with_settings


def _solution_lines(source: str) -> list[str]:
    """The substantial lines between the solution delimiters of a source cell."""
    return cell_solution_lines(source, min_length=12)


@pytest.mark.parametrize("stem", AVAILABLE)
def test_release_has_no_solution_and_no_hidden_test(stem):
    course = released_course()
    source = nbformat.read(course.source_dir / f"{stem}.ipynb", as_version=4)
    release = nbformat.read(course.release_dir / f"{stem}.ipynb", as_version=4)
    released = {_grade_id(c): c.source for c in release.cells}
    text = "\n".join(c.source for c in release.cells)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    for cell in source.cells:
        for line in _solution_lines(cell.source):
            assert line not in released.get(_grade_id(cell), ""), f"{stem}/{_grade_id(cell)}: solution line leaked: {line}"
    assert autograded_cells(course.source_dir)[stem], f"{stem} has no autograded test cell"


@pytest.mark.slow
# Notebooks 3 and 4 run solved from the release in tests/test_walkthrough.py (the same checks, and more).
@pytest.mark.parametrize("stem", [s for s in AVAILABLE if s not in ("03_cnn_design", "04_data_wrangling")])
def test_source_notebook_runs_in_fast_mode(stem, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    shutil.copytree(SOURCE_NOTEBOOKS, tmp_path / "notebooks")  # outputs (checkpoints, plots) stay out of the checkout
    for name in RELEASED_FOLDERS:  # configs/ beside notebooks/, as in the kit
        if (KIT_ROOT / name).is_dir():
            shutil.copytree(KIT_ROOT / name, tmp_path / name)
    monkeypatch.setenv("A2_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    if (KIT_DATA / "cifar-10-batches-py").exists():
        monkeypatch.setenv("A2_DATA", str(KIT_DATA))
    path = tmp_path / "notebooks" / f"{stem}.ipynb"
    nb = with_settings(nbformat.read(path, as_version=4), FAST=True)  # as a student sets fast mode
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    stderr_in_tests = [_grade_id(c) for c in nb.cells if is_test_cell(c) and c.cell_type == "code"
                       and any(o.output_type == "stream" and o.name == "stderr" for o in c.outputs)]
    assert not stderr_in_tests, f"test cells write to stderr (nbgrader would score them 0): {stderr_in_tests}"


@pytest.mark.slow  # reads the graded corpus (minutes)
@pytest.mark.parametrize("stem", AVAILABLE)
def test_solution_gets_full_marks_and_release_gets_zero(stem):
    corpus = graded_corpus()
    scores = {name: corpus.course.scores(name).get(stem, {}) for name in ("solution", "release")}
    for gid, points in corpus.cells[stem].items():
        assert scores["solution"].get(gid, (None,))[0] == points, f"solution scores {scores['solution'].get(gid)} on {stem}/{gid}"
        assert (scores["release"].get(gid, (None,))[0] or 0) == 0, f"the blank release scores on {stem}/{gid}"
    status = corpus.report.table()["status"]
    assert status["solution"] != "failed" and status["release"] != "failed"
