"""Grading a class: every submission autograded in its own scratch course, the student's kernel in the
bubblewrap sandbox, every autograded point decided by the trusted harness, in parallel, merged by
one writer.

``grade_submissions`` (the instructor's process):

1. checks before grading anything (:mod:`autograder.engine.preflight`): a failure there is the
   grading machine's, so every submission is reported with its cause for the instructor, none gets a 0;
2. builds one ``GradingJob`` per submission whose regrade key changed
   (:mod:`autograder.engine.regrade_key`: the submission, the source notebooks, the mode, the
   kernel's environment, the limits, the hidden tests, the reference values, the kit and the data;
   the report says which part changed; ``force`` regrades all);
3. runs them (``scheduling.run_jobs``: a local Dask cluster or an existing one) with
   ``worker.grade_one``, and merges each result as it arrives into the main gradebook
   (``gradebook.merge_rows``) and ``autograded/``. A result that is not ok (a grader fault, a lost
   worker) is reported, never merged as zeros; flags (e.g. a model that looks its inputs up) are
   merged and listed for the instructor.
4. records each student's outcome (status, seconds, peak memory, message) in ``GRADING_LOG``,
   which the class report reads (:func:`read_grading_log`).

SIGTERM and SIGHUP end grading like Ctrl-C: the cluster closes, and each kernel's launcher, seeing
its grading process gone, ends its sandbox.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.harness.cells import grading_plan
from autograder.isolation.sandbox import require_bwrap
from autograder.locations import KIT_DATA

from . import compat
from .course import Course
from .gradebook import copy_assignment, in_gradebook, merge_rows
from .preflight import GradingUnavailable, preflight
from .records import GradingJob, GradingResult
from .regrade_key import changed_parts, class_key, regrade_reason, submission_key
from .scheduling import kernel_threads, run_jobs, start_forkserver
from .tampering import restore_files
from .trees import read_tree, write_tree

log = logging.getLogger(__name__)
STATE_FILE = ".a2kit-grading.json"   # in the course root: the regrade key of each graded submission
KEY_FILE = ".a2kit-key"              # in the course root: the secret behind the hidden tests' inputs
GRADING_LOG = "grading_log.csv"      # in the course root: each student's latest grading (status, seconds, message)
LOG_COLUMNS = ["student", "status", "points", "seconds", "peak_MB", "message", "graded_at"]


@dataclass
class StudentResult:
    """One student's outcome. ``scores`` is as ``Course.scores``: ``{notebook: {grade_id: (score, max)}}``."""

    student: str
    status: str                      # "graded" | "flagged" (graded, see message) | "unchanged" | "failed"
    message: str = ""                # plain words: what failed, which limit a cell hit, what was flagged
    why: str = ""                    # why it was graded again ("mode changed", "no earlier grading")
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
        """A pandas DataFrame: student, status, points, seconds, peak memory, message, why it was graded."""
        import pandas as pd

        rows = [{"student": s, "status": r.status, "points": r.points, "seconds": round(r.seconds, 1),
                 "peak_MB": round(r.peak_memory_mb), "message": r.message, "why": r.why}
                for s, r in sorted(self.results.items())]
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


# -- state between runs -----------------------------------------------------------------------------
def _students(course: Course, students: list[str] | None) -> list[str]:
    if students:
        return list(students)
    submitted = course.root / "submitted"
    return sorted(p.name for p in submitted.iterdir() if (p / course.assignment).is_dir()) if submitted.is_dir() else []


def read_grading_log(course: Course):
    """``GRADING_LOG`` as a pandas DataFrame indexed by student (empty when nothing was graded yet)."""
    import pandas as pd

    path = course.root / GRADING_LOG
    if not path.exists():
        return pd.DataFrame(columns=LOG_COLUMNS).set_index("student")
    return pd.read_csv(path, dtype={"student": str, "message": str}, keep_default_na=False).set_index("student")


def _save_log(course: Course, report: "GradeReport") -> None:
    """Each student this run graded or failed replaces their row of ``GRADING_LOG``; unchanged ones keep theirs."""
    import pandas as pd

    table = report.table()
    if not len(table):
        return
    table = table[table["status"] != "unchanged"].assign(graded_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    old = read_grading_log(course)
    merged = pd.concat([old.drop(index=table.index, errors="ignore"), table[LOG_COLUMNS[1:]]]).sort_index()
    merged.index.name = "student"
    merged.to_csv(course.root / GRADING_LOG)


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
def grading_env(data: str | None = None, fast: bool = False) -> dict[str, str]:
    """Environment passed into each grading kernel: the data folder and the speed."""
    env = {"A2_FAST": "1" if fast else "0"}
    if data:
        env["A2_DATA"] = str(Path(data).resolve())
    elif os.environ.get("A2_DATA"):
        env["A2_DATA"] = os.environ["A2_DATA"]
    elif (KIT_DATA / "cifar-10-batches-py").is_dir():
        env["A2_DATA"] = str(KIT_DATA)
    return env


WALL_SLACK = 3   # the wall clock allows this many times the CPU-time budget: a busy machine is not the student's fault


def kernel_limits(timeout_s: float, memory_gb: float, env: dict) -> dict:
    """The fields of ``sandbox.Limits`` for each notebook's kernel.

    ``timeout_s`` is CPU time: what one core may spend on one notebook. It is the budget whose use
    makes a kill the student's (``budget_s``); each process may use it on each of the threads the
    kernel is given (``cpu_s``, RLIMIT_CPU); the wall clock allows ``WALL_SLACK`` times it, and a kernel
    it kills before the budget is used is the machine's fault (retried, then reported, never a 0)."""
    threads = int(env.get("OMP_NUM_THREADS") or 1)
    return {"budget_s": float(timeout_s), "cpu_s": int(timeout_s * max(1, threads)),
            "wall_s": float(timeout_s) * WALL_SLACK, "memory_gb": float(memory_gb)}


def default_cell_timeout() -> float:
    """The per-cell limit when ``--cell-timeout`` is not given: nbgrader's ``Execute.timeout`` in the kit's config."""
    from .course import nbgrader_config

    return float(nbgrader_config(Path(".")).Execute.timeout)


def changed_submissions(course: Course, names: list[str], force: bool, state: dict, report: "GradeReport",
                        common: dict[str, str]) -> tuple[dict[str, dict], dict[str, str]]:
    """``({student: regrade key}, {student: why})`` of the submissions to grade; the others go into
    ``report`` (unchanged or failed). ``state``: the keys of the last grading (``STATE_FILE``);
    ``common``: the key's parts shared by the class (``regrade_key.class_key``)."""
    todo, why = {}, {}
    for student in names:
        folder = course.submitted_dir(student)
        if not folder.is_dir():
            report.results[student] = StudentResult(student, "failed", f"no submission folder {folder}")
            continue
        key = submission_key(common, folder)
        parts = changed_parts(state.get(student), key)
        if not parts and not in_gradebook(course, student):
            parts = ["no grade in the gradebook"]
        if force or parts:
            todo[student], why[student] = key, "forced" if force and not parts else regrade_reason(parts)
        else:
            report.results[student] = StudentResult(student, "unchanged", scores=course.scores(student))
    return todo, why


def build_jobs(course: Course, students: list[str], plan: dict, env: dict, limits: dict,
               **options) -> dict[str, GradingJob]:
    """One self-contained job per student: files, the assignment's gradebook template, plan, limits, key.

    Each submission's grading cells are restored from the release first (``tampering.restore_files``):
    nbgrader grades the notebooks as released, with the student's answers, and the job names what
    was restored."""
    course_id = course.config.CourseDirectory.course_id
    with tempfile.TemporaryDirectory(prefix="a2kit-template-") as tmp:
        template_url = f"sqlite:///{Path(tmp) / 'gradebook.db'}"
        copy_assignment(course.db_url, template_url, course.assignment, course_id)
        template = (Path(tmp) / "gradebook.db").read_bytes()
    source = read_tree(course.source_dir)
    key = course_key(course)
    jobs = {}
    for student in students:
        files, tampering = restore_files(read_tree(course.submitted_dir(student)), course.release_dir)
        jobs[student] = GradingJob(student, course.assignment, course_id, files, source, template, plan, env=env,
                                   limits=limits, key=key, tampering=tampering, **options)
    return jobs


@contextlib.contextmanager
def _autograde_environment():
    """``NBGRADER_EXECUTION=autograde`` while grading (nbgrader's own setting), restored after."""
    saved = os.environ.get("NBGRADER_EXECUTION")
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("NBGRADER_EXECUTION", None)
        else:
            os.environ["NBGRADER_EXECUTION"] = saved


def grade_submissions(course: Course, students: list[str] | None = None, *, workers: int = 2,
                      scheduler: str | None = None, timeout_s: float = 900, cell_timeout_s: float | None = None,
                      memory_gb: float = 4.0, unsafe: bool = False, force: bool = False,
                      env: dict[str, str] | None = None, progress: bool = True,
                      notebook_folders: list[str] | None = None) -> GradeReport:
    """Autograde ``students`` (default: every collected submission), sandboxed and in parallel.

    A submission graded before whose regrade key (:mod:`autograder.engine.regrade_key`) is unchanged
    is "unchanged" (unless ``force``); the others say in ``why`` what changed. ``timeout_s`` is the CPU
    time one notebook's kernel may use (the wall clock allows ``WALL_SLACK`` times it: see
    :func:`kernel_limits`); ``cell_timeout_s`` overrides nbgrader's per-cell ``Execute.timeout``;
    ``memory_gb`` bounds each process's data. ``env`` goes into the sandbox (e.g. ``A2_FAST=1``, ``A2_DATA=...``; the data
    folder is also where the hidden tests read the test set). ``notebook_folders``: folders of
    notebook folders beyond the kit's (:mod:`autograder.notebooks`), for a course's own notebooks.
    Raises SandboxUnavailable when bubblewrap is missing, unless ``unsafe``.
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    if unsafe:
        log.warning("grading WITHOUT the bubblewrap sandbox (--unsafe): student code runs with your rights. "
                    "Never do this with real submissions.")
    else:
        require_bwrap()
    # The internals the fork server reads are checked first: with one missing nothing starts, and the
    # preflight below names it for every submission.
    if workers > 1 and not scheduler and not compat.missing_internals():
        start_forkserver()   # its imports overlap with the preparation below
    report = GradeReport(workers=workers)
    state = _load_state(course)
    env = {**(kernel_threads(workers) if not scheduler else {}), **(env or {})}
    folders = [str(Path(f).resolve()) for f in notebook_folders or []]
    limits = kernel_limits(timeout_s, memory_gb, env)
    # (RLIMIT_CPU follows the thread count, as the thread counts do: the key holds the limits the instructor set)
    set_limits = {k: v for k, v in limits.items() if k != "cpu_s"}
    common = class_key(course.source_dir, env, {**set_limits, "cell_timeout_s": cell_timeout_s}, folders)
    digests, why = changed_submissions(course, _students(course, students), force, state, report, common)
    plan = grading_plan(course.source_dir)
    try:
        if digests:
            preflight(plan, env, unsafe, folders, local_sandbox=not scheduler)
    except GradingUnavailable as exc:
        log.error("nothing graded: %s", exc)
        for student in digests:
            report.results[student] = StudentResult(student, "failed", f"not graded: {exc}", why=why[student])
        digests = {}
    if not digests:
        report.seconds = time.perf_counter() - started
        _save_log(course, report)
        return report

    jobs = build_jobs(course, list(digests), plan, env, limits,
                      cell_timeout_s=cell_timeout_s, unsafe=unsafe, notebook_folders=folders)
    bar = tqdm(total=len(jobs), desc="grade", unit="submission", disable=not progress)

    def on_result(out: GradingResult, attempts: int) -> None:
        result = _finish(course, out, attempts, digests[out.student], state)
        result.why = why[out.student]
        report.results[out.student] = _named_tampering(result, jobs[out.student].tampering)
        bar.update(1)

    try:
        with _autograde_environment(), _terminations_interrupt():
            run_jobs(jobs, on_result, workers, scheduler)
    finally:
        bar.close()
        _save_state(course, state)
        _save_log(course, report)
    report.seconds = time.perf_counter() - started
    return report


def _named_tampering(result: StudentResult, tampering: list[str]) -> StudentResult:
    """A graded submission whose grading cells were restored is flagged, and the status says which cells."""
    if tampering:
        result.message = "; ".join(filter(None, ["grading cells changed, graded as released: " + "; ".join(tampering),
                                                 result.message]))
        if result.status == "graded":
            result.status = "flagged"
    return result


def _finish(course: Course, out: GradingResult, attempts: int, key: dict, state: dict) -> StudentResult:
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
    state[student] = key
    return StudentResult(student, "flagged" if out.flags else "graded", out.message, scores=course.scores(student),
                         seconds=out.seconds, peak_memory_mb=out.peak_memory_mb, attempts=attempts)
