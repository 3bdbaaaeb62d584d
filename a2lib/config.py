"""Training configurations: one YAML file per experiment in ``configs/``.

A config is flat for the knobs students tune (batch size, learning rate, regularization, epochs,
LR steps, momentum) with two optional sections: ``data`` (which data set, long-tail settings,
validation split) and ``loss`` (settings the notebook reads, e.g. beta and gamma of a
class-balanced focal loss). Unknown keys are an error, so a typo never goes unnoticed.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class TrainConfig:
    """Everything :func:`a2lib.train.fit` needs to know about an experiment."""

    name: str = "run"
    model: str | None = None          # a kit model for the command line ("resnet32"); notebooks pass their own
    batch_size: int = 128
    learning_rate: float = 0.1
    reg: float = 5e-4                 # L2 regularization, applied as SGD weight decay
    momentum: float = 0.9
    nesterov: bool = False
    epochs: int = 10
    schedule: str = "step"            # "step": lr *= lr_gamma at each of `steps`; "cosine": cosine decay to 0
    steps: list[int] = field(default_factory=list)
    lr_gamma: float = 0.1
    warmup_epochs: float = 0          # linear warm-up from ~0 to learning_rate
    label_smoothing: float = 0.0      # used by the default cross-entropy criterion
    augment: bool = True              # random crop (4-pixel padding) + horizontal flip
    amp: bool = True                  # mixed precision where it pays: CUDA with tensor cores, CPUs where measured faster
    # NHWC memory layout: faster convolutions on CPUs and tensor cores, but a model that calls
    # `x.view(B, -1)` on a conv output then fails (use `flatten`), so it is off unless asked for.
    channels_last: bool = False
    seed: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.schedule not in ("step", "cosine"):
            raise ValueError(f"schedule must be 'step' or 'cosine', not {self.schedule!r}")
        if self.batch_size < 1 or self.epochs < 1 or self.learning_rate <= 0:
            raise ValueError("batch_size and epochs must be >= 1 and learning_rate > 0")
        self.steps = sorted(int(s) for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lr_factor(self, epoch_progress: float) -> float:
        """Learning-rate multiplier at a fractional epoch (0 = start of training)."""
        if self.warmup_epochs and epoch_progress < self.warmup_epochs:
            return (epoch_progress + 1e-3) / self.warmup_epochs
        if self.schedule == "cosine":
            import math

            start = self.warmup_epochs
            t = (epoch_progress - start) / max(1e-9, self.epochs - start)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        return self.lr_gamma ** sum(epoch_progress >= s for s in self.steps)


KIT_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def config_path(name: str, search=("configs", "../configs", KIT_CONFIGS)) -> Path:
    """The file of the kit's config ``name`` (e.g. "mymodel"): ``configs/<name>.yaml`` in the
    working folder, its parent (notebooks run from ``notebooks/``), or the kit's checkout."""
    for folder in search:
        path = Path(folder) / f"{name}.yaml"
        if path.is_file():
            return path
    raise FileNotFoundError(f"No config named {name!r}: looked for {name}.yaml in {[str(f) for f in search]}")


def load_config(source: str | os.PathLike | dict | TrainConfig | None = None, **overrides) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file, a config name (see :func:`config_path`), a dict or
    another config, with keyword overrides.

    ``epochs`` given as an override scales the LR steps, the warm-up and the loss's
    ``deferred_epoch`` with it, so a shortened run keeps the shape of its schedule: steps at 42 and
    56 of 70 become 5 and 6 of 8; a 5-epoch warm-up of 200 epochs becomes 1 of 20 (at least one
    epoch, and never the whole run); deferred re-weighting from epoch 160 of 200 starts at 16 of 20.
    """
    if source is None:
        values: dict[str, Any] = {}
    elif isinstance(source, TrainConfig):
        values = source.to_dict()
    elif isinstance(source, dict):
        values = dict(source)
    else:
        path = Path(source)
        if not path.suffix and not path.exists():
            path = config_path(str(source))
        values = yaml.safe_load(path.read_text()) or {}
        values.setdefault("name", path.stem)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"Unknown config keys {sorted(unknown)}; known keys are {sorted(known)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "epochs" in overrides:
        old, new = values.get("epochs", TrainConfig.epochs), overrides["epochs"]
        if values.get("steps") and "steps" not in overrides:
            values["steps"] = [max(1, round(s * new / old)) for s in values["steps"]]
        if values.get("warmup_epochs") and "warmup_epochs" not in overrides:
            values["warmup_epochs"] = min(max(1, round(values["warmup_epochs"] * new / old)), max(0, new - 1))
        loss = values.get("loss") or {}
        if loss.get("deferred_epoch") and "loss" not in overrides:
            values["loss"] = dict(loss, deferred_epoch=round(loss["deferred_epoch"] * new / old))
    values.update(overrides)
    return TrainConfig(**values)
