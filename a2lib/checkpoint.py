"""Saving and safely loading model checkpoints.

A checkpoint is a dict of plain values (``state_dict``, ``config``, ``classes``, ``metrics``,
``model_class``) so that it loads with ``torch.load(weights_only=True)``: a file that would run
code when unpickled is refused, not executed. Every problem becomes a :class:`CheckpointError`
whose message says in plain words what is wrong and what to do.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

MAX_BYTES = 200 * 1024**2  # no student model in this course needs more than 200 MB


class CheckpointError(Exception):
    """A checkpoint is missing, too large, unsafe, corrupt or does not fit the model."""


def _plain(value: Any) -> Any:
    """Convert metrics (numpy/pandas values, tuples) into types ``weights_only`` accepts."""
    if hasattr(value, "to_dict"):  # pandas Series / DataFrame
        value = value.to_dict()
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config=None, classes=None, metrics=None) -> Path:
    """Save ``model``'s weights with its config, class names and metrics; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if config is not None and hasattr(config, "to_dict"):
        config = config.to_dict()
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_class": type(model).__name__,
        "config": _plain(config or {}),
        "classes": list(classes or []),
        "metrics": _plain(metrics or {}),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint behind
    return path


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None, map_location="cpu",
                    max_bytes: int = MAX_BYTES) -> dict:
    """Load a checkpoint (a dict as saved by :func:`save_checkpoint`, or a bare state dict).

    With ``model``, its weights are loaded into it strictly (every key, every shape).
    Raises :class:`CheckpointError` for a missing, too large, unsafe or corrupt file, for weights
    that do not fit ``model``, and for NaN or infinite weights.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}: run the training cell that saves it, then submit the file with your notebook.")
    size = path.stat().st_size
    if size > max_bytes:
        raise CheckpointError(f"{path} is {size / 1024**2:.0f} MB, more than the {max_bytes / 1024**2:.0f} MB allowed: save only the model's state_dict.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} holds Python objects besides tensors, so it was not loaded (loading it could run code). "
            "Save it with a2lib.checkpoint.save_checkpoint(path, model) or torch.save(model.state_dict(), path)."
            f" ({str(err).splitlines()[0]})"
        ) from None
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?): {err}") from None
    if isinstance(payload, dict) and "state_dict" not in payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        payload = {"state_dict": payload, "model_class": None, "config": {}, "classes": [], "metrics": {}}
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"{path} does not contain a state_dict: save it with a2lib.checkpoint.save_checkpoint(path, model).")
    bad = [k for k, v in payload["state_dict"].items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path} has NaN or infinite weights in {bad[:3]}: training diverged (try a smaller learning rate).")
    if model is not None:
        load_weights(model, payload["state_dict"], source=str(path), saved_class=payload.get("model_class"))
    return payload


def load_weights(model: nn.Module, state_dict: dict, source: str = "the checkpoint", saved_class: str | None = None) -> None:
    """Strictly load ``state_dict`` into ``model``, explaining any mismatch in plain words."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [f"{k}: saved {tuple(state_dict[k].shape)}, model has {tuple(v.shape)}"
             for k, v in expected.items() if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        what = f" (it was saved from a {saved_class})" if saved_class and saved_class != type(model).__name__ else ""
        details = "; ".join(
            part for part in (
                f"missing {missing[:4]}" if missing else "",
                f"unexpected {unexpected[:4]}" if unexpected else "",
                f"wrong shapes {wrong[:3]}" if wrong else "",
            ) if part
        )
        raise CheckpointError(
            f"{source} does not fit {type(model).__name__}{what}: {details}. Did you change the architecture "
            "after saving? Re-run the training cell so the checkpoint matches the model you submit."
        )
    model.load_state_dict(state_dict)

