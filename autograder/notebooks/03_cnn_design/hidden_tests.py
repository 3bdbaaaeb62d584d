"""Hidden tests of notebook 3 (CNN design): architectures, outputs and the graded checkpoints.

Architectures: the kernel builds the student's class and reports numbers (output shapes, parameter
counts and shapes, which activation modules it holds, outputs with parameters filled by shape as
:func:`a2lib.checks.models.fill_parameters` does); they are compared here with the specification
and the reference solution's outputs (``cnn_design.npz``). Checkpoints: see :mod:`autograder.notebooks.model_scoring`.
"""
from __future__ import annotations

import numpy as np

from a2lib.checks.models import (accuracy_passed, accuracy_problem, my_model_problem, shape_mismatch_words,
                                 two_layer_net_problem, vanilla_cnn_problem)
from autograder.harness import Context, Fail, StudentError, fail_on, grades

from autograder.notebooks.model_scoring import one_number, scored_checkpoint, show_per_class, usable

NOTEBOOK = "03_cnn_design"
ACTIVATIONS = ("ReLU", "Sigmoid", "Tanh", "LeakyReLU", "ELU", "GELU", "SiLU", "Softmax", "LogSoftmax")
SEED = 0  # fill_parameters' seed of the reference outputs (build_reference.py beside this file)
TWO_LAYER = {"build": "TwoLayerNet(48, 16, 10)", "name": "TwoLayerNet(48, 16, 10)", "input": "two_layer_x",
             "output": "two_layer_out", "shapes": [(16, 48), (16,), (10, 16), (10,)],
             "spec": "linear(48 -> 16), sigmoid, linear(16 -> 10) on the flattened image"}
VANILLA = {"build": "VanillaCNN()", "name": "VanillaCNN", "input": "vanilla_x", "output": "vanilla_out",
           "shapes": [(32, 3, 7, 7), (32,), (10, 5408), (10,)],
           "spec": "conv(3 -> 32, 7x7, stride 1, no padding), ReLU, max-pool 2x2 stride 2, linear(5408 -> 10)"}
TIERS = {"test_my_model_050": 0.50, "test_my_model_060": 0.60, "test_my_model_070": 0.70, "test_my_model_bonus": 0.80}


# -- message builders (pure functions of numbers) --------------------------------------------------
def architecture_problem(shapes, expected_shapes, name: str, spec: str) -> str | None:
    """None when the parameter ``shapes`` (any order) are the ``expected_shapes``, else the mismatch in words."""
    shapes = sorted(tuple(int(d) for d in s) for s in shapes)
    want = sorted(tuple(int(d) for d in s) for s in expected_shapes)
    if shapes == want:
        return None
    return (f"{name} should be {spec}, with parameters of shapes {want}; yours has {shapes}. "
            "Check the layer sizes, kernel size, padding and stride.")


def outputs_problem(out: np.ndarray, expected: np.ndarray, activations: list[str], name: str, spec: str,
                    atol: float = 1e-4) -> str | None:
    """None when ``out`` [B, classes] matches ``expected`` within ``atol``, else the likely cause.

    ``activations``: names of the activation modules the model holds, for the hint.
    """
    out, expected = np.asarray(out, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if out.shape != expected.shape:
        return (f"{name} returns shape {out.shape} for a batch of {len(expected)}; "
                f"it should return class scores of shape {expected.shape}.")
    error = float(np.abs(out - expected).max()) if np.isfinite(out).all() else float("inf")
    if error <= atol:
        return None
    hint = f" Your model contains {', '.join(activations)}." if activations else ""
    if any(a in activations for a in ("Softmax", "LogSoftmax")):
        hint += " Return raw scores (logits): the loss applies the softmax itself."
    return f"{name}'s outputs differ from the reference by up to {error:.3g}: it should be {spec}.{hint}"


def unpad_shapes(padded: np.ndarray) -> list[tuple[int, ...]]:
    """Parameter shapes from the kernel's padded int array [P, max_dims] (-1 = no dimension)."""
    return [tuple(int(d) for d in row if d >= 0) for row in np.asarray(padded).reshape(len(padded), -1)]


# -- architecture and outputs ----------------------------------------------------------------------
SHAPES_SNIPPET = """
import numpy as np
import torch
model = {build}
dims = [tuple(p.shape) for p in model.parameters()]
shapes = np.full((len(dims), max([len(d) for d in dims] + [1])), -1, dtype=np.int64)
for i, d in enumerate(dims):
    shapes[i, :len(d)] = d
present = np.array([any(isinstance(m, getattr(torch.nn, a)) for m in model.modules()) for a in activations], dtype=bool)
"""
OUTPUTS_SNIPPET = """
import torch
from a2lib.checks.models import fill_parameters
model = fill_parameters({build}, seed).eval()
with torch.no_grad():
    out = model(torch.as_tensor(x, dtype=torch.float32))
"""


def check_outputs(ctx: Context, spec: dict) -> str:
    """Parameter shapes, then outputs with parameters filled by shape, against the reference solution's."""
    got = ctx.session.run(SHAPES_SNIPPET.format(build=spec["build"]), ["shapes", "present"], what=spec["name"],
                          activations=list(ACTIVATIONS))
    problem = architecture_problem(unpad_shapes(got["shapes"]), spec["shapes"], spec["name"], spec["spec"])
    if problem:
        raise Fail(problem)
    found = sorted(a for a, present in zip(ACTIVATIONS, np.asarray(got["present"]).ravel()) if present)
    ref = ctx.reference("cnn_design")
    out = ctx.session.run(OUTPUTS_SNIPPET.format(build=spec["build"]), ["out"], what=f"{spec['name']}.forward",
                          seed=SEED, x=np.asarray(ref[spec["input"]], dtype=np.float32))["out"]
    problem = outputs_problem(out, ref[spec["output"]], found, spec["name"], spec["spec"])
    if problem:
        raise Fail(problem)
    return f"{spec['name']}: outputs match the reference."


@grades(NOTEBOOK, "test_two_layer_net_hidden")
def two_layer_net_hidden(ctx: Context) -> str:
    return check_outputs(ctx, TWO_LAYER)


@grades(NOTEBOOK, "test_vanilla_cnn_hidden")
def vanilla_cnn_hidden(ctx: Context) -> str:
    return check_outputs(ctx, VANILLA)


def run_explained(ctx: Context, name: str, snippet: str, outputs: list[str], **kwargs) -> dict:
    """``ctx.session.run``; a linear layer of the wrong input size fails in the course's words, not torch's."""
    try:
        return ctx.session.run(snippet, outputs, **kwargs)
    except StudentError as error:
        fail_on(shape_mismatch_words(name, str(error)))
        raise


# -- the visible cells' checks ---------------------------------------------------------------------
@grades(NOTEBOOK, "test_two_layer_net")
def two_layer_net(ctx: Context) -> str:
    """Output shape, parameter count and the hand-checked case of the test cell."""
    got = run_explained(ctx, "TwoLayerNet", """
import torch
net = TwoLayerNet(3 * 32 * 32, 100, 10)
small = TwoLayerNet(4, 3, 2)
with torch.no_grad():
    out_shape = list(net(torch.zeros(5, 3, 32, 32)).shape)
    for p in small.parameters():
        p.fill_(1.0 if tuple(p.shape) == (2, 3) else 0.0)
    hand = small(torch.zeros(1, 1, 2, 2))
n_params = sum(p.numel() for p in net.parameters())
""", ["out_shape", "n_params", "hand"], what="TwoLayerNet")
    fail_on(two_layer_net_problem(got["out_shape"], one_number(got["n_params"], "TwoLayerNet's parameter count"),
                                  got["hand"]))
    return "TwoLayerNet: shapes, parameter count and the hand-checked case are right."


@grades(NOTEBOOK, "test_vanilla_cnn")
def vanilla_cnn(ctx: Context) -> str:
    """Output shape, the convolutions' settings and the parameter count of the test cell."""
    got = run_explained(ctx, "VanillaCNN", """
import numpy as np
import torch
from torch import nn
cnn = VanillaCNN()
with torch.no_grad():
    out_shape = list(cnn(torch.zeros(4, 3, 32, 32)).shape)
pair = lambda v: list(v) if isinstance(v, tuple) else [-1, -1]   # padding may be a string ("same")
settings = np.array([[m.in_channels, m.out_channels, *pair(m.kernel_size), *pair(m.stride), *pair(m.padding)]
                     for m in cnn.modules() if isinstance(m, nn.Conv2d)], dtype=np.int64).reshape(-1, 8)
n_params = sum(p.numel() for p in cnn.parameters())
""", ["out_shape", "settings", "n_params"], what="VanillaCNN")
    convs = [conv_settings(row) for row in np.asarray(got["settings"]).reshape(-1, 8)]
    fail_on(vanilla_cnn_problem(got["out_shape"], convs, one_number(got["n_params"], "VanillaCNN's parameter count")))
    return "VanillaCNN: shapes, convolution settings and parameter count are right."


def conv_settings(row) -> dict:
    """A Conv2d's settings from the kernel's 8 numbers (-1, -1: a padding given as a string)."""
    def pair(a, b):
        return (int(a), int(b)) if a >= 0 else "a string (such as 'same')"
    return {"in_channels": int(row[0]), "out_channels": int(row[1]), "kernel_size": pair(*row[2:4]),
            "stride": pair(*row[4:6]), "padding": pair(*row[6:8])}


@grades(NOTEBOOK, "test_my_model")
def my_model(ctx: Context) -> str:
    """Parameter budget; output shape and finite scores in train and eval mode, on random images sent from here."""
    x = ctx.rng("images").normal(size=(4, 3, 32, 32)).astype(np.float32)
    got = ctx.session.run("""
import torch
model = MyModel()
n_params = sum(p.numel() for p in model.parameters())
outs = {}
for mode in ("train", "eval"):
    getattr(model, mode)()
    with torch.no_grad():
        outs[mode] = model(torch.as_tensor(x))
out_train, out_eval = outs["train"], outs["eval"]
""", ["n_params", "out_train", "out_eval"], what="MyModel", x=x)
    n_params = int(one_number(got["n_params"], "MyModel's parameter count"))
    fail_on(my_model_problem(n_params, {"train": got["out_train"], "eval": got["out_eval"]}))
    return f"MyModel: {n_params:,} parameters (budget 5,000,000), output shapes right in train and eval mode."


# -- graded checkpoints ----------------------------------------------------------------------------
def graded_accuracy(ctx: Context, build: str, checkpoint: str, name: str, minimum: float, show_table: bool) -> str:
    """The checkpoint's test accuracy (computed here) must reach ``minimum``."""
    scored = scored_checkpoint(ctx, build, checkpoint, name)
    evaluation = usable(ctx, scored)
    if show_table:
        show_per_class(ctx, scored)
    problem = accuracy_problem(name, evaluation.accuracy, minimum, scored.n_images, checkpoint)
    if problem:
        raise Fail(problem)
    return accuracy_passed(name, evaluation.accuracy, minimum)


@grades(NOTEBOOK, "test_two_layer_accuracy")
def two_layer_accuracy(ctx: Context) -> str:
    return graded_accuracy(ctx, "TwoLayerNet(3 * 32 * 32, 256, 10)", "checkpoints/twolayer.pt", "TwoLayerNet", 0.30, True)


@grades(NOTEBOOK, "test_vanilla_cnn_accuracy")
def vanilla_cnn_accuracy(ctx: Context) -> str:
    return graded_accuracy(ctx, "VanillaCNN()", "checkpoints/vanilla_cnn.pt", "VanillaCNN", 0.40, True)


def my_model_tier(ctx: Context) -> str:
    """One MyModel tier (``ctx.grade_id``); the first shows the per-class table."""
    return graded_accuracy(ctx, "MyModel()", "checkpoints/mymodel.pt", "MyModel", TIERS[ctx.grade_id],
                           show_table=ctx.grade_id == "test_my_model_050")


for _grade_id in TIERS:
    grades(NOTEBOOK, _grade_id)(my_model_tier)
