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
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, List, Unicode, default

from .cells import grade_id
from .outputs import SKIP_NOTE, stream, verdict_outputs
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

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxKernelManager
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        self._name = (resources or {}).get("unique_key") or ""
        self._tests = hidden_tests(self._name)
        self._cache: dict = {}
        self._session = None
        return super().preprocess(nb, resources, km)

    def _record(self, **entry) -> None:
        if self.record_path:
            with open(self.record_path, "a") as f:
                f.write(json.dumps({"notebook": self._name, **entry}) + "\n")

    def preprocess_cell(self, cell, resources, index):
        gid = grade_id(cell)
        role = self.plan.get(self._name, {}).get(gid) if gid else None
        if cell.cell_type != "code" or role is None:
            return super().preprocess_cell(cell, resources, index)
        if role == "skip":
            cell.outputs = [stream(SKIP_NOTE)]
            return cell, resources
        cell.outputs = verdict_outputs(self._judge(gid))
        cell.execution_count = None
        return cell, resources

    def _context(self, gid: str) -> Context:
        if self._session is None:
            self._session = KernelSession(self.kc, self.km, self.inbox)
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
