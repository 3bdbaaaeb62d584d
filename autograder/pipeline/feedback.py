"""Feedback for students: nbgrader's HTML plus the kit's own page.

For each graded student, ``feedback/<student>/a2/`` receives, and holds nothing else (it is the
folder to return):

* ``<notebook>.html`` — nbgrader's feedback; each test cell shows the harness's verdict (the hidden
  test's lines and, when it failed, one ``AssertionError: message``, never the hidden test's code);
* ``a2kit_feedback.html`` — a one-page summary: the grade the LMS gets, line by line (autograded
  points, hand-graded points, the late penalty, the final grade, each explained; the same numbers
  as ``a2kit export``, :func:`autograder.pipeline.export.grade_sheet`), points per notebook, the
  hand-graded answers' scores and comments (formgrader; "No response" for a blank answer), every
  failed test with its message, plain-words hints for known failure signatures (see
  ``SIGNATURES``), and per-class accuracy bars of each submitted model against the reference;
* ``<notebook>.ipynb`` — the student's notebooks as they handed them in (not their checkpoints,
  which they have and which weigh megabytes).

Per-class accuracies come from the graded test cells of the autograded notebooks (their outputs are
written by the harness), never from the student's own cells: a hidden test that evaluates a
submitted checkpoint displays its result as the bundle of :func:`autograder.harness.outputs.per_class_output`
(without ``reference``, the reference model's per-class accuracy on the full test set,
:func:`autograder.notebooks.model_scoring.reference_per_class`, is used when it exists). That bundle
is read first, whatever the order of the cell's outputs; only where a cell has none (a notebook
graded before the harness wrote bundles, plain ``nbgrader autograde``) is the per-class table that
``a2lib.checks.check_accuracy`` prints (a line ``NAME from CHECKPOINT on ...:`` then
``class / images / correct / accuracy [/ reference]`` rows) read from the cell's text output.
"""
from __future__ import annotations

import base64
import html
import io
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor

from autograder.engine.course import Course
from autograder.harness.cells import autograded_cells, cells_by_id
from autograder.harness.outputs import PER_CLASS_MIME
from autograder.notebooks.model_scoring import reference_per_class

from .export import grade_sheet
from .formgrade import hand_grades
from .late import LatePolicy

NOT_SUBMITTED = "notebook not submitted"


# -- nbgrader's feedback -------------------------------------------------------------------------
class RedactHiddenTracebacks(Preprocessor):
    """In cells holding hidden-test regions (a course's own notebooks graded in the kernel), keep only
    ``ename: evalue`` of an error: a traceback quotes the failing line (nbgrader issue #1363)."""

    enabled = True  # nbconvert preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and "BEGIN HIDDEN TESTS" in cell.source:
            for out in cell.get("outputs", []):
                if out.output_type == "error":
                    out.traceback = [f"{out.ename}: {out.evalue}"]
        return cell, resources


def feedback_config(course: Course):
    """``course.config`` with nbgrader's feedback converter told to hide any hidden-test region
    (the kit's test cells have none; a course's own notebooks may)."""
    from copy import deepcopy

    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades

    config = deepcopy(course.config)
    config.GenerateFeedback.preprocessors = [GetGrades, RedactHiddenTracebacks, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
    config.ClearHiddenTests.enforce_metadata = False
    return config


def nbgrader_feedback(course: Course, student: str) -> tuple[bool, str]:
    """Run nbgrader generate_feedback for one student; returns (success, log)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    course.api()  # puts the interpreter's bin folder on PATH
    config = feedback_config(course)
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    result = api.generate_feedback(course.assignment, student)
    return bool(result["success"]), result.get("log", "") + result.get("error", "")


# -- what the autograded notebooks say ------------------------------------------------------------
@dataclass
class CellResult:
    notebook: str
    grade_id: str
    score: float
    max_score: float
    message: str  # the error's last line, "" when it passed

    @property
    def failed(self) -> bool:
        return self.score < self.max_score


@dataclass
class PerClass:
    model: str
    per_class: dict[str, float]
    reference: dict[str, float] | None = None


@dataclass
class StudentFeedback:
    student: str
    tests: list[CellResult] = field(default_factory=list)
    per_class: list[PerClass] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    hand: list[dict] = field(default_factory=list)  # autograder.pipeline.formgrade.hand_grades
    grade: dict = field(default_factory=dict)  # the student's row of export.grade_sheet (what the LMS gets)
    policy: str = ""  # the late policy in words

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.tests)


def _error_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
        elif out.output_type == "stream" and out.name == "stderr":
            parts.append(out.text.strip().splitlines()[-1] if out.text.strip() else "")
    return "\n".join(p for p in parts if p)


def read_student(course: Course, student: str, scores: dict | None = None, hand: list | None = None,
                 cells: dict | None = None) -> StudentFeedback:
    """Scores (gradebook), failed-test messages and per-class results (autograded notebooks).

    ``scores`` (as ``Course.scores``), ``hand`` (as ``hand_grades``) and ``cells`` (as ``autograded_cells``)
    are read here unless given (the class report reads them for the whole class at once)."""
    cells = autograded_cells(course.source_dir) if cells is None else cells
    scores = course.scores(student) if scores is None else scores
    fb = StudentFeedback(student)
    mime: list[PerClass] = []
    text: list[PerClass] = []
    for nb_name, ids in cells.items():
        path = course.autograded_dir(student) / f"{nb_name}.ipynb"
        nb = nbformat.read(path, as_version=4) if path.exists() else None
        by_id = cells_by_id(nb)
        for gid, points in ids.items():
            score = scores.get(nb_name, {}).get(gid, (None, points))[0] or 0.0
            message = _error_text(by_id[gid]) if gid in by_id else (NOT_SUBMITTED if nb is None else "test cell missing")
            fb.tests.append(CellResult(nb_name, gid, float(score), float(points), message if score < points else ""))
        for gid in ids:  # graded test cells only: their outputs are the harness's, not the student's
            bundles, printed = per_class_outputs(by_id[gid]) if gid in by_id else ([], [])
            mime.extend(bundles)
            text.extend(printed)
    # The first report per model, the harness's bundles before any printed table.
    seen = set()
    fb.per_class = [r for r in mime + text if not (r.model in seen or seen.add(r.model))]
    _fill_references(fb.per_class)
    fb.hints = hints_for(fb)
    fb.hand = hand_grades(course, student) if hand is None else hand
    return fb


def per_class_outputs(cell) -> tuple[list[PerClass], list[PerClass]]:
    """``(from the harness's MIME bundles, from the printed text)`` of one graded cell's outputs; the text
    is read only when the cell has no bundle (it is the fallback, whatever order the outputs come in)."""
    bundles, printed = [], []
    for out in cell.get("outputs", []):
        data = out.get("data", {}).get(PER_CLASS_MIME)
        if data:
            bundles.append(PerClass(data["model"], dict(data["per_class"]), data.get("reference")))
        elif out.get("output_type") == "stream" and out.get("name") == "stdout":
            printed.extend(parse_printed_per_class(out.text))
    return bundles, [] if bundles else printed


_TABLE_TITLE = re.compile(r"^(?P<model>\S+) from \S+ on .*:$")
_TABLE_ROW = re.compile(r"^(?P<cls>\S+)\s+\d+\s+\d+\s+(?P<acc>[\d.]+|NaN)(?:\s+(?P<ref>[\d.]+|NaN))?\s*$")


def parse_printed_per_class(text: str) -> list[PerClass]:
    """Per-class tables printed by ``a2lib.checks.check_accuracy`` in a cell's output."""
    found, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        title = _TABLE_TITLE.match(line.strip())
        if not title or i + 1 >= len(lines) or "accuracy" not in lines[i + 1]:
            continue
        per_class, reference = {}, {}
        for row in lines[i + 2:]:
            m = _TABLE_ROW.match(row.strip())
            if row.strip() == "class" or row.strip().startswith("class "):
                continue
            if not m:
                break
            if m["cls"] == "overall":
                continue
            per_class[m["cls"]] = float(m["acc"])
            if m["ref"] and m["ref"] != "NaN":
                reference[m["cls"]] = float(m["ref"])
        if per_class:
            found.append(PerClass(title["model"], per_class, reference or None))
    return found


def _fill_references(results: list[PerClass]) -> None:
    """Give each result without a reference column the reference model's per-class accuracy (full test set)."""
    for r in results:
        if r.reference is None:
            reference = reference_per_class(r.model)
            r.reference = None if reference is None else {str(k): float(v) for k, v in reference.items()}


# -- hints for known failure signatures -----------------------------------------------------------
@dataclass(frozen=True)
class Signature:
    name: str
    pattern: str  # regular expression searched (case-insensitive) in the failed tests' messages
    hint: str


SIGNATURES = (
    Signature("flipped_kernel", r"flip|convolution instead of cross|cross-?correlation",
              "Your convolution flips the kernel. A convolutional layer (as in PyTorch) computes a "
              "cross-correlation: slide the kernel over the input as it is, without reversing it."),
    Signature("conv_backward_batch_sum", r"(sum|accumulat)\w* over the batch|batch sum|summed over (the )?(batch|images)",
              "In the convolution's backward pass, dw and db must add up the contributions of every image of the "
              "batch (a sum over N), not take one image or the mean."),
    Signature("focal_equals_ce", r"does not change with gamma|modulating factor .{0,30}missing|"
              r"(equals?|same as|identical to).{0,40}cross[- ]entropy",
              "Your focal loss gives the same value as cross-entropy although gamma > 0: the factor "
              "(1 - p_t) ** gamma, with p_t the softmax probability of the true class, is missing or ignored."),
    # The focal loss's own messages only: TwoLayerNet's ("should be sigmoid(0) = 0.5") must not match.
    Signature("focal_sigmoid", r"sigmoid \((one-vs-all|binary)|one-vs-all|asks for the softmax form",
              "The course's FocalLoss is the softmax form: p_t is the softmax probability of the true class "
              "(per-class sigmoids are the detection variant), and with gamma = 0 it equals weighted cross-entropy."),
    Signature("class_weights_sum", r"weights (are|is) not normali[sz]ed|(must )?sum to the number of classes",
              "Class weights must be normalised so that they sum to the number of classes: divide the raw "
              "weights by their sum and multiply by C."),
    Signature("few_classes", r"predicts? only|only \d+ (of \d+ )?classes|a few classes|single class",
              "Your model predicts only a few of the classes: check the loss (class weights, labels), the learning "
              "rate (too high collapses the model) and that the checkpoint is the trained one."),
)
FEW_CLASSES_THRESHOLD = 0.02  # per-class accuracy below this counts as "never predicted"


def hints_for(fb: StudentFeedback) -> list[str]:
    """Plain-words hints whose signature appears in the failed tests' messages or the per-class results."""
    text = "\n".join(t.message for t in fb.tests if t.failed)
    hints = [s.hint for s in SIGNATURES if re.search(s.pattern, text, re.IGNORECASE)]
    few = SIGNATURES[-1].hint
    for r in fb.per_class:
        dead = [c for c, acc in r.per_class.items() if acc < FEW_CLASSES_THRESHOLD]
        if len(dead) >= len(r.per_class) / 2 and few not in hints:
            hints.append(few + f" ({r.model}: {len(r.per_class) - len(dead)} of {len(r.per_class)} classes ever right.)")
    return hints


# -- the kit's page -------------------------------------------------------------------------------
def per_class_figure(result: PerClass):
    import pandas as pd

    from a2lib.plots import per_class_bars

    series = {"yours": pd.Series(result.per_class)}
    if result.reference:
        series["reference"] = pd.Series(result.reference).reindex(series["yours"].index)
    return per_class_bars(series, title=f"Per-class accuracy: {result.model}")


def _figure_html(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="per-class accuracy" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def render_html(fb: StudentFeedback) -> str:
    esc = html.escape
    by_nb: dict[str, list[CellResult]] = {}
    for t in fb.tests:
        by_nb.setdefault(t.notebook, []).append(t)
    rows = "".join(
        f"<tr><td>{esc(nb)}</td><td>{sum(t.score for t in ts):g}</td><td>{sum(t.max_score for t in ts):g}</td></tr>"
        for nb, ts in by_nb.items())
    missing = {nb for nb, ts in by_nb.items() if all(t.message == NOT_SUBMITTED for t in ts)}
    failed = "".join(f"<li><b>{esc(nb)}</b>: not submitted (0 of {sum(t.max_score for t in by_nb[nb]):g} points)</li>"
                     for nb in sorted(missing))
    failed += "".join(f"<li><b>{esc(t.notebook)} / {esc(t.grade_id)}</b> ({t.score:g} of {t.max_score:g}): "
                      f"<code>{esc(t.message or 'no message')}</code></li>"
                      for t in fb.tests if t.failed and t.notebook not in missing)
    hints = "".join(f"<li>{esc(h)}</li>" for h in fb.hints)
    figures = "".join(_figure_html(per_class_figure(r)) for r in fb.per_class)
    hand = "".join(f"<li><b>{esc(h['notebook'])} / {esc(h['grade_id'])}</b>: " + _hand_line(h)
                   + (f"<blockquote>{esc(h['comment'])}</blockquote>" if h["comment"] and h["status"] != "no response" else "")
                   + "</li>" for h in fb.hand)
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>A2 feedback: {esc(fb.student)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:.2em .8em;text-align:left}}
.grade td:nth-child(2){{text-align:right;white-space:nowrap}}</style></head>
<body><h1>A2 feedback for {esc(fb.student)}</h1>
{grade_lines(fb)}
<p>The notebooks' own feedback pages are beside this one.</p>
<table><tr><th>notebook</th><th>autograded points</th><th>of</th></tr>{rows}</table>
<h2>Graded by hand</h2><ul>{hand or '<li>Nothing.</li>'}</ul>
<h2>Tests that did not pass</h2><ul>{failed or '<li>None: well done.</li>'}</ul>
<h2>Hints</h2><ul>{hints or '<li>No known mistake recognised.</li>'}</ul>
<h2>Your models, class by class</h2>{figures or '<p>No model evaluated.</p>'}
</body></html>"""


def _hand_line(h: dict) -> str:
    if h["status"] == "no response":
        return f"No response (0 of {h['max_score']:g}): the answer was left blank"
    if h["status"] == "graded":
        return f"{h['score']:g} of {h['max_score']:g}"
    return f"not graded yet (of {h['max_score']:g})"


def _points(n: float) -> str:
    return f"{n:g} point{'' if n == 1 else 's'}"


def _when(text: str) -> str:
    return str(text).replace("T", " ")


def grade_lines(fb: StudentFeedback) -> str:
    """The grade the LMS gets, line by line, each line saying what it counts (HTML)."""
    g = fb.grade
    if not g:  # not in the gradebook: only what the notebooks say
        return f"<p>Autograded points: <b>{fb.score:g} of {fb.max_score:g}</b>.</p>"
    esc = html.escape
    to_grade = float(g.get("hand_to_grade", 0) or 0)
    hand_max = sum(h["max_score"] for h in fb.hand)
    rows = [("Autograded", f"{float(g['autograded']):g}",
             f"your code, checked by the grader's tests (of {_points(fb.max_score)})"),
            ("Graded by hand", f"{float(g['hand']):g}",
             f"your written answers, graded by your instructor (of {_points(hand_max)}"
             + (f"; {_points(to_grade)} not graded yet" if to_grade else "") + ")")]
    penalty = float(g.get("penalty", 0) or 0)
    late_policy = ""
    if "days_late" in g and str(g.get("due", "")):
        days = int(float(g["days_late"]))
        when = f"submitted {esc(_when(g['submitted_at']))}" if g.get("submitted_at") else "no submission time known"
        why = (f"{days} day{'s' if days != 1 else ''} late ({when}, due {esc(_when(g['due']))}): "
               f"{float(g['penalty_percent']):g}% of {_points(float(g['total']))}") if days else \
            f"on time ({when}, due {esc(_when(g['due']))})"
        note = f" ({esc(str(g['late_note']))})" if g.get("late_note") else ""
        rows.append(("Late penalty", f"−{penalty:g}" if penalty else "0", why + note))
        late_policy = f"<p>Late policy: {esc(fb.policy)}.</p>"
    rows.append(("Final grade", f"<b>{float(g['final']):g} of {float(g['max']):g}</b>",
                 "autograded + graded by hand − late penalty: the grade entered in the LMS"
                 + ("; it may still change, some answers are not graded yet" if to_grade else "")))
    body = "".join(f"<tr><td>{label}</td><td>{value}</td><td>{text}</td></tr>" for label, value, text in rows)
    return f'<h2>Your grade</h2><table class="grade">{body}</table>{late_policy}'


@dataclass
class FeedbackResult:
    student: str
    ok: bool
    message: str
    folder: Path
    hints: int


def returned_folder(course: Course, student: str) -> None:
    """The folder to return holds the pages and the student's own notebooks: nbgrader's copies of the
    other submitted files (checkpoints, megabytes) are removed."""
    folder = course.feedback_dir(student)
    for path in sorted(folder.rglob("*"), reverse=True) if folder.is_dir() else []:
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        elif path.suffix != ".html" or path.parent != folder:
            path.unlink()
    for notebook in sorted(course.submitted_dir(student).glob("*.ipynb")):
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(notebook, folder / notebook.name)


def generate_feedback(course: Course, students: list[str] | None = None, progress: bool = True,
                      policy: LatePolicy | None = None) -> list[FeedbackResult]:
    """nbgrader's feedback (hidden tests removed) and the kit's page, for every autograded student.

    ``policy``: the late policy, as ``a2kit export`` gets it, so that the page's final grade is the LMS's.
    """
    from tqdm.auto import tqdm

    if students is None:
        autograded = course.root / "autograded"
        students = sorted(p.name for p in autograded.iterdir() if (p / course.assignment).is_dir()) if autograded.is_dir() else []
    policy = policy or LatePolicy()
    sheet = grade_sheet(course, policy)
    results = []
    for student in tqdm(students, desc="feedback", unit="student", disable=not progress):
        folder = course.feedback_dir(student)
        try:  # one student's notebook that nbgrader cannot convert must not stop the class
            ok, log = nbgrader_feedback(course, student)
        except Exception as exc:
            ok, log = False, f"{type(exc).__name__}: {exc}"
        message = "" if ok else f"nbgrader generate_feedback failed: {log.strip().splitlines()[-1] if log.strip() else 'no log'}"
        try:
            fb = read_student(course, student)
            fb.grade = sheet.loc[student].to_dict() if student in sheet.index else {}
            fb.policy = policy.describe()
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "a2kit_feedback.html").write_text(render_html(fb))
            returned_folder(course, student)
            hints = len(fb.hints)
        except Exception as exc:  # one student's broken notebook must not stop the class's feedback
            ok, message, hints = False, f"kit feedback failed: {exc!r}", 0
        results.append(FeedbackResult(student, ok, message, folder, hints))
    return results
