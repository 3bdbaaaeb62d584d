"""a2lib.numpy_nn (the scaffolding students are given) and the checks notebooks 1 and 2 call.

The layers under test are notebook 2's reference solution, executed from the source notebook; the
mistakes are small variations of it, and each must fail with the message that names its cause.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from a2lib.checks import numpy_nn as nn_checks
from a2lib.checks import theory
from a2lib.numpy_nn import (ConvNet, Module, SoftmaxCrossEntropy, eval_numerical_gradient,
                            eval_numerical_gradient_array, fit, rel_error)
from autograder.notebooks import notebook_folders
from autograder.tools.local import run_local
from autograder.tools.local import solution_namespace


def nb2_module(name: str):
    """A module of notebook 2's folder (reference_layers, digests, hidden_tests)."""
    return notebook_folders()["02_numpy_convnet"].module(name)


def hidden_message(ns: dict, grade_id: str, **replaced) -> str:
    """The message of notebook 2's hidden test ``grade_id`` on ``ns`` with some classes replaced (it must fail)."""
    verdict = run_local("02_numpy_convnet", grade_id, dict(ns, **replaced))
    assert not verdict.passed and not verdict.grader_error, (verdict.message, verdict.grader_error)
    return verdict.message


@pytest.fixture(scope="module")
def nb2():
    return solution_namespace("02_numpy_convnet")


@pytest.fixture(scope="module")
def nb1():
    return solution_namespace("01_theory")


# -- the scaffolding -------------------------------------------------------------------------------
def test_rel_error_and_numeric_gradients():
    assert rel_error(np.ones(3), np.ones(3)) == 0.0
    assert rel_error([1.0, 2.0], [1.0, 2.2]) == pytest.approx(0.2 / 4.2)
    rng = np.random.default_rng(0)
    x, A = rng.normal(size=(3, 4)), rng.normal(size=(5, 3))
    assert rel_error(eval_numerical_gradient(lambda v: float(np.sum(v ** 3)), x.copy()), 3 * x ** 2) < 1e-7  # h^2 term of central differences
    df = rng.normal(size=(5, 4))
    assert rel_error(eval_numerical_gradient_array(lambda v: A @ v, x, df), A.T @ df) < 1e-8


def test_softmax_cross_entropy_matches_torch():
    rng = np.random.default_rng(1)
    scores, labels = rng.normal(size=(6, 4)) * 10, rng.integers(0, 4, size=6)
    loss_fn = SoftmaxCrossEntropy()
    probs, loss = loss_fn.forward(scores, labels)
    loss_fn.backward()
    st = torch.tensor(scores, requires_grad=True)
    ref = F.cross_entropy(st, torch.tensor(labels))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    assert rel_error(probs, torch.softmax(st, 1).detach().numpy()) < 1e-12
    assert rel_error(loss_fn.dx, st.grad.numpy()) < 1e-10


class Scale(Module):
    """y = weight * x + bias elementwise (a layer with parameters, for the scaffolding's tests)."""

    def __init__(self, n):
        super().__init__()
        self.weight, self.bias = np.full(n, 2.0), np.zeros(n)
        self.dw = self.db = None

    def forward(self, x):
        self.cache = x
        return x * self.weight + self.bias

    def backward(self, dout):
        self.dw, self.db, self.dx = (dout * self.cache).sum(0), dout.sum(0), dout * self.weight


def test_module_params_and_convnet_chain():
    layer = Scale(3)
    assert set(layer.params()) == {"weight", "bias"} and layer.grads() == {"weight": None, "bias": None}
    assert Module().params() == {}
    with pytest.raises(NotImplementedError, match="Module.forward"):
        Module().forward(np.zeros(1))
    net = ConvNet([Scale(3), Scale(3)], SoftmaxCrossEntropy())
    x, y = np.array([[1.0, -1.0, 0.5]]), np.array([2])
    probs, loss = net.forward(x, y)
    net.backward()
    xt = torch.tensor(x, requires_grad=True)
    F.cross_entropy(xt * 4.0, torch.tensor(y)).backward()
    assert rel_error(net.modules[0].dx, xt.grad.numpy()) < 1e-12  # the chain reached the first layer
    assert net.predict(x).tolist() == [0]


def test_fit_records_a_learning_curve():
    class Plain:  # plain gradient descent on every parameter
        def update(self, model):
            for m in model.modules:
                for name, p in m.params().items():
                    p -= 0.5 * m.grads()[name]

    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 2))
    y = (x[:, 0] > x[:, 1]).astype(int)
    net = ConvNet([Scale(2)], SoftmaxCrossEntropy())
    history = fit(net, Plain(), x, y, x[:16], y[:16], epochs=5, batch_size=16, progress=False)
    assert list(history.columns) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["train_acc"].iloc[-1] > 0.8


# -- notebook 2's checks on the reference solution and on typical mistakes ------------------------------
@pytest.mark.parametrize("name,args,x_shape", [("Conv2D", (2, 3, 3, 2, 1), (2, 2, 5, 4)), ("MaxPooling", (2, 1), (2, 2, 4, 5)),
                                               ("ReLU", (), (3, 4)), ("Linear", (6, 3), (2, 3, 2))])
def test_reference_layers_pass_the_visible_checks_on_other_shapes(nb2, name, args, x_shape):
    x = np.random.default_rng(4).normal(size=x_shape)
    assert max(nn_checks.check_backward(nb2[name](*args), x).values()) < 1e-7
    # The forward check knows only the notebook's fixed inputs (stored digests), and says so.
    with pytest.raises(AssertionError, match="only for the notebook's own fixed input"):
        nn_checks.check_forward(nb2[name](*args), x)


def test_stored_digests_are_up_to_date_and_give_no_answer_away():
    from a2lib.checks import digests as stored

    fresh = nb2_module("digests").build()
    assert fresh == {"LAYER_DIGESTS": stored.LAYER_DIGESTS, "SGD_DIGESTS": stored.SGD_DIGESTS}, \
        "regenerate: python -m autograder.notebooks.02_numpy_convnet.digests"
    assert len(stored.LAYER_DIGESTS) == 4  # one per visible forward case
    for digest in [*stored.LAYER_DIGESTS.values(), *stored.SGD_DIGESTS.values()]:
        for variant in digest["variants"].values():
            for key, numbers in variant.items():  # fewer numbers than the result has: it cannot be read back
                assert len(numbers) <= max(1, np.prod(digest["shapes"][key]) // 2)


def test_the_student_package_holds_no_answer_oracle():
    import a2lib.checks.theory as theory_checks

    for name in ("torch_reference", "per_sample_grads", "torch_sgd_trajectory", "_torch_out"):
        assert not hasattr(nn_checks, name), name
    for name in ("autograd_linearization", "_network"):
        assert not hasattr(theory_checks, name), name


def test_visible_forward_checks_name_the_mistakes_from_digests(nb2):
    Conv2D = nb2["Conv2D"]
    conv = Conv2D(3, 2, kernel_size=4, stride=2, padding=1)
    conv.weight = np.linspace(-0.2, 0.3, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    conv.bias = np.array([0.1, -0.2])
    x = np.linspace(-0.1, 0.5, num=2 * 3 * 5 * 5).reshape(2, 3, 5, 5)
    assert nn_checks.check_forward(conv, x).shape == (2, 2, 2, 2)
    def flipped_forward(self, x):
        weight = self.weight
        self.weight = np.ascontiguousarray(weight[:, :, ::-1, ::-1])
        try:
            return Conv2D.forward(self, x)
        finally:
            self.weight = weight

    layer = type("Conv2D", (Conv2D,), {"forward": flipped_forward})(3, 2, kernel_size=4, stride=2, padding=1)
    layer.weight, layer.bias = conv.weight, conv.bias
    with pytest.raises(AssertionError, match="flips the kernel"):
        nn_checks.check_forward(layer, x)
    no_bias = type("Conv2D", (Conv2D,), {"forward": lambda self, x: Conv2D.forward(self, x) - self.bias[:, None, None]})
    layer = no_bias(3, 2, kernel_size=4, stride=2, padding=1)
    layer.weight, layer.bias = conv.weight, conv.bias
    with pytest.raises(AssertionError, match="forgets the bias"):
        nn_checks.check_forward(layer, x)




def test_reference_layers_pass_the_visible_checks(nb2):
    rng = np.random.default_rng(3)
    errors = nn_checks.check_backward(nb2["Conv2D"](2, 3, 3, 2, 1), rng.normal(size=(2, 2, 5, 5)))
    assert set(errors) == {"dx", "dw", "db"} and max(errors.values()) < 1e-7
    nn_checks.check_sgd(nb2["SGD"])


def _mistake(base, method, body):
    return type(base.__name__, (base,), {method: body})


def test_forgotten_batch_sum_and_batch_average_are_named(nb2):
    Conv2D = nb2["Conv2D"]

    def remember_input(self, x):
        self.last_input = x
        return Conv2D.forward(self, x)

    def last_image_only(self, dout):  # dw of the last image alone, the rest right
        x = self.last_input
        Conv2D.forward(self, x[-1:])
        Conv2D.backward(self, dout[-1:])
        dw_last = self.dw
        Conv2D.forward(self, x)
        Conv2D.backward(self, dout)
        self.dw = dw_last

    LastImageOnly = type("Conv2D", (Conv2D,), {"forward": remember_input, "backward": last_image_only})

    assert re.search(r"holds the gradient of image \d+ only.*forgot to sum over the batch",
                     hidden_message(nb2, "test_conv_hidden", Conv2D=LastImageOnly))
    with pytest.raises(AssertionError, match="forgot to sum over the batch"):
        nn_checks.check_backward(LastImageOnly(2, 2, 3, 1, 1),
                                 np.random.default_rng(0).normal(size=(3, 2, 4, 4)))

    def averaged(self, dout):
        Conv2D.backward(self, dout)
        self.db = self.db / len(dout)

    assert "db is the batch AVERAGE" in hidden_message(nb2, "test_conv_hidden", Conv2D=_mistake(Conv2D, "backward", averaged))

    def batch_axis(self, dout):
        Conv2D.backward(self, dout)
        self.db = dout.sum(axis=(2, 3))

    assert "keeps a batch axis" in hidden_message(nb2, "test_conv_backward", Conv2D=_mistake(Conv2D, "backward", batch_axis))


def test_flipped_kernel_missing_bias_and_wrong_masks_are_named(nb2):
    Conv2D, ReLU, MaxPooling = nb2["Conv2D"], nb2["ReLU"], nb2["MaxPooling"]

    def flipped(self, x):
        weight = self.weight
        self.weight = weight[:, :, ::-1, ::-1]
        try:
            return Conv2D.forward(self, x)
        finally:
            self.weight = weight

    assert "flips the kernel" in hidden_message(nb2, "test_conv_forward", Conv2D=_mistake(Conv2D, "forward", flipped))
    no_bias = _mistake(Conv2D, "forward", lambda self, x: Conv2D.forward(self, x) - self.bias[:, None, None])
    assert "forgets the bias" in hidden_message(nb2, "test_conv_hidden", Conv2D=no_bias)

    def dout_mask(self, dout):
        self.dx = dout * (dout > 0)

    assert "sign of dout" in hidden_message(nb2, "test_relu_hidden", ReLU=_mistake(ReLU, "backward", dout_mask))
    with pytest.raises(AssertionError, match="sign of dout"):
        nn_checks.check_backward(_mistake(ReLU, "backward", dout_mask)(), np.linspace(-1, 1, 12).reshape(3, 4))
    with pytest.raises(AssertionError, match="lets the whole gradient through"):
        nn_checks.check_backward(_mistake(ReLU, "backward", lambda self, dout: setattr(self, "dx", dout))(),
                                 np.linspace(-1, 1, 12).reshape(3, 4))

    def spread(self, dout):
        k = self.kernel_size
        self.dx = np.kron(dout, np.ones((k, k))) / (k * k)

    with pytest.raises(AssertionError, match="spreads the gradient"):
        nn_checks.check_backward(_mistake(MaxPooling, "backward", spread)(2, 2),
                                 np.random.default_rng(0).normal(size=(2, 1, 4, 4)))


def test_sgd_mistakes_are_named(nb2):
    SGD = nb2["SGD"]

    def make(update):
        return type("SGD", (SGD,), {"update": update})

    def regularize_all(self, model):
        for i, m in enumerate(model.modules):
            for name, p in m.params().items():
                v = self.momentum * self.velocity.get((i, name), 0.0) - self.learning_rate * (m.grads()[name] + self.reg * p)
                self.velocity[(i, name)] = v
                p += v

    def no_memory(self, model):
        for m in model.modules:
            for name, p in m.params().items():
                p -= self.learning_rate * (m.grads()[name] + (self.reg * p if name == "weight" else 0))

    with pytest.raises(AssertionError, match="regularizes the biases"):
        nn_checks.check_sgd(make(regularize_all))
    with pytest.raises(AssertionError, match="ignores the momentum"):
        nn_checks.check_sgd(make(no_memory))
    assert "regularizes the biases" in hidden_message(nb2, "test_sgd_hidden", SGD=make(regularize_all))
    problem = nn_checks.sgd_problem(7)
    reference = nn_checks.sgd_trajectory(SGD, problem, **nn_checks.SGD_SETTINGS)
    expected = nb2_module("reference_layers").sgd_expected(problem, **nn_checks.SGD_SETTINGS)
    assert nn_checks.sgd_message(reference, expected) is None
    assert "second is wrong" in nn_checks.sgd_message(dict(reference, step2_bias0=reference["step1_bias0"]), expected)


# -- notebook 1's checks ---------------------------------------------------------------------------
def test_theory_checks_accept_the_solution(nb1):
    theory.check_q1_matrix(nb1["q1_matrix"], n_kernels=2)
    theory.check_conv_as_matrix(nb1["conv_as_matrix"], seed=9)
    theory.check_q2_answers(nb1["Q2_ANSWERS"])
    theory.check_linearize(nb1["linearize"], n_cases=5, seed=9)
    assert 20 < theory.check_word_limit(nb1["DEAD_RELU_ANSWER"], 70) <= 70


def test_theory_checks_name_the_mistakes(nb1):
    with pytest.raises(AssertionError, match="flipped kernel"):
        theory.check_q1_matrix(lambda w: nb1["q1_matrix"](w[::-1, ::-1]))
    with pytest.raises(AssertionError, match=r"shape \(9, 4\), expected \(4, 9\) \(transposed"):
        theory.check_q1_matrix(lambda w: nb1["q1_matrix"](w).T)
    with pytest.raises(AssertionError, match="flipped kernel"):
        theory.check_conv_as_matrix(lambda w, *a: nb1["conv_as_matrix"](w[:, :, ::-1, ::-1].copy(), *a), seed=2)
    with pytest.raises(AssertionError, match=r"b equals h\(x0\)"):
        theory.check_q2_answers({2: (6, 15), -1: (1.5, 1.5), -3: (0, 0)})
    with pytest.raises(AssertionError, match="no entry for x0 = -1"):
        theory.check_q2_answers({2: (6, 3), -3: (0, 0)})
    with pytest.raises(AssertionError, match="W is wrong"):  # x0 = 1's answer copied to x0 = -3 (another piece)
        theory.check_q2_answers({2: (6, 3), -1: (1.5, 3), -3: (6, 3)})
    with pytest.raises(AssertionError, match="empty"):
        theory.check_word_limit("\n# YOUR CODE HERE\nraise NotImplementedError()\n")
    with pytest.raises(AssertionError, match="71 words: the limit is 70"):
        theory.check_word_limit("word " * 71)
    assert theory.count_words("### BEGIN SOLUTION\nDon't stop, it's fine.\n### END SOLUTION") == 4


# -- the naive convolution, the students' own checks, the unsolved state ------------------------------
def test_naive_convolution_is_checked_by_digests_and_the_layer_against_it(nb2):
    naive = nb2["conv_forward_naive"]
    assert nn_checks.check_conv_naive(naive).shape == (2, 2, 2, 2)
    with pytest.raises(AssertionError, match="conv_forward_naive flips the kernel"):
        nn_checks.check_conv_naive(lambda x, w, b, s, p: naive(x, w[:, :, ::-1, ::-1], b, s, p))
    with pytest.raises(AssertionError, match="conv_forward_naive forgets the bias"):
        nn_checks.check_conv_naive(lambda x, w, b, s, p: naive(x, w, 0 * b, s, p))
    conv = nb2["Conv2D"](3, 4, kernel_size=3, stride=1, padding=2)
    conv.bias = np.random.default_rng(6).normal(size=4)
    x = np.random.default_rng(5).normal(size=(2, 3, 6, 7))
    nn_checks.check_against_naive(conv, naive, x)
    no_bias = _mistake(nb2["Conv2D"], "forward", lambda self, x: nb2["Conv2D"].forward(self, x) - self.bias[:, None, None])
    layer = no_bias(3, 4, kernel_size=3, stride=1, padding=2)
    layer.bias = conv.bias
    with pytest.raises(AssertionError, match="forgets the bias.*conv_forward_naive"):
        nn_checks.check_against_naive(layer, naive, x)
    hidden = run_local("02_numpy_convnet", "test_conv_forward_naive", nb2)
    assert hidden.passed, hidden.message
    assert "flips the kernel" in hidden_message(nb2, "test_conv_forward_naive", conv_forward_naive=lambda x, w, b, s, p:
                                                naive(x, w[:, :, ::-1, ::-1], b, s, p))


def test_two_common_max_pooling_backward_mistakes_are_named(nb2):
    MaxPooling = nb2["MaxPooling"]

    def assigned(self, dout):  # "=" where windows overlap: a shared maximum keeps only one window's dout
        x_shape, argmax = self.cache
        k, s = self.kernel_size, self.stride
        h_out, w_out = dout.shape[2:]
        dx = np.zeros(x_shape)
        for i in range(k):
            for j in range(k):
                view = dx[:, :, i:i + s * h_out:s, j:j + s * w_out:s]
                hit = argmax == i * k + j
                view[hit] = dout[hit]
        self.dx = dx

    def swapped(self, dout):  # the flat argmax turned into (column, row)
        x_shape, argmax = self.cache
        k, s = self.kernel_size, self.stride
        h_out, w_out = dout.shape[2:]
        dx = np.zeros(x_shape)
        for i in range(k):
            for j in range(k):
                dx[:, :, j:j + s * h_out:s, i:i + s * w_out:s] += dout * (argmax == i * k + j)
        self.dx = dx

    x = np.random.default_rng(1).normal(size=(2, 3, 5, 6))
    with pytest.raises(AssertionError, match="loses gradient where windows overlap"):
        nn_checks.check_backward(_mistake(MaxPooling, "backward", assigned)(3, 1), x)
    with pytest.raises(AssertionError, match="wrong position of the window"):
        nn_checks.check_backward(_mistake(MaxPooling, "backward", swapped)(2, 2), x[:, :, :4, :4])
    assert "loses gradient" in hidden_message(nb2, "test_max_pooling", MaxPooling=_mistake(MaxPooling, "backward", assigned))


def test_own_gradient_check_and_initial_loss_messages():
    assert nn_checks.own_gradient_check_message({"dx": 2e-11, "dw": 3e-11}) is None
    assert "relative error of 3.00e-01 for dw" in nn_checks.own_gradient_check_message({"dx": 1e-11, "dw": 0.3})
    assert "compares an array with itself" in nn_checks.own_gradient_check_message({"dx": 0.0, "dw": 0.0})
    assert "must be a dict" in nn_checks.own_gradient_check_message([1e-11, 1e-11])
    assert nn_checks.check_initial_loss(2.35) == 2.35
    with pytest.raises(AssertionError, match=r"far from ln 10 = 2\.303"):
        nn_checks.check_initial_loss(23.0)
    with pytest.raises(AssertionError, match="must be a number"):
        nn_checks.check_initial_loss("low")


def test_an_unsolved_exercise_names_what_to_write():
    class Stub(Module):
        def forward(self, x):
            raise NotImplementedError()

    Stub.__name__ = "ReLU"
    with pytest.raises(AssertionError, match=r"ReLU\.forward is not written yet.*YOUR CODE HERE"):
        nn_checks.check_backward(Stub(), np.ones((2, 3)))
    with pytest.raises(AssertionError, match="conv_forward_naive is not written yet"):
        nn_checks.check_conv_naive(lambda *a: (_ for _ in ()).throw(NotImplementedError()))
    with pytest.raises(AssertionError, match="linearize is not written yet"):
        theory.check_linearize(lambda *a: (_ for _ in ()).throw(NotImplementedError()))


def test_a_value_the_release_leaves_undefined_is_named():
    for check, name in ((theory.check_q2_answers, "Q2_ANSWERS"), (nn_checks.check_own_gradient_check, "my_errors"),
                        (nn_checks.check_initial_loss, "initial_loss")):
        with pytest.raises(AssertionError, match=f"{name}.*not written yet"):
            check(None)
