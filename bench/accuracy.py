"""The accuracy the reference solution reaches under each schedule, reproduced by one command.

    python bench/accuracy.py --schedule fast|medium|full [--parts mymodel checkpoints longtail]

Parts (all by default):

* ``mymodel``: notebook 3's reference ``MyModel`` (taken from the source notebook's solution) against
  the student design that reached 0.7857 in 70 epochs (LeNet/AlexNet-style, defined below, config
  ``configs/student_design.yaml``), on the same data in the same run: test accuracy after every
  epoch, seconds per epoch, time to 0.7857 and to 0.90, per-class accuracy after the last epoch;
* ``checkpoints``: the reference checkpoints the grader's "solution" submission uses
  (``autograder/notebooks/03_cnn_design/reference/checkpoints/{twolayer,vanilla_cnn,mymodel}.pt``), trained as
  the solution notebook does in full mode, with their per-class test accuracy in their metrics (``a2kit
  reference 03_cnn_design`` scores them as students' checkpoints are into ``cnn_design_accuracy.json``). ``mymodel.pt`` is the final
  epoch of the ``mymodel`` part. Written for the medium and full schedules only;
* ``longtail``: notebook 4's ResNet-32 runs on CIFAR-10-LT, from ``bench/longtail_accuracy.py``
  (``run_longtail(schedule, data_root, device) -> dict``).

Schedules: ``fast`` (CI smoke run on subsets, minutes on a CPU), ``medium`` (CPU: MyModel's 8-epoch
schedule against the student design scaled to 8 epochs, full data; about 25 minutes, plus 25 for the
long-tail part, on a 2-core CPU with bfloat16 in hardware), ``full`` (GPU: MyModel 20 epochs, the
student design its 70; on such a CPU, ``--parts mymodel --models mymodel`` trains the 20 MyModel
epochs in about 40 minutes). Results go to ``bench/results/accuracy_<schedule>.json`` (keys
of parts not run are kept from an earlier run) with a Markdown table beside it; the final epoch is
reported, never the best epoch picked on the test set.
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
from a2lib.config import load_config  # noqa: E402
from a2lib.data import ImageSet, load_cifar10, train_val_split  # noqa: E402
from a2lib.device import default_device  # noqa: E402
from a2lib.evaluate import evaluate  # noqa: E402
from a2lib.train import fit  # noqa: E402
from hardware import data_note, describe as hardware  # noqa: E402  (bench/hardware.py)

RESULTS = KIT / "bench" / "results"
REFERENCE_CHECKPOINTS = KIT / "autograder" / "notebooks" / "03_cnn_design" / "reference" / "checkpoints"
NOTEBOOK3 = KIT / "notebooks" / "03_cnn_design.ipynb"
CONFIGS = KIT / "configs"
REFERENCE_RECIPE = KIT / "bench" / "configs" / "mymodel_reference.yaml"  # the reference MyModel's (not released)
STUDENT_BAR = 0.7857  # the student design's test accuracy after 70 epochs
GOAL = 0.90

# Epochs (and data) per schedule. load_config shrinks MyModel's warm-up with its epochs (20%).
SCHEDULES = {
    "fast": {"mymodel_epochs": 2, "seed_arch_epochs": 2, "train_subset": 2000,
             "test_subset": 1000, "nb3_epochs": 1,
             "description": "fast (CI smoke run): 2,000 training and 1,000 test images, 2 epochs per model"},
    "medium": {"mymodel_epochs": 8, "seed_arch_epochs": 8, "train_subset": None,
               "test_subset": None, "nb3_epochs": None,
               "description": "medium (CPU): all 50,000 training images, MyModel 8 epochs, student design "
                              "8 epochs (its 70-epoch LR steps scaled to 5 and 6)"},
    "full": {"mymodel_epochs": 20, "seed_arch_epochs": 70, "train_subset": None,
             "test_subset": None, "nb3_epochs": None,
             "description": "full (the GPU schedule): all 50,000 training images, MyModel 20 epochs, student design "
                            "70 epochs"},
}


class StudentDesign(nn.Module):
    """The student design MyModel is compared against (0.7857 test accuracy in 70 epochs).

    conv 3->64 k3, ReLU, max-pool 2/2, conv 64->128 k3, ReLU, max-pool 3/2, conv 128->256 k3, ReLU,
    conv 256->64 k1, ReLU, linear 1024->384, ReLU, linear 384->192, ReLU, linear 192->10.
    [B, 3, 32, 32] -> 30 -> 15 -> 13 -> 6 -> 4 -> [B, 64, 4, 4] = 1024 features. 0.86 M parameters.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, 3), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(128, 256, 3), nn.ReLU(),
            nn.Conv2d(256, 64, 1), nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(1024, 384), nn.ReLU(), nn.Linear(384, 192), nn.ReLU(), nn.Linear(192, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


# -- environment ---------------------------------------------------------------------------------
def load_notebook_models(notebook: Path = NOTEBOOK3) -> dict:
    """TwoLayerNet, VanillaCNN and MyModel from the source notebook's solution cells."""
    from autograder.tools.solutions import load_solution_namespace

    ns = load_solution_namespace(notebook, fast=True)
    return {name: ns[name] for name in ("TwoLayerNet", "VanillaCNN", "MyModel")}


def _subset(data: ImageSet, n: int | None) -> ImageSet:
    if not n or n >= len(data):
        return data
    return train_val_split(data, n, seed=0)[1]  # stratified, fixed


def _seconds_to(accuracies: list[float], seconds: list[float], target: float) -> dict:
    cumulative = 0.0
    for epoch, (acc, sec) in enumerate(zip(accuracies, seconds), start=1):
        cumulative += sec
        if acc >= target:
            return {"epoch": epoch, "seconds": round(cumulative, 1)}
    return {"epoch": None, "seconds": None}


def _train_and_test(model: nn.Module, train: ImageSet, test: ImageSet, config, device, run_dir: Path) -> dict:
    """Train with per-epoch test accuracy (no choice is made on it); report the final epoch.

    ``run_dir`` receives the engine's ``best.pt`` (its metrics hold the history so far, so an
    interrupted run can still be read) and ``history.csv``.
    """
    start = time.perf_counter()
    history = fit(model, train, test, config=config, device=device, out_dir=run_dir, progress=True)
    total = time.perf_counter() - start
    evaluation = evaluate(model, test, device=device)
    df = history.df
    accs, secs = df["val_acc"].round(4).tolist(), df["seconds"].round(1).tolist()
    return {
        "test_acc": round(evaluation.accuracy, 4),
        "per_class": [round(v, 4) for v in evaluation.per_class.tolist()],
        "epoch_test_acc": accs,
        "epoch_seconds": secs,
        "total_seconds": round(total, 1),
        "to_student_bar": _seconds_to(accs, secs, STUDENT_BAR),
        "to_090": _seconds_to(accs, secs, GOAL),
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": load_config(config).to_dict(),
        "evaluation": evaluation,
    }


def _describe_run(schedule: str, config, images: int, device: torch.device, root: Path) -> str:
    """One line for the grader's reference table: schedule, settings, hardware and data."""
    cfg = load_config(config)
    shape = (f"warm-up {cfg.warmup_epochs:g} epochs then cosine" if cfg.schedule == "cosine"
             else f"lr x{cfg.lr_gamma:g} at epochs {cfg.steps}")
    return (f"{schedule}: {cfg.epochs} epochs on {images:,} training images, batch {cfg.batch_size}, "
            f"lr {cfg.learning_rate:g}, {shape}, momentum {cfg.momentum:g}{' (Nesterov)' if cfg.nesterov else ''}, "
            f"weight decay {cfg.reg:g}, label smoothing {cfg.label_smoothing:g}; {hardware(device)}; {data_note(root)}")


# -- parts ---------------------------------------------------------------------------------------
def run_mymodel(schedule: str, root: Path, device: torch.device, models: dict,
                which: tuple[str, ...] = ("mymodel", "seed_arch")):
    """MyModel against the student design on the same data, in the same run; yields the results so far.

    ``which`` leaves one of the two out (e.g. the student design's 70 epochs of the full schedule
    on a CPU, where they take about an hour)."""
    s = SCHEDULES[schedule]
    train = _subset(load_cifar10(root, "train"), s["train_subset"])
    test = _subset(load_cifar10(root, "test"), s["test_subset"])
    out: dict = {"classes": test.classes, "train_images": len(train), "test_images": len(test),
                 "mymodel_hardware": hardware(device)}
    runs = [
        ("mymodel", models["MyModel"], load_config(REFERENCE_RECIPE, epochs=s["mymodel_epochs"])),
        ("seed_arch", StudentDesign, load_config(CONFIGS / "student_design.yaml", epochs=s["seed_arch_epochs"])),
    ]
    for key, model_class, config in runs:
        if key not in which:
            continue
        torch.manual_seed(0)
        model = model_class()
        print(f"[{key}] {model_class.__name__}: {sum(p.numel() for p in model.parameters()):,} parameters, "
              f"{config.epochs} epochs on {len(train):,} images", flush=True)
        result = _train_and_test(model, train, test, config, device, KIT / "runs" / f"accuracy_{schedule}" / key)
        evaluation = result.pop("evaluation")
        out[f"{key}_test_acc"] = result.pop("test_acc")
        out[f"{key}_per_class"] = result.pop("per_class")
        out[key] = result
        if key == "mymodel":
            out["mymodel_status"] = f"all {config.epochs} epochs in one run"
        print(f"[{key}] test accuracy per epoch: {result['epoch_test_acc']}", flush=True)
        if key == "mymodel" and schedule != "fast":
            save_checkpoint(REFERENCE_CHECKPOINTS / "mymodel.pt", model, config, train.classes,
                            {"test_acc": evaluation.accuracy, "per_class": evaluation.per_class,
                             "history": {"test_acc": result["epoch_test_acc"]},
                             "schedule": _describe_run(schedule, config, len(train), device, root)})
        yield dict(out)


def record_interrupted(schedule: str, root: Path, device: torch.device, models: dict) -> dict:
    """Results of a ``mymodel`` run stopped before its last epoch, read from its ``best.pt``.

    The engine saves ``best.pt`` (weights and the history so far) whenever the per-epoch test
    accuracy improves; on these runs it rose every epoch, so it holds the last epoch reached. The
    results say how many epochs of the schedule ran; the checkpoint becomes the interim reference.
    """
    from a2lib.checkpoint import load_checkpoint

    s = SCHEDULES[schedule]
    path = KIT / "runs" / f"accuracy_{schedule}" / "mymodel" / "best.pt"
    model = models["MyModel"]()
    payload = load_checkpoint(path, model)
    history = payload["metrics"]["history"]
    test = _subset(load_cifar10(root, "test"), s["test_subset"])
    evaluation = evaluate(model, test, device=device)
    accs = [round(a, 4) for a in history["val_acc"]]
    secs = [round(x, 1) for x in history["seconds"]]
    status = f"interrupted after epoch {len(accs)} of {s['mymodel_epochs']} (the CPU was shared; see hardware)"
    print(f"[mymodel] {status}: test accuracy per epoch {accs}", flush=True)
    if schedule != "fast":
        save_checkpoint(REFERENCE_CHECKPOINTS / "mymodel.pt", model, payload["config"], test.classes,
                        {"test_acc": evaluation.accuracy, "per_class": evaluation.per_class,
                         "history": {"test_acc": accs}, "schedule": f"{schedule}, {status}"})
    return {"classes": test.classes, "mymodel_test_acc": round(evaluation.accuracy, 4),
            "mymodel_per_class": [round(v, 4) for v in evaluation.per_class.tolist()],
            "mymodel_status": status,
            "mymodel": {"epoch_test_acc": accs, "epoch_seconds": secs, "total_seconds": round(sum(secs), 1),
                        "to_student_bar": _seconds_to(accs, secs, STUDENT_BAR), "to_090": _seconds_to(accs, secs, GOAL),
                        "parameters": sum(p.numel() for p in model.parameters()), "config": payload["config"]}}


def run_checkpoints(schedule: str, root: Path, device: torch.device, models: dict) -> dict:
    """TwoLayerNet and VanillaCNN trained as the solution notebook trains them (45,000/5,000 split)."""
    s = SCHEDULES[schedule]
    train_full = load_cifar10(root, "train")
    test = load_cifar10(root, "test")
    if s["train_subset"]:
        train_full = _subset(train_full, s["train_subset"] + 500)
        test = _subset(test, s["test_subset"])
    train, val = train_val_split(train_full, 500 if s["train_subset"] else 5000, seed=0)
    out = {}
    for name, build, config_name in [("twolayer", lambda: models["TwoLayerNet"](3 * 32 * 32, 256, 10), "twolayer"),
                                     ("vanilla_cnn", models["VanillaCNN"], "vanilla_cnn")]:
        torch.manual_seed(0)
        model = build()
        config = load_config(CONFIGS / f"{config_name}.yaml", epochs=s["nb3_epochs"])
        start = time.perf_counter()
        history = fit(model, train, val, config=config, device=device, progress=True)
        seconds = time.perf_counter() - start
        evaluation = evaluate(model, test, device=device)
        out[f"{name}_test_acc"] = round(evaluation.accuracy, 4)
        out[f"{name}_per_class"] = [round(v, 4) for v in evaluation.per_class.tolist()]
        out[f"{name}_seconds"] = round(seconds, 1)
        print(f"[{name}] val {history.df['val_acc'].iloc[-1]:.4f}, test {evaluation.accuracy:.4f}, {seconds:.0f} s", flush=True)
        if schedule != "fast":
            save_checkpoint(REFERENCE_CHECKPOINTS / f"{name}.pt", model, config, train.classes,
                            {"history": history.df.to_dict("list"), "val_acc": history.df["val_acc"].iloc[-1],
                             "test_acc": evaluation.accuracy, "per_class": evaluation.per_class, "schedule": schedule})
    return out


def run_longtail_part(schedule: str, root: Path, device: torch.device, earlier: dict | None = None) -> dict:
    from longtail_accuracy import run_longtail  # bench/longtail_accuracy.py

    # Notebook 4's reference checkpoints are written for the medium and full schedules, like ours.
    return run_longtail(schedule, root, device, save_checkpoints=schedule != "fast", earlier=earlier)


# -- output --------------------------------------------------------------------------------------
def markdown_tables(results: dict) -> str:
    lines = [f"Schedule: {results.get('schedule_description', results.get('schedule'))}.",
             f"Hardware: {results.get('mymodel_hardware', results.get('hardware'))}. Data: {results.get('data')}.", ""]
    if "mymodel" in results:
        if results.get("mymodel_status"):
            lines += [f"MyModel: {results['mymodel_status']}; student design run: "
                      f"{'done' if results.get('seed_arch') else 'pending'}.", ""]
        lines += ["| model | parameters | epochs | test accuracy (final epoch) | s / epoch | epochs (s) to 0.7857 | epochs (s) to 0.90 |",
                  "|---|---|---|---|---|---|---|"]
        for key, label in (("mymodel", "MyModel (reference)"), ("seed_arch", "student design")):
            r = results.get(key)
            if not r:
                continue
            per_epoch = sum(r["epoch_seconds"]) / max(1, len(r["epoch_seconds"]))
            to = [f"{t['epoch']} ({t['seconds']:.0f} s)" if t["epoch"] else "not reached" for t in (r["to_student_bar"], r["to_090"])]
            lines.append(f"| {label} | {r['parameters']:,} | {len(r['epoch_test_acc'])} | {results[key + '_test_acc']:.4f} "
                         f"| {per_epoch:.0f} | {to[0]} | {to[1]} |")
        lines += ["", "Test accuracy after each epoch:", "",
                  "| epoch | " + " | ".join(str(i + 1) for i in range(len(results["mymodel"]["epoch_test_acc"]))) + " |",
                  "|---|" + "---|" * len(results["mymodel"]["epoch_test_acc"])]
        for key, label in (("mymodel", "MyModel"), ("seed_arch", "student design")):
            if results.get(key):
                lines.append(f"| {label} | " + " | ".join(f"{a:.4f}" for a in results[key]["epoch_test_acc"]) + " |")
        classes = results.get("classes", [])
        if classes and "seed_arch_per_class" in results:
            lines += ["", "| class | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
            for key, label in (("mymodel", "MyModel"), ("seed_arch", "student design")):
                lines.append(f"| {label} | " + " | ".join(f"{a:.3f}" for a in results[f"{key}_per_class"]) + " |")
        lines.append("")
    if "twolayer_test_acc" in results:
        lines += ["| reference checkpoint | test accuracy | training seconds |", "|---|---|---|"]
        for name in ("twolayer", "vanilla_cnn"):
            lines.append(f"| {name} | {results[name + '_test_acc']:.4f} | {results[name + '_seconds']:.0f} |")
        lines.append("")
    runs = results.get("lt100_runs") or {}
    if runs:
        classes = results["lt100_classes"]
        lines += [f"Long tail: {results.get('longtail_schedule')}. Hardware: {results.get('longtail_hardware')}.", "",
                  "| CIFAR-10-LT ratio 100, ResNet-32 | test accuracy | 3 rarest classes | " + " | ".join(classes)
                  + " | seconds |", "|---|---|---|" + "---|" * len(classes) + "---|",
                  "| training images | | | " + " | ".join(f"{n:,}" for n in results["lt100_train_counts"]) + " | |"]
        for name, r in runs.items():
            label = ("cross-entropy" if name == "cross-entropy"
                     else name.replace("cb_focal_beta", "CB-Focal beta ").replace("_drw", ", deferred from epoch "))
            lines.append(f"| {label} | {r['accuracy']:.4f} | {sum(r['per_class'][-3:]) / 3:.3f} | "
                         + " | ".join(f"{a:.3f}" for a in r["per_class"]) + f" | {r['seconds']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def write_results(results: dict, schedule: str, out_dir: Path = RESULTS) -> Path:
    """Merge ``results`` into ``accuracy_<schedule>.json`` (re-read first: parts may run side by side)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"accuracy_{schedule}.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update({k: v for k, v in results.items() if v is not None or k not in merged})
    path.write_text(json.dumps(merged, indent=1) + "\n")
    (out_dir / f"accuracy_{schedule}.md").write_text(markdown_tables(merged) + "\n")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedule", choices=sorted(SCHEDULES), default="fast")
    parser.add_argument("--parts", nargs="+", choices=["mymodel", "checkpoints", "longtail"],
                        default=["checkpoints", "mymodel", "longtail"])
    parser.add_argument("--models", nargs="+", choices=["mymodel", "seed_arch"], default=["mymodel", "seed_arch"],
                        help="which networks the mymodel part trains (default both: MyModel and the student design)")
    parser.add_argument("--data", type=Path, default=None, help="folder holding cifar-10-batches-py (default: $A2_DATA or ./data)")
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: the best available)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--resume", action="store_true",
                        help="long-tail part: keep the runs of the last results made with the same schedule")
    parser.add_argument("--record-interrupted", action="store_true",
                        help="record a mymodel run that was stopped early (from runs/accuracy_<schedule>/mymodel/best.pt)")
    args = parser.parse_args(argv)

    from a2lib.data import default_root

    root = default_root(args.data)
    device = torch.device(args.device) if args.device else default_device()
    results = {}
    results.update({"hardware": hardware(device), "schedule": args.schedule,
                    "schedule_description": SCHEDULES[args.schedule]["description"], "data": data_note(root)})
    for key in ("mymodel_test_acc", "seed_arch_test_acc", "lt100_ce_acc", "lt100_cbfocal_acc"):
        results[key] = None  # pending until its part has run (an earlier run's value is kept)
    print(f"{args.schedule} schedule on {results['hardware']}; {results['data']}", flush=True)

    models = load_notebook_models() if {"mymodel", "checkpoints"} & set(args.parts) else {}
    start = time.perf_counter()
    if args.record_interrupted:
        results.update(record_interrupted(args.schedule, root, device, models or load_notebook_models()))
        write_results(results, args.schedule, args.out)
        args.parts = []
    if "checkpoints" in args.parts:
        results.update(run_checkpoints(args.schedule, root, device, models))
        write_results(results, args.schedule, args.out)
    if "mymodel" in args.parts:
        for partial in run_mymodel(args.schedule, root, device, models, tuple(args.models)):
            results.update(partial)
            write_results(results, args.schedule, args.out)
    if "longtail" in args.parts:
        path = args.out / f"accuracy_{args.schedule}.json"
        earlier = json.loads(path.read_text()) if args.resume and path.exists() else None
        results.update(run_longtail_part(args.schedule, root, device, earlier))
    if args.parts:
        results[f"seconds_{'_'.join(args.parts)}"] = round(time.perf_counter() - start, 1)
    path = write_results(results, args.schedule, args.out)
    print(markdown_tables(json.loads(path.read_text())))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
