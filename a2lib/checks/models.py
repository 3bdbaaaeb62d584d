"""Checks for notebook 3 (CNN design): architecture checks, graded test accuracy.

The notebook's test cells call these while students work; when graded, the same numbers are
recomputed by the grader from the submitted checkpoint (never a number the student typed), and
every failure says in plain words what is wrong:

* :func:`fill_parameters` gives a model's parameters fixed values (matched by shape, so the
  attribute names students choose do not matter), so that its outputs can be compared with the
  reference solution's by the grader;
* :func:`check_accuracy` recomputes test accuracy from a checkpoint, prints the per-class table
  and fails below a threshold. In fast mode the test set is a fixed, stratified 1,000-image subset.

The message builders (:func:`accuracy_problem`, :func:`accuracy_passed`, :func:`per_class_report`)
are pure functions of numbers: the visible checks here and the grader's hidden tests word every
failure the same way.
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

def test_set_words(n_images: int) -> str:
    """How the graded test set is named in messages: 'the 1,000 test images (fast mode: a fixed subset)'."""
    return f"the {n_images:,} test images" + (" (fast mode: a fixed subset)" if n_images < 10000 else "")


def format_table(table: pd.DataFrame, digits: int = 4) -> str:
    """A per-class table as the text the test cells print."""
    return table.to_string(float_format=lambda v: f"{v:.{digits}f}")


def per_class_report(evaluation: Evaluation, reference: pd.Series | None = None) -> pd.DataFrame:
    """The per-class table (images, correct, accuracy), with a ``reference`` accuracy column when given."""
    table = evaluation.per_class_table()
    if reference is not None:
        table["reference"] = reference.reindex(table.index)
    return table


def accuracy_passed(name: str, accuracy: float, minimum: float) -> str:
    """The line a passed accuracy threshold prints."""
    return f"{name}: test accuracy {accuracy:.4f} >= {minimum:.2f}, passed."


def accuracy_problem(name: str, accuracy: float, minimum: float, n_images: int, checkpoint: str | Path) -> str | None:
    """None when ``accuracy`` reaches ``minimum``, else what to do, in plain words."""
    if accuracy >= minimum:
        return None
    return (f"{name} reaches a test accuracy of {accuracy:.4f} on {test_set_words(n_images)}, below the required "
            f"{minimum:.2f}. Train longer or improve the model and hyper-parameters, then re-run its training cell "
            f"so that {checkpoint} is saved again.")


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
    if show_table:
        print(f"{name} from {checkpoint} on {test_set_words(len(test))}:")
        print(format_table(per_class_report(evaluation)))
    message = accuracy_problem(name, evaluation.accuracy, minimum, len(test), checkpoint)
    if message is None:
        print(accuracy_passed(name, evaluation.accuracy, minimum))
        return
    if fast_mode() and not grading():
        print(fast_mode_accuracy_note(name, evaluation.accuracy, minimum, len(test)))
        return
    raise AssertionError(message)


def fast_mode_accuracy_note(name: str, accuracy: float, minimum: float, n_images: int) -> str:
    """What a fast-mode run below a threshold shows, and what it cannot show (printed, never failed)."""
    return (f"Fast mode: {name} reaches {accuracy:.4f} on {test_set_words(n_images)} after a short run on a subset of "
            f"the training images. Fast mode shows that the model trains, that its checkpoint is saved and loads, "
            f"and that this check runs; it cannot show whether {name} reaches {minimum:.2f}, which needs the full "
            "training. Set FAST = False in the settings cell and train for real: the threshold is checked on that "
            "checkpoint when your notebook is graded.")


# -- architectures --------------------------------------------------------------------------------
def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


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



# -- the test cells' checks, as pure functions of numbers (the grader calls them too) ----------------
def close(value, target, atol: float, rtol: float = 1e-5) -> bool:
    """Same shape, finite and within ``atol + rtol * |target|`` (torch.allclose's rule) everywhere."""
    value, target = np.asarray(value, dtype=np.float64), np.asarray(target, dtype=np.float64)
    return (value.shape == target.shape and bool(np.all(np.isfinite(value)))
            and bool(np.allclose(value, target, rtol=rtol, atol=atol)))


def two_layer_net_problem(out_shape, n_params: int, hand) -> str | None:
    """TwoLayerNet(3072, 100, 10)'s output shape for 5 images and parameter count, and the scores [1, 2] of
    TwoLayerNet(4, 3, 2) with zero weights and biases except output weights of 1 (hand-checked: 1.5 each)."""
    if tuple(int(d) for d in out_shape) != (5, 10):
        return f"For 5 images TwoLayerNet should return scores of shape (5, 10), got {tuple(int(d) for d in out_shape)}."
    expected = 3072 * 100 + 100 + 100 * 10 + 10
    if int(n_params) != expected:
        return (f"TwoLayerNet(3072, 100, 10) should have {expected:,} parameters (two linear layers with biases), "
                f"yours has {int(n_params):,}.")
    if not close(hand, np.full((1, 2), 1.5), atol=1e-8):
        return (f"With zero first-layer weights each hidden unit should be sigmoid(0) = 0.5 and each score 3 * 0.5 = "
                f"1.5, got {np.asarray(hand, dtype=np.float64).tolist()}. Is the hidden activation a sigmoid (not a "
                "ReLU, which gives 0), and no softmax at the end?")
    return None


def shape_mismatch_words(name: str, error: str) -> str | None:
    """Torch's ``mat1 and mat2 shapes cannot be multiplied (4x6272 and 5408x10)`` in the course's words, or None.

    The first matrix is the flattened batch [B, features]; the second the linear layer's weight, transposed.
    """
    import re

    match = re.search(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)", error)
    if not match:
        return None
    got, built = int(match.group(2)), int(match.group(3))
    return (f"{name}: a linear layer receives {got:,} numbers per image, but it was built for {built:,} inputs. "
            "Work out the size of what you flatten: after a convolution each side is "
            "(size + 2 * padding - kernel) // stride + 1, a 2x2 max-pool with stride 2 halves it, and flattening "
            "multiplies channels * height * width. Build the linear layer with that number of inputs.")


def scores_of(model: nn.Module, x: torch.Tensor, name: str | None = None) -> torch.Tensor:
    """``model(x)``; a linear layer of the wrong input size fails with :func:`shape_mismatch_words`."""
    try:
        return model(x)
    except RuntimeError as error:
        words = shape_mismatch_words(name or type(model).__name__, str(error))
        if words is None:
            raise
        raise AssertionError(words) from None


VANILLA_CONV = {"in_channels": 3, "out_channels": 32, "kernel_size": (7, 7), "stride": (1, 1), "padding": (0, 0)}


def vanilla_cnn_problem(out_shape, conv_settings: list[dict], n_params: int) -> str | None:
    """VanillaCNN's output shape for 4 images, its convolutions' settings (one dict per Conv2d, keys of
    :data:`VANILLA_CONV`) and its parameter count."""
    if tuple(int(d) for d in out_shape) != (4, 10):
        return f"For 4 images VanillaCNN should return scores of shape (4, 10), got {tuple(int(d) for d in out_shape)}."
    if len(conv_settings) != 1:
        return f"VanillaCNN has exactly one convolution layer, yours has {len(conv_settings)}."
    for what, want in VANILLA_CONV.items():
        got = conv_settings[0][what]
        if got != want:
            return f"The convolution should have {what}={want}, yours has {what}={got}."
    expected = 32 * 3 * 7 * 7 + 32 + 32 * 13 * 13 * 10 + 10
    if int(n_params) != expected:
        return (f"VanillaCNN should have {expected:,} parameters (conv 3->32 7x7 with bias, linear 5408->10 with bias), "
                f"yours has {int(n_params):,}.")
    return None


MY_MODEL_BUDGET = 5_000_000


def my_model_problem(n_params: int, outputs: dict) -> str | None:
    """MyModel's parameter budget, and its scores for 4 images in each mode (``{"train": [4, 10], "eval": ...}``)."""
    if int(n_params) > MY_MODEL_BUDGET:
        return f"MyModel has {int(n_params):,} parameters, more than the 5,000,000 allowed: make it smaller."
    for mode, out in outputs.items():
        out = np.asarray(out, dtype=np.float64)
        if out.shape != (4, 10):
            return f"In {mode}() mode MyModel should return scores of shape (4, 10), got {out.shape}."
        if not np.isfinite(out).all():
            return f"MyModel returns NaN or infinite scores in {mode}() mode."
    return None



# -- the training loop students write once (notebook 3; a visible check, not graded) ---------------------
def training_loop_problem(losses: list[float], trained_accuracy: float, constant_accuracy: float,
                          expected_constant: float, mode_after_training: bool, mode_after_evaluate: bool) -> str | None:
    """The check of the hand-written ``train_one_epoch`` and ``evaluate``, from numbers:

    ``losses``: the mean loss each of a few epochs of a small linear model returned (the first near ln 10 = 2.30 for
    10 classes at the start); ``trained_accuracy``: ``evaluate`` of that model after them; ``constant_accuracy``:
    ``evaluate`` of a model that always answers one class, whose accuracy is that class's share of the images
    (``expected_constant``); ``mode_after_*``: ``model.training`` after each call.
    """
    losses = [float(v) for v in losses]
    if not all(np.isfinite(losses)):
        return f"train_one_epoch returned {losses}: return the mean loss of the epoch, a number."
    if not mode_after_training:
        return "After train_one_epoch the model should be in training mode: call model.train() before the batches."
    if mode_after_evaluate:
        return "After evaluate the model should be in evaluation mode: call model.eval() before the batches."
    if not abs(float(constant_accuracy) - expected_constant) < 1e-6:
        return (f"evaluate of a model that always answers the same class gave {float(constant_accuracy):.4f}, but that "
                f"class makes up {expected_constant:.4f} of the images. Count the images whose highest score "
                "(argmax over dimension 1) equals the label, and divide by the number of images.")
    if not losses[-1] < losses[0] - 0.05:
        return (f"The mean loss per epoch went {', '.join(f'{v:.3f}' for v in losses)}: it should go down. In each "
                "batch: compute the loss, optimizer.zero_grad(), loss.backward(), optimizer.step().")
    if not float(trained_accuracy) > 0.15:
        return (f"After training, evaluate gives {float(trained_accuracy):.4f}, about chance (0.10) for a model whose "
                "loss went down: does evaluate compare the argmax of the scores with the labels?")
    return None
