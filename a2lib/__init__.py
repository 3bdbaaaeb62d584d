"""a2lib: what the A2 course kit gives students and the autograder.

Data (CIFAR-10, long-tailed CIFAR-10, synthetic data), the ResNet-32 students are given, the
training engine, evaluation, plots, the numpy-network scaffolding and the helpers that the
notebooks' test cells call. It never contains a solution: those live in the notebooks.
"""

__version__ = "0.1.0"
