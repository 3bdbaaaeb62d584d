"""A submission's grading cells against the release: every difference named, and the cells restored.

The release (nbgrader ``generate_assignment``) fixes each notebook's *grading cells*, the cells with
an nbgrader role: test cells (points, read-only), read-only cells, solution cells (the student's
answer) and hand-graded answers (points). A student can change them in the notebook's JSON or with
JupyterLab's cell tools: duplicate a test cell, rename a ``grade_id``, re-tag a solution cell as a
test cell, add a cell claiming 100 points, delete a cell, change its type or points. nbgrader
stops on most of these (``SchemaTooOldError``, "error processing assignment").

:func:`restore` compares a submitted notebook with its release and returns the notebook as the
release made it, with the student's answers kept:

* each grading cell of the release appears once, with the release's type and metadata (role,
  ``grade_id``, points, tags); read-only and test cells get the release's source back; solution
  cells and hand-graded answers keep the student's source;
* a second copy of a grading cell is not graded: the copy of a solution cell stays as a plain
  cell (its code still runs, as it did in the student's kernel), the copy of a read-only or
  test cell is removed;
* a cell whose ``grade_id`` the release does not have is graded as a plain cell (no points);
  when it sits where a missing grading cell of the release belongs, it is that cell renamed and
  is restored in place;
* a grading cell missing from the submission is put back from the release after the grading
  cell that precedes it there (a deleted solution cell comes back blank).

The same pass lists each difference in plain words (``compare``): ``a2kit collect`` reports them and
``a2kit grade`` grades the restored notebook and names them in its status. Nothing here runs or
trusts student code: it reads JSON.
"""
from __future__ import annotations

import copy
import json
import secrets
from pathlib import Path

import nbformat

from autograder.harness.cells import source_of

ROLE_KEYS = ("grade", "solution", "locked", "task")


def nbgrader_meta(cell) -> dict:
    """The cell's nbgrader metadata; ``{}`` where a submission made it something other than a mapping."""
    meta = cell.get("metadata", {})
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return meta if isinstance(meta, dict) else {}


def grade_id(cell) -> str | None:
    """The cell's ``grade_id`` when it is text (a submission may put anything there)."""
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def _points(meta: dict) -> float | None:
    try:
        return float(meta["points"])
    except (KeyError, TypeError, ValueError):
        return None


def role(meta: dict) -> str:
    """What nbgrader metadata makes a cell, in words: ``test cell``, ``solution cell``, ``hand-graded answer``..."""
    if meta.get("grade") and meta.get("solution"):
        return "hand-graded answer"
    if meta.get("grade"):
        return "test cell"
    if meta.get("solution"):
        return "solution cell"
    if meta.get("task"):
        return "task cell"
    if meta.get("locked"):
        return "read-only cell"
    return "plain cell"


def worth(meta: dict) -> str:
    """`` (2 points)`` for a graded cell, else nothing."""
    points = _points(meta)
    if not meta.get("grade") or points is None:
        return ""
    return f" ({points:g} point{'' if points == 1 else 's'})"


def describe(meta: dict, gid: str | None = None) -> str:
    """``test cell test_double (1 point)``: the role, the grade_id and the points a cell's metadata gives it."""
    gid = gid or meta.get("grade_id")
    return f"{role(meta)} {gid if isinstance(gid, str) else '(no id)'}{worth(meta)}"


def _keeps_student_source(meta: dict) -> bool:
    """Solution cells and hand-graded answers hold the student's work; every other grading cell is the release's."""
    return bool(meta.get("solution"))


def _has_role(cell) -> bool:
    meta = nbgrader_meta(cell)
    return any(meta.get(k) for k in ROLE_KEYS)


def _plain(cell):
    """``cell`` without nbgrader metadata: graded by nobody, run like any other cell."""
    cell = copy.deepcopy(cell)
    if not isinstance(cell.get("metadata"), dict):
        cell["metadata"] = {}
    cell["metadata"].pop("nbgrader", None)
    return cell


def _as_type(cell, cell_type: str):
    """``cell`` turned into a ``cell_type`` cell (outputs only where a code cell has them)."""
    cell = copy.deepcopy(cell)
    if cell.get("cell_type") == cell_type:
        return cell
    cell["cell_type"] = cell_type
    if cell_type == "code":
        cell["outputs"], cell["execution_count"] = [], None
    else:
        cell.pop("outputs", None)
        cell.pop("execution_count", None)
    return cell


def _restored(cell, release_cell, changes: list[str]) -> dict:
    """The release's grading cell, with the student's source where it is theirs; differences into ``changes``."""
    meta, want = nbgrader_meta(cell), nbgrader_meta(release_cell)
    gid = grade_id(release_cell)
    name = describe(want)
    if cell.get("cell_type") != release_cell.get("cell_type"):
        changes.append(f"{name}: made a {cell.get('cell_type')} cell (restored)")
    if not meta:
        changes.append(f"{name}: its nbgrader metadata removed (restored)")
    elif meta.get("grade_id") != gid:
        changes.append(f"{name}: renamed to {meta.get('grade_id')!r} (restored)")
    if meta and role(meta) != role(want):
        changes.append(f"{name}: re-tagged as a {role(meta)}{worth(meta)} (restored)")
    elif want.get("grade") and "points" in meta and _points(meta) != _points(want):
        changes.append(f"{name}: points changed to {meta['points']!r} (restored)")
    if _keeps_student_source(want):
        out = _as_type(cell, release_cell["cell_type"])
        out["metadata"] = copy.deepcopy(release_cell.get("metadata", {}))
        return out
    if source_of(cell) != source_of(release_cell):
        changes.append(f"{name}: edited (restored)")
    out = _as_type(release_cell, release_cell["cell_type"])
    if out.get("cell_type") == "code" and cell.get("cell_type") == "code":
        out["outputs"], out["execution_count"] = cell.get("outputs", []), cell.get("execution_count")
    if "id" in cell:
        out["id"] = cell["id"]
    return out


def restore(submitted, release) -> tuple[object, list[str]]:
    """``(notebook, changes)``: ``submitted`` with the grading cells of ``release`` (see the module docstring).

    Both are nbformat notebooks; ``submitted`` is not modified. ``changes`` is empty when the
    submission left every grading cell as the release made it.
    """
    release_cells = {grade_id(c): c for c in release.cells if grade_id(c) and _has_role(c)}
    order = list(release_cells)
    out, changes, placed, strangers = [], [], {}, {}  # placed: grade_id -> its cell in out; strangers: id(cell) -> original
    for cell in submitted.cells:
        gid = grade_id(cell)
        if gid in release_cells:
            if gid in placed:
                want = nbgrader_meta(release_cells[gid])
                keep = _keeps_student_source(want)
                changes.append(f"{describe(want)}: duplicated (the copy is not graded"
                               + (", its code still runs)" if keep else ", it is removed)"))
                if keep:
                    out.append(_plain(cell))
                continue
            placed[gid] = _restored(cell, release_cells[gid], changes)
            out.append(placed[gid])
        elif _has_role(cell):  # a grade_id the release lacks: a renamed grading cell, or a new one
            stripped = _plain(cell)
            strangers[id(stripped)] = cell
            out.append(stripped)
        else:
            out.append(_plain(cell) if "nbgrader" in (cell.get("metadata") or {}) else cell)
    for index, gid in enumerate(order):  # grading cells the submission lacks, in the release's order
        if gid in placed:
            continue
        release_cell = release_cells[gid]
        before = [placed[g] for g in reversed(order[:index]) if g in placed]
        at = _index(out, before[0]) + 1 if before else 0
        here = out[at] if at < len(out) else None
        if here is not None and id(here) in strangers and here.get("cell_type") == release_cell.get("cell_type"):
            placed[gid] = out[at] = _restored(strangers.pop(id(here)), release_cell, changes)  # renamed: restored in place
            continue
        if here is not None and not nbgrader_meta(here) and source_of(here) == source_of(release_cell):
            placed[gid] = out[at] = _restored(here, release_cell, changes)  # its metadata removed: restored in place
            continue
        changes.append(f"{describe(nbgrader_meta(release_cell))}: deleted (restored from the release"
                       + (", blank)" if _keeps_student_source(nbgrader_meta(release_cell)) else ")"))
        placed[gid] = _fresh(release_cell)
        out.insert(at, placed[gid])
    for original in strangers.values():
        changes.append(f"{describe(nbgrader_meta(original))}: not in the release (graded as a plain cell, no points)")
    nb = nbformat.from_dict({**copy.deepcopy(dict(submitted)), "cells": out})
    _unique_ids(nb)
    return nb, changes


def _index(cells: list, cell) -> int:
    return next(i for i, c in enumerate(cells) if c is cell)


def _fresh(release_cell):
    """A copy of the release's cell for a submission that lost it."""
    cell = _as_type(release_cell, release_cell["cell_type"])
    cell.pop("id", None)
    return cell


def _unique_ids(nb) -> None:
    """Cell ids unique again (nbformat 4.5 requires it); notebooks older than 4.5 carry none."""
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) < (4, 5):
        for cell in nb.cells:
            cell.pop("id", None)
        return
    used = set()
    for cell in nb.cells:
        if not cell.get("id") or cell["id"] in used:
            cell["id"] = secrets.token_hex(4)
        used.add(cell["id"])


def compare(submitted, release) -> list[str]:
    """Each difference of ``submitted``'s grading cells from ``release``'s, in plain words (empty: none)."""
    return restore(submitted, release)[1]


def restore_files(files: dict[str, bytes], release_dir: Path) -> tuple[dict[str, bytes], list[str]]:
    """A submission's files (``{relative path: bytes}``) with each notebook of the release restored.

    Returns the files (notebooks rewritten only where something changed) and the changes, each
    prefixed with its notebook's stem. A notebook that cannot be read is left as it is and named.
    """
    out, notes = dict(files), []
    for name, data in files.items():
        release_path = Path(release_dir) / name
        if "/" in name or not name.endswith(".ipynb") or not release_path.is_file():
            continue
        stem = name[: -len(".ipynb")]
        try:
            submitted = nbformat.reads(data.decode("utf-8"), as_version=4)
            nb, changes = restore(submitted, nbformat.read(release_path, as_version=4))
        except (ValueError, KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            notes.append(f"{stem}: not a readable notebook ({exc.__class__.__name__}), graded as submitted")
            continue
        if changes:
            out[name] = nbformat.writes(nb).encode("utf-8")
            notes += [f"{stem}: {c}" for c in changes]
    return out, notes
