"""Notebook 4 (long-tailed CIFAR-10): the long-tailed sets, training, and the visible checkpoint check.

The notebook calls these:

* :func:`long_tailed_sets`, :func:`deferred`, :func:`fit_or_load`: the data, deferred re-weighting,
  and training ResNet-32 with a loss (or, while grading, loading the submitted checkpoint);
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
from . import models
from .models import checkpoint_evaluation, format_table, grading_test_set

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


# -- training and graded checkpoints -------------------------------------------------------------
def long_tailed_sets(ratio: float = 100, fast: bool | None = None, root=None):
    """(long-tailed CIFAR-10 training set, test set). Fast mode: 1/10 of the training images per class
    (500, 299, ... 5) and the fixed 1,000-image test subset the grader uses."""
    from ..data import load_cifar10, make_long_tailed

    fast = fast_mode() if fast is None else fast
    train = make_long_tailed(load_cifar10(root, "train"), ratio=ratio, seed=0)
    if fast:
        keep = []
        for label, n in enumerate(train.cls_num_list):
            idx = torch.nonzero(train.labels == label).flatten()
            keep.append(idx[: max(1, n // 10)])
        train = train.subset(torch.cat(keep).sort().values)
    return train, grading_test_set(root, fast)


def deferred(criterion: nn.Module, start_epoch: int, before: nn.Module | None = None):
    """Deferred re-weighting (Cao et al. 2019): ``before`` (default plain cross-entropy) until
    ``start_epoch``, then ``criterion``. Returns the ``epoch -> loss`` function that ``fit`` accepts."""
    before = before if before is not None else nn.CrossEntropyLoss()
    return lambda epoch: criterion if epoch >= start_epoch else before


def fit_or_load(model: nn.Module, checkpoint: str | Path, train_data, criterion, config, device=None,
                progress: bool = True, **overrides) -> pd.DataFrame | None:
    """Train ``model`` with ``criterion`` (a loss module or ``epoch -> loss``) and save ``checkpoint``;
    while grading, load the checkpoint instead. Returns the per-epoch history (None if unloadable).

    Notebook 4's argument order for :func:`a2lib.checks.models.fit_or_load` (a loss in place of
    validation data); ``config`` and ``overrides`` as there."""
    return models.fit_or_load(model, checkpoint, train_data, None, config, device, progress, criterion=criterion,
                              **overrides)


def rare_classes(cls_num_list: list[int], k: int = RARE_CLASSES) -> list[int]:
    """Labels of the ``k`` classes with the fewest training images (rarest first)."""
    return [int(i) for i in np.argsort(np.asarray(cls_num_list), kind="stable")[:k]]


def long_tail_effect_problem(per_class: pd.Series, cls_num_list: list[int], checkpoint: str | Path,
                             k: int = RARE_CLASSES) -> tuple[str | None, str]:
    """(failure message or None, the line a pass prints) for per-class test accuracy ``per_class`` [C].

    A model trained with cross-entropy on the long tail recognises its ``k`` most frequent classes
    better (mean accuracy) than its ``k`` rarest: the effect the notebook studies, and a sign it was trained.
    """
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
        print(f"Fast mode: {message} (checked on a fully trained checkpoint when graded)")
        return table
    raise AssertionError(message)
