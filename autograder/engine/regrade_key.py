"""The regrade key: everything that decides a grade, as one digest per part.

A grade is reused ("unchanged") only when every part of its key equals the last grading's; otherwise
the submission is graded again and the parts that differ say why ("mode changed", "hidden tests
changed"). The parts (:data:`PARTS`):

- ``submission``: the student's files;
- ``source notebooks``: the assignment's source notebooks (solutions, test cells, points);
- ``mode``: fast or full (``A2_FAST``);
- ``environment``: the rest of the environment given to the kernel (``A2_DATA``...), except the
  thread counts, which follow the number of workers and never change a verdict the hidden tests
  accept (their tolerances are there for that);
- ``limits``: wall-clock, CPU-time, memory and per-cell limits;
- ``hidden tests``: every notebook folder's Python modules (hidden tests, scoring helpers) and the
  kit's shared scoring module;
- ``reference values``: every notebook folder's ``reference/`` (values and checkpoints);
- ``kit``: the kit's version and the code that decides points outside the kernel (the harness) and
  the student package the kernel imports (``a2lib``);
- ``data``: the data folder's CIFAR-10 files (names, sizes and content).

Digests of the folders are cached per process by the files' sizes and modification times, so a
class of 300 hashes the kit and the data once.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from autograder.engine.trees import tree_hash

PARTS = ["submission", "source notebooks", "mode", "environment", "limits", "hidden tests", "reference values",
         "kit", "data"]
THREAD_VARIABLES = {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}
_KIT_CODE = ("autograder/harness", "a2lib")   # relative to the kit root: the code that decides points


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """One file's content digest, cached by its size and modification time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files_digest(paths: list[Path], root: Path | None = None) -> str:
    """SHA-256 over ``paths``: their names (relative to ``root``, else base names) and contents.

    Names relative to ``root``: the same folder elsewhere (another checkout, an installed kit) has the
    same digest."""
    h = hashlib.sha256()
    for path in sorted(Path(p) for p in paths if Path(p).is_file()):
        st = path.stat()
        name = os.path.relpath(path, root) if root is not None else path.name
        h.update(os.fsencode(name) + b"\0" + _file_digest(str(path), st.st_size, st.st_mtime_ns).encode())
    return h.hexdigest()


def _python_files(folder: Path) -> list[Path]:
    return [p for p in Path(folder).rglob("*.py") if "__pycache__" not in p.parts]


def hidden_tests_digest(notebook_folders: list[str]) -> str:
    """Every notebook folder's Python modules (hidden tests, reference builders, helpers) and the shared scoring."""
    from autograder.notebooks import KIT_FOLDERS, notebook_folders as all_folders

    digests = {stem: files_digest(_python_files(folder.path), folder.path)
               for stem, folder in all_folders(notebook_folders).items()}
    shared = [p for p in KIT_FOLDERS.glob("*.py")]
    return _digest({"folders": digests, "shared": files_digest(shared, KIT_FOLDERS)})


def references_digest(notebook_folders: list[str]) -> str:
    """Every notebook folder's reference values and checkpoints (``reference/``)."""
    from autograder.notebooks import notebook_folders as all_folders

    return _digest({stem: files_digest([p for p in folder.reference_dir.rglob("*") if p.is_file()],
                                       folder.reference_dir)
                    for stem, folder in all_folders(notebook_folders).items() if folder.reference_dir.is_dir()})


def kit_digest() -> str:
    """The kit's version and the code that decides points outside the kernel and that the kernel imports."""
    import a2lib
    import autograder.harness

    roots = [Path(autograder.harness.__file__).parent, Path(a2lib.__file__).parent]
    return _digest({"version": a2lib.__version__, "code": [files_digest(_python_files(r), r) for r in roots]})


def data_digest(env: dict) -> str:
    """The CIFAR-10 files of the kernel's data folder (training and test batches: the hidden tests read both)."""
    data = env.get("A2_DATA")
    folder = Path(data) / "cifar-10-batches-py" if data else None
    if folder is None or not folder.is_dir():
        return _digest(None)
    return files_digest([p for p in folder.iterdir() if p.is_file()])


def class_key(source_dir: Path, env: dict, limits: dict, notebook_folders: list[str]) -> dict[str, str]:
    """Every part of the key but the submission (the same for a whole class)."""
    kernel_env = {k: v for k, v in env.items() if k not in THREAD_VARIABLES and k != "A2_FAST"}
    return {
        "source notebooks": tree_hash(source_dir),
        "mode": "fast" if env.get("A2_FAST", "0") == "1" else "full",
        "environment": _digest(kernel_env),
        "limits": _digest({k: v for k, v in limits.items() if v is not None}),
        "hidden tests": hidden_tests_digest(notebook_folders),
        "reference values": references_digest(notebook_folders),
        "kit": kit_digest(),
        "data": data_digest(env),
    }


def submission_key(common: dict[str, str], submission_dir: Path) -> dict[str, str]:
    """The full key of one submission: ``common`` (:func:`class_key`) and its files' digest."""
    return {"submission": tree_hash(submission_dir), **common}


def changed_parts(old, new: dict[str, str]) -> list[str]:
    """The parts of ``new`` that differ from ``old`` (the key stored by the last grading), in :data:`PARTS`
    order; ``["no earlier grading"]`` when there is no usable earlier key."""
    if not isinstance(old, dict):
        return ["no earlier grading"] if old is None else ["grading key format changed"]
    return [part for part in PARTS if old.get(part) != new.get(part)]


def regrade_reason(parts: list[str]) -> str:
    """``"mode changed, hidden tests changed"``: the parts in plain words."""
    return ", ".join(p if p.startswith(("no ", "grading key")) else f"{p} changed" for p in parts)
