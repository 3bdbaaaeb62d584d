"""The LMS round trip: Canvas and Moodle gradebook files in, import files out, a late policy no time zone shifts."""
import zipfile

import pandas as pd
import pytest

from autograder.pipeline import late, lms
from autograder.pipeline.cli import main
from autograder.pipeline.collect import collect
from lms_downloads import CLASS, DUE, build, canvas_times, late_days
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


def test_late_policy_per_started_day_capped_at_100():
    due = late.parse_time("2026-03-01T23:59:00+00:00")
    times = ["2026-03-01T23:00:00+00:00", "2026-03-02T00:00:00+00:00", "2026-03-03T00:00:00+00:00", None,
             "2026-03-02T00:30:00+01:00"]
    assert [late.days_late(late.parse_time(t) if t else None, due) for t in times] == [0, 1, 2, 0, 0]
    roster = pd.DataFrame({"lms": "", "late": "False", "time_source": "x",
                           "submitted_at": ["2026-03-01T12:00:00+00:00", "2026-03-03T00:00:00+00:00",
                                            "2026-04-30T00:00:00+00:00"]}, index=pd.Index(["a", "b", "c"], name="student"))
    out = late.late_columns(["a", "b", "c"], roster, late.LatePolicy(due, 10))
    assert out["days_late"].tolist() == [0, 2, 60] and out["penalty_percent"].tolist() == [0.0, 20.0, 100.0]


def test_due_times_need_a_zone_and_a_penalty_needs_a_due(tmp_path):
    with pytest.raises(ValueError, match="no time zone"):
        late.LatePolicy.from_options(tmp_path, "2026-03-01T23:59", 10)
    berlin = late.LatePolicy.from_options(tmp_path, "2026-03-01T23:59", 10, tz="Europe/Berlin")
    assert berlin.due == late.parse_time("2026-03-01T22:59+00:00")  # CET is UTC+1 in March
    with pytest.raises(ValueError, match="--late-penalty needs --due"):
        late.LatePolicy.from_options(tmp_path, None, 10)
    with pytest.raises(ValueError, match="Unknown time zone"):
        late.LatePolicy.from_options(tmp_path, DUE, 10, tz="Mars/Olympus")
    assert main(["-q", "--course", str(tmp_path / "c"), "export", "--late-penalty", "10"]) == 2  # refused, not ignored


def test_extensions_move_the_due_time_of_one_student(tmp_path):
    (tmp_path / "extensions.csv").write_text("student,due\nbob,2026-03-04T12:00+01:00\n")
    policy = late.LatePolicy.from_options(tmp_path, DUE, 10)
    roster = pd.DataFrame({"lms": "", "late": "False", "time_source": "",
                           "submitted_at": "2026-03-03T12:00:00+00:00"}, index=pd.Index(["ann", "bob"], name="student"))
    out = late.late_columns(["ann", "bob"], roster, policy)
    assert out["days_late"].to_dict() == {"ann": 2, "bob": 0}
    assert out.loc["bob", "due"] == "2026-03-04T12:00+01:00"
    assert late.warnings(out.drop(index="bob"), policy)[-1].startswith("extensions for students with no grade: bob")


def test_canvas_late_mark_without_a_time_counts_a_day_and_disagreements_are_named():
    policy = late.LatePolicy(late.parse_time(DUE), 10)
    roster = pd.DataFrame({"lms": "canvas", "late": ["True", "False", "True"], "time_source": "",
                           "submitted_at": ["", "2026-03-02T12:00:00+00:00", "2026-03-01T10:00:00+00:00"]},
                          index=pd.Index(["marked", "unmarked_late", "marked_on_time"], name="student"))
    out = late.late_columns(list(roster.index), roster, policy)
    assert out["days_late"].to_dict() == {"marked": 1, "unmarked_late": 1, "marked_on_time": 0}
    assert "no submission time known: counted as 1 day" in out.loc["marked", "late_note"]
    assert "Canvas marks it on time" in out.loc["unmarked_late", "late_note"]
    assert "Canvas marks it late" in out.loc["marked_on_time", "late_note"]


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
    with zipfile.ZipFile(inbox / "wrong_22222_67891_a2.zip", "w") as zf:
        zf.writestr("01_toy.ipynb", nb)
    collect(inbox, course, progress=False)
    roster = lms.read_roster(course)
    assert roster.loc["solution", ["lms", "lms_id", "late", "submitted_at"]].tolist() == ["canvas", "12345", "True", ""]

    canvas = tmp_path / "canvas.csv"
    canvas.write_text(CANVAS_EXPORT)
    base = ["-q", "--course", str(course.root), "export", "--canvas", str(canvas)]
    capsys.readouterr()
    assert main(base + ["--due", "2026-03-01T23:59", "--tz", "UTC", "--late-penalty", "10"]) == 0
    assert "solution: late by Canvas's LATE mark, no submission time known: counted as 1 day" in capsys.readouterr().out
    exported = pd.read_csv(course.root / "exports" / "canvas_import.csv", dtype=str, keep_default_na=False)
    assert exported["A2 (123456)"].tolist() == ["3", "2.7", "1.0", ""]
    grades = pd.read_csv(course.root / "exports" / "grades.csv", index_col="student")
    assert grades.loc["solution", ["autograded", "hand", "total", "days_late", "penalty", "final"]].tolist() == \
        [3.0, 0.0, 3.0, 1, 0.3, 2.7]

    canvas.write_text(CANVAS_EXPORT.replace('"Wrong",22222', '"Someone, Else",22223'))
    capsys.readouterr()
    assert main(base) == 1  # a graded student the LMS does not know: listed, attention
    out = capsys.readouterr().out
    assert "not in the LMS file" in out and "wrong" in out.split("Not in the LMS file")[-1]


def test_late_days_are_the_same_in_every_time_zone_of_the_machine(tmp_path, monkeypatch):
    """The whole class through collect and export, with Canvas's submission times, on machines in three zones."""
    import time

    course, _ = graded_toy_course(tmp_path)
    download = build("canvas_files", course, tmp_path / "downloads")
    times = canvas_times(tmp_path / "times.csv")
    results = []
    try:
        for zone in ("UTC", "America/New_York", "Pacific/Kiritimati"):
            monkeypatch.setenv("TZ", zone)
            time.tzset()
            collect(download.zip_path, course, progress=False, times=times, tz=zone)
            policy = late.LatePolicy.from_options(course.root, DUE, 10)
            out = late.late_columns([s.canvas_id for s in CLASS], lms.read_roster(course), policy)
            results.append(out["days_late"].to_dict())
    finally:
        monkeypatch.undo()
        time.tzset()
    assert results[0] == results[1] == results[2] == {s.canvas_id: late_days(s.submitted) for s in CLASS}
    assert sorted(results[0].values()) == [0, 0, 1, 2]


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
