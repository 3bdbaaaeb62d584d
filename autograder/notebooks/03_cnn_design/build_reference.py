"""Reference values for notebook 3 (CNN design), built from the source notebook's solution.

* ``cnn_design.npz``: outputs of the solution's ``TwoLayerNet(48, 16, 10)`` and ``VanillaCNN()`` on
  fixed random inputs, with every parameter set by :func:`a2lib.checks.models.fill_parameters`
  (values that depend only on the parameter's shape), so the hidden tests can rebuild the same
  weights in a student's model whatever its attributes are called.
* ``cnn_design_accuracy.json``: the reference checkpoints in ``reference/checkpoints/`` beside this file
  scored exactly as students' checkpoints are (:mod:`autograder.notebooks.model_scoring`), on the
  full test set and on the fast-mode 1,000-image subset: accuracy, per-class accuracy (shown beside
  a student's) and accuracy on the mirror images (the honest drop the lookup rule is measured
  against); plus the training schedule stored in each checkpoint. Absent until those checkpoints exist.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from a2lib.checkpoint import load_checkpoint
from a2lib.checks.models import fill_parameters
from a2lib.data import CIFAR10_CLASSES
from autograder.harness import LocalSession
from autograder.notebooks.model_scoring import reference_scores

CHECKPOINTS = Path(__file__).resolve().parent / "reference" / "checkpoints"
REFERENCE_MODELS = {"TwoLayerNet": ("twolayer.pt", "TwoLayerNet(3 * 32 * 32, 256, 10)"),
                    "VanillaCNN": ("vanilla_cnn.pt", "VanillaCNN()"), "MyModel": ("mymodel.pt", "MyModel()")}
SEED = 0


def _outputs(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    fill_parameters(model, SEED).eval()
    with torch.no_grad():
        return model(x).numpy()


def reference_accuracies(ns: dict, folder: Path = CHECKPOINTS) -> dict:
    """``{"classes": [...], model class: {"full": {...}, "fast": {...}, "schedule", "test_acc"}}``."""
    out: dict = {}
    for name, (filename, build) in REFERENCE_MODELS.items():
        path = folder / filename
        if not path.is_file():
            continue
        metrics = load_checkpoint(path).get("metrics", {})
        out[name] = {**reference_scores(LocalSession(ns), build, str(path), name),
                     "schedule": metrics.get("schedule"), "test_acc": metrics.get("test_acc")}
    return {"classes": list(CIFAR10_CLASSES), **out} if out else {}


def reference_outputs(ns: dict) -> dict:
    """Fixed inputs and the solution's outputs with parameters filled by shape (``cnn_design.npz``)."""
    generator = torch.Generator().manual_seed(SEED)
    two_layer_x = torch.randn(6, 3, 4, 4, generator=generator)
    vanilla_x = torch.randn(3, 3, 32, 32, generator=generator)
    return {"two_layer_x": two_layer_x.numpy(), "two_layer_out": _outputs(ns["TwoLayerNet"](48, 16, 10), two_layer_x),
            "vanilla_x": vanilla_x.numpy(), "vanilla_out": _outputs(ns["VanillaCNN"](), vanilla_x)}


def build(ns: dict) -> dict:
    values = {"cnn_design": reference_outputs(ns)}
    accuracies = reference_accuracies(ns)
    if accuracies:
        values["cnn_design_accuracy"] = accuracies
    return values
