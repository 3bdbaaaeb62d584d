"""``a2kit demo``: the instructor's whole pipeline on a demo class built from the test corpus.

On a fresh machine (SQLite gradebook, CPU, fast mode), in a course folder of its own:
release -> a folder of LMS-style zips, one per student of the demo class (the solution, the blank
release and one typical mistake per notebook from the corpus; ``--all`` takes every typical
mistake, ``--hostile`` adds the hostile cases) -> collect -> grade (sandboxed, parallel)
-> feedback -> export. It prints the grade table next to the points each case must get, and where
the feedback pages and the CSV are. Exit code 0 when every case got its expected points.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path


from autograder import cli
from autograder.collect import collect
from autograder.corpus import (CORPUS_DIR, Case, autograded_cells, build_submission, check_case, expected_scores,
                               load_cases)
from autograder.course import KIT_ROOT, NOTEBOOKS, Course
from autograder.export import export
from autograder.feedback import generate_feedback


def demo_cases(available: list[str], hostile: bool = False, corpus: Path = CORPUS_DIR,
               every_mistake: bool = False) -> tuple[list[Case], list[str]]:
    """The demo class: the two bases, one typical mistake per notebook (every one with
    ``every_mistake``), and the hostile, cheating and honest-but-chatty cases with ``hostile``."""
    cases, skipped = load_cases(available, corpus)
    chosen, seen = [], set()
    for case in cases:
        if case.name.startswith(("hostile_", "cheat_", "honest_")):
            keep = hostile
        elif case.name in ("solution", "release") or every_mistake:
            keep = True
        else:
            keep = tuple(case.notebooks) not in seen
            seen.add(tuple(case.notebooks))
        if keep:
            chosen.append(case)
    return chosen, skipped


def build_inbox(course: Course, cases: list[Case], inbox: Path) -> Path:
    """One zip per case in ``inbox`` (what an LMS download looks like); the course keeps no submission."""
    inbox.mkdir(parents=True, exist_ok=True)
    for case in cases:
        folder = build_submission(case, course)
        shutil.make_archive(str(inbox / case.name), "zip", folder.parent, folder.name)
    shutil.rmtree(course.root / "submitted", ignore_errors=True)
    return inbox


def demo_data(root: Path, data: str | None) -> str:
    """The CIFAR-10 folder: the one given, else the kit's ``data/``, else a small synthetic one."""
    if data:
        return data
    kit_data = KIT_ROOT / "data"
    if (kit_data / "cifar-10-batches-py" / "test_batch").exists():
        return str(kit_data)
    from a2lib.data import write_synthetic_cifar10

    print("No CIFAR-10 in data/ (run `make data`): using a synthetic stand-in, so checks of trained "
          "models will not reach the reference accuracies.", file=sys.stderr)
    write_synthetic_cifar10(root / "data", n_train_per_class=100, n_test_per_class=100, seed=0)
    return str(root / "data")


def run_demo(keep: Path | None = None, workers: int = 2, unsafe: bool = False, hostile: bool = False,
             data: str | None = None, progress: bool = True, notebooks: Path = NOTEBOOKS,
             corpus: Path = CORPUS_DIR, every_mistake: bool = False, test_modules: list[str] | None = None) -> int:
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="a2kit-demo-"))
    if (root / "course").exists():
        shutil.rmtree(root / "course")
    course = Course(root / "course")
    print(f"Demo course: {course.root}")
    cli.release(course, notebooks)
    available = sorted(p.stem for p in course.source_dir.glob("*.ipynb"))
    cases, skipped = demo_cases(available, hostile, corpus, every_mistake)
    for line in skipped:
        print(f"  waiting for a notebook: {line}")
    inbox = build_inbox(course, cases, root / "inbox")
    collected = collect(inbox, course, progress=progress)
    report = cli.grade(course, workers=workers, unsafe=unsafe, memory_gb=2.0, timeout_s=600,
                       env=cli.grading_env(demo_data(root, data), fast=True), progress=progress,
                       test_modules=test_modules)
    feedback = generate_feedback(course, progress=progress)
    exported = export(course)

    cells = autograded_cells(course.source_dir)
    checks = {case.name: check_case(course, case, cells) for case in cases}
    grading = cli.grade_table(report)
    names = [c.name for c in cases]
    table = exported.grades.reindex(names)  # a case the grader failed on still gets its row
    table.index.name = "student"
    table["expected"] = [sum(v for ids in expected_scores(case, cells).values() for v in ids.values()) for case in cases]
    table["as expected"] = ["yes" if checks[n].ok else "NO: " + "; ".join(checks[n].mismatches)[:90] for n in names]
    if len(grading):
        table["status"] = grading["status"].reindex(names).fillna("")
        table["message"] = grading["message"].reindex(names).fillna("").str.slice(0, 60)
    table["case"] = [case.description[:60] for case in cases]
    cli._print_table("Demo class: autograded points", table)
    print(f"\nCollected: {len(collected.students)} of {len(cases)} zips in {inbox}"
          f"\nFeedback:  {course.root / 'feedback'}/<student>/{course.assignment}/a2kit_feedback.html "
          f"({sum(r.ok for r in feedback)} students)"
          f"\nGrades:    {exported.grades_csv}\nPlot:      {exported.plot}\nFailures:  {exported.failures_csv}"
          f"\nHand-grade Q3: a2kit --course {course.root} formgrade")
    # tampering is part of the corpus (a deleted test cell): only lost or unreadable zips count here
    ok = all(c.ok for c in checks.values()) and all(e.status == "collected" for e in collected.entries)
    print("\nEvery case got the points it must get." if ok else "\nSome cases did not get their expected points (see above).")
    return 0 if ok else 1
