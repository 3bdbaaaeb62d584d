"""Grading a class: every submission autograded in its own scratch course, the student's kernel in the
bubblewrap sandbox, every autograded point decided by the trusted harness, in parallel, merged by
one writer.

``grade_submissions`` (the instructor's process):

1. checks before grading anything (``preflight``): the installed nbgrader/Jupyter/Dask internals the
   kit builds on (``compat.check``), a hidden test for every graded test cell, and a sandbox that
   starts and sees the kit and the training data. A failure there is the grading machine's, so every
   submission is reported with its cause for the instructor, none gets a 0;
2. builds one ``GradingJob`` per changed submission (content hash; ``force`` regrades all);
3. runs them (``scheduling.run_jobs``: a local Dask cluster or an existing one) with
   ``worker.grade_one``, and merges each result as it arrives into the main gradebook
   (``gradebook.merge_rows``) and ``autograded/``. A result that is not ok (a grader fault, a lost
   worker) is reported, never merged as zeros; flags (e.g. a model that looks its inputs up) are
   merged and listed for the instructor.

SIGTERM and SIGHUP end grading like Ctrl-C: the cluster closes, and each kernel's launcher, seeing
its grading process gone, ends its sandbox.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder import compat
from autograder.course import Course
from autograder.gradebook import copy_assignment, in_gradebook, merge_rows
from autograder.harness.execute import grading_plan
from autograder.records import GradingJob, GradingResult
from autograder.sandbox import check_bwrap
from autograder.scheduling import kernel_threads, run_jobs, start_forkserver
from autograder.trees import read_tree, tree_hash, write_tree

log = logging.getLogger(__name__)
STATE_FILE = ".a2kit-grading.json"   # in the course root: content hash of each graded submission
KEY_FILE = ".a2kit-key"              # in the course root: the secret behind the hidden tests' inputs


class GradingUnavailable(RuntimeError):
    """This machine cannot grade fairly now (the cause is in the message); nothing was graded."""


@dataclass
class StudentResult:
    """One student's outcome. ``scores`` is as ``Course.scores``: ``{notebook: {grade_id: (score, max)}}``."""

    student: str
    status: str                      # "graded" | "flagged" (graded, see message) | "unchanged" | "failed"
    message: str = ""                # plain words: what failed, which limit a cell hit, what was flagged
    scores: dict = field(default_factory=dict)
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    attempts: int = 0

    @property
    def points(self) -> float:
        return sum(s or 0 for nb in self.scores.values() for s, _ in nb.values())


@dataclass
class GradeReport:
    results: dict[str, StudentResult] = field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 1

    @property
    def needs_attention(self) -> bool:
        return any(r.status in ("failed", "flagged") for r in self.results.values())

    def table(self):
        """A pandas DataFrame: student, status, points, seconds, peak memory, message."""
        import pandas as pd

        rows = [{"student": s, "status": r.status, "points": r.points, "seconds": round(r.seconds, 1),
                 "peak_MB": round(r.peak_memory_mb), "message": r.message} for s, r in sorted(self.results.items())]
        return pd.DataFrame(rows).set_index("student") if rows else pd.DataFrame()


# -- before grading ---------------------------------------------------------------------------------
def course_key(course: Course) -> str:
    """The course's secret (hex), made on first use; it never enters a sandbox."""
    path = course.root / KEY_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


# Run in a sandbox like a kernel's: argv[1] = files it must read (the training data), argv[2] = the test set's path.
PROBE = r'''
import os, sys, json
import numpy, ipykernel, a2lib
unreadable = [p for p in json.loads(sys.argv[1]) if not os.access(p, os.R_OK)]
if unreadable:
    sys.exit(f"the sandbox cannot read the training data ({', '.join(unreadable)})")
if sys.argv[2] and os.path.exists(sys.argv[2]):
    sys.exit("the sandbox can see the test set")
print("ok")
'''


def preflight(plan: dict, env: dict, unsafe: bool, test_modules: list[str], local_sandbox: bool = True) -> None:
    """Raise GradingUnavailable with the cause when this machine cannot grade fairly."""
    import importlib

    from autograder.harness import hidden_tests
    from autograder.sandbox import Limits, SandboxSpec, data_view, run_sandboxed

    missing = compat.check()
    if missing:
        raise GradingUnavailable("the installed nbgrader/Jupyter/Dask lack what the grader builds on: " + "; ".join(missing))
    for module in test_modules:
        importlib.import_module(module)
    tests = hidden_tests()
    untested = [f"{nb}/{gid}" for nb, roles in plan.items() for gid, role in roles.items()
                if role == "test" and (nb, gid) not in tests]
    if untested:
        raise GradingUnavailable(f"no hidden test decides {', '.join(untested)}: the grader cannot score these cells")
    data = env.get("A2_DATA")
    folder = Path(data) / "cifar-10-batches-py" if data else None
    if folder and folder.is_dir() and not (folder / "test_batch").is_file():  # (no data at all: tests that need it say so)
        raise GradingUnavailable(f"no CIFAR-10 test set in {folder}: the model tests need it (`--data DIR`)")
    if not local_sandbox:
        return
    with tempfile.TemporaryDirectory(prefix="a2kit-probe-") as tmp:
        work, kernel = Path(tmp) / "work", Path(tmp) / "kernel"
        work.mkdir()
        kernel.mkdir()
        kernel_env = dict(env)
        mounts = {}
        if data:
            kernel_env["A2_DATA"], mounts = data_view(data)
        spec = SandboxSpec(str(work), str(kernel), read_only_at=mounts, env=kernel_env, unsafe=unsafe,
                           limits=Limits(wall_s=120), slot=511)
        # (--unsafe has no sandbox: everything is visible, as the warning said)
        test_set = str(Path(kernel_env["A2_DATA"]) / "cifar-10-batches-py" / "test_batch") if data and not unsafe else ""
        try:
            probe = run_sandboxed(spec, [sys.executable, "-c", PROBE, json.dumps(sorted(mounts)), test_set], timeout=120)
        except Exception as exc:
            raise GradingUnavailable(f"the sandbox could not start: {exc}") from None
    if probe.returncode != 0 or "ok" not in probe.stdout:
        cause = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        raise GradingUnavailable(f"a sandboxed kernel could not start here: {cause}")


# -- state between runs -----------------------------------------------------------------------------
def _students(course: Course, students: list[str] | None) -> list[str]:
    if students:
        return list(students)
    submitted = course.root / "submitted"
    return sorted(p.name for p in submitted.iterdir() if (p / course.assignment).is_dir()) if submitted.is_dir() else []


def _load_state(course: Course) -> dict:
    path = course.root / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _save_state(course: Course, state: dict) -> None:
    path = course.root / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    tmp.replace(path)


@contextlib.contextmanager
def _terminations_interrupt():
    """SIGTERM/SIGHUP raise KeyboardInterrupt here, so grading unwinds (cluster closed, kernels ended)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    try:
        saved = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    except ValueError:  # not the main thread: leave the handlers alone
        yield
        return
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


# -- grading ------------------------------------------------------------------------------------------
def grade_submissions(course: Course, students: list[str] | None = None, *, workers: int = 2,
                      scheduler: str | None = None, timeout_s: float = 900, cell_timeout_s: float | None = None,
                      memory_gb: float = 4.0, unsafe: bool = False, force: bool = False,
                      env: dict[str, str] | None = None, progress: bool = True,
                      test_modules: list[str] | None = None) -> GradeReport:
    """Autograde ``students`` (default: every collected submission), sandboxed and in parallel.

    Submissions graded before whose files and source did not change are "unchanged" (unless
    ``force``). ``timeout_s`` bounds one notebook's kernel (wall clock and CPU time);
    ``cell_timeout_s`` overrides nbgrader's per-cell ``Execute.timeout``; ``memory_gb`` bounds each
    process's data. ``env`` goes into the sandbox (e.g. ``A2_FAST=1``, ``A2_DATA=...``; the data
    folder is also where the hidden tests read the test set). ``test_modules``: extra modules that
    register hidden tests (for courses beyond the kit's notebooks). Raises SandboxUnavailable when
    bubblewrap is missing, unless ``unsafe``.
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    if unsafe:
        log.warning("grading WITHOUT the bubblewrap sandbox (--unsafe): student code runs with your rights. "
                    "Never do this with real submissions.")
    else:
        check_bwrap()
    if workers > 1 and not scheduler:  # the fork server's imports overlap with the preparation below
        start_forkserver()
    report = GradeReport(workers=workers)
    names = _students(course, students)
    state = _load_state(course)
    source_hash = tree_hash(course.source_dir)
    todo = []
    for student in names:
        folder = course.submitted_dir(student)
        if not folder.is_dir():
            report.results[student] = StudentResult(student, "failed", f"no submission folder {folder}")
            continue
        digest = hashlib.sha256((tree_hash(folder) + source_hash).encode()).hexdigest()
        if not force and state.get(student) == digest and in_gradebook(course, student):
            report.results[student] = StudentResult(student, "unchanged", scores=course.scores(student))
        else:
            todo.append((student, digest))
    if not todo:
        report.seconds = time.perf_counter() - started
        return report

    env = {**(kernel_threads(workers) if not scheduler else {}), **(env or {})}
    plan = grading_plan(course.source_dir)
    try:
        preflight(plan, env, unsafe, list(test_modules or []), local_sandbox=not scheduler)
    except GradingUnavailable as exc:
        log.error("nothing graded: %s", exc)
        for student, _ in todo:
            report.results[student] = StudentResult(student, "failed", f"not graded: {exc}")
        report.seconds = time.perf_counter() - started
        return report

    course_id = course.config.CourseDirectory.course_id
    with tempfile.TemporaryDirectory(prefix="a2kit-template-") as tmp:
        template_url = f"sqlite:///{Path(tmp) / 'gradebook.db'}"
        copy_assignment(course.db_url, template_url, course.assignment, course_id)
        template = (Path(tmp) / "gradebook.db").read_bytes()
    source = read_tree(course.source_dir)
    key = course_key(course)
    jobs = {student: GradingJob(student, course.assignment, course_id, read_tree(course.submitted_dir(student)),
                                source, template, plan, env=env,
                                limits={"wall_s": float(timeout_s), "memory_gb": float(memory_gb)},
                                cell_timeout_s=cell_timeout_s, unsafe=unsafe, key=key,
                                test_modules=list(test_modules or []))
            for student, _ in todo}
    digests = dict(todo)

    bar = tqdm(total=len(jobs), desc="grade", unit="submission", disable=not progress)

    def on_result(out: GradingResult, attempts: int) -> None:
        report.results[out.student] = _finish(course, out, attempts, digests[out.student], state)
        bar.update(1)

    saved_execution = os.environ.get("NBGRADER_EXECUTION")
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        with _terminations_interrupt():
            run_jobs(jobs, on_result, workers, scheduler)
    finally:
        if saved_execution is None:
            os.environ.pop("NBGRADER_EXECUTION", None)
        else:
            os.environ["NBGRADER_EXECUTION"] = saved_execution
        bar.close()
        _save_state(course, state)
    report.seconds = time.perf_counter() - started
    return report


def _finish(course: Course, out: GradingResult, attempts: int, digest: str, state: dict) -> StudentResult:
    """Merge one result into the course (gradebook + autograded files): the single writer."""
    student = out.student
    if not out.ok:
        (log.warning if os.environ.get("A2KIT_DEBUG") else log.debug)("%s failed: %s\n%s", student, out.message, out.log)
        state.pop(student, None)
        return StudentResult(student, "failed", out.message or "grading failed", seconds=out.seconds,
                             peak_memory_mb=out.peak_memory_mb, attempts=attempts)
    merge_rows(course, student, out.rows)
    dest = course.autograded_dir(student)
    if dest.exists():
        shutil.rmtree(dest)
    write_tree(dest, out.files)
    state[student] = digest
    return StudentResult(student, "flagged" if out.flags else "graded", out.message, scores=course.scores(student),
                         seconds=out.seconds, peak_memory_mb=out.peak_memory_mb, attempts=attempts)
