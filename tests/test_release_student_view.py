"""What the release zip gives students beyond the notebooks: named stubs, a Run All that reaches the end
of the optional cells, the students' guide as README.md, and configs that are a start, not the answer."""
import re
import zipfile

import nbformat
import pytest
import yaml

from autograder.pipeline.stubs import named_stubs

STUB = "raise NotImplementedError()"


def test_a_stub_names_the_function_and_class_it_sits_in():
    source = ("class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        # YOUR CODE HERE\n"
              f"        {STUB}\n\n    def forward(self, x):\n        {STUB}\n\n\ndef helper(x):\n    {STUB}\n")
    named = named_stubs(source, "net")
    assert STUB not in named
    assert [m.group(1) for m in re.finditer(r'NotImplementedError\("([\w.]+): not written yet', named)] == [
        "Net.__init__", "Net.forward", "helper"]
    top = named_stubs(f"# YOUR CODE HERE\n{STUB}", "q2_answers")
    assert 'raise NotImplementedError("q2_answers: not written yet' in top
    assigned = named_stubs(f"conv_parameters = dense_parameters = None\n# YOUR CODE HERE\n{STUB}", "weight_sharing")
    assert 'raise NotImplementedError("conv_parameters, dense_parameters: not written yet' in assigned
    optional = named_stubs(f"# YOUR CODE HERE\n{STUB}", "my_model_blocks", optional=True)
    assert optional.splitlines()[-1].startswith("pass  # optional")
    compile(named + "\n" + optional, "<stubs>", "exec")


@pytest.fixture(scope="module")
def release():
    from kit_corpus import released_course

    course = released_course()
    with zipfile.ZipFile(course.release_dir.parent / f"{course.assignment}.zip") as zf:
        names = set(zf.namelist())
        readme = zf.read("a2/README.md").decode() if "a2/README.md" in names else ""
    return course, names, readme


def test_no_released_notebook_has_a_bare_stub_and_checksums_match(release):
    from nbgrader.utils import compute_checksum

    course, _, _ = release
    for path in sorted(course.release_dir.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            assert cell.cell_type != "code" or STUB not in cell.source, (path.name, cell.source)
            meta = cell.metadata.get("nbgrader", {})
            if "checksum" in meta:
                assert meta["checksum"] == compute_checksum(cell), (path.name, meta.get("grade_id"))
    blocks = next(c for c in nbformat.read(course.release_dir / "03_cnn_design.ipynb", as_version=4).cells
                  if c.metadata.get("nbgrader", {}).get("grade_id") == "my_model_blocks")
    namespace = {}
    exec(blocks.source, namespace)  # noqa: S102 (Run All goes on past the optional cell)


def test_the_zip_holds_the_students_guide_and_names_no_file_it_lacks(release):
    _, names, readme = release
    assert "a2/README.md" in names and "Fast or full" not in readme and "settings cell" in readme
    for mentioned in set(re.findall(r"`((?:configs/)?[\w-]+\.(?:ipynb|yaml|whl))`", readme)):
        assert any(n.endswith("/" + mentioned) or n == f"a2/{mentioned}" for n in names), mentioned


def test_the_released_configs_are_a_start_and_point_at_nothing_instructor_only(release):
    from a2lib.config import load_config

    course, names, _ = release
    released = course.release_dir / "configs"
    text = "\n".join(p.read_text() for p in released.glob("*.yaml"))
    for instructor_only in ("bench/", "autograder/", "reference solution", "reference/"):
        assert instructor_only not in text, instructor_only
    mine = yaml.safe_load((released / "mymodel.yaml").read_text())
    assert mine.get("schedule", "constant") != "cosine" and not mine.get("label_smoothing")  # not the reference recipe
    load_config(released / "mymodel.yaml")
