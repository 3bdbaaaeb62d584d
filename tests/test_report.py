"""The class report and the similarity check, on a generated class (the corpus's cases, nothing graded) and on
the similarity cases built as submissions: what each reads, what it finds, what the pages hold."""
from __future__ import annotations

import functools
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbgrader.api import Gradebook

from autograder.engine.course import Course
from autograder.engine.grade import read_grading_log
from autograder.pipeline import lms
from autograder.pipeline.class_results import questions, read_class
from autograder.pipeline.cli import main
from autograder.pipeline.export import grades_table
from autograder.pipeline.formgrade import hand_grades
from autograder.pipeline.late import LatePolicy, parse_time
from autograder.pipeline.gradebook_cells import cell_grades, hand_of, scores_of
from autograder.pipeline.item_analysis import discrimination, item_statistics
from autograder.pipeline.report import write_report
from autograder.pipeline.similarity import check_similarity, read_parts
from autograder.pipeline.similarity_page import write_similarity
from autograder.tools.corpus import build_submission, load_cases
from autograder.tools.generated_class import generate_class
from kit_corpus import AVAILABLE

COPIED = ("similarity_copy_renamed", "similarity_copy_source")
HONEST = ("similarity_honest_a", "similarity_honest_b")


@functools.lru_cache(maxsize=None)
def _released() -> Path:
    """The kit's notebooks released once per session (no wheel: nbgrader's generate_assignment only)."""
    root = Path(tempfile.mkdtemp(prefix="a2kit-report-")) / "course"
    course = Course(root)
    course.sync_source()
    course.generate_release()
    return root


def released_course(folder: Path, db_url: str | None = None) -> Course:
    shutil.copytree(_released(), folder, ignore=shutil.ignore_patterns("gradebook.db") if db_url else None)
    course = Course(folder, db_url=db_url)
    if db_url:  # a fresh PostgreSQL gradebook gets the assignment's definitions from the release
        course.generate_release()
    return course


# A class of 20 from these cases (each handing in every notebook): two of the first ones.
CLASS_CASES = ("flipped_kernel", "focal_sigmoid", "solution", "release", "conv_as_matrix_flipped", "cheat_lookup_model",
               "hostile_infinite_loop", "missing_checkpoint", "weights_unnormalized", "conv_backward_no_batch_sum",
               "twolayer_relu", "q3_too_long", *COPIED, *HONEST)


@functools.lru_cache(maxsize=None)
def _generated() -> tuple[Path, object]:
    """The generated class (``CLASS_CASES``), the roster written."""
    course = released_course(Path(tempfile.mkdtemp(prefix="a2kit-report-class-")) / "course")
    cases = {c.name: c for c in load_cases(AVAILABLE)[0]}
    generated = generate_class(course, 20, [cases[name] for name in CLASS_CASES], seed=1)
    lms.update_roster(course, generated.roster)
    return course.root, generated


@pytest.fixture
def generated(tmp_path):
    root, generated = _generated()
    shutil.copytree(root, tmp_path / "course")
    return Course(tmp_path / "course"), generated


# -- reading the class ---------------------------------------------------------------------------
def test_the_class_gradebook_is_read_at_once_as_nbgrader_reads_it_per_student(generated):
    course, _ = generated
    table = cell_grades(course)
    assert table["manual_score"].notna().any() and (table["comment"] == "generated comment").any()
    for student, rows in table.groupby("student"):
        assert scores_of(rows) == course.scores(student)
        key = lambda h: (h["notebook"], h["grade_id"])  # noqa: E731
        assert sorted(hand_of(rows), key=key) == sorted(hand_grades(course, student), key=key)


def test_read_class_has_one_row_per_student_and_what_grading_said(generated):
    course, made = generated
    results = read_class(course)
    assert sorted(results.grades.index) == sorted(made.students) == results.students
    assert results.tests.groupby("student").size().nunique() == 1  # every autograded cell of every student
    # The grading log's status, timeouts and lookup flags; the roster's late marks.
    status = results.status
    assert status.loc["cheat_lookup_model", "status"] == "flagged" and status.loc["cheat_lookup_model", "lookup"]
    assert status.loc["hostile_infinite_loop", "timed_out"] and not status.loc["solution", "timed_out"]
    late = {r["student"] for r in made.roster if r["late"]}
    assert late and set(status.index[status["late"]]) == late
    # Hints as the feedback pages give them, by signature: each typical mistake's copies.
    copies = lambda name: sum(1 for case in made.students.values() if case == name)  # noqa: E731
    flipped = set(results.hints.loc[results.hints["signature"] == "flipped_kernel", "student"])
    assert {"flipped_kernel", "conv_as_matrix_flipped"} <= flipped
    assert results.hints["signature"].isin(["focal_sigmoid"]).sum() == copies("focal_sigmoid")
    # Per-class accuracy of the five graded models, beside the reference's.
    assert set(results.per_class["model"]) == {"TwoLayerNet", "VanillaCNN", "MyModel", "ResNet-32/cross-entropy",
                                               "ResNet-32/CB-Focal"}
    assert results.per_class["reference"].notna().all()
    assert "missing_checkpoint" not in set(results.per_class.loc[results.per_class["model"] == "MyModel", "student"])


def test_a_failed_grading_keeps_its_student_in_the_status(generated):
    course, made = generated
    log = read_grading_log(course)
    log.loc["late_comer"] = ["failed", 0.0, 900.0, 0, "grader error: the kernel died", "2026-03-02T10:00:00+0000"]
    log.to_csv(course.root / "grading_log.csv")
    results = read_class(course)
    assert "late_comer" in results.status.index and "late_comer" not in results.grades.index
    assert results.status.loc["late_comer", "status"] == "failed"


def test_a_due_time_marks_later_submissions_late(generated):
    course, made = generated
    on_time = [r["student"] for r in made.roster if not r["late"]]
    latest = max(r["submitted_at"] for r in made.roster if r["student"] in on_time)
    results = read_class(course, LatePolicy(parse_time("2026-01-01T00:00+00:00"), 10.0))  # before everyone
    assert results.status["late"].all()
    assert (results.grades["final"] < results.grades["total"]).all()  # the late penalty is in the final grade
    assert read_class(course, LatePolicy(parse_time(latest))).status.loc[on_time, "late"].sum() == 0


def test_questions_group_the_tests_of_a_solution_cell():
    asked = questions(Path(_released()) / "source" / "a2")
    assert asked["02_numpy_convnet", "test_conv_forward"] == asked["02_numpy_convnet", "test_conv_hidden"] == "conv2d"
    assert asked["01_theory", "test_q1_matrix"] == "q1_matrix"
    assert asked["04_data_wrangling", "test_focal_behaviour_hidden"] == "focal_loss"


# -- item analysis ---------------------------------------------------------------------------------
def test_item_statistics_by_hand():
    scores = pd.DataFrame({("nb", "easy"): [1.0, 1.0, 1.0, 0.0], ("nb", "hard"): [0.0, 0.0, 2.0, 0.0],
                           ("nb", "same"): [1.0, 1.0, 1.0, 1.0]}, index=list("abcd"))
    maxima = pd.Series({("nb", "easy"): 1.0, ("nb", "hard"): 2.0, ("nb", "same"): 1.0})
    total = scores.sum(axis=1) + pd.Series([5.0, 3.0, 6.0, 0.0], index=list("abcd"))
    table = item_statistics(scores, maxima, total).set_index("item")
    assert list(table.index) == ["hard", "easy", "same"]  # hardest first
    assert table.loc["hard", "mean_share"] == pytest.approx(0.25) and table.loc["hard", "zero"] == 0.75
    assert table.loc["easy", "full"] == 0.75
    rest = total - scores[("nb", "easy")]
    assert table.loc["easy", "discrimination"] == pytest.approx(np.corrcoef(scores[("nb", "easy")], rest)[0, 1])
    assert np.isnan(table.loc["same", "discrimination"])  # everyone scored the same: nothing to correlate
    assert discrimination(pd.Series([0.0, 1.0, 2.0]), pd.Series([0.0, 1.0, 2.0])) != discrimination(
        pd.Series([0.0, 1.0, 2.0]), pd.Series([9.0, 1.0, 2.0]))


# -- the page ----------------------------------------------------------------------------------------
def page_rows(html: str, table_id: str) -> list[str]:
    """The first cell (the index) of each body row of the table ``table_id``."""
    body = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return re.findall(r"<tr>\s*<th>(.*?)</th>", body)


def total_of(student: str, html: str) -> str:
    """The total column of ``student``'s row of the students' table."""
    table = re.search(r'<table[^>]*id="students".*?</table>', html, re.S).group(0)
    first_row = re.search(r"<thead>\s*<tr[^>]*>(.*?)</tr>", table, re.S).group(1)
    columns = re.findall(r"<th>([^<]*)</th>", first_row)[1:]  # after the index's column
    row = re.search(rf"<th>{student}</th>(.*?)</tr>", table, re.S).group(1)
    return re.findall(r"<td>([^<]*)</td>", row)[columns.index("total")]


def test_report_page_is_self_contained_and_follows_a_regrade(generated):
    course, made = generated
    result = write_report(course)
    html = result.path.read_text()
    for anchor in ("distribution", "questions", "mistakes", "models", "long-tail", "grading", "hand", "students"):
        assert f'id="{anchor}"' in html
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)  # nothing from elsewhere
    images = re.findall(r'<img[^>]*src="([^"]+)"', html)
    assert len(images) >= 10 and all(src.startswith("data:image/png;base64,") for src in images)
    assert sorted(page_rows(html, "students")) == sorted(made.students)
    assert "Nothing on it is meant for students" in html
    assert result.questions.iloc[0]["mean_share"] <= result.questions.iloc[-1]["mean_share"]
    assert result.hints.iloc[0]["students"] >= result.hints.iloc[-1]["students"]
    # A hand grade entered after a report shows in the next one (the blank release's total: its hand grades only).
    before = total_of("release", html)
    with Gradebook(course.db_url) as gb:
        grade = gb.find_grade("dead_relu_answer", "01_theory", course.assignment, "release")
        grade.manual_score = 2.0 if grade.manual_score != 2.0 else 0.0
        gb.db.commit()
    after = total_of("release", write_report(course).path.read_text())
    assert after != before and float(after) == grades_table(course).loc["release", "total"]


def test_report_and_similarity_commands(generated, capsys):
    course, _ = generated
    base = ["-q", "--course", str(course.root)]
    assert main(base + ["report", "--due", "2026-03-01T23:59+00:00"]) == 0
    assert "Questions, hardest first" in capsys.readouterr().out
    assert (course.root / "reports" / "class_report.html").exists()
    assert main(base + ["similarity", "--workers", "1"]) == 1  # copies of the corpus's cases: pairs to look at
    out = capsys.readouterr().out
    assert "similarity_copy_renamed" in out and (course.root / "reports" / "similarity.html").exists()
    assert main(["-q", "--course", str(course.root.parent / "nothing"), "report"]) == 1


# -- the similarity check ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _similarity_class() -> Path:
    """The four similarity cases, the solution and the blank release, built as submissions (not graded)."""
    course = released_course(Path(tempfile.mkdtemp(prefix="a2kit-similarity-")) / "course")
    cases, _ = load_cases(AVAILABLE)
    for case in cases:
        if case.family in ("similarity", "base") or case.name == "flipped_kernel":
            build_submission(case, course)
    return course.root


@pytest.fixture(scope="module")
def similar():
    return check_similarity(Course(_similarity_class()), workers=1)


def test_the_copied_pair_is_flagged_and_the_honest_ones_are_not(similar):
    flagged = similar.flagged_students()
    assert [tuple(p) for p in flagged[["student_a", "student_b"]].to_numpy()] == [COPIED]
    assert set(flagged.iloc[0]["parts"].split(", ")) == {"02_numpy_convnet", "dead_relu_answer"}  # the code and Q3
    pairs = similar.pairs.set_index(["part", "student_a", "student_b"])
    honest = pairs.loc[("02_numpy_convnet", *HONEST), "similarity"] if ("02_numpy_convnet", *HONEST) in pairs.index else 0.0
    assert honest < similar.threshold / 1.5  # not near the line either
    # Every pair of the four was considered: the honest ones share little of their fingerprints.
    assert similar.parts.set_index("part").loc["02_numpy_convnet", "pairs"] == 6


def test_a_side_by_side_view_highlights_the_matching_slices(similar, tmp_path):
    a, b = similar.slices["02_numpy_convnet", *COPIED]
    assert "highlight-red" in a and "highlight-green" in b
    assert "window_coords" in a and "patch_indices" in b  # renamed, yet matched
    page = write_similarity(similar, "course", tmp_path).read_text()
    assert "it never decides" in page and "<script" not in page
    assert sorted(page_rows(page, "students")) == sorted(similar.students)


def test_the_instructors_solution_is_boilerplate_and_reported(similar):
    close = similar.reference[(similar.reference["share"] >= similar.threshold) & (similar.reference["kind"] == "code")]
    assert {"solution", "flipped_kernel"} <= set(close["student"])
    assert set(close.loc[close["student"].isin(COPIED + HONEST), "part"]) == {"01_theory"}  # built on its notebook 1
    # The solution and the one-mistake student share all their code with it: never flagged as a pair for that...
    assert "flipped_kernel" not in set(similar.flagged["student_a"]) | set(similar.flagged["student_b"])
    counted = check_similarity(Course(_similarity_class()), count_solution=True, workers=1)
    assert (counted.flagged["student_a"] == "flipped_kernel").any()  # ...unless the solution counts


def test_renaming_reordering_and_new_cells_do_not_hide_a_copy(tmp_path):
    course = released_course(tmp_path / "course")
    cases = {c.name: c for c in load_cases(AVAILABLE)[0]}
    source = build_submission(cases["similarity_copy_source"], course)
    # The copy, once more: its cells in the opposite order in the file, every name made longer.
    nb = nbformat.read(source / "02_numpy_convnet.ipynb", as_version=4)
    cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    for cell in cells:
        cell.source = re.sub(r"\b(patches|padded|chans|rows|cols|flat|best|grad|store)\b", r"\1_renamed", cell.source)
    positions = [nb.cells.index(c) for c in cells]
    for position, cell in zip(positions, reversed(cells)):
        nb.cells[position] = cell
    # The shared helper moved out of the solution cells, into a cell the student added.
    conv = next(c for c in cells if c.metadata["nbgrader"]["grade_id"] == "conv2d")
    helper, rest = conv.source.split("\n\n\nclass ", 1)
    conv.source = "class " + rest
    nb.cells.insert(1, nbformat.v4.new_code_cell(helper))
    copy = course.submitted_dir("reordered")
    copy.mkdir(parents=True)
    nbformat.write(nb, copy / "02_numpy_convnet.ipynb")
    broken = course.submitted_dir("broken")  # a submission whose notebook is not JSON: left out, the rest compared
    broken.mkdir(parents=True)
    (broken / "02_numpy_convnet.ipynb").write_text("{not json")
    code, _ = read_parts(copy / "02_numpy_convnet.ipynb")
    assert "# (a cell the student added)\ndef patch_indices" in code  # compared like the solution cells
    result = check_similarity(course, workers=1)
    flagged = {(r.part, r.student_a, r.student_b) for r in result.flagged.itertuples()}
    assert ("02_numpy_convnet", "reordered", "similarity_copy_source") in flagged


def test_written_answers_are_compared_as_words():
    code, answers = read_parts(Path(_similarity_class()) / "submitted" / "similarity_copy_source" / "a2" / "01_theory.ipynb")
    assert answers["dead_relu_answer"].startswith("a relu unit is dead when")  # Q3's string, lower-case words
    assert "# q1_matrix" in code and "DEAD_RELU_ANSWER" not in code  # code is the solution cells, not the answers


def test_the_figures_do_not_change_between_runs_or_with_the_number_of_processes(similar):
    """copydetect hashes with Python's ``hash``, salted per process (this test's own is): the check compares in
    processes of a fixed seed, so ``similar`` (one process) and this run (two) give the same figures."""
    two = check_similarity(Course(_similarity_class()), workers=2)
    columns = ["part", "student_a", "student_b", "similarity", "flagged"]
    sort = lambda t: t[columns].sort_values(columns[:3]).reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(sort(similar.pairs), sort(two.pairs))


def test_grading_keeps_each_students_latest_outcome_in_the_log(tmp_path):
    from autograder.engine.grade import GradeReport, StudentResult, _save_log

    course = Course(tmp_path / "course")
    first = GradeReport(results={"ann": StudentResult("ann", "graded", seconds=20.0),
                                 "bob": StudentResult("bob", "failed", "grader error: boom", seconds=3.0)})
    _save_log(course, first)
    again = GradeReport(results={"ann": StudentResult("ann", "unchanged"),
                                 "bob": StudentResult("bob", "flagged", "03_cnn_design/test_my_model_050: lookup?",
                                                      seconds=30.0)})
    _save_log(course, again)
    log = read_grading_log(course)
    assert list(log.index) == ["ann", "bob"]
    assert (log.loc["ann", "status"], log.loc["ann", "seconds"]) == ("graded", 20.0)  # unchanged keeps its row
    assert (log.loc["bob", "status"], log.loc["bob", "seconds"]) == ("flagged", 30.0)  # a regrade replaces it
    assert read_class(course).status.loc["bob", "lookup"]


@pytest.mark.service
def test_a_postgresql_gradebook_gives_the_same_report_as_sqlite(tmp_path):
    from services import postgres_server

    cases = {c.name: c for c in load_cases(AVAILABLE)[0]}
    chosen = [cases[n] for n in ("solution", "release", "flipped_kernel", "focal_sigmoid", *COPIED)]
    sqlite = released_course(tmp_path / "sqlite")
    generate_class(sqlite, 8, chosen, seed=3)
    with postgres_server() as url:
        postgres = released_course(tmp_path / "postgres", db_url=url)
        generate_class(postgres, 8, chosen, seed=3)
        assert not (tmp_path / "postgres" / "gradebook.db").exists()
        ours, theirs = read_class(sqlite), read_class(postgres)
        for name in ("grades", "tests", "hints", "per_class", "hand"):
            pd.testing.assert_frame_equal(getattr(ours, name).reset_index(drop=True),
                                          getattr(theirs, name).reset_index(drop=True), check_dtype=False)
        page = write_report(postgres).path.read_text()
        assert "postgresql" in page and "a2kit@127.0.0.1" in page  # which gradebook, without a password
        assert sorted(page_rows(page, "students")) == sorted(ours.students)
