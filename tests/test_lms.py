"""The LMS round trip: Canvas and Moodle gradebook files in, import files out, a late policy."""
import os
import zipfile
from datetime import datetime, timezone

import pandas as pd
import pytest

from autograder.pipeline import lms
from autograder.pipeline.cli import main
from autograder.pipeline.collect import collect, lms_name
from toy_notebooks import graded_toy_course

# What Canvas's Grades -> Export writes: identifying columns, assignments "NAME (id)", computed scores,
# and a second row with the points possible.
CANVAS_EXPORT = """Student,ID,SIS User ID,SIS Login ID,Integration ID,Section,A1 (111111),A2 (123456),Current Score,Unposted Current Score,Final Score,Unposted Final Score
    Points Possible,,,,,,10.00,73.00,(read only),(read only),(read only),(read only)
"Solution, Sam",12345,S001,sam@uni.example,,CS101 Lab 1,9.00,,90.00,90.00,90.00,90.00
"Wrong",22222,S002,wanda@uni.example,,CS101 Lab 2,8.00,,80.00,80.00,80.00,80.00
"Absent, Andy",33333,S003,andy@uni.example,,CS101 Lab 1,7.00,,70.00,70.00,70.00,70.00
"""

# What Moodle's Grades -> Export -> Plain text file writes.
MOODLE_EXPORT = """First name,Last name,ID number,Institution,Department,Email address,Assignment: A2 (Real),Last downloaded from this course
Alice,Smith,S001,Uni,CS,alice@uni.example,-,1767225600
Bob,Jones,S002,Uni,CS,bob@uni.example,-,1767225600
Carol,White,S003,Uni,CS,carol@uni.example,-,1767225600
"""


@pytest.mark.parametrize("name, expected", [
    ("smithalice_12345_67890_a2.zip", ("smithalice", "canvas", "12345", False)),
    ("smithalice_LATE_12345_67890_a2.zip", ("smithalice", "canvas", "12345", True)),
    ("Alice Smith_998877_assignsubmission_file_", ("alice_smith", "moodle", "998877", False)),
    ("alice", ("alice", "", "", False)),
])
def test_lms_names_keep_the_lms_ids_and_the_late_mark(name, expected):
    info = lms_name(name)
    assert (info["student"], info["lms"], info["lms_id"], info["late"]) == expected


def test_late_policy_per_started_day_capped_at_100():
    due = lms.parse_time("2026-03-01T23:59:00+00:00")
    assert [lms.days_late(t, due) for t in ["2026-03-01T23:00:00+00:00", "2026-03-02T00:00:00+00:00",
                                            "2026-03-03T00:00:00+00:00", "", "2026-03-02T00:30:00+01:00"]] == [0, 1, 2, 0, 0]
    grades = pd.DataFrame({"total": [50.0, 50.0, 50.0]}, index=pd.Index(["a", "b", "c"], name="student"))
    roster = pd.DataFrame({"submitted_at": ["2026-03-01T12:00:00+00:00", "2026-03-03T00:00:00+00:00",
                                            "2026-04-30T00:00:00+00:00"]}, index=grades.index)
    out = lms.apply_late_policy(grades, roster, due, penalty_per_day=10)
    assert out["days_late"].tolist() == [0, 2, 60]
    assert out["final"].tolist() == [50.0, 40.0, 0.0]


def test_canvas_import_keeps_canvas_columns_and_lists_every_student(tmp_path):
    path = tmp_path / "canvas.csv"
    path.write_text(CANVAS_EXPORT)
    roster = pd.DataFrame({"lms": ["canvas"], "lms_id": ["12345"]}, index=pd.Index(["solution"], name="student"))
    points = pd.Series({"solution": 70.5, "wrong": 30.0, "ghost": 12.0})
    made = lms.canvas_import(path, points, roster, 73, "a2")
    assert made.column == "A2 (123456)"
    assert made.table.columns.tolist() == ["Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID", "Section", "A2 (123456)"]
    assert made.table["Student"].str.strip().tolist() == ["Points Possible", "Solution, Sam", "Wrong", "Absent, Andy"]
    assert made.table["A2 (123456)"].tolist() == ["73", 70.5, 30.0, ""]  # matched by user id, by name, no submission
    status = made.matches.set_index("student")["status"]
    assert status["solution"] == status["wrong"] == "matched" and made.unmatched == ["ghost"]
    assert (made.matches["status"] == "no submission").sum() == 1
    with pytest.raises(ValueError, match="pass --column"):
        lms.canvas_import(path, points, roster, 73, "a9")
    assert lms.canvas_import(path, points, roster, 73, "a9", column="A1 (111111)").column == "A1 (111111)"


def test_moodle_import_keyed_by_id_number_and_email(tmp_path):
    path = tmp_path / "moodle.csv"
    path.write_text(MOODLE_EXPORT)
    made = lms.moodle_import(path, pd.Series({"alice_smith": 61.0, "bob_jones": 40.25}), "a2")
    assert made.table.columns.tolist() == ["ID number", "Email address", "Assignment: A2 (Real)"]
    assert made.table["Assignment: A2 (Real)"].tolist() == [61.0, 40.25, ""]
    assert made.unmatched == []
    with pytest.raises(ValueError, match="not a Moodle grade export"):
        path.write_text(CANVAS_EXPORT)
        lms.moodle_import(path, pd.Series(dtype=float), "a2")


def test_collect_records_the_roster_and_export_writes_the_canvas_file(tmp_path, capsys):
    course, _ = graded_toy_course(tmp_path)  # "solution" (3 of 3 points) and "wrong" (1) are graded
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    nb = (course.release_dir / "01_toy.ipynb").read_bytes()
    with zipfile.ZipFile(inbox / "solution_LATE_12345_67890_a2.zip", "w") as zf:
        zf.writestr("01_toy.ipynb", nb)
    late = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc).timestamp()  # 12 h 1 min after the due time
    os.utime(inbox / "solution_LATE_12345_67890_a2.zip", (late, late))
    collect(inbox, course, progress=False)
    roster = lms.read_roster(course)
    assert roster.loc["solution", ["lms", "lms_id", "submitted_at"]].tolist() == ["canvas", "12345", "2026-03-02T12:00:00+00:00"]
    assert str(roster.loc["solution", "late"]) == "True"

    canvas = tmp_path / "canvas.csv"
    canvas.write_text(CANVAS_EXPORT)
    base = ["-q", "--course", str(course.root), "export", "--canvas", str(canvas)]
    assert main(base + ["--due", "2026-03-01T23:59", "--late-penalty", "10"]) == 0
    exported = pd.read_csv(course.root / "exports" / "canvas_import.csv", dtype=str, keep_default_na=False)
    assert exported["A2 (123456)"].tolist() == ["3", "2.7", "1.0", ""]
    grades = pd.read_csv(course.root / "exports" / "grades.csv", index_col="student")
    assert grades.loc["solution", ["total", "days_late", "final"]].tolist() == [3.0, 1, 2.7]

    canvas.write_text(CANVAS_EXPORT.replace('"Wrong",22222', '"Someone, Else",22222'))
    capsys.readouterr()
    assert main(base) == 1  # a graded student the LMS does not know: listed, attention
    out = capsys.readouterr().out
    assert "not in the LMS file" in out and "wrong" in out.split("Not in the LMS file")[-1]


# Moodle's grading worksheet (Assignment -> View all submissions -> Download grading worksheet).
MOODLE_WORKSHEET = """Identifier,Full name,Email address,Status,Grade,Maximum Grade,Grade can be changed,Last modified (submission),Last modified (grade),Feedback comments
Participant 998877,Alice Smith,alice@uni.example,Submitted for grading,,73.00,Yes,"Sunday, 1 March 2026, 8:15 PM",-,
Participant 998878,Robert Jones,bob@uni.example,Submitted for grading,,73.00,Yes,"Sunday, 1 March 2026, 9:00 PM",-,
Participant 998879,Carol White,carol@uni.example,No submission,12.00,73.00,Yes,-,-,
"""


def test_moodle_worksheet_matched_by_participant_id_and_written_back_whole(tmp_path):
    path = tmp_path / "worksheet.csv"
    path.write_text(MOODLE_WORKSHEET)
    # Bob's folder said "Bob Jones_998878_...": his id is bob_jones, but his participant id matches
    roster = pd.DataFrame({"lms": ["moodle", "moodle"], "lms_id": ["998877", "998878"]},
                          index=pd.Index(["alice_smith", "bob_jones"], name="student"))
    made = lms.moodle_import(path, pd.Series({"alice_smith": 61.0, "bob_jones": 40.25}), "a2", roster=roster)
    assert made.column == "Grade" and made.unmatched == []
    assert made.table.columns.tolist() == pd.read_csv(path).columns.tolist()
    assert made.table["Grade"].tolist() == [61.0, 40.25, "12.00"]  # Carol: what Moodle had stays
