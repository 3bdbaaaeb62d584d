"""Grading one submission (a Dask task): nbgrader's autograde in a scratch course, the student's
kernel in the sandbox, every test cell decided by the harness.

``grade_one(job)`` lays out a one-student nbgrader course in a scratch folder from the job's files,
writes the sandbox kernelspec, runs nbgrader's own ``autograde`` with ``HarnessExecute`` in place of
``Execute`` (see ``autograder.harness.execute``) and returns the scratch gradebook's rows and the
autograded files. It never raises: a failure is a result with ``ok=False`` and its cause.

What the sandbox sees (``SandboxSpec``): per notebook, a fresh copy of the submitted files where the
notebook lives and a fresh home; the kit's ``a2lib``; the training part of the data folder; an inbox
for the harness's inputs (read-only). Not the gradebook, the source notebooks, the references, the
test set, the other notebooks' scratch files, nor the autograded folder nbgrader writes.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
import traceback
from pathlib import Path

from autograder.isolation.sandbox import Limits, SandboxSpec, data_view
from autograder.notebooks import load_hidden_tests

from . import compat
from .course import nbgrader_config
from .gradebook import read_rows
from .records import GradingJob, GradingResult
from .trees import read_tree, write_tree

MAX_RESULT_FILE_MB = 64              # autograded files beyond this size are not copied back
SLOT_LOCKS = Path(tempfile.gettempdir()) / "a2kit-slots"


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


def problems_in_outputs(folder: Path) -> list[str]:
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
                    evalue = str(out.get("evalue", ""))
                    text = (evalue[:200] if name == "DeadKernelError" and evalue else words.get(name)) or (
                        "process limit reached" if "Resource temporarily unavailable" in evalue else None)
                    if text and f"{path.stem}: {text}" not in found:
                        found.append(f"{path.stem}: {text}")
    return found


GENERIC_DEATH = "the kernel died (memory limit reached, or a crash)"   # the harness's words: it cannot know why


def name_kernel_deaths(folder: Path, launches: list[dict]) -> list[str]:
    """Put the true cause of each kernel's death (the launcher's record: time, memory or a crash) in the
    autograded notebooks' texts in place of the harness's generic words; returns the notebooks changed.

    nbgrader grades the notebooks one after the other in name order, one kernel each, so the deaths in
    the notebooks (name order) are the launches that ended with a cause (start order); when the two
    counts differ and the causes differ, the generic words stay."""
    causes = [r["cause"] for r in sorted(launches, key=lambda r: r.get("started_at", 0)) if r.get("cause")]
    dead = [p for p in sorted(folder.glob("*.ipynb")) if GENERIC_DEATH in p.read_text(errors="replace")]
    if not causes or not dead:
        return []
    if len(causes) != len(dead):
        if len(set(causes)) != 1:
            return []
        causes = causes[:1] * len(dead)
    for path, cause in zip(dead, causes):
        path.write_text(path.read_text().replace(GENERIC_DEATH, f"the kernel died ({cause})"))
    return [p.stem for p in dead]


def time_limit_hit(launches: list[dict]) -> bool:
    """True when a kernel of ``launches`` (the launcher's records) was stopped by its time limit: the wall clock,
    or its CPU time as the launcher read it (``cause``: bwrap reports a signal as 128 + it, which the raw exit
    status does not show)."""
    return any(r.get("timed_out") or str(r.get("cause") or "").startswith("time limit") for r in launches)


def grade_one(job: GradingJob) -> GradingResult:
    """Autograde one submission in a scratch course; never raises (see the module docstring)."""
    start = time.perf_counter()
    result = GradingResult(job.student)
    with grading_slot() as slot, tempfile.TemporaryDirectory(prefix="a2g-") as tmp:
        try:
            _grade_in_scratch(job, Path(tmp), slot, result)
        except Exception as exc:  # a grading error is reported, not raised: the other students go on
            result.ok = False
            result.message = f"grader error: {exc.__class__.__name__}: {exc}"
            result.log = traceback.format_exc()
    result.seconds = time.perf_counter() - start
    return result


def sandbox_spec(job: GradingJob, tmp: Path, slot: int, workdir: Path, submitted: Path):
    """The sandbox of this job's kernels, and the inbox folder the harness writes into."""
    env = dict(job.env)
    gpus = visible_gpus()
    env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)] if gpus else ""
    mounts = {}
    if env.get("A2_DATA"):  # the kernel sees the training batches only, at the resolved path
        env["A2_DATA"], mounts = data_view(env["A2_DATA"])
    inbox = tmp / "inbox"
    inbox.mkdir(mode=0o755)
    kernel_dir = tmp / "k"
    kernel_dir.mkdir(mode=0o755)
    records = tmp / "launches"  # the launcher's reports and the kernel's log, out of the student's reach
    records.mkdir()
    spec = SandboxSpec(workdir=str(workdir), kernel_dir=str(kernel_dir), read_only=[str(inbox)], read_only_at=mounts,
                       submission_dir=str(submitted), launch_root=str(tmp / "scratch"), env=env,
                       limits=Limits(**job.limits), slot=slot, unsafe=job.unsafe, record_dir=str(records))
    return spec, inbox


def _scratch_course(job: GradingJob, tmp: Path, slot: int):
    """A one-student nbgrader course in ``tmp``: its config (``HarnessExecute`` in place of ``Execute``, the
    sandbox kernel), the sandbox spec, the autograded folder and the verdict record's path."""
    from nbgrader.converters.autograde import Autograde

    from autograder.harness.execute import BoundedOutput, HarnessExecute
    from autograder.isolation.kernel import KERNEL_NAME, write_kernelspec

    root = tmp / "c"
    submitted = root / "submitted" / job.student / job.assignment
    autograded = root / "autograded" / job.student / job.assignment
    write_tree(root / "source" / job.assignment, job.source)
    write_tree(submitted, job.submission)
    (root / "gradebook.db").write_bytes(job.template)
    spec, inbox = sandbox_spec(job, tmp, slot, autograded, submitted)
    spec_path = tmp / "spec.json"
    spec_path.write_text(json.dumps(spec.to_dict()))
    write_kernelspec(tmp / "kernels", spec_path)
    record_path = tmp / "verdicts.jsonl"

    config = nbgrader_config(root, f"sqlite:///{root / 'gradebook.db'}")
    config.CourseDirectory.course_id = job.course_id
    config.Execute.kernel_name = KERNEL_NAME
    config.SandboxKernelManager.kernel_dirs = [str(tmp / "kernels")]
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(Path(spec.kernel_dir) / "s")
    harness = config.HarnessExecute
    harness.plan, harness.inbox, harness.record_path = job.plan, str(inbox), str(record_path)
    harness.student, harness.key = job.student, job.key
    harness.launch_records, harness.memory_gb = spec.record_dir, float(spec.limits.memory_gb)
    harness.fast = job.env.get("A2_FAST", "0") == "1"
    harness.data_root = job.env.get("A2_DATA", "")
    if job.cell_timeout_s:
        config.Execute.timeout = int(job.cell_timeout_s)
    ours = {"Execute": HarnessExecute, "LimitOutput": BoundedOutput}
    config.Autograde.autograde_preprocessors = [
        ours.get(p.__name__, p) for p in Autograde.class_traits()["autograde_preprocessors"].default()]
    return config, spec, autograded, record_path


def _grade_in_scratch(job: GradingJob, tmp: Path, slot: int, result: GradingResult) -> None:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    compat.apply()
    load_hidden_tests(job.notebook_folders)
    config, spec, autograded, record_path = _scratch_course(job, tmp, slot)
    out = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config).autograde(job.assignment, job.student)
    launches = [json.loads(p.read_text()) for p in sorted(Path(spec.record_dir).glob("launcher-*.json"))]
    result.peak_memory_mb = max([r["peak_memory_mb"] for r in launches] or [0.0])
    problems = [r["problem"] for r in launches if r.get("problem")]
    problems += problems_in_outputs(autograded) if autograded.exists() else []
    verdicts = [json.loads(line) for line in record_path.read_text().splitlines()] if record_path.exists() else []
    result.flags = [v["message"] for v in verdicts if v["kind"] == "flag"]
    grader_errors = [v for v in verdicts if v["kind"] == "grader_error"]
    # A kernel that died with no limit of ours to blame (the OOM killer, a crash): worth one retry.
    text = (out.get("error") or "") + "\n" + (out.get("log") or "")
    result.retry = not out["success"] and "Kernel died" in text and not time_limit_hit(launches)
    slow = [r for r in launches if r.get("machine_slow")]
    if slow:  # the wall clock ran out before the student's CPU-time budget: the machine's fault, never a 0
        result.retry = True
        result.message = ("not graded: the machine was too busy (" + "; ".join(r["problem"] for r in slow) +
                          "); run `a2kit grade` again when it is quieter, or with fewer --workers")
        result.log = text[-20000:]
        return
    if autograded.exists():
        name_kernel_deaths(autograded, launches)
    if grader_errors:  # the grader's fault: never a student's 0
        names = ", ".join(f"{v['notebook']}/{v['grade_id']}" for v in grader_errors)
        result.message = f"grader error in {names}: {grader_errors[0]['error'].strip().splitlines()[-1]}"
        result.log = "\n".join(v["error"] for v in grader_errors)
    elif not out["success"]:
        errors = [line.strip() for line in text.splitlines() if "[ERROR]" in line or "Error" in line]
        result.message = "; ".join(problems + errors[-2:])[-500:] or "nbgrader autograde failed"
        result.log = text[-20000:]
    else:
        result.rows = read_rows(config.CourseDirectory.db_url, job.assignment, job.student, job.course_id)
        result.files = read_tree(autograded, skip=(), max_file_bytes=MAX_RESULT_FILE_MB * 2**20) if autograded.exists() else {}
        result.ok = True
        result.message = "; ".join(problems + result.flags)
