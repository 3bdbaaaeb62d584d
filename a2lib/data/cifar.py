"""CIFAR-10 in its standard "python version" layout, held whole in memory as uint8 tensors.

The layout is the one of the original archive (``cifar-10-batches-py/data_batch_1..5``,
``test_batch``, ``batches.meta``: pickled dicts). We read the pickles directly, so a copy that
torchvision's md5 check would refuse (a rebuilt or synthetic one) loads the same way.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]


class DataNotFoundError(FileNotFoundError):
    """CIFAR-10 is not where we looked and could not be downloaded."""


def default_root(root: str | os.PathLike | None = None) -> Path:
    """Where data sets live: ``root``, else ``$A2_DATA``, else ``./data`` or ``../data``.

    The parent folder is tried so that notebooks in ``notebooks/`` find the kit's ``data/``.
    """
    if root is not None:
        return Path(root)
    if os.environ.get("A2_DATA"):
        return Path(os.environ["A2_DATA"])
    for candidate in (Path("data"), Path("..") / "data"):
        if (candidate / FOLDER).is_dir():
            return candidate
    return Path("data")


@dataclass
class ImageSet:
    """A whole image data set in memory.

    Attributes:
        images: uint8 tensor [N, 3, 32, 32] (channels first, like torchvision's ToTensor).
        labels: int64 tensor [N].
        classes: class names, indexed by label.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be a uint8 tensor [N, C, H, W], got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"ImageSet({len(self)} images {tuple(self.images.shape[1:])}, {len(self.classes)} classes)"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def cls_num_list(self) -> list[int]:
        """Number of images of each class, in label order."""
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    def subset(self, indices: Sequence[int] | torch.Tensor) -> "ImageSet":
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ImageSet(self.images[idx], self.labels[idx], list(self.classes))

    def numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """(float64 images [N, 3, 32, 32] scaled to [0, 1], int64 labels [N]) for numpy code."""
        return self.images.numpy().astype(np.float64) / 255.0, self.labels.numpy().copy()


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    # Keys are bytes in the original archive; accept str keys too (files written by other tools).
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}


def read_batches(folder: Path, files: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read pickled batches: (uint8 images [N, 3, 32, 32], int64 labels [N], class names)."""
    images, labels = [], []
    for name in files:
        batch = _unpickle(folder / name)
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64))
    meta = _unpickle(folder / "batches.meta")
    classes = [c.decode() if isinstance(c, bytes) else c for c in meta["label_names"]]
    return np.concatenate(images), np.concatenate(labels), classes


def _missing_message(root: Path) -> str:
    return (
        f"CIFAR-10 was not found in {(root / FOLDER).resolve()} and could not be downloaded.\n"
        f"Put the folder '{FOLDER}' (data_batch_1..5, test_batch, batches.meta, from "
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) into that data folder, or point "
        "to another one with the A2_DATA environment variable or --data DIR."
    )


def download_cifar10(root: str | os.PathLike | None = None) -> Path:
    """Download and extract CIFAR-10 into ``root/cifar-10-batches-py`` through torchvision."""
    import torchvision

    root = default_root(root)
    root.mkdir(parents=True, exist_ok=True)
    try:
        torchvision.datasets.CIFAR10(str(root), train=True, download=True)
    except Exception as err:  # no network, proxy, disk full...: say where the data must go
        raise DataNotFoundError(f"{_missing_message(root)}\n(download failed: {err})") from err
    return root / FOLDER


def load_cifar10(root: str | os.PathLike | None = None, split: str = "train", download: bool = False) -> ImageSet:
    """Load the CIFAR-10 ``split`` ("train": 50,000 images, "test": 10,000) as an :class:`ImageSet`.

    When the files are missing: downloads them if ``download`` is True, else raises
    :class:`DataNotFoundError` saying where to put them.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = default_root(root)
    folder = root / FOLDER
    files = TRAIN_FILES if split == "train" else TEST_FILES
    if not all((folder / f).exists() for f in [*files, "batches.meta"]):
        if not download:
            raise DataNotFoundError(_missing_message(root) + "\n(or pass download=True when online)")
        download_cifar10(root)
    images, labels, classes = read_batches(folder, files)
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), classes)
