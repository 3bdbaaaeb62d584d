"""Three fixes to nbgrader 0.9, applied once per process by ``apply()`` (the course and the grader call it).

- Creating a gradebook asks for the current Alembic revision by running the ``alembic`` command in
  a subprocess (a second Python start-up, several seconds on a busy machine, and it needs the venv's
  ``bin`` on PATH). The same answer is read here in-process from nbgrader's migration scripts.
- nbgrader's gradebook triggers SQLAlchemy autoflush warnings ("... not in session ...") that say
  nothing to an instructor; they are silenced in every process that grades (workers included).
- ``nbgrader.utils.setenv`` saves ``os.environ.get(value)`` instead of ``get(key)`` and so always
  *deletes* ``NBGRADER_EXECUTION`` afterwards, which raises KeyError when two gradings share a
  process. The replacement restores what was there.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings
from pathlib import Path


@functools.lru_cache(maxsize=1)
def alembic_head() -> str:
    """The newest revision of nbgrader's gradebook schema (what ``alembic heads`` prints first)."""
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    return ScriptDirectory(ALEMBIC_DIR).get_current_head()


@contextlib.contextmanager
def setenv(**kwargs):
    """``nbgrader.utils.setenv`` that restores the previous values (or their absence)."""
    previous = {key: os.environ.get(key) for key in kwargs}
    os.environ.update(kwargs)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@functools.lru_cache(maxsize=1)
def apply() -> None:
    import nbgrader.api
    import nbgrader.utils

    # Jupyter finds the kernel and nbgrader its tools on PATH, even when the venv is not activated.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    nbgrader.api.get_alembic_version = alembic_head
    nbgrader.utils.setenv = setenv
    warnings.filterwarnings("ignore", message=".*not in session.*")
