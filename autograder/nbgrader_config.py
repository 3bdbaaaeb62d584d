# nbgrader configuration of the A2 course kit. `a2kit` loads it and sets the course root; an
# instructor who runs nbgrader by hand passes it with `--config autograder/nbgrader_config.py`.
c = get_config()  # noqa: F821 (provided by traitlets when the file is loaded)

c.CourseDirectory.course_id = "a2-course-kit"

# What students see in place of the solutions.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograding: the per-cell time limit (nbgrader's default is 30 s; the old
# ExecutePreprocessor.timeout is ignored). Grading-mode notebooks load checkpoints instead of
# training, so the slowest cell is a full test-set evaluation on a CPU.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True

# A test cell that writes anything to stderr scores 0 in nbgrader, and a library's warning (a PyTorch
# UserWarning) or a progress bar is enough. Drop stderr outputs that are warnings or tqdm bars after
# execution; errors are separate outputs and still fail the cell.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"\w+Warning: |\d+%\|"
