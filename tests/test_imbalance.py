"""Notebook 4's checks: the solution passes them, and each typical mistake fails with its own message.

The behavioural check's tolerance is measured here: losses that compute the same function in
different ways (through F.cross_entropy, softmax then log, one-hot in float64, or the solution's
value times 1 + 1e-5) must give the reference per-class accuracy within it, and a loss that does
not (plain cross-entropy) must not.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from a2lib.checks import imbalance
from autograder.reference import NOTEBOOKS, load_solution_namespace

CASES = __import__("importlib").import_module("autograder.cases.04_data_wrangling")


@pytest.fixture(scope="module")
def ns():
    return load_solution_namespace(NOTEBOOKS / "04_data_wrangling.ipynb")


@pytest.fixture(scope="module")
def refs(ns):
    rng = np.random.default_rng(2019)
    return {"reweight": CASES.reweight_cases(ns["reweight"], rng), "focal": CASES.focal_cases(ns["FocalLoss"], rng)}


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


class DetachedFactor(Loss):
    def forward(self, x, y):
        log_p = self.log_p(x, y)
        return self.weighted_mean(x, y, -(1 - log_p.exp().detach()) ** self.gamma * log_p)


FOCAL_MISTAKES = {Sigmoid: "sigmoid", NoFactor: "factor (1 - p) ** gamma is", PowerOfP: "p ** gamma instead",
                  FactorInsideLog: "inside the logarithm", MeanIgnoresWeights: "ignores the class weights",
                  DetachedFactor: "cut off from autograd"}


def float32_reweight(cls_num_list, beta):
    n = torch.tensor(cls_num_list, dtype=torch.float32)
    w = (1 - beta) / (1 - beta ** n)
    return w / w.sum() * len(w)


WEIGHT_MISTAKES = {
    "not normalized": lambda n, b: [(1 - b) / (1 - b ** k) for k in n],
    # in float32, as students write it: beta ** n underflows to 0 for large n
    "beta ** n alone": lambda n, b: (lambda w: w / w.sum() * len(n))(torch.tensor([b ** k for k in n], dtype=torch.float32)),
    "without inverting": lambda n, b: imbalance._normalized(1 - b ** np.asarray(n, dtype=float)),
    "inverse class frequency": lambda n, b: imbalance._normalized(1 / np.asarray(n, dtype=float)),
}


# -- reweight --------------------------------------------------------------------------------------
def test_reference_weights_are_those_of_the_formula(refs):
    for counts, beta, weights in imbalance.reweight_cases(refs["reweight"]):
        n = np.asarray(counts, dtype=np.float64)
        formula = (1 - beta) / (1 - beta ** n)
        np.testing.assert_allclose(weights, formula / formula.sum() * len(n), rtol=1e-6)


def test_solution_and_a_float32_variant_pass(ns, refs):
    imbalance.check_reweight(ns["reweight"], refs["reweight"])
    imbalance.check_reweight(float32_reweight, refs["reweight"])


@pytest.mark.parametrize("name", WEIGHT_MISTAKES)
def test_weight_mistakes_are_named(name, refs):
    with pytest.raises(AssertionError, match=name.replace("*", r"\*")):
        imbalance.check_reweight(WEIGHT_MISTAKES[name], refs["reweight"])


# -- focal loss ------------------------------------------------------------------------------------
def test_reference_focal_loss_is_weighted_cross_entropy_at_gamma_0(refs):
    cases = [c for c in imbalance.focal_cases(refs["focal"]) if c["gamma"] == 0]
    assert len(cases) >= 4
    for c in cases:
        w = None if c["weight"] is None else torch.as_tensor(c["weight"])
        ce = F.cross_entropy(torch.as_tensor(c["logits"]), torch.as_tensor(c["targets"]), weight=w)
        assert abs(float(ce) - c["loss"]) < 1e-5


@pytest.mark.parametrize("variant", [ViaCrossEntropy, ViaSoftmax, ViaOneHot64])
def test_correct_variants_pass(variant, ns, refs):
    imbalance.check_focal_loss(ns["FocalLoss"], refs["focal"])
    imbalance.check_focal_loss(variant, refs["focal"])


@pytest.mark.parametrize("mistake", FOCAL_MISTAKES, ids=lambda m: m.__name__)
def test_focal_mistakes_are_named(mistake, refs):
    with pytest.raises(AssertionError, match=FOCAL_MISTAKES[mistake].replace("*", r"\*").replace("(", r"\(").replace(")", r"\)")):
        imbalance.check_focal_loss(mistake, refs["focal"])


def test_a_loss_that_returns_a_vector_is_told_to_average(refs):
    class PerImage(Loss):
        def forward(self, x, y):
            return -self.log_p(x, y)

    with pytest.raises(AssertionError, match="one number"):
        imbalance.check_focal_loss(PerImage, refs["focal"])


# -- behaviour: the tolerance, measured ------------------------------------------------------------
@pytest.fixture(scope="module")
def behaviour_ref(ns):
    return CASES.behaviour(ns["reweight"], ns["FocalLoss"])


def test_equivalent_losses_train_alike_and_cross_entropy_does_not(ns, behaviour_ref):
    class Jittered(Loss):  # the solution's value times (1 + 1e-5): rounding far coarser than float32's
        def forward(self, x, y):
            return ns["FocalLoss"](self.weight, self.gamma)(x, y) * (1 + 1e-5)

    worst = {}
    for variant in (ViaCrossEntropy, ViaOneHot64, Jittered):
        table = imbalance.check_behaviour(variant, behaviour_ref)
        worst[variant.__name__] = table["difference"].max()
    assert max(worst.values()) <= imbalance.BEHAVIOUR_TOLERANCE / 2, worst  # a margin of 2x at least
    with pytest.raises(AssertionError, match="trains differently"):
        imbalance.check_behaviour(NoFactor, behaviour_ref)
    with pytest.raises(AssertionError, match="trains differently"):
        imbalance.check_behaviour(lambda weight, gamma: nn.CrossEntropyLoss(), behaviour_ref)


# -- checkpoints -----------------------------------------------------------------------------------
class Constant(nn.Module):
    """Predicts one class for every image."""

    def __init__(self, label=0):
        super().__init__()
        self.bias = nn.Parameter(F.one_hot(torch.tensor(label), 10).float())

    def forward(self, x):
        return self.bias.expand(len(x), 10)


def test_graded_checkpoints_rare_classes_and_long_tail_effect(synthetic_root, tmp_path, monkeypatch):
    from a2lib.checkpoint import save_checkpoint
    from a2lib.workflow import _TEST_SETS

    monkeypatch.setenv("A2_DATA", str(synthetic_root))
    monkeypatch.setenv("A2_FAST", "1")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    _TEST_SETS.clear()
    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert imbalance.rare_classes(counts) == [9, 8, 7]
    per_class = [0.9] * 7 + [0.1, 0.2, 0.3]
    ref = {"classes": [f"c{i}" for i in range(10)], "ce": {"fast": {"images": 200, "per_class": per_class}}}
    ref["classes"] = __import__("a2lib.data", fromlist=["CIFAR10_CLASSES"]).CIFAR10_CLASSES
    save_checkpoint(tmp_path / "truck.pt", Constant(9))
    save_checkpoint(tmp_path / "airplane.pt", Constant(0))
    table = imbalance.check_rare_classes(Constant(), tmp_path / "truck.pt", counts, ref)
    assert table.loc["truck", "yours"] == 1.0 and table.loc["airplane", "yours"] == 0.0
    with pytest.raises(AssertionError, match=r"rarest classes \(truck, ship, horse\).*0.000.*0.200"):
        imbalance.check_rare_classes(Constant(), tmp_path / "airplane.pt", counts, ref)
    imbalance.check_long_tail_effect(Constant(), tmp_path / "airplane.pt", counts)  # head 1/3 > tail 0
    with pytest.raises(AssertionError, match=r"0.000 on the 3 most frequent classes.*0.333 on the 3 rarest"):
        imbalance.check_long_tail_effect(Constant(), tmp_path / "truck.pt", counts)
    with pytest.raises(AssertionError, match="measured on 1000 test images"):
        imbalance.check_rare_classes(Constant(), tmp_path / "truck.pt", counts,
                                     {**ref, "ce": {"fast": {"images": 1000, "per_class": per_class}}})
    _TEST_SETS.clear()
