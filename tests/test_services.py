"""The pipeline against real services on 127.0.0.1: a PostgreSQL gradebook and an external Dask cluster.

Both start real server processes (see ``tests/services.py``) and stop them whatever happens.
"""
import shutil

import pandas as pd
import pytest

from autograder.engine import course as course_module
from autograder.pipeline.cli import main
from autograder.engine.course import Course
from autograder.pipeline.export import grades_table
from services import dask_cluster, postgres_server
from toy_notebooks import TOY_CLASS, TOY_FOLDERS, toy_class_inbox

pytestmark = pytest.mark.service


def test_postgresql_gradebook_release_collect_grade_export(tmp_path, capsys):
    notebooks, inbox = toy_class_inbox(tmp_path)
    with postgres_server() as url:
        assert url.startswith("postgresql://")  # a plain URL: the installed driver is chosen for it
        base = ["-q", "--course", str(tmp_path / "course"), "--db", url]
        assert main(base + ["release", "--notebooks", str(notebooks)]) == 0
        assert main(base + ["collect", str(inbox)]) == 0
        assert main(base + ["grade", "--workers", "1", "--notebook-folders", TOY_FOLDERS]) == 0
        assert "postgresql+psycopg://" in capsys.readouterr().out
        assert main(base + ["export"]) == 0
        assert main(base + ["feedback"]) == 0
    grades = pd.read_csv(tmp_path / "course" / "exports" / "grades.csv", index_col="student")
    assert grades["total"].to_dict() == TOY_CLASS
    assert not (tmp_path / "course" / "gradebook.db").exists()  # everything went to PostgreSQL


def test_postgresql_without_a_driver_is_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(course_module, "POSTGRES_DRIVERS", {"psycopg": "a2kit_no_such_driver"})
    assert main(["-q", "--course", str(tmp_path), "--db", "postgresql://grader@127.0.0.1/a2", "export"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "needs a PostgreSQL driver" in err and "pip install 'a2kit[postgres]'" in err


def test_external_dask_cluster_grades_like_the_local_one(tmp_path):
    notebooks, inbox = toy_class_inbox(tmp_path)
    local = ["-q", "--course", str(tmp_path / "local")]
    assert main(local + ["release", "--notebooks", str(notebooks)]) == 0
    assert main(local + ["collect", str(inbox)]) == 0
    shutil.copytree(tmp_path / "local", tmp_path / "cluster")
    assert main(local + ["grade", "--notebook-folders", TOY_FOLDERS]) == 0  # the default: a LocalCluster of 2 workers
    with dask_cluster(workers=2, log_dir=tmp_path) as address:
        assert main(["-q", "--course", str(tmp_path / "cluster"), "grade", "--scheduler", address,
                     "--notebook-folders", TOY_FOLDERS]) == 0
    by_local = grades_table(Course(tmp_path / "local"))
    by_cluster = grades_table(Course(tmp_path / "cluster"))
    pd.testing.assert_frame_equal(by_local, by_cluster)
    assert by_cluster["total"].to_dict() == TOY_CLASS
