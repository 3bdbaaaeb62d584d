"""Where the instructor kit's files are: the source notebooks, the configs, the data folder.

The one place that knows the repository's layout; every layer of ``autograder`` asks here.
"""
from __future__ import annotations

from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_NOTEBOOKS = KIT_ROOT / "notebooks"   # nbgrader source notebooks (solutions and test cells)
CONFIGS = KIT_ROOT / "configs"              # released beside the notebooks
KIT_DATA = KIT_ROOT / "data"                # CIFAR-10 (`make data`), when present
A2LIB_SOURCE = KIT_ROOT / "a2lib"           # the student package's source (its own pyproject.toml): the wheel is built from it
