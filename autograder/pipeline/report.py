"""``a2kit report``: one HTML page for the instructor about the whole class (not for students).

Written to ``<course>/reports/class_report.html`` (``--out DIR``), self-contained (figures as PNG data
URIs, no script, nothing fetched), from what the course holds now (:func:`.class_results.read_class`:
the gradebook, the autograded notebooks, the grading log, the LMS roster), so it follows every
regrade and hand grade. Sections:

* **distribution** of the totals, and of each notebook's points;
* **questions** and **tests** ranked by difficulty (:mod:`.item_analysis`: mean, share of zeros and
  of full marks, discrimination index);
* **mistakes**: the feedback's hints (its known failure signatures), ranked by how many students got
  each, and the failure messages students saw most often;
* **models**: the submitted checkpoints' accuracy and per-class accuracy against the reference;
* **long tail**: each student's CB-Focal model against their cross-entropy model on the rarest classes;
* **grading**: status (failed, timed out, flagged as a lookup model, late) and seconds per student;
* **hand grading**: the spread of the scores of the answers graded by hand;
* **students**: one row per student (id, points, status).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from a2lib.checks.imbalance import RARE_CLASSES, rare_classes
from a2lib.data import CIFAR10_CLASSES, long_tail_counts
from autograder.engine.course import Course

from . import html_page as H
from . import report_figures as figures
from .class_results import ClassResults, read_class
from .feedback import NOT_SUBMITTED
from .late import LatePolicy
from .item_analysis import item_scores, item_statistics

LT_COUNTS = long_tail_counts(5000, 10, 100)  # notebook 4's long-tailed training set (its lt_counts)
LONG_TAIL_MODELS = ("ResNet-32/cross-entropy", "ResNet-32/CB-Focal")
LOW_DISCRIMINATION = 0.1  # below this, an item hardly goes with the rest of the assignment: look at it


@dataclass
class ReportResult:
    path: Path
    students: int
    questions: pd.DataFrame   # hardest first (item_analysis)
    hints: pd.DataFrame       # signature, students, share, hint
    status: pd.Series         # students per status


# -- tables ----------------------------------------------------------------------------------------
def notebook_percent(results: ClassResults) -> pd.DataFrame:
    """Students x notebooks: percent of each notebook's points (autograded and hand-graded)."""
    maxima = pd.concat([results.tests.drop_duplicates(["notebook", "test"]).groupby("notebook")["max_score"].sum(),
                        results.hand.drop_duplicates(["notebook", "grade_id"]).groupby("notebook")["max_score"].sum()]
                       ).groupby(level=0).sum()
    parts = [nb for nb in maxima.index if nb in results.grades.columns]
    return (100 * results.grades[parts] / maxima[parts]).round(1)


def hint_table(results: ClassResults) -> pd.DataFrame:
    """One row per hint signature: how many students got it (most first), their share, the hint, the students."""
    n = max(len(results.grades), 1)
    rows = [{"signature": sig, "students": group["student"].nunique(), "share": group["student"].nunique() / n,
             "hint": group["hint"].iloc[0][:160], "who": ", ".join(sorted(group["student"].unique())[:12])
             + (" ..." if group["student"].nunique() > 12 else "")}
            for sig, group in results.hints.groupby("signature")]
    table = pd.DataFrame(rows, columns=["signature", "students", "share", "hint", "who"])
    return table.sort_values(["students", "signature"], ascending=[False, True]).reset_index(drop=True)


def message_table(results: ClassResults, top: int = 20) -> pd.DataFrame:
    """The failure messages students saw most often: test, the message's first line, students (notebooks
    not submitted left out: :func:`missing_notebooks` counts them)."""
    tests = results.tests
    failed = tests[(tests["score"] < tests["max_score"]) & (tests["message"] != NOT_SUBMITTED)]
    first = failed["message"].fillna("").str.split("\n").str[0].str.replace(r"^\w+Error: ", "", regex=True).str[:200]
    table = (failed.assign(message=first).groupby(["notebook", "test", "message"])["student"].nunique()
             .rename("students").reset_index().sort_values("students", ascending=False))
    return table.head(top).reset_index(drop=True)


def missing_notebooks(results: ClassResults) -> pd.Series:
    """Per notebook: students who did not submit it."""
    missing = results.tests[results.tests["message"] == NOT_SUBMITTED]
    return missing.groupby("notebook")["student"].nunique()


def model_table(per_class: pd.DataFrame) -> pd.DataFrame:
    """Per model: students scored, their accuracy (median, mean, min, max), the reference's, and how many fell
    more than 0.1 below it."""
    overall = per_class.groupby(["model", "student"])["accuracy"].mean().rename("accuracy").reset_index()
    reference = per_class.groupby("model")["reference"].mean()
    order = list(dict.fromkeys(per_class["model"]))
    rows = []
    for model in order:
        acc = overall.loc[overall["model"] == model, "accuracy"]
        ref = reference.get(model, float("nan"))
        rows.append({"model": model, "students": len(acc), "median": acc.median(), "mean": acc.mean(), "min": acc.min(),
                     "max": acc.max(), "reference": ref, "below reference - 0.1": int((acc < ref - 0.1).sum())})
    return pd.DataFrame(rows)


def long_tail_table(per_class: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Students with both long-tail models: mean accuracy on the rarest and on the most frequent classes,
    for each model. Returns (table, rare class names, frequent class names)."""
    rare = [CIFAR10_CLASSES[i] for i in rare_classes(LT_COUNTS, RARE_CLASSES)]
    head = [CIFAR10_CLASSES[i] for i in rare_classes([-n for n in LT_COUNTS], RARE_CLASSES)]
    ce, cb = LONG_TAIL_MODELS
    rows = per_class[per_class["model"].isin(LONG_TAIL_MODELS)]

    def mean(names: list[str]) -> pd.DataFrame:  # students x models: mean accuracy on these classes
        return rows[rows["class"].isin(names)].groupby(["student", "model"])["accuracy"].mean().unstack()

    tail, top = mean(rare), mean(head)
    if not {ce, cb} <= set(tail.columns):
        return pd.DataFrame(columns=["ce_rare", "cbfocal_rare", "ce_frequent", "cbfocal_frequent"]), rare, head
    table = pd.DataFrame({"ce_rare": tail[ce], "cbfocal_rare": tail[cb], "ce_frequent": top[ce],
                          "cbfocal_frequent": top[cb]}).dropna()
    table.index.name = "student"
    return table, rare, head


def students_table(results: ClassResults) -> pd.DataFrame:
    """One row per student: points per notebook, total, percent, then the grading's status and what it said."""
    status = results.status
    grades = results.grades.drop(columns=["max"], errors="ignore").reindex(status.index)
    hints = results.hints.groupby("student").size().reindex(status.index).fillna(0).astype(int)
    table = grades.join(status[["status", "seconds", "timed_out", "lookup", "late"]])
    table["hints"] = hints
    table["message"] = status["message"].str.slice(0, 120)
    table.index.name = "student"
    return table


# -- the page --------------------------------------------------------------------------------------
def gradebook_name(url: str) -> str:
    """The gradebook's URL without a password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _distribution(results: ClassResults) -> str:
    summary = results.grades.drop(columns=["max"], errors="ignore").describe().T[["mean", "std", "min", "25%", "50%",
                                                                                   "75%", "max"]]
    return (H.figure(figures.total_distribution(results.grades, notebook_percent(results)), "distribution of the totals")
            + H.table(summary, "distribution-summary"))


def _questions(results: ClassResults) -> tuple[str, pd.DataFrame]:
    total = results.grades["total"]
    by_question = item_statistics(*item_scores(results.tests, "question"), total)
    by_test = item_statistics(*item_scores(results.tests, "test"), total)
    for table in (by_question, by_test):
        table["look at it"] = (table["discrimination"] < LOW_DISCRIMINATION).map({True: "low discrimination", False: ""})
    text = (f"<p>Hardest first. A question is a solution cell with the tests that check it. <b>mean_share</b>: mean "
            f"points over the points (1: everybody, 0: nobody); <b>zero</b> / <b>full</b>: share of students with no "
            f"points / full marks; <b>discrimination</b>: correlation of the item with the rest of the total (below "
            f"{LOW_DISCRIMINATION}: it does not go with the rest of the assignment; look at the test). Written answers "
            "are under <a href=\"#hand\">hand grading</a>.</p>"
            + H.figure(figures.difficulty(by_question, "Questions, hardest at the top"), "questions ranked by difficulty")
            + H.table(by_question, "questions", index=False)
            + "<h3>Every test</h3>" + H.table(by_test, "tests", index=False))
    return text, by_question


def _mistakes(results: ClassResults, hints: pd.DataFrame) -> str:
    intro = ("<p>The hints the students' feedback pages showed (the kit's known failure signatures, in the "
             "course's words), ranked by how many students got each; then the failure messages seen most often.</p>")
    figure = H.figure(figures.hint_counts(results.hints, len(results.grades)), "hints ranked by frequency") if len(hints) else ""
    missing = missing_notebooks(results)
    absent = ("<p>Notebooks not submitted: " + ", ".join(f"{H.esc(nb)} by {n} students" for nb, n in missing.items())
              + ".</p>") if len(missing) else ""
    return (intro + figure + H.table(hints, "hints", index=False)
            + "<h3>Failure messages seen most often</h3>" + absent + H.table(message_table(results), "messages", index=False))


def _models(results: ClassResults) -> str:
    per_class = results.per_class
    if not len(per_class):
        return '<p class="muted">No submitted model was scored.</p>'
    boxes = "".join(H.figure(figures.per_class_boxes(per_class, m), f"per-class accuracy of {m}")
                    for m in dict.fromkeys(per_class["model"]))
    return ("<p>Accuracy on the graded test set (the same number of images per class: the accuracy is the mean "
            "per-class accuracy) of every checkpoint that could be scored; the reference model's as red markers. "
            "Low boxes show the classes the class struggled with.</p>"
            + H.figure(figures.model_accuracy(per_class), "model accuracy against the reference")
            + H.table(model_table(per_class), "models", index=False) + f'<div class="figures">{boxes}</div>')


def _long_tail(results: ClassResults) -> str:
    table, rare, head = long_tail_table(results.per_class)
    if not len(table):
        return '<p class="muted">No student has both long-tail models scored.</p>'
    better = (table["cbfocal_rare"] > table["ce_rare"]).mean()
    summary = pd.DataFrame({"cross-entropy": [table["ce_rare"].mean(), table["ce_frequent"].mean()],
                            "CB-Focal": [table["cbfocal_rare"].mean(), table["cbfocal_frequent"].mean()]},
                           index=[f"rarest: {', '.join(rare)}", f"most frequent: {', '.join(head)}"])
    return (f"<p>{len(table)} students submitted both ResNet-32 checkpoints of notebook 4. On the {len(rare)} rarest "
            f"classes CB-Focal beat the same student's cross-entropy model for <b>{better:.0%}</b> of them. Mean "
            "accuracy per group of classes:</p>" + H.table(summary, "long-tail-summary")
            + H.figure(figures.long_tail(table.reset_index(), rare), "CB-Focal against cross-entropy on the rare classes")
            + "<details><summary>Per student</summary>" + H.table(table, "long-tail") + "</details>")


def _grading(results: ClassResults) -> str:
    status = results.status
    counts = pd.DataFrame({"students": [int((status["status"] == s).sum()) for s in ("graded", "flagged", "failed")]
                           + [int(status["timed_out"].sum()), int(status["lookup"].sum()), int(status["late"].sum())]},
                          index=["graded", "flagged", "failed", "timed out (a limit was reached)",
                                 "flagged as a lookup model", "late"])
    attention = status[(status["status"] != "graded") | status["timed_out"] | status["late"]]
    return ("<p>The latest grading of each student (<code>grading_log.csv</code>); late: Canvas's late mark or "
            "submitted after the due time given to <code>a2kit report --due</code>.</p>"
            + H.table(counts, "status-counts")
            + (H.figure(figures.grading_time(status), "grading time per student") if status["seconds"].notna().any()
               else '<p class="muted">No grading times recorded (graded before the kit kept a grading log).</p>')
            + "<h3>Students that need a look</h3>"
            + H.table(attention[["status", "seconds", "timed_out", "lookup", "late", "submitted_at", "message"]], "attention"))


def _hand(results: ClassResults) -> str:
    hand = results.hand
    if not len(hand):
        return '<p class="muted">No answer is graded by hand.</p>'
    rows = []
    for (nb, gid), group in hand.groupby(["notebook", "grade_id"], sort=False):
        graded = group[group["graded"]]["score"]
        rows.append({"notebook": nb, "answer": gid, "points": group["max_score"].iloc[0], "graded": len(graded),
                     "not graded yet": int((~group["graded"]).sum()), "mean": graded.mean(), "std": graded.std(),
                     "min": graded.min(), "max": graded.max()})
    figure = H.figure(figures.hand_spread(hand), "spread of the hand-graded scores") if hand["graded"].any() else ""
    return figure + H.table(pd.DataFrame(rows), "hand", index=False)


def render(results: ClassResults, course: Course) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """The page's HTML, the questions' table and the hints' table."""
    hints = hint_table(results)
    questions_html, questions = _questions(results)
    intro = (f'<p class="note">For the instructor only: this page shows every student\'s results, by id. Nothing '
             f"on it is meant for students (their pages are <code>a2kit feedback</code>'s).</p>"
             f"<p>{len(results.grades)} students graded in {H.esc(course.root)}, assignment {H.esc(course.assignment)}; "
             f"written {datetime.now():%Y-%m-%d %H:%M} from the gradebook ({H.esc(gradebook_name(course.db_url))}) and "
             "the autograded notebooks. Run <code>a2kit report</code> again after a regrade or hand grading.</p>")
    sections = [("distribution", "Distribution", _distribution(results)),
                ("questions", "Questions ranked by difficulty", questions_html),
                ("mistakes", "Mistakes ranked by frequency", _mistakes(results, hints)),
                ("models", "Models against the reference", _models(results)),
                ("long-tail", "Long tail: CB-Focal against cross-entropy", _long_tail(results)),
                ("grading", "Grading", _grading(results)),
                ("hand", "Hand grading", _hand(results)),
                ("students", "Students", '<div style="overflow-x:auto">' + H.table(students_table(results), "students")
                 + "</div>")]
    return H.page(f"A2 class report: {course.assignment}", intro, sections), questions, hints


def write_report(course: Course, out: Path | None = None, policy: LatePolicy | None = None) -> ReportResult | None:
    """Read the class and write the page into ``out`` (default ``<course>/reports``); ``policy``: the late
    policy the feedback and the export use (percent is of the final grade). None when nothing is graded yet."""
    results = read_class(course, policy)
    if not len(results.grades):
        return None
    out = Path(out) if out else course.root / "reports"
    out.mkdir(parents=True, exist_ok=True)
    html, questions, hints = render(results, course)
    path = out / "class_report.html"
    path.write_text(html)
    return ReportResult(path, len(results.grades), questions, hints, results.status["status"].value_counts())
