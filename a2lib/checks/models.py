"""Checks for notebook 3 (CNN design): architecture checks, graded test accuracy.

The notebook's test cells call these so that every grade is recomputed from the submitted
checkpoint on the test set (never a number the student typed), and every failure says in plain
words what is wrong:

* :func:`check_outputs` fills a model's parameters with fixed values (matched by shape, so the
  attribute names students choose do not matter) and compares its outputs with the reference
  values generated from the source notebook's solution;
* :func:`check_accuracy` recomputes test accuracy from a checkpoint, prints the per-class table
  and fails below a threshold. In fast mode the test set is a fixed, stratified 1,000-image subset.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..evaluate import Evaluation
from ..mode import fast_mode, grading
from ..workflow import checkpoint_evaluation, grading_test_set

ACTIVATIONS = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Softmax, nn.LogSoftmax)


def reference_per_class(name: str) -> pd.Series | None:
    """Per-class test accuracy of the reference solution's ``name`` checkpoint, when available."""
    from .. import reference

    try:
        values = reference.load("cnn_design_accuracy")
    except (OSError, PermissionError):  # not generated yet, or not visible where this runs
        return None
    entry = values.get(name)
    if not entry:
        return None
    return pd.Series(entry["per_class"], index=entry["classes"], name="reference")


def per_class_report(evaluation: Evaluation, name: str) -> pd.DataFrame:
    """The per-class table (images, correct, accuracy) with the reference solution's accuracy beside it."""
    table = evaluation.per_class_table()
    reference = reference_per_class(name)
    if reference is not None:
        table["reference"] = reference.reindex(table.index)
    return table


def check_accuracy(model: nn.Module, checkpoint: str | Path, minimum: float, name: str | None = None,
                   show_table: bool = True) -> None:
    """Recompute the test accuracy of ``checkpoint`` and require at least ``minimum``.

    Returns nothing on purpose: a value displayed by a test cell would be read by nbgrader as
    partial credit. Use :func:`checkpoint_evaluation` to get the accuracy.

    In fast mode outside grading (a quick run on a subset) a low accuracy is reported, not failed:
    thresholds are meant for a fully trained checkpoint, and they are checked when graded.
    """
    name = name or type(model).__name__
    test = grading_test_set()
    evaluation = checkpoint_evaluation(model, checkpoint, test)
    accuracy = evaluation.accuracy
    where = f"the {len(test):,} test images" + (" (fast mode: a fixed subset)" if len(test) < 10000 else "")
    if show_table:
        print(f"{name} from {checkpoint} on {where}:")
        print(per_class_report(evaluation, name).to_string(float_format=lambda v: f"{v:.4f}"))
    if accuracy >= minimum:
        print(f"{name}: test accuracy {accuracy:.4f} >= {minimum:.2f}, passed.")
        return
    message = (f"{name} reaches a test accuracy of {accuracy:.4f} on {where}, below the required {minimum:.2f}. "
               "Train longer or improve the model and hyper-parameters, then re-run its training cell so "
               f"that {checkpoint} is saved again.")
    if fast_mode() and not grading():
        print(f"Fast mode: {message} (Thresholds apply to a fully trained checkpoint; they are checked when graded.)")
        return
    raise AssertionError(message)


# -- architecture checks -------------------------------------------------------------------------
def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def parameter_shapes(model: nn.Module) -> list[tuple[int, ...]]:
    return sorted(tuple(p.shape) for p in model.parameters())


def fill_parameters(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter fixed values that depend only on its shape and ``seed``.

    Values are uniform in ±1/sqrt(fan_in), like PyTorch's default initialization, so outputs keep
    a sensible scale. Two models with the same parameter shapes get the same values, whatever
    their attributes are called. Returns ``model``.
    """
    with torch.no_grad():
        for p in model.parameters():
            shape = tuple(p.shape)
            generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(repr(shape).encode()))
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
            bound = 1.0 / np.sqrt(max(fan_in, 1))
            p.copy_((torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound)
    return model


def describe_activations(model: nn.Module) -> list[str]:
    return sorted({type(m).__name__ for m in model.modules() if isinstance(m, ACTIVATIONS)})


def check_outputs(model: nn.Module, x, expected, expected_shapes, name: str, spec: str, seed: int = 0,
                  atol: float = 1e-4) -> None:
    """Compare ``model``'s outputs on ``x`` with the reference's, both with :func:`fill_parameters` weights.

    Args:
        x: input batch (numpy or tensor) the reference was computed on.
        expected: the reference outputs [B, num_classes].
        expected_shapes: the parameter shapes the specified architecture has.
        spec: the architecture in words, for the messages.
    Raises ``AssertionError`` with a plain-words diagnosis.
    """
    shapes = parameter_shapes(model)
    want = sorted(tuple(int(d) for d in s) for s in expected_shapes)
    if shapes != want:
        raise AssertionError(f"{name} should be {spec}, with parameters of shapes {want}; yours has {shapes}. "
                             "Check the layer sizes, kernel size, padding and stride.")
    fill_parameters(model, seed).eval()
    with torch.no_grad():
        out = model(torch.as_tensor(np.asarray(x), dtype=torch.float32))
    expected = torch.as_tensor(np.asarray(expected), dtype=torch.float32)
    if tuple(out.shape) != tuple(expected.shape):
        raise AssertionError(f"{name} returns shape {tuple(out.shape)} for a batch of {len(expected)}; "
                             f"it should return class scores of shape {tuple(expected.shape)}.")
    error = (out - expected).abs().max().item()
    if error > atol:
        found = describe_activations(model)
        hint = f" Your model contains {', '.join(found)}." if found else ""
        if any(a in found for a in ("Softmax", "LogSoftmax")):
            hint += " Return raw scores (logits): the loss applies the softmax itself."
        raise AssertionError(f"{name}'s outputs differ from the reference by up to {error:.3g}: it should be {spec}."
                             f"{hint}")
    print(f"{name}: outputs match the reference (max difference {error:.1e}).")
