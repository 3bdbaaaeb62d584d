"""Kernel-side half of the harness: this file's *source* is sent into the student's kernel.

It defines one function, ``__a2kit_run``, that runs a snippet of grader code against the
notebook's names and publishes the named results as plain numeric arrays (one ``display_data``
message of type ``MIME``). It holds no reference value and decides nothing: whatever the student's
code does to it can only change what this kernel reports, which the trusted side then judges.
It imports nothing of the instructor kit (``autograder`` is not visible in the sandbox).
"""
MIME = "application/vnd.a2kit.result+json"


def __a2kit_install(user_ns, publish):
    """``__a2kit_run`` bound to the notebook's names and a way to publish a result."""
    import base64
    import sys
    import traceback

    import numpy as np
    mime = "application/vnd.a2kit.result+json"  # = MIME (this function is sent alone)
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
        if torch is not None and isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            value = (value.float() if value.dtype in (torch.bfloat16,) else value).numpy()
        kind = type(value).__name__
        try:
            array = np.asarray(value)
        except Exception:
            return None, f"a {kind}"
        if array.dtype.name not in dtypes:
            return None, f"a {kind}" + (f" of {array.dtype}" if isinstance(value, np.ndarray) else "")
        array = array.copy(order="C")  # (not ascontiguousarray: it makes 0-d arrays 1-d)
        return {"dtype": array.dtype.name, "shape": list(array.shape),
                "data": base64.b64encode(array.tobytes()).decode()}, None

    def where(exc):
        """The innermost frame of the student's own code (a notebook cell), in words."""
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "ipykernel_" in f.filename
                  or f.filename.startswith("<ipython-input")]
        if not frames:
            return ""
        f = frames[-1]
        return f" (in {f.name}, line {f.lineno}: {(f.line or '').strip()[:120]})"

    def run(call, inputs, inbox, code, outputs):
        reply = {"call": call, "ok": True, "outputs": {}, "bad": {}}
        ns = dict(user_ns)
        ns.update(inputs)
        try:
            if inbox:
                with np.load(inbox, allow_pickle=False) as arrays:
                    ns.update({k: arrays[k] for k in arrays.files})
            exec(compile(code, "<grader>", "exec"), ns)
            for name in outputs:
                encoded, instead = as_numbers(ns.get(name, missing))
                if encoded is None:
                    reply["bad"][name] = instead
                else:
                    reply["outputs"][name] = encoded
        except BaseException as exc:  # the student's code raised (or was interrupted): report, never crash
            reply = {"call": call, "ok": False, "error": type(exc).__name__,
                     "message": (str(exc)[:1500] + where(exc))}
        publish({mime: reply})

    return run

