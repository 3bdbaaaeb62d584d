"""a2lib.models, a2lib.train, a2lib.evaluate, a2lib.checkpoint, a2lib.plots on synthetic data."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from a2lib.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from a2lib.config import TrainConfig, load_config
from a2lib.data import load_cifar10
from a2lib.evaluate import Evaluation, confusion_from_predictions, evaluate
from a2lib.models import build_model, resnet32
from a2lib.train import fit


def small_cnn():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(), nn.Linear(16 * 64, 10))


def test_resnet32_shape_and_size():
    model = resnet32()
    assert sum(p.numel() for p in model.parameters()) == 464_154
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == 32  # the "32" in ResNet-32
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(KeyError, match="notebook"):
        build_model("mymodel")


def test_metrics_on_hand_made_confusion():
    classes = ["a", "b", "c"]
    labels = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    preds = [0, 0, 0, 1, 1, 2, 2, 2, 0, 0]
    conf = confusion_from_predictions(labels, preds, classes)
    assert conf.values.tolist() == [[3, 1, 0], [0, 1, 1], [2, 0, 2]]
    ev = Evaluation(conf)
    assert ev.accuracy == pytest.approx(6 / 10)
    assert ev.per_class.tolist() == pytest.approx([0.75, 0.5, 0.5])
    table = ev.per_class_table()
    assert table.loc["overall", "images"] == 10 and table.loc["overall", "correct"] == 6
    assert list(table.index) == classes + ["overall"]
    empty = Evaluation(confusion_from_predictions([0], [0], ["a", "b"]))
    assert math.isnan(empty.per_class["b"])


def test_lr_schedule():
    cfg = load_config({"epochs": 10, "steps": [5, 8], "lr_gamma": 0.1, "warmup_epochs": 2})
    assert cfg.lr_factor(1.0) == pytest.approx(0.5, abs=1e-3)
    assert [cfg.lr_factor(e) for e in (2, 4.9, 5, 8)] == pytest.approx([1, 1, 0.1, 0.01])
    cosine = load_config({"epochs": 10, "schedule": "cosine"})
    assert [cosine.lr_factor(e) for e in (0, 5, 10)] == pytest.approx([1, 0.5, 0])
    assert load_config({"epochs": 70, "steps": [42, 56]}, epochs=8).steps == [5, 6]
    # The warm-up shrinks with the epochs too (at least one epoch, never the whole run) ...
    paper = {"epochs": 200, "steps": [160, 180], "warmup_epochs": 5}
    assert (load_config(paper, epochs=20).steps, load_config(paper, epochs=20).warmup_epochs) == ([16, 18], 1)
    assert load_config({"epochs": 20, "schedule": "cosine", "warmup_epochs": 4}, epochs=8).warmup_epochs == 2
    assert load_config(paper, epochs=1).warmup_epochs == 0
    # ... unless it is given.
    assert load_config(paper, epochs=20, warmup_epochs=3).warmup_epochs == 3
    with pytest.raises(ValueError, match="Unknown config keys"):
        load_config({"learning_rte": 0.1})


def test_training_learns_and_is_seeded(synthetic_root, tmp_path):
    train = load_cifar10(synthetic_root, "train")
    test = load_cifar10(synthetic_root, "test")
    cfg = {"epochs": 4, "learning_rate": 0.02, "batch_size": 50, "seed": 1}
    torch.manual_seed(0)
    model = small_cnn()
    history = fit(model, train, test, config=cfg, out_dir=tmp_path / "run", progress=False, device="cpu")
    df = history.df
    assert list(df.columns) == ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]
    assert len(df) == 4 and df["train_loss"].iloc[-1] < df["train_loss"].iloc[0]
    assert evaluate(model, test).accuracy > 0.6  # chance is 0.1
    assert (tmp_path / "run" / "best.pt").exists() and (tmp_path / "run" / "history.csv").exists()
    # Same seed, same model init -> the same run.
    torch.manual_seed(0)
    again = fit(small_cnn(), train, test, config=cfg, progress=False, device="cpu")
    assert np.allclose(again.df["train_loss"], df["train_loss"])


def test_criterion_schedule_is_called_per_epoch(synthetic_root):
    train = load_cifar10(synthetic_root, "train").subset(range(200))
    calls = []

    def criterion_at(epoch):
        calls.append(epoch)
        return nn.CrossEntropyLoss(weight=torch.ones(10) * (1 + epoch))

    fit(small_cnn(), train, criterion=criterion_at, config={"epochs": 3, "batch_size": 100}, progress=False, device="cpu")
    assert calls == [0, 1, 2]


class _ViewFlatten(nn.Module):
    """A student's usual flatten: ``x.view(B, -1)``, which a channels-last conv output does not allow."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(self.conv(x).view(x.size(0), -1))


def test_channels_last_with_view_says_what_to_change(synthetic_root):
    train = load_cifar10(synthetic_root, "train").subset(range(100))
    cfg = {"epochs": 1, "batch_size": 50}
    fit(_ViewFlatten(), train, config=cfg, progress=False, device="cpu")  # the default layout accepts .view
    with pytest.raises(RuntimeError, match=r"channels_last: true.*x\.flatten\(1\)") as error:
        fit(_ViewFlatten(), train, config=dict(cfg, channels_last=True), progress=False, device="cpu")
    assert "view size is not compatible" in str(error.value.__cause__)


def test_checkpoint_round_trip(tmp_path):
    model = resnet32()
    path = save_checkpoint(tmp_path / "m.pt", model, TrainConfig(name="x", model="resnet32"), ["a"] * 10,
                           {"acc": np.float64(0.5), "per_class": pd.Series([0.1, 0.2])})
    other = resnet32()
    payload = load_checkpoint(path, other)
    assert payload["config"]["name"] == "x" and payload["metrics"]["acc"] == 0.5
    assert payload["model_class"] == "ResNetCIFAR"
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    # A bare state dict loads too.
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    load_checkpoint(tmp_path / "bare.pt", resnet32())


class _RunsCode:
    def __reduce__(self):
        return (print, ("this would have run",))


@pytest.mark.parametrize("case, message", [
    ("missing", "No checkpoint"),
    ("corrupt", "not a readable PyTorch checkpoint"),
    ("pickle", "Python objects"),
    ("wrong_arch", "does not fit"),
    ("nan", "NaN"),
    ("too_large", "more than"),
])
def test_checkpoint_errors_are_plain(tmp_path, case, message):
    path = tmp_path / "c.pt"
    model = small_cnn()
    if case == "corrupt":
        save_checkpoint(path, model)
        path.write_bytes(path.read_bytes()[:100])
    elif case == "pickle":
        torch.save({"state_dict": model.state_dict(), "evil": _RunsCode()}, path)
    elif case == "wrong_arch":
        save_checkpoint(path, resnet32())
    elif case == "nan":
        model[0].weight.data[0, 0, 0, 0] = float("nan")
        save_checkpoint(path, model)
    elif case == "too_large":
        save_checkpoint(path, model)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path, small_cnn(), max_bytes=1000 if case == "too_large" else 10**9)


def test_plots_return_figures(tmp_path, synthetic_root):
    from a2lib import plots

    hist = {"epoch": [1, 2], "train_loss": [2, 1], "train_acc": [0.3, 0.5], "val_loss": [2.1, 1.2], "val_acc": [0.3, 0.4]}
    fig = plots.learning_curves({"a": hist, "b": hist}, save=tmp_path / "curves.png")
    assert len(fig.axes) == 2 and (tmp_path / "curves.png").stat().st_size > 0
    per_class = pd.Series([0.1] * 10, index=load_cifar10(synthetic_root, "test").classes)
    fig = plots.per_class_bars({"ce": per_class, "focal": per_class * 2}, save=tmp_path / "bars.png")
    assert len(fig.axes[0].patches) >= 20
    conf = confusion_from_predictions([0, 1, 1], [0, 1, 0], ["a", "b"])
    fig = plots.confusion_heatmap(conf)
    assert fig.axes[0].get_xlabel() == "predicted"


def test_config_by_name_and_epoch_files(synthetic_root, tmp_path, monkeypatch):
    from a2lib.config import config_path

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "tiny.yaml").write_text("epochs: 2\nbatch_size: 100\nchannels_last: true\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")  # notebooks find the kit's configs/ one folder up
    assert config_path("tiny").resolve() == (tmp_path / "configs" / "tiny.yaml").resolve()
    cfg = load_config("tiny")
    assert cfg.name == "tiny" and cfg.epochs == 2 and cfg.channels_last
    with pytest.raises(FileNotFoundError, match="nonexistent"):
        load_config("nonexistent")
    rows = []
    train = load_cifar10(synthetic_root, "train").subset(range(300))
    history = fit(small_cnn(), train, config=cfg, out_dir=tmp_path / "run", progress=False, device="cpu",
                  on_epoch_end=rows.append)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert (tmp_path / "run" / "last.pt").exists() and history.best_path == tmp_path / "run" / "best.pt"
    assert len(__import__("pandas").read_csv(tmp_path / "run" / "history.csv")) == 2


def test_seed_everything_seeds_and_asks_for_deterministic_kernels_without_the_compiler():
    """The grader calls this in every kernel: it must not import torch's compiler (about 4 s)."""
    import subprocess
    import sys

    code = ("import sys, torch, numpy as np, random\n"
            "from a2lib.mode import seed_everything\n"
            "seed_everything(3, deterministic=True)\n"
            "a = (random.random(), np.random.rand(), torch.rand(1).item())\n"
            "seed_everything(3)\n"
            "assert a == (random.random(), np.random.rand(), torch.rand(1).item())\n"
            "assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()\n"
            "assert not torch.backends.cudnn.benchmark\n"
            "print('inductor' if 'torch._inductor' in sys.modules else 'no compiler')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "no compiler"


@pytest.fixture
def precision_cache(tmp_path, monkeypatch):
    """``a2lib.device``'s measured precision with its cache in ``tmp_path``, forgotten before and after."""
    from a2lib import device

    monkeypatch.setattr(device, "CACHE", tmp_path / "precision.json")
    monkeypatch.delenv("A2_PRECISION", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setattr(device, "_cpu_can_bfloat16", lambda: True)
    device.cpu_precision.cache_clear()
    yield device
    device.cpu_precision.cache_clear()


def _measured(device, monkeypatch, seconds):
    calls = []
    monkeypatch.setattr(device, "measure_cpu_precisions", lambda: calls.append(1) or dict(seconds))
    device.cpu_precision.cache_clear()
    return device.cpu_precision(), calls


@pytest.mark.parametrize("seconds, chosen", [({"float32": 1.0, "bfloat16": 0.6}, "bfloat16"),
                                             ({"float32": 1.0, "bfloat16": 0.99}, "float32"),
                                             ({"float32": 1.0, "bfloat16": 1.7}, "float32")])
def test_cpu_precision_is_the_measured_faster_one_and_autocast_follows(precision_cache, monkeypatch, seconds, chosen):
    from a2lib import train

    assert _measured(precision_cache, monkeypatch, seconds) == (chosen, [1])
    layer = nn.Linear(4, 3)
    with train._autocast(torch.device("cpu"), enabled=True):
        assert layer(torch.randn(2, 4)).dtype == getattr(torch, chosen)
    assert train.precision_name("cpu") == chosen and train.precision_name("cpu", amp=False) == "float32"


def test_the_measurement_is_cached_per_machine_and_torch_version(precision_cache, monkeypatch):
    device = precision_cache
    assert _measured(device, monkeypatch, {"float32": 1.0, "bfloat16": 0.5}) == ("bfloat16", [1])
    assert _measured(device, monkeypatch, {"float32": 1.0, "bfloat16": 2.0}) == ("bfloat16", [])   # from the cache
    cached = json.loads(device.CACHE.read_text())[device.machine_key()]
    assert cached["seconds_per_step"] == {"float32": 1.0, "bfloat16": 0.5}
    monkeypatch.setattr(torch, "__version__", torch.__version__ + ".other")   # another torch: measured again
    assert _measured(device, monkeypatch, {"float32": 1.0, "bfloat16": 2.0}) == ("float32", [1])


@pytest.mark.parametrize("setting", ["float32", "bfloat16"])
def test_a_setting_forces_either_precision_without_measuring(precision_cache, monkeypatch, setting):
    monkeypatch.setenv("A2_PRECISION", setting)
    assert _measured(precision_cache, monkeypatch, {"float32": 1.0, "bfloat16": 0.5}) == (setting, [])


def test_nothing_is_measured_while_grading_or_without_bfloat16_hardware(precision_cache, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert _measured(precision_cache, monkeypatch, {"float32": 1.0, "bfloat16": 0.5}) == ("float32", [])
    monkeypatch.delenv("NBGRADER_EXECUTION")
    monkeypatch.setattr(precision_cache, "_cpu_can_bfloat16", lambda: False)
    assert _measured(precision_cache, monkeypatch, {"float32": 1.0, "bfloat16": 0.5}) == ("float32", [])


def test_the_timed_trial_runs_both_precisions_and_keeps_the_seed():
    from a2lib.device import measure_cpu_precisions

    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    seconds = measure_cpu_precisions(batch=4, steps=1, rounds=1)
    assert set(seconds) == {"float32", "bfloat16"} and all(0 < s < 60 for s in seconds.values())
    assert torch.rand(1) == expected


def test_the_settings_cell_decides_outside_grading_and_the_grader_decides_while_grading(monkeypatch):
    from a2lib import mode

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv("A2_FAST", "1")
    mode.reset_settings()
    try:
        assert mode.fast_mode() is True                       # no settings cell: the environment
        assert mode.use_settings(fast=False, epochs=3)["fast"] is False   # the cell wins over A2_FAST
        assert mode.fast_mode() is False and mode.setting("epochs") == 3
        monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # grading: the grader's A2_FAST wins
        assert mode.fast_mode() is True and mode.use_settings(fast=False)["fast"] is True
        monkeypatch.setenv("A2_FAST", "0")
        assert mode.fast_mode() is False
    finally:
        mode.reset_settings()
