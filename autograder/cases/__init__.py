"""Case generators: `autograder/cases/<notebook_stem>.py` defines `build(ns) -> dict` (see autograder/reference.py)."""
