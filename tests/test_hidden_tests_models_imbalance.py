"""Hidden tests of notebooks 3 and 4, run in-process (``autograder.tools.local``).

Every hidden test passes on the source notebooks' solutions with the reference checkpoints; each
typical mistake of the corpus (``autograder/notebooks/0[34]_*/cases/``) fails exactly the
tests its case expects, with its text; cheats fail (a MyModel that looks its input up in the test
set, an always-equal object, NaN, a non-numeric result) and harmless noise (printing to stderr,
logging, warnings) passes. Models are scored in fast mode on the kit's CIFAR-10 copy (1,000 images).
"""
from __future__ import annotations

import ast
import contextlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder.harness.outputs import PER_CLASS_MIME
from autograder.notebooks import notebook_folders
from autograder.pipeline.feedback import PerClass, StudentFeedback, _fill_references, hints_for, per_class_figure
from autograder.tools.corpus import Case, apply_files, case_files, family_of
from autograder.tools.local import kit_hidden_tests, run_local, solution_namespace, with_code

NB3, NB4 = "03_cnn_design", "04_data_wrangling"


@contextlib.contextmanager
def inside(folder: Path):
    """The snippets' working directory is the submission's folder (in-process: the current one)."""
    saved = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(saved)


def submission_folder(root: Path) -> Path:
    """A folder holding the solution's ``checkpoints/`` (the reference checkpoints, links resolved)."""
    folder = root / "submission"
    (folder / "checkpoints").mkdir(parents=True)
    for stem in (NB3, NB4):
        for path in notebook_folders()[stem].checkpoints_dir.glob("*.pt"):
            shutil.copyfile(path.resolve(), folder / "checkpoints" / path.name)
    return folder


class Grader:
    """Runs a notebook's hidden tests in one submission folder, sharing ``ctx.cache`` as one grading does."""

    def __init__(self, stem: str, folder: Path, data_root: Path, namespace: dict | None = None, cache=None):
        self.stem, self.folder, self.data_root = stem, folder, data_root
        self.namespace = solution_namespace(stem) if namespace is None else namespace
        self.cache = {} if cache is None else cache

    def __call__(self, grade_id: str):
        with inside(self.folder):
            return run_local(self.stem, grade_id, self.namespace, data_root=self.data_root, fast=True, cache=self.cache)

    def all(self) -> dict:
        return {gid: self(gid) for (_, gid) in sorted(kit_hidden_tests(self.stem))}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return submission_folder(tmp_path_factory.mktemp("graded"))


class SolutionVerdicts:
    """Every hidden test of a notebook on the solution (graded on first use), and its scored checkpoints."""

    def __init__(self, folder: Path, data_root: Path):
        self.folder, self.data_root, self.graded = folder, data_root, {}

    def grade(self, stem: str) -> Grader:
        if stem not in self.graded:
            grader = Grader(stem, self.folder, self.data_root)
            self.graded[stem] = (grader.all(), grader.cache)
        return self.graded[stem]

    def verdicts(self, stem: str) -> dict:
        return self.grade(stem)[0]

    def cache(self, stem: str) -> dict:
        return self.grade(stem)[1]


@pytest.fixture(scope="module")
def solution(folder, real_root) -> SolutionVerdicts:
    return SolutionVerdicts(folder, real_root)


# -- the solution ----------------------------------------------------------------------------------
def test_every_graded_test_cell_has_a_hidden_test():
    import nbformat

    from autograder.harness.cells import is_test_cell
    from autograder.locations import SOURCE_NOTEBOOKS

    for stem in (NB3, NB4):
        nb = nbformat.read(SOURCE_NOTEBOOKS / f"{stem}.ipynb", as_version=4)
        cells = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if is_test_cell(c)}
        assert cells == {gid for (_, gid) in kit_hidden_tests(stem)}, stem
        assert not any("HIDDEN TESTS" in c.source or "a2lib.reference" in c.source for c in nb.cells), stem


@pytest.mark.parametrize("stem", [NB3, NB4])
def test_the_solution_passes_every_hidden_test(stem, solution):
    failed = {gid: (v.message or v.grader_error) for gid, v in solution.verdicts(stem).items() if not v.passed}
    assert not failed
    assert not any(v.flags for v in solution.verdicts(stem).values())


def test_graded_models_show_the_reference_beside_theirs(solution):
    """The per-class table has a reference column, and the feedback page's bundle a reference to draw."""
    for stem, gid, model, column in ((NB3, "test_my_model_050", "MyModel", "accuracy  reference"),
                                     (NB3, "test_two_layer_accuracy", "TwoLayerNet", "accuracy  reference"),
                                     (NB4, "test_cbfocal_rare_classes", "ResNet-32/CB-Focal", "yours  CB-Focal reference")):
        verdict = solution.verdicts(stem)[gid]
        assert column in "\n".join(verdict.lines), gid
        bundle = verdict.displays[0][PER_CLASS_MIME]
        assert bundle["model"] == model and set(bundle["reference"]) == set(bundle["per_class"]), gid
        result = PerClass(bundle["model"], bundle["per_class"], bundle["reference"])
        labels = [t.get_text() for t in per_class_figure(result).axes[0].get_legend().get_texts()]
        assert labels == ["yours", "reference"]
    assert not solution.verdicts(NB3)["test_my_model_060"].displays  # one table per model


VIEW_FLATTEN = """
class VanillaCNN(VanillaCNN):
    def forward(self, x):  # flattens with .view, which a channels-last activation refuses
        x = self.pool(torch.relu(self.conv(x)))
        return self.fc(x.view(x.size(0), -1))
"""


def test_a_model_that_refuses_the_channels_last_layout_is_scored_as_the_same_model(solution, folder, real_root):
    """Scoring tries the faster channels-last layout first; a ``.view`` flatten that refuses it is scored in the
    usual layout, with the same per-class accuracy."""
    variant = with_code(solution_namespace(NB3), VIEW_FLATTEN)
    with pytest.raises(RuntimeError, match="view"):
        variant["VanillaCNN"]().to(memory_format=torch.channels_last)(
            torch.zeros(2, 3, 32, 32).contiguous(memory_format=torch.channels_last))
    gid = "test_vanilla_cnn_accuracy"
    theirs = Grader(NB3, folder, real_root, variant)(gid)
    ours = solution.verdicts(NB3)[gid]
    assert theirs.passed and theirs.lines == ours.lines


def test_feedback_fills_a_missing_reference_from_the_reference_files():
    results = [PerClass("MyModel", {"cat": 0.5}), PerClass("Unknown", {"cat": 0.5})]
    _fill_references(results)
    assert 0.5 < results[0].reference["cat"] < 1 and results[1].reference is None


def test_the_focal_sigmoid_hint_is_not_given_for_two_layer_net():
    from autograder.pipeline.feedback import SIGNATURES, CellResult

    def hints(message):
        return hints_for(StudentFeedback("s", [CellResult("nb", "t", 0, 1, message)]))

    sigmoid_hint = next(s.hint for s in SIGNATURES if s.name == "focal_sigmoid")
    two_layer = ("With zero first-layer weights each hidden unit should be sigmoid(0) = 0.5 and each score 3 * 0.5 = "
                 "1.5, got [[0.0, 0.0]]. Is the hidden activation a sigmoid (not a ReLU, which gives 0), and no softmax")
    assert sigmoid_hint not in hints(two_layer)
    assert sigmoid_hint not in hints("TwoLayerNet(48, 16, 10) should be linear(48 -> 16), sigmoid, linear(16 -> 10)")
    assert sigmoid_hint in hints("yours changes: is it the sigmoid (one-vs-all) form? This notebook asks for the softmax form.")


# -- the corpus's typical mistakes -----------------------------------------------------------------
CASES = [p for p in case_files(stems=[NB3, NB4]) if family_of(p.stem) == "mistake"]


def defined_names(source: str) -> set[str]:
    return {n.name for n in ast.parse(source).body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_each_typical_mistake_fails_exactly_its_tests(path, solution, tmp_path, real_root):
    case = Case.from_yaml(path)
    (stem,) = case.notebooks
    namespace, edited = solution_namespace(stem), set()
    for edit in case.edits:
        namespace = with_code(namespace, edit.source)
        edited |= defined_names(edit.source)
    folder = submission_folder(tmp_path)
    apply_files(folder, case.files, case.files_dir)
    # Checkpoints the case changes neither (class nor file) keep the solution's scores: one scoring per session.
    cache = {key: value for key, value in solution.cache(stem).items()
             if not any(name in key[1] for name in edited) and key[2] not in case.files}
    verdicts = Grader(stem, folder, real_root, namespace, cache).all()
    expected_failures = {gid for gid, points in case.expect.get(stem, {}).items() if points == 0}
    assert {gid for gid, v in verdicts.items() if not v.passed} == expected_failures
    assert not any(v.grader_error for v in verdicts.values())
    for gid, text in case.feedback_contains.get(stem, {}).items():
        assert text.lower() in verdicts[gid].message.lower(), (gid, verdicts[gid].message)


# -- cheats and harmless noise ---------------------------------------------------------------------
LOOKUP_MODEL = '''
import hashlib
from a2lib.data import load_cifar10, normalize

class MyModel(nn.Module):
    """Looks each normalized image up in the test set (read where the notebook runs) and returns its label."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        test = load_cifar10(DATA_ROOT, "test")
        x = normalize(test.images)
        self.table = {hashlib.md5(x[i].numpy().tobytes()).digest(): int(test.labels[i]) for i in range(len(x))}

    def forward(self, x):
        labels = [self.table.get(hashlib.md5(image.numpy().tobytes()).digest(), 0) for image in x]
        return torch.nn.functional.one_hot(torch.tensor(labels), 10).float() * self.scale
'''


def test_a_model_that_looks_its_input_up_gets_nothing_and_is_flagged(tmp_path, real_root):
    from a2lib.checkpoint import save_checkpoint

    namespace = with_code(solution_namespace(NB3), f"DATA_ROOT = {str(real_root)!r}\n" + LOOKUP_MODEL)
    folder = submission_folder(tmp_path)
    save_checkpoint(folder / "checkpoints" / "mymodel.pt", namespace["MyModel"]())
    grader = Grader(NB3, folder, real_root, namespace)
    for gid in ("test_my_model_050", "test_my_model_060", "test_my_model_070", "test_my_model_bonus"):
        verdict = grader(gid)
        assert not verdict.passed and "mirrored" in verdict.message and "1.0000 on test images" in verdict.message
        assert verdict.flags and "mirror images" in verdict.flags[0]


class AlwaysEqual:
    """Equal to anything, as a cheat that hopes for a comparison done with ==."""

    def __eq__(self, other):
        return True

    def __float__(self):
        return 1.0


@pytest.mark.parametrize("code, gid, words", [
    ("def reweight(cls_num_list, beta=0.9999):\n    return AlwaysEqual()", "test_reweight_hidden", "where numbers"),
    ("def reweight(cls_num_list, beta=0.9999):\n    return 'the weights'", "test_reweight_hidden", "where numbers"),
    ("def reweight(cls_num_list, beta=0.9999):\n    return torch.full((len(cls_num_list),), float('nan'))",
     "test_reweight_hidden", "NaN"),
    ("class FocalLoss(nn.Module):\n    def __init__(self, weight=None, gamma=0.):\n        super().__init__()\n"
     "    def forward(self, input, target):\n        return AlwaysEqual()", "test_focal_loss_hidden", "where numbers"),
    ("class FocalLoss(nn.Module):\n    def __init__(self, weight=None, gamma=0.):\n        super().__init__()\n"
     "    def forward(self, input, target):\n        return (input * float('nan')).sum()", "test_focal_loss_hidden", "NaN"),
], ids=["reweight-always-equal", "reweight-string", "reweight-nan", "focal-always-equal", "focal-nan"])
def test_cheats_and_non_numbers_fail(code, gid, words, folder, real_root):
    namespace = with_code(solution_namespace(NB4), code)
    namespace["AlwaysEqual"] = AlwaysEqual
    verdict = Grader(NB4, folder, real_root, namespace)(gid)
    assert not verdict.passed and not verdict.grader_error and words.lower() in verdict.message.lower(), verdict.message


NOISY_LOSS = '''
import logging, sys, warnings
_Solution = FocalLoss

class FocalLoss(_Solution):
    """The solution's loss that prints to stderr, logs a warning and warns on every call."""

    def forward(self, input, target):
        print("debug: computing the loss", file=sys.stderr)
        logging.getLogger("student").warning("a warning in the log")
        warnings.warn("a user warning")
        return super().forward(input, target)
'''


def test_a_correct_loss_that_prints_logs_and_warns_passes(folder, real_root):
    grader = Grader(NB4, folder, real_root, with_code(solution_namespace(NB4), NOISY_LOSS))
    with pytest.warns(UserWarning):
        for gid in ("test_focal_loss", "test_focal_loss_hidden"):
            assert grader(gid).passed, gid


def test_a_model_with_nan_scores_fails_in_plain_words(tmp_path, real_root):
    from a2lib.checkpoint import save_checkpoint

    code = ("class VanillaCNN(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.w = nn.Parameter(torch.zeros(1))\n    def forward(self, x):\n"
            "        return torch.full((len(x), 10), float('nan')) * self.w")
    namespace = with_code(solution_namespace(NB3), code)
    folder = submission_folder(tmp_path)
    save_checkpoint(folder / "checkpoints" / "vanilla_cnn.pt", namespace["VanillaCNN"]())
    verdict = Grader(NB3, folder, real_root, namespace)("test_vanilla_cnn_accuracy")
    assert not verdict.passed and "NaN or infinite scores" in verdict.message


def test_focal_cases_have_finite_float32_gradients_for_any_student():
    """Random cases of many students: the solution's float32 loss gives finite values and gradients."""
    focal_cases = notebook_folders()[NB4].module("hidden_tests").focal_cases

    solution = solution_namespace(NB4)["FocalLoss"]
    for student in range(6):
        for case in focal_cases(np.random.default_rng(student)):
            x = torch.tensor(case["logits"], requires_grad=True)
            w = None if case["weight"] is None else torch.as_tensor(case["weight"])
            solution(weight=w, gamma=case["gamma"])(x, torch.as_tensor(case["targets"])).backward()
            assert torch.isfinite(x.grad).all()
            np.testing.assert_allclose(x.grad.numpy(), case["grad"], atol=1e-5, rtol=1e-3)
