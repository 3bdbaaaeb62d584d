"""The outputs the harness writes into a graded test cell: the verdict, and the per-class results.

A graded test cell's outputs in the autograded notebook *are* its verdict (nbgrader scores an error
output 0, anything else full marks): the lines the hidden test printed, its rich outputs, then a
passing message or one error with the failure in plain words. A hidden test that evaluates a model
also displays its per-class accuracy as the MIME bundle :data:`PER_CLASS_MIME` (``{"model": NAME,
"per_class": {class: accuracy}, "reference": {class: accuracy}}``), which the feedback page draws
as bars; nbconvert does not render this type, so students see only the cell's text.
"""
from __future__ import annotations

from nbformat import NotebookNode

PER_CLASS_MIME = "application/vnd.a2kit.per-class+json"
SKIP_NOTE = "(Not run while grading: the grader uses your submitted files instead.)\n"


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
