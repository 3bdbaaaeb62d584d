"""``a2kit similarity``: pairs of students whose solutions are alike enough for a person to look. It flags;
it never decides.

What is compared, per notebook, for every student with an autograded (else a submitted) copy:

* **code**: the student's solution cells (nbgrader solution cells that are not written answers; the
  lines the release gave left out) and any code cell they added, one document per notebook; the release's starter code and the instructor's solution are boilerplate
  (their fingerprints never count; ``count_solution`` makes the solution count between students);
* **written answers** (Q3, the observations, the model's justification): each answer on its own,
  as lower-case words; the release's placeholder and the reference answer are boilerplate.

How (:mod:`.winnowing`, with copydetect): for every pair, the share of fingerprints they have in
common (MOSS's measure); where it reaches ``floor`` (half the threshold), copydetect's exact
comparison: the share of each one's tokens inside matching slices. A pair is **flagged** in a part
when either share reaches ``threshold`` and they share at least ``winnowing.MIN_OVERLAP`` characters.
Each student's share of fingerprints found in the instructor's solution is listed too. Parts are
compared in ``workers`` processes with a fixed hash seed, so the same class gives the same figures
every time (spawned processes: a script that calls :func:`check_similarity` needs the usual
``if __name__ == "__main__":`` guard).
"""
from __future__ import annotations

import json
import logging
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import pandas as pd

from autograder.engine.course import Course
from autograder.harness.cells import grade_id, is_solution_cell, is_test_cell, nbgrader_meta
from autograder.tools.corpus import strip_solution_delimiters

from .winnowing import K, MIN_OVERLAP, WINDOW, Part, PartResult, compare_part

log = logging.getLogger(__name__)
THRESHOLD = 0.5
HASH_SEED = "0"  # the Python hash seed fingerprints are made with (see run_parts)
STRING = re.compile(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'', re.S)


@dataclass
class SimilarityResult:
    """pairs: every pair compared exactly (kind, part, notebook, student_a, student_b, similarity_a,
    similarity_b, similarity, overlap, shared, flagged); reference: kind, part, notebook, student, share
    (of their fingerprints found in the instructor's solution); parts: per part, students, pairs, pairs
    compared exactly, pairs flagged; slices: ``{(part, a, b): (a's text, b's text)}`` highlighted, for
    flagged pairs."""

    pairs: pd.DataFrame
    reference: pd.DataFrame
    parts: pd.DataFrame
    slices: dict
    students: list[str]
    threshold: float
    floor: float
    count_solution: bool

    @property
    def flagged(self) -> pd.DataFrame:
        return self.pairs[self.pairs["flagged"]] if len(self.pairs) else self.pairs

    def flagged_students(self) -> pd.DataFrame:
        """One row per flagged pair of students: the parts where they were flagged, the highest similarity."""
        flagged = self.flagged
        if not len(flagged):
            return pd.DataFrame(columns=["student_a", "student_b", "parts", "similarity"])
        return (flagged.groupby(["student_a", "student_b"])
                .agg(parts=("part", lambda p: ", ".join(sorted(p))), similarity=("similarity", "max"))
                .reset_index().sort_values("similarity", ascending=False).reset_index(drop=True))


# -- the documents ---------------------------------------------------------------------------------
def words(text: str) -> str:
    """A written answer as it is compared: lower-case words separated by single spaces."""
    return " ".join(re.findall(r"[\w']+", text.lower()))


def answer_text(cell) -> str:
    """A written answer's text: a markdown cell's source, or the strings of a code cell (``Q3 = \"\"\"...\"\"\"``)."""
    source = strip_solution_delimiters(_source(cell))
    if cell.get("cell_type") == "code":
        found = [a or b for a, b in STRING.findall(source)]
        source = "\n".join(found) if found else source
    return source


def _source(cell) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def student_code(cell) -> bool:
    """A code cell the student wrote: a solution cell (not a written answer), or a cell they added (every
    cell of the release has a grade_id; code moved into a new cell must not escape the comparison)."""
    if cell.get("cell_type") != "code":
        return False
    return (is_solution_cell(cell) and not nbgrader_meta(cell).get("grade")) or not grade_id(cell)


def starter_lines(path: Path) -> dict[str, set[str]]:
    """``{grade_id: the release's lines}`` of each solution cell of a released notebook (stripped, non-empty)."""
    cells = json.loads(Path(path).read_text()).get("cells", [])
    return {grade_id(c): {line.strip() for line in _source(c).splitlines() if line.strip()}
            for c in cells if student_code(c)}


def own_lines(source: str, starter: set[str]) -> str:
    """``source`` without the lines the release gave (the class header, docstrings, ``# YOUR CODE HERE``):
    they are boilerplate anyway, and the fewer lines tokenized, the faster a class is compared."""
    return "\n".join(line for line in source.splitlines() if not line.strip() or line.strip() not in starter)


def read_parts(path: Path, starter: dict[str, set[str]] | None = None) -> tuple[str, dict[str, str]]:
    """A notebook (JSON; read without nbformat's validation, for speed) as (its students' code, one
    document with each cell under a ``# grade_id`` line, without the ``starter`` lines of that cell;
    ``{answer grade_id: words}``)."""
    cells = json.loads(Path(path).read_text()).get("cells", [])
    starter = starter or {}
    code = "\n".join(f"# {grade_id(c) or '(a cell the student added)'}\n"
                     f"{own_lines(strip_solution_delimiters(_source(c)), starter.get(grade_id(c), set()))}\n"
                     for c in cells if student_code(c))
    answers = {grade_id(c): words(answer_text(c)) for c in cells
               if is_solution_cell(c) and nbgrader_meta(c).get("grade") and not is_test_cell(c)}
    return code, answers


def students_of(course: Course) -> dict[str, Path]:
    """``{student: folder}``: the autograded folder, else the submitted one (a submission that failed grading)."""
    found = {}
    for kind in ("submitted", "autograded"):  # autograded wins
        root = course.root / kind
        for folder in sorted(root.glob(f"*/{course.assignment}")) if root.is_dir() else []:
            found[folder.parent.name] = folder
    return dict(sorted(found.items()))


def build_parts(course: Course, count_solution: bool = False) -> tuple[list[Part], list[str]]:
    """One :class:`Part` per notebook (code) and per written answer, and the students compared."""
    students = students_of(course)
    parts = []
    for source in sorted(course.source_dir.glob("*.ipynb")):
        stem = source.stem
        starter = starter_lines(course.release_dir / source.name)
        ref_code, ref_answers = read_parts(source, starter)  # cut as the students' code is: the same k-grams
        release_code, release_answers = read_parts(course.release_dir / source.name)
        code, answers = {}, {}
        for student, folder in students.items():
            if (folder / source.name).exists():
                try:
                    code[student], answers[student] = read_parts(folder / source.name, starter)
                except (ValueError, OSError, KeyError, TypeError) as exc:  # a broken submission (its grading failed)
                    log.warning("%s: %s not compared: %s", student, source.name, exc)
        parts.append(Part("code", stem, stem, code, [release_code], ref_code, count_solution))
        for gid in ref_answers:
            texts = {s: a.get(gid, "") for s, a in answers.items()}
            parts.append(Part("text", gid, stem, texts, [release_answers.get(gid, "")], ref_answers[gid], count_solution))
    return parts, list(students)


# -- the check -------------------------------------------------------------------------------------
def run_parts(parts: list[Part], threshold: float, floor: float, workers: int) -> list[PartResult]:
    """:func:`winnowing.compare_part` for every part, the largest first, in ``workers`` processes.

    copydetect hashes with Python's ``hash``, salted per process unless ``PYTHONHASHSEED`` is set: which
    fingerprints winnowing keeps, hence the similarities, would change from run to run. So parts are
    compared in processes started with ``PYTHONHASHSEED=0`` (spawned, not forked: nothing of this
    process is copied half-alive), and in this one only where it has that seed already."""
    order = sorted(parts, key=lambda p: -sum(len(t) for t in p.texts.values()))
    if workers <= 1 and os.environ.get("PYTHONHASHSEED") == HASH_SEED:
        return [compare_part(p, threshold, floor) for p in order]
    saved = os.environ.get("PYTHONHASHSEED")
    os.environ["PYTHONHASHSEED"] = HASH_SEED  # inherited by the processes the pool starts
    try:
        with ProcessPoolExecutor(max_workers=max(1, min(workers, len(order))), mp_context=get_context("spawn")) as pool:
            return list(pool.map(compare_part, order, [threshold] * len(order), [floor] * len(order)))
    finally:
        if saved is None:
            os.environ.pop("PYTHONHASHSEED", None)
        else:
            os.environ["PYTHONHASHSEED"] = saved


def check_similarity(course: Course, threshold: float = THRESHOLD, count_solution: bool = False,
                     workers: int = 2) -> SimilarityResult:
    """Compare every pair of students, part by part (see the module's docstring)."""
    if not course.source_dir.exists():
        raise FileNotFoundError(f"no source notebooks in {course.source_dir}: run `a2kit release` first")
    floor = threshold / 2
    parts, students = build_parts(course, count_solution)
    results = run_parts(parts, threshold, floor, workers)
    pairs, reference, stats, slices = [], [], [], {}
    for r in results:
        for row in r.pairs:
            similarity = max(row["similarity_a"], row["similarity_b"])
            pairs.append({"kind": r.kind, "part": r.name, "notebook": r.notebook, **row, "similarity": similarity,
                          "flagged": similarity >= threshold and row["overlap"] >= MIN_OVERLAP})
        reference.extend({"kind": r.kind, "part": r.name, "notebook": r.notebook, **row} for row in r.reference)
        slices.update({(r.name, a, b): texts for (a, b), texts in r.slices.items()})
        stats.append({"kind": r.kind, "part": r.name, "notebook": r.notebook, "pairs": r.pairs_total,
                      "compared exactly": r.candidates, "flagged": len(r.slices), "histogram": r.histogram})
    pair_columns = ["kind", "part", "notebook", "student_a", "student_b", "similarity_a", "similarity_b", "similarity",
                    "overlap", "shared", "flagged"]
    table = pd.DataFrame(pairs, columns=pair_columns)
    table = table.sort_values(["flagged", "similarity"], ascending=False).reset_index(drop=True)
    stats_table = pd.DataFrame(stats).sort_values(["notebook", "kind", "part"]).reset_index(drop=True)
    return SimilarityResult(table, pd.DataFrame(reference, columns=["kind", "part", "notebook", "student", "share",
                                                                    "fingerprints"]),
                            stats_table, slices, students, threshold, floor, count_solution)


def settings_text(result: SimilarityResult) -> str:
    return (f"k = {K} filtered characters, winnowing window {WINDOW} (every match of {K + WINDOW - 1} or more is "
            f"found), flagged at similarity {result.threshold:g} with at least {MIN_OVERLAP} characters shared; pairs "
            f"sharing under {result.floor:g} of their fingerprints are not compared further; the instructor's "
            + ("solution counts between students" if result.count_solution else "solution is boilerplate"))
