"""A student's walk through the released notebooks 3 and 4, in fast mode, on a synthetic CIFAR-10.

Each notebook runs three times from the release zip's folder, as a student runs it (the settings cell
set to ``FAST = True``, *Run All* with errors shown, the way JupyterLab goes on cell by cell):

* **unsolved**: every error is an exercise's named stub (``... not written yet``) or a check's message
  in plain words (an ``AssertionError``), nothing else (no ``NameError``, no torch error);
* **solved** (the source's solutions): no error, no warning, and each figure shown exactly once where
  it belongs;
* **typical mistakes**: each shows its check's message in the course's words.
"""
from __future__ import annotations

import shutil

import nbformat
import pytest

from autograder.harness.cells import grade_id, is_test_cell
from autograder.tools.corpus import solution_notebook
from notebook_settings import with_settings

STEMS = ("03_cnn_design", "04_data_wrangling")
# Figures each cell shows once in the solved run (every other cell shows none).
FIGURES = {"03_cnn_design": {"sample_images": 1, "train_two_layer": 1, "train_vanilla_cnn": 1, "train_my_model": 1,
                             "confusion_matrix": 1},
           "04_data_wrangling": {"load_data": 1, "train_ce": 1, "train_cbfocal": 1, "results_plots": 4}}
WRONG_FLATTEN = """class VanillaCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 32, kernel_size=7)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * 14 * 14, 10)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))
"""
NO_EVAL_MODE = """def train_one_epoch(model, loader, optimizer, loss_fn):
    model.train()
    total, seen = 0.0, 0
    for x, y in loader:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total, seen = total + loss.item() * len(y), seen + len(y)
    return total / seen


def evaluate(model, loader):
    with torch.no_grad():
        return sum((model(x).argmax(1) == y).sum().item() for x, y in loader) / sum(len(y) for _, y in loader)
"""
UNNORMALIZED = """def reweight(cls_num_list, beta=0.9999):
    n = torch.as_tensor(cls_num_list, dtype=torch.float64)
    return ((1 - beta) / (1 - beta ** n)).float()
"""
SIGMOID_FOCAL = """class FocalLoss(nn.Module):
    def __init__(self, weight=None, gamma=0.):
        super().__init__()
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))
        self.gamma = gamma

    def forward(self, input, target):
        p = torch.sigmoid(input).gather(1, target[:, None]).squeeze(1)
        loss = -((1 - p) ** self.gamma) * torch.log(p)
        if self.weight is None:
            return loss.mean()
        w = self.weight[target]
        return (w * loss).sum() / w.sum()
"""
# notebook -> {cell edited: new source}, {check cell: words its output must hold}
MISTAKES = {"03_cnn_design": ({"vanilla_cnn": WRONG_FLATTEN, "training_loop": NO_EVAL_MODE},
                              {"test_vanilla_cnn": "a linear layer receives 5,408 numbers per image",
                               "check_training_loop": "model.eval()"}),
            "04_data_wrangling": ({"reweight": UNNORMALIZED, "focal_loss": SIGMOID_FOCAL},
                                  {"test_reweight": "must sum to the number of classes",
                                   "test_focal_loss": "softmax form"})}


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    """A synthetic CIFAR-10 as large as fast mode reads: 3,000 training images, 1,000 test images."""
    from a2lib.data import write_synthetic_cifar10

    root = tmp_path_factory.mktemp("walk-data")
    write_synthetic_cifar10(root, n_train_per_class=300, n_test_per_class=100, seed=0)
    return root


@pytest.fixture(scope="module")
def release():
    from kit_corpus import released_course

    return released_course()


def _run(nb, folder, monkeypatch, synthetic_root):
    from nbclient import NotebookClient

    monkeypatch.setenv("A2_DATA", str(synthetic_root))
    monkeypatch.delenv("A2_FAST", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    with_settings(nb, FAST=True)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def _folder(release, tmp_path):
    folder = tmp_path / "a2"
    shutil.copytree(release.release_dir, folder)
    return folder


def _name(cell) -> str:
    return grade_id(cell) or cell.get("id")


def _errors(nb) -> dict[str, tuple[str, str]]:
    return {_name(c): (o.ename, o.evalue) for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"}


def _text(cell) -> str:
    return "\n".join(o.get("text", "") if o.output_type == "stream" else
                     o.get("evalue", "") if o.output_type == "error" else o.get("data", {}).get("text/plain", "")
                     for o in cell.get("outputs", []))


@pytest.mark.slow
@pytest.mark.parametrize("stem", STEMS)
def test_unsolved_every_exercise_names_itself_and_nothing_else_fails(stem, release, tmp_path, monkeypatch, synthetic_root):
    folder = _folder(release, tmp_path)
    nb = _run(nbformat.read(folder / f"{stem}.ipynb", as_version=4), folder, monkeypatch, synthetic_root)
    errors = _errors(nb)
    assert errors, "an unsolved notebook shows its exercises"
    for cell, (ename, evalue) in errors.items():
        named = ename == "NotImplementedError" and "not written yet" in evalue
        assert named or ename == "AssertionError", f"{stem}/{cell}: {ename}: {evalue}"
    stubs = {evalue.split(":")[0] for ename, evalue in errors.values() if ename == "NotImplementedError"}
    expected = {"03_cnn_design": {"TwoLayerNet.__init__", "train_one_epoch", "VanillaCNN.__init__",
                                  "conv_parameters, dense_parameters",
                                  "MyModel.__init__"},
                "04_data_wrangling": {"reweight", "FocalLoss.forward"}}[stem]
    assert expected <= stubs, stubs


@pytest.mark.slow
@pytest.mark.parametrize("stem", STEMS)
def test_solved_runs_without_error_or_warning_and_shows_each_figure_once(stem, release, tmp_path, monkeypatch,
                                                                         synthetic_root):
    folder = _folder(release, tmp_path)
    source = nbformat.read(release.source_dir / f"{stem}.ipynb", as_version=4)
    nb = _run(solution_notebook(nbformat.read(folder / f"{stem}.ipynb", as_version=4), source), folder, monkeypatch,
              synthetic_root)
    assert _errors(nb) == {}
    warnings = [(_name(c), o.text) for c in nb.cells for o in c.get("outputs", [])
                if o.output_type == "stream" and o.name == "stderr" and "Warning" in o.text]
    assert warnings == []
    stderr_in_tests = [_name(c) for c in nb.cells if is_test_cell(c) and c.cell_type == "code"
                       and any(o.output_type == "stream" and o.name == "stderr" for o in c.get("outputs", []))]
    assert not stderr_in_tests, f"test cells write to stderr (nbgrader would score them 0): {stderr_in_tests}"
    shown = {_name(c): [o["data"]["image/png"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
             for c in nb.cells if c.cell_type == "code"}
    assert {k: len(v) for k, v in shown.items() if v} == FIGURES[stem]
    images = [png for pngs in shown.values() for png in pngs]
    assert len(set(images)) == len(images), "a figure is shown twice"


@pytest.mark.slow
@pytest.mark.parametrize("stem", STEMS)
def test_typical_mistakes_get_their_messages(stem, release, tmp_path, monkeypatch, synthetic_root):
    folder = _folder(release, tmp_path)
    source = nbformat.read(release.source_dir / f"{stem}.ipynb", as_version=4)
    nb = solution_notebook(nbformat.read(folder / f"{stem}.ipynb", as_version=4), source)
    edits, messages = MISTAKES[stem]
    for cell in nb.cells:
        if _name(cell) in edits:
            cell.source = edits[_name(cell)]
    stop = max(i for i, c in enumerate(nb.cells) if _name(c) in messages)
    nb.cells = nb.cells[:stop + 1]  # up to the last check concerned: the training cells are the solved run's
    _run(nb, folder, monkeypatch, synthetic_root)
    for cell in nb.cells:
        if _name(cell) in messages:
            assert messages[_name(cell)] in _text(cell), (_name(cell), _text(cell))
