"""Notebook 4's hidden tests and checks: the solution passes, each typical mistake fails with its own message.

The behavioural test's tolerance is measured here: losses that compute the same function in
different ways (through F.cross_entropy, softmax then log, one-hot in float64, or the solution's
value times 1 + 1e-5) must give the reference per-class accuracy within it, and a loss that does
not (plain cross-entropy) must not.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from a2lib.checks import imbalance
from autograder.harness import LocalSession
from autograder.notebooks import notebook_folders
from autograder.tools.local import run_local, solution_namespace

NOTEBOOK = "04_data_wrangling"
FOLDER = notebook_folders()[NOTEBOOK]
hidden = FOLDER.module("hidden_tests")


@pytest.fixture(scope="module")
def ns():
    return solution_namespace(NOTEBOOK)


def verdict(ns, grade_id: str, key: bytes = b"", student: str = "local", **names):
    """The hidden test ``grade_id`` on the solution with ``names`` replaced (e.g. FocalLoss=...); ``key`` (the
    course's secret) and ``student`` draw the random cases."""
    return run_local(NOTEBOOK, grade_id, {**ns, **names}, key=key, student=student)


# -- losses: correct variants and typical mistakes -------------------------------------------------
class Loss(nn.Module):
    def __init__(self, weight=None, gamma=0.):
        super().__init__()
        self.weight, self.gamma = weight, gamma

    def w(self, x, y):
        return torch.ones(len(y), dtype=x.dtype) if self.weight is None else torch.as_tensor(self.weight, dtype=x.dtype)[y]

    def log_p(self, x, y):
        return F.log_softmax(x, 1).gather(1, y[:, None]).squeeze(1)

    def weighted_mean(self, x, y, loss):
        w = self.w(x, y)
        return (w * loss).sum() / w.sum()


class ViaCrossEntropy(Loss):
    def forward(self, x, y):
        ce = F.cross_entropy(x, y, reduction="none")
        return self.weighted_mean(x, y, (1 - torch.exp(-ce)) ** self.gamma * ce)


class ViaSoftmax(Loss):
    def forward(self, x, y):
        p = torch.softmax(x, 1)[torch.arange(len(y)), y]
        return self.weighted_mean(x, y, -(1 - p) ** self.gamma * torch.log(p))


class ViaOneHot64(Loss):
    def forward(self, x, y):
        x64 = x.double()
        log_p = (F.one_hot(y, x.shape[1]) * F.log_softmax(x64, 1)).sum(1)
        return self.weighted_mean(x64, y, -(1 - log_p.exp()) ** self.gamma * log_p).float()


class Sigmoid(Loss):
    """The paper's form (Cui et al.'s reference code): binary focal terms over all classes."""

    def forward(self, x, y):
        onehot = F.one_hot(y, x.shape[1]).float()
        p = torch.sigmoid(x)
        p_t = onehot * p + (1 - onehot) * (1 - p)
        loss = (1 - p_t) ** self.gamma * F.binary_cross_entropy_with_logits(x, onehot, reduction="none")
        return (self.w(x, y)[:, None] * loss).sum() / len(y)


class NoFactor(Loss):
    def forward(self, x, y):
        return self.weighted_mean(x, y, -self.log_p(x, y))


class PowerOfP(Loss):
    def forward(self, x, y):
        log_p = self.log_p(x, y)
        return self.weighted_mean(x, y, -log_p.exp() ** self.gamma * log_p)


class FactorInsideLog(Loss):
    def forward(self, x, y):
        log_p = self.log_p(x, y)
        return self.weighted_mean(x, y, -torch.log((1 - log_p.exp()) ** self.gamma * log_p.exp()))


class MeanIgnoresWeights(Loss):
    def forward(self, x, y):
        log_p = self.log_p(x, y)
        return (self.w(x, y) * -(1 - log_p.exp()) ** self.gamma * log_p).mean()


class NoWeights(Loss):
    def forward(self, x, y):
        log_p = self.log_p(x, y)
        return (-(1 - log_p.exp()) ** self.gamma * log_p).mean()


class DetachedFactor(Loss):
    def forward(self, x, y):
        log_p = self.log_p(x, y)
        return self.weighted_mean(x, y, -(1 - log_p.exp().detach()) ** self.gamma * log_p)


FOCAL_MISTAKES = {Sigmoid: "sigmoid", NoFactor: "factor (1 - p) ** gamma is", PowerOfP: "p ** gamma instead",
                  FactorInsideLog: "inside the logarithm", MeanIgnoresWeights: "ignores the class weights",
                  NoWeights: "multiplied by w[target]", DetachedFactor: "cut off from autograd"}


def float32_reweight(cls_num_list, beta):
    n = torch.tensor(cls_num_list, dtype=torch.float32)
    w = (1 - beta) / (1 - beta ** n)
    return w / w.sum() * len(w)


WEIGHT_MISTAKES = {
    "not normalized": lambda n, b: [(1 - b) / (1 - b ** k) for k in n],
    # in float32, as students write it: beta ** n underflows to 0 for large n
    "beta ** n alone": lambda n, b: (lambda w: w / w.sum() * len(n))(torch.tensor([b ** k for k in n], dtype=torch.float32)),
    "without inverting": lambda n, b: hidden.normalized(1 - b ** np.asarray(n, dtype=float)),
    "inverse class frequency": lambda n, b: hidden.normalized(1 / np.asarray(n, dtype=float)),
}


# -- reweight --------------------------------------------------------------------------------------
def test_reference_weights_are_those_of_the_solution(ns):
    for counts, beta in hidden.reweight_cases(np.random.default_rng(0)):
        np.testing.assert_allclose(hidden.reweight_reference(counts, beta), ns["reweight"](counts, beta), rtol=1e-6)


def test_solution_and_a_float32_variant_pass(ns):
    assert verdict(ns, "test_reweight_hidden").passed
    assert verdict(ns, "test_reweight_hidden", reweight=float32_reweight).passed


@pytest.mark.parametrize("name", WEIGHT_MISTAKES)
def test_weight_mistakes_are_named(name, ns):
    result = verdict(ns, "test_reweight_hidden", reweight=WEIGHT_MISTAKES[name])
    assert not result.passed and name in result.message


# -- focal loss ------------------------------------------------------------------------------------
def test_reference_focal_loss_is_weighted_cross_entropy_at_gamma_0():
    cases = [c for c in hidden.focal_cases(np.random.default_rng(0)) if c["gamma"] == 0]
    assert len(cases) >= 4
    for c in cases:
        w = None if c["weight"] is None else torch.as_tensor(c["weight"])
        ce = F.cross_entropy(torch.as_tensor(c["logits"]), torch.as_tensor(c["targets"]), weight=w)
        assert abs(float(ce) - c["loss"]) < 1e-5


@pytest.mark.parametrize("variant", [ViaCrossEntropy, ViaSoftmax, ViaOneHot64])
def test_correct_variants_pass(variant, ns):
    assert verdict(ns, "test_focal_loss_hidden", FocalLoss=variant).passed
    assert verdict(ns, "test_focal_loss", FocalLoss=variant).passed


@pytest.mark.parametrize("mistake", FOCAL_MISTAKES, ids=lambda m: m.__name__)
def test_focal_mistakes_are_named(mistake, ns):
    # Several courses and students: the random cases differ with each, and the name must not (this course
    # key once drew, for this student, a batch where the inside-log loss's weighted mean fell within 2e-5
    # of its plain mean).
    drawn = bytes.fromhex("787fb9b93125b72ab4533e2a8cc62c8acf43a00d27a177a7735b98dc821e9f9a")
    for key, student in ((b"", "local"), (drawn, "focal_factor_inside_log"), (b"another course", "ada")):
        result = verdict(ns, "test_focal_loss_hidden", key=key, student=student, FocalLoss=mistake)
        assert not result.passed and FOCAL_MISTAKES[mistake] in result.message, (student, result.message)


def test_a_loss_that_returns_a_vector_is_told_to_average(ns):
    class PerImage(Loss):
        def forward(self, x, y):
            return -self.log_p(x, y)

    result = verdict(ns, "test_focal_loss_hidden", FocalLoss=PerImage)
    assert not result.passed and "one number" in result.message


# -- behaviour: the tolerance, measured ------------------------------------------------------------
def behaviour_difference(loss_class, reference) -> float:
    """Largest per-class difference between training with ``loss_class`` and the reference loss."""
    yours = hidden.behaviour_per_class(LocalSession({"FocalLoss": loss_class}))
    return float(np.abs(yours.values - np.asarray(reference["per_class"])).max())


def test_committed_behaviour_reference_is_the_solution_s(ns):
    reference = FOLDER.reference("nb4_behaviour")
    assert behaviour_difference(ns["FocalLoss"], reference) == 0.0
    assert reference["evaluation"] == hidden.EVALUATION and reference["settings"] == imbalance.BEHAVIOUR


@pytest.mark.slow
def test_equivalent_losses_train_alike_and_cross_entropy_does_not(ns):
    reference = FOLDER.reference("nb4_behaviour")

    class Jittered(Loss):  # the solution's value times (1 + 1e-5): rounding far coarser than float32's
        def forward(self, x, y):
            return ns["FocalLoss"](self.weight, self.gamma)(x, y) * (1 + 1e-5)

    worst = {variant.__name__: behaviour_difference(variant, reference) for variant in (ViaCrossEntropy, ViaOneHot64, Jittered)}
    assert max(worst.values()) <= hidden.BEHAVIOUR_TOLERANCE / 2, worst  # a margin of 2x at least
    for wrong in (NoFactor, lambda weight, gamma: nn.CrossEntropyLoss()):
        assert behaviour_difference(wrong, reference) > hidden.BEHAVIOUR_TOLERANCE


# -- checkpoints -----------------------------------------------------------------------------------
class Constant(nn.Module):
    """Predicts one class for every image."""

    def __init__(self, label=0):
        super().__init__()
        self.bias = nn.Parameter(F.one_hot(torch.tensor(label), 10).float())

    def forward(self, x):
        return self.bias.expand(len(x), 10)


def test_rare_classes_and_long_tail_effect_messages():
    from a2lib.data import CIFAR10_CLASSES

    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert imbalance.rare_classes(counts) == [9, 8, 7]
    reference = pd.Series([0.9] * 7 + [0.1, 0.2, 0.3], index=CIFAR10_CLASSES)
    truck_only = pd.Series([0.0] * 9 + [1.0], index=CIFAR10_CLASSES)
    airplane_only = pd.Series([1.0] + [0.0] * 9, index=CIFAR10_CLASSES)
    tail_heavy = pd.Series([0.1] * 7 + [0.5, 0.6, 0.7], index=CIFAR10_CLASSES)
    head_heavy = pd.Series([0.9, 0.8, 0.7] + [0.1] * 7, index=CIFAR10_CLASSES)
    problem, passed = hidden.rare_classes_problem(tail_heavy, reference, counts, "lt_cbfocal.pt", 1000)
    assert problem is None and "passed" in passed
    problem, _ = hidden.rare_classes_problem(head_heavy, reference, counts, "lt_cbfocal.pt", 1000)
    assert re.search(r"rarest classes \(truck, ship, horse\).*0.100.*1,000 test images.*0.200", problem)
    assert imbalance.long_tail_effect_problem(head_heavy, counts, "lt_ce.pt")[0] is None
    problem, _ = imbalance.long_tail_effect_problem(tail_heavy, counts, "lt_ce.pt")
    assert re.search(r"0.100 on the 3 most frequent classes.*0.600 on the 3 rarest", problem)


def test_no_comparison_passes_a_model_that_predicts_one_class():
    from a2lib.data import CIFAR10_CLASSES

    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    reference = pd.Series([0.9] * 7 + [0.1, 0.2, 0.3], index=CIFAR10_CLASSES)
    truck_only = pd.Series([0.0] * 9 + [1.0], index=CIFAR10_CLASSES)
    airplane_only = pd.Series([1.0] + [0.0] * 9, index=CIFAR10_CLASSES)
    problem, _ = hidden.rare_classes_problem(truck_only, reference, counts, "lt_cbfocal.pt", 1000)  # tail 0.333 > 0.2
    assert "recognises only truck" in problem and "predicts one class" in problem
    problem, _ = imbalance.long_tail_effect_problem(airplane_only, counts, "lt_ce.pt")  # head 0.333 > tail 0
    assert "recognises only airplane" in problem
    assert "no class at all" in imbalance.one_class_problem(pd.Series([0.0] * 10, index=CIFAR10_CLASSES), "x.pt")


def test_checkpoint_checks_while_grading_and_in_fast_mode(synthetic_root, tmp_path, monkeypatch, capsys):
    from a2lib.checkpoint import save_checkpoint
    from a2lib.workflow import _TEST_SETS

    monkeypatch.setenv("A2_DATA", str(synthetic_root))
    monkeypatch.setenv("A2_FAST", "1")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    _TEST_SETS.clear()
    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    save_checkpoint(tmp_path / "truck.pt", Constant(9))
    save_checkpoint(tmp_path / "airplane.pt", Constant(0))
    for name in ("airplane", "truck"):  # one class for every image: never "passed"
        with pytest.raises(AssertionError, match=f"recognises only {name}"):
            imbalance.check_long_tail_effect(Constant(), tmp_path / f"{name}.pt", counts)
    with pytest.raises(AssertionError, match="No checkpoint at .*lt_cbfocal.pt"):
        imbalance.check_cbfocal_rare_classes(Constant, tmp_path / "lt_cbfocal.pt", counts, tmp_path / "airplane.pt")
    with pytest.raises(AssertionError, match="recognises only truck"):
        imbalance.check_cbfocal_rare_classes(Constant, tmp_path / "truck.pt", counts, tmp_path / "airplane.pt")
    monkeypatch.delenv("NBGRADER_EXECUTION")  # fast mode outside grading: reported with what fast mode cannot show
    imbalance.check_cbfocal_rare_classes(Constant, tmp_path / "truck.pt", counts, tmp_path / "airplane.pt")
    out = capsys.readouterr().out
    assert "Fast mode: " in out and "cannot show" in out and "cross-entropy (yours)" in out
    _TEST_SETS.clear()
