"""One test per internal of nbgrader, Jupyter and Dask that the kit patches or builds on."""
from __future__ import annotations

import os

import pytest

from autograder.engine import compat


@pytest.mark.parametrize("module, dotted, why", compat.INTERNALS, ids=[f"{m}.{d}" for m, d, _ in compat.INTERNALS])
def test_each_internal_exists_in_the_installed_version(module, dotted, why):
    assert compat._resolve(module, dotted) is not None, why


def test_check_names_what_moved(monkeypatch):
    monkeypatch.setattr(compat, "INTERNALS", compat.INTERNALS + [("nbgrader.utils", "no_such_name", "a test")])
    missing = compat.missing_internals()
    assert len(missing) == 1 and "nbgrader.utils.no_such_name" in missing[0]


def test_alembic_head_is_the_newest_gradebook_revision():
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    heads = ScriptDirectory(ALEMBIC_DIR).get_heads()
    assert compat.alembic_head() in heads and len(heads) == 1


def test_setenv_restores_what_was_there(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with compat.setenv(NBGRADER_EXECUTION="validate"):
        assert os.environ["NBGRADER_EXECUTION"] == "validate"
    assert os.environ["NBGRADER_EXECUTION"] == "autograde"
    monkeypatch.delenv("NBGRADER_EXECUTION")
    with compat.setenv(NBGRADER_EXECUTION="validate"):
        pass
    assert "NBGRADER_EXECUTION" not in os.environ


def test_apply_installs_both_replacements():
    import nbgrader.api
    import nbgrader.utils

    compat.apply()
    assert nbgrader.api.get_alembic_version is compat.alembic_head
    assert nbgrader.utils.setenv is compat.setenv


def test_determine_grade_scores_the_harness_verdict_outputs():
    """nbgrader gives 0 for a verdict's error output and full points for a passing one."""
    from nbformat.v4 import new_code_cell
    from nbgrader.utils import determine_grade

    from autograder.harness import Verdict
    from autograder.harness.outputs import verdict_outputs

    def cell(verdict):
        c = new_code_cell("", metadata={"nbgrader": {"grade": True, "solution": False, "points": 2, "grade_id": "t"}})
        c.outputs = verdict_outputs(verdict)
        return c

    assert determine_grade(cell(Verdict(True, "fine", lines=["a printed line"]))) == (2.0, 2.0)
    assert determine_grade(cell(Verdict(False, "wrong"))) == (0, 2.0)
    assert determine_grade(cell(Verdict(False, grader_error="boom"))) == (0, 2.0)


def test_ipc_sockets_are_named_ip_dash_port(tmp_path):
    """The kernel launcher links ``IP-PORT`` paths: jupyter_client must name ipc sockets that way."""
    from jupyter_client.connect import ConnectionFileMixin

    mixin = ConnectionFileMixin(transport="ipc", ip=str(tmp_path / "s"))
    mixin.shell_port = 7
    (tmp_path / "s-7").write_text("")
    mixin._connection_file_written = True
    mixin.cleanup_ipc_files()
    assert not (tmp_path / "s-7").exists()


def test_forkserver_preload_list_is_where_dask_keeps_it():
    import multiprocessing.forkserver

    assert isinstance(multiprocessing.forkserver._forkserver._preload_modules, (list, tuple))
