"""Long-tailed CIFAR: keep fewer images of each successive class.

The profiles are those of Cui et al. (CVPR 2019) and the LDAM/CB-loss reference code:
exponential ``n_i = n_max * ratio**(-i / (C - 1))`` (truncated to an integer) and step (the first
half of the classes keep ``n_max``, the rest ``n_max / ratio``). Ratio 100 with the exponential
profile gives 5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50 (12,406 images).
"""
from __future__ import annotations

import torch

from .cifar import ImageSet


def long_tail_counts(n_max: int = 5000, num_classes: int = 10, ratio: float = 100, profile: str = "exp") -> list[int]:
    """Images kept per class (class 0 is the head) for an imbalance ``ratio`` = n_max / n_min."""
    if ratio < 1:
        raise ValueError(f"the imbalance ratio is n_max / n_min >= 1, got {ratio}")
    if profile == "exp":
        return [int(n_max * (1.0 / ratio) ** (i / (num_classes - 1.0))) for i in range(num_classes)]
    if profile == "step":
        half = num_classes // 2
        return [n_max] * half + [int(n_max / ratio)] * (num_classes - half)
    raise ValueError(f"profile must be 'exp' or 'step', not {profile!r}")


def make_long_tailed(data: ImageSet, ratio: float = 100, profile: str = "exp", seed: int = 0) -> ImageSet:
    """A long-tailed subset of a balanced ``data``: a seeded random choice of images per class.

    ``n_max`` is the size of the smallest class in ``data`` (5000 for CIFAR-10's training set).
    """
    counts = data.cls_num_list
    wanted = long_tail_counts(min(counts), data.num_classes, ratio, profile)
    generator = torch.Generator().manual_seed(seed)
    keep = []
    for label, n in enumerate(wanted):
        idx = torch.nonzero(data.labels == label).flatten()
        keep.append(idx[torch.randperm(len(idx), generator=generator)[:n]].sort().values)
    return data.subset(torch.cat(keep))

