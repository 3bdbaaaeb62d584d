"""The hidden tests of notebooks 1 and 2, run in-process on the source notebooks' namespaces.

Every hidden test passes on the reference solution; each typical mistake of the corpus fails exactly
the tests its YAML expects, with its message; the blank release fails everything without a grader
error; and cheats (objects that equal everything, NaN, huge or non-numeric arrays, code that raises,
patched numpy or checks) fail, while correct code that prints to stderr or warns passes.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from autograder.harness.cells import is_test_cell
from autograder.tools.corpus import Case, apply_edits, case_files, family_of
from autograder.tools.local import kit_hidden_tests, run_local, solution_namespace, source_notebook, with_code

STEMS = ("01_theory", "02_numpy_convnet")
CORPUS = [p for p in case_files(stems=list(STEMS)) if family_of(p.stem) == "mistake"]


def graded_cells(stem: str) -> list[str]:
    """grade_ids of the notebook's autograded test cells."""
    return [c.metadata["nbgrader"]["grade_id"] for c in source_notebook(stem).cells if is_test_cell(c)]


def verdicts(stem: str, ns: dict, notebook=None, only=None) -> dict:
    """{grade_id: Verdict} of every hidden test of ``stem`` (or those in ``only``) on ``ns``."""
    return {gid: run_local(stem, gid, ns, notebook) for gid in graded_cells(stem) if only is None or gid in only}


def assert_fails(verdict, *texts: str) -> None:
    """A student failure (not a grader error) whose message contains every text (case-insensitive)."""
    assert not verdict.passed and not verdict.grader_error, (verdict.message, verdict.grader_error)
    for text in texts:
        assert text.lower() in verdict.message.lower(), (text, verdict.message)


@pytest.mark.parametrize("stem", STEMS)
def test_every_graded_cell_has_a_hidden_test_and_the_solution_passes_them_all(stem):
    registered = {gid for nb, gid in kit_hidden_tests(stem)}
    assert registered == set(graded_cells(stem))
    for gid, verdict in verdicts(stem, solution_namespace(stem)).items():
        assert verdict.passed, (gid, verdict.message, verdict.grader_error)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_typical_mistakes_fail_exactly_the_expected_tests(path):
    case = Case.from_yaml(path)
    (stem,) = case.notebooks
    notebook = apply_edits(source_notebook(stem), stem, case.edits)
    ns = solution_namespace(stem)
    for edit in case.edits:
        ns = with_code(ns, edit.source)
    expect, contains = case.expect.get(stem, {}), case.feedback_contains.get(stem, {})
    for gid, verdict in verdicts(stem, ns, notebook).items():
        if gid in expect:
            assert_fails(verdict, contains.get(gid, ""))
        else:
            assert verdict.passed, (case.name, gid, verdict.message, verdict.grader_error)


def blank_release(stem: str) -> tuple[dict, object]:
    """The solution namespace with every solution region replaced by nbgrader's stub, and that notebook."""
    nb = source_notebook(stem)
    ns = solution_namespace(stem)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = re.sub(r"( *)### BEGIN SOLUTION\n.*?### END SOLUTION",
                                 r"\1# YOUR CODE HERE\n\1raise NotImplementedError()", cell.source, flags=re.S)
            if "DEAD_RELU_ANSWER" not in cell.source:
                try:
                    ns = with_code(ns, cell.source)
                except NotImplementedError:  # a top-level stub (Q2_ANSWERS): the name stays undefined
                    ns.pop("Q2_ANSWERS", None)
    return ns, nb


@pytest.mark.parametrize("stem", STEMS)
def test_the_blank_release_fails_every_test_without_a_grader_error(stem):
    ns, nb = blank_release(stem)
    for gid, verdict in verdicts(stem, ns, nb).items():
        assert_fails(verdict)
        assert "NotImplementedError" in verdict.message or "empty" in verdict.message or "Q2_ANSWERS" in verdict.message


# -- cheats ------------------------------------------------------------------------------------------
class AlwaysEqual:
    """Equal to everything, close to everything."""

    def __eq__(self, other):
        return True

    def __array__(self, *args, **kwargs):
        raise TypeError("not an array")


def q1(ns, body: str) -> dict:
    return with_code(ns, f"def q1_matrix(w):\n    {body}\n")


@pytest.fixture(scope="module")
def nb1():
    return solution_namespace("01_theory")


@pytest.fixture(scope="module")
def nb2():
    return solution_namespace("02_numpy_convnet")


@pytest.mark.parametrize("body,text", [
    ("return AlwaysEqual()", "where numbers"),
    ("return np.full((4, 9), np.nan)", "differs from conv2d"),
    ("return np.zeros((1000, 1000))", "has shape (1000, 1000), expected (4, 9)"),
    ("return np.array([['a'] * 9] * 4)", "where numbers"),
    ("raise ValueError('no idea')", "no idea"),
    ("return None", "where numbers"),
], ids=["always-equal", "nan", "huge", "strings", "raises", "none"])
def test_cheating_q1_answers_fail(nb1, body, text):
    ns = q1(dict(nb1, AlwaysEqual=AlwaysEqual), body)
    assert_fails(run_local("01_theory", "test_q1_matrix", ns), text)


def test_correct_code_that_prints_to_stderr_or_warns_passes(nb1, nb2):
    noisy = ("import sys, warnings, logging\n"
             "_q1 = q1_matrix\n"
             "def q1_matrix(w):\n"
             "    print('debug', file=sys.stderr); warnings.warn('careful'); logging.warning('hm')\n"
             "    return _q1(w)\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run_local("01_theory", "test_q1_matrix", with_code(nb1, noisy)).passed
        layer = with_code(nb2, "import sys\nclass ReLU(ReLU):\n    def forward(self, x):\n"
                               "        print('forward', x.shape, file=sys.stderr)\n        return super().forward(x)\n")
        assert run_local("02_numpy_convnet", "test_relu_hidden", layer).passed


def test_patching_numpy_or_the_checks_does_not_help(nb1, nb2, monkeypatch):
    monkeypatch.setattr(np, "allclose", np.allclose)  # restored after the test: the cheat patches it for real
    monkeypatch.setattr(np, "isclose", np.isclose)
    cheat = ("import numpy, types\n"
             "numpy.allclose = lambda *a, **k: True\n"
             "numpy.isclose = lambda a, b, *r, **k: numpy.ones(numpy.broadcast(a, b).shape, bool)\n"
             "checks = types.SimpleNamespace(compare_conv_matrix=lambda *a, **k: None, check_q1_matrix=lambda *a, **k: None,\n"
             "                               conv_matrix_message=lambda *a, **k: None)\n"
             "def q1_matrix(w):\n    return numpy.zeros((4, 9))\n")
    assert_fails(run_local("01_theory", "test_q1_matrix", with_code(nb1, cheat)), "differs from conv2d")
    cheat2 = ("import numpy, types\nnumpy.allclose = lambda *a, **k: True\n"
              "checks = types.SimpleNamespace(sgd_message=lambda *a, **k: None, check_sgd=lambda *a, **k: None)\n"
              "class SGD(SGD):\n    def update(self, model):\n        pass\n")
    assert_fails(run_local("02_numpy_convnet", "test_sgd", with_code(nb2, cheat2)), "SGD")


# -- layers and answers: unset, malformed, wrong --------------------------------------------------------
def test_layer_problems_are_named(nb2):
    unset = with_code(nb2, "class Linear(Linear):\n    def backward(self, dout):\n        self.dx = None\n")
    assert_fails(run_local("02_numpy_convnet", "test_linear", unset), "did not set self.dx")
    nan = with_code(nb2, "class Conv2D(Conv2D):\n    def forward(self, x):\n        return super().forward(x) * np.nan\n")
    assert_fails(run_local("02_numpy_convnet", "test_conv_forward", nan), "NaN or infinite")
    huge = with_code(nb2, "class MaxPooling(MaxPooling):\n    def forward(self, x):\n        return np.zeros(10**6)\n")
    assert_fails(run_local("02_numpy_convnet", "test_max_pooling_hidden", huge), "output has shape (1000000,)")
    flipped = with_code(nb2, "class Conv2D(Conv2D):\n    def forward(self, x):\n"
                             "        w = self.weight\n        self.weight = w[:, :, ::-1, ::-1]\n"
                             "        out = super().forward(x)\n        self.weight = w\n        return out\n")
    assert_fails(run_local("02_numpy_convnet", "test_conv_hidden", flipped), "flips the kernel")
    spread = with_code(nb2, "class MaxPooling(MaxPooling):\n    def backward(self, dout):\n"
                            "        (x_shape, _), k, s = self.cache, self.kernel_size, self.stride\n"
                            "        h, w = dout.shape[2:]\n        self.dx = np.zeros(x_shape)\n"
                            "        for i in range(k):\n            for j in range(k):\n"
                            "                self.dx[:, :, i:i + s * h:s, j:j + s * w:s] += dout / k ** 2\n")
    assert_fails(run_local("02_numpy_convnet", "test_max_pooling", spread), "spreads the gradient")
    averaged = with_code(nb2, "class Linear(Linear):\n    def backward(self, dout):\n"
                              "        super().backward(dout)\n        self.db = self.db / len(dout)\n")
    assert_fails(run_local("02_numpy_convnet", "test_linear", averaged), "batch AVERAGE")
    no_momentum = with_code(nb2, "class SGD(SGD):\n    def __init__(self, model, learning_rate, reg, momentum):\n"
                                 "        super().__init__(model, learning_rate, reg, 0.0)\n")
    assert_fails(run_local("02_numpy_convnet", "test_sgd_hidden", no_momentum), "ignores the momentum")


def test_q2_and_q3_answers_missing_or_malformed(nb1):
    missing = dict(nb1)
    missing.pop("Q2_ANSWERS")
    assert_fails(run_local("01_theory", "test_q2_answers", missing), "Q2_ANSWERS must be a dict")
    assert_fails(run_local("01_theory", "test_q2_answers", with_code(nb1, "Q2_ANSWERS = {2: (6.0, 3.0)}")),
                 "no entry for x0 = -1")
    assert_fails(run_local("01_theory", "test_q2_answers", with_code(nb1, "Q2_ANSWERS = {2: 6.0, -1: 1.5, -3: 0.0}")),
                 "give a pair (W, b)")
    assert_fails(run_local("01_theory", "test_q2_answers", with_code(nb1, "Q2_ANSWERS = [1, 2]")), "must be a dict")
    bad_pair = with_code(nb1, "def linearize(weights, biases, x0):\n    return 1.0\n")
    assert_fails(run_local("01_theory", "test_linearize", bad_pair), "pair (W, b)")

    def q3(source):
        nb = source_notebook("01_theory")
        next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "dead_relu_answer").source = source
        return run_local("01_theory", "test_dead_relu_word_limit", with_code(nb1, source), nb)

    assert q3('DEAD_RELU_ANSWER = """Wide networks keep most units active."""').passed
    # The answer is read from the cell's text: a computed value is a claim of the kernel, never counted.
    assert_fails(q3('DEAD_RELU_ANSWER = " ".join(["word"] * 10)'), "string literal")
    lying = ('class Short(str):\n    def encode(self, *a, **k):\n        return b"twelve words " * 6\n'
             '    def split(self, *a, **k):\n        return ["word"] * 12\n'
             'DEAD_RELU_ANSWER = Short("""' + "word " * 150 + '""")')
    assert_fails(q3(lying), "string literal")
    assert_fails(q3('DEAD_RELU_ANSWER = "short"\nif True:\n    DEAD_RELU_ANSWER += " word" * 100'), "string literal")
    assert q3('import math\nDEAD_RELU_ANSWER = """Wide networks keep most units active."""\nn = math.pi').passed
    assert_fails(q3('DEAD_RELU_ANSWER = 42'), "string literal")
    assert_fails(q3('DEAD_RELU_ANSWER = """\n# YOUR CODE HERE\nraise NotImplementedError()\n"""'), "empty")
    assert_fails(q3('DEAD_RELU_ANSWER = """' + "word " * 71 + '"""'), "71 words: the limit is 70")


def test_a_layer_done_by_torch_or_the_checks_earns_nothing(nb2):
    """Read from the cell's source where there is a notebook, seen in the kernel's calls where there is none."""
    from autograder.notebooks import notebook_folders

    borrowed_names = notebook_folders()["02_numpy_convnet"].module("hidden_tests").borrowed_names
    assert borrowed_names("import torch.nn.functional as F\nclass ReLU: pass") == ["torch"]
    assert borrowed_names("from a2lib import checks\nx = checks.digests") == ["a2lib.checks"]
    assert borrowed_names("class ReLU(Module):\n    def forward(self, x):\n        return np.maximum(x, 0)") == []
    by_torch = ("class ReLU(ReLU):\n    def forward(self, x):\n        import torch\n"
                "        self.cache = x\n        return torch.relu(torch.from_numpy(x)).numpy()\n")
    for gid in ("test_relu", "test_relu_hidden"):  # no notebook: the kernel reports the calls it saw
        assert_fails(run_local("02_numpy_convnet", gid, with_code(nb2, by_torch)), "ReLU uses torch", "no points")


def test_a_wrong_matrix_for_a_one_by_one_kernel_gets_a_message_not_a_grader_error():
    """The flipped-kernel probe of a 1x1 kernel keeps a negative stride that numpy calls contiguous."""
    from a2lib.checks import theory

    message = theory.conv_matrix_message(2 * np.eye(9), np.ones((1, 1, 1, 1)), (1, 3, 3), 1, 0)
    assert message is not None and "differs from conv2d" in message
