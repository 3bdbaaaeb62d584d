"""A tiny nbgrader source notebook for the autograder's own tests (the kit's notebooks are bigger).

``write_toy_notebooks(folder)`` writes ``folder/01_toy.ipynb``: a solution cell ``double`` (grade_id
``double``), a public test ``test_double`` (1 point), a cell with a hidden test ``test_double_hidden``
(2 points); with ``second=True`` also ``02_toy.ipynb`` (``triple``, and a cell that reports what its
kernel sees). Their hidden tests for the grader are in ``toy_folders/<stem>/hidden_tests.py``
(``TOY_FOLDERS``), a notebook folder each, as the kit's own notebooks have.
"""
from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

import nbformat as nbf

TOY_FOLDERS = str(Path(__file__).resolve().parent / "toy_folders")  # notebook folders of 01_toy and 02_toy


def nbgrader_meta(grade_id: str, *, grade: bool, solution: bool, points: float = 0) -> dict:
    meta = {"grade": grade, "solution": solution, "grade_id": grade_id, "locked": not solution, "schema_version": 3}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def toy_notebook():
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbf.v4.new_markdown_cell("# Toy\nWrite `double(x)`."),
        nbf.v4.new_code_cell("import numpy as np", metadata=nbgrader_meta("imports", grade=False, solution=False)),
        nbf.v4.new_code_cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
                             metadata=nbgrader_meta("double", grade=False, solution=True)),
        nbf.v4.new_code_cell('assert double(1) == 2, "double(1) should be 2"',
                             metadata=nbgrader_meta("test_double", grade=True, solution=False, points=1)),
        nbf.v4.new_code_cell('assert double(3) == 6, "double(3) should be 6"\n### BEGIN HIDDEN TESTS\n'
                             'assert double(-7) == -14, "double(-7) should be -14: negative numbers"\n### END HIDDEN TESTS',
                             metadata=nbgrader_meta("test_double_hidden", grade=True, solution=False, points=2)),
    ]
    return nb


# A read-only cell of the second toy notebook: what this kernel can see of the earlier notebook's
# writes and of the data folder, printed after PROBE (the grader keeps the outputs of such cells).
PROBE = """import json, os
from pathlib import Path
found = {"planted_file": Path("planted.txt").exists(), "planted_startup": "PLANTED" in globals(),
         "home_files": sorted(str(p.relative_to(Path.home())) for p in Path.home().rglob("*") if p.is_file())}
try:
    from a2lib.data import load_cifar10
    found["train_images"] = len(load_cifar10(split="train"))
    found["test_images"] = len(load_cifar10(split="test"))
except Exception as exc:
    found.setdefault("train_images", 0)
    found["data_error"] = type(exc).__name__
print("PROBE" + json.dumps(found))"""


def second_toy_notebook():
    """``02_toy``: ``triple(x)`` (1 point) and a read-only cell that prints what the kernel sees."""
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbf.v4.new_code_cell(PROBE, metadata=nbgrader_meta("probe", grade=False, solution=False)),
        nbf.v4.new_code_cell("def triple(x):\n    ### BEGIN SOLUTION\n    return 3 * x\n    ### END SOLUTION",
                             metadata=nbgrader_meta("triple", grade=False, solution=True)),
        nbf.v4.new_code_cell('assert triple(2) == 6, "triple(2) should be 6"',
                             metadata=nbgrader_meta("test_triple", grade=True, solution=False, points=1)),
    ]
    return nb


def write_toy_notebooks(folder: Path, second: bool = False) -> Path:
    """``folder/01_toy.ipynb`` (and ``02_toy.ipynb`` when ``second``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    nbf.write(toy_notebook(), folder / "01_toy.ipynb")
    if second:
        nbf.write(second_toy_notebook(), folder / "02_toy.ipynb")
    return folder


WRONG_DOUBLE = "def double(x):\n    return abs(2 * x)\n"


@functools.lru_cache(maxsize=None)
def _graded_toy_template() -> Path:
    """Built once per test session: a toy course released, with ``solution`` and ``wrong`` graded.

    Graded by plain serial nbgrader in this process (the toy is trusted; the grading engine has its
    own tests). Tests copy it with ``graded_toy_course(tmp_path)`` before changing anything.
    """
    from autograder.tools.corpus import Case, Edit, build_submission
    from autograder.engine.course import Course

    root = Path(tempfile.mkdtemp(prefix="a2kit-toy-"))
    course = Course(root / "course")
    course.sync_source(write_toy_notebooks(root / "notebooks"))
    course.generate_release()
    cases = [Case("solution", "the solution", "solution", ["01_toy"]),
             Case("wrong", "abs: wrong for negative numbers", "solution", ["01_toy"],
                  [Edit("01_toy", "double", WRONG_DOUBLE)])]
    for case in cases:
        build_submission(case, course)
        result = course.api().autograde(course.assignment, case.name)
        assert result["success"], result.get("log")
    return root


def graded_toy_course(tmp_path: Path):
    """A private copy of the graded toy course: ``(Course, notebooks_folder)``."""
    from autograder.engine.course import Course

    shutil.copytree(_graded_toy_template(), tmp_path, dirs_exist_ok=True)
    return Course(tmp_path / "course"), tmp_path / "notebooks"


TOY_CLASS = {"solution": 3.0, "wrong": 1.0, "blank": 0.0}  # student: the points each must get


def toy_class_inbox(folder: Path) -> tuple[Path, Path]:
    """A toy class as an LMS download: ``(notebooks, inbox)``, one zip per student of ``TOY_CLASS``."""
    from autograder.tools.corpus import Case, Edit, build_submission
    from autograder.engine.course import Course

    folder = Path(folder)
    notebooks = write_toy_notebooks(folder / "notebooks")
    staging = Course(folder / "staging")
    staging.sync_source(notebooks)
    staging.generate_release()
    inbox = folder / "inbox"
    inbox.mkdir()
    cases = [Case("solution", "", "solution", ["01_toy"]),
             Case("wrong", "", "solution", ["01_toy"], [Edit("01_toy", "double", WRONG_DOUBLE)]),
             Case("blank", "", "release", ["01_toy"])]
    for case in cases:
        sub = build_submission(case, staging)
        shutil.make_archive(str(inbox / case.name), "zip", sub)
    shutil.rmtree(folder / "staging")
    return notebooks, inbox
