"""Kernel-side half of the harness: this file's *sources* are sent into the student's kernel.

``__a2kit_boot`` runs once in the kernel **before any student cell**. It binds what the agent relies
on while the kernel is still pristine: the builtins (``exec``, ``compile``, ``__import__``...), numpy,
the display publisher, the kernel's own ``sys.stdout``/``sys.stderr``, and a secret key the harness
drew for this notebook. It returns the one function the harness calls, under a name drawn per grading.

For every call that function builds a **fresh agent** (``__a2kit_install``, compiled at boot and
executed in a namespace whose builtins are the boot-time copy, never the notebook's names), runs the
grader's snippet against the notebook's names and publishes one reply: the named results as plain
numeric arrays, in a JSON ``body`` signed with the boot key (HMAC-SHA256 over the body, which itself
names the call id, the snippet and the inputs it ran). A notebook-level ``compile``, a cell hook that
swaps names, or a thread that publishes its own "reply" cannot produce a body the harness accepts.

It holds no reference value and decides nothing: whatever the student's code does can only change
what this kernel claims, which the trusted side then judges. It imports nothing of the instructor
kit (``autograder`` is not visible in the sandbox).
"""
MIME = "application/vnd.a2kit.result+json"


def __a2kit_boot(shell, key_hex, install_source, publish):
    """Bind the agent to the pristine kernel; returns ``agent(call, inputs_json, inbox, code, outputs)``.

    ``shell`` is the IPython shell (None in-process: then ``publish`` is the only way out and no stdio
    is repaired); ``install_source`` is the source of ``__a2kit_install``.
    """
    import base64
    import builtins
    import hashlib
    import hmac
    import json
    import sys
    import traceback

    import numpy as np

    mime = "application/vnd.a2kit.result+json"  # = MIME (this function is sent alone)
    pristine = dict(vars(builtins))           # the builtins as they are before any student cell
    code = compile(install_source, "<a2kit-agent>", "exec")
    key = bytes.fromhex(key_hex)
    user_ns = shell.user_ns if shell is not None else None
    stdout, stderr = sys.stdout, sys.stderr
    _exec, _getattr, _setattr, _dict = exec, getattr, setattr, dict

    def repair_stdio(*_):
        """Put the kernel's own streams back (a student's broken ``sys.stdout`` would hang the kernel)."""
        if _getattr(sys, "stdout", None) is not stdout:
            _setattr(sys, "stdout", stdout)
        if _getattr(sys, "stderr", None) is not stderr:
            _setattr(sys, "stderr", stderr)

    if shell is not None:  # after every cell, the student's included, before the kernel flushes them
        shell.events.register("post_execute", repair_stdio)

    def sign(body: str) -> str:
        return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()

    def agent(call, inputs_json, inbox, snippet, outputs, namespace=None):
        repair_stdio()
        ns = {"__builtins__": pristine, "__name__": "a2kit_agent"}
        _exec(code, ns)                        # a fresh agent for every call, from the boot-time code
        run = ns["__a2kit_install"](namespace if namespace is not None else user_ns, np, json, base64, hashlib,
                                    traceback, sys)
        reply = run(call, inputs_json, inbox, snippet, outputs)
        body = json.dumps(reply, sort_keys=True)
        publish({mime: {"call": call, "body": body, "mac": sign(body)}})

    return agent


def __a2kit_install(user_ns, np, json, base64, hashlib, traceback, sys):
    """One call's agent: ``run(call, inputs_json, inbox, code, outputs) -> reply`` (a JSON-able dict).

    Executed in a namespace whose builtins were copied at boot; the modules are the boot-time ones (a
    module the notebook swaps in ``sys.modules`` later is not used). The reply names the call, the
    snippet and the inputs it ran, so the harness can check that its own request was the one answered.
    """
    dtypes = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64"}
    missing = object()

    def as_numbers(value):
        """(encoded array, None) or (None, what the value was instead)."""
        if value is missing:
            return None, "nothing (the name was never set)"
        if value is None:
            return None, "None"
        torch = sys.modules.get("torch")
        try:
            if torch is not None and isinstance(value, torch.Tensor):
                value = value.detach().cpu()
                value = (value.float() if value.dtype in (torch.bfloat16,) else value).numpy()
            kind = type(value).__name__
            array = np.asarray(value)
            if type(array) is not np.ndarray or array.dtype.name not in dtypes:
                return None, f"a {kind}" + (f" of {array.dtype}" if isinstance(value, np.ndarray) else "")
            array = np.array(array, copy=True, order="C")  # (not ascontiguousarray: it makes 0-d arrays 1-d)
            return {"dtype": array.dtype.name, "shape": [int(d) for d in array.shape],
                    "data": base64.b64encode(array.tobytes()).decode()}, None
        except Exception as exc:
            return None, f"a value that could not be read as numbers ({type(exc).__name__})"

    def where(exc):
        """The innermost frame of the student's own code (a notebook cell), in words."""
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "ipykernel_" in f.filename
                  or f.filename.startswith("<ipython-input")]
        if not frames:
            return ""
        f = frames[-1]
        return f" (in {f.name}, line {f.lineno}: {(f.line or '').strip()[:120]})"

    def digest(text):
        return hashlib.sha256(text.encode()).hexdigest()

    def run(call, inputs_json, inbox, code, outputs):
        reply = {"call": call, "code": digest(code), "inputs": digest(inputs_json), "inbox": inbox,
                 "ok": True, "outputs": {}, "bad": {}}
        ns = dict(user_ns)
        ns.update(json.loads(inputs_json))
        try:
            if inbox:
                with np.load(inbox, allow_pickle=False) as arrays:
                    ns.update({k: arrays[k] for k in arrays.files})
            exec(compile(code, "<grader>", "exec"), ns)
            for name in outputs:
                encoded, instead = as_numbers(ns.get(name, missing))
                if encoded is None:
                    reply["bad"][name] = str(instead)
                else:
                    reply["outputs"][name] = encoded
        except BaseException as exc:  # the student's code raised (or was interrupted): report, never crash
            try:
                message = str(exc)[:1500] + where(exc)
            except BaseException:
                message = "(the error could not be printed)"
            reply.update(ok=False, outputs={}, bad={}, error=str(type(exc).__name__), message=message)
        return reply

    return run
