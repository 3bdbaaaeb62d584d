"""The typed records that travel between the instructor's process and the grading workers.

A :class:`GradingJob` carries everything one submission's grading needs (files, not paths: workers
need no shared file system); a :class:`GradingResult` carries back the gradebook rows and the
autograded files. Both pickle cleanly for Dask.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GradingJob:
    """One submission to grade.

    submission / source: ``{relative path: bytes}`` of the student's folder and the assignment's
    source folder; template: a gradebook (SQLite bytes) holding only the assignment's definitions;
    env: the kernel's extra environment (``A2_FAST``, ``A2_DATA``, thread counts); limits: the
    fields of ``sandbox.Limits``; plan: ``{notebook: {grade_id: "test" | "skip"}}``; key: the
    course's secret (hex) for the hidden tests' inputs; notebook_folders: folders holding notebook
    folders beyond the kit's own (``autograder.notebooks``), whose hidden tests the worker loads too;
    tampering: the grading cells the student changed, restored from the release in ``submission``
    (``autograder.engine.tampering``), for the instructor.
    """

    student: str
    assignment: str
    course_id: str
    submission: dict[str, bytes]
    source: dict[str, bytes]
    template: bytes
    plan: dict[str, dict[str, str]]
    env: dict[str, str] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)
    cell_timeout_s: float | None = None
    unsafe: bool = False
    key: str = ""
    notebook_folders: list[str] = field(default_factory=list)
    tampering: list[str] = field(default_factory=list)

    @property
    def notebooks(self) -> int:
        return sum(name.endswith(".ipynb") and "/" not in name for name in self.submission) or 1


@dataclass
class GradingResult:
    """What grading one submission gave. ``ok`` False: nothing is merged, ``message`` says why."""

    student: str
    ok: bool = False
    message: str = ""
    rows: dict | None = None                 # gradebook rows (``gradebook.read_rows``)
    files: dict[str, bytes] = field(default_factory=dict)   # the autograded folder
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    retry: bool = False                      # a kernel died with no limit to blame, or a busy machine: try once more
    flags: list[str] = field(default_factory=list)   # notes for the instructor (grades merged)
    log: str = ""                            # nbgrader's log or the grader's traceback, for A2KIT_DEBUG

    @classmethod
    def lost(cls, student: str, message: str) -> "GradingResult":
        return cls(student, ok=False, message=message)
