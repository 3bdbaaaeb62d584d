"""Everything that touches nbgrader, Jupyter, Dask or torch internals, in one place, checked per version.

The check runs before anything that uses them: ``grade_submissions`` checks before it starts the fork
server (which reads ``multiprocessing.forkserver`` internals) and the preflight refuses to grade.

``INTERNALS`` lists each internal name the kit patches or builds on; ``missing_internals()`` names
those missing from the installed versions (the grader refuses to start otherwise, naming what
moved), and the kit's tests have one test per entry. The three fixes to nbgrader 0.9 below are
applied once per process by ``apply()`` (the course and the grader call it):

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


# (module, dotted attribute, what the kit does with it)
INTERNALS = [
    ("nbgrader.api", "get_alembic_version", "replaced by alembic_head (no subprocess per gradebook)"),
    ("nbgrader.utils", "setenv", "replaced by setenv (restores NBGRADER_EXECUTION)"),
    ("nbgrader.utils", "determine_grade", "scores the verdict outputs the harness writes (an error output = 0)"),
    ("nbgrader.preprocessors", "Execute", "subclassed by HarnessExecute (preprocess, preprocess_cell, kc, km, nb)"),
    ("nbgrader.preprocessors", "Execute.preprocess_cell", "overridden: test cells are judged, not executed"),
    ("nbgrader.converters.autograde", "Autograde.autograde_preprocessors", "Execute swapped for HarnessExecute"),
    ("nbgrader.preprocessors", "ClearHiddenTests", "used by the feedback converter"),
    ("jupyter_client.connect", "ConnectionFileMixin.cleanup_ipc_files", "ipc sockets are named IP-PORT (links to them)"),
    ("jupyter_client.manager", "AsyncKernelManager", "base of the sandbox kernel manager"),
    ("IPython.display", "publish_display_data", "the kernel-side agent publishes results with it"),
    ("multiprocessing.forkserver", "_forkserver._preload_modules", "Dask's preload list, extended for workers"),
    ("distributed.utils", "get_mp_context", "the forkserver context Dask's workers come from"),
    ("torch._C", "_set_deterministic_algorithms",
     "a2lib.mode sets deterministic kernels in every sandboxed kernel without importing torch's compiler"),
]


def _resolve(module: str, dotted: str):
    import importlib

    obj = importlib.import_module(module)
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def missing_internals(modules: tuple[str, ...] | None = None) -> list[str]:
    """The internals of ``INTERNALS`` (of ``modules`` only, if given) missing from the installed versions,
    in words (empty: all there)."""
    missing = []
    for module, dotted, why in INTERNALS:
        if modules is not None and module not in modules:
            continue
        try:
            _resolve(module, dotted)
        except (ImportError, AttributeError) as exc:
            missing.append(f"{module}.{dotted} ({why}): {exc}")
    return missing


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
