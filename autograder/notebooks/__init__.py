"""Everything the instructor kit knows about each notebook: one folder per notebook, named by its stem.

``autograder/notebooks/<stem>/`` for the source notebook ``notebooks/<stem>.ipynb``::

    hidden_tests.py      the hidden tests that decide its autograded cells (``@grades("<stem>", grade_id)``)
    build_reference.py   ``build(ns)``: reference values from the executed source notebook (``a2kit reference``)
    reference/           those values (.npz / .json) and the reference checkpoints (``reference/checkpoints/``)
    cases/*.yaml         its corpus: test submissions and the points each must get (format: README.md here)
    files/               files its cases copy into a submission (``copy:PATH``)

Adding a notebook is adding ``notebooks/<stem>.ipynb`` and this folder: nothing else in the kit
changes. A course with notebooks of its own keeps such folders elsewhere and names that folder
with ``--notebook-folders DIR`` (``roots`` below); its modules are imported from there.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from autograder.harness.references import load_reference
from autograder.harness.registry import register_module

KIT_FOLDERS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class NotebookFolder:
    """The folder of one notebook (see the module docstring)."""

    stem: str
    path: Path

    @property
    def reference_dir(self) -> Path:
        return self.path / "reference"

    @property
    def checkpoints_dir(self) -> Path:
        """The reference solution's trained checkpoints: a solution submission carries them."""
        return self.reference_dir / "checkpoints"

    @property
    def cases_dir(self) -> Path:
        return self.path / "cases"

    @property
    def files_dir(self) -> Path:
        return self.path / "files"

    def reference(self, name: str) -> dict:
        """The reference values ``name`` of this notebook (``reference/NAME.npz`` or ``.json``)."""
        return load_reference(self.reference_dir, name)

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def module(self, name: str) -> ModuleType:
        """Import ``<folder>/<name>.py`` (``hidden_tests``, ``build_reference``) as a module of the folder's package."""
        return importlib.import_module(f"{_package(self)}.{name}")


def _package(folder: NotebookFolder) -> str:
    """The folder's package name: ``autograder.notebooks.<stem>`` for the kit's, a made-up one for other roots."""
    if folder.path.parent == KIT_FOLDERS:
        return f"{__name__}.{folder.stem}"
    name = f"a2kit_notebook_{folder.stem}_{hashlib.sha1(str(folder.path).encode()).hexdigest()[:8]}"
    if name not in sys.modules:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(folder.path)]
        sys.modules[name] = importlib.util.module_from_spec(spec)
    return name


def notebook_folders(roots: list[str | Path] | tuple = ()) -> dict[str, NotebookFolder]:
    """``{stem: NotebookFolder}`` of the kit's folders and those under ``roots`` (a stem in two places is an error)."""
    found: dict[str, NotebookFolder] = {}
    for root in [KIT_FOLDERS, *map(Path, roots)]:
        for path in sorted(Path(root).resolve().iterdir()) if Path(root).is_dir() else []:
            if path.is_dir() and not path.name.startswith(("_", ".")):  # a notebook's stem
                if path.name in found and found[path.name].path != path:
                    raise ValueError(f"notebook {path.name} has two folders: {found[path.name].path} and {path}")
                found[path.name] = NotebookFolder(path.name, path)
    return found


def load_hidden_tests(roots: list[str | Path] | tuple = ()) -> list[str]:
    """Import every folder's ``hidden_tests.py`` and register its tests; returns the stems loaded."""
    loaded = []
    for stem, folder in notebook_folders(roots).items():
        if folder.has("hidden_tests.py"):
            register_module(folder.module("hidden_tests"))
            loaded.append(stem)
    return loaded
