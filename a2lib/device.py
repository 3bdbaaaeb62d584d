"""Which device to compute on: the settings cell's ``DEVICE`` where it names one, else CUDA, then
Apple's MPS, then the CPU."""
from __future__ import annotations

import torch

from .mode import setting


def default_device() -> torch.device:
    """The settings cell's ``DEVICE`` (``"cuda"``, ``"mps"``, ``"cpu"``) if set, else the fastest one there is."""
    chosen = setting("device")
    if chosen:
        return torch.device(chosen)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
