"""Where the instructor kit's files are: the source notebooks, the configs, the data folder.

The one place that knows the repository's layout; every layer of ``autograder`` asks here.

In a checkout (or an editable install) they are the repository's folders. An installed kit
(``pip install .``, not ``-e``) has no repository: its wheel installs the source notebooks, the
configs and the student package's ``pyproject.toml`` as data files under
``<prefix>/share/a2kit/`` (``[tool.setuptools.data-files]`` in ``pyproject.toml``), found here
from the running interpreter's prefix (or the user's base, for ``pip install --user``). A course's
own notebooks are named with ``--notebooks`` or ``$A2KIT_NOTEBOOKS`` either way.
"""
from __future__ import annotations

import site
import sys
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
CHECKOUT = (KIT_ROOT / "pyproject.toml").is_file() and (KIT_ROOT / "notebooks").is_dir()


def installed_share() -> Path:
    """``<prefix>/share/a2kit`` of an installed kit (the first that exists; the prefix's when none does)."""
    bases = [Path(sys.prefix), Path(site.USER_BASE or sys.prefix)]
    return next((b / "share" / "a2kit" for b in bases if (b / "share" / "a2kit").is_dir()), bases[0] / "share" / "a2kit")


def _student_package_source() -> Path:
    if CHECKOUT:
        return KIT_ROOT / "a2lib"
    import a2lib   # installed: its modules, and the pyproject.toml the kit's wheel installed beside the notebooks

    return Path(a2lib.__file__).resolve().parent


_HOME = KIT_ROOT if CHECKOUT else installed_share()
SOURCE_NOTEBOOKS = _HOME / "notebooks"      # nbgrader source notebooks (solutions and test cells)
CONFIGS = _HOME / "configs"                 # released beside the notebooks
KIT_DATA = KIT_ROOT / "data" if CHECKOUT else Path.cwd() / "data"   # CIFAR-10 (`make data`), when present
A2LIB_SOURCE = _student_package_source()    # the student package's source: the wheel is built from it
A2LIB_PYPROJECT = (KIT_ROOT / "a2lib" if CHECKOUT else _HOME / "a2lib") / "pyproject.toml"
