"""The outputs the harness writes into a graded test cell: the verdict, and the per-class results.

A graded test cell's outputs in the autograded notebook *are* its verdict (nbgrader scores an error
output 0, anything else full marks): the lines the hidden test printed, its rich outputs, then a
passing message or one error with the failure in plain words. A hidden test that evaluates a model
also displays its per-class accuracy as the MIME bundle :data:`PER_CLASS_MIME` (``{"model": NAME,
"per_class": {class: accuracy}, "reference": {class: accuracy}}``), which the feedback page draws
as bars; nbconvert does not render this type, so students see only the cell's text.

Every output a notebook's cells make is bounded before it is held or stored (:func:`bound_output`,
applied as outputs arrive and again by ``BoundedOutput`` on the autograded notebook): printed text
is cut per cell, a rich output over a size (a huge image) becomes a note, an error's text is cut.
"""
from __future__ import annotations

from nbformat import NotebookNode

PER_CLASS_MIME = "application/vnd.a2kit.per-class+json"
SKIP_NOTE = "(Not run while grading: the grader uses your submitted files instead.)\n"
MAX_STREAM_CHARS = 200_000        # printed text kept per cell (the rest is cut, with a note)
MAX_RICH_CHARS = 2 * 2**20        # one rich output (an image, a table) kept up to this size
MAX_ERROR_CHARS = 20_000          # an error's message and traceback, each
CUT_NOTE = "\n... (output cut here: more than {n:,} characters were printed in this cell) ...\n"
DROPPED_NOTE = "(an output of {size:,} characters ({kinds}) was too large to keep and was left out)\n"


def stream(text: str) -> NotebookNode:
    return NotebookNode(output_type="stream", name="stdout", text=text if text.endswith("\n") else text + "\n")


def error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def verdict_outputs(verdict) -> list[NotebookNode]:
    """A :class:`~autograder.harness.registry.Verdict` as notebook outputs: what the test printed and showed,
    then pass or one error."""
    outputs = [stream("\n".join(verdict.lines))] if verdict.lines else []
    for bundle in verdict.displays:
        data = dict(bundle)
        data.setdefault("text/plain", "")
        outputs.append(NotebookNode(output_type="display_data", data=data, metadata={}))
    if verdict.grader_error:
        outputs.append(error("GraderError", "this test could not be run; your instructor has been told"))
    elif verdict.passed:
        outputs.append(stream(verdict.message or "Passed."))
    else:
        outputs.append(error("AssertionError", verdict.message))
    return outputs


def per_class_output(model: str, per_class, reference=None) -> dict:
    """The MIME bundle a hidden test displays (``ctx.display(bundle)``) to report per-class accuracy."""
    data = {"model": model, "per_class": {str(k): float(v) for k, v in dict(per_class).items()}}
    if reference is not None:
        data["reference"] = {str(k): float(v) for k, v in dict(reference).items()}
    return {PER_CLASS_MIME: data, "text/plain": f"per-class accuracy of {model}"}


def _text(value) -> str:
    return value if isinstance(value, str) else "".join(value) if isinstance(value, list) else str(value)


def _rich_size(data) -> int:
    return sum(len(_text(v)) if isinstance(v, (str, list)) else len(str(v)) for v in dict(data or {}).values())


def bound_output(out: NotebookNode, printed: int) -> tuple[NotebookNode | None, int]:
    """One output, bounded: ``(output or None to drop, characters printed so far in the cell)``.

    Stream text past :data:`MAX_STREAM_CHARS` per cell is cut (one note says so), a rich output larger
    than :data:`MAX_RICH_CHARS` becomes a note, an error's message and traceback are cut.
    """
    kind = out.get("output_type")
    if kind == "stream":
        text = _text(out.get("text", ""))
        room = MAX_STREAM_CHARS - printed
        if room <= 0:
            return None, printed
        if len(text) > room:
            out["text"] = text[:room] + CUT_NOTE.format(n=MAX_STREAM_CHARS)
            return out, MAX_STREAM_CHARS
        return out, printed + len(text)
    if kind in ("display_data", "execute_result", "update_display_data"):
        size = _rich_size(out.get("data"))
        if size > MAX_RICH_CHARS:
            kinds = ", ".join(sorted(dict(out.get("data") or {})))[:200]
            note = DROPPED_NOTE.format(size=size, kinds=kinds)  # a plain display: never cut as printed text
            return NotebookNode(output_type="display_data", data={"text/plain": note}, metadata={}), printed
        return out, printed
    if kind == "error":
        out["ename"] = _text(out.get("ename", ""))[:200]
        out["evalue"] = _text(out.get("evalue", ""))[:MAX_ERROR_CHARS]
        lines, kept, total = [_text(line) for line in out.get("traceback", [])], [], 0
        for line in lines:
            if total + len(line) > MAX_ERROR_CHARS:
                kept.append("... (traceback cut) ...")
                break
            kept.append(line)
            total += len(line)
        out["traceback"] = kept
    return out, printed


def bound_outputs(outputs: list) -> list:
    """A cell's outputs, each bounded by :func:`bound_output` (what is stored in the autograded notebook)."""
    kept, printed = [], 0
    for out in outputs:
        out, printed = bound_output(out, printed)
        if out is not None:
            kept.append(out)
    return kept
