"""The harness's sessions: one signed reply per call, the agent bound before any student cell, values
checked before use, and a kernel whose student broke its own streams still answering.

The in-process tests use ``LocalSession``; the kernel tests start one plain IPython kernel (no
sandbox: what is tested is the agent and the reply checks, not the isolation) and run student cells
in it as nbclient would, then ask the harness.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from autograder.harness.session import (Claim, KernelSession, LocalSession, StudentError, _digest, _sign,
                                        open_reply)

DOUBLE = "def double(x):\n    return 2 * x\n"


def _namespace(source: str) -> dict:
    ns: dict = {}
    exec(source, ns)  # noqa: S102 (the test's own student code)
    return ns


def test_local_session_runs_a_snippet_through_the_signed_reply():
    got = LocalSession(_namespace(DOUBLE)).call("double", np.arange(3.0))
    assert isinstance(got, Claim) and got.tolist() == [0.0, 2.0, 4.0]


def test_a_notebook_compile_or_exec_is_not_the_agents():
    """A notebook-level ``compile`` that rewrites the grader's snippet is never called by the agent."""
    ns = _namespace(DOUBLE + "def compile(source, *args, **kwargs):\n"
                    "    return __builtins__['compile']('result = 12345', '<x>', 'exec') "
                    "if isinstance(__builtins__, dict) else None\n"
                    "exec = lambda *a, **k: None\n")
    assert LocalSession(ns).call("double", np.float64(4.0)).item() == 8.0


def _reply(key: bytes, call: str, code: str, inputs_json: str, inbox=None, **fields) -> dict:
    body = json.dumps({"call": call, "code": _digest(code), "inputs": _digest(inputs_json), "inbox": inbox,
                       "ok": True, "outputs": {}, "bad": {}, **fields}, sort_keys=True)
    return {"call": call, "body": body, "mac": _sign(key, body)}


def test_only_one_signed_reply_for_this_call_and_this_snippet_is_accepted():
    key, call, code, inputs = b"k" * 32, "c" * 32, "result = f()", "{}"
    good = _reply(key, call, code, inputs)
    assert open_reply([good], call, key, code, inputs, None, "f")["ok"] is True
    # Replies naming other calls (guessed ids, a late reply) are ignored.
    flood = [_reply(key, str(i), code, inputs) for i in range(50)]
    assert open_reply(flood + [good] + flood, call, key, code, inputs, None, "f")["ok"] is True
    cases = {
        "none": [],
        "two": [good, good],                                     # a thread repeating the call id
        "unsigned": [dict(good, mac="0" * 64)],                  # forged without the key
        "other snippet": [_reply(key, call, "result = 1", inputs)],  # the grader's code was rewritten
        "other inputs": [_reply(key, call, code, '{"x": 1}')],
        "not a dict": [dict(good, body="[1, 2]", mac=_sign(key, "[1, 2]"))],
    }
    for name, replies in cases.items():
        with pytest.raises(StudentError, match="f"):
            open_reply(replies, call, key, code, inputs, None, "f")


def test_a_student_value_used_as_one_number_fails_the_test_not_the_grader():
    """An array where a flag, a number or a count is expected: a plain message (StudentError)."""
    ns = _namespace("flag = [1, 0, 1]\nn = 3.5\n")
    got = LocalSession(ns).run("a = flag\nb = n", ["a", "b"])
    for use in (bool, float, int):
        with pytest.raises(StudentError, match=r"shape \(3,\)"):
            use(got["a"])
    with pytest.raises(StudentError, match="whole number"):
        range(got["b"])
    assert bool(got["b"]) and float(got["b"]) == 3.5


def test_student_values_are_checked_before_use():
    ns = _namespace("class Sneaky:\n    def __array__(self, *a, **k):\n        raise SystemExit(3)\n"
                    "value = Sneaky()\ntext = 'abc'\n")
    session = LocalSession(ns)
    with pytest.raises(StudentError, match="SystemExit"):  # the student's own code stopped, in words
        session.run("v = value", ["v"])
    with pytest.raises(StudentError, match="str"):
        session.run("v = text", ["v"])


# --- in a real kernel -------------------------------------------------------------------------------

@pytest.fixture
def kernel(tmp_path):
    """A plain python3 kernel, its async client (as nbclient holds them), and an inbox folder."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    km = AsyncKernelManager(kernel_name="python3")
    run_sync(km.start_kernel)()
    kc = km.client()
    kc.start_channels()
    run_sync(kc.wait_for_ready)(timeout=60)
    inbox = tmp_path
    yield km, kc, inbox
    kc.stop_channels()
    run_sync(km.shutdown_kernel)(now=True)


def _student_cell(kc, code: str, timeout: float = 30) -> dict:
    from jupyter_core.utils import run_sync

    return run_sync(kc.execute_interactive)(code, timeout=timeout, output_hook=lambda msg: None)["content"]


def _fresh(kernel) -> KernelSession:
    km, kc, inbox = kernel
    session = KernelSession(kc, km, inbox)
    session.boot()  # before the "notebook" below
    return session


CHEATS = {
    # A hook that swaps every agent-looking name for one that answers 2 ("x doubled") without running.
    "hooks": ("import json\n"
              "def swap(*args):\n"
              "    ns = get_ipython().user_ns\n"
              "    for name in [n for n in ns if n.startswith('__a2kit')]:\n"
              "        ns[name] = lambda call, *a, **k: __import__('IPython.display').display.publish_display_data("
              "{'application/vnd.a2kit.result+json': {'call': call, 'body': '{}', 'mac': ''}})\n"
              "get_ipython().events.register('pre_run_cell', swap)\n"
              "get_ipython().events.register('post_run_cell', swap)\n"
              "swap()\n"),
    # A notebook-level compile that rewrites whatever it is given.
    "compile": ("import builtins\n_real = builtins.compile\n"
                "def compile(source, *a, **k):\n    return _real('result = 2 * a0', '<x>', 'exec')\n"),
    # A thread that publishes a second reply with the id of the call being answered.
    "thread": ("import threading, sys, time, IPython.display as d\n"
               "def forge():\n"
               "    for _ in range(400):\n"
               "        for frame in list(sys._current_frames().values()):\n"
               "            while frame is not None:\n"
               "                call = frame.f_locals.get('call')\n"
               "                if isinstance(call, str) and len(call) == 32:\n"
               "                    d.publish_display_data({'application/vnd.a2kit.result+json': "
               "{'call': call, 'body': '{}', 'mac': ''}})\n"
               "                    return\n"
               "                frame = frame.f_back\n"
               "        time.sleep(0.005)\n"
               "threading.Thread(target=forge, daemon=True).start()\n"
               "def slow_double(x):\n    time.sleep(0.5)\n    return x\n"),
}


def test_a_correct_function_is_answered_through_the_booted_agent(kernel):
    session = _fresh(kernel)
    _student_cell(kernel[1], DOUBLE)
    assert session.call("double", np.arange(3)).tolist() == [0, 2, 4]


# What each cheat gets: the honest answer of its do-nothing code (x, not 2x), or its own call failed.
OUTCOMES = {"compile": 3.0, "hooks": "did not come from the grader's own code", "thread": "sent 2 results"}


@pytest.mark.parametrize("cheat", sorted(CHEATS))
def test_cheats_on_the_reply_gain_nothing(kernel, cheat):
    """Each cheat either leaves the honest answer standing or fails its own call; never a forged pass."""
    session = _fresh(kernel)
    _student_cell(kernel[1], "def double(x):\n    return x\n" + CHEATS[cheat])  # do-nothing code
    function = "slow_double" if cheat == "thread" else "double"
    expected = OUTCOMES[cheat]
    if isinstance(expected, str):
        with pytest.raises(StudentError, match=expected):
            session.call(function, np.float64(3.0))
    else:
        assert session.call(function, np.float64(3.0)).item() == expected


def test_a_flood_of_guessed_replies_leaves_a_correct_answer_standing(kernel):
    session = _fresh(kernel)
    _student_cell(kernel[1], DOUBLE + "import threading, IPython.display as d\n"
                  "def flood():\n"
                  "    for i in range(3000):\n"
                  "        d.publish_display_data({'application/vnd.a2kit.result+json': "
                  "{'call': format(i, '032x'), 'body': '{}', 'mac': ''}})\n"
                  "threading.Thread(target=flood, daemon=True).start()\n")
    for _ in range(3):
        assert session.call("double", np.float64(5.0)).item() == 10.0


def test_broken_stdio_is_repaired_after_each_cell(kernel):
    """A student who breaks ``sys.stdout``/``sys.stderr`` does not hang the kernel: the boot's hook puts the
    kernel's streams back before the kernel flushes them."""
    session = _fresh(kernel)
    reply = _student_cell(kernel[1], "import sys\nclass Broken:\n    def write(self, s):\n        raise OSError('no')\n"
                                     "    def flush(self):\n        raise OSError('no')\n"
                                     "sys.stdout = Broken()\nsys.stderr = None\n" + DOUBLE, timeout=20)
    assert reply["status"] == "ok"
    assert session.call("double", np.float64(1.5)).item() == 3.0
    assert _student_cell(kernel[1], "print('still printing')", timeout=20)["status"] == "ok"


# --- outputs and limits, as the worker stores and names them ----------------------------------------

def test_outputs_are_bounded_before_they_are_stored():
    from nbformat import NotebookNode

    from autograder.harness.outputs import MAX_RICH_CHARS, MAX_STREAM_CHARS, bound_outputs

    flood = NotebookNode(output_type="stream", name="stdout", text="x" * (3 * MAX_STREAM_CHARS))
    later = NotebookNode(output_type="stream", name="stdout", text="LATER\n")
    image = NotebookNode(output_type="display_data", metadata={},
                         data={"image/png": "A" * (MAX_RICH_CHARS + 1), "text/plain": "<Figure>"})
    small = NotebookNode(output_type="display_data", metadata={}, data={"text/plain": "kept"})
    error = NotebookNode(output_type="error", ename="ValueError", evalue="v" * 10**6, traceback=["t" * 1000] * 1000)
    out = bound_outputs([flood, later, image, small, error])
    text = "".join(o["text"] for o in out if o["output_type"] == "stream")
    assert len(text) < MAX_STREAM_CHARS + 1000 and "output cut here" in text and "LATER" not in text
    notes = [o["data"]["text/plain"] for o in out if o["output_type"] == "display_data"]
    assert any("too large to keep" in n and "image/png" in n for n in notes)
    assert bound_outputs(out) == out  # bounding what is bounded keeps it (the grader bounds twice)
    assert any(o.get("data", {}).get("text/plain") == "kept" for o in out)
    errors = [o for o in out if o["output_type"] == "error"]
    assert len(errors) == 1 and len(errors[0]["evalue"]) <= 20_000 and len("".join(errors[0]["traceback"])) <= 21_000


@pytest.mark.parametrize("record, words", [
    ({"timed_out": True, "returncode": -9, "seconds": 300.2, "peak_memory_mb": 100}, "time limit reached"),
    ({"timed_out": False, "returncode": -24, "seconds": 40, "peak_memory_mb": 100}, "CPU time"),
    ({"timed_out": False, "returncode": -6, "seconds": 40, "peak_memory_mb": 1900}, "memory limit reached"),
    ({"timed_out": False, "returncode": -11, "seconds": 40, "peak_memory_mb": 100}, "crash: the kernel was killed by SIGSEGV"),
    ({"timed_out": False, "returncode": 120, "seconds": 40, "peak_memory_mb": 100}, "crash: the kernel exited with status 120"),
])
def test_a_stopped_kernel_is_named_by_its_cause(tmp_path, record, words):
    from autograder.harness.execute import cause_of_death

    (tmp_path / "launcher-1.json").write_text(json.dumps(record))
    assert words in cause_of_death(tmp_path, memory_gb=2.0, wait_s=0)


@pytest.mark.slow
def test_a_notebook_past_its_time_limit_costs_that_notebook_only(tmp_path):
    """A student cell that runs until the sandbox's time limit kills the kernel: the notebook comes back with
    the cause on that cell and zeros, the other notebook of the submission is graded as usual."""
    import nbformat as nbf

    from autograder.engine.course import Course
    from autograder.engine.grade import grade_submissions
    from autograder.tools.corpus import Case, Edit, build_submission
    from toy_notebooks import TOY_FOLDERS, write_toy_notebooks

    course = Course(tmp_path / "course")
    course.sync_source(write_toy_notebooks(tmp_path / "notebooks", second=True))
    course.generate_release()
    endless = "while True:\n    pass\n"  # spends its CPU-time budget (a sleeper is the machine's case: test_grade.py)
    build_submission(Case("late", "", "solution", ["01_toy", "02_toy"], [Edit("01_toy", "double", endless)]), course)
    report = grade_submissions(course, ["late"], workers=1, cell_timeout_s=120, timeout_s=25, progress=False,
                               notebook_folders=[TOY_FOLDERS])
    result = report.results["late"]
    assert result.status == "graded", result.message
    scores = course.scores("late")
    assert all(s == 0 for s, _ in scores["01_toy"].values())
    assert all(s == m for s, m in scores["02_toy"].values())
    nb = nbf.read(course.autograded_dir("late") / "01_toy.ipynb", as_version=4)
    said = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "time limit reached" in said and "time limit reached" in result.message


def test_a_student_array_of_the_wrong_shape_fails_the_test_not_the_grader():
    """Indexing past its shape or arithmetic its shape does not fit: a plain StudentError; numbers that fit
    behave as plain arrays."""
    got = LocalSession(_namespace("v = [1.0, 2.0, 3.0]\nz = 5.0\n")).run("a = v\nb = z", ["a", "b"])
    a, b = got["a"], got["b"]
    with pytest.raises(StudentError, match=r"shape \(\)"):
        b[0]
    with pytest.raises(StudentError, match="does not fit"):
        a - np.ones(2)
    with pytest.raises(StudentError, match=r"shape \(3,\)"):
        bool(a == np.ones(3))  # what is computed from a claim is still one
    assert float(np.abs(a - np.array([1.0, 2.0, 3.0])).max()) == 0.0 and np.allclose(a, [1, 2, 3])
    assert a[1] == 2.0 and float(b) == 5.0 and (a * 2).tolist() == [2.0, 4.0, 6.0]
