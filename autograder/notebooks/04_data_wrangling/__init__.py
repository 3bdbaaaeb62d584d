"""Notebook 04_data_wrangling: its hidden tests, reference builder and data, corpus cases (see autograder/notebooks)."""
