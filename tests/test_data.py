"""a2lib.data: the standard file layout, long tail, split, batch augmentation."""
import pickle

import numpy as np
import pytest
import torch

from a2lib.data import (CIFAR10_CLASSES, DataNotFoundError, ImageSet, Loader, default_root, load_cifar10,
                        long_tail_counts, make_long_tailed, normalize, random_crop_flip, train_val_split,
                        write_synthetic_cifar10)


def test_synthetic_files_round_trip(synthetic_root):
    folder = synthetic_root / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["batches.meta", "test_batch"] + [f"data_batch_{i}" for i in range(1, 6)])
    # The pickles read back as the original loaders expect (bytes keys, flat rows of 3072).
    with open(folder / "data_batch_1", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    assert raw[b"data"].shape == (200, 3072) and raw[b"data"].dtype == np.uint8
    train = load_cifar10(synthetic_root, "train")
    assert train.images[:200].reshape(200, -1).numpy().tolist() == raw[b"data"].tolist()
    assert train.labels[:200].tolist() == raw[b"labels"]
    assert train.classes == CIFAR10_CLASSES
    assert train.cls_num_list == [100] * 10
    assert load_cifar10(synthetic_root, "test").cls_num_list == [20] * 10


def test_synthetic_is_seeded(tmp_path):
    a = write_synthetic_cifar10(tmp_path / "a", 5, 2, seed=3)
    b = write_synthetic_cifar10(tmp_path / "b", 5, 2, seed=3)
    c = write_synthetic_cifar10(tmp_path / "c", 5, 2, seed=4)
    assert (a / "test_batch").read_bytes() == (b / "test_batch").read_bytes()
    assert (a / "test_batch").read_bytes() != (c / "test_batch").read_bytes()


def test_numpy_view(synthetic_root):
    x, y = load_cifar10(synthetic_root, "test").numpy()
    assert x.dtype == np.float64 and x.shape == (200, 3, 32, 32) and 0 <= x.min() and x.max() <= 1
    assert y.dtype == np.int64 and y.shape == (200,)


def test_long_tail_counts_exact():
    assert long_tail_counts(5000, 10, 100, "exp") == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert sum(long_tail_counts()) == 12406
    assert long_tail_counts(5000, 10, 10, "step") == [5000] * 5 + [500] * 5
    assert long_tail_counts(5000, 10, 1, "exp") == [5000] * 10
    with pytest.raises(ValueError):
        long_tail_counts(profile="linear")


def test_make_long_tailed_is_seeded_subset(synthetic_root):
    train = load_cifar10(synthetic_root)
    lt = make_long_tailed(train, ratio=10, seed=1)
    assert lt.cls_num_list == long_tail_counts(100, 10, 10)
    assert lt.cls_num_list == make_long_tailed(train, ratio=10, seed=1).cls_num_list
    assert torch.equal(lt.images, make_long_tailed(train, ratio=10, seed=1).images)
    assert not torch.equal(lt.images, make_long_tailed(train, ratio=10, seed=2).images)
    # Every kept image is one of the originals, with its own label.
    originals = {bytes(img.numpy()): int(lab) for img, lab in zip(train.images, train.labels)}
    assert all(originals[bytes(img.numpy())] == int(lab) for img, lab in zip(lt.images, lt.labels))


def test_train_val_split_is_stratified_and_disjoint(synthetic_root):
    train = make_long_tailed(load_cifar10(synthetic_root), ratio=10)
    tr, va = train_val_split(train, 100, seed=0)
    assert len(tr) + len(va) == len(train) and len(va) == 100
    assert [a + b for a, b in zip(tr.cls_num_list, va.cls_num_list)] == train.cls_num_list
    expected = np.array(train.cls_num_list) * 100 / len(train)
    assert np.all(np.abs(np.array(va.cls_num_list) - expected) <= 1)
    seen = {bytes(img.numpy()) for img in tr.images}
    assert not any(bytes(img.numpy()) in seen for img in va.images)


def test_crop_flip_matches_definition():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8, generator=g)
    out = random_crop_flip(images, padding=2, generator=torch.Generator().manual_seed(5))
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i in range(len(images)):
        # Each output is some 8x8 window of the padded image, possibly mirrored.
        windows = [padded[i, :, y:y + 8, x:x + 8] for y in range(5) for x in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(2)) for w in windows), i
    flipped = sum(not any(torch.equal(out[i], padded[i, :, y:y + 8, x:x + 8]) for y in range(5) for x in range(5))
                  for i in range(len(images)))
    assert 16 <= flipped <= 48  # about half are mirrored


def test_normalize_and_loader(synthetic_root):
    data = load_cifar10(synthetic_root, "test")
    x = normalize(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8), mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([2.0, 1.0, 0.5]))
    loader = Loader(data, batch_size=64, shuffle=True, seed=0)
    assert len(loader) == 4
    first = [y for _, y in loader]
    assert sum(len(y) for y in first) == 200 and sorted(torch.cat(first).tolist()) == sorted(data.labels.tolist())
    second = torch.cat([y for _, y in loader])
    assert not torch.equal(torch.cat(first), second)  # a new order each pass
    assert len(Loader(data, 64, drop_last=True)) == 3


def test_imageset_validates():
    with pytest.raises(ValueError):
        ImageSet(torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long), ["a"])
    with pytest.raises(ValueError):
        ImageSet(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), ["a"])


def test_missing_data_says_where(tmp_path, monkeypatch):
    monkeypatch.delenv("A2_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match="cifar-10-batches-py.*A2_DATA"):
        load_cifar10(tmp_path / "nowhere")


def test_download_failure_offline_is_clear(tmp_path, monkeypatch):
    import torchvision

    # Nothing listens on port 9 of this machine: the download fails at once, as offline.
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: False)
    with pytest.raises(DataNotFoundError, match="could not be downloaded") as info:
        load_cifar10(tmp_path, download=True)
    assert "download failed" in str(info.value)


def test_default_root_order(tmp_path, monkeypatch):
    monkeypatch.setenv("A2_DATA", str(tmp_path / "env"))
    assert default_root() == tmp_path / "env"
    assert default_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("A2_DATA")
    (tmp_path / "nb").mkdir()
    (tmp_path / "data" / "cifar-10-batches-py").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "nb")
    assert default_root().resolve() == (tmp_path / "data").resolve()
