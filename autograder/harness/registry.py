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
import importlib
import pkgutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .session import Session

HiddenTest = Callable[["Context"], "str | None"]
_REGISTRY: dict[tuple[str, str], HiddenTest] = {}


def grades(notebook: str, grade_id: str):
    """Register the decorated function as the hidden test deciding ``grade_id`` of ``notebook``."""
    def register(func: HiddenTest) -> HiddenTest:
        key = (notebook, grade_id)
        if key in _REGISTRY and _REGISTRY[key] is not func:
            raise ValueError(f"two hidden tests for {notebook}/{grade_id}")
        _REGISTRY[key] = func
        return func
    return register


def hidden_tests(notebook: str | None = None) -> dict[tuple[str, str], HiddenTest]:
    """Every registered hidden test (of one notebook), after importing ``autograder.hidden_tests``."""
    import autograder.hidden_tests as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return {k: f for k, f in _REGISTRY.items() if notebook is None or k[0] == notebook}


@dataclass
class Context:
    """What a hidden test may use. Everything here lives in the trusted process.

    session: runs snippets in the student's kernel (the only way to reach the student's code).
    notebook: the submitted notebook being graded (nbformat), e.g. to read a written answer's cell.
    fast: grading in fast mode (small subsets).
    data_root: the kit's CIFAR-10 folder on the grading machine (the test set with its labels).
    key: a secret of the course (never in the sandbox) that makes ``rng`` unpredictable to students.
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
    lines: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    displays: list[dict] = field(default_factory=list)

    def print(self, *parts) -> None:
        """A line shown under the test in the graded notebook and the feedback."""
        self.lines.append(" ".join(str(p) for p in parts))

    def display(self, data: dict) -> None:
        """A rich output (a MIME bundle, e.g. ``autograder.feedback.per_class_output(...)``) under the test."""
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
        for cell in getattr(self.notebook, "cells", []):
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
                return cell.source if isinstance(cell.source, str) else "".join(cell.source)
        return ""

    @staticmethod
    def reference(name: str) -> dict:
        """Reference values (``autograder/reference/NAME``), read here, never sent to the kernel."""
        from autograder.reference import load_reference

        return load_reference(name)


@dataclass
class Verdict:
    """The outcome of one hidden test."""

    passed: bool
    message: str = ""                 # for the student: why it failed, or what it confirmed
    lines: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    displays: list[dict] = field(default_factory=list)
    grader_error: str = ""            # the grader's own failure (not the student's): instructor's attention


def run_hidden_test(test: HiddenTest, ctx: Context) -> Verdict:
    """Run one hidden test and turn its outcome into a verdict; never raises."""
    try:
        message = test(ctx)
        return Verdict(True, message or "", ctx.lines, ctx.flags, ctx.displays)
    except AssertionError as exc:  # Fail, StudentError, or a message builder's AssertionError
        return Verdict(False, str(exc) or "the test failed", ctx.lines, ctx.flags, ctx.displays)
    except Exception:
        return Verdict(False, "", ctx.lines, ctx.flags, ctx.displays, grader_error=traceback.format_exc(limit=8))
