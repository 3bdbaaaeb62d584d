"""`pip install .` (not editable) gives a working kit: the instructor wheel, installed in a fresh
virtual environment, releases the source notebooks it carries and grades a solution with the
reference values and checkpoints it carries, its own package hidden from the sandboxed kernel.

The fresh environment shares this one's third-party packages (``--system-site-packages`` off the
base interpreter plus a ``.pth`` naming this environment's site-packages: no torch reinstalled), and
gets the kit's and the student package's wheels with ``--no-deps`` (its pip and setuptools are this one's too); nothing of the checkout is on its
path, and it runs in a folder outside the checkout.
"""
from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

KIT = Path(__file__).resolve().parent.parent
SOLVE = """
import sys
from pathlib import Path
from autograder.engine.course import Course
from autograder.tools.corpus import Case, build_submission
course = Course(Path(sys.argv[1]))
build_submission(Case("solution", "the solution", "solution", sys.argv[2:]), course)
"""
CHECK = """
import json, autograder, a2lib
from autograder.locations import CHECKOUT, SOURCE_NOTEBOOKS
from autograder.notebooks import notebook_folders
folder = notebook_folders()["03_cnn_design"]
print(json.dumps({"autograder": autograder.__file__, "a2lib": a2lib.__file__, "checkout": CHECKOUT,
                  "notebooks": sorted(p.name for p in SOURCE_NOTEBOOKS.glob("*.ipynb")),
                  "checkpoints": sorted(p.name for p in folder.checkpoints_dir.glob("*.pt")),
                  "cases": len(list(folder.cases_dir.glob("*.yaml")))}))
"""


def _run(cmd, cwd, env, timeout=900):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, f"{cmd}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.mark.slow
def test_the_installed_wheel_releases_and_grades(tmp_path, synthetic_root):
    from autograder.pipeline.student_package import build_wheel

    # Both wheels, built from a copy of the checkout (no build output lands in it).
    source = tmp_path / "source"
    shutil.copytree(KIT, source, ignore=shutil.ignore_patterns(".git", ".venv*", "data", "build", "dist", "*.egg-info",
                                                               "__pycache__", "course", "runs", ".pytest_cache"))
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)],
         tmp_path, None)
    build_wheel(dist)
    # A fresh environment that borrows this one's third-party packages, with the two wheels installed.
    venv = tmp_path / "venv"
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    _run([str(base), "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], tmp_path, None)
    python = venv / "bin" / "python"
    fresh_site = Path(_run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], tmp_path, None).strip())
    (fresh_site / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", *map(str, sorted(dist.glob("*.whl")))],
         tmp_path, None)

    work = tmp_path / "work"   # outside the checkout, no data/ folder: everything comes from the install
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "A2KIT_NOTEBOOKS", "A2_DATA", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    found = json.loads(_run([str(python), "-c", CHECK], work, env))
    assert found["autograder"].startswith(str(venv)) and found["a2lib"].startswith(str(venv)) and not found["checkout"]
    assert found["notebooks"] == sorted(p.name for p in (KIT / "notebooks").glob("*.ipynb"))
    assert found["checkpoints"] == sorted(p.name for p in (KIT / "autograder/notebooks/03_cnn_design/reference/checkpoints")
                                          .glob("*.pt"))
    assert found["cases"] == len(list((KIT / "autograder/notebooks/03_cnn_design/cases").glob("*.yaml")))

    a2kit = str(venv / "bin" / "a2kit")
    course = work / "course"
    _run([a2kit, "-q", "--course", str(course), "release", "--only", "01_theory", "03_cnn_design"], work, env)
    assert (course / "release").is_dir() and list((course / "release").rglob("a2lib-*.whl"))
    _run([str(python), "-c", SOLVE, str(course), "01_theory", "03_cnn_design"], work, env)
    out = _run([a2kit, "--course", str(course), "grade", "--fast", "--workers", "1", "--data", str(synthetic_root)],
               work, env)
    assert "solution" in out and "graded" in out, out
    from autograder.engine.course import Course
    from autograder.harness.cells import autograded_cells

    graded = Course(course)
    scores, auto = graded.scores("solution"), autograded_cells(graded.source_dir)
    assert set(scores) == set(auto) == {"01_theory", "03_cnn_design"}
    # Notebook 1 needs no data: every autograded point, against the installed reference values.
    assert all(scores["01_theory"][gid] == (points, points) for gid, points in auto["01_theory"].items())
    # Notebook 3 on synthetic data cannot reach the reference accuracies, but the installed reference
    # checkpoints the solution carries load and pass the checks that do not need them.
    assert any(scores["03_cnn_design"][gid] == (points, points) for gid, points in auto["03_cnn_design"].items())
