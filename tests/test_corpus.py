"""The corpus of test submissions, graded in parallel in the sandbox: every score, every message, no damage.

Each YAML case in autograder/notebooks/<stem>/cases/ (plus the ``solution`` and ``release`` bases) must get exactly
the points it declares, show students the messages it declares, and leave every file outside the
scratch folders as it was (the kit, the course's source/release/submissions, a bystander folder).
"""
from pathlib import Path

import pytest

from autograder.harness.cells import autograded_cells
from autograder.tools.corpus import (Case, CaseError, Edit, apply_edits, apply_files, build_submission, expected_scores,
                                     load_cases, strip_solution_delimiters)
from kit_corpus import AVAILABLE, corpus_cases, graded_corpus, released_course
from toy_notebooks import graded_toy_course

CASES, WAITING = corpus_cases()


# -- the corpus format, on the toy notebook (no grading) ------------------------------------------
def test_case_yaml_is_validated(tmp_path):
    cases_dir = tmp_path / "01_toy" / "cases"
    cases_dir.mkdir(parents=True)
    (cases_dir / "bad_base.yaml").write_text("description: x\nbase: perfect\nnotebooks: [01_toy]\n")
    with pytest.raises(CaseError, match="base must be one of"):
        load_cases(["01_toy"], [tmp_path])
    (cases_dir / "bad_base.yaml").write_text("description: x\nnotebooks: [01_toy]\nedits:\n  - {notebook: 01_toy, cell: double}\n")
    with pytest.raises(CaseError, match="source or delete"):
        load_cases(["01_toy"], [tmp_path])
    (cases_dir / "bad_base.yaml").write_text("description: x\nnotebooks: [03_cnn_design]\n")
    cases, waiting = load_cases(["01_toy"], [tmp_path])
    assert [c.name for c in cases] == ["solution", "release"] and any("bad_base: needs notebook(s) 03_cnn_design" in w
                                                                      for w in waiting)
    (tmp_path / "02_toy" / "cases").mkdir(parents=True)
    (tmp_path / "02_toy" / "cases" / "bad_base.yaml").write_text("description: x\nnotebooks: [02_toy]\n")
    with pytest.raises(CaseError, match="two cases are named bad_base"):
        load_cases(["01_toy"], [tmp_path])


def test_submissions_are_built_from_the_release(tmp_path):
    course, _ = graded_toy_course(tmp_path)
    (tmp_path / "01_toy" / "files").mkdir(parents=True)
    (tmp_path / "01_toy" / "files" / "ckpt.bin").write_bytes(b"\x00weights")
    case = Case("edited", "", "solution", ["01_toy"], files={"checkpoints/m.pt": "copy:ckpt.bin", "notes.txt": "text:hi"},
                path=tmp_path / "01_toy" / "cases" / "edited.yaml")  # copy: sources are in its folder's files/
    folder = build_submission(case, course)
    import nbformat
    nb = nbformat.read(folder / "01_toy.ipynb", as_version=4)
    solution = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "double")
    assert "return 2 * x" in solution.source and "BEGIN SOLUTION" not in solution.source
    assert not any("HIDDEN" in c.source for c in nb.cells)  # from the release, not the source
    assert (folder / "checkpoints" / "m.pt").read_bytes() == b"\x00weights" and (folder / "notes.txt").read_text() == "hi"
    apply_files(folder, {"checkpoints": "delete"}, case.files_dir)
    assert not (folder / "checkpoints").exists()
    for bad in ({"../escape.txt": "text:x"}, {"/etc/x": "delete"}, {"a.txt": "move:b"}):
        with pytest.raises(CaseError):
            apply_files(folder, bad, case.files_dir)
    with pytest.raises(CaseError, match="no cell with grade_id 'nope'.*double"):
        apply_edits(nb, "01_toy", [Edit("01_toy", "nope", delete=True)])
    assert strip_solution_delimiters("a\n    ### BEGIN SOLUTION\nb\n    ### END SOLUTION") == "a\nb"


def test_expected_scores_default_to_the_base():
    cells = {"01_toy": {"test_double": 1.0, "test_double_hidden": 2.0}, "02_other": {"t": 5.0}}
    wrong = Case("w", "", "solution", ["01_toy"], expect={"01_toy": {"test_double_hidden": 0.5}})
    assert expected_scores(wrong, cells) == {"01_toy": {"test_double": 1.0, "test_double_hidden": 0.5}, "02_other": {"t": 0.0}}
    assert expected_scores(Case("r", "", "release", ["01_toy"]), cells)["01_toy"] == {"test_double": 0.0, "test_double_hidden": 0.0}
    with pytest.raises(CaseError, match="not autograded test cells"):
        expected_scores(Case("x", "", "solution", ["01_toy"], expect={"01_toy": {"double": 0}}), cells)


def test_a_warning_in_a_test_cell_costs_no_points(tmp_path):
    """nbgrader scores a test cell 0 when it writes to stderr; the kit's config drops warnings there."""
    course, _ = graded_toy_course(tmp_path)
    noisy = ("import warnings\n\ndef double(x):\n    warnings.warn('x will be a tensor one day', UserWarning)\n"
             "    import sys; print('12%|#  | 1/8 [00:01<00:07, 1.00it/s]', file=sys.stderr)\n    return 2 * x\n")
    case = Case("noisy", "", "solution", ["01_toy"], [Edit("01_toy", "double", noisy)])
    build_submission(case, course)
    assert course.api().autograde(course.assignment, "noisy")["success"]
    assert {gid: s for gid, (s, _) in course.scores("noisy")["01_toy"].items()} == {"test_double": 1.0, "test_double_hidden": 2.0}


# -- the kit's corpus, graded -----------------------------------------------------------------------
def test_every_case_builds_against_the_release():
    """Fast, before grading: every case's edits and expectations name real cells."""
    course = released_course()
    cells = autograded_cells(course.source_dir)
    assert AVAILABLE, "no notebooks in notebooks/"
    for case in CASES:
        expected_scores(case, cells)
    assert {"solution", "release"} <= {c.name for c in CASES}


# Grading the whole corpus takes minutes: every test that reads it is slow.
@pytest.mark.slow
@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_case_gets_its_expected_points(name):
    corpus = graded_corpus()
    result = corpus.results[name]
    assert result.ok, f"{name} ({result.description}):\n  " + "\n  ".join(result.mismatches)


@pytest.mark.slow
def test_grading_changed_nothing_outside_the_scratch_folders():
    corpus = graded_corpus()
    assert corpus.changed_outside == [], "grading changed files it must not touch:\n" + "\n".join(corpus.changed_outside)
    assert (Path(corpus.course.root).parent / "outside" / "sentinel.txt").read_text() == "must survive grading"


@pytest.mark.slow
def test_no_submission_reached_the_network():
    corpus = graded_corpus()
    assert any(c.name == "hostile_network" for c in corpus.cases)
    assert corpus.connections == [], f"a sandboxed kernel reached 127.0.0.1:47613: {corpus.connections}"


@pytest.mark.slow
def test_failures_are_reported_for_the_instructor():
    """Hostile cases that stop the grader (timeouts, memory, process bombs) are flagged, never silent."""
    corpus = graded_corpus()
    table = corpus.report.table()
    assert set(table.index) == {c.name for c in corpus.cases}
    failed = table[table["status"] == "failed"]
    assert (failed["message"].str.len() > 0).all()
    if len(failed):
        assert corpus.report.needs_attention


def test_tampering_is_reported_exactly_for_cases_that_edit_protected_cells(tmp_path):
    """Built from the release, every case is checked like a collected hand-in: only edits of test or
    read-only cells and changes to the grading cells themselves (deleted, duplicated, renamed,
    re-tagged, added) count as tampering."""
    import nbformat

    from autograder.pipeline.collect import _tampering_notes
    from autograder.engine.course import Course

    released = released_course()
    course = Course(tmp_path / "course")
    import shutil
    for part in ("source", "release"):
        shutil.copytree(released.root / part, course.root / part)
    for case in CASES:
        folder = build_submission(case, course)
        release_cells = {}
        for stem in case.notebooks:
            for c in nbformat.read(course.release_dir / f"{stem}.ipynb", as_version=4).cells:
                release_cells[stem, c.metadata.get("nbgrader", {}).get("grade_id")] = c.metadata.get("nbgrader", {})
        protected = [e for e in case.edits if e.tampers or not release_cells.get((e.notebook, e.cell), {}).get("solution")]
        notes = _tampering_notes(folder, course.release_dir)
        assert bool(notes) == bool(protected), f"{case.name}: tampering notes {notes}, protected edits {protected}"


@pytest.mark.slow
def test_nothing_written_during_grading_comes_back():
    """The autograded folders (the source of feedback) hold the submitted files only: a file a kernel
    wrote (e.g. reference values a cheat copied, a planted startup file) stays in its scratch copy."""
    corpus = graded_corpus()
    for case in corpus.cases:
        autograded = corpus.course.autograded_dir(case.name)
        if not autograded.exists():
            continue
        got = {str(p.relative_to(autograded)) for p in autograded.rglob("*") if p.is_file()}
        submitted = {str(p.relative_to(corpus.course.submitted_dir(case.name)))
                     for p in corpus.course.submitted_dir(case.name).rglob("*") if p.is_file()}
        source = {str(p.relative_to(corpus.course.source_dir)) for p in corpus.course.source_dir.rglob("*")
                  if p.is_file()}  # nbgrader copies the source's own files (configs/) beside the notebooks
        allowed = submitted | source | {f"{nb}.ipynb" for nb in case.notebooks}
        assert got <= allowed, f"{case.name}: {sorted(got - allowed)}"
