"""Command line: ``python -m a2lib train|evaluate|download|synthetic``.

    python -m a2lib train configs/resnet32_ce.yaml --data data --epochs 2 --out runs/demo
    python -m a2lib evaluate runs/demo/best.pt --data data
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .checkpoint import CheckpointError, load_checkpoint
from .config import load_config
from .data import DataNotFoundError, load_cifar10, make_long_tailed, train_val_split


def load_training_data(cfg, root):
    """Training (and optional validation) data as a config's ``data`` section describes it.

    ``data`` keys: ``imbalance_ratio`` (long-tailed when > 1), ``profile`` ("exp"/"step"),
    ``n_val`` (validation images split off the training set), ``subset`` (first N images, for
    quick runs).
    """
    spec = cfg.data
    train = load_cifar10(root, "train")
    if spec.get("subset"):
        train = train.subset(range(min(len(train), int(spec["subset"]))))
    if spec.get("imbalance_ratio", 1) > 1:
        train = make_long_tailed(train, spec["imbalance_ratio"], spec.get("profile", "exp"), seed=cfg.seed)
    if spec.get("n_val"):
        return train_val_split(train, int(spec["n_val"]), seed=cfg.seed)
    return train, None


def _print_table(evaluation) -> None:
    print(evaluation.per_class_table().to_string(float_format=lambda v: f"{v:.4f}"))


def cmd_train(args) -> int:
    from .evaluate import evaluate
    from .models import build_model
    from .train import fit

    cfg = load_config(args.config, epochs=args.epochs)
    if not cfg.model:
        print(f"{args.config} names no kit model: train it from its notebook (models you write live there).", file=sys.stderr)
        return 2
    if cfg.loss.get("name", "ce") not in ("ce", "cross_entropy"):
        print(f"{args.config} uses the {cfg.loss['name']!r} loss, which you implement in notebook 4: train it from there.",
              file=sys.stderr)
        return 2
    train, val = load_training_data(cfg, args.data)
    test = load_cifar10(args.data, "test")
    model = build_model(cfg.model, num_classes=train.num_classes)
    out = Path(args.out or Path("runs") / cfg.name)
    history = fit(model, train, val, config=cfg, out_dir=out, progress=not args.quiet)
    print(history.df.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    evaluation = evaluate(model, test)
    print(f"\nTest set, last epoch ({len(test)} images):")
    _print_table(evaluation)
    print(f"\nCheckpoint: {history.best_path}")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate
    from .models import build_model

    payload = load_checkpoint(args.checkpoint)
    name = payload.get("config", {}).get("model")
    if not name:
        print("This checkpoint names no kit model (it holds a model you wrote): evaluate it from its notebook "
              "with a2lib.evaluate.evaluate(model, data).", file=sys.stderr)
        return 2
    model = build_model(name, num_classes=len(payload.get("classes") or [None] * 10))
    load_checkpoint(args.checkpoint, model)
    test = load_cifar10(args.data, "test")
    evaluation = evaluate(model, test)
    print(f"{args.checkpoint} on {len(test)} test images:")
    _print_table(evaluation)
    return 0


def cmd_download(args) -> int:
    from .data import download_cifar10

    print(download_cifar10(args.data))
    return 0


def cmd_synthetic(args) -> int:
    from .data import write_synthetic_cifar10

    print(write_synthetic_cifar10(args.root, args.train_per_class, args.test_per_class, args.seed))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m a2lib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a kit model from a YAML config and print its per-class table")
    p.add_argument("config")
    p.add_argument("--data", help="data folder holding cifar-10-batches-py (default: $A2_DATA or ./data)")
    p.add_argument("--epochs", type=int, help="override the config's epochs (LR steps scale with it)")
    p.add_argument("--out", help="output folder (default runs/<config name>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("evaluate", help="per-class test accuracy of a saved kit-model checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--data")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("download", help="download CIFAR-10 into the data folder")
    p.add_argument("--data")
    p.set_defaults(func=cmd_download)
    p = sub.add_parser("synthetic", help="write a small synthetic CIFAR-10 (same layout) into ROOT")
    p.add_argument("root")
    p.add_argument("--train-per-class", type=int, default=100)
    p.add_argument("--test-per-class", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_synthetic)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataNotFoundError, CheckpointError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
