"""Notebook 02_numpy_convnet: its hidden tests, reference builder and data, corpus cases (see autograder/notebooks)."""
