"""Helpers that the notebooks' test cells call (no solutions: they check, load and compare)."""


def fail_if(message: str | None) -> None:
    """Raise a message builder's message (what a check cell shows) as an AssertionError; nothing for None."""
    if message:
        raise AssertionError(message)
