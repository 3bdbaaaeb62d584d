"""Graded checkpoints, shared by notebooks 3 and 4: the kernel scores images, accuracy is computed here.

The student's kernel builds the model from its class and the submitted checkpoint (``weights_only``
loading, size limit) and returns its scores for uint8 images sent from here, without labels. The
labels stay in this process: accuracy and per-class accuracy are computed here.

Against a model that looks its input up in the test set instead of recognising it, a sample of the
images (:func:`mirror_sample`: a tenth, at least 250) is also sent mirrored left to right, shuffled in
among the originals (the sample and the order come from ``ctx.rng``). Grades use the original images
only, so honest grades do not change; a model whose accuracy on the mirror images falls far below its
accuracy on the same images as they are (:data:`MIRROR_DROP`) is not graded and is flagged for the
instructor. A sample is enough: a lookup drops from about 1 to about 0.1, an honest model by at most
0.02, and the noise of a paired difference on 250 images is about 0.02. Scoring is most of the
grading time of notebooks 3 and 4; a tenth instead of all the mirror images saves 45% of it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from a2lib.checks.models import format_table, per_class_report, test_set_words
from a2lib.data import ImageSet
from a2lib.evaluate import Evaluation, confusion_from_predictions
from a2lib.workflow import grading_test_set
from autograder.harness import Context, Fail, StudentError
from autograder.harness.outputs import per_class_output
from autograder.harness.references import load_reference

from . import notebook_folders

# Originals minus mirror images, in accuracy. The reference checkpoints (trained without flips for
# TwoLayerNet and VanillaCNN) differ by -0.019 to +0.013 on the fast subset, -0.006 to +0.007 on the full
# test set (03_cnn_design/reference/cnn_design_accuracy.json, 04_data_wrangling/reference/nb4_lt_reference.json);
# a lookup table drops from about 1 to about 0.1.
MIRROR_DROP = 0.2
MIRROR_FRACTION, MIRROR_MIN = 10, 250   # mirror images: a tenth of the test images, at least 250
BATCH = 64
TIMEOUT_S = 900.0

# The kernel's half: ``build`` is the kit's own expression (e.g. "MyModel()"), never student text. The
# channels-last layout and batches of 64 make scoring about 1.3 to 1.7 times faster on a CPU (fp32, the same
# predictions: the five reference checkpoints agree on all 10,000 test images, logits within 4e-6); a
# model that fails in that layout (a ``.view`` of its activations) is scored in the usual one, where an error
# is the student's as before.
SCORES_SNIPPET = """
import torch
from a2lib.checkpoint import load_checkpoint
from a2lib.data import normalize
from a2lib.device import default_device
model = {build}
load_checkpoint(path, model)
device = default_device()
model.to(device).eval()
layout = torch.channels_last
try:
    model.to(memory_format=layout)
except Exception:
    layout = torch.contiguous_format
parts = []
with torch.inference_mode():
    for start in range(0, len(images), batch):
        x = normalize(torch.from_numpy(images[start:start + batch]).to(device))
        if layout is torch.channels_last:
            try:
                out = model(x.contiguous(memory_format=layout))
            except Exception:  # the usual layout decides: the same error there is the student's
                layout = torch.contiguous_format
                model.to(memory_format=layout)
        if layout is torch.contiguous_format:
            out = model(x)
        parts.append(out.float().cpu())
logits = torch.cat(parts) if parts else torch.zeros(0, 10)
"""

# Where each graded model's reference per-class accuracy is: (notebook, reference file, entry).
REFERENCES = {"TwoLayerNet": ("03_cnn_design", "cnn_design_accuracy", "TwoLayerNet"),
              "VanillaCNN": ("03_cnn_design", "cnn_design_accuracy", "VanillaCNN"),
              "MyModel": ("03_cnn_design", "cnn_design_accuracy", "MyModel"),
              "ResNet-32/cross-entropy": ("04_data_wrangling", "nb4_lt_reference", "ce"),
              "ResNet-32/CB-Focal": ("04_data_wrangling", "nb4_lt_reference", "cbfocal")}


@dataclass
class Scored:
    """A checkpoint scored on the graded test set.

    evaluation: confusion on the original images (None when the checkpoint could not be scored).
    mirrored_accuracy: accuracy on the mirror sample (images mirrored left to right).
    sample_accuracy: accuracy on the same sample as it is (what ``mirrored_accuracy`` is compared with).
    error: why it could not be scored, in plain words for the student ("" when it was).
    """

    name: str
    checkpoint: str
    n_images: int
    evaluation: Evaluation | None = None
    mirrored_accuracy: float = float("nan")
    sample_accuracy: float = float("nan")
    error: str = ""

    @property
    def accuracy(self) -> float:
        return self.evaluation.accuracy


def one_number(value, what: str) -> float:
    """``value`` (an array from the kernel; a scalar arrives as shape [1]) as one float; Fail otherwise."""
    array = np.asarray(value, dtype=np.float64)
    if array.size != 1:
        raise Fail(f"{what} should be one number, got an array of shape {array.shape}.")
    return float(array.ravel()[0])


def checkpoint_problem(exc: StudentError, name: str) -> str:
    """The student's message for a checkpoint that did not load or a model that did not run."""
    text = str(exc)
    marker = "raised CheckpointError: "
    return f"{name}: {text.split(marker, 1)[1]}" if marker in text else text


def mirror_sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the images also sent mirrored [M], the order of the N + M images sent [N + M])."""
    sample = np.sort(rng.choice(n, size=min(n, max(MIRROR_MIN, n // MIRROR_FRACTION)), replace=False))
    return sample, rng.permutation(n + len(sample))


def score_images(session, build: str, checkpoint: str, name: str, test: ImageSet, rng: np.random.Generator) -> Scored:
    """Score ``test`` [N] and a mirrored sample of it [M] in the kernel, shuffled together; judge here."""
    images = test.images.numpy()
    n = len(images)
    sample, order = mirror_sample(n, rng)
    sent = np.concatenate([images, images[sample][..., ::-1]])  # [N + M, 3, 32, 32]: originals, then mirrors
    scored = Scored(name, checkpoint, n)
    try:
        logits = session.run(SCORES_SNIPPET.format(build=build), ["logits"], what=f"{name} with {checkpoint}",
                             timeout=TIMEOUT_S, images=np.ascontiguousarray(sent[order]), path=checkpoint,
                             batch=BATCH)["logits"]
    except StudentError as exc:
        scored.error = checkpoint_problem(exc, name)
        return scored
    classes, total = len(test.classes), len(sent)
    if logits.shape != (total, classes):
        scored.error = (f"{name} returns scores of shape {logits.shape} for {total} images; it should return "
                        f"({total}, {classes}), one score per class.")
        return scored
    if not np.isfinite(logits).all():
        scored.error = f"{name} from {checkpoint} returns NaN or infinite scores on test images."
        return scored
    unshuffled = np.empty_like(logits)
    unshuffled[order] = logits
    predictions = unshuffled.argmax(1)
    labels = test.labels.numpy()
    scored.evaluation = Evaluation(confusion_from_predictions(labels, predictions[:n], test.classes))
    scored.mirrored_accuracy = float((predictions[n:] == labels[sample]).mean())
    scored.sample_accuracy = float((predictions[sample] == labels[sample]).mean())
    return scored


def graded_test_set(ctx: Context) -> ImageSet:
    """The graded CIFAR-10 test set with its labels (fast: the fixed 1,000-image subset), read here only."""
    return grading_test_set(ctx.data_root, fast=ctx.fast)


def scored_checkpoint(ctx: Context, build: str, checkpoint: str, name: str) -> Scored:
    """``checkpoint`` loaded into ``build`` and scored once per notebook (shared through ``ctx.cache``)."""
    key = ("scored", build, checkpoint)
    if key not in ctx.cache:
        ctx.cache[key] = score_images(ctx.session, build, checkpoint, name, graded_test_set(ctx),
                                      ctx.rng(f"mirror {checkpoint}"))
    return ctx.cache[key]


def lookup_problem(scored: Scored) -> str | None:
    """None when accuracy holds on the mirror images, else the student's message."""
    if scored.sample_accuracy - scored.mirrored_accuracy <= MIRROR_DROP:
        return None
    return (f"{scored.name} from {scored.checkpoint} reaches {scored.sample_accuracy:.4f} on test images but only "
            f"{scored.mirrored_accuracy:.4f} on the same images mirrored left to right. A trained network recognises "
            "a mirrored cat as well as the original (the reference models lose at most 0.02), a model that looks "
            "its inputs up does not: this checkpoint is not graded, and the instructor will look at it.")


def usable(ctx: Context, scored: Scored) -> Evaluation:
    """The evaluation on the original images; Fail (and a flag for a lookup) when it cannot be graded."""
    if scored.error:
        raise Fail(scored.error)
    problem = lookup_problem(scored)
    if problem:
        ctx.flag(f"{scored.checkpoint}: accuracy {scored.sample_accuracy:.3f} on test images, "
                 f"{scored.mirrored_accuracy:.3f} on their mirror images (a lookup of the test set?)")
        raise Fail(problem)
    return scored.evaluation


def reference_per_class(name: str, n_images: int | None = None) -> pd.Series | None:
    """Per-class accuracy of the reference model ``name`` on the same test set (``n_images``; None: the full one).

    None when the reference values are missing or were measured on another test set.
    """
    if name not in REFERENCES:
        return None
    stem, file, entry = REFERENCES[name]
    folder = notebook_folders().get(stem)
    try:
        values = load_reference(folder.reference_dir, file)
    except (AttributeError, FileNotFoundError):  # (no such notebook folder, no such reference)
        return None
    measured = values.get(entry, {}).get("fast" if n_images is not None and n_images < 10000 else "full")
    if not measured or (n_images is not None and measured["images"] != n_images):
        return None
    return pd.Series(measured["per_class"], index=values["classes"], name="reference")


def show_per_class(ctx: Context, scored: Scored, table: pd.DataFrame | None = None, digits: int = 4,
                   label: str = "reference") -> pd.Series | None:
    """Print the per-class table beside the reference's, and display it for the feedback page's bars.

    ``table``: the table to print (default: :func:`per_class_report`), to which the reference model's
    column is added as ``label``. Returns the reference per-class accuracy.
    """
    reference = reference_per_class(scored.name, scored.n_images)
    if table is None:
        table = per_class_report(scored.evaluation, reference)
    elif reference is not None:
        table[label] = reference.reindex(table.index)
    ctx.print(f"{scored.name} from {scored.checkpoint} on {test_set_words(scored.n_images)}:")
    ctx.print(format_table(table, digits))
    ctx.display(per_class_output(scored.name, scored.evaluation.per_class, reference))
    return reference


def reference_scores(session, build: str, checkpoint: str, name: str, root=None) -> dict:
    """A reference checkpoint scored as students' are, on the full test set and the fast subset.

    Returns ``{"full": {images, accuracy, per_class, mirrored_accuracy}, "fast": {...}}`` (for
    ``build_reference.py`` of notebooks 3 and 4: the reference column, and the honest drop on mirror images).
    """
    entry = {}
    for key, fast in (("full", False), ("fast", True)):
        test = grading_test_set(root, fast=fast)
        scored = score_images(session, build, checkpoint, name, test, np.random.default_rng(0))
        if scored.error:
            raise RuntimeError(f"reference {checkpoint}: {scored.error}")
        entry[key] = {"images": len(test), "accuracy": scored.accuracy, "per_class": scored.evaluation.per_class.tolist(),
                      "mirrored_accuracy": scored.mirrored_accuracy, "mirror_sample_accuracy": scored.sample_accuracy}
    return entry
