"""Reference values of notebook 4 (long-tailed CIFAR-10), computed with the source notebook's solution.

``build(ns)`` returns two references (``a2kit reference 04_data_wrangling``); the
hidden tests compute ``reweight``'s and ``FocalLoss``'s expected values themselves, from the formulas:

* ``nb4_behaviour`` (.json): per-class accuracy of the tiny network of
  :func:`a2lib.checks.imbalance.behaviour_run` trained with the solution's ``FocalLoss`` and the
  class-balanced weights, on the hidden test's evaluation images, measured by the hidden test's own
  code (:func:`hidden_tests.behaviour_per_class` beside this file) on the solution;
* ``nb4_lt_reference`` (.json): the reference checkpoints ``reference/checkpoints/lt_ce.pt``
  and ``lt_cbfocal.pt`` (written by ``bench/longtail_accuracy.py``) scored as students' are, on the
  full test set and on the fast-mode 1,000-image subset (accuracy, per-class, mirror images).
"""
from __future__ import annotations

from pathlib import Path

from a2lib.checkpoint import load_checkpoint
from a2lib.checks.imbalance import BEHAVIOUR, behaviour_data
from a2lib.data import CIFAR10_CLASSES
from autograder.harness import LocalSession
from autograder.notebooks.model_scoring import reference_scores

from . import hidden_tests

CHECKPOINTS = Path(__file__).resolve().parent / "reference" / "checkpoints"


def behaviour(ns: dict) -> dict:
    counts = behaviour_data(BEHAVIOUR).cls_num_list
    per_class = hidden_tests.behaviour_per_class(LocalSession(ns))
    weights = hidden_tests.reweight_reference(counts, BEHAVIOUR["beta"])
    return {"settings": dict(BEHAVIOUR), "evaluation": dict(hidden_tests.EVALUATION), "counts": counts,
            "weights": weights.tolist(), "classes": list(per_class.index), "per_class": per_class.tolist()}


def lt_reference(ns: dict) -> dict:
    """The reference checkpoints scored on the full test set and the fast subset."""
    result: dict = {"classes": list(CIFAR10_CLASSES)}
    for name in ("ce", "cbfocal"):
        path = CHECKPOINTS / f"lt_{name}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: train the reference runs with `python bench/longtail_accuracy.py`.")
        payload = load_checkpoint(path)
        result[name] = {"config": payload.get("config", {}),
                        "metrics": {k: v for k, v in payload.get("metrics", {}).items() if k != "history"},
                        **reference_scores(LocalSession(ns), "resnet32()", str(path), f"ResNet-32 {name}")}
    return result


def build(ns: dict) -> dict:
    return {"nb4_behaviour": behaviour(ns), "nb4_lt_reference": lt_reference(ns)}
