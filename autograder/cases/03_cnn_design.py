"""Reference values for notebook 3 (CNN design), built from the source notebook's solution.

* ``cnn_design.npz``: outputs of the solution's ``TwoLayerNet(48, 16, 10)`` and ``VanillaCNN()`` on
  fixed random inputs, with every parameter set by :func:`a2lib.checks.models.fill_parameters`
  (values that depend only on the parameter's shape), so the hidden tests can rebuild the same
  weights in a student's model whatever its attributes are called.
* ``cnn_design_accuracy.json``: per-class test accuracy of the reference checkpoints in
  ``autograder/reference/checkpoints/`` (measured by ``bench/reference_results.py`` and stored in
  each checkpoint's metrics), shown beside a student's table; absent until those checkpoints exist.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

CHECKPOINTS = Path(__file__).resolve().parent.parent / "reference" / "checkpoints"
REFERENCE_MODELS = {"TwoLayerNet": "twolayer.pt", "VanillaCNN": "vanilla_cnn.pt", "MyModel": "mymodel.pt"}
SEED = 0


def _outputs(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    from a2lib.checks.models import fill_parameters

    fill_parameters(model, SEED).eval()
    with torch.no_grad():
        return model(x).numpy()


def reference_accuracies(folder: Path = CHECKPOINTS) -> dict:
    """``{model class: {classes, per_class, test_acc, schedule}}`` from the reference checkpoints' metrics."""
    from a2lib.checkpoint import load_checkpoint

    out = {}
    for name, filename in REFERENCE_MODELS.items():
        path = folder / filename
        if not path.is_file():
            continue
        metrics = load_checkpoint(path).get("metrics", {})
        per_class = metrics.get("per_class")
        if per_class:
            out[name] = {"classes": list(per_class), "per_class": [float(v) for v in per_class.values()],
                         "test_acc": float(metrics["test_acc"]), "schedule": metrics.get("schedule")}
    return out


def build(ns: dict) -> dict:
    generator = torch.Generator().manual_seed(SEED)
    two_layer_x = torch.randn(6, 3, 4, 4, generator=generator)
    vanilla_x = torch.randn(3, 3, 32, 32, generator=generator)
    values = {"cnn_design": {
        "two_layer_x": two_layer_x.numpy(),
        "two_layer_out": _outputs(ns["TwoLayerNet"](48, 16, 10), two_layer_x),
        "vanilla_x": vanilla_x.numpy(),
        "vanilla_out": _outputs(ns["VanillaCNN"](), vanilla_x),
    }}
    accuracies = reference_accuracies()
    if accuracies:
        values["cnn_design_accuracy"] = accuracies
    return values
