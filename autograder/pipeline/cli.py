"""``a2kit``: the instructor's command line over nbgrader (release, collect, grade, feedback, export, demo).

Every command works on a course directory (``--course``, default ``./course``; the gradebook is
``<course>/gradebook.db`` unless ``--db URL`` names another SQLAlchemy database, e.g. PostgreSQL).
Each prints a summary table at the end and exits with 1 when something needs the instructor's
attention (a failed grading, an unreadable zip, a duplicate student...), 0 otherwise.

    a2kit release                      # course/source/a2 <- notebooks/, student version + a2lib wheel + course/release/a2.zip
    a2kit collect SRC                  # the LMS download (zip or folder) -> course/submitted/<student>/a2
    a2kit grade --workers 2            # sandboxed, parallel autograding (Dask); --scheduler tcp://HOST:8786
    a2kit formgrade                    # hand grading in nbgrader's formgrader (JupyterLab on 127.0.0.1)
    a2kit feedback                     # course/feedback/<student>/a2/: the pages to return (--due, --late-penalty)
    a2kit export                       # course/exports/grades.csv, grade_distribution.png, test_failures.csv
    a2kit export --canvas FILE         # + canvas_import.csv (--moodle FILE: moodle_import.csv; --due, --late-penalty)
    a2kit report                       # course/reports/class_report.html: the class's results, for the instructor
    a2kit similarity                   # course/reports/similarity.html: pairs of students whose solutions are alike
    a2kit reference                    # autograder/notebooks/<stem>/reference/ from the source notebooks' solutions
    a2kit demo                         # all of the above on a demo class built from the test corpus

The source notebooks (``release --notebooks``) and a course's own notebook folders (``grade
--notebook-folders``) default to ``$A2KIT_NOTEBOOKS`` and ``$A2KIT_NOTEBOOK_FOLDERS`` (folders
separated by ``:``) when those are set, so that a course with notebooks of its own sets them once.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

from autograder.engine.course import Course
from autograder.engine.grade import WALL_SLACK, default_cell_timeout, grade_submissions, grading_env
from autograder.locations import SOURCE_NOTEBOOKS

from .late import LatePolicy
from .release import release
from .tables import print_table

ATTENTION = 1


def _course(args) -> Course:
    return Course(Path(args.course), db_url=args.db)


def _policy(args, course: Course) -> LatePolicy:
    return LatePolicy.from_options(course.root, args.due, args.late_penalty, args.tz, args.extensions)


def _print_late(policy: LatePolicy, warnings: list[str]) -> None:
    if policy.due is not None:
        print(f"\nLate policy: {policy.describe()}")
    for line in warnings:
        print(f"  late: {line}")


# -- release --------------------------------------------------------------------------------------
def cmd_release(args) -> int:
    import pandas as pd

    course = _course(args)
    archive = release(course, Path(args.notebooks), args.only or None)
    table = pd.DataFrame({"notebook": sorted(p.name for p in course.release_dir.glob("*.ipynb"))})
    print_table("Released notebooks", table)
    print(f"Student package: {', '.join(p.name for p in course.release_dir.glob('a2lib-*.whl'))}")
    print(f"\nStudent version: {course.release_dir}\nZip for the LMS: {archive}")
    return 0


# -- collect --------------------------------------------------------------------------------------
def cmd_collect(args) -> int:
    from .collect import collect

    course = _course(args)
    if not course.release_dir.exists():
        print("No release yet: run `a2kit release` first (collect checks notebook names against it).", file=sys.stderr)
        return ATTENTION
    report = collect(Path(args.src), course, id_pattern=args.id_pattern, progress=not args.quiet, tz=args.tz,
                     times=Path(args.times) if args.times else None)
    print_table("Collected submissions", report.table())
    print(f"\n{len(report.students)} students collected into {course.root / 'submitted'}")
    if report.needs_attention:
        print("Some sources need your attention (see the status and note columns).")
    return ATTENTION if report.needs_attention else 0


# -- grade ----------------------------------------------------------------------------------------
def cmd_grade(args) -> int:
    course = _course(args)
    if not course.source_dir.exists():
        print("No source notebooks in the course: run `a2kit release` first.", file=sys.stderr)
        return ATTENTION
    report = grade_submissions(course, args.students or None, workers=args.workers, scheduler=args.scheduler,
                               timeout_s=args.timeout, cell_timeout_s=args.cell_timeout, memory_gb=args.memory,
                               unsafe=args.unsafe, force=args.force, env=grading_env(args.data, args.fast),
                               progress=not args.quiet, notebook_folders=args.notebook_folders)
    print_table("Grading", report.table())
    print(f"\nGradebook: {course.db_url}")
    if report.needs_attention:
        print("Some submissions need your attention (see the status and message columns: 'failed' were not "
              "graded and have no grade; 'flagged' were graded, but look at them).")
    return ATTENTION if report.needs_attention else 0


# -- feedback and export --------------------------------------------------------------------------
def cmd_feedback(args) -> int:
    import pandas as pd

    from .feedback import generate_feedback

    course = _course(args)
    policy = _policy(args, course)
    results = generate_feedback(course, args.students or None, progress=not args.quiet, policy=policy)
    table = pd.DataFrame([{"student": r.student, "ok": r.ok, "hints": r.hints, "message": r.message} for r in results])
    print_table("Feedback", table.set_index("student") if len(table) else table)
    _print_late(policy, [])
    print(f"\nFeedback pages: {course.root / 'feedback'}/<student>/{course.assignment}/ (a2kit_feedback.html and one page per notebook)")
    return ATTENTION if any(not r.ok for r in results) or not results else 0


def cmd_export(args) -> int:
    from .export import export

    course = _course(args)
    policy = _policy(args, course)
    result = export(course, Path(args.out) if args.out else None, canvas=args.canvas, moodle=args.moodle,
                    policy=policy, column=args.column)
    print_table("Grades (points; final = autograded + hand - late penalty)", result.grades)
    _print_late(policy, result.warnings)
    print_table("Tests failed most often", result.failures.head(15))
    print(f"\nGrades CSV: {result.grades_csv}\nFailures per test: {result.failures_csv}\nDistribution plot: {result.plot}")
    if result.lms_matches is not None:
        print_table("Students in the LMS files", result.lms_matches)
        print("\nLMS import files: " + ", ".join(map(str, result.lms_files)))
        if result.unmatched:
            print(f"Not in the LMS file (add them by hand): {', '.join(result.unmatched)}")
    return 0 if len(result.grades) and not result.unmatched else ATTENTION


def cmd_report(args) -> int:
    from .report import write_report

    course = _course(args)
    if not course.source_dir.exists():
        print("No source notebooks in the course: run `a2kit release` and `a2kit grade` first.", file=sys.stderr)
        return ATTENTION
    result = write_report(course, Path(args.out) if args.out else None, _policy(args, course))
    if result is None:
        print("Nothing graded yet: run `a2kit grade` first.", file=sys.stderr)
        return ATTENTION
    print_table("Questions, hardest first", result.questions.head(10)[["notebook", "item", "points", "mean_share", "zero",
                                                                       "full", "discrimination"]].round(2))
    print_table("Mistakes, most frequent first", result.hints[["signature", "students", "share"]].round(2))
    print_table("Grading status", result.status.rename("students").to_frame().rename_axis("status"))
    print(f"\nClass report ({result.students} students): {result.path}")
    return 0


def cmd_similarity(args) -> int:
    from .similarity import check_similarity
    from .similarity_page import write_similarity

    course = _course(args)
    if not course.source_dir.exists():
        print("No source notebooks in the course: run `a2kit release` first.", file=sys.stderr)
        return ATTENTION
    result = check_similarity(course, threshold=args.threshold, count_solution=args.count_solution, workers=args.workers)
    path = write_similarity(result, course.root, Path(args.out) if args.out else course.root / "reports")
    print_table("Parts compared", result.parts.drop(columns=["histogram"]).set_index("part"))
    print_table("Flagged pairs (look at them; the check decides nothing)", result.flagged_students().round(2))
    print(f"\nSimilarity page ({len(result.students)} students): {path}")
    return ATTENTION if len(result.flagged) else 0


def cmd_formgrade(args) -> int:
    from .formgrade import formgrade_server

    course = _course(args)
    if not (course.root / "autograded").is_dir():
        print("Nothing autograded yet: run `a2kit grade` first (formgrader grades autograded submissions).", file=sys.stderr)
        return ATTENTION

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # `kill` stops JupyterLab with it, as Ctrl-C does
    with formgrade_server(course, args.port) as server:
        print(f"\nFormgrader:  {server.link('formgrader')}\nJupyterLab:  {server.link('lab')}"
              f"\nCourse: {course.root}  Gradebook: {course.db_url}\nGrade by hand under Manual Grading; "
              "scores save as you leave a field. Ctrl-C stops the server.", flush=True)
        server.process.wait()
    return 0


def cmd_reference(args) -> int:
    from autograder.tools.build_references import main as build_references

    return build_references(args.stems + (["--full"] if args.full else []))


# -- demo -----------------------------------------------------------------------------------------
def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(keep=Path(args.keep) if args.keep else None, workers=args.workers, unsafe=args.unsafe,
                    hostile=args.hostile, data=args.data, progress=not args.quiet, notebooks=Path(args.notebooks),
                    every_mistake=args.every_mistake, notebook_folders=args.notebook_folders)


# -- parser ---------------------------------------------------------------------------------------
def _env_folders() -> list[str]:
    """``$A2KIT_NOTEBOOK_FOLDERS``: folders of a course's own notebook folders, separated by ``:``."""
    return [f for f in os.environ.get("A2KIT_NOTEBOOK_FOLDERS", "").split(os.pathsep) if f]


def _late_options(p: argparse.ArgumentParser) -> None:
    """The late policy's options, the same for feedback and export (the page shows what the LMS gets)."""
    p.add_argument("--due", help="due time, ISO 8601 with its offset (e.g. 2026-03-01T23:59+01:00), or without "
                                 "one and --tz")
    p.add_argument("--late-penalty", type=float, default=0.0,
                   help="percent of the points lost per started day after the due time (capped at 100; needs --due)")
    p.add_argument("--tz", help="time zone of a --due or extension time written without an offset (e.g. Europe/Berlin)")
    p.add_argument("--extensions", help="CSV of per-student due times, columns student,due "
                                        "(default: <course>/extensions.csv when it exists)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="a2kit", description="The A2 course kit's autograder: "
                                     "release, collect, grade, feedback, export.")
    parser.add_argument("--course", default="course", help="course directory (default: ./course)")
    parser.add_argument("--db", default=None, help="gradebook SQLAlchemy URL (default: sqlite:///<course>/gradebook.db)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="student version of the notebooks (nbgrader generate_assignment) and a zip")
    p.add_argument("--notebooks", default=os.environ.get("A2KIT_NOTEBOOKS") or str(SOURCE_NOTEBOOKS),
                   help="folder of source notebooks (default: $A2KIT_NOTEBOOKS, else the kit's)")
    p.add_argument("--only", nargs="*", help="notebook stems to release (default: all)")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("collect", help="lay out an LMS download (Canvas, Moodle, a folder per student) as nbgrader submissions")
    p.add_argument("src", help="the LMS's download zip, or the folder it unzips to (or one folder or zip per student)")
    p.add_argument("--id-pattern", help="regular expression whose first group is the student id in a name")
    p.add_argument("--times", help="submission times from the LMS: Moodle's grading worksheet, or a CSV with ID "
                                   "(Canvas user id) and submitted_at")
    p.add_argument("--tz", help="time zone (e.g. Europe/Berlin) of the LMS's zip times and of Moodle's worksheet; "
                                "without it no zip time is used")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("grade", help="autograde every collected submission, sandboxed and in parallel")
    p.add_argument("students", nargs="*", help="only these students (default: every submission)")
    p.add_argument("--workers", type=int, default=2, help="parallel graders on a local Dask cluster (default 2)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (e.g. tcp://host:8786)")
    p.add_argument("--timeout", type=float, default=900,
                   help=f"CPU time each notebook's kernel may use, seconds (default %(default)g); the wall clock "
                        f"allows {WALL_SLACK}x that, and a kernel it stops sooner is the machine's fault: graded "
                        "again, then reported, never scored")
    p.add_argument("--cell-timeout", type=float, default=None,
                   help=f"wall-clock limit of each of the student's cells, seconds (default {default_cell_timeout():g}, "
                        "nbgrader's Execute.timeout in the kit's config)")
    p.add_argument("--memory", type=float, default=4.0,
                   help="memory limit of each process in a notebook's kernel sandbox, GB (default %(default)g)")
    p.add_argument("--data", help="CIFAR-10 folder for the graders (default: $A2_DATA or the kit's data/)")
    p.add_argument("--fast", action="store_true", help="grade in fast mode (A2_FAST=1: model checks on a test subset)")
    p.add_argument("--force", action="store_true", help="regrade submissions that did not change")
    p.add_argument("--unsafe", action="store_true", help="grade without the bubblewrap sandbox (never with real students)")
    p.add_argument("--notebook-folders", action="append", default=_env_folders(), metavar="DIR",
                   help="a folder of notebook folders (hidden tests, references, cases) for notebooks beyond the kit's, "
                        "laid out as autograder/notebooks/ (repeatable; default: $A2KIT_NOTEBOOK_FOLDERS)")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("feedback", help="feedback pages for students: the final grade line by line, hints, per-class bars")
    p.add_argument("students", nargs="*")
    _late_options(p)
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("export", help="grades CSV, grade distribution plot, failures per test")
    p.add_argument("--out", help="output folder (default: <course>/exports)")
    p.add_argument("--canvas", help="Canvas gradebook export (CSV): writes canvas_import.csv with each student's points")
    p.add_argument("--moodle", help="Moodle grade export (CSV): writes moodle_import.csv (by ID number / email)")
    p.add_argument("--column", help="the assignment's column in the LMS file (default: the one named like the assignment)")
    _late_options(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("report", help="the class report: distribution, questions by difficulty, mistakes, models (HTML)")
    p.add_argument("--out", help="output folder (default: <course>/reports)")
    _late_options(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("similarity", help="pairs of students whose solution code or written answers are alike (HTML)")
    p.add_argument("--out", help="output folder (default: <course>/reports)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="flag a pair when this share of one's code (or answer) matches the other's (default 0.5)")
    p.add_argument("--workers", type=int, default=2, help="processes comparing notebooks and answers (default 2)")
    p.add_argument("--count-solution", action="store_true",
                   help="count code both students share with the instructor's solution (default: it is boilerplate)")
    p.set_defaults(func=cmd_similarity)

    p = sub.add_parser("formgrade", help="hand grading: nbgrader's formgrader in JupyterLab on this course")
    p.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    p.set_defaults(func=cmd_formgrade)

    p = sub.add_parser("reference", help="regenerate the hidden tests' reference values from the solutions")
    p.add_argument("stems", nargs="*")
    p.add_argument("--full", action="store_true")
    p.set_defaults(func=cmd_reference)

    p = sub.add_parser("demo", help="the whole pipeline on a demo class built from the test corpus")
    p.add_argument("--keep", help="course folder to build and keep (default: a temporary one, kept and printed)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data", help="CIFAR-10 folder (default: the kit's data/, else a synthetic one)")
    p.add_argument("--all", dest="every_mistake", action="store_true",
                   help="every typical mistake of the corpus (default: one per notebook)")
    p.add_argument("--hostile", action="store_true",
                   help="include the hostile, cheating and honest-but-chatty corpus cases (slower)")
    p.add_argument("--notebooks", default=os.environ.get("A2KIT_NOTEBOOKS") or str(SOURCE_NOTEBOOKS),
                   help="folder of source notebooks (default: $A2KIT_NOTEBOOKS, else the kit's)")
    p.add_argument("--unsafe", action="store_true")
    p.add_argument("--notebook-folders", action="append", default=_env_folders(), metavar="DIR", help="as for grade")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="a2kit: %(message)s")
    start = time.perf_counter()
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        print(f"a2kit {args.command}: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"\n[{args.command} took {time.perf_counter() - start:.0f} s]")
    return code


if __name__ == "__main__":
    sys.exit(main())
