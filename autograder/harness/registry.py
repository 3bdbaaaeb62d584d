"""Hidden tests: trusted Python functions, one per graded test cell, that decide its points.

A hidden test is registered for one nbgrader grade cell::

    @grades("01_theory", "test_conv_as_matrix_hidden")
    def conv_as_matrix_hidden(ctx: Context) -> str | None:
        w = ctx.rng().normal(size=(2, 3, 3, 3))
        A = ctx.session.call("conv_as_matrix", w, [3, 5, 5], 2, 1)   # runs in the student's kernel
        problem = ...compare A with torch's conv2d, here, outside the kernel...
        if problem:
            raise Fail(problem)
        return "Q1b: correct on the hidden cases."

It runs in the grader's process, never in the student's kernel: it sends inputs, gets plain
numbers back (``ctx.session``), and compares them with values it computes or loads itself. It
passes by returning (a message to show, or None) and fails by raising :class:`Fail` (or
``AssertionError``, as the message builders of ``a2lib.checks`` do) with plain words for the
student. Any other exception is the grader's own fault: the submission goes to the instructor.
"""
from __future__ import annotations

import hashlib
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .cells import find_cell, source_of
from .references import load_reference
from .session import Fail, Session

HiddenTest = Callable[["Context"], "str | None"]
_REGISTRY: dict[tuple[str, str], HiddenTest] = {}


def grades(notebook: str, grade_id: str):
    """Register the decorated function as the hidden test deciding ``grade_id`` of ``notebook``."""
    def register(func: HiddenTest) -> HiddenTest:
        key = (notebook, grade_id)
        old = _REGISTRY.get(key)
        if old is not None and old.__module__ == func.__module__ and old.__qualname__ != func.__qualname__:
            raise ValueError(f"two hidden tests for {notebook}/{grade_id} in {func.__module__}")
        func.grades = key
        _REGISTRY[key] = func
        return func
    return register


def register_module(module) -> list[tuple[str, str]]:
    """(Re-)register every hidden test that ``module`` defines; returns their keys.

    Importing a module registers its tests once; a later folder for the same notebook (a course's own
    copy) replaces them, and registering a module again puts its tests back.
    """
    keys = []
    for value in vars(module).values():
        key = getattr(value, "grades", None)
        if callable(value) and isinstance(key, tuple) and getattr(value, "__module__", None) == module.__name__:
            _REGISTRY[key] = value
            keys.append(key)
    return keys


def hidden_tests(notebook: str | None = None) -> dict[tuple[str, str], HiddenTest]:
    """Every registered hidden test (of one notebook). Registering is importing the module that
    defines them: ``autograder.notebooks.load_hidden_tests`` does it for every notebook folder."""
    return {k: f for k, f in _REGISTRY.items() if notebook is None or k[0] == notebook}


def fail_on(problem: str | None) -> None:
    """Fail the test with a message builder's ``problem`` (plain words for the student); nothing for None."""
    if problem:
        raise Fail(problem)


@dataclass
class Context:
    """What a hidden test may use. Everything here lives in the trusted process.

    session: runs snippets in the student's kernel (the only way to reach the student's code).
    notebook: the submitted notebook being graded (nbformat), e.g. to read a written answer's cell.
    fast: grading in fast mode (small subsets).
    data_root: the kit's CIFAR-10 folder on the grading machine (the test set with its labels).
    key: a secret of the course (never in the sandbox) that makes ``rng`` unpredictable to students.
    reference_dir: the ``reference/`` folder beside the hidden test's module (set by ``run_hidden_test``).
    """

    session: Session
    notebook_name: str
    grade_id: str
    notebook: object = None
    student: str = ""
    fast: bool = False
    data_root: Path | None = None
    key: bytes = b""
    cache: dict = field(default_factory=dict)   # shared by the hidden tests of one notebook's grading
    reference_dir: Path | None = None
    lines: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    displays: list[dict] = field(default_factory=list)

    def print(self, *parts) -> None:
        """A line shown under the test in the graded notebook and the feedback."""
        self.lines.append(" ".join(str(p) for p in parts))

    def display(self, data: dict) -> None:
        """A rich output (a MIME bundle, e.g. ``autograder.pipeline.feedback.per_class_output(...)``) under the test."""
        self.displays.append(data)

    def flag(self, message: str) -> None:
        """A note for the instructor (the submission is listed as needing attention)."""
        self.flags.append(f"{self.notebook_name}/{self.grade_id}: {message}")

    def rng(self, name: str = "") -> np.random.Generator:
        """A generator seeded from the course key, the student and the test (stable between re-gradings)."""
        seed = hashlib.sha256(b"|".join([self.key, self.student.encode(), self.notebook_name.encode(),
                                         self.grade_id.encode(), name.encode()])).digest()
        return np.random.default_rng(int.from_bytes(seed[:16], "little"))

    def cell_source(self, grade_id: str) -> str:
        """The submitted source of the cell ``grade_id`` ('' when the notebook has none)."""
        cell = find_cell(self.notebook, grade_id)
        return source_of(cell) if cell is not None else ""

    def reference(self, name: str) -> dict:
        """Reference values ``name`` of the hidden test's notebook, read here, never sent to the kernel."""
        return load_reference(self.reference_dir, name)


@dataclass
class Verdict:
    """The outcome of one hidden test."""

    passed: bool
    message: str = ""                 # for the student: why it failed, or what it confirmed
    lines: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    displays: list[dict] = field(default_factory=list)
    grader_error: str = ""            # the grader's own failure (not the student's): instructor's attention


def reference_dir_of(test: HiddenTest) -> Path:
    """The ``reference/`` folder beside the module that defines ``test``."""
    return Path(sys.modules[test.__module__].__file__).resolve().parent / "reference"


def run_hidden_test(test: HiddenTest, ctx: Context) -> Verdict:
    """Run one hidden test and turn its outcome into a verdict; never raises."""
    if ctx.reference_dir is None:
        ctx.reference_dir = reference_dir_of(test)
    try:
        message = test(ctx)
        return Verdict(True, message or "", ctx.lines, ctx.flags, ctx.displays)
    except AssertionError as exc:  # Fail, StudentError, or a message builder's AssertionError
        return Verdict(False, str(exc) or "the test failed", ctx.lines, ctx.flags, ctx.displays)
    except Exception:
        return Verdict(False, "", ctx.lines, ctx.flags, ctx.displays, grader_error=traceback.format_exc(limit=8))
