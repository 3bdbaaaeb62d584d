"""Reference values of notebook 4 (long-tailed CIFAR-10), computed with the source notebook's solution.

``build(ns)`` returns four references (``python -m autograder.reference 04_data_wrangling``):

* ``nb4_reweight`` (.npz): random class counts (2 to 12 classes, 1 to 5,000 images, padded with -1)
  and betas, with the weights of the solution's ``reweight`` (padded with NaN);
* ``nb4_focal`` (.npz): random logits, targets, class weights (or none) and gammas, with the
  solution's ``FocalLoss`` value and its gradient with respect to the logits;
* ``nb4_behaviour`` (.json): per-class accuracy of the tiny network of
  :func:`a2lib.checks.imbalance.behaviour_run` trained with the solution's class-balanced focal loss;
* ``nb4_lt_reference`` (.json): per-class test accuracy of the reference checkpoints
  ``autograder/reference/checkpoints/lt_ce.pt`` and ``lt_cbfocal.pt`` (written by
  ``bench/reference_longtail.py``) on the full test set and on the fast-mode 1,000-image subset.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from a2lib.checks import imbalance

CHECKPOINTS = Path(__file__).resolve().parent.parent / "reference" / "checkpoints"
BETAS = (0.9, 0.99, 0.999, 0.9999)
GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)


def reweight_cases(reweight, rng: np.random.Generator, n_cases: int = 24, max_classes: int = 12) -> dict:
    counts = np.full((n_cases, max_classes), -1, dtype=np.int64)
    weights = np.full((n_cases, max_classes), np.nan)
    betas = np.empty(n_cases)
    for i in range(n_cases):
        c = int(rng.integers(2, max_classes + 1))
        n = rng.integers(1, 5001, size=c)
        if i % 3 == 0:  # a long tail, as in the notebook
            n = np.sort(n)[::-1]
        betas[i] = BETAS[i % len(BETAS)] if i < 2 * len(BETAS) else float(rng.uniform(0.5, 0.9999))
        counts[i, :c] = n
        weights[i, :c] = np.asarray(reweight(n.tolist(), betas[i]), dtype=np.float64)
    return {"counts": counts, "betas": betas, "weights": weights}


def focal_cases(FocalLoss, rng: np.random.Generator) -> dict:
    out: dict[str, np.ndarray] = {}
    specs = [(b, c, g, w) for g in GAMMAS for (b, c, w) in ((16, 10, True), (7, 4, False), (1, 3, True), (33, 10, False))]
    specs += [(64, 10, float(rng.uniform(0.1, 4.0)), True) for _ in range(4)]
    for i, (batch, classes, gamma, weighted) in enumerate(specs):
        logits = (rng.normal(size=(batch, classes)) * rng.uniform(0.5, 4.0)).astype(np.float32)
        targets = rng.integers(0, classes, size=batch).astype(np.int64)
        weight = rng.uniform(0.1, 3.0, size=classes).astype(np.float32)
        x = torch.from_numpy(logits).clone().requires_grad_(True)
        loss = FocalLoss(weight=torch.from_numpy(weight) if weighted else None, gamma=gamma)(x, torch.from_numpy(targets))
        loss.backward()
        out.update({f"case{i}_logits": logits, f"case{i}_targets": targets, f"case{i}_weight": weight,
                    f"case{i}_has_weight": np.array(weighted), f"case{i}_gamma": np.array(gamma),
                    f"case{i}_loss": np.array(float(loss.detach())), f"case{i}_grad": x.grad.numpy().astype(np.float64)})
    out["n_cases"] = np.array(len(specs))
    return out


def behaviour(reweight, FocalLoss) -> dict:
    settings = imbalance.BEHAVIOUR
    train, _ = imbalance.behaviour_data(settings)
    weights = np.asarray(reweight(train.cls_num_list, settings["beta"]), dtype=np.float64)
    criterion = FocalLoss(weight=torch.as_tensor(weights, dtype=torch.float32), gamma=settings["gamma"])
    per_class = imbalance.behaviour_run(criterion, settings)
    return {"settings": dict(settings), "counts": train.cls_num_list, "weights": weights.tolist(),
            "classes": list(per_class.index), "per_class": per_class.tolist()}


def lt_reference() -> dict:
    """Per-class test accuracy of the reference checkpoints, on the full test set and the fast subset."""
    from a2lib.checkpoint import load_checkpoint
    from a2lib.workflow import grading_test_set
    from a2lib.evaluate import evaluate
    from a2lib.models import resnet32

    result: dict = {}
    for name in ("ce", "cbfocal"):
        path = CHECKPOINTS / f"lt_{name}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: train the reference runs with `python bench/reference_longtail.py`.")
        model = resnet32()
        payload = load_checkpoint(path, model)
        entry = {"config": payload.get("config", {}), "metrics": {k: v for k, v in payload.get("metrics", {}).items()
                                                                  if k != "history"}}
        for key, fast in (("full", False), ("fast", True)):
            test = grading_test_set(fast=fast)
            evaluation = evaluate(model, test, device="cpu")
            entry[key] = {"images": len(test), "accuracy": evaluation.accuracy, "per_class": evaluation.per_class.tolist()}
            result["classes"] = list(evaluation.per_class.index)
        result[name] = entry
    return result


def build(ns: dict) -> dict:
    rng = np.random.default_rng(2019)  # Cui et al.'s year: any fixed seed does
    return {
        "nb4_reweight": reweight_cases(ns["reweight"], rng),
        "nb4_focal": focal_cases(ns["FocalLoss"], rng),
        "nb4_behaviour": behaviour(ns["reweight"], ns["FocalLoss"]),
        "nb4_lt_reference": lt_reference(),
    }
