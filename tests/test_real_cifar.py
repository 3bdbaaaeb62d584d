"""On the real CIFAR-10 copy (a JPEG re-encoding; see README): layout, long tail, a short run."""
import pytest
import torch
from torch import nn

from a2lib.data import load_cifar10, make_long_tailed
from a2lib.evaluate import evaluate
from a2lib.train import fit

pytestmark = pytest.mark.slow


def test_real_layout_and_long_tail(real_root):
    train, test = load_cifar10(real_root, "train"), load_cifar10(real_root, "test")
    assert train.images.shape == (50000, 3, 32, 32) and test.images.shape == (10000, 3, 32, 32)
    assert train.cls_num_list == [5000] * 10 and test.cls_num_list == [1000] * 10
    assert train.classes[0] == "airplane" and train.classes[-1] == "truck"
    lt = make_long_tailed(train, 100)
    assert lt.cls_num_list == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50] and len(lt) == 12406
    means = train.images[:5000].float().div(255).mean(dim=(0, 2, 3))
    assert torch.allclose(means, torch.tensor([0.4914, 0.4822, 0.4465]), atol=0.01)


def test_short_real_run_beats_chance(real_root):
    train = load_cifar10(real_root, "train").subset(range(5000))
    test = load_cifar10(real_root, "test").subset(range(2000))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                          nn.Flatten(), nn.Linear(64 * 16, 10))
    fit(model, train, config={"epochs": 2, "learning_rate": 0.05, "batch_size": 128}, progress=False, device="cpu")
    assert evaluate(model, test).accuracy > 0.3  # chance is 0.1
