"""The training engine: any ``nn.Module``, any loss module, SGD with momentum, driven by a config.

Read it top to bottom as torchvision's reference scripts: :func:`train_one_epoch` (one pass over the
training batches: forward, loss, backward, step), :func:`evaluate` (loss and accuracy on held-out
batches, no gradients), and :func:`fit`, which builds the loaders, the optimizer and the learning-rate
schedule from a config and calls the two once per epoch. ``fit`` keeps whole data sets in memory and
makes each batch with a few tensor operations on the compute device (see :mod:`a2lib.data.loader`); it
sets the learning rate every iteration (linear warm-up, then step decay or cosine), uses mixed
precision where the hardware gains, seeds everything, shows tqdm progress, records a per-epoch history
and saves the best checkpoint.
"""
from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import save_checkpoint
from .config import TrainConfig, load_config
from .data import ImageSet, Loader
from .device import cpu_precision, default_device
from .mode import seed_everything

Criterion = nn.Module | Callable[[int], nn.Module]


@dataclass
class History:
    """Per-epoch record of a run: ``df`` has columns epoch, lr, train_loss, train_acc, val_loss,
    val_acc, seconds (val_* are NaN without validation data)."""

    rows: list[dict] = field(default_factory=list)
    best_path: Path | None = None

    @property
    def df(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"])

    def __repr__(self) -> str:
        last = self.rows[-1] if self.rows else {}
        return f"History({len(self.rows)} epochs, last={ {k: round(v, 4) for k, v in last.items()} })"


def cpu_has_fast_bfloat16() -> bool:
    """True where bfloat16 autocast was measured faster than float32 on this CPU (``device.cpu_precision``:
    a short timed trial on first use, cached per machine and torch version; ``A2_PRECISION`` forces either)."""
    return cpu_precision() == "bfloat16"


def cuda_has_tensor_cores(device: torch.device) -> bool:
    """True on GPUs of compute capability 7.0 or newer (Volta on: tensor cores for float16/bfloat16)."""
    return torch.cuda.get_device_capability(device)[0] >= 7


def mixed_precision_dtype(device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype of ``amp: true`` on ``device``, or None for float32.

    Mixed precision only where the hardware gains: CUDA with tensor cores (bfloat16 where supported,
    else float16 with a gradient scaler) and CPUs where bfloat16 was measured faster (:func:`cpu_has_fast_bfloat16`).
    """
    device = torch.device(device)
    if device.type == "cuda" and cuda_has_tensor_cores(device):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_fast_bfloat16():
        return torch.bfloat16
    return None


def precision_name(device: torch.device | str, amp: bool = True) -> str:
    """``"bfloat16"``, ``"float16"`` or ``"float32"``: what ``fit`` computes in on ``device``."""
    dtype = mixed_precision_dtype(device) if amp else None
    return str(dtype or torch.float32).removeprefix("torch.")


def _autocast(device: torch.device, enabled: bool):
    """Mixed precision for the forward pass where :func:`mixed_precision_dtype` says it pays."""
    dtype = mixed_precision_dtype(device) if enabled else None
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _forward(model: nn.Module, x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``model(x)``, with a plain-words message when ``x.view(B, -1)`` meets the channels-last layout."""
    try:
        return model(x)
    except RuntimeError as error:
        if channels_last and "view size is not compatible" in str(error):
            raise RuntimeError(
                "The config asks for `channels_last: true` (a faster memory layout), and the model calls "
                "`.view(...)` on a convolution output, which that layout does not allow. Use "
                "`x.flatten(1)` (or `x.reshape(x.size(0), -1)`, or `nn.Flatten()`) instead of `.view`, "
                "or set `channels_last: false` in the config.") from error
        raise


@dataclass
class Step:
    """What one training step needs besides the model: ``optimizer`` and ``scheduler`` (stepped every
    batch), ``scaler`` (float16's gradient scaler, a no-op otherwise), the autocast settings and the
    memory layout."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    amp: bool = True
    channels_last: bool = False

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format


def train_one_epoch(model: nn.Module, loader: Loader, loss_fn: nn.Module, step: Step, device: torch.device,
                    progress: bool = False, desc: str = "epoch") -> tuple[float, float]:
    """One pass over ``loader``'s batches (images [B, 3, 32, 32], labels [B]): returns (mean loss, accuracy).

    The loss is computed in float32 on the model's logits [B, C] whatever the autocast precision, so
    any loss module, a student's included, sees float32.
    """
    model.train()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for x, y in tqdm(loader, leave=False, disable=not progress, desc=desc, unit="batch"):
        x = x.contiguous(memory_format=step.memory_format)
        with _autocast(device, step.amp):
            logits = _forward(model, x, step.channels_last)
        loss = loss_fn(logits.float(), y)
        step.optimizer.zero_grad(set_to_none=True)
        step.scaler.scale(loss).backward()
        step.scaler.step(step.optimizer)
        step.scaler.update()
        step.scheduler.step()
        # Sums stay on the device: no per-batch synchronisation with the host.
        total_loss += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
    return (total_loss / max(seen, 1)).item(), correct.item() / max(seen, 1)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Loader, criterion: nn.Module, device) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on ``loader``, in float32, as ``a2lib.evaluate`` computes them:
    the history's accuracies are exactly what the saved weights give later, on any hardware."""
    model.eval()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    for x, y in loader:
        logits = model(x)
        total_loss += criterion(logits.float(), y).detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        n += len(y)
    return (total_loss / max(n, 1)).item(), correct.item() / max(n, 1)


def fit(model: nn.Module, train_data: ImageSet, val_data: ImageSet | None = None, criterion: Criterion | None = None,
        config: TrainConfig | dict | str | None = None, out_dir: str | Path | None = None, device=None,
        progress: bool = True, on_epoch_end: Callable[[dict], None] | None = None, resume: str | Path | None = None,
        **overrides) -> History:
    """Train ``model`` on ``train_data`` and return its :class:`History`.

    Args:
        model: any module mapping float images [B, 3, 32, 32] to logits [B, C].
        criterion: a loss module ``(logits [B, C], labels [B]) -> scalar``, or a function
            ``epoch -> loss module`` (e.g. deferred re-weighting switches weights on late);
            default: cross-entropy with the config's label smoothing.
        config: a :class:`TrainConfig`, a dict, or a YAML path; ``overrides`` replace its fields.
        out_dir: where ``last.pt`` and ``history.csv`` are written after every epoch (a run
            stopped early keeps what it did), and ``best.pt``: the epoch of best validation
            accuracy, or the last epoch without validation data (never chosen on test data).
        on_epoch_end: called with each epoch's history row.
        resume: a file where the run's state (weights, optimizer, schedule, history) is saved after every
            epoch: a run stopped midway (a closed laptop, a Colab session that ended) starts again from its
            last finished epoch when called again with the same config; removed when the run ends. (The
            batch order after a resume differs from an uninterrupted run's.)
    """
    cfg = load_config(config, **overrides)
    device = torch.device(device) if device is not None else default_device()
    seed_everything(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model.to(device, memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
    if criterion is None:
        criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    criterion_at = criterion if not isinstance(criterion, nn.Module) else (lambda epoch, c=criterion: c)

    train_loader = Loader(train_data, cfg.batch_size, shuffle=True, augment=cfg.augment, device=device,
                          seed=cfg.seed, drop_last=len(train_data) > cfg.batch_size)
    val_loader = Loader(val_data, 500, device=device) if val_data is not None else None
    step = _step(model, cfg, device, len(train_loader))

    history = History()
    out = Path(out_dir) if out_dir is not None else None
    best = -1.0
    start = _resume(Path(resume), model, step, cfg, history) if resume is not None else 0
    # The epoch bar shows the time each epoch takes and the expected time of the whole run (tqdm's ETA).
    epochs = tqdm(range(start, cfg.epochs), desc=cfg.name, disable=not progress, unit="epoch", initial=start,
                  total=cfg.epochs)
    for epoch in epochs:
        loss_fn = criterion_at(epoch)
        if isinstance(loss_fn, nn.Module):
            loss_fn.to(device)
        start = time.perf_counter()
        lr = step.optimizer.param_groups[0]["lr"]
        train_loss, train_acc = train_one_epoch(model, train_loader, loss_fn, step, device, progress,
                                                desc=f"epoch {epoch + 1}")
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "train_acc": train_acc,
               "val_loss": float("nan"), "val_acc": float("nan")}
        if val_loader is not None:
            row["val_loss"], row["val_acc"] = evaluate(model, val_loader, loss_fn, device)
        row["seconds"] = time.perf_counter() - start
        history.rows.append(row)
        epochs.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_acc']:.3f}",
                           val=f"{row['val_acc']:.3f}" if val_loader is not None else "-")
        if out is not None:
            best = _save_epoch(out, model, cfg, train_data.classes, history, row, best, val_loader is not None)
        if resume is not None:
            _save_resume(Path(resume), model, step, cfg, history)
        if on_epoch_end is not None:
            on_epoch_end(row)
    if resume is not None:
        Path(resume).unlink(missing_ok=True)
    return history


def _save_resume(path: Path, model: nn.Module, step: Step, cfg: TrainConfig, history: History) -> None:
    """The run's state after an epoch, written atomically (a run killed while saving keeps the previous one)."""
    from .checkpoint import _plain

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model_class": type(model).__name__, "config": _plain(cfg.to_dict()), "history": _plain(history.rows),
             "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "optimizer": step.optimizer.state_dict(), "scheduler": step.scheduler.state_dict(),
             "scaler": step.scaler.state_dict()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _resume(path: Path, model: nn.Module, step: Step, cfg: TrainConfig, history: History) -> int:
    """Load a stopped run's state from ``path`` into the model, optimizer and history; returns the epoch to
    start from (0 where there is no such file, or it belongs to another model or config)."""
    from .checkpoint import _plain

    if not path.is_file():
        return 0
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a file cut short: start afresh rather than stop
        print(f"Could not read {path} ({type(error).__name__}): training from the first epoch.")
        return 0
    if state.get("model_class") != type(model).__name__ or state.get("config") != _plain(cfg.to_dict()):
        print(f"{path} belongs to another model or config: training from the first epoch.")
        return 0
    model.load_state_dict(state["model"])
    step.optimizer.load_state_dict(state["optimizer"])
    step.scheduler.load_state_dict(state["scheduler"])
    step.scaler.load_state_dict(state["scaler"])
    history.rows = list(state["history"])
    done = len(history.rows)
    print(f"Resuming {cfg.name} after epoch {done} of {cfg.epochs} (from {path}).")
    return done


def _step(model: nn.Module, cfg: TrainConfig, device: torch.device, steps_per_epoch: int) -> Step:
    """SGD with momentum and weight decay, the config's learning-rate schedule per iteration, the scaler."""
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum,
                                weight_decay=cfg.reg, nesterov=cfg.nesterov and cfg.momentum > 0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: cfg.lr_factor(it / steps_per_epoch))
    use_scaler = cfg.amp and device.type == "cuda" and mixed_precision_dtype(device) == torch.float16
    return Step(optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=use_scaler), cfg.amp, cfg.channels_last)


def _save_epoch(out: Path, model: nn.Module, cfg: TrainConfig, classes, history: History, row: dict,
                best: float, validated: bool) -> float:
    """``last.pt`` and ``history.csv`` after every epoch; ``best.pt`` when the epoch is the best so far
    (validation accuracy, or the latest epoch without validation data). Returns the best score."""
    metrics = dict(row, history=history.df.to_dict("list"))
    last = save_checkpoint(out / "last.pt", model, cfg, classes, metrics)
    history.df.to_csv(out / "history.csv", index=False)
    score = row["val_acc"] if validated else row["epoch"]
    if score > best:
        history.best_path = out / "best.pt"
        shutil.copyfile(last, history.best_path)
        return score
    return best
