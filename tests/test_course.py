"""The course folder's rough edges: the PostgreSQL driver's message, and no word about nbgrader's exchange."""
import logging

import pytest

from autograder.engine import course as course_module
from autograder.engine.course import Course, gradebook_url
from autograder.pipeline.cli import main


def test_a_missing_postgresql_driver_names_the_kits_extra(monkeypatch):
    monkeypatch.setattr(course_module, "POSTGRES_DRIVERS", {"psycopg": "a2kit_no_such_driver"})
    with pytest.raises(RuntimeError, match=r"pip install 'a2kit\[postgres\]'"):
        gradebook_url("postgresql://grader@127.0.0.1/a2")


def test_no_command_logs_the_exchange_it_does_not_use(tmp_path, caplog, capsys):
    with caplog.at_level(logging.DEBUG):
        Course(tmp_path / "course").api()  # nbgrader's API lists its exchange whenever it starts
        assert main(["-q", "--course", str(tmp_path / "course"), "feedback"]) == 1  # nothing graded yet
    said = caplog.text + "".join(capsys.readouterr())
    assert "Unwritable directory" not in said and "exchange" not in said.lower()
