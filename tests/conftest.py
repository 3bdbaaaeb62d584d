"""Shared fixtures: a small synthetic CIFAR-10 and the real copy. A test that uses the real copy is slow."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

KIT_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = Path(os.environ.get("A2_REAL_DATA", KIT_ROOT / "data"))

# Tests never wait on a download or a GPU, and progress bars stay out of their logs.
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A synthetic CIFAR-10 (100 training and 20 test images per class) in the standard layout."""
    from a2lib.data import write_synthetic_cifar10

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_cifar10(root, n_train_per_class=100, n_test_per_class=20, seed=0)
    return root


def pytest_collection_modifyitems(config, items):
    """``slow`` means exactly "needs the real CIFAR-10 copy or takes minutes": every test that asks for
    ``real_root`` is marked here; tests that take minutes are marked where they are written."""
    for item in items:
        if "real_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def real_root() -> Path:
    """The real CIFAR-10 copy (``make data`` builds it); tests using it are marked slow (above)."""
    folder = REAL_DATA / "cifar-10-batches-py"
    assert (folder / "test_batch").exists(), (
        f"Real CIFAR-10 is missing from {folder}: run `make data` (or set A2_REAL_DATA)."
    )
    return REAL_DATA
