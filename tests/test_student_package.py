"""The student package as students receive it: a wheel of a2lib alone, carried by the release.

The wheel is built from ``a2lib/`` and scanned (``autograder.pipeline.student_package``): nothing outside
``a2lib/``, no reference values, checkpoints or notebooks, no instructor code, no solution or hidden
test. The scan is shown to catch each of these in a deliberately polluted copy, so it can fail.
"""
from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

import a2lib
from autograder.locations import KIT_ROOT, SOURCE_NOTEBOOKS as NOTEBOOKS
from autograder.pipeline.student_package import build_wheel, scan_package, scan_wheel, solution_lines, version


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def fingerprints() -> set[str]:
    return solution_lines()


def test_the_wheel_holds_the_student_package_and_nothing_else(wheel, fingerprints):
    assert wheel.name == f"a2lib-{a2lib.__version__}-py3-none-any.whl" and version() == a2lib.__version__
    assert scan_wheel(wheel, fingerprints) == []
    names = zipfile.ZipFile(wheel).namelist()
    assert all(n.startswith(("a2lib/", f"a2lib-{a2lib.__version__}.dist-info/")) for n in names), names
    assert {"a2lib/workflow.py", "a2lib/train.py", "a2lib/checks/theory.py", "a2lib/numpy_nn/module.py"} <= set(names)
    metadata = zipfile.ZipFile(wheel).read(f"a2lib-{a2lib.__version__}.dist-info/METADATA").decode()
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert {re.split(r"[<>=]", r)[0].lower() for r in requires} == {
        "torch", "torchvision", "numpy", "pandas", "matplotlib", "seaborn", "pyyaml", "tqdm", "ipywidgets"}
    assert all("<" not in r for r in requires), requires  # lower bounds only: Colab's torch is kept


def test_the_scan_catches_every_kind_of_leak(wheel, fingerprints, tmp_path):
    solution = sorted(fingerprints)[0]
    polluted = tmp_path / wheel.name
    metadata = f"a2lib-{a2lib.__version__}.dist-info/METADATA"
    with zipfile.ZipFile(wheel) as clean, zipfile.ZipFile(polluted, "w") as zf:
        for name in clean.namelist():
            extra = "Requires-Dist: nbgrader>=0.9\nRequires-Dist: torch<2.5\n" if name == metadata else ""
            zf.writestr(name, clean.read(name).decode() + extra)
        zf.writestr("a2lib/reference/theory.npz", b"PK")
        zf.writestr("a2lib/reference/checkpoints/mymodel.pt", b"")
        zf.writestr("a2lib/notebooks/03_cnn_design.ipynb", "{}")
        zf.writestr("autograder/__init__.py", "")
        zf.writestr("a2lib/solutions.py", f"def q1_matrix(w):\n    {solution}\n")
        zf.writestr("a2lib/hidden.py", "### BEGIN HIDDEN TESTS\ncheck_reweight(reweight)\n")
        zf.writestr("a2lib/harness.py", "from autograder.reference import load\n")
        zf.writestr("a2lib/checks/oracles.py", "def torch_reference(x):\n    pass\n\ndef conv_oracle(x):\n    pass\n"
                    "\n\ndef autograd_linearization(w, b, x0):\n    pass\n")
    report = "\n".join(scan_wheel(polluted, fingerprints))
    for expected in ("theory.npz: a data file", "mymodel.pt: a data file", "03_cnn_design.ipynb: a data file",
                     "autograder/__init__.py: outside the a2lib package", "solutions.py: holds 1 line(s)",
                     "hidden.py: contains 'BEGIN HIDDEN TESTS'", "harness.py: imports the instructor kit",
                     "requires nbgrader", "caps torch", "defines torch_reference(), a function that computes answers",
                     "defines conv_oracle()", "defines autograd_linearization()"):
        assert expected in report, f"{expected!r} not reported:\n{report}"


def test_the_source_folder_holds_no_solution(fingerprints, tmp_path):
    assert scan_package(fingerprints=fingerprints) == []
    copy = tmp_path / "a2lib"
    shutil.copytree(KIT_ROOT / "a2lib", copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (copy / "answers.py").write_text("\n".join(sorted(fingerprints)[:3]) + "\n")
    (copy / "values.json").write_text("{}")
    report = "\n".join(scan_package(copy, fingerprints))
    assert "answers.py: holds 3 line(s)" in report and "values.json: a data file" in report


def test_a_subpackage_missing_from_the_build_list_is_reported(wheel, fingerprints, tmp_path):
    copy = tmp_path / "a2lib"
    shutil.copytree(KIT_ROOT / "a2lib", copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (copy / "extras").mkdir()
    (copy / "extras" / "__init__.py").write_text("")
    assert scan_wheel(wheel, fingerprints, package=copy) == [
        "a2lib/extras: a subpackage missing from the wheel (list it in a2lib/pyproject.toml)"]


def test_the_kit_requires_the_student_package_of_the_same_version():
    pyproject = (KIT_ROOT / "pyproject.toml").read_text()
    assert f'"a2lib=={a2lib.__version__}"' in pyproject
    assert 'attr = "a2lib.__version__"' in pyproject and 'attr = "a2lib.__version__"' in (
        KIT_ROOT / "a2lib" / "pyproject.toml").read_text()


def _code_cells(stem):
    return [c for c in nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("stem", sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")))
def test_every_notebook_starts_with_the_same_install_cell_and_has_no_grading_plumbing(stem):
    first = _code_cells(stem)[0]
    reference = _code_cells("01_theory")[0]
    assert first.metadata["nbgrader"]["grade_id"] == "install" and not first.metadata["nbgrader"]["grade"]
    assert "grader-skip" in first.metadata["tags"] and first.source == reference.source
    assert "a2lib-*.whl" in first.source and "pip" in first.source
    for cell in _code_cells(stem):
        if not cell.metadata.get("nbgrader", {}).get("grade"):  # test cells belong to the grading harness
            assert "GRADING" not in cell.source and "grading()" not in cell.source, cell.get("id")


def test_the_release_carries_the_wheel_beside_the_notebooks():
    from kit_corpus import released_course

    course = released_course()
    wheels = sorted(course.release_dir.glob("a2lib-*.whl"))
    assert [w.name for w in wheels] == [f"a2lib-{a2lib.__version__}-py3-none-any.whl"]
    with zipfile.ZipFile(course.release_dir.parent / f"{course.assignment}.zip") as zf:
        names = set(zf.namelist())
    assert f"a2/{wheels[0].name}" in names and "a2/configs/resnet32_cbfocal.yaml" in names
    assert not [n for n in names if n.endswith((".npz", ".pt", ".py"))], names
