"""The kit's notebooks released once and the whole corpus graded once per test session.

``tests/test_corpus.py`` and ``tests/test_notebooks.py`` share these (cached) results so the corpus
is graded a single time: in parallel, sandboxed, in fast mode (``A2_FAST=1``), on the real CIFAR-10
copy when present (``make data``).
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from autograder.engine.course import Course
from autograder.harness.cells import autograded_cells
from autograder.locations import KIT_DATA, KIT_ROOT, SOURCE_NOTEBOOKS
from autograder.tools.corpus import Case, CaseResult, build_submission, case_result, load_cases

NETWORK_PORT = 47613  # hostile_network.yaml tries to send its answers here


class PortListener:
    """Listen on 127.0.0.1:PORT in a thread and keep whatever arrives (nothing should)."""

    def __init__(self, port: int):
        import socket

        self.received: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.server.settimeout(0.5)

    def _serve(self):
        while not self.stopped:
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.received.append(conn.recv(1024) or b"<connected>")
                except OSError:
                    self.received.append(b"<connected>")

    def __enter__(self):
        import threading

        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped = True
        self.thread.join()
        self.server.close()


AVAILABLE = sorted(p.stem for p in SOURCE_NOTEBOOKS.glob("*.ipynb"))
WORKERS = 2


def corpus_cases() -> tuple[list[Case], list[str]]:
    return load_cases(AVAILABLE)


@functools.lru_cache(maxsize=None)
def released_course() -> Course:
    """A course with every kit notebook in source/ and release/ (nbgrader generate_assignment)."""
    from autograder.pipeline.release import release

    course = Course(Path(tempfile.mkdtemp(prefix="a2kit-kit-")) / "course")
    release(course)
    return course


def snapshot(*folders: Path) -> dict[str, tuple]:
    """Size and content hash of every file under ``folders`` (size and mtime for files over 8 MB)."""
    state = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")) if Path(folder).exists() else []:
            if "__pycache__" in path.parts or path.is_dir():
                continue
            st = path.lstat()
            key = st.st_mtime_ns if st.st_size > 8 * 1024**2 else hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else os.readlink(path)
            state[str(path)] = (st.st_size, key)
    return state


@dataclass
class GradedCorpus:
    course: Course
    cases: list[Case]
    results: dict[str, CaseResult]
    report: object
    changed_outside: list[str]  # files outside the scratch folders that grading changed
    connections: list[bytes]  # what reached the local port that hostile_network calls
    cells: dict[str, dict[str, float]]


@functools.lru_cache(maxsize=None)
def graded_corpus() -> GradedCorpus:
    from autograder.engine.grade import grade_submissions, grading_env

    released = released_course()
    root = Path(tempfile.mkdtemp(prefix="a2kit-corpus-"))
    shutil.copytree(released.root, root / "course")
    course = Course(root / "course")
    cases, _ = corpus_cases()
    for case in cases:
        build_submission(case, course)
    outside = root / "outside"  # a bystander folder next to the course
    outside.mkdir()
    (outside / "sentinel.txt").write_text("must survive grading")
    watched = [KIT_ROOT / d for d in ("a2lib", "autograder", "notebooks", "configs")] + [
        course.root / "source", course.root / "release", course.root / "submitted", outside]
    data = KIT_DATA
    if data.exists():
        watched.append(data)
    before = snapshot(*watched)
    with PortListener(NETWORK_PORT) as listener:
        # nbgrader's default 30 s cell limit: fast mode needs at most a few seconds a cell, and the
        # infinite loop costs only that.
        report = grade_submissions(course, [c.name for c in cases], workers=WORKERS, memory_gb=2.0, timeout_s=300,
                       cell_timeout_s=30,
                       env=grading_env(str(data) if (data / "cifar-10-batches-py").exists() else None, fast=True),
                       progress=False)
    after = snapshot(*watched)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    cells = autograded_cells(course.source_dir)
    results = {case.name: case_result(course, case, cells) for case in cases}
    return GradedCorpus(course, cases, results, report, changed, listener.received, cells)
