"""Sessions: how the trusted harness runs grader snippets against a student's notebook.

A snippet is a few lines of grader code (``conv = Conv2D(3, 8, 3); out = conv.forward(x)``) run
in the student's namespace with some inputs; the session returns the named results as plain
numeric arrays. ``KernelSession`` does it in the student's sandboxed kernel while nbgrader grades;
``LocalSession`` does it in this process on a namespace (the source notebook's solution, in tests).
Both go through the same kernel-side code (``agent.py``) and the same wire format, so a test that
passes locally passes in the kernel.
"""
from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import os
import secrets
import tempfile
import time
from pathlib import Path

import numpy as np

from . import agent
from .wire import WireError, decode

BOOT_SOURCE = inspect.getsource(agent.__a2kit_boot)
INSTALL_SOURCE = inspect.getsource(agent.__a2kit_install)
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


def _sign(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def open_reply(replies: list, call: str, key: bytes, code: str, inputs_json: str, inbox, what: str) -> dict:
    """The one reply to ``call``, checked before anything of it is used; StudentError otherwise.

    Exactly one message may name the call; it must be signed with the boot key and say it ran this
    snippet on these inputs. Messages naming other calls (a flood of guesses, a late reply) are ignored.
    """
    mine = [r for r in replies if isinstance(r, dict) and r.get("call") == call]
    if not mine:
        raise StudentError(f"{what}: the kernel gave no result (the grader's own code was stopped or replaced).")
    if len(mine) > 1:
        raise StudentError(f"{what}: the kernel sent {len(mine)} results for one question; only the grader's own "
                           "code may answer (something in the notebook publishes results of its own).")
    body, mac = mine[0].get("body"), mine[0].get("mac")
    if not (isinstance(body, str) and isinstance(mac, str) and hmac.compare_digest(mac, _sign(key, body))):
        raise StudentError(f"{what}: the result did not come from the grader's own code (a replaced function, "
                           "a cell hook or a thread answered instead).")
    try:
        reply = json.loads(body)
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or reply.get("call") != call or reply.get("code") != _digest(code) \
            or reply.get("inputs") != _digest(inputs_json) or reply.get("inbox") != inbox:
        raise StudentError(f"{what}: the kernel answered a different question than the grader asked "
                           "(the grader's snippet or its inputs were changed on the way).")
    return reply


def _outputs(reply: dict, outputs, what: str) -> dict[str, np.ndarray]:
    """The decoded outputs of an agent reply; StudentError when the student's code failed."""
    if not isinstance(reply, dict):
        raise StudentError(f"{what}: the kernel sent no usable result.")
    if reply.get("ok") is not True:
        raise StudentError(f"{what} raised {str(reply.get('error'))[:80]}: {str(reply.get('message'))[:1800]}")
    bad = reply.get("bad")
    bad = bad if isinstance(bad, dict) else {}
    encoded = reply.get("outputs")
    encoded = encoded if isinstance(encoded, dict) else {}
    for name in outputs:
        if name in bad:
            raise StudentError(f"{what} gave {str(bad[name])[:200]} where numbers (an array or tensor) were expected.")
    got = {}
    for name in outputs:
        try:
            got[name] = decode(encoded.get(name)).view(Claim)
        except WireError as exc:
            raise StudentError(f"{what} gave a result that is not a plain numeric array ({exc}).") from None
    return got


class NotOneValue(StudentError, TypeError, ValueError):
    """An array read as one number: the student's failure (a Fail), and the TypeError/ValueError numpy
    itself raises there, so that code which falls back on it (``bytes(array)``) still does."""


class BadShape(StudentError, ValueError, IndexError):
    """A student's array whose shape the grader's arithmetic or indexing cannot take: the student's
    failure, and the ValueError/IndexError numpy itself raises there."""


def _plain(value):
    """``value`` with every Claim in it (a tuple of outputs too) as a plain ndarray view."""
    if isinstance(value, Claim):
        return value.view(np.ndarray)
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


class Claim(np.ndarray):
    """A numeric array the student's kernel returned: a plain array, except that reading it as one
    number (``if flag:``, ``float(x)``, ``int(n)``, an index) when it holds several, indexing it past its
    shape, or arithmetic its shape does not fit (``got - expected``), fails the test with plain words
    instead of crashing the grader. What is computed from it is a Claim too."""

    def __getitem__(self, key):
        try:
            return super().__getitem__(key)
        except IndexError as exc:
            raise BadShape(f"the notebook gave an array of shape {self.shape}, which the grader could not "
                           f"index ({exc}).") from None

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if "out" in kwargs:
            kwargs["out"] = _plain(kwargs["out"])
        try:
            result = getattr(ufunc, method)(*_plain(inputs), **kwargs)
        except ValueError as exc:
            shapes = ", ".join(str(np.shape(i)) for i in inputs)
            raise BadShape(f"the notebook gave an array whose shape does not fit ({shapes}: {exc}).") from None
        if isinstance(result, np.ndarray) and type(result) is np.ndarray:
            return result.view(Claim)
        return result

    def _one(self, as_what: str):
        if self.size != 1:
            raise NotOneValue(f"the notebook gave an array of shape {self.shape} where one {as_what} was expected.")
        return self.view(np.ndarray).reshape(())[()]

    def __bool__(self):
        return bool(self._one("yes/no value"))

    def __float__(self):
        return float(self._one("number"))

    def __int__(self):
        return int(self._one("whole number"))

    def __index__(self):
        value = self._one("whole number")
        if not np.issubdtype(np.asarray(value).dtype, np.integer):
            raise NotOneValue(f"the notebook gave {value!r} where a whole number was expected.")
        return int(value)


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
    """Snippets run in this process against ``namespace`` (e.g. a source notebook's solution), through the
    same boot, agent, signature and checks as in a kernel."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        self._key = secrets.token_bytes(32)
        self._replies: list = []
        holder: dict = {}
        exec(BOOT_SOURCE, holder)  # noqa: S102 (the kit's own agent)
        self._agent = holder["__a2kit_boot"](None, self._key.hex(), INSTALL_SOURCE,
                                             lambda data: self._replies.append(data[agent.MIME]))

    def _call(self, code, outputs, arrays, small, timeout, what) -> dict:
        self._replies.clear()
        call, inputs_json = secrets.token_hex(16), json.dumps(small)
        inbox = None
        with tempfile.TemporaryDirectory(prefix="a2kit-inbox-") as tmp:
            if arrays:
                inbox = os.path.join(tmp, "inputs.npz")
                np.savez(inbox, **arrays)
            self._agent(call, inputs_json, inbox, code, outputs, self.namespace)
        # Through the wire format and back, exactly as from a kernel.
        replies = json.loads(json.dumps(self._replies))
        return open_reply(replies, call, self._key, code, inputs_json, inbox, what)


class KernelSession(Session):
    """Snippets run in the student's (sandboxed) Jupyter kernel, from a synchronous caller.

    ``client``/``manager`` are nbclient's async kernel client and manager; ``inbox`` is a folder the
    kernel can read but not write (inputs travel there as ``.npz``, never pickled). :meth:`boot` must
    run before the first student cell (``HarnessExecute`` does it): the agent is bound then, while the
    kernel is pristine. Every request runs ``silent`` (no ``pre_run_cell``/``post_run_cell`` hooks).
    """

    def __init__(self, client, manager, inbox: str | Path, why_dead=None):
        self.client, self.manager, self.inbox = client, manager, Path(inbox)
        self.why_dead = why_dead       # () -> the cause of a kernel's death in words ("" when unknown)
        self.dead: str | None = None   # why the kernel can no longer be used
        self._key = secrets.token_bytes(32)
        self._name = f"__a2kit_{secrets.token_hex(8)}"   # where the boot left the agent
        self._booted = False

    def boot(self) -> None:
        """Bind the agent in the kernel (before any student cell runs); marks the session dead on failure."""
        from jupyter_core.utils import run_sync

        if self._booted or self.dead:
            return
        source = (BOOT_SOURCE + f"\n{self._name} = __a2kit_boot(get_ipython(), {self._key.hex()!r}, "
                  f"{INSTALL_SOURCE!r}, __import__('IPython.display').display.publish_display_data)\n"
                  "del __a2kit_boot\n")
        try:
            run_sync(self._execute)(source, 60.0, "the grader's set-up")
        except StudentError as exc:
            self.dead = f"the grader could not set up in this kernel ({exc})"
            return
        self._booted = True

    def _call(self, code, outputs, arrays, small, timeout, what) -> dict:
        from jupyter_core.utils import run_sync

        self.boot()
        if self.dead:
            raise StudentError(f"{what} was not run: {self.dead}")
        call, inputs_json = secrets.token_hex(16), json.dumps(small)
        inbox = None
        if arrays:
            inbox = self.inbox / f"call-{call}.npz"
            with open(inbox, "xb") as f:  # a new file in a folder only the grader writes
                np.savez(f, **arrays)
            os.chmod(inbox, 0o644)
            inbox = str(inbox)
        try:
            request = f"{self._name}({call!r}, {inputs_json!r}, {inbox!r}, {code!r}, {list(outputs)!r})"
            replies = run_sync(self._execute)(request, timeout, what, call)
        finally:
            if inbox:
                Path(inbox).unlink(missing_ok=True)
        return open_reply(replies, call, self._key, code, inputs_json, inbox, what)

    async def _execute(self, code: str, timeout: float, what: str, call: str | None = None) -> list:
        """Execute ``code`` silently; return the agent's replies naming ``call``. Marks the session dead
        when the kernel is lost."""
        import queue

        msg_id = self.client.execute(code, silent=True, store_history=False, allow_stdin=False,
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
                    cause = self._cause()
                    self.dead = f"the kernel stopped while running {what} ({cause})"
                    raise StudentError(f"{what}: the kernel stopped ({cause}).") from None
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            data = content.get("data") if kind == "display_data" and isinstance(content, dict) else None
            reply = data.get(agent.MIME) if isinstance(data, dict) else None
            if isinstance(reply, dict) and reply.get("call") == call:  # other calls' (late, guessed) are ignored
                size += len(str(reply.get("body", "")))
                if size > MAX_REPLY_BYTES:
                    raise StudentError(f"{what} returned more than {MAX_REPLY_BYTES // 2**20} MB of numbers.")
                replies.append(reply)
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        await self._drain_reply(msg_id)
        return replies
    def _cause(self) -> str:
        """Why the kernel is gone, as its launcher recorded it: time, memory or a crash."""
        try:
            cause = self.why_dead() if self.why_dead else ""
        except Exception:
            cause = ""
        return cause or "a crash, or the memory limit"

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
