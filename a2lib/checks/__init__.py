"""Helpers that the notebooks' test cells call (no solutions: they check, load and compare)."""


def fail_if(message: str | None) -> None:
    """Raise a message builder's message (what a check cell shows) as an AssertionError; nothing for None."""
    if message:
        raise AssertionError(message)


def not_written_message(what: str) -> str:
    """What a check says while the exercise ``what`` still holds the release's stub."""
    return (f"{what} is not written yet (it still raises NotImplementedError): fill in the cell above where it says "
            f"YOUR CODE HERE, delete the raise NotImplementedError() line, run the cell, then run this check again.")


def call(what: str, func, *args, **kwargs):
    """``func(*args, **kwargs)``, the student's code; its NotImplementedError becomes :func:`not_written_message`."""
    try:
        return func(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError(not_written_message(what)) from None
