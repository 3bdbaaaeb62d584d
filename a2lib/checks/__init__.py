"""Helpers that the notebooks' test cells call: they check and compare (no solutions; the workflow helpers are in a2lib.workflow)."""
