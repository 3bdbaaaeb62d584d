"""Training throughput of the a2lib engine against a plain PyTorch loop, on the real CIFAR-10 copy.

Both train the same model with the same optimizer, batch size and augmentation (4-pixel padded
random crop + horizontal flip, normalization). The plain loop is the one of the PyTorch CIFAR
tutorial: ``torchvision.datasets.CIFAR10`` + ``transforms`` + ``DataLoader``, with 0 and with 2 worker processes (the faster one is the baseline).
The engine is ``a2lib.train.fit``: whole data set in memory as uint8, batches augmented with a
few tensor operations. Images per second are measured over the same number of training steps
after warm-up. The engine runs twice, in float32 and in bfloat16 autocast, whatever its own choice
(``a2lib.train.precision_name``: measured on first use by ``a2lib.device.cpu_precision``), so the
result shows whether that choice is the faster one; a short seeded run of the first model in each
precision checks that bfloat16 reaches float32's test accuracy (``bfloat16_reaches_float32_accuracy``).

    python bench/train_speed.py [--data data] [--steps 60] [--models student_design resnet32]

Writes bench/results/train_speed.json; the top-level ``speedup`` is engine / plain loop for the
first model (the course's student design, the size of net students train on their laptops), beside
the engine's chosen precision and that model's float32 and bfloat16 speeds.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import unittest.mock
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from a2lib.data import CIFAR10_MEAN, CIFAR10_STD, default_root, load_cifar10  # noqa: E402
from a2lib.models import resnet32  # noqa: E402
from a2lib import train as engine_module  # noqa: E402
from a2lib.train import fit, precision_name  # noqa: E402
from hardware import describe  # noqa: E402  (bench/hardware.py)

RESULTS = Path(__file__).resolve().parent / "results" / "train_speed.json"
BATCH = 128


def student_design() -> nn.Module:
    """The student design of the course (0.7857 in 70 epochs): three conv layers, three linear."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 3), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(64, 128, 3), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(128, 256, 3), nn.ReLU(), nn.Conv2d(256, 64, 1), nn.ReLU(), nn.Flatten(),
        nn.Linear(1024, 384), nn.ReLU(), nn.Linear(384, 192), nn.ReLU(), nn.Linear(192, 10),
    )


MODELS = {"student_design": student_design, "resnet32": resnet32}


class CIFAR10Local(torchvision.datasets.CIFAR10):
    """torchvision's CIFAR10 without the md5 check (the local copy is a rebuilt one)."""

    def _check_integrity(self) -> bool:
        return True


def plain_loop(make_model, root: Path, steps: int, warmup: int, workers: int) -> float:
    """Images/s of the tutorial-style loop over ``steps`` steps after ``warmup`` steps."""
    tf = transforms.Compose([
        transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD),
    ])
    dataset = CIFAR10Local(str(root), train=True, transform=tf)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers, drop_last=True)
    torch.manual_seed(0)
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    criterion = nn.CrossEntropyLoss()
    model.train()
    start = None
    for i, (x, y) in enumerate(loader):
        if i == warmup:
            start = time.perf_counter()
        if i == warmup + steps:
            break
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * BATCH / (time.perf_counter() - start)


def forced_bfloat16():
    """bfloat16 autocast on this CPU whatever the engine would choose (to measure what it gives)."""
    return unittest.mock.patch.object(engine_module, "cpu_has_fast_bfloat16", lambda: True)


def engine(make_model, root: Path, steps: int, warmup: int, precision: str = "float32") -> float:
    """Images/s of ``a2lib.train.fit`` over ``steps`` steps after ``warmup`` steps (one epoch each),
    in ``precision``: "float32" or "bfloat16" (autocast)."""
    train = load_cifar10(root, "train")
    torch.manual_seed(0)
    model = make_model()
    bf16 = precision == "bfloat16"
    cfg = dict(batch_size=BATCH, learning_rate=0.01, momentum=0.9, reg=5e-4, device="cpu", progress=False, amp=bf16)
    with forced_bfloat16() if bf16 else contextlib.nullcontext():
        fit(model, train.subset(range(warmup * BATCH)), epochs=1, **cfg)
        start = time.perf_counter()
        fit(model, train.subset(range(steps * BATCH)), epochs=1, **cfg)
    return steps * BATCH / (time.perf_counter() - start)


ACCURACY_TOLERANCE = 0.03   # bfloat16's short-run test accuracy may fall this far below float32's


LEARNED = 0.2   # a short run that stays below this test accuracy (chance: 0.1) learned nothing to compare


def short_run_accuracy(make_model, root: Path, precision: str, n_train: int = 4000, n_test: int = 2000,
                       epochs: int = 3) -> float:
    """Test accuracy after a short seeded run (``epochs`` over the first ``n_train`` training images,
    ``n_test`` test images) in ``precision``: the check that bfloat16 learns as float32 does."""
    from a2lib.evaluate import evaluate

    train, test = load_cifar10(root, "train"), load_cifar10(root, "test")
    torch.manual_seed(0)
    model = make_model()
    bf16 = precision == "bfloat16"
    with forced_bfloat16() if bf16 else contextlib.nullcontext():
        fit(model, train.subset(range(n_train)), epochs=epochs, batch_size=64, learning_rate=0.05, momentum=0.9,
            reg=5e-4, device="cpu", progress=False, amp=bf16, seed=0)
    return evaluate(model, test.subset(range(n_test)), "cpu").accuracy


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the best of each is kept")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    root = default_root(args.data)
    precision = precision_name("cpu")  # the engine's own choice on this CPU (amp: true)
    rows = []
    for name in args.models:
        # Rounds interleave the loops and each keeps its best round, so that a burst of other
        # work on the machine slows one round, not one contender.
        plain, speeds = {0: 0.0, 2: 0.0}, {"float32": 0.0, "bfloat16": 0.0}
        for _ in range(args.repeats):
            for w in plain:
                plain[w] = max(plain[w], plain_loop(MODELS[name], root, args.steps, args.warmup, w))
            for p in speeds:
                speeds[p] = max(speeds[p], engine(MODELS[name], root, args.steps, args.warmup, p))
        # The baseline is the faster of the tutorial's two worker settings on this machine.
        best, fast = max(plain.values()), speeds[precision]
        rows.append({"model": name, "plain_images_per_s_0_workers": round(plain[0], 1),
                     "plain_images_per_s_2_workers": round(plain[2], 1), "plain_images_per_s": round(best, 1),
                     "engine_images_per_s": round(fast, 1), "speedup": round(fast / best, 3),
                     "engine_float32_images_per_s": round(speeds["float32"], 1),
                     "engine_bfloat16_images_per_s": round(speeds["bfloat16"], 1),
                     "speedup_float32": round(speeds["float32"] / best, 3),
                     "chosen_precision_is_faster": fast >= max(speeds.values())})
    print(f"{'model':<16}{'plain, 0 workers':>18}{'plain, 2 workers':>18}{'engine, fp32':>14}{'engine, bf16':>14}"
          f"{'speedup':>9}  (images/s; engine precision: {precision})")
    for r in rows:
        print(f"{r['model']:<16}{r['plain_images_per_s_0_workers']:>18.1f}{r['plain_images_per_s_2_workers']:>18.1f}"
              f"{r['engine_float32_images_per_s']:>14.1f}{r['engine_bfloat16_images_per_s']:>14.1f}{r['speedup']:>9.2f}")
    head = rows[0]
    # The same accuracy in bfloat16: a short run of the first model in each precision.
    accuracy = {p: round(short_run_accuracy(MODELS[head["model"]], root, p), 4) for p in ("float32", "bfloat16")}
    # bfloat16 must lose nothing that matters: at least float32's accuracy less the tolerance, on a run that learned
    same_accuracy = accuracy["float32"] >= LEARNED and accuracy["bfloat16"] >= accuracy["float32"] - ACCURACY_TOLERANCE
    print(f"short run ({head['model']}): test accuracy float32 {accuracy['float32']:.4f}, "
          f"bfloat16 {accuracy['bfloat16']:.4f} (bfloat16 reaches float32's, less {ACCURACY_TOLERANCE}: {same_accuracy})")
    result = {
        "speedup": head["speedup"],
        "speedup_model": head["model"],
        "hardware": describe(),
        "engine_precision": precision,
        "float32_images_per_s": head["engine_float32_images_per_s"],
        "bfloat16_images_per_s": head["engine_bfloat16_images_per_s"],
        "chosen_precision_is_faster": all(r["chosen_precision_is_faster"] for r in rows),
        "precision_choice": "measured on first use (a2lib.device.cpu_precision), cached per machine and torch version",
        "short_run_accuracy": accuracy, "bfloat16_reaches_float32_accuracy": same_accuracy,
        "data": "CIFAR-10 JPEG copy (see ../shared/cifar10/README.md)",
        "batch_size": BATCH, "steps": args.steps, "repeats": args.repeats,
        "models": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"speedup (engine / plain loop, {rows[0]['model']}): {rows[0]['speedup']:.2f}  -> {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
