"""Data: CIFAR-10 (standard layout, held in memory), long-tailed CIFAR-10, batch loaders, synthetic data."""
from .cifar import CIFAR10_CLASSES, DataNotFoundError, ImageSet, default_root, download_cifar10, load_cifar10
from .loader import CIFAR10_MEAN, CIFAR10_STD, Loader, normalize, random_crop_flip
from .longtail import long_tail_counts, make_long_tailed
from .split import train_val_split
from .synthetic import write_synthetic_cifar10

__all__ = [
    "CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "DataNotFoundError", "ImageSet", "Loader",
    "default_root", "download_cifar10", "load_cifar10", "long_tail_counts", "make_long_tailed",
    "normalize", "random_crop_flip", "train_val_split", "write_synthetic_cifar10",
]
