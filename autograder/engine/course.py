"""An nbgrader course directory driven through nbgrader's Python API.

Layout (nbgrader's own): ``ROOT/source/a2`` (a copy of the kit's ``notebooks/``), ``ROOT/release``,
``ROOT/submitted/<student>/a2``, ``ROOT/autograded``, ``ROOT/feedback``, ``ROOT/gradebook.db``.
The configuration is ``autograder/engine/nbgrader_config.py`` with the root and the gradebook URL set here.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.exchange import ExchangeError
from nbgrader.exchange.default.list import ExchangeList
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from autograder.locations import SOURCE_NOTEBOOKS

from . import compat

CONFIG_FILE = Path(__file__).resolve().parent / "nbgrader_config.py"
ASSIGNMENT = "a2"


# PostgreSQL drivers SQLAlchemy knows, the first installed one wins (psycopg 3 is the kit's `postgres` extra).
POSTGRES_DRIVERS = {"psycopg": "psycopg", "psycopg2": "psycopg2", "pg8000": "pg8000"}  # dialect name: module


def gradebook_url(url: str) -> str:
    """``url`` with a PostgreSQL driver SQLAlchemy can load: ``postgresql://`` -> ``postgresql+psycopg://``.

    A PostgreSQL URL without an installed driver raises RuntimeError with one sentence (the command
    line prints it) instead of SQLAlchemy's ModuleNotFoundError deep in a traceback.
    """
    import importlib.util

    scheme, sep, rest = url.partition("://")
    dialect, _, driver = scheme.partition("+")
    if not sep or dialect not in ("postgresql", "postgres"):
        return url
    installed = [name for name, module in POSTGRES_DRIVERS.items() if importlib.util.find_spec(module)]
    if driver and driver in POSTGRES_DRIVERS and driver not in installed or not driver and not installed:
        raise RuntimeError(f"The gradebook URL {dialect}+{driver or '...'}:// needs a PostgreSQL driver: "
                           "install it with `pip install 'a2kit[postgres]'` (psycopg).")
    return url if driver else f"postgresql+{installed[0]}://{rest}"


class NoExchange(ExchangeList):
    """nbgrader's exchange, which the kit does not use (students hand in through the LMS, ``a2kit collect``).

    nbgrader's API lists the exchange whenever it starts and, finding no exchange folder, logs
    "Unwritable directory, please contact your instructor" on every command. This lister reports
    the exchange missing without a word; nbgrader then leaves it alone, as it did before.
    """

    def start(self):
        raise ExchangeError("the A2 kit uses no nbgrader exchange")


def nbgrader_config(root: Path, db_url: str | None = None) -> Config:
    """The kit's nbgrader configuration for a course rooted at ``root``."""
    config = PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent)).load_config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = gradebook_url(db_url) if db_url else f"sqlite:///{Path(root) / 'gradebook.db'}"
    # No exchange: nbgrader's default is a system folder, which it complains about on every command.
    config.Exchange.root = str(Path(root) / "exchange")
    config.ExchangeFactory.list = f"{NoExchange.__module__}.{NoExchange.__qualname__}"
    return config


@dataclass
class Course:
    """An instructor's working course directory."""

    root: Path
    assignment: str = ASSIGNMENT
    db_url: str | None = None
    config: Config = field(init=False)

    def __post_init__(self):
        compat.apply()
        self.root = Path(self.root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = nbgrader_config(self.root, self.db_url)
        self.db_url = self.config.CourseDirectory.db_url

    # nbgrader's folders ---------------------------------------------------------------
    @property
    def source_dir(self) -> Path:
        return self.root / "source" / self.assignment

    @property
    def release_dir(self) -> Path:
        return self.root / "release" / self.assignment

    def submitted_dir(self, student: str) -> Path:
        return self.root / "submitted" / student / self.assignment

    def autograded_dir(self, student: str) -> Path:
        return self.root / "autograded" / student / self.assignment

    def feedback_dir(self, student: str) -> Path:
        return self.root / "feedback" / student / self.assignment

    # steps ----------------------------------------------------------------------------
    def api(self):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        return NbGraderAPI(coursedir=CourseDirectory(config=self.config), config=self.config)

    def sync_source(self, notebooks: Path = SOURCE_NOTEBOOKS, names: list[str] | None = None) -> list[Path]:
        """Copy the kit's source notebooks (all, or the stems in ``names``) into ``source/a2``."""
        self.source_dir.mkdir(parents=True, exist_ok=True)
        copied = []
        for nb in sorted(Path(notebooks).glob("*.ipynb")):
            if names is None or nb.stem in names:
                copied.append(Path(shutil.copy2(nb, self.source_dir / nb.name)))
        if not copied:
            raise FileNotFoundError(f"No source notebooks found in {notebooks}")
        return copied

    def generate_release(self) -> Path:
        """nbgrader generate_assignment: strips solutions and hidden tests, records checksums."""
        result = self.api().generate_assignment(self.assignment)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{result['log']}\n{result.get('error', '')}")
        return self.release_dir

    def scores(self, student: str) -> dict[str, dict[str, tuple[float, float]]]:
        """Autograded points per notebook and grade cell: ``{notebook: {grade_id: (score, max)}}``."""
        from nbgrader.api import Gradebook

        out: dict[str, dict[str, tuple[float, float]]] = {}
        with Gradebook(self.db_url) as gb:
            submission = gb.find_submission(self.assignment, student)
            for nb in submission.notebooks:
                out[nb.name] = {g.name: (g.score, g.max_score) for g in nb.grades if g.auto_score is not None or g.cell_type == "code"}
        return out
