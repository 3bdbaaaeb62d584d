"""Reference values for the hidden tests, built from the source notebooks' solutions.

``a2kit reference [STEM ...]`` (or ``python -m autograder.tools.build_references``) does, for every
notebook folder ``autograder/notebooks/<stem>/`` with a ``build_reference.py`` whose notebook
``notebooks/<stem>.ipynb`` exists:

1. execute the notebook with its solutions (:func:`autograder.tools.solutions.load_solution_namespace`);
2. call ``build(ns)`` of the folder's ``build_reference.py``, which returns the values;
3. write them into the folder's ``reference/`` (:func:`autograder.harness.references.write_reference`),
   where its hidden tests read them (``ctx.reference(name)``), in the grader's process only.

What ``build(ns)`` returns: a dict of plain values (``{"x": array, "out": array}``) is one reference
named after the notebook stem; a dict whose values are all dicts (``{"conv": {...}, "focal": {...}}``)
is one reference per key.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from autograder.harness.references import write_reference
from autograder.notebooks import NotebookFolder, notebook_folders
from autograder.locations import SOURCE_NOTEBOOKS

from .solutions import load_solution_namespace


def split_references(values: dict, stem: str) -> dict[str, dict]:
    """``build``'s result as ``{reference_name: {key: value}}`` (see the module docstring)."""
    if not isinstance(values, dict) or not values:
        raise TypeError(f"{stem}/build_reference.py: build(ns) must return a non-empty dict, got {type(values).__name__}")
    if all(isinstance(v, dict) for v in values.values()):
        return {str(k): v for k, v in values.items()}
    return {stem: values}


def build_references(folder: NotebookFolder, notebooks: Path = SOURCE_NOTEBOOKS, out: Path | None = None,
                     fast: bool = True) -> list[Path]:
    """Execute ``notebooks/<stem>.ipynb``, run the folder's ``build(ns)`` and write its values (to ``out``,
    default the folder's ``reference/``)."""
    build = folder.module("build_reference").build
    ns = load_solution_namespace(Path(notebooks) / f"{folder.stem}.ipynb", fast=fast)
    out = folder.reference_dir if out is None else Path(out)
    return [write_reference(out, name, vals) for name, vals in split_references(build(ns), folder.stem).items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="a2kit reference", description=__doc__.split("\n")[0])
    parser.add_argument("stems", nargs="*", help="notebook stems to (re)build (default: every folder with a builder)")
    parser.add_argument("--notebooks", type=Path, default=SOURCE_NOTEBOOKS)
    parser.add_argument("--out", type=Path, default=None, help="write here instead of each folder's reference/")
    parser.add_argument("--full", action="store_true", help="execute the notebooks in full mode, not fast mode")
    parser.add_argument("--notebook-folders", action="append", default=[], metavar="DIR",
                        help="a folder of notebook folders beyond the kit's (repeatable)")
    args = parser.parse_args(argv)

    folders = {stem: f for stem, f in notebook_folders(args.notebook_folders).items() if f.has("build_reference.py")}
    stems = args.stems or sorted(folders)
    failed = 0
    for stem in stems:
        if stem not in folders:
            print(f"{stem}: no notebook folder with a build_reference.py", file=sys.stderr)
            failed += 1
            continue
        if not (args.notebooks / f"{stem}.ipynb").exists():
            print(f"{stem}: no notebook {args.notebooks / (stem + '.ipynb')}, skipped")
            continue
        start = time.perf_counter()
        try:
            paths = build_references(folders[stem], args.notebooks, args.out, fast=not args.full)
        except Exception as exc:  # report every notebook, then fail
            failed += 1
            print(f"{stem}: FAILED: {exc}", file=sys.stderr)
            continue
        print(f"{stem}: wrote {', '.join(p.name for p in paths)} in {time.perf_counter() - start:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
