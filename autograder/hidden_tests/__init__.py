"""The hidden tests of each notebook: trusted code that decides every autograded point.

One module per notebook (``theory``, ``numpy_convnet``, ``cnn_design``, ``data_wrangling``); each
function is registered with :func:`autograder.harness.grades` for one grade cell. They run in the
grader's process, reach the student's code only through ``ctx.session`` and compare its numbers
with values computed or loaded here. Students never receive this package.
"""
from autograder.harness import Fail


def check(message: str | None) -> None:
    """Fail the test with a message builder's message (plain words for the student); nothing for None."""
    if message:
        raise Fail(message)
