"""The a2kit command line end to end on the toy notebook: release, collect, grade, feedback, export."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd

from autograder.engine.course import Course
from autograder.engine.grade import grading_env
from autograder.pipeline.cli import build_parser, main
from autograder.tools.corpus import Case, Edit, build_submission
from toy_notebooks import TOY_FOLDERS, WRONG_DOUBLE, write_toy_notebooks


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "a2kit"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("release", "collect", "grade", "feedback", "formgrade", "export", "reference", "demo"):
        assert command in out


def test_grade_options_parse():
    args = build_parser().parse_args(["--db", "postgresql://u@h/db", "grade", "--workers", "4", "--scheduler",
                                      "tcp://10.0.0.1:8786", "--timeout", "60", "--memory", "2", "--fast", "alice"])
    assert (args.db, args.workers, args.scheduler, args.timeout, args.memory, args.fast, args.students) == \
        ("postgresql://u@h/db", 4, "tcp://10.0.0.1:8786", 60.0, 2.0, True, ["alice"])
    assert grading_env("/tmp", fast=True) == {"A2_FAST": "1", "A2_DATA": "/tmp"}


def test_grade_help_tells_the_truth_about_the_limits():
    """The help's defaults and units are the code's: CPU time per notebook's kernel, the per-cell default
    from the kit's nbgrader config, memory per process."""
    import inspect

    from autograder.engine.grade import WALL_SLACK, default_cell_timeout, grade_submissions, kernel_limits

    grade = build_parser()._subparsers._group_actions[0].choices["grade"]
    actions = {a.dest: a for a in grade._actions}
    defaults = inspect.signature(grade_submissions).parameters
    assert actions["timeout"].default == defaults["timeout_s"].default
    assert actions["memory"].default == defaults["memory_gb"].default
    assert actions["workers"].default == defaults["workers"].default
    helps = {dest: grade.format_help() and actions[dest].help % {"default": actions[dest].default}
             for dest in ("timeout", "cell_timeout", "memory", "workers")}
    limits = kernel_limits(actions["timeout"].default, actions["memory"].default, {})
    assert "CPU time each notebook's kernel" in helps["timeout"] and f"default {limits['budget_s']:g}" in helps["timeout"]
    assert f"{WALL_SLACK}x" in helps["timeout"] and limits["wall_s"] == WALL_SLACK * limits["budget_s"]
    assert f"default {default_cell_timeout():g}" in helps["cell_timeout"]
    assert "each process" in helps["memory"] and f"default {actions['memory'].default:g}" in helps["memory"]
    assert f"default {defaults['workers'].default}" in helps["workers"]


def test_pipeline_commands_and_exit_codes(tmp_path, capsys):
    notebooks = write_toy_notebooks(tmp_path / "notebooks")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "toy.yaml").write_text("epochs: 1\n")
    course_dir = str(tmp_path / "course")
    base = ["-q", "--course", course_dir]
    assert main(base + ["grade"]) == 1  # nothing released yet: the instructor is told

    assert main(base + ["release", "--notebooks", str(notebooks)]) == 0
    course = Course(Path(course_dir))
    with zipfile.ZipFile(course.root / "release" / "a2.zip") as zf:
        assert {"a2/01_toy.ipynb", "a2/configs/toy.yaml"} <= set(zf.namelist())  # configs travel with the notebooks
        assert b"double(-7)" not in zf.read("a2/01_toy.ipynb")  # hidden tests stay out of the release

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    staging = Course(tmp_path / "staging")
    shutil.copytree(course.root / "source", staging.root / "source")
    shutil.copytree(course.root / "release", staging.root / "release")
    folder = build_submission(Case("wrong", "", "solution", ["01_toy"], [Edit("01_toy", "double", WRONG_DOUBLE)]), staging, "zoe")
    shutil.make_archive(str(inbox / "zoe"), "zip", folder)
    assert main(base + ["collect", str(inbox)]) == 0
    (inbox / "yves.zip").write_bytes(b"not a zip")
    assert main(base + ["collect", str(inbox)]) == 1  # an unreadable zip needs attention

    capsys.readouterr()
    assert main(base + ["grade", "--workers", "1", "--notebook-folders", TOY_FOLDERS, "zoe"]) == 0  # sandboxed
    out = capsys.readouterr().out
    assert "zoe" in out and "graded" in out

    assert main(base + ["feedback"]) == 0
    assert (course.feedback_dir("zoe") / "a2kit_feedback.html").exists()
    assert main(base + ["export"]) == 0
    grades = pd.read_csv(course.root / "exports" / "grades.csv", index_col="student")
    assert grades.loc["zoe", "total"] == 1.0
    assert "zoe" in capsys.readouterr().out


def test_export_of_an_empty_course_needs_attention(tmp_path):
    assert main(["-q", "--course", str(tmp_path / "empty"), "export"]) == 1


def test_demo_runs_the_whole_pipeline_and_prints_the_grade_table(tmp_path, capsys):
    from autograder.pipeline.demo import run_demo

    notebooks = write_toy_notebooks(tmp_path / "notebooks")
    # The toy notebook's folder, as a course would add its own: hidden tests and a corpus case, no kit code touched.
    folders = tmp_path / "folders"
    shutil.copytree(Path(TOY_FOLDERS) / "01_toy", folders / "01_toy")
    corpus = folders / "01_toy" / "cases"
    corpus.mkdir()
    (corpus / "toy_abs.yaml").write_text(
        "description: double with abs, wrong for negative numbers\nnotebooks: [01_toy]\n"
        "edits:\n  - notebook: 01_toy\n    cell: double\n    source: |\n      def double(x):\n          return abs(2 * x)\n"
        "expect:\n  01_toy:\n    test_double_hidden: 0\n"
        "feedback_contains:\n  01_toy:\n    test_double_hidden: negative numbers\n")
    assert run_demo(keep=tmp_path / "demo", notebooks=notebooks, progress=False, data=str(tmp_path),
                    notebook_folders=[str(folders)]) == 0
    out = capsys.readouterr().out
    assert "Demo class: autograded points" in out and "Every case got the points it must get." in out
    table = out[out.index("Demo class"):out.index("Collected:")]
    assert all(name in table for name in ("solution", "release", "toy_abs"))
    grades = pd.read_csv(tmp_path / "demo" / "course" / "exports" / "grades.csv", index_col="student")
    assert grades["total"].to_dict() == {"release": 0.0, "solution": 3.0, "toy_abs": 1.0}
    assert (tmp_path / "demo" / "course" / "feedback" / "toy_abs" / "a2" / "a2kit_feedback.html").exists()


def test_demo_class_takes_one_mistake_per_notebook(tmp_path):
    from autograder.pipeline.demo import demo_cases

    for name, notebook in [("cheat_eq", "01_toy"), ("nb1_a", "01_toy"), ("nb1_b", "01_toy"), ("nb2_a", "02_toy"),
                           ("hostile_loop", "01_toy")]:
        (tmp_path / notebook / "cases").mkdir(parents=True, exist_ok=True)
        (tmp_path / notebook / "cases" / f"{name}.yaml").write_text(f"description: {name}\nnotebooks: [{notebook}]\n")
    names = lambda **kw: [c.name for c in demo_cases(["01_toy", "02_toy"], roots=[tmp_path], **kw)[0]]
    assert names() == ["solution", "release", "nb1_a", "nb2_a"]
    assert names(every_mistake=True, hostile=True) == ["solution", "release", "cheat_eq", "hostile_loop", "nb1_a", "nb1_b",
                                                       "nb2_a"]
