"""Notebook 01_theory: its hidden tests, reference builder and data, corpus cases (see autograder/notebooks)."""
