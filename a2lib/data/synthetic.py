"""Small synthetic data sets in CIFAR-10's file layout, for tests and offline demos.

Each class has its own colour and stripe pattern (orientation and frequency), drawn with a random
phase, brightness and noise per image: a small network learns them in seconds, and everything
downstream (file reading, long-tailing, loaders, training, grading) runs on the real code path.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from .cifar import CIFAR10_CLASSES, FOLDER, TRAIN_FILES


def synthetic_images(labels: np.ndarray, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """uint8 images [N, 3, size, size] whose colour and stripes depend on each label in [0, 10)."""
    n = len(labels)
    hues = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    colours = 0.5 + 0.4 * np.stack([np.cos(hues), np.cos(hues - 2.1), np.cos(hues + 2.1)], 1)  # [10, 3]
    angles = (labels % 5) * (np.pi / 5)
    freqs = 0.25 + 0.35 * (labels // 5)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    proj = np.cos(angles)[:, None, None] * xx + np.sin(angles)[:, None, None] * yy
    phase = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    stripes = 0.5 + 0.5 * np.sin(freqs[:, None, None] * proj + phase)  # [N, H, W]
    brightness = rng.uniform(0.7, 1.1, n)[:, None, None, None]
    img = colours[labels][:, :, None, None] * (0.4 + 0.6 * stripes[:, None]) * brightness
    img = img + rng.normal(0, 0.06, img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _write_batch(path: Path, images: np.ndarray, labels: np.ndarray, name: str) -> None:
    batch = {
        b"batch_label": name.encode(),
        b"labels": labels.tolist(),
        b"data": images.reshape(len(images), -1),
        b"filenames": [f"synthetic_{i:05d}.png".encode() for i in range(len(images))],
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def write_synthetic_cifar10(root: str | os.PathLike, n_train_per_class: int = 100, n_test_per_class: int = 20,
                            seed: int = 0) -> Path:
    """Write a synthetic CIFAR-10 into ``root/cifar-10-batches-py`` and return that folder.

    Same files as the original (five training batches, a test batch, ``batches.meta``), the same
    class names, balanced classes in shuffled order.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    train_labels = rng.permutation(np.repeat(np.arange(10), n_train_per_class))
    train_images = synthetic_images(train_labels, rng)
    for i, (imgs, labs) in enumerate(zip(np.array_split(train_images, 5), np.array_split(train_labels, 5))):
        _write_batch(folder / TRAIN_FILES[i], imgs, labs, f"training batch {i + 1} of 5")
    test_labels = rng.permutation(np.repeat(np.arange(10), n_test_per_class))
    _write_batch(folder / "test_batch", synthetic_images(test_labels, rng), test_labels, "testing batch 1 of 1")
    meta = {b"num_cases_per_batch": len(train_labels) // 5, b"label_names": [c.encode() for c in CIFAR10_CLASSES],
            b"num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return folder
