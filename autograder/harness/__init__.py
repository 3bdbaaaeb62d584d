"""The trusted grading harness: points decided outside the student's kernel.

* :mod:`.wire`: the numeric-only format of everything the kernel sends back;
* :mod:`.agent`: the few lines sent into the kernel to run grader snippets against student names;
* :mod:`.session`: :class:`KernelSession` (the sandboxed kernel) and :class:`LocalSession` (in-process);
* :mod:`.registry`: hidden tests (:func:`grades`), their :class:`Context` and :class:`Verdict`;
* :mod:`.execute`: the nbgrader preprocessor that executes a submission and asks the hidden tests.
"""
from .registry import Context, Verdict, grades, hidden_tests, run_hidden_test
from .session import Fail, KernelSession, LocalSession, Session, StudentError

__all__ = ["Context", "Fail", "KernelSession", "LocalSession", "Session", "StudentError", "Verdict", "grades",
           "hidden_tests", "run_hidden_test"]
