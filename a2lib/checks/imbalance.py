"""Checks for notebook 4 (long-tailed CIFAR-10): class-balanced weights, focal loss, graded checkpoints.

The notebook's test cells call these. Every value is compared with reference values generated from
the source notebook's solution (``python -m autograder.reference``), and every failure names the
likely cause in plain words:

* :func:`check_reweight`: class-balanced weights on random class counts and betas; recognises
  weights that are not normalized, inverse frequencies, and beta**n used alone;
* :func:`check_focal_loss`: loss values and gradients on random logits, targets, weights and
  gammas; recognises the sigmoid form, a missing (1 - p)**gamma factor, the factor on the wrong
  term, a batch mean that ignores the weights, and a factor cut off from the gradient;
* :func:`behaviour_run`: a short, fixed-seed training on a small synthetic long-tailed set, so that
  a loss can be judged by what it does to per-class accuracy (:func:`check_behaviour`);
* :func:`check_long_tail_effect`: the submitted cross-entropy checkpoint shows the long tail;
* :func:`check_rare_classes`: the submitted CB-Focal checkpoint against the cross-entropy reference
  on the rarest classes of the test set.

Nothing here computes the answers students write: the diagnoses compare their outputs with the
reference values and with the outputs the typical mistakes would give.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..mode import fast_mode, grading, seed_everything
from ..workflow import checkpoint_evaluation, grading_test_set

RARE_CLASSES = 3            # "the rarest classes" of the graded comparison
WEIGHT_ATOL, WEIGHT_RTOL = 1e-6, 1e-4  # class weights: float32 arithmetic of a correct formula stays far below this
LOSS_ATOL, LOSS_RTOL = 1e-5, 1e-4


def _lookup(name: str):
    from .. import reference

    return reference.load(name)


def _close(a, b, atol: float, rtol: float) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and bool(np.allclose(a, b, atol=atol, rtol=rtol))


def _as_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


# -- class-balanced weights ----------------------------------------------------------------------
def _normalized(w: np.ndarray) -> np.ndarray:
    return w / w.sum() * len(w)


def _weight_mistakes(counts: np.ndarray, beta: float) -> dict[str, np.ndarray]:
    """Weights that typical mistakes produce, each with the message it deserves."""
    n = counts.astype(np.float64)
    return {
        "beta ** n alone: the weight must be (1 - beta) / (1 - beta ** n), the inverse of the effective "
        "number of samples (1 - beta ** n) / (1 - beta), not a power of beta": _normalized(beta ** n),
        "(1 - beta ** n) without inverting it: that is the effective number of samples itself (large for "
        "frequent classes); the weight is its inverse, (1 - beta) / (1 - beta ** n)": _normalized(1 - beta ** n),
        "(1 - beta) / beta ** n: the denominator is 1 - beta ** n, not beta ** n": _normalized((1 - beta) / beta ** n),
        "inverse class frequency 1 / n: beta does not enter your weights; use the effective number of "
        "samples (1 - beta ** n) / (1 - beta)": _normalized(1 / n),
    }


def diagnose_weights(got, expected, counts, beta: float) -> str | None:
    """None when ``got`` matches ``expected``, else a plain-words description of the problem."""
    got, expected = _as_numpy(got).ravel(), _as_numpy(expected).ravel()
    counts = np.asarray(counts)
    if got.shape != expected.shape:
        return (f"reweight returned {got.size} weights for {len(counts)} classes: return one weight per class, "
                "in the order of cls_num_list.")
    if not np.all(np.isfinite(got)):
        return f"reweight returned NaN or infinite weights {np.round(got, 4).tolist()} (a division by zero?)."
    if _close(got, expected, WEIGHT_ATOL, WEIGHT_RTOL):
        return None
    case = f"(for cls_num_list={counts.tolist()}, beta={beta:g})"
    if got.sum() > 0 and _close(_normalized(got), expected, WEIGHT_ATOL, WEIGHT_RTOL):
        return (f"Your weights are not normalized {case}: they sum to {got.sum():.6g} but must sum to the number "
                f"of classes, {len(counts)}. Divide them by their sum and multiply by the number of classes.")
    for message, wrong in _weight_mistakes(counts, beta).items():
        for candidate in (wrong, wrong / len(wrong)):
            if got.sum() > 0 and _close(_normalized(got), candidate * len(wrong) / candidate.sum(), WEIGHT_ATOL, WEIGHT_RTOL):
                return f"Your weights look like {message} {case}."
    return (f"Your weights differ from the reference {case}: got {np.round(got, 5).tolist()}, expected "
            f"{np.round(expected, 5).tolist()}. Each class gets (1 - beta) / (1 - beta ** n), normalized so "
            "that the weights sum to the number of classes.")


def reweight_cases(ref: dict):
    """Yield (counts list, beta, expected weights) from the padded reference arrays."""
    for counts, beta, weights in zip(ref["counts"], ref["betas"], ref["weights"]):
        keep = counts >= 0
        yield counts[keep].astype(int).tolist(), float(beta), weights[keep]


def check_reweight(reweight: Callable, ref: dict | None = None) -> None:
    """Compare ``reweight(cls_num_list, beta)`` with the reference on every case; raise AssertionError."""
    ref = _lookup("nb4_reweight") if ref is None else ref
    cases = list(reweight_cases(ref))
    for counts, beta, expected in cases:
        got = reweight(list(counts), beta)
        problem = diagnose_weights(got, expected, counts, beta)
        if problem:
            raise AssertionError(problem)
    print(f"reweight matches the reference on {len(cases)} random cases.")


# -- focal loss ----------------------------------------------------------------------------------
def _call_loss(loss_class, logits, targets, weight, gamma: float, grad: bool = False):
    """(loss value as float, gradient w.r.t. the logits or None) of ``loss_class(weight, gamma)``."""
    x = torch.as_tensor(np.asarray(logits), dtype=torch.float32).clone().requires_grad_(grad)
    y = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    w = None if weight is None else torch.as_tensor(np.asarray(weight), dtype=torch.float32)
    loss = loss_class(weight=w, gamma=gamma)(x, y)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise AssertionError(f"FocalLoss must return one number (a 0-dimensional tensor) for a batch, got {shape}: "
                             "average the per-image losses (weighted by the class weights).")
    value = float(loss.detach())
    if not grad:
        return value, None
    if not loss.requires_grad:
        raise AssertionError("FocalLoss's result has no gradient: compute it with torch operations on the input "
                             "tensor (no .item(), .numpy() or torch.no_grad()), so that training can back-propagate.")
    loss.backward()
    return value, x.grad.detach().double().numpy()


def _one_image_mistakes(p: float, gamma: float) -> dict[str, float]:
    """The loss of a single image whose target probability is ``p``, under typical mistakes.

    For one image a weighted mean is the plain loss of that image, so the class weight drops out.
    """
    ce = -np.log(p)
    return {
        "the modulating factor is p ** gamma instead of (1 - p) ** gamma (it must shrink the loss of "
        "well-classified images, whose p is close to 1)": p ** gamma * ce,
        "the factor (1 - p) ** gamma is inside the logarithm (-log((1 - p) ** gamma * p)); it must "
        "multiply the cross-entropy term: -(1 - p) ** gamma * log(p)": -gamma * np.log1p(-p) + ce,
        "gamma is applied to the cross-entropy term ((-log p) ** gamma) instead of to (1 - p)": ce ** gamma,
        "the factor is (1 - p) without the exponent gamma": (1 - p) * ce,
        "the factor is (1 - log p) ** gamma: use the probability p = softmax(x)[target], not its logarithm":
            (1 - np.log(p)) ** gamma * ce,
    }


def _sigmoid_mistake_message() -> str:
    return ("Your loss changes when the same number is added to all the scores of an image, so it is not the "
            "softmax form: it looks like the sigmoid (one-vs-all binary) focal loss of the paper. This notebook asks "
            "for the softmax form: p is softmax(x)[target], and the loss of an image is -w[target] * (1 - p) ** gamma "
            "* log(p).")


def diagnose_focal_loss(loss_class, case: dict) -> str | None:
    """None when ``loss_class`` reproduces one reference case (value and gradient), else the likely cause."""
    logits, targets, weight, gamma = case["logits"], case["targets"], case["weight"], float(case["gamma"])
    value, grad = _call_loss(loss_class, logits, targets, weight, gamma, grad=True)
    described = (f"(batch of {len(targets)}, gamma={gamma:g}, "
                 f"{'with class weights' if weight is not None else 'no class weights'})")
    if _close(value, case["loss"], LOSS_ATOL, LOSS_RTOL):
        if _close(grad, case["grad"], LOSS_ATOL, LOSS_RTOL * 10):
            return None
        return (f"The loss value is right but its gradient differs from the reference {described} (by up to "
                f"{np.abs(grad - case['grad']).max():.3g}). Part of the loss is cut off from autograd: do not "
                "call .detach(), .item() or .numpy() on p or on the factor (1 - p) ** gamma.")
    if not np.isfinite(value):
        return (f"FocalLoss returned {value} {described}. Compute log p with torch.log_softmax (or "
                "F.cross_entropy): log(softmax(x)) overflows for large scores.")
    shifted, _ = _call_loss(loss_class, np.asarray(logits) + 3.0, targets, weight, gamma)
    if not _close(shifted, value, LOSS_ATOL, LOSS_RTOL):
        return _sigmoid_mistake_message()
    if gamma > 0:
        no_gamma, _ = _call_loss(loss_class, logits, targets, weight, 0.0)
        if _close(no_gamma, value, LOSS_ATOL, LOSS_RTOL):
            return (f"Your loss does not change with gamma {described}: the modulating factor (1 - p) ** gamma is "
                    "missing (with gamma > 0 the focal loss must be smaller than the cross-entropy).")
    if weight is not None:
        w_t = np.asarray(weight, dtype=np.float64)[np.asarray(targets)]
        if _close(value, case["loss"] * w_t.sum() / len(w_t), LOSS_ATOL, LOSS_RTOL):
            return (f"Your batch mean ignores the class weights {described}: divide the sum of the weighted losses by "
                    "the sum of the weights of the targets, sum(w[y_i] * loss_i) / sum(w[y_i]), as "
                    "F.cross_entropy(weight=...) does; .mean() divides by the batch size instead.")
        unweighted, _ = _call_loss(loss_class, logits, targets, None, gamma)
        if _close(value, unweighted, LOSS_ATOL, LOSS_RTOL):
            return f"Your loss ignores the class weights {described}: each image's loss is multiplied by w[target]."
    return None


def diagnose_single_images(loss_class, gammas=(0.5, 2.0)) -> str | None:
    """Probe the loss on one image with a known target probability, where each mistake has its own value."""
    logits = np.array([[np.log(0.6), np.log(0.3), np.log(0.1)]], dtype=np.float32)  # p(target 0) = 0.6
    for gamma in gammas:
        value, _ = _call_loss(loss_class, logits, [0], None, gamma)
        for message, wrong in _one_image_mistakes(0.6, gamma).items():
            if _close(value, wrong, LOSS_ATOL, LOSS_RTOL):
                return f"Your loss looks like this mistake: {message} (one image with p = 0.6, gamma = {gamma:g})."
    return None


def focal_cases(ref: dict) -> list[dict]:
    """The reference focal-loss cases as dicts (logits, targets, weight or None, gamma, loss, grad)."""
    cases = []
    for i in range(int(ref["n_cases"])):
        has_weight = bool(ref[f"case{i}_has_weight"])
        cases.append({"logits": ref[f"case{i}_logits"], "targets": ref[f"case{i}_targets"],
                      "weight": ref[f"case{i}_weight"] if has_weight else None, "gamma": float(ref[f"case{i}_gamma"]),
                      "loss": float(ref[f"case{i}_loss"]), "grad": ref[f"case{i}_grad"]})
    return cases


def check_focal_loss(loss_class, ref: dict | None = None) -> None:
    """Compare ``loss_class(weight, gamma)(logits, targets)`` and its gradient with every reference case."""
    ref = _lookup("nb4_focal") if ref is None else ref
    cases = focal_cases(ref)
    for case in cases:
        value, _ = _call_loss(loss_class, case["logits"], case["targets"], case["weight"], case["gamma"])
        problem = diagnose_focal_loss(loss_class, case)
        if problem is None and _close(value, case["loss"], LOSS_ATOL, LOSS_RTOL):
            continue
        problem = problem or diagnose_single_images(loss_class) or (
            f"FocalLoss gives {value:.6g} where the reference gives {case['loss']:.6g} (batch of "
            f"{len(case['targets'])}, gamma={case['gamma']:g}, "
            f"{'with' if case['weight'] is not None else 'without'} class weights). The loss of image i is "
            "-w[y_i] * (1 - p_i) ** gamma * log(p_i) with p_i = softmax(x_i)[y_i], averaged with the weights: "
            "sum_i(...) / sum_i w[y_i].")
        raise AssertionError(problem)
    print(f"FocalLoss matches the reference values and gradients on {len(cases)} random cases.")


# -- behaviour: a short training with the loss ---------------------------------------------------
BEHAVIOUR = {"n_max": 120, "ratio": 20, "n_test_per_class": 100, "noise": 0.5, "epochs": 3, "batch_size": 32,
             "learning_rate": 0.05, "gamma": 1.0, "beta": 0.999, "seed": 0}


def behaviour_data(settings: dict = BEHAVIOUR):
    """A small long-tailed synthetic training set and a balanced synthetic test set (ImageSets)."""
    from ..data import CIFAR10_CLASSES, ImageSet, long_tail_counts
    from ..data.synthetic import synthetic_images

    rng = np.random.default_rng(settings["seed"])
    counts = long_tail_counts(settings["n_max"], 10, settings["ratio"])
    train_labels = np.repeat(np.arange(10), counts)
    test_labels = np.repeat(np.arange(10), settings["n_test_per_class"])

    def image_set(labels):
        # Strong pixel noise makes the classes overlap, so per-class accuracy moves smoothly with the loss.
        images = synthetic_images(labels, rng).astype(np.float64)
        images += rng.normal(0, 255 * settings["noise"], images.shape)
        images = torch.from_numpy(np.clip(images, 0, 255).round().astype(np.uint8))
        return ImageSet(images, torch.from_numpy(labels.astype(np.int64)), list(CIFAR10_CLASSES))

    return image_set(train_labels), image_set(test_labels)


def behaviour_model() -> nn.Module:
    """A tiny CNN (1.4 k parameters) that learns the synthetic classes in a few seconds on a CPU."""
    return nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(3), nn.Flatten(), nn.Linear(72, 10))


def behaviour_run(criterion: nn.Module, settings: dict = BEHAVIOUR) -> pd.Series:
    """Per-class test accuracy after a short fixed-seed training with ``criterion`` (always on the CPU).

    The data, the model's initial weights and the batch order depend only on ``settings``, so two
    losses that compute the same function give the same accuracies up to floating-point rounding.
    """
    from ..evaluate import evaluate
    from ..train import fit

    train, test = behaviour_data(settings)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same summation order on every machine
    try:
        seed_everything(settings["seed"])
        model = behaviour_model()
        fit(model, train, criterion=criterion, device="cpu", progress=False, epochs=settings["epochs"],
            batch_size=settings["batch_size"], learning_rate=settings["learning_rate"], reg=5e-4, momentum=0.9,
            augment=False, seed=settings["seed"], warmup_epochs=0, steps=[],
            amp=False)  # float32 on every CPU: bfloat16 where the CPU has it would change the result
        return evaluate(model, test, device="cpu").per_class
    finally:
        torch.set_num_threads(threads)


BEHAVIOUR_TOLERANCE = 0.05  # max per-class difference; see tests/test_imbalance.py for how it was measured


def check_behaviour(loss_class, ref: dict | None = None, tolerance: float = BEHAVIOUR_TOLERANCE) -> pd.DataFrame:
    """Train the tiny CNN with ``loss_class`` (reference weights and gamma) and compare per-class accuracy."""
    ref = _lookup("nb4_behaviour") if ref is None else ref
    settings = dict(BEHAVIOUR)
    weight = torch.as_tensor(np.asarray(ref["weights"]), dtype=torch.float32)
    yours = behaviour_run(loss_class(weight=weight, gamma=settings["gamma"]), settings)
    table = pd.DataFrame({"training images": np.asarray(ref["counts"]).astype(int),
                          "reference loss": np.asarray(ref["per_class"], dtype=np.float64),
                          "your loss": yours.values}, index=yours.index)
    table["difference"] = (table["your loss"] - table["reference loss"]).abs()
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    worst = table["difference"].idxmax()
    if table.loc[worst, "difference"] > tolerance:
        raise AssertionError(
            f"Trained with your FocalLoss, the small network's per-class accuracy differs from training with the "
            f"reference loss by {table.loc[worst, 'difference']:.3f} on class '{worst}' (allowed: {tolerance}). "
            "Your loss trains differently: check the class weights in the batch mean and the factor (1 - p) ** gamma.")
    print(f"Training with your FocalLoss gives the reference per-class accuracy (within {tolerance}).")
    return table


# -- graded checkpoints --------------------------------------------------------------------------
def rare_classes(cls_num_list: list[int], k: int = RARE_CLASSES) -> list[int]:
    """Labels of the ``k`` classes with the fewest training images (rarest first)."""
    return [int(i) for i in np.argsort(np.asarray(cls_num_list), kind="stable")[:k]]


def check_long_tail_effect(model: nn.Module, checkpoint: str | Path, cls_num_list: list[int], k: int = RARE_CLASSES) -> pd.DataFrame:
    """A cross-entropy model trained on the long tail recognises its ``k`` most frequent classes better
    than its ``k`` rarest (mean accuracy): the effect the notebook studies, and a sign it was trained."""
    test = grading_test_set()
    evaluation = checkpoint_evaluation(model, checkpoint, test)
    table = evaluation.per_class_table()
    table.insert(0, "training images", list(cls_num_list) + [sum(cls_num_list)])
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    order = np.argsort(np.asarray(cls_num_list), kind="stable")
    head, tail = [table.index[i] for i in order[::-1][:k]], [table.index[i] for i in order[:k]]
    head_acc, tail_acc = table.loc[head, "accuracy"].mean(), table.loc[tail, "accuracy"].mean()
    if head_acc > tail_acc:
        print(f"{checkpoint}: {head_acc:.3f} on the {k} most frequent classes, {tail_acc:.3f} on the {k} rarest: "
              "trained on the long tail, passed.")
        return table
    message = (f"{checkpoint} reaches {head_acc:.3f} on the {k} most frequent classes ({', '.join(head)}) and "
               f"{tail_acc:.3f} on the {k} rarest ({', '.join(tail)}): a model trained with cross-entropy on the long "
               "tail recognises its frequent classes better. Train it with configs/resnet32_ce.yaml on the "
               "long-tailed set and plain cross-entropy, then submit the checkpoint it saves.")
    if fast_mode() and not grading():
        print(f"Fast mode: {message} (checked on a fully trained checkpoint when graded)")
        return table
    raise AssertionError(message)


def reference_ce_per_class(test_size: int, ref: dict | None = None) -> pd.Series:
    """Per-class test accuracy of the cross-entropy reference checkpoint on the same test images."""
    ref = _lookup("nb4_lt_reference") if ref is None else ref
    key = "full" if test_size >= 10000 else "fast"
    entry = ref["ce"][key]
    if entry["images"] != test_size:
        raise AssertionError(f"The reference was measured on {entry['images']} test images, this test set has {test_size}.")
    return pd.Series(entry["per_class"], index=ref["classes"], name="cross-entropy reference")


def check_rare_classes(model: nn.Module, checkpoint: str | Path, cls_num_list: list[int], ref: dict | None = None,
                       k: int = RARE_CLASSES) -> pd.DataFrame:
    """The checkpoint's mean accuracy on the ``k`` rarest classes must beat the cross-entropy reference's."""
    test = grading_test_set()
    evaluation = checkpoint_evaluation(model, checkpoint, test)
    reference = reference_ce_per_class(len(test), ref)
    table = pd.DataFrame({"training images": cls_num_list, "cross-entropy reference": reference,
                          "yours": evaluation.per_class})
    rare = [table.index[i] for i in rare_classes(cls_num_list, k)]
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    yours, theirs = table.loc[rare, "yours"].mean(), table.loc[rare, "cross-entropy reference"].mean()
    where = f"{len(test):,} test images" + (" (fast mode: a fixed subset)" if len(test) < 10000 else "")
    if yours > theirs:
        print(f"On the {k} rarest classes ({', '.join(rare)}) your checkpoint reaches {yours:.3f} on average, "
              f"the cross-entropy reference {theirs:.3f}: passed.")
        return table
    message = (f"On the {k} rarest classes ({', '.join(rare)}) {checkpoint} reaches {yours:.3f} on average on {where}, "
               f"not more than the cross-entropy reference's {theirs:.3f}. Train the class-balanced focal loss "
               "with the full schedule (and check beta and gamma in configs/resnet32_cbfocal.yaml).")
    if fast_mode() and not grading():
        print(f"Fast mode: {message} (checked on a fully trained checkpoint when graded)")
        return table
    raise AssertionError(message)
