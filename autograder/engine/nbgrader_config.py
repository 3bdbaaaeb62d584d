# nbgrader configuration of the A2 course kit. `a2kit` loads it and sets the course root; an
# instructor who runs nbgrader by hand passes it with `--config autograder/engine/nbgrader_config.py`.
c = get_config()  # noqa: F821 (provided by traitlets when the file is loaded)

c.CourseDirectory.course_id = "a2-course-kit"

# What students see in place of the solutions.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograding: the per-cell time limit (nbgrader's default is 30 s; the old
# ExecutePreprocessor.timeout is ignored). `a2kit grade` runs no training cell (they are tagged
# grader-skip) and judges test cells outside the kernel (autograder/harness), so this bounds the
# student's own cells.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True

# For plain `nbgrader autograde` by hand only (a2kit's harness never lets output reach a grade):
# nbgrader scores 0 for any stderr in a test cell, so drop warnings and progress bars there.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"\w+Warning: |\d+%\|"
