"""Each notebook's one editable settings cell: where it is, what it sets, who wins while grading.

The notebooks tell students to change ``FAST`` (and notebook 3's ``MYMODEL_EPOCHS``, notebook 4's
``SCHEDULE``, ``DEVICE``) in that cell; the checks and the engine read it through ``a2lib.mode``;
the grader never runs it and decides itself; editing it is not tampering.
"""
import nbformat
import pytest

from a2lib import mode
from a2lib.device import default_device
from autograder.engine.tampering import compare
from autograder.harness.cells import is_skipped, nbgrader_meta
from autograder.locations import SOURCE_NOTEBOOKS
from notebook_settings import settings_cell, with_settings

STEMS = sorted(p.stem for p in SOURCE_NOTEBOOKS.glob("0[1-4]_*.ipynb"))
SETTINGS = {"01_theory": {"FAST"}, "02_numpy_convnet": {"FAST"},
            "03_cnn_design": {"FAST", "MYMODEL_EPOCHS", "DEVICE"}, "04_data_wrangling": {"FAST", "SCHEDULE", "DEVICE"}}


@pytest.fixture
def fresh_settings(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("A2_FAST", raising=False)
    mode.reset_settings()
    yield
    mode.reset_settings()


def _read(stem):
    return nbformat.read(SOURCE_NOTEBOOKS / f"{stem}.ipynb", as_version=4)


@pytest.mark.parametrize("stem", STEMS)
def test_the_settings_cell_follows_the_install_cell_is_no_grading_cell_and_the_grader_skips_it(stem):
    nb = _read(stem)
    cell = settings_cell(nb)
    at = nb.cells.index(cell)
    assert nbgrader_meta(nb.cells[at - 1]).get("grade_id") == "install"
    assert nbgrader_meta(nb.cells[at + 1]).get("grade_id") == "setup"
    assert "nbgrader" not in cell.metadata and is_skipped(cell)
    names = {line.split("=")[0].strip() for line in cell.source.splitlines() if line[:1].isupper() and "=" in line}
    assert names == SETTINGS[stem]
    assert "use_settings(" in cell.source
    setup = nb.cells[at + 1].source
    assert "fast_mode()" in setup and "A2_FAST" not in setup  # the setup cell reads the settings cell's FAST


@pytest.mark.parametrize("stem", STEMS)
def test_editing_the_settings_cell_is_not_tampering(stem):
    nb = _read(stem)
    edited = with_settings(_read(stem), FAST=True)
    assert settings_cell(edited).source != settings_cell(nb).source
    assert compare(edited, nb) == []


def _run_settings_and_setup(nb) -> dict:
    cell = settings_cell(nb)
    at = nb.cells.index(cell)
    ns: dict = {}
    exec(cell.source, ns)           # noqa: S102 (the kit's own notebook)
    exec(nb.cells[at + 1].source, ns)  # noqa: S102
    return ns


def test_the_setup_cell_honours_the_settings_cell(fresh_settings, monkeypatch, capsys):
    monkeypatch.setenv("A2_FAST", "0")
    ns = _run_settings_and_setup(with_settings(_read("04_data_wrangling"), FAST=True, SCHEDULE="gpu", DEVICE="cpu"))
    assert ns["FAST"] is True and ns["EPOCHS"] == 1 and ns["SCHEDULE"] == "gpu"
    assert default_device().type == "cpu"
    mode.reset_settings()
    ns = _run_settings_and_setup(with_settings(_read("04_data_wrangling"), FAST=False, SCHEDULE="gpu"))
    assert ns["FAST"] is False and ns["EPOCHS"] == 200
    mode.reset_settings()
    ns = _run_settings_and_setup(with_settings(_read("03_cnn_design"), FAST=False, MYMODEL_EPOCHS=3))
    assert ns["FAST"] is False and ns["MYMODEL_EPOCHS"] == 3
    assert "fast mode: False   MyModel: 3 epochs" in capsys.readouterr().out


def test_while_grading_every_setting_is_the_graders(fresh_settings, monkeypatch):
    mode.use_settings(fast=True, schedule="gpu", device="meta")
    assert mode.setting("schedule") == "gpu" and default_device().type == "meta"
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setenv("A2_FAST", "0")
    assert mode.fast_mode() is False
    assert mode.setting("schedule", "cpu") == "cpu" and mode.setting("device") is None
    assert default_device().type in {"cpu", "cuda", "mps"}
