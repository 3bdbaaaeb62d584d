"""Every command in the README and docs/*.md runs as written, or its block says why it cannot run here.

Each fenced shell block (```bash, sh, shell, console) carries an HTML comment on the line before it:
``<!-- run by: tests/test_docs.py::TEST -->`` (that test takes the block from the document and runs
its lines, in order, as a reader would after ``make setup``) or ``<!-- not run here: REASON -->``
(a student's laptop, other machines, minutes of work CI already does). A block without one fails
``test_every_shell_block_is_run_or_says_why_not``.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from autograder.engine.course import Course
from lms_downloads import CLASS, build, canvas_name
from toy_notebooks import TOY_FOLDERS, write_toy_notebooks

KIT_ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [KIT_ROOT / "README.md", *sorted((KIT_ROOT / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "shell", "console", "zsh"}
MARKER = re.compile(r"^<!--\s*(not run here|run by):\s*(.*?)\s*-->$")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


@dataclass
class Block:
    path: Path
    line: int            # of the opening fence, 1-based
    language: str
    text: list[str]
    marker: tuple[str, str] | None  # ("run by", "tests/test_docs.py::name") or ("not run here", reason)

    @property
    def commands(self) -> list[str]:
        """The command lines: the block without blank and comment-only lines."""
        return [line.strip() for line in self.text if line.strip() and not line.strip().startswith("#")]

    def __str__(self) -> str:
        return f"{self.path.relative_to(KIT_ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with the marker comment just before it (if any)."""
    lines, found, i = path.read_text().splitlines(), [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(before)
        found.append(Block(path, i + 1, m.group(2).lower(), [l[len(m.group(1)):] for l in lines[i + 1:end]],
                           marker.groups() if marker else None))
        i = end + 1
    return found


def shell_blocks() -> list[Block]:
    return [b for path in DOCUMENTS for b in blocks(path) if b.language in SHELL]


def blocks_run_by(test: str) -> list[Block]:
    """The shell blocks whose marker names ``tests/test_docs.py::test``."""
    return [b for b in shell_blocks() if b.marker == ("run by", f"tests/test_docs.py::{test}")]


def makefile_targets() -> set[str]:
    text = (KIT_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, re.MULTILINE))


def test_every_shell_block_is_run_or_says_why_not():
    found = shell_blocks()
    assert len(found) >= 5, "the documents' shell blocks were not found"
    module = sys.modules[__name__]
    for block in found:
        assert block.marker, f"{block}: a shell block with neither <!-- run by: ... --> nor <!-- not run here: ... -->"
        kind, what = block.marker
        if kind == "run by":
            file, _, name = what.partition("::")
            assert file == "tests/test_docs.py" and callable(getattr(module, name, None)), f"{block}: no test {what}"
        else:
            assert len(what.split()) >= 3, f"{block}: say why it cannot run here"
        for command in block.commands:  # a make target a document names exists
            if command.startswith("make "):
                target = command.split()[1]
                assert target in makefile_targets(), f"{block}: no make target {target!r}"


def test_a_block_without_a_marker_is_found(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("Text\n\n<!-- not run here: a student's own machine -->\n```bash\npip install torch\n```\n\n"
                   "```bash\nrm -rf /\n```\n\n```python\nprint(1)\n```\n")
    found = [b for b in blocks(doc) if b.language in SHELL]
    assert [(b.line, b.marker) for b in found] == [(4, ("not run here", "a student's own machine")), (8, None)]
    assert found[0].commands == ["pip install torch"]


# -- running blocks as a reader would -------------------------------------------------------------
def _reader(tmp_path: Path, **env) -> tuple[Path, dict]:
    """A working folder like the repository's after ``make setup`` (its ``.venv``), a fresh HOME, the environment."""
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / ".venv").symlink_to(KIT_ROOT / ".venv")
    home = tmp_path / "home"
    (home / "Downloads").mkdir(parents=True)
    clean = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    path = os.pathsep.join(p for p in clean.get("PATH", "").split(os.pathsep) if not p.startswith(str(KIT_ROOT)))
    return cwd, {**clean, "HOME": str(home), "PATH": path, "TQDM_DISABLE": "1", **env}


def _prelude(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines) + "set -e\n"


ACTIVATED = ["source .venv/bin/activate"]  # what the guides ask once per shell, before any other command


def run_block(block: Block, cwd: Path, env: dict, timeout: float = 300, on_server=None,
              prelude: list[str] | None = None) -> list[str]:
    """Run the block's commands in order in bash; ``source``/``export``/``cd`` lines stay in force for the
    next ones (``prelude``: those of an earlier block, e.g. ``ACTIVATED``). A command that starts a
    server (``a2kit formgrade``) runs until it prints its address, ``on_server(output)`` looks at it,
    and it is stopped. Returns each command's output."""
    prelude, outputs = list(prelude or []), []
    for command in block.commands:
        script = _prelude(prelude) + command + "\n"
        if command.startswith(("source ", "export ", "cd ")):
            prelude.append(command)
        if command.startswith("a2kit formgrade"):
            outputs.append(_serve_then_stop(script, cwd, env, on_server))
            continue
        done = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{block}: `{command}` exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        outputs.append(done.stdout + done.stderr)
    return outputs


def _serve_then_stop(script: str, cwd: Path, env: dict, on_server) -> str:
    process = subprocess.Popen(["bash", "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, stdin=subprocess.DEVNULL, start_new_session=True)
    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            if line.startswith("JupyterLab:"):
                break
        output = "".join(seen)
        assert "Formgrader:  http://127.0.0.1:" in output, output
        if on_server:
            on_server(output)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    return output


# -- the instructors' term --------------------------------------------------------------------------
ASSIGNMENT_COLUMN = "A2 (123456)"
WORK_POINTS = {"solution": 3.0, "wrong": 1.0, "release": 0.0}  # the toy notebook's points per hand-in


def canvas_gradebook(path: Path) -> Path:
    """Canvas's gradebook export (Grades → Export) for the class of the LMS download corpus."""
    rows = [f"Student,ID,SIS User ID,SIS Login ID,Section,{ASSIGNMENT_COLUMN},Current Score,Final Score",
            "    Points Possible,,,,,3.00,(read only),(read only)"]
    rows += [f'"{s.canvas_name}",{s.lms_id},S{s.lms_id},{canvas_name(s.canvas_name) or s.lms_id},CS101,,,' for s in CLASS]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_the_instructors_term_runs_as_written(tmp_path):
    """docs/instructors.md's term, line by line, on a toy course: a Canvas download of four students (two
    late by Canvas's mark) in ~/Downloads, graded in the sandbox, formgrader started and stopped, the
    pages and the Canvas import file agreeing on every final grade."""
    (block,) = blocks_run_by("test_the_instructors_term_runs_as_written")
    notebooks = write_toy_notebooks(tmp_path / "toy")
    cwd, env = _reader(tmp_path, A2KIT_NOTEBOOKS=str(notebooks), A2KIT_NOTEBOOK_FOLDERS=TOY_FOLDERS)
    downloads = Path(env["HOME"]) / "Downloads"
    staging = Course(tmp_path / "staging")
    staging.sync_source(notebooks)
    staging.generate_release()
    collect_line = next(c for c in block.commands if c.startswith("a2kit collect"))
    download = Path(collect_line.split()[2].replace("~", env["HOME"], 1))
    shutil.move(build("canvas_files", staging, tmp_path / "lms").zip_path, download)
    canvas_gradebook(downloads / "grades.csv")

    def formgrader_answers(output: str) -> None:
        url = re.search(r"Formgrader:\s+(\S+)", output).group(1)
        assert urllib.request.urlopen(url, timeout=30).status == 200

    outputs = run_block(block, cwd, env, on_server=formgrader_answers)
    assert not [o for o in outputs if "Unwritable directory" in o]  # nbgrader's exchange, which the kit does not use

    course = Course(cwd / "course")
    imported = pd.read_csv(course.root / "exports" / "canvas_import.csv", dtype=str, keep_default_na=False)
    imported = imported.set_index("ID")[ASSIGNMENT_COLUMN].drop(index="", errors="ignore")
    for s in CLASS:
        want = round(WORK_POINTS[s.work] * (0.9 if s.late else 1.0), 2)  # 10% for Canvas's LATE mark: 1 day
        assert float(imported[s.lms_id]) == want, (s, imported.to_dict())
        page = (course.feedback_dir(s.canvas_id) / "a2kit_feedback.html").read_text()
        assert f"<b>{want:g} of 3</b>" in page, s  # the student's page shows the grade the LMS gets
    returned = {p.name for p in course.feedback_dir("smithalice").iterdir()}
    assert returned == {"01_toy.html", "01_toy.ipynb", "a2kit_feedback.html"}


def test_the_readmes_commands_run_after_setup(tmp_path):
    (block,) = blocks_run_by("test_the_readmes_commands_run_after_setup")
    cwd, env = _reader(tmp_path)
    outputs = run_block(block, cwd, env, timeout=120)
    assert "collect" in outputs[1] and "feedback" in outputs[1] and "train" in outputs[2]


def test_training_from_the_command_line_runs_as_written(tmp_path):
    """The instructors' guide's training commands, on a small synthetic CIFAR-10 in ./data."""
    from a2lib.data import write_synthetic_cifar10

    (block,) = blocks_run_by("test_training_from_the_command_line_runs_as_written")
    cwd, env = _reader(tmp_path)
    shutil.copytree(KIT_ROOT / "configs", cwd / "configs")
    write_synthetic_cifar10(cwd / "data", n_train_per_class=50, n_test_per_class=10, seed=0)
    outputs = run_block(block, cwd, env, timeout=300, prelude=ACTIVATED)  # the shell the guide's term activated
    assert (cwd / "runs" / "ce" / "best.pt").exists()
    assert "overall" in outputs[0] and "overall" in outputs[1]
