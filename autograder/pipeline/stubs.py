"""The release's stubs, named: each ``raise NotImplementedError()`` that nbgrader leaves says what to write.

nbgrader replaces every solution region with one fixed stub, so an unsolved exercise shows a bare
``NotImplementedError:`` wherever it is called from. :func:`name_stubs` rewrites each stub of a
released code cell into ``raise NotImplementedError("TwoLayerNet.forward: write it here ...")``, named
after the function (and class) it sits in, or the cell's ``grade_id`` at the top level. A cell tagged
``optional`` (notebook 3's building blocks) gets ``pass`` instead, so that *Run All* goes on past it.
The cell's nbgrader checksum is recomputed, as nbgrader would have computed it for the new source.
"""
from __future__ import annotations

import re
from pathlib import Path

STUB = re.compile(r"^(?P<indent>[ \t]*)raise NotImplementedError\(\)[ \t]*$", re.M)
DEF = re.compile(r"^(?P<indent>[ \t]*)(?:async[ \t]+)?(?P<kind>def|class)[ \t]+(?P<name>\w+)", re.M)
OPTIONAL_TAG = "optional"


def _enclosing(lines: list[str], at: int, indent: int) -> str:
    """``Class.method`` (or ``function``) enclosing line ``at`` whose indentation is ``indent``; '' at the top level."""
    names, level = [], indent
    for line in reversed(lines[:at]):
        match = DEF.match(line)
        if match and len(match.group("indent")) < level:
            names.append(match.group("name"))
            level = len(match.group("indent"))
            if level == 0:
                break
    return ".".join(reversed(names))


def _placeholders(lines: list[str]) -> str:
    """``a, b`` for top-level lines ``a = b = None`` before a stub: the names the student is to assign."""
    names = []
    for line in lines:
        match = re.match(r"^((?:\w+\s*=\s*)+)None\s*(#.*)?$", line)
        if match:
            names += re.findall(r"(\w+)\s*=", match.group(1))
    return ", ".join(names)


def named_stubs(source: str, cell_name: str, optional: bool = False) -> str:
    """``source`` with each bare stub naming what to write (``pass`` in an optional cell's top level)."""
    lines = source.split("\n")
    for i, line in enumerate(lines):
        match = STUB.match(line)
        if not match:
            continue
        indent = match.group("indent")
        where = _enclosing(lines, i, len(indent.expandtabs()))
        if optional and not where:
            lines[i] = f"{indent}pass  # optional: nothing to write here if you need no building blocks"
            continue
        what = where or _placeholders(lines[:i]) or cell_name
        lines[i] = (f'{indent}raise NotImplementedError("{what}: not written yet. Write it here (replace this line), '
                    'then run the check below it.")')
    return "\n".join(lines)


def name_release_stubs(release_dir: str | Path) -> list[Path]:
    """Rewrite the stubs of every released notebook in ``release_dir``; returns the notebooks changed."""
    import nbformat
    from nbgrader.utils import compute_checksum

    changed = []
    for path in sorted(Path(release_dir).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        edited = False
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.cell_type != "code" or not meta.get("solution"):
                continue
            source = named_stubs(cell.source, meta.get("grade_id", "this cell"),
                                 OPTIONAL_TAG in cell.get("metadata", {}).get("tags", []))
            if source != cell.source:
                cell.source = source
                if "checksum" in meta:
                    meta["checksum"] = compute_checksum(cell)
                edited = True
        if edited:
            nbformat.write(nb, path)
            changed.append(path)
    return changed
