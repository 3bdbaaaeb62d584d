"""Hidden tests of the toy notebook ``02_toy`` (``tests/toy_notebooks.py``): ``triple(2)``."""
from __future__ import annotations

from autograder.harness import Context, Fail, grades


@grades("02_toy", "test_triple")
def triple(ctx: Context) -> str:
    got = ctx.session.call("triple", 2, what="triple(2)")
    if got.shape != () or float(got) != 6:
        raise Fail(f"triple(2) should be 6, got {got.tolist()}")
    return "triple(2) is right."
