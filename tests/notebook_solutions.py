"""The source notebooks' solution namespaces, executed once per test session (shared by test files)."""
from __future__ import annotations

import functools

from autograder.locations import SOURCE_NOTEBOOKS
from autograder.tools.solutions import load_solution_namespace


@functools.lru_cache(maxsize=None)
def solution_namespace(stem: str) -> dict:
    """What ``notebooks/<stem>.ipynb``'s code cells define (fast mode, training cells skipped)."""
    return load_solution_namespace(SOURCE_NOTEBOOKS / f"{stem}.ipynb")
