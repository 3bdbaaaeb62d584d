"""A generated class: what a graded course holds for N students, built from the corpus without grading anyone.

For the class report's and the similarity check's benchmark and tests (``bench/report.py``,
``tests/test_report.py``): grading 300 submissions for real takes hours, and what the report reads
is the gradebook, the autograded notebooks and the grading log, which this module writes directly.

Student ``i`` is corpus case ``cases[i % len(cases)]`` (its id is the case's name, then
``<name>_2``, ``<name>_3``... for the next copies); as a class hands in every notebook, a
solution-based case's other notebooks are the solution's (``all_notebooks``). What is written for them:

* ``autograded/<id>/a2/<notebook>.ipynb``: the case's submission (the release, the solution filled
  in where the case is solution-based, the case's edits), with each autograded test cell's output as
  the grader writes it: ``Passed.``, or an ``AssertionError`` with the case's ``feedback_contains``
  text (its description where it has none); the model tests that pass display the per-class
  accuracy bundle with the reference model's values, jittered per student;
* the gradebook: the case's expected points on every autograded cell; written answers get a hand
  score (and a comment) for a share of the students;
* ``grading_log.csv``: graded, seconds drawn around 25 s; a lookup case flagged, hostile cases with
  the limit they hit, and ``failed`` students (no grade, no autograded folder);
* the roster rows (returned, for ``lms.update_roster``): Canvas ids and times, some late.

The course must be released first (``pipeline.release`` or ``Course.sync_source`` + ``generate_release``).
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import nbformat
import numpy as np
import pandas as pd

from autograder.engine.course import Course
from autograder.engine.grade import GRADING_LOG, LOG_COLUMNS
from autograder.harness.cells import autograded_cells, grade_id, is_solution_cell, is_test_cell, nbgrader_meta
from autograder.harness.outputs import error, per_class_output, stream
from autograder.notebooks.model_scoring import reference_per_class

from .corpus import Case, apply_edits, expected_scores, load_cases, solution_notebook

# Test cells that display a model's per-class accuracy when they pass (as the hidden tests do).
MODEL_CELLS = {("03_cnn_design", "test_two_layer_accuracy"): "TwoLayerNet",
               ("03_cnn_design", "test_vanilla_cnn_accuracy"): "VanillaCNN",
               ("03_cnn_design", "test_my_model_050"): "MyModel",
               ("04_data_wrangling", "test_lt_ce_checkpoint"): "ResNet-32/cross-entropy",
               ("04_data_wrangling", "test_cbfocal_rare_classes"): "ResNet-32/CB-Focal"}
FAST_TEST_IMAGES = 1000
LIMITS = {"hostile_infinite_loop": "01_theory: a cell ran past the time limit",
          "hostile_memory_bomb": "01_theory: memory limit reached",
          "hostile_process_bomb": "01_theory: process limit reached"}
DUE = datetime(2026, 3, 1, 23, 59, tzinfo=timezone.utc)


@dataclass
class GeneratedClass:
    students: dict[str, str]                  # student -> the case it copies
    failed: list[str] = field(default_factory=list)
    roster: list[dict] = field(default_factory=list)  # rows for lms.update_roster


def student_ids(cases: list[Case], n: int) -> list[tuple[str, Case]]:
    """``n`` (student, case) pairs cycling through ``cases``: the first copy keeps the case's name."""
    out, seen = [], {}
    for i in range(n):
        case = cases[i % len(cases)]
        seen[case.name] = seen.get(case.name, 0) + 1
        out.append((case.name if seen[case.name] == 1 else f"{case.name}_{seen[case.name]}", case))
    return out


def case_notebooks(course: Course, case: Case) -> dict[str, nbformat.NotebookNode]:
    """The case's submitted notebooks (as ``corpus.build_submission`` writes them), without files."""
    out = {}
    for name in case.notebooks:
        nb = nbformat.read(course.release_dir / f"{name}.ipynb", as_version=4)
        if case.base == "solution":
            nb = solution_notebook(nb, nbformat.read(course.source_dir / f"{name}.ipynb", as_version=4))
        out[name] = apply_edits(nb, name, case.edits)
    return out


def failure_text(case: Case, notebook: str, gid: str) -> str:
    return case.feedback_contains.get(notebook, {}).get(gid) or case.description or "wrong"


def graded_notebook(nb, notebook: str, case: Case, expected: dict, rng: np.random.Generator):
    """``nb`` with every autograded test cell's outputs as the grader writes them for this case."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        gid = grade_id(cell)
        if cell.cell_type != "code" or not is_test_cell(cell) or gid not in expected:
            continue
        points = float(nbgrader_meta(cell).get("points", 0))
        if expected[gid] < points:
            cell.outputs = [error("AssertionError", failure_text(case, notebook, gid))]
            continue
        cell.outputs = []
        model = MODEL_CELLS.get((notebook, gid))
        reference = reference_per_class(model, FAST_TEST_IMAGES) if model else None
        if reference is not None:
            mine = np.clip(reference.to_numpy() + rng.normal(0, 0.05, len(reference)), 0, 1).round(3)
            bundle = per_class_output(model, pd.Series(mine, index=reference.index), reference)
            cell.outputs.append(nbformat.NotebookNode(output_type="display_data", data=bundle, metadata={}))
        cell.outputs.append(stream("Passed."))
    return nb


def write_gradebook(course: Course, rows: dict[str, dict], hand: dict[str, dict], timestamps: dict[str, datetime]) -> None:
    """For each student: the submission, ``rows[student][notebook][grade_id]`` as automatic scores, and
    ``hand[student][(notebook, grade_id)] = (score, comment)`` as hand grades. One gradebook session."""
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.config.CourseDirectory.course_id) as gb:
        answers = {(nb.name, c.name) for nb in gb.find_assignment(course.assignment).notebooks for c in nb.solution_cells}
        for student, scores in rows.items():
            gb.update_or_create_student(student)
            submission = gb.update_or_create_submission(course.assignment, student, timestamp=timestamps[student])
            for snb in submission.notebooks:
                comments = {c.name: c for c in snb.comments}
                for g in snb.grades:
                    key = (snb.name, g.name)
                    if key in answers:
                        g.auto_score, g.needs_manual_grade = None, key not in hand[student]
                        if key in hand[student]:
                            g.manual_score, comments[g.name].manual_comment = hand[student][key]
                    else:
                        g.auto_score, g.needs_manual_grade = scores.get(snb.name, {}).get(g.name, 0.0), False
        gb.db.commit()


def log_row(student: str, case: Case, points: float, rng: np.random.Generator) -> dict:
    status, message = "graded", LIMITS.get(case.name, "")
    if "lookup" in case.name:
        status, message = "flagged", ("03_cnn_design/test_my_model_050: checkpoints/mymodel.pt: accuracy 1.000 on "
                                      "test images, 0.104 on their mirror images (a lookup of the test set?)")
    return {"student": student, "status": status, "points": points, "seconds": round(float(max(5, rng.normal(25, 6))), 1),
            "peak_MB": round(float(rng.uniform(600, 1400))), "message": message, "graded_at": "2026-03-02T10:00:00+0000"}


def every_notebook(case: Case, available: list[str]) -> Case:
    """A solution-based case that hands in every notebook: its own as it has them, the others solved."""
    if case.base != "solution":
        return case
    return dataclasses.replace(case, notebooks=list(dict.fromkeys(case.notebooks + available)))


def generate_class(course: Course, n: int, cases: list[Case] | None = None, *, seed: int = 0, hand_share: float = 0.6,
                   late_share: float = 0.1, failed: int = 0, all_notebooks: bool = True) -> GeneratedClass:
    """Write ``n`` students built from ``cases`` (default: the whole corpus of the released notebooks) into
    ``course`` (see the module's docstring), ``failed`` of them (drawn at random) with a failed grading;
    returns who is who, who failed, and the roster rows."""
    rng = np.random.default_rng(seed)
    available = sorted(p.stem for p in course.source_dir.glob("*.ipynb"))
    cases = cases if cases is not None else load_cases(available)[0]
    if all_notebooks:
        cases = [every_notebook(case, available) for case in cases]
    cells = autograded_cells(course.source_dir)
    built = {case.name: case_notebooks(course, case) for case in cases}
    expected = {case.name: expected_scores(case, cells) for case in cases}
    answers = {(path.stem, grade_id(c)): float(nbgrader_meta(c).get("points", 0))
               for path in sorted(course.source_dir.glob("*.ipynb"))
               for c in nbformat.read(path, as_version=4).cells if is_solution_cell(c) and nbgrader_meta(c).get("grade")}
    result, rows, hand, stamps, log = GeneratedClass({}), {}, {}, {}, []
    failing = set(rng.choice(n, size=min(failed, n), replace=False).tolist())
    for i, (student, case) in enumerate(student_ids(cases, n)):
        result.students[student] = case.name
        late = rng.random() < late_share
        stamps[student] = DUE + timedelta(hours=float(rng.uniform(1, 60) if late else -rng.uniform(1, 96)))
        result.roster.append({"student": student, "source": f"{student}_{10000 + i}_{20000 + i}_a2.zip", "lms": "canvas",
                              "lms_id": str(10000 + i), "late": late, "submitted_at": stamps[student].isoformat()})
        if i in failing:
            result.failed.append(student)
            log.append({"student": student, "status": "failed", "points": 0.0, "seconds": 900.0, "peak_MB": 0,
                        "message": "grader error: the kernel died (generated)", "graded_at": "2026-03-02T10:00:00+0000"})
            continue
        folder = course.autograded_dir(student)
        folder.mkdir(parents=True, exist_ok=True)
        for name, nb in built[case.name].items():
            graded = graded_notebook(nb, name, case, expected[case.name][name], rng)
            (folder / f"{name}.ipynb").write_text(json.dumps(graded))
        rows[student] = expected[case.name]
        hand[student] = {key: (float(rng.integers(0, int(points) + 1)), "generated comment")
                         for key, points in answers.items()
                         if key[0] in case.notebooks and rng.random() < hand_share}
        log.append(log_row(student, case, sum(v for ids in expected[case.name].values() for v in ids.values()), rng))
    write_gradebook(course, rows, hand, stamps)
    pd.DataFrame(log, columns=LOG_COLUMNS).set_index("student").sort_index().to_csv(course.root / GRADING_LOG)
    return result
