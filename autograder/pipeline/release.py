"""The student version: nbgrader's release of the source notebooks, the configs, the a2lib wheel, one zip."""
from __future__ import annotations

import shutil
from pathlib import Path

from autograder.engine.course import Course
from autograder.locations import KIT_ROOT, SOURCE_NOTEBOOKS

from .student_package import release_wheel
from .stubs import name_release_stubs

RELEASED_FOLDERS = ("configs",)  # beside notebooks/ in the kit; the notebooks read them (configs/NAME.yaml)
STUDENT_README = KIT_ROOT / "docs" / "students.md"  # the students' guide, the release's README.md


def release(course: Course, notebooks: Path = SOURCE_NOTEBOOKS, names: list[str] | None = None) -> Path:
    """Copy the source notebooks (and the kit's ``configs/``) in, generate the student version, zip it for an LMS.

    Returns the zip. The configs travel in the release (students need them next to the notebooks)
    and in the source (graders see the kit's configs). The student package's wheel
    (``a2lib-<version>-py3-none-any.whl``, built and scanned by :mod:`autograder.pipeline.student_package`)
    lies beside the released notebooks, whose first cell installs it where a2lib is missing. The
    students' guide (``docs/students.md``) is the release's ``README.md``; each stub nbgrader left
    names what to write (:mod:`autograder.pipeline.stubs`).
    """
    if course.source_dir.exists():  # notebooks removed from the kit must not linger in the course
        for old in course.source_dir.glob("*.ipynb"):
            old.unlink()
    course.sync_source(notebooks, names)
    for name in RELEASED_FOLDERS:
        folder = Path(notebooks).parent / name
        if folder.is_dir():
            shutil.rmtree(course.source_dir / name, ignore_errors=True)
            shutil.copytree(folder, course.source_dir / name)
    course.generate_release()
    name_release_stubs(course.release_dir)
    if STUDENT_README.is_file():
        shutil.copyfile(STUDENT_README, course.release_dir / "README.md")
    release_wheel(course.release_dir)
    archive = shutil.make_archive(str(course.release_dir), "zip", course.release_dir.parent, course.assignment)
    return Path(archive)
