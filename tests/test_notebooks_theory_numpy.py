"""Notebooks 1 and 2 as nbgrader sources: structure, release, reference values, the Q1/Q2 answers.

The generic checks (every notebook executes in fast mode, the solution scores full marks, the blank
release zero, the corpus cases their declared points) live in tests/test_notebooks.py and
tests/test_corpus.py; these are the ones specific to notebooks 1 and 2.
"""
from __future__ import annotations

import json
import re

import nbformat
import numpy as np
import pytest

from a2lib.checks.theory import Q2_NETWORK, Q2_POINTS
from autograder.engine.course import Course
from autograder.locations import SOURCE_NOTEBOOKS
from autograder.notebooks import notebook_folders
from autograder.tools.local import kit_hidden_tests, solution_namespace

STEMS = ["01_theory", "02_numpy_convnet"]
STUDENT_NAMES = {"01_theory": ["q1_matrix", "conv_as_matrix", "Q2_ANSWERS", "linearize", "DEAD_RELU_ANSWER"],
                 "02_numpy_convnet": ["ReLU", "conv_forward_naive", "Conv2D", "MaxPooling", "Linear", "SGD", "my_errors",
                                      "initial_loss", "CHANGE_FIRST_ANSWER"]}


def load_reference(stem: str, name: str) -> dict:
    return notebook_folders()[stem].reference(name)


def cells(stem):
    """The notebook's nbgrader cells: every cell but the settings cell (no grading cell, see
    tests/test_settings_cell.py)."""
    return [c for c in nbformat.read(SOURCE_NOTEBOOKS / f"{stem}.ipynb", as_version=4).cells if c.get("id") != "settings"]


def nbgrader(cell):
    return cell.metadata.get("nbgrader", {})


@pytest.mark.parametrize("stem", STEMS)
def test_source_is_clean_and_graded_cells_are_well_formed(stem):
    graded = cells(stem)
    ids = [nbgrader(c).get("grade_id") for c in graded]
    assert all(ids) and len(set(ids)) == len(ids), "every cell has a unique grade_id"
    for cell in graded:
        meta, gid = nbgrader(cell), nbgrader(cell)["grade_id"]
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{gid}: committed with outputs"
        is_test = meta["grade"] and not meta["solution"]
        assert is_test == gid.startswith("test_"), f"{gid}: test cells (and only they) are named test_*"
        if is_test:
            assert meta["points"] > 0 and meta["locked"]
            assert (stem, gid) in kit_hidden_tests(stem), f"{gid}: a hidden test decides its points"
        assert "HIDDEN TESTS" not in cell.source and "a2lib.reference" not in cell.source, \
            f"{gid}: hidden tests live in autograder/notebooks/<stem>/hidden_tests.py, not in the notebook"
        if meta["solution"]:
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, gid
        else:
            assert meta["locked"], f"{gid}: cells students must not edit are read-only"


def test_q3_is_graded_by_hand_and_its_word_limit_automatically():
    by_id = {nbgrader(c)["grade_id"]: nbgrader(c) for c in cells("01_theory")}
    assert by_id["dead_relu_answer"]["grade"] and by_id["dead_relu_answer"]["solution"]  # manually graded
    assert by_id["test_dead_relu_word_limit"]["points"] > 0


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    course = Course(tmp_path_factory.mktemp("nb12") / "course")
    course.sync_source(names=STEMS)
    course.generate_release()
    return course


@pytest.mark.parametrize("stem", STEMS)
def test_release_has_no_solution_and_no_hidden_test(release, stem):
    released = nbformat.read(release.release_dir / f"{stem}.ipynb", as_version=4)
    text = json.dumps([c.source for c in released.cells])
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    solutions = [c for c in cells(stem) if nbgrader(c)["solution"]]
    stubs = [c for c in released.cells if nbgrader(c).get("solution")]
    assert len(stubs) == len(solutions) and all("raise NotImplementedError()" in c.source for c in stubs)
    for original in solutions:  # no line of a solution region survives
        for region in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", original.source, re.S):
            for line in filter(None, (l.strip() for l in region.splitlines())):
                if len(line) > 25:
                    assert line not in text, f"{nbgrader(original)['grade_id']}: '{line}' is in the release"
    for name in STUDENT_NAMES[stem]:  # students still see what to define
        assert name in text


@pytest.fixture(scope="module")
def theory_ns():
    return solution_namespace("01_theory")


def test_q1_reference_is_the_stated_matrix(theory_ns):
    A = theory_ns["q1_matrix"](np.arange(1.0, 10.0).reshape(3, 3))  # w(i, j) = 3 i + j + 1
    expected_nonzero = {(0, 0): 9.0, (1, 2): 7.0, (2, 6): 3.0, (3, 8): 1.0}  # w(2,2), w(2,0), w(0,2), w(0,0)
    assert A.shape == (4, 9)
    assert {tuple(int(i) for i in ij): A[tuple(ij)] for ij in np.argwhere(A)} == expected_nonzero
    assert np.array_equal(load_reference("01_theory", "theory")["q1_matrix_arange"], A), "regenerate: a2kit reference"


def test_q2_answers_reference_and_autograd_agree(theory_ns):
    stated = {2.0: (6.0, 3.0), -1.0: (1.5, 3.0), -3.0: (0.0, 0.0)}  # three different linear pieces
    autograd_linearization = notebook_folders()["01_theory"].module("hidden_tests").autograd_linearization
    reference = load_reference("01_theory", "theory")
    assert len({stated[x0] for x0 in Q2_POINTS}) == len(Q2_POINTS)
    for x0 in Q2_POINTS:
        W, b = autograd_linearization(Q2_NETWORK["weights"], Q2_NETWORK["biases"], x0)
        assert (W.item(), b.item()) == pytest.approx(stated[x0])
        assert theory_ns["Q2_ANSWERS"][x0] == pytest.approx(stated[x0])
        assert (reference[f"q2_W_at_{x0:g}"].item(), reference[f"q2_b_at_{x0:g}"].item()) == pytest.approx(stated[x0])


def test_sgd_reference_is_up_to_date():
    from a2lib.checks.numpy_nn import SGD_SETTINGS, Expected, sgd_message, sgd_problem, sgd_trajectory
    case = notebook_folders()["02_numpy_convnet"].module("build_reference")
    ns = solution_namespace("02_numpy_convnet")
    fresh = case.build(ns)["numpy_sgd"]
    stored = load_reference("02_numpy_convnet", "numpy_sgd")
    assert sorted(fresh) == sorted(stored) and len(stored) == 8
    for key in stored:
        np.testing.assert_array_equal(stored[key], fresh[key], err_msg="regenerate: a2kit reference")
    problem = sgd_problem(case.SGD_SEED)
    assert sgd_message(sgd_trajectory(ns["SGD"], problem, **SGD_SETTINGS), Expected.exact(stored)) is None
    assert not np.allclose(stored["step1_weight0"], stored["step2_weight0"])  # the second step moved
