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

from autograder.harness import Context, LocalSession, Verdict, hidden_tests, run_hidden_test
from autograder.locations import SOURCE_NOTEBOOKS
from autograder.notebooks import load_hidden_tests

from .solutions import load_solution_namespace


@functools.lru_cache(maxsize=None)
def _solution(stem: str) -> dict:
    return load_solution_namespace(SOURCE_NOTEBOOKS / f"{stem}.ipynb")


def solution_namespace(stem: str) -> dict:
    """A fresh shallow copy of the executed source notebook's namespace (executed once per process)."""
    return dict(_solution(stem))


def with_code(namespace: dict, code: str) -> dict:
    """A copy of ``namespace`` where ``code`` (e.g. a mistaken ``def``) has been executed."""
    ns = dict(namespace)
    exec(code, ns)  # noqa: S102 (test code)
    return ns


def source_notebook(stem: str):
    return nbformat.read(SOURCE_NOTEBOOKS / f"{stem}.ipynb", as_version=4)


@functools.lru_cache(maxsize=1)
def _kit_hidden_tests() -> None:
    load_hidden_tests()


def kit_hidden_tests(stem: str) -> dict:
    """The registered hidden tests of the kit's notebook ``stem``: ``{(stem, grade_id): function}``."""
    _kit_hidden_tests()
    return hidden_tests(stem)


def run_local(stem: str, grade_id: str, namespace: dict | None = None, notebook=None, **context) -> Verdict:
    """The verdict of hidden test ``grade_id`` of notebook ``stem`` on ``namespace`` (default: the solution)."""
    test = kit_hidden_tests(stem)[(stem, grade_id)]
    ns = solution_namespace(stem) if namespace is None else namespace
    nb = copy.deepcopy(notebook) if notebook is not None else source_notebook(stem)
    context.setdefault("fast", True)
    ctx = Context(LocalSession(ns), stem, grade_id, notebook=nb, student=context.pop("student", "local"), **context)
    return run_hidden_test(test, ctx)
