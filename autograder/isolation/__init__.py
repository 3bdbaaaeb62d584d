"""Isolation of student code: the bubblewrap sandbox (``sandbox``) and the sandboxed Jupyter kernel
that nbgrader starts (``kernel``)."""
