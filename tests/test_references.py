"""Reference values: a source notebook's solutions executed into a namespace (``autograder.tools.solutions``),
values written and read (``autograder.harness.references``), built per notebook folder (``a2kit reference``)."""
import nbformat
import numpy as np
import pytest

from autograder.harness.references import load_reference, write_reference
from autograder.tools.build_references import main, split_references
from autograder.tools.solutions import load_solution_namespace
from toy_notebooks import toy_notebook


@pytest.fixture
def notebooks(tmp_path):
    nb = toy_notebook()
    nb.cells.insert(2, nbformat.v4.new_code_cell("%matplotlib inline\nimport os\nFAST_SEEN = os.environ['A2_FAST']\n!echo shell"))
    nb.cells.append(nbformat.v4.new_code_cell("raise SystemExit('training must be skipped')", metadata={"tags": ["grader-skip"]}))
    nb.cells.append(nbformat.v4.new_code_cell("%%bash\nexit 1"))
    nb.cells.append(nbformat.v4.new_code_cell("import numpy as np\nSAMPLE = np.random.rand(3)"))
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(nb, folder / "01_toy.ipynb")
    return folder


def test_namespace_holds_solutions_and_skips_tests_training_and_magics(notebooks, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    ns = load_solution_namespace(notebooks / "01_toy.ipynb")
    assert ns["double"](-7) == -14
    assert ns["FAST_SEEN"] == "1"
    again = load_solution_namespace(notebooks / "01_toy.ipynb")
    np.testing.assert_array_equal(ns["SAMPLE"], again["SAMPLE"])  # seeded: same values every run
    import os
    assert os.environ["NBGRADER_EXECUTION"] == "autograde"  # the environment is restored


def test_a_failing_cell_is_named(tmp_path):
    nb = toy_notebook()
    nb.cells[2].source = "def double(x):\n    return 1 / 0\ndouble(1)"
    nbformat.write(nb, tmp_path / "bad.ipynb")
    with pytest.raises(RuntimeError, match="cell 2 'double'.*ZeroDivisionError"):
        load_solution_namespace(tmp_path / "bad.ipynb")


def test_write_reference_npz_or_json_and_load_back(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 3))
    assert write_reference(tmp_path, "arrays", {"x": x, "n": 3}).suffix == ".npz"
    loaded = load_reference(tmp_path, "arrays")
    np.testing.assert_array_equal(loaded["x"], x)
    assert loaded["n"] == 3
    assert write_reference(tmp_path, "arrays", {"x": x, "classes": ["cat", "dog"]}).suffix == ".json"
    assert not (tmp_path / "arrays.npz").exists()  # no stale file of the other format
    loaded = load_reference(tmp_path, "arrays")
    assert loaded["classes"] == ["cat", "dog"] and np.allclose(loaded["x"], x)
    with pytest.raises(FileNotFoundError, match="a2kit reference"):
        load_reference(tmp_path, "missing")


def test_split_references():
    assert split_references({"x": 1}, "01_toy") == {"01_toy": {"x": 1}}
    assert split_references({"a": {"x": 1}, "b": {"y": 2}}, "01_toy") == {"a": {"x": 1}, "b": {"y": 2}}
    with pytest.raises(TypeError):
        split_references({}, "01_toy")


def test_main_builds_each_notebook_folder_from_its_notebook(notebooks, tmp_path, capsys):
    """A notebook folder of a course's own (not the kit's): its builder runs, its reference/ is written."""
    folders = tmp_path / "folders"
    (folders / "01_toy").mkdir(parents=True)
    builder = folders / "01_toy" / "build_reference.py"
    builder.write_text("import numpy as np\n\ndef build(ns):\n"
                       "    return {'toy_double': {'x': np.arange(4.0), 'y': ns['double'](np.arange(4.0))}}\n")
    args = ["--notebooks", str(notebooks), "--notebook-folders", str(folders)]
    assert main(["01_toy", *args]) == 0
    with np.load(folders / "01_toy" / "reference" / "toy_double.npz") as f:
        np.testing.assert_array_equal(f["y"], [0.0, 2.0, 4.0, 6.0])
    (folders / "02_missing").mkdir()
    (folders / "02_missing" / "build_reference.py").write_text("def build(ns):\n    return {'x': 1}\n")
    assert main(["02_missing", *args]) == 0
    assert "no notebook" in capsys.readouterr().out
    assert main(["03_nowhere", *args]) == 1  # no folder at all
