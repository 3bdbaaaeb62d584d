"""Reference values for the hidden tests, generated from the source notebooks' solutions.

``python -m autograder.reference`` (or ``a2kit reference``) does, for every case generator
``autograder/cases/<stem>.py`` whose notebook ``notebooks/<stem>.ipynb`` exists:

1. ``load_solution_namespace(notebooks/<stem>.ipynb)``: execute the notebook's code cells, solutions
   included, in fast, non-grading mode (``A2_FAST=1``, ``NBGRADER_EXECUTION`` unset), in order, in one
   namespace, with the notebook's folder as the working directory and a fixed seed;
2. ``build(ns)`` from the case module, which returns the values;
3. write them to ``autograder/reference/``, where the hidden tests read them (``load_reference(name)``),
   in the grader's process only: they never enter a student's kernel.

Which cells are executed (the convention agreed with the notebook authors):

* cells tagged ``reference-skip`` (cell metadata ``tags``) are skipped: tag every cell that trains,
  downloads, plots at length, or is otherwise not needed to define the solution objects;
* nbgrader test cells (``nbgrader.grade`` true and ``nbgrader.solution`` false) are skipped: hidden
  tests read the very values being generated;
* IPython magics and shell lines (``%...``, ``!...``) are dropped, and cells that start with a cell
  magic (``%%...``) are skipped.

What ``build(ns)`` returns, and the files it becomes:

* a dict of plain values, e.g. ``{"x": array, "out": array}``, is one reference named after the
  notebook stem (``autograder/reference/<stem>.npz``);
* a dict whose values are all dicts, e.g. ``{"conv_cases": {...}, "focal": {...}}``, is one
  reference per key (``conv_cases.npz``, ``focal.json``).

A reference is written as ``.npz`` when every value is a numpy array or a number (loaded back as
arrays), else as ``.json`` (arrays become nested lists). Stale files of the other format are removed.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import numbers
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

KIT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = KIT_ROOT / "notebooks"
CASES = Path(__file__).resolve().parent / "cases"
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
SKIP_TAG = "reference-skip"


# -- executing a source notebook -------------------------------------------------------------------
def is_test_cell(cell) -> bool:
    """An nbgrader autograder-test cell (graded, not a solution)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def executable_source(cell) -> str | None:
    """The Python that ``load_solution_namespace`` runs for ``cell``, or None to skip the cell."""
    if cell.get("cell_type") != "code" or is_test_cell(cell):
        return None
    if SKIP_TAG in cell.get("metadata", {}).get("tags", []):
        return None
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
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

    Skips test cells and cells tagged ``reference-skip`` (see the module docstring). Raises
    ``RuntimeError`` naming the cell (index and nbgrader grade_id) when a cell fails.
    """
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
            name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
            try:
                code = compile(source, f"<{notebook_path.name} cell {index} {name}>", "exec")
                exec(code, ns)  # noqa: S102 (the kit's own source notebook)
            except Exception as exc:
                raise RuntimeError(f"{notebook_path.name}: cell {index} {name!r} failed: {exc!r}") from exc
    import matplotlib.pyplot as plt

    plt.close("all")
    return ns


# -- writing reference values ----------------------------------------------------------------------
def _is_numeric(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biufc"
    return isinstance(value, (numbers.Number, np.generic)) and not isinstance(value, bool)


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().cpu().numpy().tolist()
    return value


def _as_array(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def split_references(values: dict, stem: str) -> dict[str, dict]:
    """``build``'s result as ``{reference_name: {key: value}}`` (see the module docstring)."""
    if not isinstance(values, dict) or not values:
        raise TypeError(f"cases/{stem}.py: build(ns) must return a non-empty dict, got {type(values).__name__}")
    if all(isinstance(v, dict) for v in values.values()):
        return {str(k): v for k, v in values.items()}
    return {stem: values}


def write_reference(name: str, values: dict, folder: Path = REFERENCE_DIR) -> Path:
    """Write one reference as ``name.npz`` (all numeric) or ``name.json``; return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    values = {k: (_as_array(v) if hasattr(v, "detach") else v) for k, v in values.items()}
    numeric = all(_is_numeric(v) for v in values.values())
    path = folder / f"{name}.{'npz' if numeric else 'json'}"
    stale = folder / f"{name}.{'json' if numeric else 'npz'}"
    if numeric:
        np.savez_compressed(path, **{k: np.asarray(v) for k, v in values.items()})
    else:
        path.write_text(json.dumps(_jsonable(values), indent=1, sort_keys=True) + "\n")
    stale.unlink(missing_ok=True)
    return path


def load_reference(name: str, folder: Path = REFERENCE_DIR) -> dict:
    """Reference values ``name`` (numpy arrays from .npz, plain values from .json), for the trusted side only."""
    npz, js = folder / f"{name}.npz", folder / f"{name}.json"
    if npz.exists():
        with np.load(npz, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    if js.exists():
        return json.loads(js.read_text())
    raise FileNotFoundError(f"No reference values named {name!r} in {folder}: generate them with `a2kit reference`.")


def case_stems(cases: Path = CASES) -> list[str]:
    """Notebook stems that have a case generator ``cases/<stem>.py``."""
    return sorted(p.stem for p in cases.glob("*.py") if not p.stem.startswith("_"))


def build_references(stem: str, notebooks: Path = NOTEBOOKS, out: Path = REFERENCE_DIR,
                     fast: bool = True) -> list[Path]:
    """Execute ``notebooks/<stem>.ipynb``, run ``autograder.cases.<stem>.build`` and write its values."""
    module = importlib.import_module(f"autograder.cases.{stem}")
    ns = load_solution_namespace(Path(notebooks) / f"{stem}.ipynb", fast=fast)
    return [write_reference(name, vals, out) for name, vals in split_references(module.build(ns), stem).items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.reference", description=__doc__.split("\n")[0])
    parser.add_argument("stems", nargs="*", help="notebook stems to (re)build (default: every case present)")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS)
    parser.add_argument("--out", type=Path, default=REFERENCE_DIR)
    parser.add_argument("--full", action="store_true", help="execute the notebooks in full mode, not fast mode")
    args = parser.parse_args(argv)

    stems = args.stems or case_stems()
    missing = [s for s in stems if not (args.notebooks / f"{s}.ipynb").exists()]
    failed = 0
    for stem in stems:
        if stem in missing:
            print(f"{stem}: no notebook {args.notebooks / (stem + '.ipynb')}, skipped")
            continue
        start = time.perf_counter()
        try:
            paths = build_references(stem, args.notebooks, args.out, fast=not args.full)
        except Exception as exc:  # report every notebook, then fail
            failed += 1
            print(f"{stem}: FAILED: {exc}", file=sys.stderr)
            continue
        names = ", ".join(p.name for p in paths)
        print(f"{stem}: wrote {names} in {time.perf_counter() - start:.1f} s")
    if not stems:
        print(f"No case generators in {CASES}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
