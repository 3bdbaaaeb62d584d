"""autograder.reference: a source notebook's solutions executed into a namespace; values written for the hidden tests."""
import types

import nbformat
import numpy as np
import pytest

from autograder import reference
from toy_notebooks import toy_notebook


@pytest.fixture
def notebooks(tmp_path):
    nb = toy_notebook()
    nb.cells.insert(2, nbformat.v4.new_code_cell("%matplotlib inline\nimport os\nFAST_SEEN = os.environ['A2_FAST']\n!echo shell"))
    nb.cells.append(nbformat.v4.new_code_cell("raise SystemExit('training must be skipped')", metadata={"tags": ["reference-skip"]}))
    nb.cells.append(nbformat.v4.new_code_cell("%%bash\nexit 1"))
    nb.cells.append(nbformat.v4.new_code_cell("import numpy as np\nSAMPLE = np.random.rand(3)"))
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(nb, folder / "01_toy.ipynb")
    return folder


def test_namespace_holds_solutions_and_skips_tests_training_and_magics(notebooks, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    ns = reference.load_solution_namespace(notebooks / "01_toy.ipynb")
    assert ns["double"](-7) == -14
    assert ns["FAST_SEEN"] == "1"
    again = reference.load_solution_namespace(notebooks / "01_toy.ipynb")
    np.testing.assert_array_equal(ns["SAMPLE"], again["SAMPLE"])  # seeded: same values every run
    import os
    assert os.environ["NBGRADER_EXECUTION"] == "autograde"  # the environment is restored


def test_a_failing_cell_is_named(tmp_path):
    nb = toy_notebook()
    nb.cells[2].source = "def double(x):\n    return 1 / 0\ndouble(1)"
    nbformat.write(nb, tmp_path / "bad.ipynb")
    with pytest.raises(RuntimeError, match="cell 2 'double'.*ZeroDivisionError"):
        reference.load_solution_namespace(tmp_path / "bad.ipynb")


def test_write_reference_npz_or_json_and_load_back(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 3))
    assert reference.write_reference("arrays", {"x": x, "n": 3}, tmp_path).suffix == ".npz"
    loaded = reference.load_reference("arrays", tmp_path)
    np.testing.assert_array_equal(loaded["x"], x)
    assert loaded["n"] == 3
    assert reference.write_reference("arrays", {"x": x, "classes": ["cat", "dog"]}, tmp_path).suffix == ".json"
    assert not (tmp_path / "arrays.npz").exists()  # no stale file of the other format
    loaded = reference.load_reference("arrays", tmp_path)
    assert loaded["classes"] == ["cat", "dog"] and np.allclose(loaded["x"], x)


def test_split_references():
    assert reference.split_references({"x": 1}, "01_toy") == {"01_toy": {"x": 1}}
    assert reference.split_references({"a": {"x": 1}, "b": {"y": 2}}, "01_toy") == {"a": {"x": 1}, "b": {"y": 2}}
    with pytest.raises(TypeError):
        reference.split_references({}, "01_toy")


def test_main_builds_every_case_from_its_notebook(notebooks, tmp_path, monkeypatch, capsys):
    case = types.ModuleType("autograder.cases.01_toy")
    case.build = lambda ns: {"toy_double": {"x": np.arange(4.0), "y": ns["double"](np.arange(4.0))}}
    monkeypatch.setitem(__import__("sys").modules, "autograder.cases.01_toy", case)
    out = tmp_path / "ref"
    assert reference.main(["01_toy", "--notebooks", str(notebooks), "--out", str(out)]) == 0
    with np.load(out / "toy_double.npz") as f:
        np.testing.assert_array_equal(f["y"], [0.0, 2.0, 4.0, 6.0])
    assert reference.main(["02_missing", "--notebooks", str(notebooks), "--out", str(out)]) == 0
    assert "no notebook" in capsys.readouterr().out
    case.build = lambda ns: ns["undefined_name"]
    assert reference.main(["01_toy", "--notebooks", str(notebooks), "--out", str(out)]) == 1
