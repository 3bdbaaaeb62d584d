"""The nbgrader preprocessor that grades through the harness (it replaces nbgrader's ``Execute``).

For each cell of a submitted notebook, by the cell's ``grade_id`` in the *source* notebook (the
plan, computed by the trusted side; a student cannot change it):

* a graded test cell is **not** executed in the student's kernel: its hidden test runs here and
  its outputs become the verdict (the lines it printed, its rich outputs, then either a passing
  message or one error output with the failure in plain words). nbgrader's ``SaveAutoGrades`` then
  scores exactly that: no student output, stderr or warning can reach a grade cell;
* a cell tagged ``reference-skip`` in the source (training, downloads, long plots) is not run;
* every other code cell runs in the kernel as usual (the student's definitions, set-up cells).

Grader faults (a hidden test that crashes, a graded cell without a hidden test) are written to
``record_path`` for the instructor instead of turning into a student's 0; flags for the
instructor (e.g. a model that looks its inputs up) go there too.
"""
from __future__ import annotations

import json
from pathlib import Path

from nbformat import NotebookNode

SKIP_NOTE = "(Not run while grading: the grader uses your submitted files instead.)\n"


def stream(text: str) -> NotebookNode:
    return NotebookNode(output_type="stream", name="stdout", text=text if text.endswith("\n") else text + "\n")


def verdict_outputs(verdict) -> list[NotebookNode]:
    """A verdict as notebook outputs: what the test printed and showed, then pass or one error."""
    outputs = [stream("\n".join(verdict.lines))] if verdict.lines else []
    for bundle in verdict.displays:
        data = dict(bundle)
        data.setdefault("text/plain", "")
        outputs.append(NotebookNode(output_type="display_data", data=data, metadata={}))
    if verdict.grader_error:
        outputs.append(NotebookNode(output_type="error", ename="GraderError",
                                    evalue="this test could not be run; your instructor has been told",
                                    traceback=["GraderError: this test could not be run; your instructor has been told"]))
    elif verdict.passed:
        outputs.append(stream(verdict.message or "Passed."))
    else:
        outputs.append(NotebookNode(output_type="error", ename="AssertionError", evalue=verdict.message,
                                    traceback=[f"AssertionError: {verdict.message}"]))
    return outputs


def make_harness_execute():
    """The ``HarnessExecute`` class (built on first use: nbgrader's imports are slow)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbgrader.preprocessors import Execute
    from traitlets import Bool, Dict, List, Unicode, default

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
        test_modules = List([], help="extra modules registering hidden tests").tag(config=True)

        def __init__(self, *args, **kwargs):
            kwargs["kernel_manager_class"] = SandboxKernelManager
            super().__init__(*args, **kwargs)

        def preprocess(self, nb, resources=None, km=None):
            import importlib

            for module in self.test_modules:
                importlib.import_module(module)
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
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            role = self.plan.get(self._name, {}).get(grade_id) if grade_id else None
            if cell.cell_type != "code" or role is None:
                return super().preprocess_cell(cell, resources, index)
            if role == "skip":
                cell.outputs = [stream(SKIP_NOTE)]
                return cell, resources
            cell.outputs = verdict_outputs(self._judge(grade_id))
            cell.execution_count = None
            return cell, resources

        def _judge(self, grade_id: str) -> Verdict:
            test = self._tests.get((self._name, grade_id))
            if test is None:
                verdict = Verdict(False, grader_error=f"no hidden test is registered for {self._name}/{grade_id}")
            else:
                if self._session is None:
                    self._session = KernelSession(self.kc, self.km, self.inbox)
                ctx = Context(self._session, self._name, grade_id, notebook=self.nb, student=self.student,
                              fast=self.fast, data_root=Path(self.data_root) if self.data_root else None,
                              key=bytes.fromhex(self.key), cache=self._cache)
                verdict = run_hidden_test(test, ctx)
            if verdict.grader_error:
                self._record(kind="grader_error", grade_id=grade_id, error=verdict.grader_error)
            for flag in verdict.flags:
                self._record(kind="flag", grade_id=grade_id, message=flag)
            return verdict

    return HarnessExecute, SandboxKernelManager


def grading_plan(source_dir: Path) -> dict[str, dict[str, str]]:
    """``{notebook: {grade_id: 'test' | 'skip'}}`` read from the (trusted) source notebooks."""
    import nbformat

    from autograder.reference import SKIP_TAG, is_test_cell

    plan = {}
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        roles = {}
        for cell in nbformat.read(path, as_version=4).cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if cell.cell_type != "code" or not grade_id:
                continue
            if is_test_cell(cell):
                roles[grade_id] = "test"
            elif SKIP_TAG in cell.get("metadata", {}).get("tags", []):
                roles[grade_id] = "skip"
        plan[path.stem] = roles
    return plan
