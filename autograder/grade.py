"""The grading engine: every submission autograded by nbgrader in its own scratch course, with the
student's kernel inside the bubblewrap sandbox, in parallel on Dask, merged by one writer.

How one submission is graded (``grade_one``, a Dask task; it needs no shared file system):

1. The task carries the submission's files, the assignment's source files and a template
   gradebook (the assignment's definitions copied from the main gradebook, no students).
2. In a scratch folder it lays out a one-student nbgrader course and runs nbgrader's own
   ``autograde`` on it, with the kernel replaced by ``autograder.kernel`` (ipykernel inside
   bubblewrap, Unix-socket transport, limits) — nbgrader itself stays outside the sandbox, so the
   student's code can neither read the hidden tests and reference values nor write grades.
3. It returns the scratch gradebook's rows for that student and the autograded files.

``grade_submissions`` (in the instructor's process) sends the tasks, merges each result into the
main gradebook (the only writer: SQLite is safe, PostgreSQL too), copies the autograded files into
the course, and remembers a content hash per student so that a re-run grades only what changed.
A task that raises (a worker that died, a lost connection) is retried by Dask; a kernel killed by
a signal it was not sent (the OOM killer) is retried once here; a cluster where nothing finishes for
longer than one submission may take is reported, not waited on. Local workers come from a fork
server (``_start_forkserver``) and split the machine's cores (``kernel_threads``).

Reference values: the hidden tests read them with ``a2lib.reference.load(NAME)``. The sandbox does
not mount ``autograder/``; the trusted side (``InjectingExecute``) copies the values into a fresh
folder of the kernel's scratch space just before each hidden-test cell runs and deletes it right after,
and points ``load`` there; ``load`` answers only to the test cell's own top-level code (directly
or through ``a2lib``'s checks), not to a student's function that the test calls.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from autograder import nbgrader_fixes
from autograder.course import Course, nbgrader_config
from autograder.kernel import KERNEL_NAME, write_kernelspec
from autograder.sandbox import Limits, SandboxSpec, check_bwrap

STATE_FILE = ".a2kit-grading.json"   # in the course root: content hash of each graded submission
MAX_RESULT_FILE_MB = 64              # files the kernel wrote beyond this size are not copied back
SLOT_LOCKS = Path(tempfile.gettempdir()) / "a2kit-slots"
ATTEMPTS = 2                         # a kernel killed by a signal nobody sent gets a second chance
STALL_GRACE_S = 300                  # beyond the kernels' own limits, before a silent cluster counts as stalled


# -- report ----------------------------------------------------------------------------------------
@dataclass
class StudentResult:
    """One student's outcome. ``scores`` is as ``Course.scores``: ``{notebook: {grade_id: (score, max)}}``."""

    student: str
    status: str                      # "graded" | "unchanged" | "failed"
    message: str = ""                # plain words: what failed, or which limit a cell hit
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
        return any(r.status == "failed" for r in self.results.values())

    def table(self):
        """A pandas DataFrame: student, status, points, seconds, peak memory, message."""
        import pandas as pd

        rows = [{"student": s, "status": r.status, "points": r.points, "seconds": round(r.seconds, 1),
                 "peak_MB": round(r.peak_memory_mb), "message": r.message} for s, r in sorted(self.results.items())]
        return pd.DataFrame(rows).set_index("student") if rows else pd.DataFrame()


# -- files and hashes --------------------------------------------------------------------------------
def _read_tree(folder: Path, skip: tuple[str, ...] = (".ipynb_checkpoints", "__pycache__")) -> dict[str, bytes]:
    out = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not path.is_symlink() and not any(part in skip for part in path.parts):
            out[str(path.relative_to(folder))] = path.read_bytes()
    return out


def _write_tree(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def tree_hash(folder: Path) -> str:
    """SHA-256 over the relative paths and contents of every file in ``folder``."""
    h = hashlib.sha256()
    for rel, data in _read_tree(folder).items():
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


# -- gradebook: template out of the main one, rows back into it --------------------------------------
def copy_assignment(src_url: str, dst_url: str, assignment: str, course_id: str | None = None) -> None:
    """Copy ``assignment``'s definitions (notebooks, graded/solution/task/source cells) between gradebooks."""
    from nbgrader.api import Gradebook

    nbgrader_fixes.apply()
    with Gradebook(src_url, course_id) as src, Gradebook(dst_url, course_id) as dst:
        a = src.find_assignment(assignment)
        dst.update_or_create_assignment(assignment, duedate=a.duedate)
        for nb in a.notebooks:
            dst.update_or_create_notebook(nb.name, assignment, kernelspec=nb.kernelspec)
            for c in nb.grade_cells:
                dst.update_or_create_grade_cell(c.name, nb.name, assignment, max_score=c.max_score, cell_type=c.cell_type)
            for c in nb.solution_cells:
                dst.update_or_create_solution_cell(c.name, nb.name, assignment)
            for c in nb.task_cells:
                dst.update_or_create_task_cell(c.name, nb.name, assignment, max_score=c.max_score, cell_type=c.cell_type)
            for c in nb.source_cells:
                dst.update_or_create_source_cell(c.name, nb.name, assignment, cell_type=c.cell_type, locked=c.locked,
                                                 source=c.source, checksum=c.checksum)


def read_rows(db_url: str, assignment: str, student: str, course_id: str | None = None) -> dict:
    """The gradebook rows autograde wrote for ``student`` (JSON-able)."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url, course_id) as gb:
        sub = gb.find_submission(assignment, student)
        rows = {"timestamp": sub.timestamp.isoformat() if sub.timestamp else None, "notebooks": {}}
        for nb in sub.notebooks:
            rows["notebooks"][nb.name] = {
                "late_submission_penalty": nb.late_submission_penalty,
                "grades": {g.name: {"auto_score": g.auto_score, "needs_manual_grade": g.needs_manual_grade}
                           for g in nb.grades},
                "comments": {c.name: c.auto_comment for c in nb.comments},
            }
    return rows


def merge_rows(course: Course, student: str, rows: dict) -> None:
    """Write a scratch course's rows into the main gradebook (manual grades there are kept)."""
    from datetime import datetime

    from nbgrader.api import Gradebook

    course_id = course.config.CourseDirectory.course_id
    with Gradebook(course.db_url, course_id) as gb:
        gb.update_or_create_student(student)
        kwargs = {"timestamp": datetime.fromisoformat(rows["timestamp"])} if rows.get("timestamp") else {}
        gb.update_or_create_submission(course.assignment, student, **kwargs)
        for nb_name, nb in rows["notebooks"].items():
            snb = gb.find_submission_notebook(nb_name, course.assignment, student)
            snb.late_submission_penalty = nb["late_submission_penalty"]
            grades = {g.name: g for g in snb.grades}
            for name, values in nb["grades"].items():
                grades[name].auto_score = values["auto_score"]
                grades[name].needs_manual_grade = values["needs_manual_grade"]
            comments = {c.name: c for c in snb.comments}
            for name, text in nb["comments"].items():
                comments[name].auto_comment = text
        gb.db.commit()


# -- one submission (runs on a Dask worker) ----------------------------------------------------------
@contextlib.contextmanager
def grading_slot(max_slots: int = 512):
    """An exclusive slot number on this machine (it picks the sandbox uid and the GPU)."""
    SLOT_LOCKS.mkdir(parents=True, exist_ok=True)
    for slot in range(max_slots):
        fd = os.open(SLOT_LOCKS / f"{slot}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield slot
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    raise RuntimeError("no free grading slot")


def visible_gpus() -> list[str]:
    """GPU indices this machine offers (``CUDA_VISIBLE_DEVICES`` if set, else /dev/nvidiaN)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return [g for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    return sorted((p.name[len("nvidia"):] for p in Path("/dev").glob("nvidia[0-9]*")), key=int)


def _problems_in_outputs(folder: Path) -> list[str]:
    """Limits hit inside cells, in plain words (from the autograded notebooks' error outputs)."""
    import nbformat

    words = {"MemoryError": "memory limit reached", "CellTimeoutError": "a cell ran past the time limit",
             "DeadKernelError": "the kernel died", "BlockingIOError": "process limit reached"}
    found = []
    for path in sorted(folder.glob("*.ipynb")):
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:
            continue
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    name = out.get("ename", "")
                    text = words.get(name) or ("process limit reached" if "Resource temporarily unavailable" in
                                               str(out.get("evalue", "")) else None)
                    if text and f"{path.stem}: {text}" not in found:
                        found.append(f"{path.stem}: {text}")
    return found


def grade_one(job: dict) -> dict:
    """Autograde one submission in a scratch course; return its gradebook rows and autograded files.

    ``job`` keys: student, assignment, course_id, submission (files), source (files), template
    (gradebook bytes), env, limits (Limits fields), cell_timeout_s, unsafe, references ({name: file bytes}).
    """
    start = time.perf_counter()
    with grading_slot() as slot, tempfile.TemporaryDirectory(prefix="a2g-") as tmp:
        result = {"student": job["student"], "ok": False, "message": "", "rows": None, "files": {},
                  "seconds": 0.0, "peak_memory_mb": 0.0, "retry": False}
        try:
            _grade_in_scratch(job, Path(tmp), slot, result)
        except Exception as exc:  # a grading error is reported, not raised: the other students go on
            result["message"] = f"grader error: {exc.__class__.__name__}: {exc}"
            result["traceback"] = traceback.format_exc()
        result["seconds"] = time.perf_counter() - start
        return result


def _grade_in_scratch(job: dict, tmp: Path, slot: int, result: dict) -> None:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    nbgrader_fixes.apply()
    student, assignment = job["student"], job["assignment"]
    root, kernel_dir = tmp / "c", tmp / "k"
    _write_tree(root / "source" / assignment, job["source"])
    _write_tree(root / "submitted" / student / assignment, job["submission"])
    (root / "gradebook.db").write_bytes(job["template"])
    kernel_dir.mkdir()
    record_dir = tmp / "launches"  # the launcher's reports, out of the student's reach
    record_dir.mkdir()
    ref_dir = tmp / "ref"
    _write_tree(ref_dir, job.get("references") or {})

    env = dict(job.get("env") or {})
    gpus = visible_gpus()
    env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)] if gpus else ""
    spec = SandboxSpec(workdir=str(root / "autograded" / student / assignment), kernel_dir=str(kernel_dir),
                       read_only=[p for p in [env.get("A2_DATA")] if p], env=env,
                       limits=Limits(**job["limits"]), slot=slot, unsafe=job["unsafe"],
                       record_dir=str(record_dir))
    spec_path = tmp / "spec.json"
    spec_path.write_text(json.dumps(spec.to_dict()))
    write_kernelspec(tmp / "kernels", spec_path)

    config = nbgrader_config(root, f"sqlite:///{root / 'gradebook.db'}")
    config.CourseDirectory.course_id = job["course_id"]
    config.Execute.kernel_name = KERNEL_NAME
    config.SandboxKernelManager.kernel_dirs = [str(tmp / "kernels")]
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(kernel_dir / "s")
    config.InjectingExecute.reference_dir = str(ref_dir)
    config.InjectingExecute.kernel_dir = str(kernel_dir)
    if job.get("cell_timeout_s"):
        config.Execute.timeout = int(job["cell_timeout_s"])
    from nbgrader.converters.autograde import Autograde

    preprocessors = [injecting_execute() if p.__name__ == "Execute" else p
                     for p in Autograde.class_traits()["autograde_preprocessors"].default()]
    config.Autograde.autograde_preprocessors = preprocessors

    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    out = api.autograde(assignment, student)
    launches = [json.loads(p.read_text()) for p in sorted(record_dir.glob("launcher-*.json"))]
    result["peak_memory_mb"] = max([r["peak_memory_mb"] for r in launches] or [0.0])
    problems = [r["problem"] for r in launches if r.get("problem")]
    autograded = root / "autograded" / student / assignment
    problems += _problems_in_outputs(autograded) if autograded.exists() else []
    # A kernel that died with no limit of ours to blame (the OOM killer, a crash): worth one retry.
    log = (out.get("error") or "") + "\n" + (out.get("log") or "")
    result["retry"] = not out["success"] and "Kernel died" in log and not any(r.get("timed_out") for r in launches)
    if not out["success"]:
        errors = [l.strip() for l in log.splitlines() if "[ERROR]" in l or "Error" in l]
        result["message"] = "; ".join(problems + errors[-2:])[-500:] or "nbgrader autograde failed"
        result["log"] = log[-20000:]
        return
    result["rows"] = read_rows(config.CourseDirectory.db_url, assignment, student, job["course_id"])
    files = {}
    if autograded.exists():
        for path in sorted(autograded.rglob("*")):
            if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_RESULT_FILE_MB * 2**20:
                files[str(path.relative_to(autograded))] = path.read_bytes()
    result.update(ok=True, files=files, message="; ".join(problems))


# -- reference values, injected into the kernel only while a test cell runs -------------------------
def _make_injecting_execute():
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_core.utils import run_sync
    from jupyter_client.manager import AsyncKernelManager
    from nbgrader.preprocessors import Execute
    from traitlets import List, Unicode, default

    class SandboxKernelManager(AsyncKernelManager):
        """Finds the sandbox kernelspec in the scratch course's own kernels folder."""

        kernel_dirs = List([], help="kernelspec folders searched first").tag(config=True)

        @default("kernel_spec_manager")
        def _sandbox_kernel_spec_manager(self):
            ksm = KernelSpecManager(data_dir=self.data_dir)
            ksm.kernel_dirs = list(self.kernel_dirs) + ksm.kernel_dirs
            return ksm

    class InjectingExecute(Execute):
        """nbgrader's Execute, plus reference values present in the kernel only during test cells."""

        reference_dir = Unicode("", help="folder of reference values (NAME.npz / NAME.json)").tag(config=True)

        def __init__(self, *args, **kwargs):
            kwargs["kernel_manager_class"] = SandboxKernelManager
            super().__init__(*args, **kwargs)

        kernel_dir = Unicode("", help="the kernel's scratch folder (visible in the sandbox)").tag(config=True)

        def _has_references(self) -> bool:
            folder = Path(self.reference_dir) if self.reference_dir else None
            return bool(folder and folder.is_dir() and any(folder.iterdir()))

        def preprocess_cell(self, cell, resources, index):
            # (nbclient's execute_cell is bound to the base class's coroutine: override here.)
            meta = cell.get("metadata", {}).get("nbgrader", {})
            # Only hidden tests read reference values (public tests use their own fixed cases).
            needs = cell.cell_type == "code" and meta.get("grade") and not meta.get("solution") and \
                "BEGIN HIDDEN TESTS" in cell.source and self._has_references()
            if not needs:
                return super().preprocess_cell(cell, resources, index)
            # The values exist in the sandbox only while this test cell runs, in a fresh folder.
            shown = Path(tempfile.mkdtemp(prefix=".ref-", dir=self.kernel_dir))
            for path in Path(self.reference_dir).iterdir():
                if path.suffix in (".npz", ".json"):
                    shutil.copyfile(path, shown / path.name)
                    os.chmod(shown / path.name, 0o644)
            os.chmod(shown, 0o755)
            try:
                run_sync(self._run_silently)(INJECT_CODE % repr(str(shown)))
                return super().preprocess_cell(cell, resources, index)
            finally:
                run_sync(self._run_silently)(CLEAR_CODE)
                shutil.rmtree(shown, ignore_errors=True)

        async def _run_silently(self, code: str) -> None:
            msg_id = self.kc.execute(code, silent=True, store_history=False, allow_stdin=False)
            await self.async_wait_for_reply(msg_id)

    return InjectingExecute


# Runs in the kernel before a test cell: ``a2lib.reference.load`` answers from memory, and only to
# top-level code of an executing cell (a student's function that calls it gets a PermissionError).
INJECT_CODE = r'''
def __a2kit_inject(folder):
    import json, os, sys, numpy as np, a2lib.reference as ref
    kit = os.path.dirname(ref.__file__) + os.sep
    cells = os.path.join(__import__("tempfile").gettempdir(), "ipykernel_")
    def load(name):
        caller = sys._getframe(1)
        while caller is not None and caller.f_code.co_filename.startswith(kit):  # a2lib's checks may ask
            caller = caller.f_back
        if caller is None or caller.f_code.co_name != "<module>" or not caller.f_code.co_filename.startswith(cells):
            raise PermissionError("reference values are only for the grader's test cells, not for student code")
        npz, js = os.path.join(folder, name + ".npz"), os.path.join(folder, name + ".json")
        if os.path.exists(npz):
            with np.load(npz, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        if os.path.exists(js):
            with open(js) as f:
                return json.load(f)
        raise FileNotFoundError(f"No reference values named {name!r}")
    ref.__a2kit_saved = getattr(ref, "__a2kit_saved", ref.load)
    ref.load = load
__a2kit_inject(%s)
del __a2kit_inject
'''
CLEAR_CODE = r'''
import a2lib.reference as __a2kit_ref
__a2kit_ref.load = getattr(__a2kit_ref, "__a2kit_saved", __a2kit_ref.load)
del __a2kit_ref
'''


_INJECTING_EXECUTE = []


def injecting_execute():
    """The ``InjectingExecute`` preprocessor class, built on first use (nbgrader imports are slow)."""
    if not _INJECTING_EXECUTE:
        _INJECTING_EXECUTE.append(_make_injecting_execute())
    return _INJECTING_EXECUTE[0]


# -- all submissions ----------------------------------------------------------------------------------
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


def _in_gradebook(course: Course, student: str) -> bool:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url, course.config.CourseDirectory.course_id) as gb:
        try:
            gb.find_submission(course.assignment, student)
            return True
        except MissingEntry:
            return False


def _reference_files() -> dict[str, bytes]:
    from a2lib.reference import reference_dir

    folder = reference_dir()
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*")) if p.suffix in (".npz", ".json")} \
        if folder.is_dir() else {}


# Imported once by the fork server, so that every worker starts with the grading stack loaded.
WORKER_PRELOAD = ["autograder.grade", "nbgrader.apps", "nbgrader.converters.autograde", "nbgrader.preprocessors",
                  "nbclient", "jupyter_client.manager", "ipykernel", "sqlalchemy"]


@functools.lru_cache(maxsize=1)
def _start_forkserver() -> None:
    """Start (in the background) the fork server that local workers come from, preloading the grading stack.

    Workers are forked from a fresh server process rather than from this one: a process that has
    already run Jupyter kernels itself (in-process grading with ``workers=1``, a notebook) or used
    CUDA holds threads, ZeroMQ contexts and locks that a plain ``fork`` copies half-alive (seen: a
    worker dying mid-grade while the cluster waited forever). Preloading makes each fork cheap; it
    must be set before the server's first start, and Dask sets its own list only once, so ours is
    added to it. Once per process; the server's imports overlap with whatever the caller does next.
    (Like any multiprocessing start but ``fork``, a script that grades needs the usual
    ``if __name__ == "__main__":`` guard.)
    """
    import multiprocessing.forkserver
    import threading

    import dask
    from distributed import utils

    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        ctx = utils.get_mp_context()
    dask_preload = multiprocessing.forkserver._forkserver._preload_modules
    ctx.set_forkserver_preload(list(dict.fromkeys(list(dask_preload) + WORKER_PRELOAD)))
    threading.Thread(target=multiprocessing.forkserver.ensure_running, daemon=True).start()


@contextlib.contextmanager
def _client(workers: int, scheduler: str | None):
    """A Dask client: the given scheduler, else a local cluster of ``workers`` single-threaded processes.

    Processes, not threads: nbgrader changes the working directory of its process while it grades,
    so two gradings must never share one. Each worker imports nbgrader once and grades many.
    """
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    _start_forkserver()
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}), \
            LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True, memory_limit=0,
                         dashboard_address=":0", scheduler_port=0, silence_logs=40) as cluster, \
            Client(cluster) as client:
        yield client


def kernel_threads(workers: int, cpus: int | None = None) -> dict[str, str]:
    """Thread counts for each kernel when ``workers`` kernels share this machine's CPUs.

    Every kernel would otherwise start one OpenMP/BLAS thread per core: with two kernels on two
    cores that is four busy threads on two cores, and OpenMP's spinning makes both slower.
    """
    n = str(max(1, (cpus or os.cpu_count() or 1) // max(1, workers)))
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}


def grade_submissions(course: Course, students: list[str] | None = None, *, workers: int = 2,
                      scheduler: str | None = None, timeout_s: float = 900, cell_timeout_s: float | None = None,
                      memory_gb: float = 4.0, unsafe: bool = False, force: bool = False,
                      env: dict[str, str] | None = None, progress: bool = True) -> GradeReport:
    """Autograde ``students`` (default: every collected submission), sandboxed and in parallel.

    Submissions graded before whose files and source did not change are "unchanged" (unless
    ``force``). ``timeout_s`` bounds one notebook's kernel (wall clock and CPU time);
    ``cell_timeout_s`` overrides nbgrader's per-cell ``Execute.timeout``; ``memory_gb`` bounds each
    process's data. ``env`` goes into the sandbox (e.g. ``A2_FAST=1``, ``A2_DATA=...``).
    Raises SandboxUnavailable when bubblewrap is missing, unless ``unsafe``.
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    if unsafe:
        print("WARNING: grading WITHOUT the bubblewrap sandbox (--unsafe): student code runs with your "
              "rights. Never do this with real submissions.", file=sys.stderr)
    else:
        check_bwrap()
    if workers > 1 and not scheduler:  # the fork server's imports overlap with the preparation below
        _start_forkserver()
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
        if not force and state.get(student) == digest and _in_gradebook(course, student):
            report.results[student] = StudentResult(student, "unchanged", scores=course.scores(student))
        else:
            todo.append((student, digest))
    if not todo:
        report.seconds = time.perf_counter() - started
        return report

    course_id = course.config.CourseDirectory.course_id
    with tempfile.TemporaryDirectory(prefix="a2kit-template-") as tmp:
        template_url = f"sqlite:///{Path(tmp) / 'gradebook.db'}"
        copy_assignment(course.db_url, template_url, course.assignment, course_id)
        template = (Path(tmp) / "gradebook.db").read_bytes()
    common = {"assignment": course.assignment, "course_id": course_id, "template": template,
              "source": _read_tree(course.source_dir), "unsafe": unsafe,
              # On this machine's own cluster the kernels share its cores (the instructor's env wins).
              "env": {**(kernel_threads(workers) if not scheduler else {}), **(env or {})},
              "limits": {"wall_s": float(timeout_s), "memory_gb": float(memory_gb)},
              "cell_timeout_s": cell_timeout_s, "references": _reference_files()}
    jobs = {student: {**common, "student": student, "submission": _read_tree(course.submitted_dir(student))}
            for student, _ in todo}
    digests = dict(todo)

    bar = tqdm(total=len(jobs), desc="grade", unit="submission", disable=not progress)
    saved_execution = os.environ.get("NBGRADER_EXECUTION")
    os.environ["NBGRADER_EXECUTION"] = "autograde"  # see _grade_in_scratch; restored below
    try:
        _run_jobs(course, jobs, digests, state, report, bar, workers, scheduler)
    finally:
        if saved_execution is None:
            os.environ.pop("NBGRADER_EXECUTION", None)
        else:
            os.environ["NBGRADER_EXECUTION"] = saved_execution
    bar.close()
    _save_state(course, state)
    report.seconds = time.perf_counter() - started
    return report


def _run_jobs(course, jobs, digests, state, report, bar, workers, scheduler, task=None) -> None:
    """Grade the jobs (on Dask, or here when one local worker), retrying kernels that died, merging
    each result as it arrives. ``task`` (default ``grade_one``) grades one job."""
    task = task or grade_one
    attempts = {s: 1 for s in jobs}

    def done(out: dict) -> bool:  # False: resubmit it
        student = out["student"]
        if out.get("retry") and attempts[student] < ATTEMPTS:
            attempts[student] += 1
            return False
        report.results[student] = _finish(course, out, attempts[student], digests[student], state)
        bar.update(1)
        return True

    if workers <= 1 and not scheduler:  # one grader: no cluster to start, grade in this process
        for student, job in jobs.items():
            while not done(task(job)):
                pass
        return

    from dask.distributed import wait

    # Every running task ends within its kernels' wall-clock limits; a cluster where nothing has
    # finished for longer than one whole submission may take has lost a worker without noticing.
    stall_s = max(job["limits"]["wall_s"] * max(1, sum(k.endswith(".ipynb") for k in job["submission"]))
                  for job in jobs.values()) + STALL_GRACE_S
    with _client(workers, scheduler) as client, warnings.catch_warnings():
        # A submission travels inside its task (no shared file system is assumed), so a task with
        # checkpoints weighs some MB: Dask warns about it; the window below bounds what is in flight.
        warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)

        def submit(student: str):
            return client.submit(task, jobs[student], key=f"grade-{student}-{attempts[student]}", retries=2,
                                 pure=False)

        # At most two tasks per worker thread in flight (enough to keep each busy): the scheduler
        # then holds a few submissions at a time, not a whole class's.
        waiting, pending = list(jobs), {}

        def fill() -> None:
            window = max(4, 2 * sum(client.nthreads().values()))
            while waiting and len(pending) < window:
                student = waiting.pop(0)
                pending[submit(student)] = student

        fill()
        while pending:
            try:
                finished, _ = wait(list(pending), timeout=stall_s, return_when="FIRST_COMPLETED")
            except TimeoutError:
                for future in pending:
                    future.cancel()
                for student in [*pending.values(), *waiting]:
                    done({"student": student, "ok": False, "seconds": 0.0, "peak_memory_mb": 0.0, "retry": False,
                          "message": f"grading stalled: no submission finished for {stall_s:.0f} s (a lost "
                                     "worker?); run `a2kit grade` again to grade this one"})
                return
            for future in finished:
                student = pending.pop(future)
                try:
                    out = future.result()
                except Exception as exc:  # the task failed on every retry (e.g. workers kept dying)
                    out = {"student": student, "ok": False, "message": f"grading task lost: {exc}", "seconds": 0.0,
                           "peak_memory_mb": 0.0, "retry": False}
                if not done(out):
                    pending[submit(student)] = student
            fill()


def _finish(course: Course, out: dict, attempts: int, digest: str, state: dict) -> StudentResult:
    """Merge one task's result into the course (gradebook + autograded files): the single writer."""
    student = out["student"]
    if not out.get("ok"):
        if os.environ.get("A2KIT_DEBUG"):
            print(out.get("log") or out.get("traceback"), file=sys.stderr)
        state.pop(student, None)
        return StudentResult(student, "failed", out.get("message") or "grading failed", seconds=out["seconds"],
                             peak_memory_mb=out.get("peak_memory_mb", 0.0), attempts=attempts)
    merge_rows(course, student, out["rows"])
    dest = course.autograded_dir(student)
    if dest.exists():
        shutil.rmtree(dest)
    _write_tree(dest, out["files"])
    state[student] = digest
    return StudentResult(student, "graded", out.get("message", ""), scores=course.scores(student),
                         seconds=out["seconds"], peak_memory_mb=out.get("peak_memory_mb", 0.0), attempts=attempts)
