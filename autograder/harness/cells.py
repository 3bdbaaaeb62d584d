"""What the kit reads of an nbgrader notebook's cells: ids, roles and tags, in one place.

A cell's ``grade_id`` names it for nbgrader, the hidden tests and the corpus. Its role comes from
its nbgrader metadata: a **test cell** is graded and holds no solution (its points are decided by
a hidden test), a **solution cell** holds the student's code. Cells tagged :data:`SKIP_TAG`
(training, downloads) are never executed by the kit: not when grading, not when reference values
are built from the solution.
"""
from __future__ import annotations

from pathlib import Path

SKIP_TAG = "grader-skip"


def nbgrader_meta(cell) -> dict:
    """The cell's nbgrader metadata (empty for a plain cell)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def grade_id(cell) -> str | None:
    """The cell's nbgrader ``grade_id`` (None for a plain cell)."""
    return nbgrader_meta(cell).get("grade_id")


def is_test_cell(cell) -> bool:
    """An nbgrader autograder-test cell: graded, not a solution."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def is_solution_cell(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_skipped(cell) -> bool:
    """Tagged :data:`SKIP_TAG`: the kit never executes it."""
    return SKIP_TAG in cell.get("metadata", {}).get("tags", [])


def source_of(cell) -> str:
    """The cell's source as one string (nbformat allows a list of lines)."""
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def find_cell(nb, gid: str):
    """The cell of ``nb`` whose grade_id is ``gid``, or None."""
    return next((c for c in getattr(nb, "cells", []) if grade_id(c) == gid), None)


def cells_by_id(nb) -> dict:
    """``{grade_id: cell}`` of every nbgrader cell of ``nb``."""
    return {gid: c for c in getattr(nb, "cells", []) if (gid := grade_id(c))}


def autograded_cells(source_dir: Path) -> dict[str, dict[str, float]]:
    """``{notebook: {grade_id: points}}`` of the code test cells of the source notebooks in ``source_dir``."""
    import nbformat

    out = {}
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        out[path.stem] = {grade_id(c): float(nbgrader_meta(c).get("points", 0))
                          for c in nb.cells if c.cell_type == "code" and is_test_cell(c)}
    return out


def grading_plan(source_dir: Path) -> dict[str, dict[str, str]]:
    """``{notebook: {grade_id: 'test' | 'skip'}}`` read from the (trusted) source notebooks."""
    import nbformat

    plan = {}
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        roles = {}
        for cell in nbformat.read(path, as_version=4).cells:
            gid = grade_id(cell)
            if cell.cell_type != "code" or not gid:
                continue
            if is_test_cell(cell):
                roles[gid] = "test"
            elif is_skipped(cell):
                roles[gid] = "skip"
        plan[path.stem] = roles
    return plan
