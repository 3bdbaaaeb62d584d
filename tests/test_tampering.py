"""Tampered notebooks: every change to a grading cell named, the cells restored from the release, graded as honest work."""
import copy
import os
import pickle

import nbformat
import pytest

from autograder.engine.grade import grade_submissions
from autograder.engine.tampering import compare, restore, restore_files
from autograder.engine.trees import read_tree, tree_hash, write_tree
from autograder.harness.cells import find_cell, grade_id
from autograder.tools.corpus import Case, Edit, build_submission
from toy_notebooks import TOY_FOLDERS, WRONG_DOUBLE, graded_toy_course, toy_notebook

RELEASE_IDS = ["imports", "double", "test_double", "test_double_hidden"]


def _new_cell(source="pass", **nbgrader):
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": {"schema_version": 3, **nbgrader}})


def duplicate_test(nb):
    nb.cells.append(copy.deepcopy(find_cell(nb, "test_double")))
    nb.cells[-1].id = "copied1"  # JupyterLab's copy and paste gives the copy an id of its own


def duplicate_solution(nb):
    copied = copy.deepcopy(find_cell(nb, "double"))
    copied.source = "def double(x):\n    return 0"
    nb.cells.insert(3, copied)


def rename(nb):
    find_cell(nb, "test_double").metadata.nbgrader["grade_id"] = "my_test"


def retag(nb):
    find_cell(nb, "double").metadata.nbgrader.update(solution=False, grade=True, locked=True, points=5)


def bonus(nb):
    nb.cells.append(_new_cell(grade=True, solution=False, locked=True, grade_id="bonus", points=100))


def delete_test(nb):
    nb.cells.remove(find_cell(nb, "test_double_hidden"))


def retype(nb):
    cell = find_cell(nb, "test_double")
    cell.cell_type = "markdown"
    del cell["outputs"], cell["execution_count"]


def points(nb):
    find_cell(nb, "test_double_hidden").metadata.nbgrader["points"] = 50


def edit_test(nb):
    find_cell(nb, "test_double").source = "pass"


def strip(nb):
    del find_cell(nb, "test_double").metadata["nbgrader"]


TAMPERING = {  # edit: what the restored notebook's change list says
    "duplicate_test": "test cell test_double (1 point): duplicated (the copy is not graded, it is removed)",
    "duplicate_solution": "solution cell double: duplicated (the copy is not graded, its code still runs)",
    "rename": "test cell test_double (1 point): renamed to 'my_test' (restored)",
    "retag": "solution cell double: re-tagged as a test cell (5 points) (restored)",
    "bonus": "test cell bonus (100 points): not in the release (graded as a plain cell, no points)",
    "delete_test": "test cell test_double_hidden (2 points): deleted (restored from the release)",
    "retype": "test cell test_double (1 point): made a markdown cell (restored)",
    "points": "test cell test_double_hidden (2 points): points changed to 50 (restored)",
    "edit_test": "test cell test_double (1 point): edited (restored)",
    "strip": "test cell test_double (1 point): its nbgrader metadata removed (restored)",
}


@pytest.mark.parametrize("edit", TAMPERING)
def test_each_change_is_named_and_the_release_cells_come_back(edit):
    release = toy_notebook()
    submitted = copy.deepcopy(release)
    find_cell(submitted, "double").source = "def double(x):\n    return x + x"  # the student's answer
    globals()[edit](submitted)
    restored, changes = restore(submitted, release)
    assert changes == [TAMPERING[edit]]
    graded = [c for c in restored.cells if grade_id(c)]
    assert [grade_id(c) for c in graded] == RELEASE_IDS
    for cell in graded:
        want = find_cell(release, grade_id(cell))
        assert cell.cell_type == want.cell_type and cell.metadata == want.metadata
        if grade_id(cell) != "double":
            assert cell.source == want.source
    assert find_cell(restored, "double").source == "def double(x):\n    return x + x"  # the student's answer is kept
    nbformat.validate(restored)
    assert len({c.id for c in restored.cells}) == len(restored.cells)


def test_an_untouched_notebook_is_left_as_it_is():
    release = toy_notebook()
    submitted = copy.deepcopy(release)
    find_cell(submitted, "double").source = "def double(x):\n    return 2 * x"
    assert compare(submitted, release) == []
    files = {"01_toy.ipynb": nbformat.writes(submitted).encode(), "checkpoints/m.pt": b"\0"}
    assert restore_files(files, "/nonexistent") == (files, [])


def test_a_notebook_that_is_not_one_is_named_and_left_to_nbgrader(tmp_path):
    nbformat.write(toy_notebook(), tmp_path / "01_toy.ipynb")
    files, notes = restore_files({"01_toy.ipynb": b"{not json"}, tmp_path)
    assert files == {"01_toy.ipynb": b"{not json"} and notes == ["01_toy: not a readable notebook (NotJSONError), "
                                                                 "graded as submitted"]
    bad = toy_notebook()
    find_cell(bad, "test_double").metadata["nbgrader"] = ["not", "a", "mapping"]
    find_cell(bad, "double").metadata.nbgrader["points"] = "lots"
    _, changes = restore(bad, toy_notebook())
    assert changes == ["test cell test_double (1 point): its nbgrader metadata removed (restored)"]


def test_tampered_submissions_are_graded_as_honest_work_and_flagged(tmp_path):
    """Graded by the engine in the sandbox: each tampering gets exactly the points of the same honest work."""
    course, _ = graded_toy_course(tmp_path)
    cases = {"honest": None, "duplicate_test": "duplicate_test", "rename": "rename", "retag": "retag",
             "wrong_bonus": "bonus"}  # the others are graded in the corpus (hostile_* cases)
    for student, edit in cases.items():
        wrong = student.startswith("wrong")
        folder = build_submission(Case(student, "", "solution", ["01_toy"],
                                       [Edit("01_toy", "double", WRONG_DOUBLE)] if wrong else []), course)
        if edit:
            nb = nbformat.read(folder / "01_toy.ipynb", as_version=4)
            globals()[edit](nb)
            nbformat.write(nb, folder / "01_toy.ipynb")
    report = grade_submissions(course, list(cases), workers=2, notebook_folders=[TOY_FOLDERS], progress=False)
    for student, edit in cases.items():
        result = report.results[student]
        assert result.points == (1.0 if student.startswith("wrong") else 3.0), (student, result.message)
        assert result.status == ("graded" if edit is None else "flagged"), (student, result.message)
        if edit:
            assert TAMPERING[edit] in result.message
    submitted = nbformat.read(course.submitted_dir("wrong_bonus") / "01_toy.ipynb", as_version=4)
    assert find_cell(submitted, "bonus") is not None  # the hand-in itself is kept as the student made it


# -- file names are data --------------------------------------------------------------------------
def test_trees_and_transfers_survive_any_file_name(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    names = [os.fsdecode(b"m\xfcller.txt"), "王小明.txt", "line\nbreak.txt", os.fsdecode(b"d\xe9j\xe0/vu.txt")]
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(bytes([i]))
    files = read_tree(folder)
    assert len(files) == 4
    travelled = pickle.loads(pickle.dumps(files))  # what Dask does with a job
    write_tree(tmp_path / "back", travelled)
    assert sorted(os.listdir(os.fsencode(tmp_path / "back"))) == sorted(os.listdir(os.fsencode(folder)))
    assert tree_hash(tmp_path / "back") == tree_hash(folder)
    (folder / names[0]).write_bytes(b"changed")
    assert tree_hash(tmp_path / "back") != tree_hash(folder)


def test_a_folder_hand_in_with_an_undecodable_name_is_graded(tmp_path):
    course, _ = graded_toy_course(tmp_path)
    folder = build_submission(Case("odd", "", "solution", ["01_toy"]), course)
    (folder / os.fsdecode(b"donn\xe9es.txt")).write_bytes(b"x")
    report = grade_submissions(course, ["odd"], workers=1, notebook_folders=[TOY_FOLDERS], progress=False)
    assert (report.results["odd"].status, report.results["odd"].points) == ("graded", 3.0), report.results["odd"].message
    assert (course.autograded_dir("odd") / os.fsdecode(b"donn\xe9es.txt")).read_bytes() == b"x"
