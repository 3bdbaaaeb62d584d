"""What the notebooks do between the student's code and the checks: data, training runs, evaluations.

* :func:`train_and_save`: train a model with the kit's engine from a config and save its checkpoint
  (the one training helper of every notebook: keyword arguments for what differs between them);
* :func:`grading_test_set`: the CIFAR-10 test set, or in fast mode the fixed 1,000-image subset;
* :func:`checkpoint_evaluation`: a checkpoint evaluated on that test set (cached per file);
* :func:`long_tailed_sets`: notebook 4's long-tailed training set and the test set;
* :func:`deferred`: deferred re-weighting, a loss that switches on at an epoch.

Nothing here checks or grades: :mod:`a2lib.checks` holds the checks.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import TrainConfig, load_config
from .data import ImageSet, default_root, load_cifar10, train_val_split
from .evaluate import Evaluation, evaluate
from .mode import fast_mode

FAST_TEST_IMAGES = 1000


# -- training --------------------------------------------------------------------------------------
def train_and_save(model: nn.Module, checkpoint: str | Path, train_data: ImageSet, config: str | TrainConfig | dict,
                   *, val_data: ImageSet | None = None, criterion=None, device=None, progress: bool = True,
                   **overrides) -> pd.DataFrame:
    """Train ``model`` on ``train_data`` with :func:`a2lib.train.fit` and save it to ``checkpoint``.

    Args:
        config: a config name (``"mymodel"`` reads ``configs/mymodel.yaml``), a path, a dict or a
            :class:`TrainConfig`; ``overrides`` replace its fields (``epochs=2``: the learning-rate
            steps, the warm-up and ``loss.deferred_epoch`` scale with it).
        val_data: validation images, evaluated after every epoch (never the test set).
        criterion: a loss module or ``epoch -> loss module``; default cross-entropy.
    Returns the per-epoch history (DataFrame: epoch, lr, train_loss, train_acc, val_loss, val_acc,
    seconds), also stored in the checkpoint so that graders see the curves.
    """
    from .train import fit

    cfg = load_config(config, **overrides)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"Training {type(model).__name__} ({n_params:,} parameters) on {len(train_data):,} images: {cfg}")
    checkpoint = Path(checkpoint)
    rows: list[dict] = []

    def save(row: dict) -> None:  # the checkpoint after every epoch: a stopped run keeps its last epoch
        rows.append(row)
        df = pd.DataFrame(rows)
        save_checkpoint(checkpoint, model, cfg, train_data.classes,
                        {"history": df.to_dict("list"), "val_acc": row["val_acc"], "epochs": int(row["epoch"]),
                         "cls_num_list": train_data.cls_num_list})

    resume = checkpoint.with_name(checkpoint.stem + ".resume.pt")  # removed when the run ends
    history = fit(model, train_data, val_data, criterion=criterion, config=cfg, device=device, progress=progress,
                  on_epoch_end=save, resume=resume)
    if len(rows) < len(history.rows):  # resumed: the checkpoint's history starts at the first epoch
        rows[:] = history.rows
        save(rows.pop())
    return history.df


def deferred(criterion: nn.Module, start_epoch: int, before: nn.Module | None = None):
    """Deferred re-weighting (Cao et al. 2019): ``before`` (default plain cross-entropy) until
    ``start_epoch``, then ``criterion``. Returns the ``epoch -> loss`` function that ``fit`` accepts."""
    before = before if before is not None else nn.CrossEntropyLoss()
    return lambda epoch: criterion if epoch >= start_epoch else before


# -- data ------------------------------------------------------------------------------------------
_TEST_SETS: dict[tuple, ImageSet] = {}


def grading_test_set(root=None, fast: bool | None = None) -> ImageSet:
    """The CIFAR-10 test set, or in fast mode a fixed subset of 100 images per class (the grader's)."""
    fast = fast_mode() if fast is None else fast
    key = (str(default_root(root).resolve()), fast)
    if key not in _TEST_SETS:
        test = load_cifar10(root, "test")  # the notebooks' data cells download CIFAR-10 where it is missing
        if fast and len(test) > FAST_TEST_IMAGES:
            test = train_val_split(test, FAST_TEST_IMAGES, seed=0)[1]
        _TEST_SETS[key] = test
    return _TEST_SETS[key]


def long_tailed_sets(ratio: float = 100, fast: bool | None = None, root=None) -> tuple[ImageSet, ImageSet]:
    """(long-tailed CIFAR-10 training set, test set). Fast mode: 1/10 of the training images per class
    (500, 299, ... 5) and the fixed 1,000-image test subset the grader uses."""
    from .data import make_long_tailed

    fast = fast_mode() if fast is None else fast
    train = make_long_tailed(load_cifar10(root, "train", download=True), ratio=ratio, seed=0)
    if fast:
        keep = []
        for label, n in enumerate(train.cls_num_list):
            idx = torch.nonzero(train.labels == label).flatten()
            keep.append(idx[: max(1, n // 10)])
        train = train.subset(torch.cat(keep).sort().values)
    return train, grading_test_set(root, fast)


# -- evaluation ------------------------------------------------------------------------------------
_EVALUATIONS: dict[tuple, Evaluation] = {}


def checkpoint_evaluation(model: nn.Module, checkpoint: str | Path, test: ImageSet | None = None) -> Evaluation:
    """Load ``checkpoint`` into ``model`` and evaluate it on ``test`` (default :func:`grading_test_set`).

    Raises ``AssertionError`` with the checkpoint's problem in plain words, so a check that calls
    it fails with that message. Results are cached per checkpoint file and model class.
    """
    test = grading_test_set() if test is None else test
    path = Path(checkpoint)
    stat = path.stat() if path.is_file() else None
    key = (str(path.resolve()), stat and (stat.st_mtime_ns, stat.st_size), type(model).__name__, len(test))
    if key not in _EVALUATIONS:
        try:
            load_checkpoint(path, model)
        except CheckpointError as err:
            raise AssertionError(f"{type(model).__name__}: {err}") from None
        _EVALUATIONS[key] = evaluate(model, test)
    return _EVALUATIONS[key]
