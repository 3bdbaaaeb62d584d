"""A source notebook executed with its solutions, as a namespace: the reference solution in this process.

``load_solution_namespace(notebooks/<stem>.ipynb)`` executes the notebook's code cells, solutions
included, in fast, non-grading mode (``A2_FAST=1``, ``NBGRADER_EXECUTION`` unset), in order, in one
namespace, with the notebook's folder as the working directory and a fixed seed. Reference values
are built from it (:mod:`autograder.tools.build_references`), and the kit's tests run hidden tests
against it (:mod:`autograder.tools.local`).

Which cells are executed (the convention agreed with the notebook authors):

* cells tagged ``grader-skip`` (cell metadata ``tags``) are skipped: tag every cell that trains,
  downloads, plots at length, or is otherwise not needed to define the solution objects;
* nbgrader test cells (``nbgrader.grade`` true and ``nbgrader.solution`` false) are skipped: hidden
  tests read the very values being generated;
* IPython magics and shell lines (``%...``, ``!...``) are dropped, and cells that start with a cell
  magic (``%%...``) are skipped.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from autograder.harness.cells import grade_id, is_skipped, is_test_cell, source_of


def executable_source(cell) -> str | None:
    """The Python that ``load_solution_namespace`` runs for ``cell``, or None to skip the cell."""
    if cell.get("cell_type") != "code" or is_test_cell(cell) or is_skipped(cell):
        return None
    source = source_of(cell)
    if source.lstrip().startswith("%%"):
        return None
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


@contextlib.contextmanager
def _solution_environment(workdir: Path, fast: bool):
    """Fast (or full), non-grading mode, a non-interactive plot backend, ``workdir`` as cwd."""
    saved_env = {k: os.environ.get(k) for k in ("A2_FAST", "NBGRADER_EXECUTION", "MPLBACKEND")}
    saved_cwd, saved_path = os.getcwd(), list(sys.path)
    os.environ["A2_FAST"] = "1" if fast else "0"
    os.environ.pop("NBGRADER_EXECUTION", None)
    os.environ["MPLBACKEND"] = "Agg"
    os.chdir(workdir)
    sys.path.insert(0, str(workdir))
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_solution_namespace(notebook_path: str | Path, fast: bool = True, seed: int = 0) -> dict[str, Any]:
    """Execute a source notebook's code cells (solutions included) and return their namespace.

    Skips test cells and cells tagged ``grader-skip`` (see the module docstring). Raises
    ``RuntimeError`` naming the cell (index and nbgrader grade_id) when a cell fails.
    """
    import matplotlib.pyplot as plt
    import nbformat

    from a2lib.mode import seed_everything

    notebook_path = Path(notebook_path).resolve()
    nb = nbformat.read(notebook_path, as_version=4)
    ns: dict[str, Any] = {"__name__": "__main__", "__file__": str(notebook_path)}
    with _solution_environment(notebook_path.parent, fast):
        seed_everything(seed)
        for index, cell in enumerate(nb.cells):
            source = executable_source(cell)
            if not source or not source.strip():
                continue
            name = grade_id(cell) or ""
            try:
                code = compile(source, f"<{notebook_path.name} cell {index} {name}>", "exec")
                exec(code, ns)  # noqa: S102 (the kit's own source notebook)
            except Exception as exc:
                raise RuntimeError(f"{notebook_path.name}: cell {index} {name!r} failed: {exc!r}") from exc
    plt.close("all")
    return ns
