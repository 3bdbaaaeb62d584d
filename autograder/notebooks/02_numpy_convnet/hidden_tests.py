"""Hidden tests of notebook 2 (the numpy ConvNet): layers against torch autograd, SGD, the 50-image run.

Each test decides its whole cell: the cell's visible fixed cases, plus for the ``*_hidden`` cells
random shapes, strides, paddings, batch sizes and values drawn from ``ctx.rng`` (unpredictable to
the student). The student's layers run in their kernel on the inputs sent (one snippet per case:
build the layer, set its parameters, forward, backward) and send back ``out``, ``dx``, ``dw``,
``db``; the reference is computed here with torch autograd in float64 (``reference_layers``) and
the message builders of ``a2lib.checks.numpy_nn`` say what is wrong.

A layer whose work is done by torch or by ``a2lib.checks`` earns nothing: its solution cell is read
here for torch and the checks, and the kernel reports the calls it saw during forward and backward
(a report that can only cost the student points, so the grader may believe it).
"""
from __future__ import annotations

import ast

import numpy as np

from a2lib.checks import numpy_nn as checks
from autograder.harness import Context, Fail, StudentError, fail_on, grades
from autograder.notebooks.not_written import explain_not_written

from .reference_layers import forward_expected, per_sample_grads, sgd_expected, torch_reference


NOTEBOOK = "02_numpy_convnet"

# Runs in the student's kernel: their layer on the inputs sent; None results become a flag in `unset`;
# `borrowed` flags calls into torch and into a2lib.checks seen while the layer ran.
WATCH = """
import sys as _sys
import numpy as _np
_seen = set()
def _watch(frame, event, arg):
    if event == "call":
        module = frame.f_globals.get("__name__") or ""
    elif event == "c_call":
        module = getattr(arg, "__module__", None) or type(getattr(arg, "__self__", None)).__module__ or ""
    else:
        return
    if module.split(".")[0] == "torch" or module.startswith("a2lib.checks"):
        _seen.add("torch" if module.split(".")[0] == "torch" else "checks")
"""
LAYER_SNIPPET = WATCH + """
layer = {cls}(*args)
if weight.size:
    layer.weight, layer.bias = weight.copy(), bias.copy()
_sys.setprofile(_watch)
try:
    results = {{"out": layer.forward(x.copy())}}
    if backward:
        layer.backward(dout.copy())
finally:
    _sys.setprofile(None)
if backward:
    results.update((attr, getattr(layer, attr, None)) for attr in grads)
unset = _np.array([results[name] is None for name in names])
borrowed = _np.array(["torch" in _seen, "checks" in _seen])
for name in names:
    globals()[name] = _np.zeros(0) if results[name] is None else results[name]
"""
# The solution cell of each layer (read for torch and the checks).
SOLUTION_CELLS = {"relu": "relu", "conv": "conv2d", "pool": "max_pooling", "linear": "linear", "sgd": "sgd",
                  "naive": "conv_forward_naive"}
BORROWED = ("{what} uses {used}: no points for this test. The exercise is to write it yourself in numpy "
            "(np.maximum, @, slicing); torch and a2lib.checks may only check your work, never do it.")


def borrowed_names(source: str) -> list[str]:
    """What of torch and a2lib.checks a cell's source uses: imports of them, or the names ``torch``/``checks``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    used = set()
    for node in ast.walk(tree):
        modules = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                   [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for module in modules:
            if module.split(".")[0] == "torch":
                used.add("torch")
            elif module.startswith("a2lib.checks") or (module == "a2lib" and isinstance(node, ast.ImportFrom)
                                                         and any(a.name == "checks" for a in node.names)):
                used.add("a2lib.checks")
        if isinstance(node, ast.Name) and node.id in ("torch", "checks"):
            used.add("torch" if node.id == "torch" else "a2lib.checks")
    return sorted(used)


def refuse_borrowed_work(ctx: Context, kind: str, what: str) -> None:
    """Fail when the solution cell of ``kind`` uses torch or a2lib.checks (read from the submitted source)."""
    try:
        source = ctx.cell_source(SOLUTION_CELLS[kind])
    except Exception:  # no notebook to read (an in-process run on a namespace)
        source = ""
    used = borrowed_names(source)
    if used:
        raise Fail(BORROWED.format(what=what, used=" and ".join(used)))


def hyper_of(kind: str, args: tuple) -> dict:
    """The hyperparameters a layer built with ``args`` (the course's constructor order) has."""
    if kind == "conv":
        return dict(kernel_size=args[2], stride=args[3], padding=args[4])
    if kind == "pool":
        return dict(kernel_size=args[0], stride=args[1])
    return {}


def param_shapes(kind: str, args: tuple) -> tuple[tuple, tuple] | None:
    """(weight shape, bias shape) of a layer built with ``args``; None for a layer without parameters."""
    if kind == "conv":
        c_in, c_out, k = args[:3]
        return (c_out, c_in, k, k), (c_out,)
    if kind == "linear":
        return (args[0], args[1]), (args[1],)
    return None


def run_layer(ctx: Context, kind: str, args: tuple, x, weight=None, bias=None, dout=None) -> dict:
    """The student's layer ``kind(*args)`` in the kernel: forward(x) (then backward(dout) when given).

    Returns ``{"out", "dx", "dw", "db"}`` (those computed) as arrays, None where the layer left None.
    """
    names = ["out"] + (list(checks.GRADIENTS[kind]) if dout is not None else [])
    empty = np.zeros(0)
    got = ctx.session.run(
        LAYER_SNIPPET.format(cls=checks.NAMES[kind]), names + ["unset", "borrowed"], what=checks.NAMES[kind],
        args=[int(a) for a in args], x=x, dout=empty if dout is None else dout, backward=dout is not None,
        weight=empty if weight is None else weight, bias=empty if bias is None else bias,
        grads=list(checks.GRADIENTS[kind]), names=names)
    unset = got.pop("unset")
    if unset.shape != (len(names),):
        raise Fail(f"{checks.NAMES[kind]}: the grader could not read your layer's results.")
    borrowed = got.pop("borrowed")
    if borrowed.shape == (2,) and borrowed.any():
        used = [name for name, flag in zip(("torch", "a2lib.checks"), borrowed) if flag]
        raise Fail(BORROWED.format(what=checks.NAMES[kind], used=" and ".join(used)))
    return {name: None if flag else got[name] for name, flag in zip(names, unset)}


def judge_layer(ctx: Context, kind: str, args: tuple, x: np.ndarray, rng: np.random.Generator, context: str,
                weight=None, bias=None, forward: bool = True, backward: bool = True) -> float:
    """Forward and/or backward of the student's layer on ``x`` against torch; returns the largest relative error.

    ``dout`` (the shape of the output) is drawn from ``rng``; raises Fail with the cause.
    """
    hyper = hyper_of(kind, args)
    refuse_borrowed_work(ctx, kind, checks.NAMES[kind])
    expected = forward_expected(kind, hyper, x, weight, bias)
    dout = rng.normal(size=expected.shapes["out"]) if backward else None
    try:
        got = run_layer(ctx, kind, args, x, weight, bias, dout)
    except StudentError:
        if forward and backward:  # did forward already go wrong? Its problem comes first.
            out = run_layer(ctx, kind, args, x, weight, bias)["out"]
            fail_on(checks.out_message(kind, out, expected, checks.TOLERANCE, context))
        raise
    if forward:
        fail_on(checks.out_message(kind, got["out"], expected, checks.TOLERANCE, context))
    errors = [expected.error(got["out"], "out")] if forward else []
    if backward:
        want = torch_reference(kind, hyper, x, dout, weight, bias)
        per_sample = lambda: per_sample_grads(kind, hyper, x, dout, weight, bias)  # noqa: E731
        fail_on(checks.backward_message(kind, dout, got, want, checks.TOLERANCE, context, per_sample))
        errors += [checks.rel_error(got[attr], want[attr]) for attr in checks.GRADIENTS[kind]]
    return max(errors)


def random_cases(kind: str, rng: np.random.Generator, n_cases: int) -> list[dict]:
    """Random layer arguments and input shapes (batch sizes 1-5, odd sizes, strides, paddings)."""
    cases = []
    for _ in range(n_cases):
        n = int(rng.integers(1, 6))
        if kind == "conv":
            k, s, p = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
            c_in, c_out = int(rng.integers(1, 5)), int(rng.integers(1, 6))
            h, w = int(rng.integers(max(1, k - 2 * p), 12)), int(rng.integers(max(1, k - 2 * p), 12))
            cases.append(dict(args=(c_in, c_out, k, s, p), x_shape=(n, c_in, h, w)))
        elif kind == "pool":
            k, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            c, h, w = int(rng.integers(1, 5)), int(rng.integers(k, 12)), int(rng.integers(k, 12))
            cases.append(dict(args=(k, s), x_shape=(n, c, h, w)))
        elif kind == "relu":
            shape = tuple(int(d) for d in rng.integers(1, 7, size=int(rng.integers(2, 5))))
            cases.append(dict(args=(), x_shape=(n, *shape[1:])))
        elif kind == "linear":
            feature_shape = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 4))))
            cases.append(dict(args=(int(np.prod(feature_shape)), int(rng.integers(1, 8))), x_shape=(n, *feature_shape)))
    return cases


def describe(kind: str, args: tuple, x_shape: tuple) -> str:
    """A case in words, for messages."""
    names = {"conv": ("in_channels", "out_channels", "kernel_size", "stride", "padding"),
             "pool": ("kernel_size", "stride"), "relu": (), "linear": ("in_dim", "out_dim")}[kind]
    settings = ", ".join(f"{k}={v}" for k, v in zip(names, args))
    return f"for a layer ({settings}) on input of shape {x_shape}" if settings else f"on input of shape {x_shape}"


def random_layers(ctx: Context, kind: str, n_cases: int) -> str:
    """``n_cases`` random cases of ``kind`` from ``ctx.rng``, forward and backward against torch."""
    rng = ctx.rng(kind)
    worst = 0.0
    for case in random_cases(kind, rng, n_cases):
        args, x = case["args"], rng.normal(size=case["x_shape"])
        shapes = param_shapes(kind, args)
        weight, bias = (rng.normal(size=shapes[0]), rng.normal(size=shapes[1])) if shapes else (None, None)
        worst = max(worst, judge_layer(ctx, kind, args, x, rng, describe(kind, args, case["x_shape"]), weight, bias))
    return f"{checks.NAMES[kind]}: hidden tests passed, largest relative error {worst:.1e}."


# The *_hidden cells: random cases of each layer (how many), forward and backward against torch autograd.
RANDOM_LAYER_TESTS = {"test_relu_hidden": ("relu", 10), "test_conv_hidden": ("conv", 15),
                      "test_max_pooling_hidden": ("pool", 12), "test_linear_hidden": ("linear", 12)}


def _random_layer_test(kind: str, n_cases: int):
    def test(ctx: Context) -> str:
        return random_layers(ctx, kind, n_cases)

    test.__name__ = f"{kind}_hidden"
    test.__doc__ = f"{n_cases} random cases of {checks.NAMES[kind]} against torch autograd (float64), forward and backward."
    return test


for _grade_id, (_kind, _n_cases) in RANDOM_LAYER_TESTS.items():
    grades(NOTEBOOK, _grade_id)(explain_not_written(_random_layer_test(_kind, _n_cases)))


# -- the visible cells: their fixed cases, with torch autograd in place of numeric gradients ---------------
def _linspace(start: float, stop: float, shape: tuple) -> np.ndarray:
    return np.linspace(start, stop, num=int(np.prod(shape))).reshape(shape)


# grade_id -> (what a pass says, cases); a case without "weight" for a layer with parameters gets
# random ones from ctx.rng (the visible cell uses the layer's own random initialization).
VISIBLE_LAYER_TESTS = {
    "test_relu": ("ReLU: forward and backward correct.",
                  [dict(kind="relu", args=(), x=_linspace(-1, 1, (2, 2, 3)))]),
    "test_conv_forward": ("Conv2D forward: correct.",  # 2 images, 3 -> 2 channels, 4x4 kernel, stride 2, padding 1
                          [dict(kind="conv", args=(3, 2, 4, 2, 1), x=_linspace(-0.1, 0.5, (2, 3, 5, 5)),
                                weight=_linspace(-0.2, 0.3, (2, 3, 4, 4)), bias=np.array([0.1, -0.2]), backward=False)]),
    "test_conv_backward": ("Conv2D backward: correct.",  # 3 images, 2 -> 3 channels, 3x3 kernel, stride 2, padding 1
                           [dict(kind="conv", args=(2, 3, 3, 2, 1), x=np.random.default_rng(0).normal(size=(3, 2, 5, 5)),
                                 forward=False)]),
    "test_max_pooling": ("MaxPooling: forward and backward correct.",  # forward 2x2 / 2, backward 3x3 / 2 (overlapping)
                         [dict(kind="pool", args=(2, 2), x=np.random.default_rng(1).normal(size=(2, 3, 5, 6)), backward=False),
                          dict(kind="pool", args=(3, 2), x=np.random.default_rng(1).normal(size=(2, 3, 5, 6)), forward=False)]),
    "test_linear": ("Linear: forward and backward correct.",
                    [dict(kind="linear", args=(12, 4), x=_linspace(-1, 1, (3, 3, 2, 2)),
                          weight=_linspace(-0.3, 0.4, (12, 4)), bias=_linspace(-0.1, 0.1, (4,)))]),
}


def fresh_variant(case: dict, rng: np.random.Generator) -> dict:
    """The visible ``case`` with fresh values drawn from ``rng``: the same layer and shapes, new x, weights, bias.

    Decides the visible cell's points with the visible case, so that a table of the visible answers earns nothing.
    """
    fresh = dict(case, x=rng.normal(size=np.shape(case["x"])))
    shapes = param_shapes(case["kind"], case["args"])
    if shapes:
        fresh["weight"], fresh["bias"] = rng.normal(size=shapes[0]), rng.normal(size=shapes[1])
    return fresh


def _visible_layer_test(passed: str, cases: list[dict]):
    def test(ctx: Context) -> str:
        fresh = ctx.rng("fresh")
        for case in cases + [fresh_variant(c, fresh) for c in cases]:
            case = dict(case)
            kind, args, x = case.pop("kind"), case.pop("args"), case.pop("x")
            shapes = param_shapes(kind, args)
            if shapes and "weight" not in case:
                rng = ctx.rng("weights")
                case["weight"], case["bias"] = rng.normal(size=shapes[0]), rng.normal(size=shapes[1])
            # dout as the visible check_backward draws it: a generator seeded 0
            judge_layer(ctx, kind, args, x, np.random.default_rng(0), f"on input of shape {x.shape}", **case)
        return passed

    test.__doc__ = (f"The visible cell's cases ({', '.join(c['kind'] for c in cases)}) and the same cases with fresh "
                    f"values from ctx.rng, against torch autograd.")
    return test


for _grade_id, (_passed, _cases) in VISIBLE_LAYER_TESTS.items():
    grades(NOTEBOOK, _grade_id)(explain_not_written(_visible_layer_test(_passed, _cases)))


# -- the naive convolution ----------------------------------------------------------------------------
NAIVE_SNIPPET = WATCH + """
_sys.setprofile(_watch)
try:
    out = conv_forward_naive(x.copy(), weight.copy(), bias.copy(), stride, padding)
finally:
    _sys.setprofile(None)
borrowed = _np.array(["torch" in _seen, "checks" in _seen])
"""


def judge_naive(ctx: Context, x, weight, bias, stride: int, padding: int, context: str) -> None:
    """The student's ``conv_forward_naive`` on one case against torch's conv2d."""
    hyper = dict(kernel_size=weight.shape[-1], stride=stride, padding=padding)
    got = ctx.session.run(NAIVE_SNIPPET, ["out", "borrowed"], what="conv_forward_naive", x=x, weight=weight,
                          bias=bias, stride=int(stride), padding=int(padding))
    if got["borrowed"].shape == (2,) and got["borrowed"].any():
        used = [name for name, flag in zip(("torch", "a2lib.checks"), got["borrowed"]) if flag]
        raise Fail(BORROWED.format(what="conv_forward_naive", used=" and ".join(used)))
    fail_on(checks.out_message("conv", got["out"], forward_expected("conv", hyper, x, weight, bias), checks.TOLERANCE,
                               context, name="conv_forward_naive"))


@grades(NOTEBOOK, "test_conv_forward_naive")
@explain_not_written
def conv_forward_naive(ctx: Context) -> str:
    """The visible case, the same shapes with fresh values, and 6 small random cases against conv2d (float64)."""
    refuse_borrowed_work(ctx, "naive", "conv_forward_naive")
    case = checks.NAIVE_CASE
    rng = ctx.rng("naive")
    fresh = dict(case, x=rng.normal(size=case["x"].shape), weight=rng.normal(size=case["weight"].shape),
                 bias=rng.normal(size=case["bias"].shape))
    for c in (case, fresh):
        judge_naive(ctx, c["x"], c["weight"], c["bias"], c["stride"], c["padding"], f"on input of shape {c['x'].shape}")
    for c in random_cases("conv", rng, 6):
        c_in, c_out, k, stride, padding = c["args"]
        x = rng.normal(size=c["x_shape"])
        weight, bias = rng.normal(size=(c_out, c_in, k, k)), rng.normal(size=c_out)
        judge_naive(ctx, x, weight, bias, stride, padding, describe("conv", c["args"], c["x_shape"]))
    return "conv_forward_naive: correct."


# -- SGD --------------------------------------------------------------------------------------------
SGD_SNIPPET = """
from a2lib.checks.numpy_nn import sgd_trajectory
globals().update(sgd_trajectory(SGD, {name: globals()[name] for name in problem_names}, **settings))
"""
TRAJECTORY = [f"step{s}_{p}{i}" for s in (1, 2) for p in ("weight", "bias") for i in range(len(checks.SGD_SHAPES))]


def run_sgd(ctx: Context, problem: dict, settings: dict) -> dict:
    """Two updates of the student's SGD on ``problem`` (:func:`sgd_problem`) in the kernel: the parameters after each."""
    return ctx.session.run(SGD_SNIPPET, TRAJECTORY, what="SGD", problem_names=sorted(problem), settings=settings,
                           **problem)


def judge_sgd(ctx: Context, problem: dict, settings: dict, right: dict | None = None) -> None:
    """The student's SGD on ``problem`` against torch.optim.SGD's trajectory (or ``right``)."""
    refuse_borrowed_work(ctx, "sgd", "SGD")
    fail_on(checks.sgd_message(run_sgd(ctx, problem, settings), sgd_expected(problem, **settings, right=right)))


@grades(NOTEBOOK, "test_sgd")
@explain_not_written
def sgd(ctx: Context) -> str:
    """The visible case (seed 0, learning rate 0.1, reg 0.05, momentum 0.9), then the same settings on fresh
    values from ``ctx.rng``, against torch.optim.SGD."""
    judge_sgd(ctx, checks.sgd_problem(0), checks.SGD_SETTINGS)
    judge_sgd(ctx, checks.sgd_problem(ctx.rng("fresh")), checks.SGD_SETTINGS)
    return "SGD: correct."


@grades(NOTEBOOK, "test_sgd_hidden")
@explain_not_written
def sgd_hidden(ctx: Context) -> str:
    """Seed 7 against the reference solution's trajectory; random values and settings against torch.optim.SGD."""
    judge_sgd(ctx, checks.sgd_problem(7), checks.SGD_SETTINGS, right=ctx.reference("numpy_sgd"))
    rng = ctx.rng("sgd")
    problem = checks.sgd_problem(rng)
    settings = dict(learning_rate=float(rng.uniform(0.01, 0.5)), reg=float(rng.uniform(0.001, 0.1)),
                    momentum=float(rng.uniform(0.5, 0.95)))
    judge_sgd(ctx, problem, settings)
    return "SGD: hidden tests passed."


# -- the 50-image experiment ------------------------------------------------------------------------
# The notebook's overfit experiment, run in the kernel on images and labels the grader drew for this grading
# (random, no readable data set): only the trained weights come back, evaluated here with the grader's layers.
OVERFIT_SNIPPET = """
from a2lib.mode import seed_everything
from a2lib.numpy_nn import ConvNet, SoftmaxCrossEntropy, fit
seed_everything(0)
_conv, _linear = Conv2D(3, 16, 3, stride=1, padding=1), Linear(16 * 16 * 16, 10)
model = ConvNet([_conv, ReLU(), MaxPooling(2, 2), _linear], SoftmaxCrossEntropy())
optimizer = SGD(model, learning_rate=0.01, reg=1e-4, momentum=0.9)
fit(model, optimizer, images, labels, epochs=epochs, batch_size=10, progress=False)
conv_weight, conv_bias, linear_weight, linear_bias = _conv.weight, _conv.bias, _linear.weight, _linear.bias
"""
OVERFIT_IMAGES, OVERFIT_EPOCHS = 50, 10
OVERFIT_SCALE = 0.25  # the spread of mean-subtracted CIFAR-10 pixels
OVERFIT_SHAPES = {"conv_weight": (16, 3, 3, 3), "conv_bias": (16,), "linear_weight": (16 * 16 * 16, 10),
                  "linear_bias": (10,)}


def overfit_data(rng: np.random.Generator, n: int = OVERFIT_IMAGES) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random images (n, 3, 32, 32) and random labels (n,) in 0..9: nothing the kernel could look up."""
    return rng.normal(scale=OVERFIT_SCALE, size=(n, 3, 32, 32)), rng.integers(0, 10, size=n)


def reference_scores(weights: dict, images: np.ndarray) -> np.ndarray:
    """The course's small ConvNet with ``weights`` on ``images``, computed here with torch: scores (n, 10)."""
    import torch
    import torch.nn.functional as F

    t = {k: torch.tensor(np.asarray(v, dtype=np.float64)) for k, v in weights.items()}
    with torch.no_grad():
        a = F.max_pool2d(F.relu(F.conv2d(torch.tensor(images), t["conv_weight"], t["conv_bias"], padding=1)), 2, 2)
        return (a.flatten(1) @ t["linear_weight"] + t["linear_bias"]).numpy()


@grades(NOTEBOOK, "test_overfit")
@explain_not_written
def overfit(ctx: Context) -> str:
    """The course's small ConvNet, trained in the kernel with the student's layers and SGD for 10 epochs on 50
    random images with random labels drawn here, must classify at least 90% of them: the trained weights come
    back as numbers and the grader's own layers compute the scores."""
    images, labels = overfit_data(ctx.rng("overfit"))
    weights = ctx.session.run(OVERFIT_SNIPPET, list(OVERFIT_SHAPES), what="the 50-image experiment (your layers and SGD)",
                              timeout=300, images=images, labels=labels, epochs=OVERFIT_EPOCHS)
    for name, shape in OVERFIT_SHAPES.items():
        value = np.asarray(weights[name])
        if value.shape != shape or value.dtype == object or not np.issubdtype(value.dtype, np.number):
            raise Fail(f"After training, {name.replace('_', '.', 1)} has shape {value.shape}, expected {shape}: "
                       f"check that your layers keep their parameters in self.weight and self.bias.")
    scores = reference_scores(weights, images)
    accuracy = float(np.mean(np.argmax(scores, axis=1) == labels)) if np.all(np.isfinite(scores)) else 0.0
    fail_on(checks.overfit_message(accuracy, OVERFIT_EPOCHS))
    return f"The network learned the {OVERFIT_IMAGES} images: training accuracy {accuracy:.2f}."
