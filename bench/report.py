"""The class report and the similarity check on a generated class of 300: under a minute on 2 cores?

The class (``autograder.tools.generated_class``): ``--students`` students cycling through the corpus
cases (about 7 copies of each; copies of a case are identical, so they are flagged as pairs: many
more flagged pairs than a real class has, which makes the similarity page's work heavier, not
lighter), with their gradebook rows, autograded notebooks, grading log and roster written directly,
nothing graded. SQLite gradebook.

Measured, each as the instructor runs it (a fresh process, imports included):

* ``a2kit report`` and ``a2kit similarity`` (the headline: ``total_seconds``, their sum);

and, in this process, against a baseline in the same run:

* reading the class: ``class_results.read_class`` (the gradebook's cells read in two queries, then
  ``feedback.read_student`` per student) against ``feedback.read_student`` alone per student (how a
  student's feedback reads the gradebook: about 130 queries each);
* comparing: the kit's check (MOSS's shared-fingerprint measure for every pair, copydetect's exact
  comparison where it reaches half the threshold) against copydetect's own ``CopyDetector``
  comparing every pair exactly, on the same documents with the same settings and boilerplate. The
  flagged pairs of both are compared: ``missed_pairs`` counts pairs the exhaustive run flags and the
  kit's does not.

Writes ``bench/results/report.json`` with top-level ``students``, ``report_seconds``,
``similarity_seconds``, ``total_seconds`` (wall clock), ``under_a_minute``, ``total_cpu_seconds`` (user +
system of both commands and their worker processes: what the two cores must do, whatever else runs),
``read_speedup``, ``compare_speedup``, ``missed_pairs``; prints a table.

    .venv/bin/python bench/report.py [--students 300]
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
RESULTS = KIT / "bench" / "results" / "report.json"

from bench.hardware import describe as hardware_line  # noqa: E402 (after the path insert)


def build_class(root: Path, n: int) -> Path:
    """A released course with ``n`` generated students (and their roster)."""
    from autograder.engine.course import Course
    from autograder.pipeline import lms
    from autograder.tools.generated_class import generate_class

    course = Course(root / "course")
    course.sync_source()
    course.generate_release()
    generated = generate_class(course, n, failed=max(1, n // 100))  # about 1% not graded (a grader fault)
    lms.update_roster(course, generated.roster)
    return course.root


def command_seconds(args: list[str]) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds: user + system, its worker processes included) of ``a2kit ARGS`` in a
    fresh process (exit code 0 or 1: 1 means pairs were flagged). On a shared machine the wall clock grows
    with the load; the CPU seconds hardly do."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "a2kit"), "-q", *args], stdout=out, stderr=out,
                                text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        text = out.read()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"a2kit {' '.join(args)} failed:\n{text[-3000:]}")
    return seconds, usage.ru_utime + usage.ru_stime


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    out = function(*args, **kwargs)
    return time.perf_counter() - start, out


def read_one_by_one(course) -> int:
    """The baseline read: ``feedback.read_student`` per student, reading the gradebook itself."""
    from autograder.pipeline.export import grades_table
    from autograder.pipeline.feedback import read_student

    students = grades_table(course).index
    for student in students:
        read_student(course, student)
    return len(students)


def exhaustive(parts, threshold: float) -> set:
    """copydetect's ``CopyDetector`` on each part: every pair compared exactly; the pairs it flags
    (either similarity at the threshold and ``MIN_OVERLAP`` characters shared, as the kit flags)."""
    import numpy as np
    from copydetect import CopyDetector

    from autograder.pipeline.winnowing import K, MIN_OVERLAP, WINDOW

    flagged = set()
    with tempfile.TemporaryDirectory(prefix="a2kit-copydetect-") as tmp:
        for part in parts:
            ext = "py" if part.kind == "code" else "txt"
            docs, boiler = Path(tmp) / part.name / "docs", Path(tmp) / part.name / "boilerplate"
            docs.mkdir(parents=True)
            boiler.mkdir()
            for student, text in part.texts.items():
                if text.strip():
                    (docs / f"{student}.{ext}").write_text(text)
            for i, text in enumerate(part.boilerplate + ([part.reference] if not part.reference_counts else [])):
                (boiler / f"b{i}.{ext}").write_text(text)
            detector = CopyDetector(test_dirs=[str(docs)], ref_dirs=[str(docs)], boilerplate_dirs=[str(boiler)],
                                    extensions=[ext], noise_t=K, guarantee_t=K + WINDOW - 1, display_t=threshold,
                                    autoopen=False, silent=True, disable_filtering=part.kind == "text",
                                    force_language="python" if part.kind == "code" else None)
            detector.run()
            if not len(detector.similarity_matrix):
                continue
            sims = detector.similarity_matrix.max(axis=2)
            for i, j in zip(*np.nonzero((sims >= threshold) & (detector.token_overlap_matrix >= MIN_OVERLAP))):
                a, b = sorted((Path(detector.test_files[i]).stem, Path(detector.ref_files[j]).stem))
                flagged.add((part.name, a, b))
            detector.get_copied_code_list()  # its side-by-side highlighting, as the kit makes for flagged pairs
    return flagged


def main() -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":  # the check's own seed (similarity.HASH_SEED): same fingerprints here
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--keep", help="build the class in this folder and keep it")
    args = parser.parse_args()

    from autograder.engine.course import Course
    from autograder.pipeline.class_results import read_class
    from autograder.pipeline.similarity import THRESHOLD, build_parts, check_similarity

    load_at_start = os.getloadavg()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="a2kit-bench-report-"))
    build_s, root = timed(build_class, tmp, args.students)
    print(f"generated class of {args.students}: {build_s:.0f} s", flush=True)
    course = Course(root)

    report_s, report_cpu = command_seconds(["--course", str(root), "report"])
    similarity_s, similarity_cpu = command_seconds(["--course", str(root), "similarity"])
    print(f"a2kit report {report_s:.1f} s ({report_cpu:.1f} CPU s), a2kit similarity {similarity_s:.1f} s "
          f"({similarity_cpu:.1f} CPU s)", flush=True)

    read_s, results = timed(read_class, course)
    baseline_read_s, _ = timed(read_one_by_one, course)
    check_s, checked = timed(check_similarity, course)
    parts, _ = build_parts(course)
    baseline_check_s, truth = timed(exhaustive, parts, THRESHOLD)
    ours = {(r.part, r.student_a, r.student_b) for r in checked.flagged.itertuples()}
    missed, extra = sorted(truth - ours), sorted(ours - truth)

    result = {
        "students": args.students,
        "report_seconds": round(report_s, 1),
        "similarity_seconds": round(similarity_s, 1),
        "total_seconds": round(report_s + similarity_s, 1),
        "under_a_minute": report_s + similarity_s < 60,
        "report_cpu_seconds": round(report_cpu, 1),
        "similarity_cpu_seconds": round(similarity_cpu, 1),
        "total_cpu_seconds": round(report_cpu + similarity_cpu, 1),
        "read_seconds": round(read_s, 2),
        "baseline_read_seconds": round(baseline_read_s, 2),
        "read_speedup": round(baseline_read_s / read_s, 1),
        "compare_seconds": round(check_s, 2),
        "baseline_compare_seconds": round(baseline_check_s, 2),
        "compare_speedup": round(baseline_check_s / check_s, 1),
        "flagged_pairs": len(ours),
        "baseline_flagged_pairs": len(truth),
        "missed_pairs": len(missed),
        "missed_examples": [list(m) for m in missed[:10]],
        "extra_pairs": len(extra),
        "pairs_compared_exactly": int(checked.parts["compared exactly"].sum()),
        "pairs": int(checked.parts["pairs"].sum()),
        "graded_students": len(results.grades),
        "class": "generated from the corpus cases (autograder.tools.generated_class), copies of each case; SQLite",
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "hardware": hardware_line(),
    }
    print(f"\n{'command (a fresh process)':44s} {'wall s':>8s} {'CPU s':>9s}")
    print(f"{'a2kit report':44s} {report_s:8.1f} {report_cpu:9.1f}")
    print(f"{'a2kit similarity':44s} {similarity_s:8.1f} {similarity_cpu:9.1f}")
    print(f"\n{'step (in this process)':44s} {'kit':>8s} {'baseline':>9s} {'speed-up':>9s}")
    print(f"{'read the class (s)':44s} {read_s:8.2f} {baseline_read_s:9.2f} {result['read_speedup']:9.1f}")
    print(f"{'compare every pair (s)':44s} {check_s:8.2f} {baseline_check_s:9.2f} {result['compare_speedup']:9.1f}")
    print(f"\ntotal_seconds = {result['total_seconds']} for {args.students} students (under a minute: "
          f"{result['under_a_minute']}); flagged pairs {len(ours)} (exhaustive copydetect: {len(truth)}, "
          f"missed {len(missed)}, extra {len(extra)}); {result['pairs_compared_exactly']} of {result['pairs']} pairs "
          f"compared exactly")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {RESULTS}")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
