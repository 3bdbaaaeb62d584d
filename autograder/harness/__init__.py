"""The trusted grading harness: points decided outside the student's kernel.

* :mod:`.wire`: the numeric-only format of everything the kernel sends back;
* :mod:`.agent`: the few lines sent into the kernel to run grader snippets against student names;
* :mod:`.session`: :class:`KernelSession` (the sandboxed kernel) and :class:`LocalSession` (in-process);
* :mod:`.registry`: hidden tests (:func:`grades`), their :class:`Context` and :class:`Verdict`;
* :mod:`.cells`: what the kit reads of notebook cells (grade ids, test cells, the skip tag);
* :mod:`.references`: reference values on disk, read here only;
* :mod:`.outputs`: a verdict as the test cell's outputs, and the per-class results bundle;
* :mod:`.execute`: the nbgrader preprocessor that executes a submission and asks the hidden tests
  (imported by the grading worker only: it loads nbgrader).
"""
from .registry import Context, Verdict, fail_on, grades, hidden_tests, run_hidden_test
from .session import Fail, KernelSession, LocalSession, Session, StudentError

__all__ = ["Context", "Fail", "KernelSession", "LocalSession", "Session", "StudentError", "Verdict", "fail_on",
           "grades", "hidden_tests", "run_hidden_test"]
