"""The corpus of test submissions: YAML cases turned into nbgrader submissions, graded, compared.

A case (``autograder/notebooks/<stem>/cases/<name>.yaml``, format in ``autograder/notebooks/README.md``)
declares a submission as a base (``solution``: the release with the source's solutions filled in;
``release``: the blank student version) plus edits to cells found by nbgrader ``grade_id`` and file
operations, and the points it must get where they differ from the base's. Two base cases need no
YAML: ``solution`` (full marks on every autograded cell) and ``release`` (zero on every one). A case
lives in the folder of the notebook it is about and may contain other notebooks too; its ``copy:``
files come from that folder's ``files/``.

Typical use (what ``tests/test_corpus.py`` and ``a2kit demo`` do)::

    course = Course(tmp)                       # then release(course)
    cases, waiting = load_cases(available)     # [Case, ...] whose notebooks are all present
    for case in cases: build_submission(case, course)
    ...grade the submissions (autograder.engine.grade.grade_submissions)...
    result = case_result(course, case, autograded_cells(course.source_dir))   # CaseResult(mismatches, ...)
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat
import yaml

from autograder.engine.course import Course
from autograder.harness.cells import cells_by_id, find_cell, grade_id, is_solution_cell, source_of
from autograder.notebooks import notebook_folders

BASES = ("solution", "release")
FAMILIES = ("hostile", "cheat", "honest", "similarity")  # a case named FAMILY_...; every other case is a typical mistake
SOLUTION_DELIMITERS = ("BEGIN SOLUTION", "END SOLUTION")


class CaseError(ValueError):
    """A corpus case that cannot be built (bad YAML, unknown cell, unsafe path...)."""


@dataclass
class Edit:
    """Replace (``source``) or remove (``delete``) the cell ``cell`` (an nbgrader grade_id); or, as a
    tampering student would: ``nbgrader`` merged into its nbgrader metadata (rename, re-tag, points),
    ``duplicate`` it right after itself, ``add`` a new cell after it (``{cell_type, source, nbgrader}``)."""

    notebook: str
    cell: str
    source: str | None = None
    delete: bool = False
    nbgrader: dict | None = None
    duplicate: bool = False
    add: dict | None = None

    @property
    def tampers(self) -> bool:
        """Changes what the grading cells are (not only a cell's source)."""
        return self.delete or self.duplicate or bool(self.nbgrader) or bool(self.add)


@dataclass
class Case:
    name: str
    description: str
    base: str = "solution"
    notebooks: list[str] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    expect: dict[str, dict[str, float]] = field(default_factory=dict)
    feedback_contains: dict[str, dict[str, str]] = field(default_factory=dict)
    path: Path | None = None

    @property
    def family(self) -> str:
        """``hostile``, ``cheat``, ``honest``, ``similarity`` (from the name's prefix), ``base`` or ``mistake`` (a typical one)."""
        return family_of(self.name)

    @property
    def files_dir(self) -> Path | None:
        """``files/`` of the notebook folder the case lives in (where its ``copy:`` sources are)."""
        return self.path.parent.parent / "files" if self.path else None

    @classmethod
    def from_yaml(cls, path: Path) -> "Case":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise CaseError(f"{path.name}: not valid YAML: {exc}") from exc
        unknown = set(data) - {"description", "base", "notebooks", "edits", "files", "expect", "feedback_contains"}
        if unknown:
            raise CaseError(f"{path.name}: unknown keys {sorted(unknown)}")
        base = data.get("base", "solution")
        if base not in BASES:
            raise CaseError(f"{path.name}: base must be one of {BASES}, not {base!r}")
        edits = []
        for e in data.get("edits") or []:
            operations = [k for k in ("source", "delete", "nbgrader", "duplicate", "add") if e.get(k) not in (None, False)]
            unknown_keys = set(e) - {"notebook", "cell", "source", "delete", "nbgrader", "duplicate", "add"}
            if "notebook" not in e or "cell" not in e or not operations or unknown_keys or \
                    ("delete" in operations and len(operations) > 1):
                raise CaseError(f"{path.name}: each edit needs notebook, cell and either source or delete: true "
                                f"(or nbgrader, duplicate, add) ({e})")
            if e.get("add") is not None and not isinstance(e["add"], dict):
                raise CaseError(f"{path.name}: add takes cell_type, source and nbgrader ({e})")
            edits.append(Edit(str(e["notebook"]), str(e["cell"]), e.get("source"), bool(e.get("delete")),
                              dict(e["nbgrader"]) if e.get("nbgrader") else None, bool(e.get("duplicate")),
                              dict(e["add"]) if e.get("add") else None))
        notebooks = [str(n) for n in data.get("notebooks") or []]
        if not notebooks:
            raise CaseError(f"{path.name}: list the notebooks the submission contains")
        return cls(
            name=path.stem, description=str(data.get("description", "")).strip(), base=base,
            notebooks=notebooks, edits=edits, files={str(k): str(v) for k, v in (data.get("files") or {}).items()},
            expect={str(nb): {str(k): float(v) for k, v in (cells or {}).items()} for nb, cells in (data.get("expect") or {}).items()},
            feedback_contains={str(nb): {str(k): str(v) for k, v in (cells or {}).items()}
                               for nb, cells in (data.get("feedback_contains") or {}).items()},
            path=path,
        )


def family_of(name: str) -> str:
    """The family of the case called ``name`` (see :attr:`Case.family`)."""
    if name in BASES:
        return "base"
    return next((f for f in FAMILIES if name.startswith(f + "_")), "mistake")


def base_cases(notebooks: list[str]) -> list[Case]:
    """The two cases every corpus has: the full solution and the blank release, all notebooks."""
    return [
        Case("solution", "The source notebooks' solutions, as a student would submit them", "solution", list(notebooks)),
        Case("release", "The blank release, submitted untouched", "release", list(notebooks)),
    ]


def case_files(roots: list[str | Path] | tuple = (), stems: list[str] | None = None) -> list[Path]:
    """Every case file of every notebook folder (the kit's and those under ``roots``; only ``stems`` if given)."""
    return [path for stem, folder in notebook_folders(roots).items() if stems is None or stem in stems
            for path in sorted(folder.cases_dir.glob("*.yaml"))]


def load_cases(available: list[str], roots: list[str | Path] | tuple = (), names: list[str] | None = None
               ) -> tuple[list[Case], list[str]]:
    """The base cases plus every YAML case whose notebooks are all in ``available``.

    Returns ``(cases, skipped)`` where ``skipped`` says in words which cases wait for a notebook.
    Case names are student ids: the same name in two notebook folders is an error.
    """
    cases, skipped = base_cases(available), []
    seen: dict[str, Path] = {}
    for path in case_files(roots):
        if path.stem in seen or path.stem in BASES:
            raise CaseError(f"two cases are named {path.stem}: {seen.get(path.stem, 'a base case')} and {path}")
        seen[path.stem] = path
        case = Case.from_yaml(path)
        missing = [nb for nb in case.notebooks if nb not in available]
        if missing:
            skipped.append(f"{case.name}: needs notebook(s) {', '.join(missing)}")
        else:
            cases.append(case)
    if names is not None:
        cases = [c for c in cases if c.name in names]
    return cases, skipped


# -- building submissions --------------------------------------------------------------------------
def strip_solution_delimiters(source: str) -> str:
    """A solution cell's source as a student would write it: without the ``### BEGIN/END SOLUTION`` lines."""
    return "\n".join(l for l in source.split("\n") if not any(d in l for d in SOLUTION_DELIMITERS))


def solution_notebook(release_nb, source_nb):
    """The release notebook with every solution cell's source taken from the source notebook."""
    solutions = {grade_id(c): source_of(c) for c in source_nb.cells if is_solution_cell(c)}
    nb = nbformat.from_dict(json.loads(json.dumps(release_nb)))
    for cell in nb.cells:
        gid = grade_id(cell)
        if is_solution_cell(cell) and gid in solutions:
            cell.source = strip_solution_delimiters(solutions[gid])
    return nb


def apply_edits(nb, notebook: str, edits: list[Edit]):
    """Apply the case's edits that concern ``notebook`` (raises CaseError for an unknown grade_id)."""
    for edit in (e for e in edits if e.notebook == notebook):
        cell = find_cell(nb, edit.cell)
        if cell is None:
            ids = sorted(filter(None, (grade_id(c) for c in nb.cells)))
            raise CaseError(f"{notebook}: no cell with grade_id {edit.cell!r} (there are: {', '.join(ids)})")
        at = next(i for i, c in enumerate(nb.cells) if c is cell)
        if edit.delete:
            nb.cells.remove(cell)
            continue
        if edit.source is not None:
            cell.source = edit.source
        if edit.nbgrader:
            cell.metadata.setdefault("nbgrader", {}).update(edit.nbgrader)
        if edit.duplicate:
            copied = nbformat.from_dict(json.loads(json.dumps(cell)))
            copied.pop("id", None)
            nb.cells.insert(at + 1, copied)
        if edit.add:
            make = nbformat.v4.new_markdown_cell if edit.add.get("cell_type") == "markdown" else nbformat.v4.new_code_cell
            nb.cells.insert(at + 1, make(str(edit.add.get("source", "")),
                                         metadata={"nbgrader": dict(edit.add.get("nbgrader") or {})}))
    for c in nb.cells:  # a copy or a new cell gets an id of its own, as JupyterLab gives it (nbformat 4.5+)
        if nb.get("nbformat_minor", 0) >= 5 and "id" not in c:
            c["id"] = nbformat.v4.new_code_cell().id
        elif nb.get("nbformat_minor", 0) < 5:
            c.pop("id", None)
    return nb


def _safe_relative(path: str) -> PurePosixPath:
    rel = PurePosixPath(path)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise CaseError(f"file path {path!r} must be relative and stay inside the submission")
    return rel


def apply_files(dest: Path, files: dict[str, str], files_dir: Path | None) -> None:
    """The ``files:`` operations: ``copy:SRC`` (SRC under the case's ``files/``), ``text:CONTENT``, ``delete``."""
    for path, op in files.items():
        target = dest / _safe_relative(path)
        if op == "delete":
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if op.startswith("copy:"):
            if files_dir is None:
                raise CaseError(f"copy: for {path} needs the case's notebook folder (its files/)")
            src = files_dir / _safe_relative(op[len("copy:"):])
            if not src.exists():
                raise CaseError(f"copy source {src} does not exist")
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, target)
        elif op.startswith("text:"):
            target.write_text(op[len("text:"):])
        else:
            raise CaseError(f"unknown file operation {op!r} for {path} (copy:SRC, text:CONTENT or delete)")


def build_submission(case: Case, course: Course, student: str | None = None) -> Path:
    """Write ``case`` as ``course``'s submission of ``student`` (default: the case name); return its folder.

    Needs a release first (the release is the base of every submission). A solution-based submission
    carries the reference checkpoints of each of its notebooks (``reference/checkpoints/``) as its own
    ``checkpoints/``, before the case's ``files:`` operations.
    """
    dest = course.submitted_dir(student or case.name)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    folders = notebook_folders()
    for name in case.notebooks:
        release_path = course.release_dir / f"{name}.ipynb"
        if not release_path.exists():
            raise CaseError(f"{case.name}: notebook {name} is not in the release {course.release_dir}")
        nb = nbformat.read(release_path, as_version=4)
        if case.base == "solution":
            nb = solution_notebook(nb, nbformat.read(course.source_dir / f"{name}.ipynb", as_version=4))
            if name in folders and folders[name].checkpoints_dir.is_dir():
                shutil.copytree(folders[name].checkpoints_dir, dest / "checkpoints", dirs_exist_ok=True)
        nbformat.write(apply_edits(nb, name, case.edits), dest / f"{name}.ipynb")
    apply_files(dest, case.files, case.files_dir)
    return dest


# -- expected scores -------------------------------------------------------------------------------
def expected_scores(case: Case, cells: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The points every autograded cell must get: the case's ``expect``, else the base's score.

    Notebooks the submission does not contain score 0 everywhere.
    """
    unknown = [f"{nb}/{gid}" for nb, ids in case.expect.items() for gid in ids if gid not in cells.get(nb, {})]
    if unknown:
        raise CaseError(f"{case.name}: expect names cells that are not autograded test cells: {', '.join(unknown)}")
    out = {}
    for nb, ids in cells.items():
        full = case.base == "solution" and nb in case.notebooks
        out[nb] = {gid: case.expect.get(nb, {}).get(gid, pts if full else 0.0) for gid, pts in ids.items()}
    return out


@dataclass
class CaseResult:
    name: str
    description: str
    mismatches: list[str]
    total: float
    max_total: float

    @property
    def ok(self) -> bool:
        return not self.mismatches


def cell_output_text(cell) -> str:
    """Everything a code cell printed or raised, as plain text (what the student sees)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
        elif "data" in out:
            parts.append(str(out.data.get("text/plain", "")))
    return "\n".join(parts)


def _displayed_values(path: Path) -> dict[str, str]:
    """Test cells of an autograded notebook that display a value (an ``execute_result``)."""
    if not path.exists():
        return {}
    out = {}
    for cell in nbformat.read(path, as_version=4).cells:
        for o in cell.get("outputs", []):
            if o.output_type == "execute_result" and grade_id(cell):
                out[grade_id(cell)] = str(o.get("data", {}).get("text/plain", ""))[:40]
    return out


def case_result(course: Course, case: Case, cells: dict[str, dict[str, float]], student: str | None = None) -> CaseResult:
    """Compare the gradebook's scores (and the autograded notebooks' outputs) with the case's expectations."""
    student = student or case.name
    expected = expected_scores(case, cells)
    try:
        actual = course.scores(student)
    except Exception as exc:  # no submission in the gradebook: the grader failed on it
        return CaseResult(case.name, case.description, [f"not in the gradebook ({exc})"], 0.0, 0.0)
    mismatches = []
    for nb, ids in expected.items():
        shown = _displayed_values(course.autograded_dir(student) / f"{nb}.ipynb")
        for gid, want in ids.items():
            got = (actual.get(nb, {}).get(gid, (None, None))[0]) or 0.0
            if abs(got - want) > 1e-6:
                why = (f" (the cell displays {shown[gid]!r}, which nbgrader reads as partial credit: end the "
                       "line with ';')") if gid in shown else ""
                mismatches.append(f"{nb}/{gid}: scored {got:g}, expected {want:g}{why}")
    for nb, wanted in case.feedback_contains.items():
        path = course.autograded_dir(student) / f"{nb}.ipynb"
        nb_cells = cells_by_id(nbformat.read(path, as_version=4)) if path.exists() else {}
        for gid, text in wanted.items():
            shown = cell_output_text(nb_cells[gid]) if gid in nb_cells else ""
            if text.lower() not in shown.lower():
                mismatches.append(f"{nb}/{gid}: output does not say {text!r} (it says {shown[-300:]!r})")
    total = sum(s for ids in actual.values() for gid, (s, _) in ids.items() if s is not None and any(gid in c for c in cells.values()))
    max_total = sum(p for ids in cells.values() for p in ids.values())
    return CaseResult(case.name, case.description, mismatches, total, max_total)
