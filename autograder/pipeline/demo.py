"""``a2kit demo``: the instructor's whole pipeline on a demo class built from the test corpus.

On a fresh machine (SQLite gradebook, CPU, fast mode), in a course folder of its own:
release -> a folder of LMS-style zips, one per student of the demo class (the solution, the blank
release, one typical mistake per notebook from the corpus and the similarity check's cases: a
copied pair and two honest solutions; ``--all`` takes every typical mistake, ``--hostile`` adds the
hostile cases) -> collect -> grade (sandboxed, parallel) -> feedback -> export -> the class report
and the similarity page. It prints the grade table next to the points each case must get, and where
the feedback pages, the CSV and the reports are. Exit code 0 when every case got its expected points.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from autograder.engine.course import Course
from autograder.engine.grade import grade_submissions, grading_env
from autograder.harness.cells import autograded_cells
from autograder.locations import KIT_DATA, SOURCE_NOTEBOOKS
from autograder.tools.corpus import Case, build_submission, case_result, expected_scores, load_cases

from .collect import collect
from .export import export
from .feedback import generate_feedback
from .release import release
from .report import write_report
from .similarity import check_similarity
from .similarity_page import write_similarity
from .tables import print_table


def demo_cases(available: list[str], hostile: bool = False, roots: list[str] | tuple = (),
               every_mistake: bool = False) -> tuple[list[Case], list[str]]:
    """The demo class: the two bases, one typical mistake per notebook (every one with
    ``every_mistake``), the similarity check's cases, and the hostile, cheating and honest-but-chatty
    cases with ``hostile``.
    ``roots``: notebook folders beyond the kit's (their cases join the class)."""
    cases, skipped = load_cases(available, roots)
    chosen, seen = [], set()
    for case in cases:
        if case.family in ("hostile", "cheat", "honest"):
            keep = hostile
        elif case.family in ("base", "similarity") or every_mistake:
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
    if (KIT_DATA / "cifar-10-batches-py" / "test_batch").exists():
        return str(KIT_DATA)
    from a2lib.data import write_synthetic_cifar10

    print("No CIFAR-10 in data/ (run `make data`): using a synthetic stand-in, so checks of trained "
          "models will not reach the reference accuracies.", file=sys.stderr)
    write_synthetic_cifar10(root / "data", n_train_per_class=100, n_test_per_class=100, seed=0)
    return str(root / "data")


def run_demo(keep: Path | None = None, workers: int = 2, unsafe: bool = False, hostile: bool = False,
             data: str | None = None, progress: bool = True, notebooks: Path = SOURCE_NOTEBOOKS,
             every_mistake: bool = False, notebook_folders: list[str] | None = None) -> int:
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="a2kit-demo-"))
    if (root / "course").exists():
        shutil.rmtree(root / "course")
    course = Course(root / "course")
    print(f"Demo course: {course.root}")
    release(course, notebooks)
    available = sorted(p.stem for p in course.source_dir.glob("*.ipynb"))
    cases, skipped = demo_cases(available, hostile, notebook_folders or (), every_mistake)
    for line in skipped:
        print(f"  waiting for a notebook: {line}")
    inbox = build_inbox(course, cases, root / "inbox")
    collected = collect(inbox, course, progress=progress)
    report = grade_submissions(course, workers=workers, unsafe=unsafe, memory_gb=2.0, timeout_s=600,
                               env=grading_env(demo_data(root, data), fast=True), progress=progress,
                               notebook_folders=notebook_folders)
    feedback = generate_feedback(course, progress=progress)
    exported = export(course)
    class_report = write_report(course)
    similar = check_similarity(course)
    similarity_page = write_similarity(similar, course.root, course.root / "reports")

    cells = autograded_cells(course.source_dir)
    results = {case.name: case_result(course, case, cells) for case in cases}
    grading = report.table()
    names = [c.name for c in cases]
    table = exported.grades.reindex(names)  # a case the grader failed on still gets its row
    table.index.name = "student"
    table["expected"] = [sum(v for ids in expected_scores(case, cells).values() for v in ids.values()) for case in cases]
    table["as expected"] = ["yes" if results[n].ok else "NO: " + "; ".join(results[n].mismatches)[:90] for n in names]
    if len(grading):
        table["status"] = grading["status"].reindex(names).fillna("")
        table["message"] = grading["message"].reindex(names).fillna("").str.slice(0, 60)
    table["case"] = [case.description[:60] for case in cases]
    print_table("Demo class: autograded points", table)
    print(f"\nCollected: {len(collected.students)} of {len(cases)} zips in {inbox}"
          f"\nFeedback:  {course.root / 'feedback'}/<student>/{course.assignment}/a2kit_feedback.html "
          f"({sum(r.ok for r in feedback)} students)"
          f"\nGrades:    {exported.grades_csv}\nPlot:      {exported.plot}\nFailures:  {exported.failures_csv}"
          f"\nHand-grade Q3: a2kit --course {course.root} formgrade")
    print_table("Similarity check: flagged pairs (for a person to look at)", similar.flagged_students().round(2))
    print(f"\nClass report:     {class_report.path if class_report else '(nothing graded)'}"
          f"\nSimilarity page:  {similarity_page}")
    # tampering is part of the corpus (a deleted test cell): only lost or unreadable zips count here
    ok = all(r.ok for r in results.values()) and all(e.status == "collected" for e in collected.entries)
    print("\nEvery case got the points it must get." if ok else "\nSome cases did not get their expected points (see above).")
    return 0 if ok else 1
