"""Grading throughput: plain serial ``nbgrader autograde`` against the kit's engine, same submissions.

Part 1, whole submissions (the headline): ``--whole`` (default 8) solution submissions of all four
notebooks with their checkpoints, graded by serial ``nbgrader autograde`` and by ``a2kit grade`` with
2 workers, fast mode. ``seconds_per_submission`` is the engine's wall-clock seconds divided by the
number of submissions; ``class_of_100_minutes`` extrapolates it to 100 submissions (the sample
size is in the file). The per-notebook seconds of one sandboxed grading are listed too, to show
where the time goes.

Part 1b, full mode (as instructors grade): ``--whole-full`` (default 2) whole solution submissions
graded by ``a2kit grade`` with 2 workers without ``A2_FAST``: ``seconds_per_submission_full``, with
the per-notebook seconds and the slowest cells of one of them (where the time goes).

Part 2, one notebook: ``N`` copies of a solution submission of one notebook (default ``01_theory``),
graded four ways in the same run, each as its own process from a cold start (as an instructor runs them):

- ``nbgrader``: plain ``nbgrader autograde a2`` with the kit's configuration, serial, no sandbox;
- ``a2kit 1 worker`` and ``a2kit 2 workers``: ``grade_submissions`` (bubblewrap sandbox, Dask);
- ``a2kit 1 worker, no sandbox``: the same with ``unsafe=True``, to isolate the sandbox's cost.

Every run grades from scratch (``force``), in fast mode (``A2_FAST=1``). Reports seconds per
submission, the speed-up over serial nbgrader, and peak memory (largest process of the run; for
the engine also the largest sandboxed kernel).

    python bench/grading.py [--submissions 12] [--notebook 01_theory] [--whole 8] [--whole-full 2] [--data DIR]

The data folder is ``--data``, else ``$A2_DATA``, else the kit's ``data/``.

It also measures the machine's own ceiling for two processes: the same CPU-bound Python loop run
once alone and twice side by side (``cpu_parallel_ceiling`` = 2 x alone / side by side; 2.0 on two
real cores, less where the cores are shared).

Writes bench/results/grading.json with top-level ``seconds_per_submission``, ``seconds_per_submission_full`` and
``class_of_100_minutes`` (part 1), ``speedup_2_workers`` (serial nbgrader seconds / ``a2kit`` 2-worker
seconds) and ``sandbox_overhead_s`` (per submission: sandboxed minus unsandboxed 1-worker seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(KIT))
RESULTS = KIT / "bench" / "results" / "grading.json"

from bench.hardware import describe as hardware_line  # noqa: E402 (after the path insert)

# Runs in a fresh process: grade the course with the engine, print the report as JSON.
ENGINE = """
import json, sys
from autograder.engine.course import Course
from autograder.engine.grade import grade_submissions
if __name__ == "__main__":
    course = Course(sys.argv[1])
    fast = sys.argv[5] if len(sys.argv) > 5 else "1"
    report = grade_submissions(course, workers=int(sys.argv[2]), unsafe=sys.argv[3] == "1", force=True,
                               env={"A2_FAST": fast, "A2_DATA": sys.argv[4]}, progress=False)
    print(json.dumps({s: {"status": r.status, "peak_memory_mb": r.peak_memory_mb, "points": r.points,
                          "message": r.message} for s, r in report.results.items()}))
"""


def build_course(root: Path, notebooks: list[str] | None, n: int) -> Path:
    """A course with ``n`` solution submissions of ``notebooks`` (default: all; students s01, s02...)."""
    from autograder.engine.course import Course
    from autograder.locations import SOURCE_NOTEBOOKS as NOTEBOOKS
    from autograder.tools.corpus import Case, build_submission

    names = notebooks or sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    course = Course(root / "course")
    course.sync_source(names=names)
    course.generate_release()
    for i in range(n):
        build_submission(Case("solution", "", "solution", names), course, student=f"s{i + 1:02d}")
    return course.root


def reset(course_root: Path) -> None:
    """Forget every grade (fresh gradebook with the assignment, no autograded files) for a fair rerun."""
    for name in ("autograded", "feedback"):
        shutil.rmtree(course_root / name, ignore_errors=True)
    (course_root / ".a2kit-grading.json").unlink(missing_ok=True)


def timed(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """Run ``cmd``; return (seconds, peak RSS MB of its largest process, stdout)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True, cwd=KIT)
        _, status, usage = os.wait4(proc.pid, 0)  # this run's own rusage (it and its reaped children)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{stdout[-2000:]}\n{stderr[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, stdout


SPIN = "import time\nt = time.perf_counter()\ns = 0\nfor i in range(20_000_000):\n    s += i\nprint(time.perf_counter() - t)\n"


def cpu_parallel_ceiling() -> float:
    """How much faster two CPU-bound processes finish side by side than one after the other."""
    def run(n: int) -> float:
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.DEVNULL) for _ in range(n)]
        for proc in procs:
            proc.wait()
        return time.perf_counter() - start

    alone = min(run(1) for _ in range(2))
    together = min(run(2) for _ in range(2))
    return 2 * alone / together


def nbgrader_command(root: Path) -> list[str]:
    db = root / "gradebook.db"
    return [sys.executable, "-m", "nbgrader", "autograde", "a2", "--force",
            f"--config={KIT / 'autograder' / 'engine' / 'nbgrader_config.py'}", f"--CourseDirectory.root={root}",
            f"--CourseDirectory.db_url=sqlite:///{db}", "--CourseDirectory.course_id=a2-course-kit"]


def execution_stamps(root: Path, student: str) -> dict[str, list[tuple[object, dict]]]:
    """``{notebook: [(cell, {timestamp name: datetime})]}``: nbgrader's execution timestamps in the autograded copy."""
    import nbformat
    from datetime import datetime

    out = {}
    for path in sorted((root / "autograded" / student / "a2").glob("*.ipynb")):
        out[path.stem] = [(cell, {k: datetime.fromisoformat(v.replace("Z", "+00:00"))
                                  for k, v in cell.metadata.get("execution", {}).items()
                                  if isinstance(v, str) and v[:2] == "20"})
                          for cell in nbformat.read(path, as_version=4).cells]
    return out


def notebook_seconds(stamps: dict) -> dict[str, float]:
    """Seconds each notebook took (first to last timestamp of :func:`execution_stamps`)."""
    out = {}
    for notebook, cells in stamps.items():
        times = [t for _, cell_stamps in cells for t in cell_stamps.values()]
        out[notebook] = round((max(times) - min(times)).total_seconds(), 1) if times else None
    return out


def slowest_cells(stamps: dict, top: int = 8) -> list[dict]:
    """The cells that took longest (:func:`execution_stamps`): where the time goes."""
    cells = []
    for notebook, executed in stamps.items():
        for cell, e in executed:
            start, end = e.get("iopub.execute_input") or e.get("shell.execute_reply.started"), e.get("shell.execute_reply")
            if start and end:
                gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
                cells.append({"notebook": notebook, "cell": gid or (cell.source.strip().splitlines() or [""])[0][:60],
                              "seconds": round((end - start).total_seconds(), 1)})
    return sorted(cells, key=lambda c: -c["seconds"])[:top]


def run_plan(root: Path, pristine: Path, plan: list[tuple[str, list[str]]], n: int, env: dict,
             label: str = "") -> dict:
    """Each ``(name, command)`` of ``plan`` on a fresh copy of the course's gradebook: seconds, memory, points."""
    runs = {}
    for name, cmd in plan:
        reset(root)
        shutil.copy2(pristine, root / "gradebook.db")
        seconds, peak, stdout = timed(cmd, env)
        run = {"seconds": round(seconds, 2), "seconds_per_submission": round(seconds / n, 2),
               "peak_process_mb": round(peak)}
        if name.startswith("a2kit"):
            report = json.loads(stdout.strip().splitlines()[-1])
            bad = {s: r for s, r in report.items() if r["status"] != "graded"}
            if bad:
                raise RuntimeError(f"{name}: not every submission graded: {bad}")
            run["peak_kernel_mb"] = round(max(r["peak_memory_mb"] for r in report.values()))
            run["points"] = sorted({r["points"] for r in report.values()})
        runs[name] = run
        print(f"{label}{name:28s} {seconds:7.1f} s ({seconds / n:.1f} s each)", flush=True)
    return runs


def whole_submissions(tmp: Path, n: int, env: dict, data: str, fast: bool = True, serial: bool = True) -> dict:
    """Part 1: ``n`` whole solution submissions, serial nbgrader (``serial``) against a2kit with 2 workers,
    in fast mode or (``fast=False``) in full mode, as instructors grade."""
    mode = "1" if fast else "0"
    root = build_course(tmp / ("whole" if fast else "whole-full"), None, n)
    db, pristine = root / "gradebook.db", tmp / f"whole-{mode}.pristine.db"
    shutil.copy2(db, pristine)
    plan = [("nbgrader", nbgrader_command(root))] if serial else []
    plan.append(("a2kit 2 workers", [sys.executable, "-c", ENGINE, str(root), "2", "0", data, mode]))
    runs = run_plan(root, pristine, plan, n, {**env, "A2_FAST": mode},
                    label=f"whole submissions ({'fast' if fast else 'full'} mode), ")
    stamps = execution_stamps(root, "s01")
    runs["a2kit 2 workers"]["seconds_per_notebook_s01"] = notebook_seconds(stamps)
    runs["a2kit 2 workers"]["slowest_cells_s01"] = slowest_cells(stamps)
    return runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``data`` resolved (``--data``, else ``$A2_DATA``, else the kit's ``data/``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=12)
    parser.add_argument("--whole", type=int, default=8, help="whole submissions in part 1 (0: skip it)")
    parser.add_argument("--notebook", default="01_theory")
    parser.add_argument("--whole-full", type=int, default=2,
                        help="whole submissions graded in full mode, as instructors grade (0: skip it; minutes each)")
    parser.add_argument("--data", default=os.environ.get("A2_DATA") or str(KIT / "data"),
                        help="CIFAR-10 folder (default: $A2_DATA, else the kit's data/)")
    args = parser.parse_args(argv)
    args.data = str(Path(args.data).resolve())
    return args


def main() -> None:
    args = parse_args()

    py = sys.executable
    env = {**os.environ, "A2_FAST": "1", "A2_DATA": args.data, "TQDM_DISABLE": "1",
           "PATH": str(Path(py).parent) + os.pathsep + os.environ.get("PATH", "")}
    tmp = Path(tempfile.mkdtemp(prefix="a2kit-bench-"))
    load_at_start = os.getloadavg()
    whole = whole_submissions(tmp, args.whole, env, args.data) if args.whole else {}
    full = whole_submissions(tmp, args.whole_full, env, args.data, fast=False, serial=False) if args.whole_full else {}
    root = build_course(tmp, [args.notebook], args.submissions)
    db = root / "gradebook.db"
    pristine = tmp / "gradebook.pristine.db"
    shutil.copy2(db, pristine)
    n = args.submissions

    plan = [
        ("nbgrader", nbgrader_command(root)),
        ("a2kit 1 worker, no sandbox", [py, "-c", ENGINE, str(root), "1", "1", args.data]),
        ("a2kit 1 worker", [py, "-c", ENGINE, str(root), "1", "0", args.data]),
        ("a2kit 2 workers", [py, "-c", ENGINE, str(root), "2", "0", args.data]),
    ]
    runs = run_plan(root, pristine, plan, n, env)

    ceiling = cpu_parallel_ceiling()
    base = runs["nbgrader"]["seconds"]
    for run in runs.values():
        run["speedup"] = round(base / run["seconds"], 2)
    per_submission = whole["a2kit 2 workers"]["seconds_per_submission"] if whole else None
    result = {
        "seconds_per_submission": per_submission,
        "class_of_100_minutes": round(per_submission * 100 / 60, 1) if whole else None,
        "whole_submissions_sample": args.whole,
        "whole_submissions": whole,
        "seconds_per_submission_full": full["a2kit 2 workers"]["seconds_per_submission"] if full else None,
        "whole_submissions_full_sample": args.whole_full,
        "whole_submissions_full": full,
        "speedup_2_workers": runs["a2kit 2 workers"]["speedup"],
        "sandbox_overhead_s": round((runs["a2kit 1 worker"]["seconds"] - runs["a2kit 1 worker, no sandbox"]["seconds"]) / n, 2),
        "cpu_parallel_ceiling": round(ceiling, 2),
        "submissions": n, "notebook": args.notebook, "mode": "fast (A2_FAST=1)",
        "runs": runs,
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "hardware": hardware_line(),
    }
    if whole:
        print(f"\nseconds_per_submission = {per_submission} (whole submissions, 2 workers, {args.whole} graded; serial "
              f"nbgrader {whole['nbgrader']['seconds_per_submission']}); class_of_100_minutes = "
              f"{result['class_of_100_minutes']}")
    print(f"\n{'run':28s} {'s total':>8s} {'s/subm.':>8s} {'speed-up':>9s} {'peak process MB':>16s} {'peak kernel MB':>15s}")
    for name, run in runs.items():
        print(f"{name:28s} {run['seconds']:8.1f} {run['seconds_per_submission']:8.2f} {run['speedup']:9.2f} "
              f"{run['peak_process_mb']:16.0f} {run.get('peak_kernel_mb', float('nan')):15.0f}")
    print(f"\nspeedup_2_workers = {result['speedup_2_workers']}   sandbox_overhead_s = {result['sandbox_overhead_s']} "
          f"(per submission)\ncpu_parallel_ceiling = {ceiling:.2f} (two CPU-bound processes side by side vs one after "
          f"the other on this machine)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {RESULTS}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
