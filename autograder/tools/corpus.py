"""The corpus of test submissions: YAML cases turned into nbgrader submissions, graded, checked.

A case (``autograder/corpus/<name>.yaml``, format in ``autograder/corpus/README.md``) declares a
submission as a base (``solution``: the release with the source's solutions filled in; ``release``:
the blank student version) plus edits to cells found by nbgrader ``grade_id`` and file operations,
and the points it must get where they differ from the base's. Two base cases need no YAML:
``solution`` (full marks on every autograded cell) and ``release`` (zero on every one).

Typical use (what ``tests/test_corpus.py`` and ``a2kit demo`` do)::

    course = Course(tmp)                       # then course.sync_source(); course.generate_release()
    cases = load_cases()                       # [Case, ...] whose notebooks are present
    for case in cases: build_submission(case, course)
    ...grade the submissions (autograder.grade.grade_submissions)...
    results = check_cases(course, cases)       # [CaseResult(name, mismatches), ...]
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat
import yaml

from autograder.course import Course

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
FILES_DIR = CORPUS_DIR / "files"
SOLUTION_FILES = FILES_DIR / "solution"  # extra files every solution-based submission carries
# The reference solution's trained checkpoints (``bench/reference_results.py``): the solution base
# submits them as its own ``checkpoints/``.
REFERENCE_CHECKPOINTS = Path(__file__).resolve().parent / "reference" / "checkpoints"
BASES = ("solution", "release")
SOLUTION_DELIMITERS = ("BEGIN SOLUTION", "END SOLUTION")


class CaseError(ValueError):
    """A corpus case that cannot be built (bad YAML, unknown cell, unsafe path...)."""


@dataclass
class Edit:
    """Replace (``source``) or remove (``delete``) the cell ``cell`` (an nbgrader grade_id)."""

    notebook: str
    cell: str
    source: str | None = None
    delete: bool = False


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
            if "notebook" not in e or "cell" not in e or ("source" not in e) == (not e.get("delete")):
                raise CaseError(f"{path.name}: each edit needs notebook, cell and either source or delete: true ({e})")
            edits.append(Edit(str(e["notebook"]), str(e["cell"]), e.get("source"), bool(e.get("delete"))))
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


def base_cases(notebooks: list[str]) -> list[Case]:
    """The two cases every corpus has: the full solution and the blank release, all notebooks."""
    return [
        Case("solution", "The source notebooks' solutions, as a student would submit them", "solution", list(notebooks)),
        Case("release", "The blank release, submitted untouched", "release", list(notebooks)),
    ]


def load_cases(available: list[str], folder: Path = CORPUS_DIR, names: list[str] | None = None) -> tuple[list[Case], list[str]]:
    """The base cases plus every YAML case whose notebooks are all in ``available``.

    Returns ``(cases, skipped)`` where ``skipped`` says in words which cases wait for a notebook.
    """
    cases, skipped = base_cases(available), []
    for path in sorted(Path(folder).glob("*.yaml")):
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
def _source_text(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def strip_solution_delimiters(source: str) -> str:
    """A solution cell's source as a student would write it: without the ``### BEGIN/END SOLUTION`` lines."""
    return "\n".join(l for l in source.split("\n") if not any(d in l for d in SOLUTION_DELIMITERS))


def solution_notebook(release_nb, source_nb):
    """The release notebook with every solution cell's source taken from the source notebook."""
    solutions = {_grade_id(c): _source_text(c) for c in source_nb.cells
                 if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    nb = nbformat.from_dict(json.loads(json.dumps(release_nb)))
    for cell in nb.cells:
        gid = _grade_id(cell)
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution") and gid in solutions:
            cell.source = strip_solution_delimiters(solutions[gid])
    return nb


def apply_edits(nb, notebook: str, edits: list[Edit]):
    """Apply the case's edits that concern ``notebook`` (raises CaseError for an unknown grade_id)."""
    for edit in (e for e in edits if e.notebook == notebook):
        index = next((i for i, c in enumerate(nb.cells) if _grade_id(c) == edit.cell), None)
        if index is None:
            ids = sorted(filter(None, (_grade_id(c) for c in nb.cells)))
            raise CaseError(f"{notebook}: no cell with grade_id {edit.cell!r} (there are: {', '.join(ids)})")
        if edit.delete:
            del nb.cells[index]
        else:
            nb.cells[index].source = edit.source
    return nb


def _safe_relative(path: str) -> PurePosixPath:
    rel = PurePosixPath(path)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise CaseError(f"file path {path!r} must be relative and stay inside the submission")
    return rel


def apply_files(dest: Path, files: dict[str, str], files_dir: Path = FILES_DIR) -> None:
    """The ``files:`` operations: ``copy:SRC`` (SRC under corpus/files/), ``text:CONTENT``, ``delete``."""
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
            src = files_dir / _safe_relative(op[len("copy:"):])
            if not src.exists():
                raise CaseError(f"copy source {src} does not exist")
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, target)
        elif op.startswith("text:"):
            target.write_text(op[len("text:"):])
        else:
            raise CaseError(f"unknown file operation {op!r} for {path} (copy:SRC, text:CONTENT or delete)")


def build_submission(case: Case, course: Course, student: str | None = None, files_dir: Path = FILES_DIR,
                     reference_checkpoints: Path = REFERENCE_CHECKPOINTS) -> Path:
    """Write ``case`` as ``course``'s submission of ``student`` (default: the case name); return its folder.

    Needs ``course.generate_release()`` first (the release is the base of every submission).
    """
    dest = course.submitted_dir(student or case.name)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in case.notebooks:
        release_path = course.release_dir / f"{name}.ipynb"
        if not release_path.exists():
            raise CaseError(f"{case.name}: notebook {name} is not in the release {course.release_dir}")
        nb = nbformat.read(release_path, as_version=4)
        if case.base == "solution":
            nb = solution_notebook(nb, nbformat.read(course.source_dir / f"{name}.ipynb", as_version=4))
        nbformat.write(apply_edits(nb, name, case.edits), dest / f"{name}.ipynb")
    if case.base == "solution" and Path(reference_checkpoints).is_dir():
        shutil.copytree(reference_checkpoints, dest / "checkpoints", dirs_exist_ok=True)
    if case.base == "solution" and (files_dir / "solution").is_dir():
        shutil.copytree(files_dir / "solution", dest, dirs_exist_ok=True)
    apply_files(dest, case.files, files_dir)
    return dest


# -- expected scores -------------------------------------------------------------------------------
def autograded_cells(source_dir: Path) -> dict[str, dict[str, float]]:
    """``{notebook: {grade_id: points}}`` of the autograder-test cells of the source notebooks."""
    out = {}
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells = {}
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
                cells[meta["grade_id"]] = float(meta.get("points", 0))
        out[path.stem] = cells
    return out


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
            if o.output_type == "execute_result" and _grade_id(cell):
                out[_grade_id(cell)] = str(o.get("data", {}).get("text/plain", ""))[:40]
    return out


def check_case(course: Course, case: Case, cells: dict[str, dict[str, float]], student: str | None = None) -> CaseResult:
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
        nb_cells = {_grade_id(c): c for c in nbformat.read(path, as_version=4).cells} if path.exists() else {}
        for gid, text in wanted.items():
            shown = cell_output_text(nb_cells[gid]) if gid in nb_cells else ""
            if text.lower() not in shown.lower():
                mismatches.append(f"{nb}/{gid}: output does not say {text!r} (it says {shown[-300:]!r})")
    total = sum(s for ids in actual.values() for gid, (s, _) in ids.items() if s is not None and any(gid in c for c in cells.values()))
    max_total = sum(p for ids in cells.values() for p in ids.values())
    return CaseResult(case.name, case.description, mismatches, total, max_total)


def check_cases(course: Course, cases: list[Case]) -> list[CaseResult]:
    cells = autograded_cells(course.source_dir)
    return [check_case(course, case, cells) for case in cases]
