"""Hidden tests of notebook 4 (long-tailed CIFAR-10): reweight, FocalLoss, its behaviour, the checkpoints.

``reweight`` and ``FocalLoss`` get random inputs from ``ctx.rng``; their results (values and
gradients, as numbers) are compared here with the reference formulas (:func:`reweight_reference`,
:func:`focal_reference`), and a mismatch is named by comparing with what each typical mistake
would give on the same numbers. The behaviour test trains a tiny network with the student's loss in
the kernel, then gets its scores for images generated here, whose labels the kernel never sees.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from a2lib.checks.imbalance import (BEHAVIOUR, RARE_CLASSES, behaviour_data, focal_small_cases_problem,
                                    long_tail_effect_problem, long_tail_table, noisy_synthetic_images, one_class_problem,
                                    rare_classes, reweight_by_hand_problem)
from a2lib.checks.models import close, format_table, test_set_words
from a2lib.data import CIFAR10_CLASSES, long_tail_counts
from a2lib.evaluate import confusion_from_predictions, per_class_from_confusion
from autograder.harness import Context, Fail, fail_on, grades

from autograder.notebooks.model_scoring import reference_per_class, scored_checkpoint, show_per_class, usable

NOTEBOOK = "04_data_wrangling"
WEIGHT_ATOL, WEIGHT_RTOL = 1e-6, 1e-4  # class weights: float32 arithmetic of a correct formula stays far below this
LOSS_ATOL, LOSS_RTOL = 1e-5, 1e-4
BETAS = (0.9, 0.99, 0.999, 0.9999)
GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)
LT_COUNTS = long_tail_counts(5000, 10, 100)  # the notebook's lt_counts: the full long-tailed training set


# -- reference formulas (the instructor's side only) -----------------------------------------------
def reweight_reference(counts, beta: float) -> np.ndarray:
    """Class-balanced weights [C]: (1 - beta) / (1 - beta ** n), normalized to sum to C (float64)."""
    n = np.asarray(counts, dtype=np.float64)
    return normalized((1 - beta) / (1 - beta ** n))


def focal_reference(logits, targets, weight, gamma: float) -> tuple[float, np.ndarray]:
    """(loss, gradient w.r.t. the logits [B, C]) of the softmax focal loss, in float64.

    loss = sum_i w[y_i] (1 - p_i) ** gamma (-log p_i) / sum_i w[y_i], p_i = softmax(x_i)[y_i].
    """
    x = torch.tensor(np.asarray(logits), dtype=torch.float64, requires_grad=True)
    y = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    log_p = F.log_softmax(x, 1).gather(1, y[:, None]).squeeze(1)
    w = torch.ones(len(y), dtype=torch.float64) if weight is None else torch.as_tensor(np.asarray(weight), dtype=torch.float64)[y]
    loss = (w * -(1 - log_p.exp()) ** gamma * log_p).sum() / w.sum()
    loss.backward()
    return float(loss.detach()), x.grad.numpy()


# -- message builders (pure functions of numbers) --------------------------------------------------
def normalized(w: np.ndarray) -> np.ndarray:
    return w / w.sum() * len(w)


def weight_mistakes(counts: np.ndarray, beta: float) -> dict[str, np.ndarray]:
    """Weights that typical mistakes produce, each with the message it deserves."""
    n = np.asarray(counts, dtype=np.float64)
    return {
        "beta ** n alone: the weight must be (1 - beta) / (1 - beta ** n), the inverse of the effective "
        "number of samples (1 - beta ** n) / (1 - beta), not a power of beta": normalized(beta ** n),
        "(1 - beta ** n) without inverting it: that is the effective number of samples itself (large for "
        "frequent classes); the weight is its inverse, (1 - beta) / (1 - beta ** n)": normalized(1 - beta ** n),
        "(1 - beta) / beta ** n: the denominator is 1 - beta ** n, not beta ** n": normalized((1 - beta) / beta ** n),
        "inverse class frequency 1 / n: beta does not enter your weights; use the effective number of "
        "samples (1 - beta ** n) / (1 - beta)": normalized(1 / n),
    }


GENERIC_WEIGHT_PROBLEMS = ("reweight returned NaN", "Your weights differ from the reference")


def diagnose_weights(got, expected, counts, beta: float) -> str | None:
    """None when ``got`` [C] matches ``expected`` [C], else a plain-words description of the problem."""
    got, expected = np.asarray(got, dtype=np.float64).ravel(), np.asarray(expected, dtype=np.float64).ravel()
    counts = np.asarray(counts)
    if got.shape != expected.shape:
        return (f"reweight returned {got.size} weights for {len(counts)} classes: return one weight per class, "
                "in the order of cls_num_list.")
    if not np.all(np.isfinite(got)):
        return f"reweight returned NaN or infinite weights {np.round(got, 4).tolist()} (a division by zero?)."
    if close(got, expected, WEIGHT_ATOL, WEIGHT_RTOL):
        return None
    case = f"(for cls_num_list={counts.tolist()}, beta={beta:g})"
    if got.sum() > 0 and close(normalized(got), expected, WEIGHT_ATOL, WEIGHT_RTOL):
        return (f"Your weights are not normalized {case}: they sum to {got.sum():.6g} but must sum to the number "
                f"of classes, {len(counts)} (see the normalization in the notebook's formula).")
    for message, wrong in weight_mistakes(counts, beta).items():
        if got.sum() > 0 and close(normalized(got), wrong, WEIGHT_ATOL, WEIGHT_RTOL):
            return f"Your weights look like {message} {case}."
    return (f"Your weights differ from the reference {case}: got {np.round(got, 5).tolist()}, expected "
            f"{np.round(expected, 5).tolist()}. Each class gets (1 - beta) / (1 - beta ** n), normalized so "
            "that the weights sum to the number of classes.")


def one_image_mistakes(p: float, gamma: float) -> dict[str, float]:
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


SIGMOID_MESSAGE = (
    "Your loss changes when the same number is added to all the scores of an image, so it is not the "
    "softmax form: it looks like the sigmoid (one-vs-all binary) focal loss of the paper. This notebook asks "
    "for the softmax form: p is softmax(x)[target], and the loss of an image is -w[target] * (1 - p) ** gamma "
    "* log(p).")


def scalar_or_nan(value) -> float:
    """One number from the kernel (a scalar arrives as shape [1]); NaN when it is not one number."""
    array = np.asarray(value, dtype=np.float64)
    return float(array.ravel()[0]) if array.size == 1 else float("nan")


def describe_case(case: dict) -> str:
    return (f"(batch of {len(case['targets'])}, gamma={case['gamma']:g}, "
            f"{'with class weights' if case['weight'] is not None else 'no class weights'})")


def diagnose_focal(case: dict, got: dict) -> str | None:
    """None when the student's numbers ``got`` match the reference for ``case``, else the likely cause.

    case: logits [B, C], targets [B], weight [C] or None, gamma, and the reference ``loss`` and ``grad``.
    got: the student's ``value`` (its loss), ``grad`` (w.r.t. the logits, [0] when there is none),
    ``shifted`` (the loss of logits + 3), ``no_gamma`` (gamma = 0), ``unweighted`` (weight None),
    ``is_tensor`` and ``has_grad``.
    """
    value = np.asarray(got["value"], dtype=np.float64)
    if value.size != 1:
        shape = tuple(value.shape) if bool(got["is_tensor"]) else "a non-tensor"
        return (f"FocalLoss must return one number (a 0-dimensional tensor) for a batch, got {shape}: "
                "average the per-image losses (weighted by the class weights).")
    if not bool(got["has_grad"]):
        return ("FocalLoss's result has no gradient: compute it with torch operations on the input tensor (no "
                ".item(), .numpy() or torch.no_grad()), so that training can back-propagate.")
    value, described = float(value.ravel()[0]), describe_case(case)
    shifted, no_gamma, unweighted = (scalar_or_nan(got[k]) for k in ("shifted", "no_gamma", "unweighted"))
    if close(value, case["loss"], LOSS_ATOL, LOSS_RTOL):
        if close(got["grad"], case["grad"], LOSS_ATOL, LOSS_RTOL * 10):
            return None
        difference = (np.abs(got["grad"] - case["grad"]).max() if np.shape(got["grad"]) == np.shape(case["grad"])
                      else float("nan"))
        return (f"The loss value is right but its gradient differs from the reference {described} (by up to "
                f"{difference:.3g}). Part of the loss is cut off from autograd: do not call .detach(), .item() or "
                ".numpy() on p or on the factor (1 - p) ** gamma.")
    if not np.isfinite(value):
        return (f"FocalLoss returned {value} {described}. Compute log p with torch.log_softmax (or "
                "F.cross_entropy): log(softmax(x)) overflows for large scores.")
    if not close(shifted, value, LOSS_ATOL, LOSS_RTOL):
        return SIGMOID_MESSAGE
    if case["gamma"] > 0 and close(no_gamma, value, LOSS_ATOL, LOSS_RTOL):
        return (f"Your loss does not change with gamma {described}: the modulating factor (1 - p) ** gamma is "
                "missing (with gamma > 0 the focal loss must be smaller than the cross-entropy).")
    if case["weight"] is not None:
        w_t = np.asarray(case["weight"], dtype=np.float64)[np.asarray(case["targets"])]
        if close(value, case["loss"] * w_t.sum() / len(w_t), LOSS_ATOL, LOSS_RTOL):
            return (f"Your batch mean ignores the class weights {described}: divide the sum of the weighted losses by "
                    "the sum of the weights of the targets, sum(w[y_i] * loss_i) / sum(w[y_i]), as "
                    "F.cross_entropy(weight=...) does; .mean() divides by the batch size instead.")
        # Ignoring the weights computes the very same numbers as weight=None: a tight tolerance, so that a
        # wrong loss whose weighted mean happens to land near its plain mean is not called unweighted.
        if close(value, unweighted, 1e-7, 1e-6):
            return f"Your loss ignores the class weights {described}: each image's loss is multiplied by w[target]."
    return None


def diagnose_single_images(values: dict[float, float], p: float = 0.6) -> str | None:
    """Name the mistake from the losses ``{gamma: loss}`` of one image whose target probability is ``p``."""
    for gamma, value in values.items():
        for message, wrong in one_image_mistakes(p, gamma).items():
            if close(value, wrong, LOSS_ATOL, LOSS_RTOL):
                return f"Your loss looks like this mistake: {message} (one image with p = {p:g}, gamma = {gamma:g})."
    return None


def focal_mismatch(case: dict, value: float) -> str:
    """The message when no typical mistake explains the difference."""
    return (f"FocalLoss gives {value:.6g} where the reference gives {case['loss']:.6g} (batch of "
            f"{len(case['targets'])}, gamma={case['gamma']:g}, "
            f"{'with' if case['weight'] is not None else 'without'} class weights). The loss of image i is "
            "-w[y_i] * (1 - p_i) ** gamma * log(p_i) with p_i = softmax(x_i)[y_i], averaged with the weights: "
            "sum_i(...) / sum_i w[y_i].")


def rare_classes_problem(yours: pd.Series, reference: pd.Series, cls_num_list, checkpoint: str, n_images: int,
                         k: int = RARE_CLASSES) -> tuple[str | None, str]:
    """(failure message or None, the line a pass prints): mean accuracy on the ``k`` rarest classes against
    the cross-entropy reference's, per-class accuracies ``yours`` and ``reference`` [C]."""
    one_class = one_class_problem(yours, checkpoint)
    if one_class:
        return one_class, ""
    rare = [yours.index[i] for i in rare_classes(cls_num_list, k)]
    mine, theirs = float(yours[rare].mean()), float(reference[rare].mean())
    passed = (f"On the {k} rarest classes ({', '.join(rare)}) your checkpoint reaches {mine:.3f} on average, "
              f"the cross-entropy reference {theirs:.3f}: passed.")
    if mine > theirs:
        return None, passed
    return (f"On the {k} rarest classes ({', '.join(rare)}) {checkpoint} reaches {mine:.3f} on average on "
            f"{test_set_words(n_images)}, not more than the cross-entropy reference's {theirs:.3f}. Train the "
            "class-balanced focal loss with the full schedule (and check beta and gamma in "
            "configs/resnet32_cbfocal.yaml)."), passed


# -- reweight --------------------------------------------------------------------------------------
@grades(NOTEBOOK, "test_reweight")
def reweight_by_hand(ctx: Context) -> str:
    """The test cell's hand-checked cases."""
    got = ctx.session.run("""
w = reweight([1, 2], 0.5)
w0 = reweight([10, 100, 1000], 0.0)
w1 = reweight([100, 10], 0.999999)
""", ["w", "w0", "w1"], what="reweight")
    fail_on(reweight_by_hand_problem(got["w"], got["w0"], got["w1"]))
    return "reweight: the hand-checked cases are right."


def reweight_cases(rng: np.random.Generator, n_cases: int = 24, max_classes: int = 12):
    """Random (class counts, beta): 2 to 12 classes of 1 to 5,000 images, every third a long tail."""
    for i in range(n_cases):
        n = rng.integers(1, 5001, size=int(rng.integers(2, max_classes + 1)))
        if i % 3 == 0:
            n = np.sort(n)[::-1]
        beta = BETAS[i % len(BETAS)] if i < 2 * len(BETAS) else float(rng.uniform(0.5, 0.9999))
        yield [int(v) for v in n], float(beta)


@grades(NOTEBOOK, "test_reweight_hidden")
def reweight_hidden(ctx: Context) -> str:
    cases = list(reweight_cases(ctx.rng("cases")))
    problems = []
    for counts, beta in cases:
        got = ctx.session.call("reweight", counts, beta, what=f"reweight({counts}, {beta:g})")
        problem = diagnose_weights(got, reweight_reference(counts, beta), counts, beta)
        if problem:
            problems.append(problem)
    if problems:  # the first case that names the mistake (a random case can end in NaN for several)
        specific = [p for p in problems if not p.startswith(GENERIC_WEIGHT_PROBLEMS)]
        raise Fail((specific or problems)[0])
    return f"reweight matches the reference on {len(cases)} random cases."


# -- focal loss ------------------------------------------------------------------------------------
FOCAL_SNIPPET = """
import torch
x = torch.tensor(logits, dtype=torch.float32, requires_grad=True)
y = torch.as_tensor(targets, dtype=torch.long)
w = None if weight is None else torch.as_tensor(weight, dtype=torch.float32)
loss = FocalLoss(weight=w, gamma=gamma)(x, y)
is_tensor = isinstance(loss, torch.Tensor)
has_grad = is_tensor and loss.requires_grad and loss.numel() == 1
value = loss.detach() if is_tensor else loss
if has_grad:
    loss.backward()
grad = x.grad if x.grad is not None else torch.zeros(0)
with torch.no_grad():
    shifted = FocalLoss(weight=w, gamma=gamma)(x.detach() + 3.0, y)
    no_gamma = FocalLoss(weight=w, gamma=0.0)(x.detach(), y)
    unweighted = FocalLoss(weight=None, gamma=gamma)(x.detach(), y)
"""
FOCAL_OUTPUTS = ["value", "grad", "shifted", "no_gamma", "unweighted", "is_tensor", "has_grad"]


def focal_cases(rng: np.random.Generator) -> list[dict]:
    """Random logits [B, C], targets [B], class weights [C] or None and gammas, with the reference loss and gradient.

    Logits stay within +-5 so that no target probability rounds to 1 in float32 (where the gradient
    of (1 - p) ** gamma with gamma < 1 is infinite for a correct float32 loss as well).
    """
    specs = [(b, c, g, w) for g in GAMMAS for (b, c, w) in ((16, 10, True), (7, 4, False), (1, 3, True), (33, 10, False))]
    specs += [(64, 10, float(rng.uniform(0.1, 4.0)), True) for _ in range(4)]
    cases = []
    for batch, classes, gamma, weighted in specs:
        logits = np.clip(rng.normal(size=(batch, classes)) * rng.uniform(0.5, 3.0), -5, 5).astype(np.float32)
        targets = rng.integers(0, classes, size=batch).astype(np.int64)
        weight = rng.uniform(0.1, 3.0, size=classes).astype(np.float32) if weighted else None
        loss, grad = focal_reference(logits, targets, weight, gamma)
        cases.append({"logits": logits, "targets": targets, "weight": weight, "gamma": float(gamma),
                      "loss": loss, "grad": grad})
    return cases


def single_image_losses(ctx: Context, gammas=(0.5, 2.0)) -> dict[float, float]:
    """The student's loss of one image whose target probability is 0.6, for each gamma."""
    values = {}
    for gamma in gammas:
        got = ctx.session.run("""
import torch
loss = FocalLoss(weight=None, gamma=gamma)(torch.log(torch.tensor([[0.6, 0.3, 0.1]])), torch.tensor([0]))
value = loss.detach() if isinstance(loss, torch.Tensor) else loss
""", ["value"], what="FocalLoss", gamma=gamma)
        values[gamma] = scalar_or_nan(got["value"])
    return values


@grades(NOTEBOOK, "test_focal_loss_hidden")
def focal_loss_hidden(ctx: Context) -> str:
    cases = focal_cases(ctx.rng("cases"))
    for case in cases:
        inputs = {k: case[k] for k in ("logits", "targets", "weight", "gamma")}
        got = ctx.session.run(FOCAL_SNIPPET, FOCAL_OUTPUTS, what="FocalLoss", **inputs)
        problem = diagnose_focal(case, got)
        value = scalar_or_nan(got["value"])
        if problem is None and close(value, case["loss"], LOSS_ATOL, LOSS_RTOL):
            continue
        raise Fail(problem or diagnose_single_images(single_image_losses(ctx)) or focal_mismatch(case, value))
    return f"FocalLoss matches the reference values and gradients on {len(cases)} random cases."


@grades(NOTEBOOK, "test_focal_loss")
def focal_loss_small_cases(ctx: Context) -> str:
    """The test cell's small cases; the cross-entropies they are compared with are computed here."""
    torch.manual_seed(0)
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 3, 1])
    w = torch.tensor([0.5, 1.0, 1.5, 2.0])
    got = ctx.session.run("""
import torch
x, y, w = torch.as_tensor(x), torch.as_tensor(y), torch.as_tensor(w)
shifted, unshifted = FocalLoss(gamma=2.0)(x + 3.0, y), FocalLoss(gamma=2.0)(x, y)
plain = FocalLoss()(x, y)
zero_dim = isinstance(plain, torch.Tensor) and plain.dim() == 0
weighted = FocalLoss(weight=w)(x, y)
one = FocalLoss(gamma=2.0)(torch.log(torch.tensor([[0.8, 0.1, 0.1]])), torch.tensor([0]))
x.requires_grad_(True)
FocalLoss(weight=w, gamma=2.0)(x, y).backward()
grad = x.grad if x.grad is not None else torch.zeros(0)
""", ["shifted", "unshifted", "plain", "zero_dim", "weighted", "one", "grad"], what="FocalLoss",
        x=x.numpy(), y=y.numpy(), w=w.numpy())
    fail_on(focal_small_cases_problem(got, float(F.cross_entropy(x, y)), float(F.cross_entropy(x, y, weight=w))))
    return "FocalLoss: the small cases are right."


# -- behaviour: a short training with the student's loss -------------------------------------------
BEHAVIOUR_TOLERANCE = 0.05  # max per-class difference; measured in tests/test_hidden_tests_models_imbalance.py
EVALUATION = {"n_per_class": 100, "seed": 7_041_999}  # images generated here; the kernel never sees their labels
BEHAVIOUR_SNIPPET = """
import torch
from a2lib.checks.imbalance import behaviour_run
criterion = FocalLoss(weight=torch.as_tensor(weights, dtype=torch.float32), gamma=gamma)
logits = behaviour_run(criterion, images, settings)
"""


def behaviour_evaluation_set() -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images [N, 3, 32, 32], labels [N]): balanced synthetic images, the training set's distribution."""
    labels = np.repeat(np.arange(10), EVALUATION["n_per_class"])
    rng = np.random.default_rng(EVALUATION["seed"])
    return noisy_synthetic_images(labels, rng, BEHAVIOUR["noise"]).numpy(), labels


def behaviour_per_class(session) -> pd.Series:
    """Per-class accuracy [10] of the tiny network trained in the kernel with its ``FocalLoss`` (class-balanced
    weights computed here, the settings' gamma), on the evaluation images; accuracy computed here."""
    counts = behaviour_data(BEHAVIOUR).cls_num_list
    images, labels = behaviour_evaluation_set()
    weights = reweight_reference(counts, BEHAVIOUR["beta"]).astype(np.float32)
    logits = session.run(BEHAVIOUR_SNIPPET, ["logits"], what="training with your FocalLoss", weights=weights,
                         gamma=BEHAVIOUR["gamma"], settings=dict(BEHAVIOUR), images=images)["logits"]
    if logits.shape != (len(labels), 10):
        raise Fail(f"Trained with your FocalLoss, the small network gives scores of shape {logits.shape} for "
                   f"{len(labels)} images instead of ({len(labels)}, 10).")
    if not np.isfinite(logits).all():
        raise Fail("Trained with your FocalLoss, the small network gives NaN or infinite scores: the loss diverges "
                   "(check log p: use torch.log_softmax) or breaks the training.")
    confusion = confusion_from_predictions(labels, logits.argmax(1), list(CIFAR10_CLASSES))
    return per_class_from_confusion(confusion)


@grades(NOTEBOOK, "test_focal_behaviour_hidden")
def focal_behaviour_hidden(ctx: Context) -> str:
    ref = ctx.reference("nb4_behaviour")
    yours = behaviour_per_class(ctx.session)
    table = pd.DataFrame({"training images": np.asarray(ref["counts"]).astype(int),
                          "reference loss": np.asarray(ref["per_class"], dtype=np.float64),
                          "your loss": yours.values}, index=pd.Index(yours.index, name="class"))
    table["difference"] = (table["your loss"] - table["reference loss"]).abs()
    ctx.print(format_table(table, 3))
    worst = table["difference"].idxmax()
    if table.loc[worst, "difference"] > BEHAVIOUR_TOLERANCE:
        raise Fail(f"Trained with your FocalLoss, the small network's per-class accuracy differs from training with "
                   f"the reference loss by {table.loc[worst, 'difference']:.3f} on class '{worst}' (allowed: "
                   f"{BEHAVIOUR_TOLERANCE}). Your loss trains differently: check the class weights in the batch mean "
                   "and the factor (1 - p) ** gamma.")
    return f"Training with your FocalLoss gives the reference per-class accuracy (within {BEHAVIOUR_TOLERANCE})."


# -- graded checkpoints ----------------------------------------------------------------------------
@grades(NOTEBOOK, "test_lt_ce_checkpoint")
def lt_ce_checkpoint(ctx: Context) -> str:
    """The cross-entropy checkpoint recognises its frequent classes better than its rare ones."""
    scored = scored_checkpoint(ctx, "resnet32()", "checkpoints/lt_ce.pt", "ResNet-32/cross-entropy")
    evaluation = usable(ctx, scored)
    show_per_class(ctx, scored, long_tail_table(evaluation.per_class_table(), LT_COUNTS), digits=3)
    problem, passed = long_tail_effect_problem(evaluation.per_class, LT_COUNTS, scored.checkpoint)
    if problem:
        raise Fail(problem)
    return passed


@grades(NOTEBOOK, "test_cbfocal_rare_classes")
def cbfocal_rare_classes(ctx: Context) -> str:
    """The CB-Focal checkpoint beats the cross-entropy reference on the rarest classes."""
    rarest = [CIFAR10_CLASSES[i] for i in rare_classes(LT_COUNTS)]
    ctx.print(f"The {len(rarest)} rarest classes: {', '.join(rarest)}")
    scored = scored_checkpoint(ctx, "resnet32()", "checkpoints/lt_cbfocal.pt", "ResNet-32/CB-Focal")
    evaluation = usable(ctx, scored)
    ce = reference_per_class("ResNet-32/cross-entropy", scored.n_images)
    if ce is None:
        raise RuntimeError(f"no cross-entropy reference for {scored.n_images} test images: run `a2kit reference`")
    table = pd.DataFrame({"training images": LT_COUNTS, "cross-entropy reference": ce, "yours": evaluation.per_class})
    show_per_class(ctx, scored, table, digits=3, label="CB-Focal reference")
    problem, passed = rare_classes_problem(evaluation.per_class, ce, LT_COUNTS, scored.checkpoint, scored.n_images)
    if problem:
        raise Fail(problem)
    return passed
