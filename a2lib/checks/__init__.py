"""Helpers that the notebooks' test cells call (no solutions: they check, load and compare)."""
