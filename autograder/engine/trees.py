"""Folders as ``{relative path: bytes}``: how submissions travel to workers and results come back.

File names are data: a name is whatever bytes the file system holds, as Python gives them (bytes
that are not UTF-8 become surrogate escapes, ``"m\\udcfcller.txt"``); they travel as such (pickle keeps
them), are written back to the same bytes and hash by their bytes (``os.fsencode``).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

SKIP = (".ipynb_checkpoints", "__pycache__")


def read_tree(folder: Path, skip: tuple[str, ...] = SKIP, max_file_bytes: int | None = None) -> dict[str, bytes]:
    """Every plain file below ``folder`` (no symlinks, none of ``skip``, none larger than ``max_file_bytes``)."""
    out = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not path.is_symlink() and not any(part in skip for part in path.parts):
            if max_file_bytes is None or path.stat().st_size <= max_file_bytes:
                out[str(path.relative_to(folder))] = path.read_bytes()
    return out


def write_tree(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        target = Path(folder) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def tree_hash(folder: Path) -> str:
    """SHA-256 over the relative paths and contents of every file in ``folder``."""
    h = hashlib.sha256()
    for rel, data in read_tree(folder).items():
        h.update(os.fsencode(rel) + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()
