"""The notebooks' workflow helpers (a2lib.workflow): one training helper, the test sets, deferred losses."""
from __future__ import annotations

import torch
from torch import nn

from a2lib.checkpoint import load_checkpoint
from a2lib.config import load_config
from a2lib.data import load_cifar10, make_long_tailed
from a2lib.workflow import checkpoint_evaluation, deferred, long_tailed_sets, train_and_save


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def test_train_and_save_trains_saves_and_records_the_history(synthetic_root, tmp_path):
    data = load_cifar10(synthetic_root, "train").subset(range(200))
    torch.manual_seed(0)
    model = Tiny()
    history = train_and_save(model, tmp_path / "tiny.pt", data, {"epochs": 2, "batch_size": 50}, val_data=data,
                             progress=False)
    assert list(history["epoch"]) == [1, 2] and history["val_acc"].notna().all()
    loaded = Tiny()
    payload = load_checkpoint(tmp_path / "tiny.pt", loaded)
    assert payload["metrics"]["history"]["val_acc"] == history["val_acc"].tolist()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    evaluation = checkpoint_evaluation(Tiny(), tmp_path / "tiny.pt", data)
    assert 0 <= evaluation.accuracy <= 1 and len(evaluation.per_class) == 10


def test_train_and_save_takes_a_loss_that_changes_with_the_epoch(synthetic_root, tmp_path):
    train = make_long_tailed(load_cifar10(synthetic_root, "train"), ratio=10)
    seen = []

    class Recording(nn.CrossEntropyLoss):
        def forward(self, input, target):
            seen.append(self.tag)
            return super().forward(input, target)

    late, early = Recording(), Recording()
    late.tag, early.tag = "late", "early"
    loss = deferred(late, 1, before=early)
    assert loss(0) is early and loss(1) is late and isinstance(deferred(late, 3)(0), nn.CrossEntropyLoss)
    history = train_and_save(Tiny(), tmp_path / "m.pt", train, {"epochs": 2, "batch_size": 64, "augment": False},
                             criterion=loss, progress=False)
    assert list(history["epoch"]) == [1, 2] and history["val_acc"].isna().all()
    assert seen[0] == "early" and seen[-1] == "late"


def test_load_config_scales_the_deferred_epoch_with_the_schedule():
    paper = {"epochs": 200, "steps": [160, 180], "warmup_epochs": 5, "loss": {"beta": 0.9999, "deferred_epoch": 160}}
    short = load_config(paper, epochs=20)
    assert (short.steps, short.warmup_epochs, short.loss["deferred_epoch"]) == ([16, 18], 1, 16)
    assert load_config(paper).loss["deferred_epoch"] == 160
    assert load_config({**paper, "loss": {"deferred_epoch": None}}, epochs=20).loss["deferred_epoch"] is None


def test_long_tailed_sets_fast_mode_keeps_a_tenth_of_each_class(synthetic_root):
    train, test = long_tailed_sets(ratio=10, fast=True, root=synthetic_root)
    full, _ = long_tailed_sets(ratio=10, fast=False, root=synthetic_root)
    assert train.cls_num_list == [max(1, n // 10) for n in full.cls_num_list]
    assert len(test) == 200  # the synthetic test set is smaller than the 1,000-image fast subset


class StopAfter(Exception):
    """A run stopped from outside (a closed laptop, an ended Colab session)."""


def test_a_stopped_run_keeps_its_last_epoch_and_resumes_from_it(synthetic_root, tmp_path, capsys):
    import a2lib.train as train

    data = load_cifar10(synthetic_root, "train").subset(range(200))
    config = {"epochs": 3, "batch_size": 50, "augment": False}
    fit = train.fit

    def stopped_fit(*args, on_epoch_end=None, **kwargs):  # stops right after epoch 2 has been saved
        def then_stop(row):
            on_epoch_end(row)
            if row["epoch"] == 2:
                raise StopAfter
        return fit(*args, on_epoch_end=then_stop, **kwargs)

    torch.manual_seed(0)
    train.fit = stopped_fit
    try:
        with __import__("pytest").raises(StopAfter):
            train_and_save(Tiny(), tmp_path / "tiny.pt", data, config, val_data=data, progress=False)
    finally:
        train.fit = fit
    assert load_checkpoint(tmp_path / "tiny.pt", Tiny())["metrics"]["epochs"] == 2  # saved after every epoch
    assert (tmp_path / "tiny.resume.pt").is_file()

    history = train_and_save(Tiny(), tmp_path / "tiny.pt", data, config, val_data=data, progress=False)
    assert "Resuming run after epoch 2 of 3" in capsys.readouterr().out
    assert list(history["epoch"]) == [1, 2, 3] and not (tmp_path / "tiny.resume.pt").exists()
    assert load_checkpoint(tmp_path / "tiny.pt", Tiny())["metrics"]["history"]["epoch"] == [1, 2, 3]

    (tmp_path / "tiny.resume.pt").write_bytes((tmp_path / "tiny.pt").read_bytes())  # not a run's state
    history = train_and_save(Tiny(), tmp_path / "tiny.pt", data, {**config, "epochs": 1}, val_data=data, progress=False)
    assert list(history["epoch"]) == [1]
