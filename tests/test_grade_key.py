"""The regrade key: each part of what decides a grade changes the key, and says so in plain words.

Unit tests on ``autograder.engine.regrade_key`` (no grading: fast); the end-to-end check, a class
graded again after its mode or a hidden test changed, is in ``test_grade.py``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from autograder.engine import regrade_key as rk

TOY = Path(__file__).resolve().parent / "toy_folders"


@pytest.fixture
def setting(tmp_path, synthetic_root):
    """A source folder, a submission, a copy of the toy notebook folders (with a reference file), a data folder."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "01_toy.ipynb").write_text("{}")
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "01_toy.ipynb").write_text('{"cells": []}')
    folders = tmp_path / "folders"
    shutil.copytree(TOY, folders)
    (folders / "01_toy" / "reference").mkdir()
    (folders / "01_toy" / "reference" / "values.json").write_text('{"want": 2}')
    data = tmp_path / "data"
    shutil.copytree(synthetic_root, data)
    env = {"A2_FAST": "0", "A2_DATA": str(data), "OMP_NUM_THREADS": "1"}
    limits = {"wall_s": 900.0, "memory_gb": 4.0, "cell_timeout_s": None}
    return {"source": source, "submission": submission, "folders": folders, "data": data, "env": env, "limits": limits}


def key(s) -> dict:
    return rk.submission_key(rk.class_key(s["source"], s["env"], s["limits"], [str(s["folders"])]), s["submission"])


def append(path: Path, text: str) -> None:
    path.write_bytes(path.read_bytes() + text.encode())


def test_the_key_is_stable_and_holds_every_part(setting):
    first = key(setting)
    assert list(first) == ["submission", *rk.PARTS[1:]] and set(first) == set(rk.PARTS)
    assert rk.changed_parts(first, key(setting)) == []
    # Thread counts follow the number of workers: another count is not another grade.
    assert rk.changed_parts(first, key({**setting, "env": {**setting["env"], "OMP_NUM_THREADS": "8"}})) == []


@pytest.mark.parametrize("part, change", [
    ("submission", lambda s: append(s["submission"] / "01_toy.ipynb", " ")),
    ("source notebooks", lambda s: append(s["source"] / "01_toy.ipynb", " ")),
    ("mode", lambda s: s["env"].update(A2_FAST="1")),
    ("environment", lambda s: s["env"].update(A2_SEED="3")),
    ("limits", lambda s: s["limits"].update(wall_s=300.0)),
    ("limits", lambda s: s["limits"].update(cell_timeout_s=60)),
    ("hidden tests", lambda s: append(s["folders"] / "01_toy" / "hidden_tests.py", "\n# a comment\n")),
    ("hidden tests", lambda s: (s["folders"] / "02_toy" / "helpers.py").write_text("X = 1\n")),
    ("reference values", lambda s: (s["folders"] / "01_toy" / "reference" / "values.json").write_text('{"want": 3}')),
    ("reference values", lambda s: (s["folders"] / "01_toy" / "reference" / "checkpoints").mkdir()
     or (s["folders"] / "01_toy" / "reference" / "checkpoints" / "m.pt").write_bytes(b"\0" * 10)),
    ("data", lambda s: append(s["data"] / "cifar-10-batches-py" / "data_batch_1", "x")),
    ("data", lambda s: (s["data"] / "cifar-10-batches-py" / "test_batch").unlink()),
])
def test_each_part_changes_the_key_and_names_itself(setting, part, change):
    before = key(setting)
    change(setting)
    after = key(setting)
    assert rk.changed_parts(before, after) == [part]
    assert rk.regrade_reason(rk.changed_parts(before, after)) == f"{part} changed"


def test_another_data_folder_changes_the_environment_and_the_data(setting, tmp_path):
    before = key(setting)
    other = tmp_path / "other"
    shutil.copytree(setting["data"], other)
    append(other / "cifar-10-batches-py" / "batches.meta", "x")
    setting["env"]["A2_DATA"] = str(other)
    assert rk.changed_parts(before, key(setting)) == ["environment", "data"]


def test_the_kit_version_and_grading_code_are_in_the_key(setting, monkeypatch):
    import a2lib

    before = key(setting)
    monkeypatch.setattr(a2lib, "__version__", a2lib.__version__ + ".post1")
    assert rk.changed_parts(before, key(setting)) == ["kit"]


def test_the_same_folders_elsewhere_give_the_same_key(setting, tmp_path):
    """Moving the notebook folders (another checkout, an installed kit) changes no part."""
    before = key(setting)
    moved = tmp_path / "moved"
    shutil.copytree(setting["folders"], moved)
    setting["folders"] = moved
    assert rk.changed_parts(before, key(setting)) == []


def test_no_or_an_old_earlier_key_regrades_and_says_why(setting):
    new = key(setting)
    assert rk.regrade_reason(rk.changed_parts(None, new)) == "no earlier grading"
    assert rk.regrade_reason(rk.changed_parts("0f" * 32, new)) == "grading key format changed"
    assert rk.regrade_reason(["mode", "hidden tests"]) == "mode changed, hidden tests changed"
