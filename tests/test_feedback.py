"""a2kit feedback and export on the graded toy course: no hidden test leaks, hints, per-class bars, CSV."""
import nbformat
import pandas as pd
import pytest

from autograder.harness.outputs import PER_CLASS_MIME, per_class_output
from autograder.pipeline.export import export
from autograder.pipeline.feedback import (SIGNATURES, CellResult, PerClass, StudentFeedback, generate_feedback,
                                          hints_for, read_student)
from toy_notebooks import graded_toy_course


@pytest.fixture
def course(tmp_path):
    return graded_toy_course(tmp_path)[0]


def test_feedback_hides_hidden_tests_but_shows_their_message(course):
    results = generate_feedback(course, progress=False)
    assert [(r.student, r.ok) for r in results] == [("solution", True), ("wrong", True)]
    page = (course.feedback_dir("wrong") / "01_toy.html").read_text()
    assert "negative numbers" in page                      # the test's plain-words message
    assert "assert double(-7)" not in page and "HIDDEN TESTS" not in page  # not the hidden code
    assert "should be 6" in page                           # visible tests stay visible
    summary = (course.feedback_dir("wrong") / "a2kit_feedback.html").read_text()
    assert "1 of 3" in summary and "test_double_hidden" in summary
    assert "assert double(-7)" not in summary
    assert "test_double_hidden" not in (course.feedback_dir("solution") / "a2kit_feedback.html").read_text()


def _fb(*messages, per_class=()):
    tests = [CellResult("nb", f"t{i}", 0.0, 1.0, m) for i, m in enumerate(messages)]
    return StudentFeedback("s", tests, list(per_class))


@pytest.mark.parametrize("message, signature", [  # in the words of a2lib.checks
    ("AssertionError: conv_as_matrix uses a flipped kernel (3x3, stride 1): that is a true convolution.", "flipped_kernel"),
    ("AssertionError: Conv2D: self.dw holds the gradient of image 0 only (of the 4 in the batch), for x of shape "
     "(4, 3, 8, 8). You forgot to sum over the batch: every image contributes", "conv_backward_batch_sum"),
    ("AssertionError: Your loss does not change with gamma (batch of 8, gamma=2, no class weights): the modulating "
     "factor (1 - p) ** gamma is missing", "focal_equals_ce"),
    ("AssertionError: Your loss changes when the same number is added to all the scores of an image, so it is not "
     "the softmax form: it looks like the sigmoid (one-vs-all binary) focal loss", "focal_sigmoid"),
    ("AssertionError: Your weights are not normalized (for cls_num_list=[50, 5], beta=0.9): they sum to 1 but must "
     "sum to the number of classes, 2.", "class_weights_sum"),
    ("AssertionError: the model predicts only 2 of 10 classes", "few_classes"),
])
def test_each_failure_signature_gives_its_hint(message, signature):
    hint = next(s.hint for s in SIGNATURES if s.name == signature)
    assert hint in hints_for(_fb(message))
    others = [s.hint for s in SIGNATURES if s.name != signature]
    assert not set(hints_for(_fb(message))) & set(others), "one mistake, one hint"
    assert hints_for(_fb("AssertionError: shape (2, 3) should be (3, 2)")) == []
    assert hints_for(_fb("AssertionError: Your batch mean ignores the class weights (batch of 8): divide the sum of "
                         "the weighted losses by the sum of the weights of the targets")) == []


def test_collapsed_model_is_recognised_from_per_class_accuracy():
    collapsed = PerClass("mymodel", {f"c{i}": (0.9 if i < 3 else 0.0) for i in range(10)})
    healthy = PerClass("other", {f"c{i}": 0.7 for i in range(10)})
    assert any("3 of 10 classes" in h for h in hints_for(_fb(per_class=[collapsed])))
    assert hints_for(_fb(per_class=[healthy])) == []


def test_per_class_results_are_read_from_the_autograded_notebook(course):
    path = course.autograded_dir("solution") / "01_toy.ipynb"
    nb = nbformat.read(path, as_version=4)
    bundle = per_class_output("mymodel", pd.Series({"cat": 0.5, "dog": 0.25}), {"cat": 0.6, "dog": 0.7})
    nb.cells[3].outputs.append(nbformat.v4.new_output("display_data", data=bundle))
    nbformat.write(nb, path)
    fb = read_student(course, "solution")
    assert fb.per_class == [PerClass("mymodel", {"cat": 0.5, "dog": 0.25}, {"cat": 0.6, "dog": 0.7})]
    generate_feedback(course, ["solution"], progress=False)
    assert "data:image/png;base64" in (course.feedback_dir("solution") / "a2kit_feedback.html").read_text()
    assert PER_CLASS_MIME in bundle


def test_export_grades_failures_and_plot(course, tmp_path):
    result = export(course, tmp_path / "exports")
    grades = pd.read_csv(result.grades_csv, index_col="student")
    assert list(grades.columns) == ["01_toy", "autograded", "hand", "hand_to_grade", "total", "max", "penalty", "final",
                                    "percent"]
    assert grades.loc["solution", "total"] == 3 and grades.loc["wrong", "total"] == 1
    assert grades.loc["wrong", "percent"] == pytest.approx(33.3)
    failures = pd.read_csv(result.failures_csv).set_index("test")
    assert failures.loc["test_double_hidden", "failed"] == 1 and failures.loc["test_double", "failed"] == 0
    assert failures.loc["test_double_hidden", "graded"] == 2
    assert result.plot.stat().st_size > 1000


def test_the_plot_counts_final_grades_in_whole_students():
    from autograder.pipeline.export import distribution_figure

    grades = pd.DataFrame({"percent": [90.0, 91.0, 40.0], "max": 73.0, "penalty": [0.0, 7.3, 0.0]})
    fig = distribution_figure(grades)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "final grade (% of 73 points: autograded + hand − late penalty)"
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert sorted(p.get_height() for p in ax.patches if p.get_height())[-1] == 2  # 90 and 91 share a bin


def test_per_class_table_printed_by_check_accuracy_is_read():
    from autograder.pipeline.feedback import parse_printed_per_class

    printed = ("MyModel from checkpoints/mymodel.pt on the 1,000 test images (fast mode: a fixed subset):\n"
               "            images  correct  accuracy  reference\n"
               "class                                           \n"
               "airplane       100       50    0.5000     0.9000\n"
               "automobile     100       20    0.2000        NaN\n"
               "overall        200       70    0.3500     0.8000\n"
               "MyModel: test accuracy 0.3500 >= 0.30, passed.\n")
    assert parse_printed_per_class(printed) == [PerClass("MyModel", {"airplane": 0.5, "automobile": 0.2}, {"airplane": 0.9})]
    assert parse_printed_per_class("MyModel from x on y:\nnot a table") == []


# -- the final grade in the student's hands --------------------------------------------------------
def _essay_course(tmp_path):
    """A toy course whose notebook has a hand-graded written answer (2 points) and a test cell (1 point):
    ``blank`` left the answer blank, ``writer`` wrote one; both autograded, ``writer`` with a checkpoint."""
    import nbformat as nbf

    from autograder.engine.course import Course
    from toy_notebooks import nbgrader_meta

    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbf.v4.new_markdown_cell("Why?", metadata=nbgrader_meta("essay_q", grade=False, solution=False)),
                nbf.v4.new_markdown_cell("Because.", metadata=nbgrader_meta("essay", grade=True, solution=True, points=2)),
                nbf.v4.new_code_cell("x = 1", metadata=nbgrader_meta("setup", grade=False, solution=False)),
                nbf.v4.new_code_cell("assert x == 1", metadata=nbgrader_meta("test_x", grade=True, solution=False, points=1))]
    (tmp_path / "notebooks").mkdir()
    nbf.write(nb, tmp_path / "notebooks" / "01_essay.ipynb")
    course = Course(tmp_path / "course")
    course.sync_source(tmp_path / "notebooks")
    course.generate_release()
    for student, answer in (("blank", None), ("writer", "Because the gradient vanishes.")):
        folder = course.submitted_dir(student)
        folder.mkdir(parents=True)
        submitted = nbf.read(course.release_dir / "01_essay.ipynb", as_version=4)
        if answer:
            submitted.cells[1].source = answer
            (folder / "checkpoints").mkdir()
            (folder / "checkpoints" / "model.pt").write_bytes(b"\0" * 100_000)
        nbf.write(submitted, folder / "01_essay.ipynb")
        assert course.api().autograde(course.assignment, student)["success"]
    return course


def _page_numbers(page: str) -> dict[str, str]:
    import re

    rows = re.findall(r"<tr><td>([^<]+)</td><td>(.*?)</td>", page.split('class="grade">')[1].split("</table>")[0])
    return {label: re.sub(r"<[^>]+>", "", value) for label, value in rows}


def test_the_page_shows_the_grade_the_lms_gets_line_by_line(tmp_path):
    from nbgrader.api import Gradebook

    from autograder.pipeline.late import LatePolicy
    from autograder.pipeline.lms import update_roster

    course = _essay_course(tmp_path)
    update_roster(course, [{"student": "writer", "lms": "", "lms_id": "", "late": False, "name": "", "source": "",
                            "submitted_at": "2026-03-02T12:00:00+00:00", "time_source": "test"},
                           {"student": "blank", "lms": "", "lms_id": "", "late": False, "name": "", "source": "",
                            "submitted_at": "2026-03-01T12:00:00+00:00", "time_source": "test"}])
    policy = LatePolicy.from_options(course.root, "2026-03-01T23:59+00:00", 10)

    generate_feedback(course, progress=False, policy=policy)
    blank = (course.feedback_dir("blank") / "a2kit_feedback.html").read_text()
    writer = (course.feedback_dir("writer") / "a2kit_feedback.html").read_text()
    assert "No response (0 of 2)" in blank and "not graded yet" not in blank
    assert "not graded yet (of 2)" in writer and "2 points not graded yet" in writer and "may still change" in writer

    with Gradebook(course.db_url) as gb:  # the instructor grades the answer in formgrader
        gb.find_grade("essay", "01_essay", course.assignment, "writer").manual_score = 1.5
        gb.db.commit()
    generate_feedback(course, progress=False, policy=policy)
    writer = (course.feedback_dir("writer") / "a2kit_feedback.html").read_text()
    numbers = _page_numbers(writer)
    assert numbers == {"Autograded": "1", "Graded by hand": "1.5", "Late penalty": "−0.25", "Final grade": "2.25 of 3"}
    assert "1 day late (submitted 2026-03-02 12:00:00+00:00" in writer and "10% of 2.5 points" in writer
    assert "may still change" not in writer
    exported = export(course, tmp_path / "exports", policy=policy).grades
    assert exported.loc["writer", "final"] == 2.25 and _page_numbers(blank)["Final grade"] == "1 of 3"
    assert exported.loc["blank", ["autograded", "hand", "hand_to_grade", "total"]].tolist() == [1.0, 0.0, 0.0, 1.0]


def test_the_returned_folder_holds_the_pages_and_the_notebooks_not_the_checkpoints(tmp_path):
    course = _essay_course(tmp_path)
    assert (course.autograded_dir("writer") / "checkpoints" / "model.pt").exists()  # nbgrader copies it along
    generate_feedback(course, progress=False)
    returned = sorted(str(p.relative_to(course.feedback_dir("writer"))) for p in course.feedback_dir("writer").rglob("*"))
    assert returned == ["01_essay.html", "01_essay.ipynb", "a2kit_feedback.html"]
    assert (course.feedback_dir("writer") / "01_essay.ipynb").read_bytes() == \
        (course.submitted_dir("writer") / "01_essay.ipynb").read_bytes()


def test_one_students_broken_autograded_notebook_never_stops_the_class(course):
    """A student whose autograded notebook nbgrader cannot read gets a line in the table; the others get
    their pages as usual."""
    students = sorted(p.name for p in (course.root / "autograded").iterdir())
    broken, others = students[0], students[1:]
    (course.autograded_dir(broken) / "01_toy.ipynb").write_text("{not a notebook")
    results = {r.student: r for r in generate_feedback(course, progress=False)}
    assert not results[broken].ok and results[broken].message
    assert others and all(results[s].ok and (course.feedback_dir(s) / "a2kit_feedback.html").exists() for s in others)


def test_the_harness_bundle_is_read_before_the_printed_text():
    """A graded cell's text comes before its bundle: the bundle decides, the text is ignored there."""
    from nbformat.v4 import new_code_cell, new_output

    from autograder.pipeline.feedback import per_class_outputs

    printed = ("MyModel from checkpoints/mymodel.pt on the test images:\n"
               "            images  correct  accuracy\nairplane       100       10    0.1000\n")
    cell = new_code_cell("")
    cell.outputs = [new_output("stream", name="stdout", text=printed),
                    new_output("display_data", data=per_class_output("MyModel", {"airplane": 0.7}))]
    assert per_class_outputs(cell) == ([PerClass("MyModel", {"airplane": 0.7}, None)], [])
    cell.outputs = cell.outputs[:1]  # no bundle: the text is the fallback
    assert per_class_outputs(cell) == ([], [PerClass("MyModel", {"airplane": 0.1}, None)])
