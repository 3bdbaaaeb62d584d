"""Hidden tests of the toy notebook ``01_toy`` (``tests/toy_notebooks.py``): ``double(x)`` at a few points."""
from __future__ import annotations

from autograder.harness import Context, Fail, grades


def _check(ctx: Context, x: int) -> None:
    got = ctx.session.call("double", x, what=f"double({x})")
    if got.shape != () or float(got) != 2 * x:
        hint = ": negative numbers" if x < 0 else ""
        raise Fail(f"double({x}) should be {2 * x}, got {got.tolist()}{hint}")


@grades("01_toy", "test_double")
def double_public(ctx: Context) -> str:
    _check(ctx, 1)
    return "double(1) is right."


@grades("01_toy", "test_double_hidden")
def double_hidden(ctx: Context) -> str:
    for x in (3, -7, int(ctx.rng().integers(-100, 100))):
        _check(ctx, x)
    return "double is right on the hidden cases."
