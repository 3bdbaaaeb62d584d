"""Hidden tests run in this process on a namespace: the source notebooks' solutions and their variants.

For the kit's own tests and checks: every hidden test must pass on the reference solution and
fail, with the right message, on each typical mistake, without starting a kernel::

    ns = solution_namespace("01_theory")                       # the source notebook, executed
    verdict = run_local("01_theory", "test_q1_matrix", ns)     # Verdict(passed=True, ...)
    wrong = with_code(ns, "def q1_matrix(w): ...")             # a copy with one definition replaced
"""
from __future__ import annotations

import copy
import functools

import nbformat

from autograder.reference import NOTEBOOKS, load_solution_namespace

from .registry import Context, Verdict, hidden_tests, run_hidden_test
from .session import LocalSession


@functools.lru_cache(maxsize=None)
def _solution(stem: str) -> dict:
    return load_solution_namespace(NOTEBOOKS / f"{stem}.ipynb")


def solution_namespace(stem: str) -> dict:
    """A fresh shallow copy of the executed source notebook's namespace (executed once per process)."""
    return dict(_solution(stem))


def with_code(namespace: dict, code: str) -> dict:
    """A copy of ``namespace`` where ``code`` (e.g. a mistaken ``def``) has been executed."""
    ns = dict(namespace)
    exec(code, ns)  # noqa: S102 (test code)
    return ns


def source_notebook(stem: str):
    return nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)


def run_local(stem: str, grade_id: str, namespace: dict | None = None, notebook=None, **context) -> Verdict:
    """The verdict of hidden test ``grade_id`` of notebook ``stem`` on ``namespace`` (default: the solution)."""
    tests = hidden_tests(stem)
    test = tests[(stem, grade_id)]
    ns = solution_namespace(stem) if namespace is None else namespace
    nb = copy.deepcopy(notebook) if notebook is not None else source_notebook(stem)
    context.setdefault("fast", True)
    ctx = Context(LocalSession(ns), stem, grade_id, notebook=nb, student=context.pop("student", "local"), **context)
    return run_hidden_test(test, ctx)
