"""The A2 kit's autograder: nbgrader configuration, reference values and the instructor's tools.

The console script ``a2kit`` (``autograder.cli``) drives the pipeline: release, collect, grade
(parallel and sandboxed), feedback, export.
"""
