"""Notebook 03_cnn_design: its hidden tests, reference builder and data, corpus cases (see autograder/notebooks)."""
