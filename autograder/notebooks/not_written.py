"""The hidden tests' wrapper for an exercise the student has not written yet (shared by the notebooks)."""
from __future__ import annotations

import functools

from a2lib.checks import not_written_message
from autograder.harness import Context, Fail, StudentError


def explain_not_written(test):
    """The hidden test ``test``, where an exercise still raising NotImplementedError is named in plain words."""
    @functools.wraps(test)
    def explained(ctx: Context):
        try:
            return test(ctx)
        except StudentError as exc:
            what, raised, _ = str(exc).partition(" raised NotImplementedError")
            if raised:
                raise Fail(not_written_message(what)) from None
            raise
    return explained
