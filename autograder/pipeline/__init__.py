"""The instructor's term, command by command: ``a2kit`` (release, collect, grade, formgrade, feedback,
export, demo) and what each writes (the student package, LMS files, feedback pages)."""
