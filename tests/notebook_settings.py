"""The notebooks' settings cell, edited as a student edits it (for the tests that execute notebooks).

Every notebook has one editable settings cell (cell id ``settings``) with lines ``NAME = value  # why``;
outside grading its values win over the environment (``a2lib.mode``), so a test that wants a notebook
in fast mode sets ``FAST = True`` there, exactly as a student would.
"""
from __future__ import annotations

import re

SETTINGS_ID = "settings"


def settings_cell(nb):
    """The notebook's settings cell (``KeyError`` where it has none)."""
    for cell in nb.cells:
        if cell.get("id") == SETTINGS_ID:
            return cell
    raise KeyError("the notebook has no settings cell")


def with_settings(nb, **values):
    """``nb`` with the settings cell's ``NAME = ...`` lines set to ``repr(value)`` (``FAST=True``); returns ``nb``."""
    cell = settings_cell(nb)
    for name, value in values.items():
        pattern = re.compile(rf"^({re.escape(name)}\s*=\s*)[^#\n]*?(\s*(#.*)?)$", re.M)
        cell.source, n = pattern.subn(lambda m: f"{m.group(1)}{value!r}{m.group(2)}", cell.source, count=1)
        if n != 1:
            raise KeyError(f"the settings cell has no line {name} = ...")
    return nb
