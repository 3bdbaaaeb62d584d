"""The student package's wheel: built from ``a2lib/`` alone, and scanned before it is released.

``build_wheel(dest)`` stages ``a2lib/`` (Python modules and its ``pyproject.toml``) in a temporary
folder and builds ``a2lib-<version>-py3-none-any.whl`` there with pip, so no build output lands in
the checkout. ``scan_wheel(path)`` lists in words everything in a wheel that a student must not
receive: files outside ``a2lib/``, reference values, checkpoints, notebooks, the instructor kit's
code, solution or hidden-test text (including any line of the source notebooks' solutions), functions
that compute answers (``*reference*``, ``*oracle*`` and the kit's former oracles by name), and
instructor-only requirements. ``a2kit release`` refuses to ship a wheel with any of these.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from autograder.locations import A2LIB_PYPROJECT
from autograder.locations import A2LIB_SOURCE as PACKAGE
from autograder.locations import SOURCE_NOTEBOOKS
# Data files of any kind: reference values, checkpoints, notebooks, gradebooks, configs.
FORBIDDEN_SUFFIXES = {".npz", ".npy", ".pt", ".pth", ".pkl", ".pickle", ".json", ".ipynb", ".db", ".sqlite",
                      ".yaml", ".yml", ".csv", ".zip", ".gz", ".tar"}
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
INSTRUCTOR_CODE = re.compile(r"^\s*(from|import)\s+(autograder|a2kit|nbgrader)\b", re.MULTILINE)
INSTRUCTOR_REQUIREMENTS = ("nbgrader", "dask", "distributed", "jupyterlab", "a2kit", "sqlalchemy")
SOLUTION_BEGIN, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"
# Functions that compute answers (a reference implementation, an oracle) belong to the grader: a visible
# check compares with stored digests, properties or the student's own naive code, never with one of these.
# Named by what they are called, and the ones the kit once shipped by their names.
KNOWN_ANSWER_FUNCTIONS = ("autograd_linearization", "torch_reference")
ANSWER_FUNCTION = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(\w*(?:reference|oracle)\w*|"
                             + "|".join(KNOWN_ANSWER_FUNCTIONS) + r")[ \t]*\(", re.MULTILINE | re.IGNORECASE)


class UnsafeWheel(RuntimeError):
    """A student wheel that holds something of the instructor kit."""


def version() -> str:
    """The student package's version, read from ``a2lib/__init__.py`` (the one place it is written)."""
    match = re.search(r'^__version__ = "([^"]+)"', (PACKAGE / "__init__.py").read_text(), re.MULTILINE)
    if not match:
        raise ValueError(f"no __version__ in {PACKAGE / '__init__.py'}")
    return match.group(1)


def build_wheel(dest: str | Path, package: Path = PACKAGE) -> Path:
    """Build the student wheel into ``dest`` (created) from ``package``; return the wheel's path.

    Uses the running environment's setuptools (``--no-build-isolation``): no download, a few seconds.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="a2lib-build-") as tmp:
        staged = Path(tmp) / "a2lib"
        shutil.copytree(package, staged, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist"))
        if not (staged / "pyproject.toml").exists():  # an installed kit: the installed a2lib and its pyproject.toml
            shutil.copyfile(A2LIB_PYPROJECT, staged / "pyproject.toml")
        out = Path(tmp) / "dist"
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                               "--wheel-dir", str(out), str(staged)], capture_output=True, text=True)
        wheels = sorted(out.glob("a2lib-*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            raise RuntimeError(f"building the a2lib wheel failed:\n{proc.stdout}\n{proc.stderr}")
        target = dest / wheels[0].name
        shutil.copyfile(wheels[0], target)
    return target


def cell_solution_lines(source: str, min_length: int = 24) -> list[str]:
    """The lines of a source cell between ``### BEGIN/END SOLUTION`` longer than ``min_length``, comments left out."""
    lines, inside = [], False
    for line in source.splitlines():
        if SOLUTION_BEGIN in line:
            inside = True
        elif SOLUTION_END in line:
            inside = False
        elif inside and len(line.strip()) > min_length and not line.strip().startswith("#"):
            lines.append(line.strip())
    return lines


def solution_lines(notebooks: Path = SOURCE_NOTEBOOKS) -> set[str]:
    """The substantial solution lines of every source notebook: fingerprints of the solutions."""
    return {line for path in sorted(Path(notebooks).glob("*.ipynb"))
            for cell in json.loads(path.read_text())["cells"]
            for line in cell_solution_lines("".join(cell.get("source", "")))}


def scan_text(name: str, text: str, fingerprints: set[str]) -> list[str]:
    """What is wrong with one module's text (empty when nothing)."""
    problems = [f"{name}: contains '{m}'" for m in MARKERS if m in text]
    if INSTRUCTOR_CODE.search(text):
        problems.append(f"{name}: imports the instructor kit ({INSTRUCTOR_CODE.search(text).group(0).strip()})")
    for match in ANSWER_FUNCTION.finditer(text):
        problems.append(f"{name}: defines {match.group(1)}(), a function that computes answers (it belongs to the "
                        "grader's hidden tests, not to the student package)")
    stripped = {line.strip() for line in text.splitlines()}
    leaked = sorted(stripped & fingerprints)
    if leaked:
        problems.append(f"{name}: holds {len(leaked)} line(s) of the source notebooks' solutions, e.g. {leaked[0]!r}")
    return problems


def _requirement_problems(metadata: str) -> list[str]:
    problems = []
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = line.split(":", 1)[1].strip()
        name = re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower()
        if name in INSTRUCTOR_REQUIREMENTS:
            problems.append(f"METADATA: requires {requirement} (an instructor-only package)")
        if name in ("torch", "torchvision") and "<" in requirement:
            problems.append(f"METADATA: {requirement} caps torch: Colab's preinstalled torch must satisfy it")
    return problems


def scan_wheel(wheel: str | Path, fingerprints: set[str] | None = None, package: Path = PACKAGE) -> list[str]:
    """Everything in ``wheel`` that a student must not receive, in words (empty when it is clean).

    Also reports a subpackage of ``package`` that the wheel lacks (a2lib/pyproject.toml lists them).
    """
    fingerprints = solution_lines() if fingerprints is None else fingerprints
    problems = []
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        dist_info = [n for n in names if re.match(r"a2lib-[^/]+\.dist-info/", n)]
        for name in names:
            path = PurePosixPath(name)
            if name not in dist_info and path.parts[0] != "a2lib":
                problems.append(f"{name}: outside the a2lib package")
            if path.suffix.lower() in FORBIDDEN_SUFFIXES:
                problems.append(f"{name}: a data file ({path.suffix}): reference values, checkpoints or notebooks stay with the kit")
            if "autograder" in path.parts:
                problems.append(f"{name}: part of the instructor kit")
            if name.endswith(".py"):
                problems += scan_text(name, zf.read(name).decode("utf-8", "replace"), fingerprints)
        metadata = next((n for n in dist_info if n.endswith("/METADATA")), None)
        problems += _requirement_problems(zf.read(metadata).decode()) if metadata else ["METADATA: missing"]
    shipped = {str(PurePosixPath(n).parent) for n in names if n.endswith("/__init__.py")}
    for init in sorted(Path(package).rglob("__init__.py")):
        folder = "a2lib/" + init.parent.relative_to(package).as_posix() if init.parent != package else "a2lib"
        if "__pycache__" not in init.parts and folder not in shipped:
            problems.append(f"{folder}: a subpackage missing from the wheel (list it in a2lib/pyproject.toml)")
    return problems


def scan_package(package: Path = PACKAGE, fingerprints: set[str] | None = None) -> list[str]:
    """The same text checks on the ``a2lib/`` source folder (where a solution would be added first)."""
    fingerprints = solution_lines() if fingerprints is None else fingerprints
    problems = []
    for path in sorted(Path(package).rglob("*")):
        if "__pycache__" in path.parts or path.is_dir() or ".egg-info" in str(path):
            continue
        name = path.relative_to(Path(package).parent).as_posix()
        if path.suffix.lower() in FORBIDDEN_SUFFIXES:
            problems.append(f"{name}: a data file ({path.suffix}) in the student package")
        elif path.suffix == ".py":
            problems += scan_text(name, path.read_text(errors="replace"), fingerprints)
    return problems


def release_wheel(dest: str | Path) -> Path:
    """Build the student wheel into ``dest`` (older a2lib wheels there removed) and scan it.

    Raises :class:`UnsafeWheel` listing the problems when the wheel holds anything of the kit.
    """
    for old in Path(dest).glob("a2lib-*.whl"):
        old.unlink()
    wheel = build_wheel(dest)
    problems = scan_wheel(wheel)
    if problems:
        wheel.unlink()
        raise UnsafeWheel("The student wheel holds what students must not see:\n  " + "\n  ".join(problems))
    return wheel
