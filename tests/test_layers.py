"""The instructor kit's layers (docs/maintainers.md), checked by import-linter as CI runs it."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_the_kit_keeps_its_layers_and_has_no_import_circle():
    out = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=KIT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_a_function_level_import_against_the_layers_is_caught(tmp_path):
    """The contracts see imports inside functions too: one that hides a circle (harness -> pipeline) breaks them."""
    package = tmp_path / "kit" / "autograder"
    for sub in ("pipeline", "tools", "engine", "notebooks", "harness", "isolation"):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "pipeline" / "cli.py").write_text("from autograder.harness import judge\n")
    (package / "harness" / "judge.py").write_text(textwrap.dedent("""
        def verdict():
            from autograder.pipeline import cli  # hidden in a function
            return cli
    """))
    (tmp_path / "kit" / "a2lib").mkdir()
    (tmp_path / "kit" / "a2lib" / "__init__.py").write_text("")
    config = (KIT / "pyproject.toml").read_text()
    (tmp_path / "kit" / "pyproject.toml").write_text(config[config.index("[tool.importlinter]"):config.index("[tool.pytest")])
    out = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tmp_path / "kit", capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path / "kit"), "PATH": str(LINT_IMPORTS.parent)})
    assert out.returncode != 0
    assert "autograder.harness.judge -> autograder.pipeline.cli" in out.stdout
