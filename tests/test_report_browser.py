"""The class report and the similarity page in a real browser (Debian's headless Chromium, driven by Playwright),
opened from disk as an instructor opens them: every figure loads, with no network, and the students' tables
have one row per student."""
from __future__ import annotations

from pathlib import Path

import pytest

from autograder.engine.course import Course
from autograder.pipeline import lms
from autograder.pipeline.report import write_report
from autograder.pipeline.similarity import check_similarity
from autograder.pipeline.similarity_page import write_similarity
from autograder.tools.corpus import load_cases
from autograder.tools.generated_class import generate_class
from kit_corpus import AVAILABLE
from services import require_chromium

pytestmark = pytest.mark.browser
CASES = ("solution", "release", "flipped_kernel", "focal_sigmoid", "cheat_lookup_model", "missing_checkpoint",
         "similarity_copy_source", "similarity_copy_renamed", "similarity_honest_a", "similarity_honest_b")


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> tuple[Path, Path, list[str], list[str]]:
    """A generated class of 24 (two gradings failed), its report and its similarity page."""
    course = Course(tmp_path_factory.mktemp("report") / "course")
    course.sync_source()
    course.generate_release()
    cases = {c.name: c for c in load_cases(AVAILABLE)[0]}
    made = generate_class(course, 24, [cases[n] for n in CASES], seed=2, failed=2)
    assert len(made.failed) == 2
    lms.update_roster(course, made.roster)
    report = write_report(course)
    similar = check_similarity(course)
    return report.path, write_similarity(similar, course.root, course.root / "reports"), list(made.students), similar.students


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    chromium = require_chromium()
    with sync_playwright() as pw:
        # as in test_browser.py: no Chromium sandbox (CI machines may lack user namespaces), /tmp for shared memory
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        context = browser.new_context(offline=True)  # a page that needed the network would show it here
        yield context.new_page()
        browser.close()


def figures_loaded(page) -> list[dict]:
    return page.eval_on_selector_all("img", "imgs => imgs.map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0}))")


def table_rows(page, table_id: str) -> list[str]:
    return page.eval_on_selector_all(f"#{table_id} tbody tr th", "cells => cells.map(c => c.textContent.trim())")


def test_report_figures_load_and_the_students_table_has_one_row_per_student(pages, page, tmp_path):
    report, _, students, _ = pages
    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(report.as_uri())
    images = figures_loaded(page)
    assert len(images) >= 10 and all(i["ok"] for i in images), [i["alt"] for i in images if not i["ok"]]
    rows = table_rows(page, "students")
    assert len(rows) == len(set(rows)) and sorted(rows) == sorted(students)  # the failed ones too
    for section in ("Distribution", "Questions ranked by difficulty", "Mistakes ranked by frequency",
                    "Models against the reference"):
        assert page.get_by_role("heading", name=section).is_visible()
    assert failed == []
    page.screenshot(path=str(tmp_path / "class_report.png"))


def test_similarity_page_shows_the_copied_pair_side_by_side(pages, page):
    _, similarity, _, compared = pages
    page.goto(similarity.as_uri())
    images = figures_loaded(page)
    assert images and all(i["ok"] for i in images)
    rows = table_rows(page, "students")
    assert len(rows) == len(set(rows)) and sorted(rows) == sorted(compared)
    assert page.get_by_text("This page flags, it never decides.").is_visible()
    pair = page.locator("details", has_text="similarity_copy_renamed").first
    pair.locator("summary").click()
    assert pair.locator(".highlight-red").first.is_visible() and pair.locator(".highlight-green").first.is_visible()
    assert not page.locator("details", has_text="similarity_honest_b").filter(has_text="similarity_honest_a").count()
