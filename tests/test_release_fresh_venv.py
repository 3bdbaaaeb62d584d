"""The release as a student meets it: a fresh Python with torch preinstalled (as on Colab), no a2lib.

A new virtual environment sees the kit environment's third-party packages (torch, torchvision,
numpy..., ipykernel), never a2lib, the instructor kit or its editable hooks. The release zip made
by ``a2kit release`` is unpacked, the source notebooks' solutions are filled in (the corpus's
"solution" submission), and every notebook runs in fast mode in a kernel of that environment:
its first cell must install the wheel beside it, torch must stay the version it was, and no cell
may fail (visible checks included).
"""
from __future__ import annotations

import json
import subprocess
import sysconfig
import time
import venv
import zipfile
from pathlib import Path

import nbformat
import pytest

import a2lib
from autograder.tools.corpus import solution_notebook
from autograder.locations import KIT_ROOT
from kit_corpus import AVAILABLE, released_course
from notebook_settings import with_settings

# Kept out of the fresh environment: the student package, the instructor kit, and the editable
# installs' hooks (what a student's Colab or laptop does not have). Everything else is there,
# pip and a current setuptools included (torch requires one), as on Colab.
HIDDEN = ("a2lib", "a2kit", "a2_course_kit", "autograder", "__editable__")


def _shadow_site_packages(dest: Path) -> Path:
    """A folder of links to the kit environment's site-packages entries, minus :data:`HIDDEN` and .pth files."""
    dest.mkdir()
    source = Path(sysconfig.get_paths()["purelib"])
    for entry in source.iterdir():
        name = entry.name.lower()
        if entry.suffix == ".pth" or name.startswith(HIDDEN) or name == "__pycache__":
            continue
        (dest / entry.name).symlink_to(entry)
    return dest


def _run(python: Path, code: str, cwd: Path) -> str:
    out = subprocess.run([str(python), "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    return (out.stdout + out.stderr).strip()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> dict:
    """A fresh venv whose only third-party packages are the kit environment's, minus a2lib and the kit."""
    root = tmp_path_factory.mktemp("fresh")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(_run(python, "import sysconfig; print(sysconfig.get_paths()['purelib'])", root))
    (site / "preinstalled.pth").write_text(str(_shadow_site_packages(root / "preinstalled")) + "\n")
    kernels = root / "jupyter" / "kernels" / "a2-fresh"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh (torch, no a2lib)", "language": "python"}))
    return {"python": python, "site": site, "jupyter": root / "jupyter", "root": root}


def test_the_fresh_environment_has_torch_but_not_a2lib_nor_the_kit(fresh):
    assert _run(fresh["python"], "import torch, torchvision, ipykernel; print('ok')", fresh["root"]) == "ok"
    for module in ("a2lib", "autograder"):
        assert "ModuleNotFoundError" in _run(fresh["python"], f"import {module}", fresh["root"]), module


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 1 min on an idle 2-core CPU with AMX; 13 min measured with the 2 cores shared (load 10)
def test_release_notebooks_run_in_a_fresh_environment_that_installs_the_wheel_itself(fresh, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    import torch

    course = released_course()
    with zipfile.ZipFile(course.release_dir.parent / f"{course.assignment}.zip") as zf:
        zf.extractall(tmp_path)
    folder = tmp_path / course.assignment
    wheel = f"a2lib-{a2lib.__version__}-py3-none-any.whl"
    assert (folder / wheel).is_file() and (folder / "configs").is_dir()

    monkeypatch.setenv("JUPYTER_PATH", str(fresh["jupyter"]))
    monkeypatch.setenv("A2_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # every requirement is preinstalled: nothing may be downloaded
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    if (KIT_ROOT / "data" / "cifar-10-batches-py").exists():
        monkeypatch.setenv("A2_DATA", str(KIT_ROOT / "data"))
    seconds = {}
    for stem in AVAILABLE:
        path = folder / f"{stem}.ipynb"
        nb = solution_notebook(nbformat.read(path, as_version=4),
                               nbformat.read(course.source_dir / f"{stem}.ipynb", as_version=4))
        with_settings(nb, FAST=True)  # fast mode, set in the settings cell as a student sets it
        start = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="a2-fresh", resources={"metadata": {"path": str(folder)}}).execute()
        seconds[stem] = round(time.perf_counter() - start, 1)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{stem}: {errors[0]['ename']}: {errors[0]['evalue']}"
    print("seconds per notebook:", seconds)

    # The first notebook's first cell installed the wheel into the fresh environment, and only it.
    installed = sorted(p.name for p in fresh["site"].glob("*.dist-info"))
    assert installed == [f"a2lib-{a2lib.__version__}.dist-info"], installed
    assert not (fresh["site"] / "torch").exists() and not (fresh["site"] / "autograder").exists()
    assert _run(fresh["python"], "import torch; print(torch.__version__)", folder) == torch.__version__
    assert _run(fresh["python"], "import a2lib; print(a2lib.__file__)", folder).startswith(str(fresh["site"]))
    assert "ModuleNotFoundError" in _run(fresh["python"], "import autograder", folder)
    assert (folder / "checkpoints" / "lt_cbfocal.pt").is_file() and (folder / "checkpoints" / "mymodel.pt").is_file()
