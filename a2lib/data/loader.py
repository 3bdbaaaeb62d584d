"""Batches from an in-memory :class:`ImageSet`, augmented and normalized a whole batch at a time.

The data set stays a uint8 tensor (on the GPU when there is one, 150 MB for CIFAR-10's training
set); each batch is cropped, flipped and normalized with a few tensor operations instead of one
PIL call per image, so loading is never the bottleneck, on a 2-core laptop or on a GPU.
"""
from __future__ import annotations

import math

import torch

from .cifar import ImageSet

# Per-channel mean and std of CIFAR-10's training images (the values torchvision tutorials use).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def normalize(images: torch.Tensor, mean=CIFAR10_MEAN, std=CIFAR10_STD) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> float32 [B, 3, H, W], scaled to [0, 1] then standardized per channel."""
    mean_t = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return (images.float().div_(255.0) - mean_t).div_(std_t)


def random_crop_flip(images: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard CIFAR augmentation on a batch: zero-pad by ``padding``, crop back at a random
    offset per image, and flip each image horizontally with probability 1/2.

    images: [B, C, H, W] (any dtype) -> [B, C, H, W]. Same distribution as torchvision's
    ``RandomCrop(H, padding)`` + ``RandomHorizontalFlip()`` applied image by image.
    """
    b, c, h, w = images.shape
    device = images.device
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(device)
    flip = (torch.rand(b, generator=generator) < 0.5).to(device)
    rows = dy[:, None] + torch.arange(h, device=device)  # [B, H]
    cols = dx[:, None] + torch.arange(w, device=device)  # [B, W]
    # A flipped image reads its columns right to left.
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(b, device=device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # [B, H, W, C]
    return out.permute(0, 3, 1, 2).contiguous()


class Loader:
    """Iterate over ``data`` in batches of normalized float32 images and int64 labels.

    Args:
        data: the images and labels.
        batch_size: images per batch (the last batch may be smaller unless ``drop_last``).
        shuffle: a new seeded order each pass (pass ``k`` uses seed ``seed + k``).
        augment: random crop with 4-pixel padding + horizontal flip.
        device: where batches are made; the data set is moved there once.
    Yields:
        x float32 [B, 3, 32, 32] and y int64 [B], on ``device``.
    """

    def __init__(self, data: ImageSet, batch_size: int = 128, shuffle: bool = False, augment: bool = False,
                 device: torch.device | str | None = None, seed: int = 0, drop_last: bool = False):
        self.device = torch.device(device or "cpu")
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.seed, self.drop_last, self.passes = seed, drop_last, 0

    def __len__(self) -> int:
        n = len(self.labels) / self.batch_size
        return math.floor(n) if self.drop_last else math.ceil(n)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.passes)
        self.passes += 1
        n = len(self.labels)
        order = torch.randperm(n, generator=generator).to(self.device) if self.shuffle else None
        for i in range(len(self)):
            idx = slice(i * self.batch_size, min(n, (i + 1) * self.batch_size))
            if order is not None:
                idx = order[idx]
            images, labels = self.images[idx], self.labels[idx]
            if self.augment:
                images = random_crop_flip(images, generator=generator)
            yield normalize(images), labels
