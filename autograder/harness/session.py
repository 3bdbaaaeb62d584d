"""Sessions: how the trusted harness runs grader snippets against a student's notebook.

A snippet is a few lines of grader code (``conv = Conv2D(3, 8, 3); out = conv.forward(x)``) run
in the student's namespace with some inputs; the session returns the named results as plain
numeric arrays. ``KernelSession`` does it in the student's sandboxed kernel while nbgrader grades;
``LocalSession`` does it in this process on a namespace (the source notebook's solution, in tests).
Both go through the same kernel-side code (``agent.py``) and the same wire format, so a test that
passes locally passes in the kernel.
"""
from __future__ import annotations

import inspect
import itertools
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from . import agent
from .wire import WireError, decode

AGENT_SOURCE = inspect.getsource(agent.__a2kit_install)
MAX_REPLY_BYTES = 512 * 2**20   # all outputs of one snippet together
DEFAULT_TIMEOUT_S = 120.0


class Fail(AssertionError):
    """A test failed; the message is for the student (plain words: what is wrong and what to do)."""


class StudentError(Fail):
    """The student's code raised, hung, died, or returned something that is not numbers."""


def _json_inputs(inputs: dict) -> tuple[dict, dict]:
    """Split snippet inputs into numpy arrays (sent as files) and small JSON-able values."""
    arrays = {k: v for k, v in inputs.items() if isinstance(v, np.ndarray)}
    small = {k: v for k, v in inputs.items() if k not in arrays}
    try:
        json.dumps(small)
    except TypeError as exc:
        raise TypeError(f"snippet inputs must be arrays or JSON values: {exc}") from None
    return arrays, small


def _outputs(reply: dict, outputs, what: str) -> dict[str, np.ndarray]:
    """The decoded outputs of an agent reply; StudentError when the student's code failed."""
    if not isinstance(reply, dict):
        raise StudentError(f"{what}: the kernel sent no usable result.")
    if not reply.get("ok"):
        raise StudentError(f"{what} raised {str(reply.get('error'))[:80]}: {str(reply.get('message'))[:1800]}")
    bad = reply.get("bad") or {}
    for name in outputs:
        if name in bad:
            raise StudentError(f"{what} gave {str(bad[name])[:200]} where numbers (an array or tensor) were expected.")
    got = {}
    for name in outputs:
        try:
            got[name] = decode((reply.get("outputs") or {}).get(name))
        except WireError as exc:
            raise StudentError(f"{what} gave a result that is not a plain numeric array ({exc}).") from None
    return got


class Session:
    """Run grader snippets against the student's names. Subclasses implement ``_call``."""

    def run(self, code: str, outputs=(), *, what: str = "your code", timeout: float | None = None,
            **inputs) -> dict[str, np.ndarray]:
        """Run ``code`` with ``inputs`` bound; return ``{name: array}`` for each name in ``outputs``.

        ``what`` names the student's code in messages ("Conv2D.forward"). Raises StudentError when
        the code raises, runs past ``timeout`` or leaves a non-numeric value in an output name.
        """
        arrays, small = _json_inputs(inputs)
        reply = self._call(code, list(outputs), arrays, small, timeout or DEFAULT_TIMEOUT_S, what)
        return _outputs(reply, outputs, what)

    def call(self, function: str, *args, what: str | None = None, timeout: float | None = None) -> np.ndarray:
        """``function(*args)`` in the student's namespace, as one numeric array."""
        names = [f"a{i}" for i in range(len(args))]
        code = f"result = {function}({', '.join(names)})"
        return self.run(code, ["result"], what=what or function, timeout=timeout, **dict(zip(names, args)))["result"]

    def _call(self, code, outputs, arrays, small, timeout, what) -> dict:
        raise NotImplementedError


class LocalSession(Session):
    """Snippets run in this process against ``namespace`` (e.g. a source notebook's solution)."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        holder: dict = {}
        exec(AGENT_SOURCE, holder)  # noqa: S102 (the kit's own agent)
        self._replies: list = []
        self._run = holder["__a2kit_install"](namespace, lambda data: self._replies.append(data[agent.MIME]))
        self._ids = itertools.count()

    def _call(self, code, outputs, arrays, small, timeout, what) -> dict:
        self._replies.clear()
        inbox = None
        with tempfile.TemporaryDirectory(prefix="a2kit-inbox-") as tmp:
            if arrays:
                inbox = os.path.join(tmp, "inputs.npz")
                np.savez(inbox, **arrays)
            self._run(next(self._ids), json.loads(json.dumps(small)), inbox, code, outputs)
        # Through the wire format and back, exactly as from a kernel.
        return json.loads(json.dumps(self._replies[-1])) if self._replies else {}


class KernelSession(Session):
    """Snippets run in the student's (sandboxed) Jupyter kernel, from a synchronous caller.

    ``client``/``manager`` are nbclient's async kernel client and manager; ``inbox`` is a folder the
    kernel can read but not write (inputs travel there as ``.npz``, never pickled).
    """

    def __init__(self, client, manager, inbox: str | Path):
        self.client, self.manager, self.inbox = client, manager, Path(inbox)
        self.dead: str | None = None   # why the kernel can no longer be used
        self._installed = False
        self._ids = itertools.count()

    def _call(self, code, outputs, arrays, small, timeout, what) -> dict:
        from jupyter_core.utils import run_sync

        if self.dead:
            raise StudentError(f"{what} was not run: {self.dead}")
        call = next(self._ids)
        inbox = None
        if arrays:
            inbox = self.inbox / f"call-{call}.npz"
            with open(inbox, "xb") as f:  # a new file in a folder only the grader writes
                np.savez(f, **arrays)
            os.chmod(inbox, 0o644)
        try:
            if not self._installed:
                install = AGENT_SOURCE + ("\n__a2kit_run = __a2kit_install(get_ipython().user_ns, "
                                          "__import__('IPython.display').display.publish_display_data)\n"
                                          "del __a2kit_install\n")
                run_sync(self._execute)(install, 60.0, "the grader's set-up")
                self._installed = True
            request = (f"__a2kit_run({call}, __import__('json').loads({json.dumps(json.dumps(small))}), "
                       f"{str(inbox) if inbox else None!r}, {code!r}, {outputs!r})")
            replies = run_sync(self._execute)(request, timeout, what)
        finally:
            if inbox:
                inbox.unlink(missing_ok=True)
        mine = [r for r in replies if isinstance(r, dict) and r.get("call") == call]
        return mine[-1] if mine else {"ok": False, "error": "NoResult",
                                      "message": "the kernel gave no result (was __a2kit_run replaced?)"}

    async def _execute(self, code: str, timeout: float, what: str) -> list:
        """Execute ``code``; return the agent's replies. Marks the session dead when the kernel is lost."""
        import queue

        msg_id = self.client.execute(code, silent=False, store_history=False, allow_stdin=False,
                                     stop_on_error=False)
        replies, size, deadline = [], 0, time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                await self._interrupt(msg_id)
                raise StudentError(f"{what} did not finish within {timeout:.0f} s (an endless loop, or far too "
                                   "slow: vectorize it).")
            try:
                msg = await self.client.get_iopub_msg(timeout=min(remaining, 1.0))
            except queue.Empty:
                if not await self.manager.is_alive():
                    self.dead = f"the kernel died while running {what} (memory limit, or a crash)"
                    raise StudentError(f"{what}: the kernel died (memory limit reached, or a crash).") from None
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "display_data" and agent.MIME in content.get("data", {}):
                size += len(json.dumps(content["data"][agent.MIME]))
                if size > MAX_REPLY_BYTES:
                    raise StudentError(f"{what} returned more than {MAX_REPLY_BYTES // 2**20} MB of numbers.")
                replies.append(content["data"][agent.MIME])
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        await self._drain_reply(msg_id)
        return replies

    async def _drain_reply(self, msg_id: str, timeout: float = 10.0) -> None:
        import queue

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = await self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                return
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return

    async def _interrupt(self, msg_id: str, grace_s: float = 10.0) -> None:
        """Interrupt a snippet that ran too long; a kernel that does not come back is marked dead."""
        import queue

        try:
            await self.manager.interrupt_kernel()
        except Exception:
            pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                msg = await self.client.get_iopub_msg(timeout=1.0)
            except queue.Empty:
                continue
            if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "status" \
                    and msg["content"].get("execution_state") == "idle":
                await self._drain_reply(msg_id)
                return
        self.dead = "the kernel stopped responding after a time limit in an earlier test"
