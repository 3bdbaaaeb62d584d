"""a2lib: the A2 course's student package (a wheel beside the release's notebooks).

Data (CIFAR-10, long-tailed CIFAR-10, synthetic data), the ResNet-32 students are given, the
training engine, the notebooks' workflow (:mod:`a2lib.workflow`), evaluation, plots, the
numpy-network scaffolding and the visible checks. It never contains a solution, a reference value
or a hidden test: those stay with the instructor kit (the wheel is scanned when it is released).
"""

__version__ = "0.1.0"
