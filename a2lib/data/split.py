"""Train/validation split, stratified by class."""
from __future__ import annotations

import torch

from .cifar import ImageSet


def train_val_split(data: ImageSet, n_val: int, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Split off ``n_val`` images for validation, stratified by class (each class keeps its share)."""
    if not 0 < n_val < len(data):
        raise ValueError(f"n_val must be between 1 and {len(data) - 1}, got {n_val}")
    generator = torch.Generator().manual_seed(seed)
    counts = torch.tensor(data.cls_num_list, dtype=torch.float64)
    per_class = torch.floor(counts * n_val / len(data)).long()
    # Hand the images lost to rounding down to the largest classes first.
    for c in torch.argsort(counts, descending=True)[: n_val - int(per_class.sum())]:
        per_class[c] += 1
    train_idx, val_idx = [], []
    for label in range(data.num_classes):
        idx = torch.nonzero(data.labels == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        val_idx.append(idx[: per_class[label]])
        train_idx.append(idx[per_class[label]:])
    return data.subset(torch.cat(train_idx).sort().values), data.subset(torch.cat(val_idx).sort().values)
