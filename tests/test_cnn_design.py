"""Notebook 3 (CNN design): its checks, reference values, configs and reference-results command."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from a2lib.checkpoint import save_checkpoint
from a2lib.checks import models as checks
from a2lib.config import config_path, load_config
from a2lib.workflow import checkpoint_evaluation

KIT = Path(__file__).resolve().parent.parent
NOTEBOOK = KIT / "notebooks" / "03_cnn_design.ipynb"


@pytest.fixture(scope="module")
def solution():
    """The source notebook's solution namespace (TwoLayerNet, VanillaCNN, MyModel)."""
    from autograder.tools.solutions import load_solution_namespace

    return load_solution_namespace(NOTEBOOK)


@pytest.fixture(scope="module")
def reference(solution):
    from autograder.notebooks import notebook_folders

    return notebook_folders()["03_cnn_design"].module("build_reference").reference_outputs(solution)


@pytest.fixture
def modes(monkeypatch):
    """Set fast mode and grading mode: ``modes(fast=True, grading=False)``."""
    def set_modes(fast: bool, grading: bool):
        monkeypatch.setenv("A2_FAST", "1" if fast else "0")
        if grading:
            monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
        else:
            monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    return set_modes


# -- configs --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["twolayer", "vanilla_cnn", "mymodel", "student_design"])
def test_configs_load(name):
    cfg = load_config(KIT / "configs" / f"{name}.yaml")
    assert cfg.name == name and cfg.epochs >= 10 and cfg.learning_rate > 0


def test_student_design_schedule_scales_with_epochs():
    cfg = load_config(KIT / "configs" / "student_design.yaml")
    assert (cfg.epochs, cfg.steps, cfg.batch_size, cfg.learning_rate, cfg.reg) == (70, [42, 56], 128, 0.05, 4e-4)
    assert load_config(KIT / "configs" / "student_design.yaml", epochs=8).steps == [5, 6]


def test_config_path_finds_the_kit_configs_from_the_notebooks_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(KIT / "notebooks")
    assert config_path("mymodel").resolve() == KIT / "configs" / "mymodel.yaml"
    monkeypatch.chdir(tmp_path)  # elsewhere, the kit's own configs/ are the fallback
    assert config_path("mymodel").resolve() == KIT / "configs" / "mymodel.yaml"
    with pytest.raises(FileNotFoundError, match="no_such_config.yaml"):
        config_path("no_such_config")


# -- the solution ---------------------------------------------------------------------------------
def test_solution_architectures(solution):
    two_layer = solution["TwoLayerNet"](3072, 256, 10)
    assert checks.count_parameters(two_layer) == 3072 * 256 + 256 + 256 * 10 + 10
    vanilla = solution["VanillaCNN"]()
    assert checks.count_parameters(vanilla) == 32 * 3 * 49 + 32 + 5408 * 10 + 10
    model = solution["MyModel"]()
    assert checks.count_parameters(model) <= 5_000_000
    x = torch.randn(2, 3, 32, 32)
    for net in (two_layer, vanilla, model.eval()):
        assert net(x).shape == (2, 10)


def test_my_model_averages_an_image_and_its_mirror_at_test_time(solution):
    torch.manual_seed(0)
    model = solution["MyModel"]().eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), model(x.flip(3)), atol=1e-5)
        model.train()
        assert not torch.allclose(model(x), model(x.flip(3)), atol=1e-3)


# -- reference values and the output check --------------------------------------------------------
class TwoLayerOtherNames(nn.Module):
    """A correct TwoLayerNet with other attribute names and functional calls."""

    def __init__(self, input_dim, hidden_size, num_classes):
        super().__init__()
        self.b = nn.Linear(hidden_size, num_classes)
        self.a = nn.Linear(input_dim, hidden_size)

    def forward(self, x):
        return self.b(torch.sigmoid(self.a(x.reshape(len(x), -1))))


class TwoLayerReLU(TwoLayerOtherNames):
    def __init__(self, *args):
        super().__init__(*args)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.b(self.act(self.a(x.reshape(len(x), -1))))


TWO_LAYER_SHAPES = [(16, 48), (16,), (10, 16), (10,)]


def test_fill_parameters_depends_on_shapes_only(solution):
    x = torch.randn(2, 3, 4, 4)
    a = checks.fill_parameters(solution["TwoLayerNet"](48, 16, 10))
    b = checks.fill_parameters(TwoLayerOtherNames(48, 16, 10))
    assert torch.equal(a(x), b(x))
    c = checks.fill_parameters(TwoLayerOtherNames(48, 16, 10), seed=1)
    assert not torch.allclose(a(x), c(x))


def _outputs_verdict(solution, **classes):
    from autograder.tools.local import run_local

    namespace = {**solution, **classes}
    grade_id = "test_two_layer_net_hidden" if "TwoLayerNet" in classes else "test_vanilla_cnn_hidden"
    return run_local("03_cnn_design", grade_id, namespace)


def test_hidden_outputs_test_accepts_the_solution_and_other_names(solution):
    assert _outputs_verdict(solution, TwoLayerNet=solution["TwoLayerNet"]).passed
    assert _outputs_verdict(solution, TwoLayerNet=TwoLayerOtherNames).passed
    assert _outputs_verdict(solution, VanillaCNN=solution["VanillaCNN"]).passed


def test_hidden_outputs_test_names_a_relu_and_a_wrong_layer_size(solution):
    verdict = _outputs_verdict(solution, TwoLayerNet=TwoLayerReLU)
    assert not verdict.passed and "Your model contains ReLU" in verdict.message

    class Wider(TwoLayerOtherNames):
        def __init__(self, input_dim, hidden_size, num_classes):
            super().__init__(input_dim, hidden_size + 4, num_classes)

    verdict = _outputs_verdict(solution, TwoLayerNet=Wider)
    assert not verdict.passed and "(10, 16)" in verdict.message and "(10, 20)" in verdict.message


def test_committed_reference_matches_the_solution(reference):
    from autograder.notebooks import notebook_folders

    committed = notebook_folders()["03_cnn_design"].reference("cnn_design")
    for key, value in reference.items():
        np.testing.assert_allclose(committed[key], value, atol=1e-6, err_msg=f"{key}: run a2kit reference 03_cnn_design")


# -- graded accuracy from checkpoints -------------------------------------------------------------
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


@pytest.fixture(scope="module")
def trained_tiny(synthetic_root, tmp_path_factory):
    """A tiny CNN trained on the synthetic CIFAR-10 for a few seconds, saved as a checkpoint."""
    from a2lib.data import load_cifar10
    from a2lib.train import fit

    torch.manual_seed(0)
    model = Tiny()
    fit(model, load_cifar10(synthetic_root, "train"), config={"epochs": 3, "learning_rate": 0.05, "batch_size": 50,
                                                              "augment": False}, progress=False, device="cpu")
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model)
    return path


def test_check_accuracy_recomputes_from_the_checkpoint(trained_tiny, synthetic_root, monkeypatch, modes, capsys):
    monkeypatch.setenv("A2_DATA", str(synthetic_root))
    modes(fast=False, grading=True)
    assert checks.check_accuracy(Tiny(), trained_tiny, minimum=0.5) is None  # nbgrader: a displayed value is partial credit
    printed = capsys.readouterr().out
    assert checkpoint_evaluation(Tiny(), trained_tiny).accuracy >= 0.5 and "Tiny from" in printed and "overall" in printed and "200" in printed
    with pytest.raises(AssertionError, match=r"below the required 1\.50"):
        checks.check_accuracy(Tiny(), trained_tiny, minimum=1.5, show_table=False)


def test_low_accuracy_is_only_reported_in_fast_mode_outside_grading(trained_tiny, synthetic_root, monkeypatch, modes, capsys):
    monkeypatch.setenv("A2_DATA", str(synthetic_root))
    modes(fast=True, grading=False)
    checks.check_accuracy(Tiny(), trained_tiny, minimum=1.5, show_table=False)
    out = capsys.readouterr().out
    assert "Fast mode" in out and "cannot show whether Tiny reaches 1.50" in out and "FAST = False" in out
    assert "below the required" not in out and "Train longer" not in out  # a correct fast run is not told to train longer
    modes(fast=True, grading=True)
    with pytest.raises(AssertionError, match="below the required"):
        checks.check_accuracy(Tiny(), trained_tiny, minimum=1.5, show_table=False)


def test_missing_and_wrong_architecture_checkpoints_fail_in_plain_words(trained_tiny, synthetic_root, monkeypatch, modes, tmp_path):
    monkeypatch.setenv("A2_DATA", str(synthetic_root))
    modes(fast=True, grading=True)
    with pytest.raises(AssertionError, match="No checkpoint"):
        checks.check_accuracy(Tiny(), tmp_path / "mymodel.pt", minimum=0.5)
    with pytest.raises(AssertionError, match="does not fit"):
        checks.check_accuracy(TwoLayerOtherNames(3072, 16, 10), trained_tiny, minimum=0.5)


def test_fast_grading_uses_a_fixed_stratified_subset(real_root):
    from a2lib.workflow import grading_test_set

    test = grading_test_set(real_root, fast=True)
    assert len(test) == 1000 and test.cls_num_list == [100] * 10
    again = grading_test_set(str(real_root) + "/", fast=True)
    assert torch.equal(test.labels, again.labels)


# -- the notebook and the reference-results command ----------------------------------------------
@pytest.mark.slow
def test_accuracy_benchmark_fast_schedule_writes_its_tables(synthetic_root, tmp_path):
    env = dict(os.environ, A2_DATA=str(synthetic_root), TQDM_DISABLE="1")
    subprocess.run([sys.executable, str(KIT / "bench" / "accuracy.py"), "--schedule", "fast", "--parts", "mymodel",
                    "--out", str(tmp_path), "--device", "cpu"], check=True, env=env, cwd=KIT, capture_output=True, timeout=600)
    results = json.loads((tmp_path / "accuracy_fast.json").read_text())
    for key in ("hardware", "schedule", "mymodel_test_acc", "seed_arch_test_acc", "lt100_ce_acc", "lt100_cbfocal_acc"):
        assert key in results
    assert results["schedule"] == "fast" and len(results["mymodel_per_class"]) == 10
    assert len(results["mymodel"]["epoch_test_acc"]) == 2 and results["mymodel_test_acc"] == results["mymodel"]["epoch_test_acc"][-1]
    assert "| MyModel (reference) |" in (tmp_path / "accuracy_fast.md").read_text()


def test_source_notebook_cells():
    """Graded cells and points as the notebook's table says; training cells skipped for references."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    graded = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
              for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}
    assert sum(graded.values()) == 21 and graded["my_model_justification"] == 4
    assert {k for k in graded if k.startswith("test_my_model_")} == {
        "test_my_model_050", "test_my_model_060", "test_my_model_070", "test_my_model_bonus"}
    for cell in nb.cells:
        assert cell.cell_type != "code" or not cell.outputs, "commit the source notebook without outputs"
        if cell.cell_type == "code" and "train_and_save(" in cell.source:
            assert "grader-skip" in cell.metadata.get("tags", []), cell.metadata["nbgrader"]["grade_id"]


def test_a_wrong_flatten_size_is_explained_in_course_words():
    class WrongFlatten(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.pool = nn.Conv2d(3, 32, 7), nn.MaxPool2d(2)
            self.fc = nn.Linear(32 * 14 * 14, 10)  # 14: the output size computed with / instead of //

        def forward(self, x):
            return self.fc(self.pool(self.conv(x)).flatten(1))

    with pytest.raises(AssertionError, match=r"WrongFlatten: a linear layer receives 5,408 numbers per image, but it "
                                             r"was built for 6,272 inputs.*// stride \+ 1"):
        checks.scores_of(WrongFlatten(), torch.zeros(4, 3, 32, 32))
    with pytest.raises(RuntimeError, match="expected input"):  # other errors stay torch's
        checks.scores_of(nn.Conv2d(3, 4, 3), torch.zeros(4, 5, 8, 8))
    assert checks.scores_of(nn.Flatten(), torch.zeros(2, 3)).shape == (2, 3)


def test_the_training_loop_check_names_each_mistake():
    good = dict(losses=[2.15, 1.75, 1.55], trained_accuracy=0.5, constant_accuracy=0.1, expected_constant=0.1,
                mode_after_training=True, mode_after_evaluate=False)
    assert checks.training_loop_problem(**good) is None
    for change, words in [({"losses": [2.3, 2.3, 2.3]}, "should go down"),
                          ({"mode_after_training": False}, "model.train()"),
                          ({"mode_after_evaluate": True}, "model.eval()"),
                          ({"constant_accuracy": 12.0}, "divide by the number of images"),
                          ({"trained_accuracy": 0.1}, "argmax"),
                          ({"losses": [float("nan")] * 3}, "mean loss of the epoch")]:
        assert words in checks.training_loop_problem(**{**good, **change}), change


def test_the_grader_explains_a_wrong_flatten_size_too(solution):
    from autograder.tools.local import run_local

    class WrongFlatten(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.pool = nn.Conv2d(3, 32, 7), nn.MaxPool2d(2)
            self.fc = nn.Linear(32 * 14 * 14, 10)

        def forward(self, x):
            return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))

    verdict = run_local("03_cnn_design", "test_vanilla_cnn", {**solution, "VanillaCNN": WrongFlatten})
    assert not verdict.passed and "a linear layer receives 5,408 numbers per image" in verdict.message
    assert run_local("03_cnn_design", "test_vanilla_cnn", solution).passed
