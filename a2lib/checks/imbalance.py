"""Notebook 4 (long-tailed CIFAR-10): the loss's behaviour and the visible checkpoint check.

The notebook calls these:

* :func:`behaviour_run`: a short, fixed-seed training of a tiny network on a small synthetic
  long-tailed set with a given loss, returning its scores for images it is given, so that a loss
  can be judged by what it does to per-class accuracy (the grader sends the images and keeps their
  labels);
* :func:`check_long_tail_effect`: the submitted cross-entropy checkpoint shows the long tail;
* :func:`rare_classes`: the classes with the fewest training images.

Its message builder (:func:`long_tail_effect_problem`) is a pure function of numbers, shared with
the grader's hidden tests. Nothing here holds a reference value or computes an answer students write.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..mode import fast_mode, grading, seed_everything
from ..workflow import checkpoint_evaluation, grading_test_set
from .models import close, format_table

RARE_CLASSES = 3            # "the rarest classes" of the graded comparison


# -- behaviour: a short training with the loss ---------------------------------------------------
BEHAVIOUR = {"n_max": 120, "ratio": 20, "noise": 0.5, "epochs": 3, "batch_size": 32,
             "learning_rate": 0.05, "gamma": 1.0, "beta": 0.999, "seed": 0}


def noisy_synthetic_images(labels: np.ndarray, rng: np.random.Generator, noise: float) -> torch.Tensor:
    """uint8 images [N, 3, 32, 32] of the synthetic classes ``labels`` [N], with strong pixel noise.

    The noise makes the classes overlap, so per-class accuracy moves smoothly with the loss.
    """
    from ..data.synthetic import synthetic_images

    images = synthetic_images(labels, rng).astype(np.float64)
    images += rng.normal(0, 255 * noise, images.shape)
    return torch.from_numpy(np.clip(images, 0, 255).round().astype(np.uint8))


def behaviour_data(settings: dict = BEHAVIOUR):
    """The small long-tailed synthetic training set (an ImageSet; ``settings["n_max"]`` images in its first class)."""
    from ..data import CIFAR10_CLASSES, ImageSet, long_tail_counts

    rng = np.random.default_rng(settings["seed"])
    counts = long_tail_counts(settings["n_max"], 10, settings["ratio"])
    labels = np.repeat(np.arange(10), counts)
    images = noisy_synthetic_images(labels, rng, settings["noise"])
    return ImageSet(images, torch.from_numpy(labels.astype(np.int64)), list(CIFAR10_CLASSES))


def behaviour_model() -> nn.Module:
    """A tiny CNN (1.4 k parameters) that learns the synthetic classes in a few seconds on a CPU."""
    return nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(3), nn.Flatten(), nn.Linear(72, 10))


def behaviour_run(criterion: nn.Module, images, settings: dict = BEHAVIOUR) -> torch.Tensor:
    """Scores [N, 10] of ``images`` (uint8 [N, 3, 32, 32]) after a short fixed-seed training with ``criterion``.

    Always on the CPU, in float32, on one thread: the data, the initial weights and the batch order
    depend only on ``settings``, so two losses that compute the same function give the same scores
    up to floating-point rounding.
    """
    from ..data import normalize
    from ..train import fit

    train = behaviour_data(settings)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same summation order on every machine
    try:
        seed_everything(settings["seed"])
        model = behaviour_model()
        fit(model, train, criterion=criterion, device="cpu", progress=False, epochs=settings["epochs"],
            batch_size=settings["batch_size"], learning_rate=settings["learning_rate"], reg=5e-4, momentum=0.9,
            augment=False, seed=settings["seed"], warmup_epochs=0, steps=[],
            amp=False)  # float32 on every CPU: bfloat16 where the CPU has it would change the result
        model.eval()
        with torch.no_grad():
            return model(normalize(torch.as_tensor(np.asarray(images), dtype=torch.uint8)))
    finally:
        torch.set_num_threads(threads)


# -- graded checkpoints --------------------------------------------------------------------------
def rare_classes(cls_num_list: list[int], k: int = RARE_CLASSES) -> list[int]:
    """Labels of the ``k`` classes with the fewest training images (rarest first)."""
    return [int(i) for i in np.argsort(np.asarray(cls_num_list), kind="stable")[:k]]


def long_tail_effect_problem(per_class: pd.Series, cls_num_list: list[int], checkpoint: str | Path,
                             k: int = RARE_CLASSES) -> tuple[str | None, str]:
    """(failure message or None, the line a pass prints) for per-class test accuracy ``per_class`` [C].

    A model trained with cross-entropy on the long tail recognises its ``k`` most frequent classes
    better (mean accuracy) than its ``k`` rarest: the effect the notebook studies, and a sign it was trained.
    """
    one_class = one_class_problem(per_class, checkpoint)
    if one_class:
        return one_class, ""
    order = np.argsort(np.asarray(cls_num_list), kind="stable")
    head, tail = [per_class.index[i] for i in order[::-1][:k]], [per_class.index[i] for i in order[:k]]
    head_acc, tail_acc = float(per_class[head].mean()), float(per_class[tail].mean())
    passed = (f"{checkpoint}: {head_acc:.3f} on the {k} most frequent classes, {tail_acc:.3f} on the {k} rarest: "
              "trained on the long tail, passed.")
    if head_acc > tail_acc:
        return None, passed
    return (f"{checkpoint} reaches {head_acc:.3f} on the {k} most frequent classes ({', '.join(head)}) and "
            f"{tail_acc:.3f} on the {k} rarest ({', '.join(tail)}): a model trained with cross-entropy on the long "
            "tail recognises its frequent classes better. Train it with configs/resnet32_ce.yaml on the "
            "long-tailed set and plain cross-entropy, then submit the checkpoint it saves."), passed


def one_class_problem(per_class: pd.Series, checkpoint: str | Path) -> str | None:
    """A model that recognises at most one class (per-class accuracy [C] above 0 for at most one) has learnt
    nothing: no comparison of classes may pass it. None when it recognises several classes."""
    recognised = [str(c) for c, acc in per_class.items() if acc > 0]
    if len(recognised) > 1:
        return None
    which = f"only {recognised[0]}" if recognised else "no class at all"
    return (f"{checkpoint} recognises {which} on the test images: the model predicts one class for (nearly) every "
            "image, so it has learnt nothing yet to compare classes with. Check that its training cell ran with the "
            "full schedule (FAST = False in the settings cell) and that the training loss went down, then submit the "
            "checkpoint it saves.")


def long_tail_table(per_class_table: pd.DataFrame, cls_num_list: list[int]) -> pd.DataFrame:
    """The per-class table (with its 'overall' row) with the training images per class in front."""
    table = per_class_table.copy()
    table.insert(0, "training images", list(cls_num_list) + [sum(cls_num_list)])
    return table


def check_long_tail_effect(model: nn.Module, checkpoint: str | Path, cls_num_list: list[int], k: int = RARE_CLASSES) -> pd.DataFrame:
    """The checkpoint's ``k`` most frequent classes beat its ``k`` rarest (see :func:`long_tail_effect_problem`)."""
    evaluation = checkpoint_evaluation(model, checkpoint, grading_test_set())
    table = long_tail_table(evaluation.per_class_table(), cls_num_list)
    print(format_table(table, 3))
    message, passed = long_tail_effect_problem(evaluation.per_class, cls_num_list, checkpoint, k)
    if message is None:
        print(passed)
        return table
    if fast_mode() and not grading():
        print(f"Fast mode: {message}\nA one-epoch run on a tenth of the data shows that training, saving and this check "
              "work; it cannot show the long tail's effect, which needs the full schedule: it is checked on that "
              "checkpoint when your notebook is graded.")
        return table
    raise AssertionError(message)


# -- the test cells' checks, as pure functions of numbers (the grader calls them too) ----------------
def reweight_by_hand_problem(w, w0, w1) -> str | None:
    """The hand-checked cases: ``w = reweight([1, 2], 0.5)``, ``w0 = reweight([10, 100, 1000], 0.0)``,
    ``w1 = reweight([100, 10], 0.999999)`` (arrays [2], [3], [2])."""
    w, w0, w1 = (np.asarray(v, dtype=np.float64) for v in (w, w0, w1))
    if w.shape != (2,):
        return f"reweight([1, 2], 0.5) should return 2 weights, got shape {tuple(w.shape)}."
    if not abs(float(w.sum()) - 2) < 1e-5:
        return (f"The weights must sum to the number of classes (2): reweight([1, 2], 0.5) sums to {float(w.sum()):.4f}. "
                "Normalize them so that they sum to C, the number of classes, as the formula above the exercise says.")
    if not close(w, [1.2, 0.8], atol=1e-5):
        return f"reweight([1, 2], 0.5) should be [1.2, 0.8] (E_1 = 1, E_2 = 1.5, w = 1 / E_n, normalized), got {w.tolist()}."
    if not close(w0, np.ones(3), atol=1e-5):
        return f"With beta = 0 every effective number is 1, so every weight is 1; got {w0.tolist()}."
    if not close(w1, [2 / 11, 20 / 11], atol=1e-3):
        return (f"As beta -> 1 the weights tend to the inverse frequencies 1/n, normalized: [{2/11:.4f}, {20/11:.4f}] for "
                f"counts [100, 10]; got {[round(v, 4) for v in w1.ravel().tolist()]}.")
    return None


def focal_small_cases_problem(got: dict, ce: float, ce_weighted: float) -> str | None:
    """The small cases of the test cell, from the student's numbers ``got``:

    ``shifted``/``unshifted``: FocalLoss(gamma=2) of x + 3 and of x; ``plain``: FocalLoss()(x, y) and
    ``zero_dim`` (whether it is a 0-dimensional tensor); ``weighted``: FocalLoss(weight=w)(x, y); ``one``:
    the loss of one image with p = 0.8, gamma = 2; ``grad``: the gradient [6, 4] of FocalLoss(w, 2) w.r.t. x.
    ``ce``, ``ce_weighted``: F.cross_entropy(x, y) without and with the weights.
    """
    if not close(got["shifted"], np.asarray(got["unshifted"], dtype=np.float64), atol=1e-6):
        return ("Adding the same number to all the scores of an image must not change the loss (the softmax ignores "
                "it); yours changes: is it the sigmoid (one-vs-all) form? This notebook asks for the softmax form.")
    if not bool(np.all(got["zero_dim"])):
        return "FocalLoss must return one number: a 0-dimensional tensor."
    plain, weighted, one = (np.asarray(got[k], dtype=np.float64) for k in ("plain", "weighted", "one"))
    plain, weighted, one = (float(v.ravel()[0]) if v.size == 1 else float("nan") for v in (plain, weighted, one))
    if not close(plain, ce, atol=1e-6):
        return f"With gamma = 0 and no weights FocalLoss must equal the cross-entropy {ce:.6f}, got {plain:.6f}."
    if not close(weighted, ce_weighted, atol=1e-6):
        return (f"With gamma = 0 and class weights FocalLoss must equal F.cross_entropy(x, y, weight=w) = {ce_weighted:.6f}, "
                f"got {weighted:.6f}. The mean is weighted: sum_i w[y_i] * loss_i / sum_i w[y_i] (not divided by the "
                "batch size).")
    expected = 0.2 ** 2 * -np.log(0.8)
    if not abs(one - expected) < 1e-6:
        return (f"For one image with p = 0.8 and gamma = 2 the loss is (1 - 0.8)^2 * -log(0.8) = {expected:.6f}, got "
                f"{one:.6f}. The factor (1 - p)^gamma, with p the probability of the true class, multiplies -log(p).")
    grad = np.asarray(got["grad"], dtype=np.float64)
    if grad.shape != (6, 4) or not np.isfinite(grad).all() or not np.abs(grad).sum() > 0:
        return "FocalLoss gives no usable gradient: compute it with torch operations on the input."
    return None


def check_cbfocal_rare_classes(make_model, checkpoint: str | Path, cls_num_list: list[int],
                               cross_entropy: str | Path | None = None, k: int = RARE_CLASSES) -> None:
    """What a student can see of the graded CB-Focal comparison, recomputed from the checkpoints.

    ``make_model()`` builds the architecture (``resnet32``); ``checkpoint`` is the CB-Focal model, and
    ``cross_entropy`` the student's own cross-entropy checkpoint, shown beside it where it exists. The grader
    compares with the course's cross-entropy reference model, which students do not have; here a CB-Focal
    model that does not beat the student's own cross-entropy model on the ``k`` rarest classes fails (it would
    not beat the reference either). A missing or unfitting checkpoint fails naming it. Returns nothing (a
    value a test cell displays would be read by nbgrader as partial credit).
    """
    test = grading_test_set()
    evaluation = checkpoint_evaluation(make_model(), checkpoint, test)
    table = pd.DataFrame({"training images": list(cls_num_list), "CB-Focal": evaluation.per_class})
    ce = None
    if cross_entropy is not None and Path(cross_entropy).is_file():
        ce = checkpoint_evaluation(make_model(), cross_entropy, test).per_class
        table.insert(1, "cross-entropy (yours)", ce)
    rare = [table.index[i] for i in rare_classes(cls_num_list, k)]
    print(f"{checkpoint} on the {len(test):,} test images, the {k} rarest classes:")
    print(format_table(table.loc[rare], 3))
    problem = one_class_problem(evaluation.per_class, checkpoint)
    mine = float(evaluation.per_class[rare].mean())
    summary = f"On the {k} rarest classes ({', '.join(rare)}) {checkpoint} reaches {mine:.3f} on average"
    if problem is None and ce is not None and not mine > float(ce[rare].mean()):
        problem = (f"{summary}, not more than your cross-entropy model's {float(ce[rare].mean()):.3f}: the class-balanced "
                   "weights should lift the rare classes. Check that the CB-Focal run used your FocalLoss with the "
                   "weights of reweight (and the config's beta and gamma) and the same schedule as the cross-entropy run.")
    if problem is None:
        versus = f", your cross-entropy model {float(ce[rare].mean()):.3f}" if ce is not None else ""
        print(f"{summary}{versus}. When graded, it is compared with the course's cross-entropy reference model "
              "(trained with the full schedule) on the full test set.")
        return
    if fast_mode() and not grading():
        print(f"Fast mode: {problem}\nA one-epoch run on a tenth of the data shows that training, saving and this check "
              "work; it cannot show what the class-balanced loss does to the rare classes, which needs the full schedule.")
        return
    raise AssertionError(problem)
