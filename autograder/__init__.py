"""The A2 kit's instructor side: the term's pipeline, the grading engine, the trusted harness,
isolation, the tools that build references and the corpus, and one folder per notebook.

* :mod:`autograder.pipeline`: what an instructor runs in a term (``a2kit``: release, collect, grade,
  formgrade, feedback, export, demo);
* :mod:`autograder.engine`: grading a class (the course folder, parallel workers, the gradebook);
* :mod:`autograder.harness`: the trusted judge (hidden tests decide every point outside the kernel);
* :mod:`autograder.isolation`: the bubblewrap sandbox and the sandboxed kernel;
* :mod:`autograder.tools`: the solution executed in-process, reference building, the corpus;
* :mod:`autograder.notebooks`: ``<stem>/`` per notebook: hidden tests, reference builder and data, corpus cases.

Layers (checked by import-linter in CI): pipeline -> tools -> engine -> notebooks -> harness | isolation.
"""
