"""Hand grading: nbgrader's formgrader in JupyterLab on the kit's course folder, and what it records.

``a2kit formgrade`` writes ``<course>/nbgrader_config.py`` (the kit's nbgrader configuration with
this course's root and gradebook URL, so that formgrader, and nbgrader run by hand from the course
folder, see the same course as ``a2kit``), then starts JupyterLab in the course folder on
127.0.0.1 and prints its address: *Nbgrader → Formgrader* (or ``/formgrader``) →
*Manual Grading* lists every autograded submission with the cells left to grade by hand (Q3), their
scores and comments. Scores saved there are the gradebook's ``manual_score``: ``a2kit export`` counts
them and ``a2kit feedback`` shows them with their comments.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from autograder.engine.course import CONFIG_FILE, Course

SERVER_CONFIG = "nbgrader_config.py"
COURSE_SETTINGS = ("CourseDirectory", "Exchange", "ExchangeFactory")  # the sections Course sets for its folder


def write_server_config(course: Course) -> Path:
    """``<course>/nbgrader_config.py``: the kit's configuration plus what ``Course`` sets (root, gradebook...)."""
    path = course.root / SERVER_CONFIG
    settings = "".join(f"c.{section}.{key} = {value!r}\n" for section in COURSE_SETTINGS
                       for key, value in course.config.get(section, {}).items())
    path.write_text("# Written by `a2kit formgrade`: the A2 kit's nbgrader configuration for this course folder.\n"
                    "c = get_config()  # noqa: F821\n"
                    f"load_subconfig({str(CONFIG_FILE)!r})  # noqa: F821\n" + settings)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running JupyterLab: its base URL (no trailing slash), token and process."""

    url: str
    token: str
    process: subprocess.Popen

    def link(self, path: str) -> str:
        return f"{self.url}/{path.lstrip('/')}{'&' if '?' in path else '?'}token={self.token}"


def lab_command(root: Path, port: int, token: str) -> list[str]:
    """JupyterLab on 127.0.0.1:``port`` serving ``root``, no browser opened, ``token`` required."""
    return [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={token}", "--ServerApp.allow_remote_access=False"] + \
        (["--allow-root"] if os.getuid() == 0 else [])  # root in containers and CI machines


@contextlib.contextmanager
def lab_server(root: Path, port: int | None = None, token: str | None = None, env: dict | None = None,
               log: Path | None = None, timeout_s: float = 120):
    """Start JupyterLab in ``root`` (its working directory too), wait until it answers, stop it at the end."""
    port, token = port or free_port(), token or secrets.token_hex(24)
    out = open(log, "w") if log else None
    process = subprocess.Popen(lab_command(Path(root), port, token), cwd=root, stdin=subprocess.DEVNULL,
                               stdout=out, stderr=subprocess.STDOUT if out else None,
                               env={**os.environ, **(env or {})})
    server = Server(f"http://127.0.0.1:{port}", token, process)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(server.link("api/status"), timeout=5).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start (exit code {process.poll()}); see {log or 'its output'}")
                time.sleep(0.5)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if out:
            out.close()


@contextlib.contextmanager
def formgrade_server(course: Course, port: int | None = None, token: str | None = None, log: Path | None = None):
    """JupyterLab with formgrader on ``course`` (see the module's docstring)."""
    write_server_config(course)
    with lab_server(course.root, port, token, log=log) as server:
        yield server


def hand_status(manual_score: float | None, auto_comment: str | None) -> str:
    """``graded`` (a score was entered), ``no response`` (nbgrader found the answer as released and said
    "No response.") or ``to grade``."""
    if manual_score is not None:
        return "graded"
    return "no response" if auto_comment == "No response." else "to grade"


def hand_grades(course: Course, student: str) -> list[dict]:
    """Cells graded by hand: ``[{notebook, grade_id, score, max_score, graded, status, comment}]``.

    ``status``: ``graded`` (a score was entered), ``no response`` (the answer was left as released:
    nbgrader scores it 0 and says "No response."), ``to grade`` (nobody graded it yet); ``graded`` is
    true for the first two.
    """
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    with Gradebook(course.db_url) as gb:
        try:
            submission = gb.find_submission(course.assignment, student)
        except MissingEntry:
            return rows
        for nb in submission.notebooks:
            comments = {c.name: c for c in nb.comments}
            answers = {c.name for c in nb.notebook.solution_cells}  # a graded answer cell is graded by hand
            for g in nb.grades:
                if g.name in answers or g.manual_score is not None:  # (or a grader overrode the autograder)
                    comment = comments.get(g.name)
                    status = hand_status(g.manual_score, comment.auto_comment if comment is not None else None)
                    rows.append({"notebook": nb.name, "grade_id": g.name, "score": g.score, "max_score": g.max_score,
                                 "graded": status != "to grade", "status": status,
                                 "comment": (comment.comment if comment is not None else "") or ""})
    return rows
