"""Tables printed by the command line: every command ends with one."""
from __future__ import annotations


def print_table(title: str, table) -> None:
    """Print a pandas table under ``title`` (``(nothing)`` when empty), wide enough to read in a terminal."""
    import pandas as pd

    print(f"\n{title}")
    if table is None or len(table) == 0:
        print("  (nothing)")
        return
    with pd.option_context("display.width", 160, "display.max_colwidth", 70, "display.max_rows", 500):
        print(table.to_string(index=isinstance(table.index, pd.Index) and table.index.name is not None))
