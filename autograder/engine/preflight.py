"""Before grading a class: can this machine grade fairly? If not, nobody is graded and the cause is said.

``preflight`` checks the installed nbgrader/Jupyter/Dask internals the kit builds on
(:func:`autograder.engine.compat.missing_internals`), a hidden test for every graded test cell, the
test set where the model tests need it, and a sandbox that starts and sees exactly the training
data. A failure is the grading machine's: every submission is reported with the cause for the
instructor, none gets a 0.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from autograder.harness import hidden_tests
from autograder.isolation.sandbox import Limits, SandboxSpec, data_view, run_sandboxed
from autograder.notebooks import load_hidden_tests

from . import compat


class GradingUnavailable(RuntimeError):
    """This machine cannot grade fairly now (the cause is in the message); nothing was graded."""


# Run in a sandbox like a kernel's: argv[1] = files it must read (the training data), argv[2] = the test set's path.
PROBE = r'''
import os, sys, json
import numpy, ipykernel, a2lib
unreadable = [p for p in json.loads(sys.argv[1]) if not os.access(p, os.R_OK)]
if unreadable:
    sys.exit(f"the sandbox cannot read the training data ({', '.join(unreadable)})")
if sys.argv[2] and os.path.exists(sys.argv[2]):
    sys.exit("the sandbox can see the test set")
print("ok")
'''


def untested_cells(plan: dict) -> list[str]:
    """Graded cells of the plan that no registered hidden test decides, as ``notebook/grade_id``."""
    tests = hidden_tests()
    return [f"{nb}/{gid}" for nb, roles in plan.items() for gid, role in roles.items()
            if role == "test" and (nb, gid) not in tests]


def probe_sandbox(env: dict, unsafe: bool) -> None:
    """Start a sandbox as a kernel's would be; it must read the training data and not see the test set."""
    data = env.get("A2_DATA")
    with tempfile.TemporaryDirectory(prefix="a2kit-probe-") as tmp:
        work, kernel = Path(tmp) / "work", Path(tmp) / "kernel"
        work.mkdir()
        kernel.mkdir()
        kernel_env, mounts = dict(env), {}
        if data:
            kernel_env["A2_DATA"], mounts = data_view(data)
        spec = SandboxSpec(str(work), str(kernel), read_only_at=mounts, env=kernel_env, unsafe=unsafe,
                           limits=Limits(wall_s=120), slot=511)
        # (--unsafe has no sandbox: everything is visible, as the warning said)
        test_set = str(Path(kernel_env["A2_DATA"]) / "cifar-10-batches-py" / "test_batch") if data and not unsafe else ""
        try:
            probe = run_sandboxed(spec, [sys.executable, "-c", PROBE, json.dumps(sorted(mounts)), test_set], timeout=120)
        except Exception as exc:
            raise GradingUnavailable(f"the sandbox could not start: {exc}") from None
    if probe.returncode != 0 or "ok" not in probe.stdout:
        cause = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        raise GradingUnavailable(f"a sandboxed kernel could not start here: {cause}")


def preflight(plan: dict, env: dict, unsafe: bool, notebook_folders: list[str], local_sandbox: bool = True) -> None:
    """Raise GradingUnavailable with the cause when this machine cannot grade fairly."""
    missing = compat.missing_internals()
    if missing:
        raise GradingUnavailable("the installed nbgrader/Jupyter/Dask lack what the grader builds on: " + "; ".join(missing))
    load_hidden_tests(notebook_folders)
    untested = untested_cells(plan)
    if untested:
        raise GradingUnavailable(f"no hidden test decides {', '.join(untested)}: the grader cannot score these cells")
    data = env.get("A2_DATA")
    folder = Path(data) / "cifar-10-batches-py" if data else None
    if folder and folder.is_dir() and not (folder / "test_batch").is_file():  # (no data at all: tests that need it say so)
        raise GradingUnavailable(f"no CIFAR-10 test set in {folder}: the model tests need it (`--data DIR`)")
    if local_sandbox:
        probe_sandbox(env, unsafe)
