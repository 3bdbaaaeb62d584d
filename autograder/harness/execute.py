"""The nbgrader preprocessor that grades through the harness (it replaces nbgrader's ``Execute``).

For each cell of a submitted notebook, by the cell's ``grade_id`` in the *source* notebook (the
plan, computed by the trusted side with :func:`autograder.harness.cells.grading_plan`; a student
cannot change it):

* a graded test cell is **not** executed in the student's kernel: its hidden test runs here and
  its outputs become the verdict (:func:`autograder.harness.outputs.verdict_outputs`). nbgrader's
  ``SaveAutoGrades`` then scores exactly that: no student output, stderr or warning can reach a
  grade cell;
* a cell tagged ``grader-skip`` in the source (training, downloads, long plots) is not run;
* every other code cell runs in the kernel as usual (the student's definitions, set-up cells).

Grader faults (a hidden test that crashes, a graded cell without a hidden test) are written to
``record_path`` for the instructor instead of turning into a student's 0; flags for the
instructor (e.g. a model that looks its inputs up) go there too. The hidden tests must be
registered (imported) before grading starts: the engine does that.
"""
from __future__ import annotations

import json
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbgrader.preprocessors import Execute, LimitOutput
from traitlets import Bool, Dict, Float, List, Unicode, default

from .cells import grade_id
from .outputs import SKIP_NOTE, bound_output, bound_outputs, error, stream, verdict_outputs
from .registry import Context, Verdict, hidden_tests, run_hidden_test
from .session import KernelSession


class SandboxKernelManager(AsyncKernelManager):
    """Finds the sandbox kernelspec in the scratch course's own kernels folder."""

    kernel_dirs = List([], help="kernelspec folders searched first").tag(config=True)

    @default("kernel_spec_manager")
    def _sandbox_kernel_spec_manager(self):
        ksm = KernelSpecManager(data_dir=self.data_dir)
        ksm.kernel_dirs = list(self.kernel_dirs) + ksm.kernel_dirs
        return ksm


class HarnessExecute(Execute):
    plan = Dict({}, help="{notebook: {grade_id: 'test' | 'skip'}} from the source notebooks").tag(config=True)
    inbox = Unicode("", help="folder the kernel reads snippet inputs from (it cannot write there)").tag(config=True)
    record_path = Unicode("", help="JSON lines of grader faults and flags").tag(config=True)
    student = Unicode("").tag(config=True)
    fast = Bool(False).tag(config=True)
    data_root = Unicode("", help="the CIFAR-10 folder on this machine (the test set: trusted side only)").tag(config=True)
    key = Unicode("", help="the course's secret (hex)").tag(config=True)
    launch_records = Unicode("", help="folder of the sandbox launcher's records (why a kernel stopped)").tag(config=True)
    memory_gb = Float(0.0, help="the kernel's memory limit (to name it as the cause of a death)").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxKernelManager
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        self._name = (resources or {}).get("unique_key") or ""
        self._tests = hidden_tests(self._name)
        self._cache: dict = {}
        self._session = None
        self._stopped = ""
        return super().preprocess(nb, resources, km)

    def output(self, outs, msg, display_id, cell_index):
        """nbclient's output handler, bounded as outputs arrive: a 300 MB print or a 100 MB image is cut or
        dropped here, before it is held or stored (:func:`~autograder.harness.outputs.bound_output`)."""
        out = super().output(outs, msg, display_id, cell_index)
        if out is not None and outs and outs[-1] is out:
            printed = sum(len(o.get("text", "")) for o in outs[:-1] if o.get("output_type") == "stream")
            bounded, _ = bound_output(out, printed)
            if bounded is None:
                outs.pop()
            else:
                outs[-1] = bounded
            return bounded
        return out

    def _record(self, **entry) -> None:
        if self.record_path:
            with open(self.record_path, "a") as f:
                f.write(json.dumps({"notebook": self._name, **entry}) + "\n")

    def preprocess_cell(self, cell, resources, index):
        self._boot()
        gid = grade_id(cell)
        role = self.plan.get(self._name, {}).get(gid) if gid else None
        if cell.cell_type != "code" or role is None:
            return self._run_student_cell(cell, resources, index)
        if role == "skip":
            cell.outputs = [stream(SKIP_NOTE)]
            return cell, resources
        cell.outputs = verdict_outputs(self._judge(gid))
        cell.execution_count = None
        return cell, resources

    def _run_student_cell(self, cell, resources, index):
        """Run a student's (or set-up) cell in the kernel. A kernel stopped by one of the sandbox's limits
        (time, memory) costs this notebook only: the cell says why, the later cells are not run and the
        hidden tests fail with the cause. A crash with no limit to blame is raised (the worker retries)."""
        if cell.cell_type == "code" and self._stopped:
            cell.outputs = [stream(f"(Not run: {self._stopped}.)")]
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            cause = self._why_dead()
            if not cause or cause.startswith("a crash"):
                raise
            self._stopped = f"the kernel stopped in an earlier cell ({cause})"
            if self._session is not None:
                self._session.dead = self._stopped
            cell.outputs = bound_outputs(list(cell.get("outputs", [])))
            cell.outputs.append(error("DeadKernelError", f"the kernel stopped while running this cell: {cause}"))
            self._record(kind="stopped", grade_id=grade_id(cell) or f"cell {index}", message=cause)
            return cell, resources

    def _boot(self) -> None:
        """Bind the harness's agent in the kernel before the notebook's first cell runs (see ``agent.py``)."""
        if self._session is None:
            self._session = KernelSession(self.kc, self.km, self.inbox, self._why_dead)
            self._session.boot()

    def _why_dead(self) -> str:
        """The cause of the kernel's death in the student's words, from the launcher's newest record."""
        return cause_of_death(Path(self.launch_records), self.memory_gb) if self.launch_records else ""

    def _context(self, gid: str) -> Context:
        self._boot()
        return Context(self._session, self._name, gid, notebook=self.nb, student=self.student, fast=self.fast,
                       data_root=Path(self.data_root) if self.data_root else None, key=bytes.fromhex(self.key),
                       cache=self._cache)

    def _judge(self, gid: str) -> Verdict:
        test = self._tests.get((self._name, gid))
        if test is None:
            verdict = Verdict(False, grader_error=f"no hidden test is registered for {self._name}/{gid}")
        else:
            verdict = run_hidden_test(test, self._context(gid))
        if verdict.grader_error:
            self._record(kind="grader_error", grade_id=gid, error=verdict.grader_error)
        for flag in verdict.flags:
            self._record(kind="flag", grade_id=gid, message=flag)
        return verdict


def cause_of_death(records: Path, memory_gb: float = 0.0, wait_s: float = 3.0) -> str:
    """Why the newest sandboxed kernel in ``records`` stopped: the time limit, the memory limit or a crash.

    Reads the launcher's ``launcher-*.json`` (``returncode``, ``timed_out``, ``peak_memory_mb``), waiting
    up to ``wait_s`` for the launcher to record the exit.
    """
    import signal
    import time

    deadline = time.monotonic() + wait_s
    while True:
        paths = sorted(records.glob("launcher-*.json"), key=lambda p: p.stat().st_mtime)
        try:
            record = json.loads(paths[-1].read_text()) if paths else {}
        except (OSError, ValueError):
            record = {}
        if record.get("timed_out") or record.get("returncode") is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    code, peak = record.get("returncode"), float(record.get("peak_memory_mb") or 0)
    cause = str(record.get("cause") or "")
    if cause.startswith(("time limit", "memory limit")):  # the launcher's own reading (CPU time, not the clock)
        return cause
    if record.get("timed_out"):
        return f"time limit reached: the notebook ran past its {record.get('seconds', 0):.0f} s"
    if code == -signal.SIGXCPU:
        return "time limit reached: the notebook used up its CPU time"
    if memory_gb and peak >= 0.8 * memory_gb * 1024:
        return f"memory limit reached: {peak:,.0f} MB used of {memory_gb * 1024:,.0f} MB"
    if code is None:
        return ""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"a crash: the kernel was killed by {name}"
    return f"a crash: the kernel exited with status {code}"


class BoundedOutput(LimitOutput):
    """nbgrader's ``LimitOutput`` (lines per cell, traceback lines), then the kit's bounds on characters
    and rich outputs (:func:`~autograder.harness.outputs.bound_outputs`): what every autograded notebook
    stores, whatever its cells printed or displayed."""

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if cell.cell_type == "code":
            cell.outputs = bound_outputs(cell.outputs)
        return cell, resources
