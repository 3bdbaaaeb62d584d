"""Reference runs of notebook 4: ResNet-32 on long-tailed CIFAR-10 (ratio 100), cross-entropy against
the class-balanced focal loss, with the notebook's own solution (``reweight``, ``FocalLoss``).

``run_longtail(schedule, data_root, device)`` trains, on the same data in the same run:

* cross-entropy (``configs/resnet32_ce.yaml``);
* CB-Focal (``configs/resnet32_cbfocal.yaml``: gamma from the config) for each beta of the schedule;
* in the full schedule also deferred re-weighting (plain cross-entropy until epoch 160, then CB-Focal
  with the config's beta).

and returns overall and per-class test accuracy of the **last** epoch of each run (never an epoch
or a beta picked on the test set, except the headline ``lt100_cbfocal_acc``, which is the best beta
and says so), with seconds and epochs. ``bench/accuracy.py`` calls it; run alone it prints the
tables and writes ``bench/results/longtail_accuracy_<schedule>.json``; ``--save-checkpoints`` also
stores the cross-entropy and config-beta CB-Focal models as the grader's reference checkpoints
(``autograder/notebooks/04_data_wrangling/reference/checkpoints/lt_ce.pt``, ``lt_cbfocal.pt``).

Schedules (the published anchors are for ``full``: top-1 error 29.64% for softmax cross-entropy,
25.43% for the best class-balanced loss, Cui et al. CVPR 2019):

* ``fast``: a tenth of each class (1,240 images), 1 epoch, beta 0.9999: checks that it runs;
* ``medium``: all 12,406 images, 20 epochs (1 warm-up epoch, lr x0.01 from epoch 16 and x0.0001 from
  18: the full schedule's shape at a tenth of its length, what notebook 4 runs with ``SCHEDULE = "cpu"``),
  the four betas, plus deferred re-weighting from epoch 16: about 8 minutes a run, 50 in all, on a
  2-core CPU with bfloat16 in hardware; a reduced schedule, below the published accuracies;
* ``full``: all 12,406 images, 200 epochs, betas 0.9, 0.99, 0.999, 0.9999, plus deferred
  re-weighting: the paper's schedule, for a GPU.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

KIT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(KIT))

from a2lib.checkpoint import save_checkpoint  # noqa: E402
from a2lib.workflow import deferred, grading_test_set, long_tailed_sets  # noqa: E402
from a2lib.config import load_config  # noqa: E402
from a2lib.data import default_root  # noqa: E402
from a2lib.evaluate import evaluate  # noqa: E402
from a2lib.models import resnet32  # noqa: E402
from a2lib.train import fit  # noqa: E402
from hardware import data_note, describe as hardware  # noqa: E402  (bench/hardware.py)

CONFIGS = KIT / "configs"
REFERENCE_CHECKPOINTS = KIT / "autograder" / "notebooks" / "04_data_wrangling" / "reference" / "checkpoints"
PAPER = {"ce_error": 29.64, "best_class_balanced_error": 25.43}

SCHEDULES = {
    "fast": {"fraction": "1/10 of each class", "fast_data": True, "epochs": 1, "warmup_epochs": 0, "steps": None,
             "betas": [0.9999], "deferred": False},
    # What notebook 4 runs with SCHEDULE = "cpu" (20 epochs): load_config scales the LR steps to 16 and 18 (160 and
    # 180 of 200) and the 5-epoch warm-up to 1.
    "medium": {"fraction": "all", "fast_data": False, "epochs": 20, "warmup_epochs": None, "steps": None,
               "betas": [0.9, 0.99, 0.999, 0.9999], "deferred": True},
    "full": {"fraction": "all", "fast_data": False, "epochs": None, "warmup_epochs": None, "steps": None,
             "betas": [0.9, 0.99, 0.999, 0.9999], "deferred": True},
}


def solution_namespace() -> dict:
    """``reweight`` and ``FocalLoss`` from the source notebook's solution cells."""
    from autograder.tools.solutions import load_solution_namespace

    return load_solution_namespace(KIT / "notebooks" / "04_data_wrangling.ipynb")


def _run(name: str, criterion, config, train, test, device, out: dict, checkpoint: Path | None = None) -> nn.Module:
    model = resnet32()
    start = time.perf_counter()
    history = fit(model, train, criterion=criterion, config=config, device=device, progress=False)
    seconds = time.perf_counter() - start
    evaluation = evaluate(model, test, device=device)
    out[name] = {"accuracy": evaluation.accuracy, "per_class": evaluation.per_class.tolist(), "seconds": seconds,
                 "epochs": int(history.df["epoch"].iloc[-1]), "final_train_acc": float(history.df["train_acc"].iloc[-1])}
    print(f"{name:28s} test accuracy {evaluation.accuracy:.4f}   ({seconds:.0f} s, {out[name]['epochs']} epochs)", flush=True)
    if checkpoint is not None:
        save_checkpoint(checkpoint, model, config, train.classes,
                        {"history": history.df, "test_accuracy": evaluation.accuracy, "test_images": len(test),
                         "cls_num_list": train.cls_num_list})
    return model


def run_longtail(schedule: str = "medium", data_root=None, device=None, save_checkpoints: bool = False,
                 earlier: dict | None = None) -> dict:
    """Train and evaluate the long-tail reference runs of ``schedule``; return the results (see module doc).

    ``earlier``: results this function returned before; its runs are kept, not trained again, if
    they were made with the same schedule (so a run that stopped, or new betas, cost only what is new).
    """
    spec = SCHEDULES[schedule]
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ns = solution_namespace()
    reweight, FocalLoss = ns["reweight"], ns["FocalLoss"]
    train, _ = long_tailed_sets(ratio=100, fast=spec["fast_data"], root=data_root)
    test = grading_test_set(data_root, fast=False)
    overrides = {k: spec[k] for k in ("epochs", "warmup_epochs", "steps") if spec[k] is not None}
    ce_cfg = load_config(CONFIGS / "resnet32_ce.yaml", **overrides)
    cb_cfg = load_config(CONFIGS / "resnet32_cbfocal.yaml", **overrides)
    gamma, config_beta = cb_cfg.loss["gamma"], cb_cfg.loss["beta"]
    ckpt = REFERENCE_CHECKPOINTS if save_checkpoints else None
    print(f"schedule {schedule}: {len(train):,} training images {train.cls_num_list}, {len(test):,} test images, "
          f"{ce_cfg.epochs} epochs, lr steps {ce_cfg.steps}, on {hardware(device)}", flush=True)

    switch = round(160 * cb_cfg.epochs / 200)  # deferred re-weighting: epoch 160 of 200, scaled
    description = (f"{schedule}: {spec['fraction']} of long-tailed CIFAR-10 (ratio 100, exp profile; "
                   f"{len(train):,} images), {ce_cfg.epochs} epochs, warm-up {ce_cfg.warmup_epochs}, "
                   f"lr 0.1, x0.01 after each of epochs {ce_cfg.steps}, batch 128, "
                   f"{'deferred re-weighting from epoch ' + str(switch) + ', ' if spec['deferred'] else ''}"
                   f"wd 2e-4, crop+flip; gamma {gamma}; last epoch on the full 10,000-image test set "
                   f"({data_note(default_root(data_root))})")
    earlier = earlier or {}
    kept = earlier.get("lt100_runs", {}) if earlier.get("longtail_schedule") == description else {}

    runs: dict[str, dict] = {}

    def run(name: str, criterion, config, checkpoint: str | None = None) -> None:
        if name in kept:
            runs[name] = kept[name]
            print(f"{name:28s} test accuracy {kept[name]['accuracy']:.4f}   (kept from an earlier run)", flush=True)
        else:
            _run(name, criterion, config, train, test, device, runs, ckpt and checkpoint and ckpt / checkpoint)

    run("cross-entropy", nn.CrossEntropyLoss(), ce_cfg, "lt_ce.pt")
    for beta in spec["betas"]:
        run(f"cb_focal_beta{beta}", FocalLoss(weight=reweight(train.cls_num_list, beta), gamma=gamma), cb_cfg,
            "lt_cbfocal.pt" if beta == config_beta else None)
    if spec["deferred"]:
        loss = FocalLoss(weight=reweight(train.cls_num_list, config_beta), gamma=gamma)
        run(f"cb_focal_beta{config_beta}_drw{switch}", deferred(loss, switch), cb_cfg)

    betas = {name: r for name, r in runs.items() if name.startswith("cb_focal_beta") and "_drw" not in name}
    best = max(betas, key=lambda name: betas[name]["accuracy"])
    return {
        "longtail_hardware": hardware(device),
        "longtail_schedule": description,
        "lt100_ce_acc": runs["cross-entropy"]["accuracy"],
        "lt100_ce_per_class": runs["cross-entropy"]["per_class"],
        "lt100_cbfocal_acc": betas[best]["accuracy"],
        "lt100_cbfocal_per_class": betas[best]["per_class"],
        "lt100_cbfocal_best": best + " (best beta by test accuracy: for the table only, not a model selection)",
        "lt100_runs": runs,
        "lt100_classes": list(train.classes),
        "lt100_train_counts": train.cls_num_list,
        "lt100_paper_error": PAPER,
        "lt100_seconds": round(sum(r["seconds"] for r in runs.values()), 1),
        "lt100_epochs": ce_cfg.epochs,
    }


def print_table(result: dict) -> None:
    import pandas as pd

    runs = result["lt100_runs"]
    table = pd.DataFrame({name: r["per_class"] for name, r in runs.items()}, index=result["lt100_classes"])
    table.insert(0, "train images", result["lt100_train_counts"])
    table.loc["overall"] = [sum(result["lt100_train_counts"])] + [r["accuracy"] for r in runs.values()]
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"\n{result['longtail_schedule']}\n{result['longtail_hardware']}, {result['lt100_seconds']:.0f} s in all")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedule", choices=sorted(SCHEDULES), default="medium")
    parser.add_argument("--data", help="folder holding cifar-10-batches-py (default: $A2_DATA or ./data)")
    parser.add_argument("--device")
    parser.add_argument("--save-checkpoints", action="store_true",
                        help=f"store the cross-entropy and config-beta CB-Focal models in {REFERENCE_CHECKPOINTS}")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs of the last results file made with the same schedule; train the rest")
    args = parser.parse_args(argv)
    out = KIT / "bench" / "results" / f"longtail_accuracy_{args.schedule}.json"
    earlier = json.loads(out.read_text()) if args.resume and out.exists() else None
    result = run_longtail(args.schedule, args.data or str(KIT / "data"), args.device, args.save_checkpoints, earlier)
    print_table(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    headline = {"hardware": result["longtail_hardware"], "schedule": result["longtail_schedule"]}
    out.write_text(json.dumps(headline | result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
