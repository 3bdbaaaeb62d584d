"""Reference values of notebook 2 (the numpy ConvNet), from the source notebook's solutions.

``numpy_sgd``: the parameters after each of two ``SGD.update`` calls on seeded parameters and
gradients (``a2lib.checks.numpy_nn.sgd_problem(7)``); the hidden test of SGD compares the
student's trajectory with it. The layers' hidden tests compare with ``torch.nn.functional`` directly.
"""
from __future__ import annotations

from a2lib.checks.numpy_nn import SGD_SETTINGS, sgd_problem, sgd_trajectory

SGD_SEED = 7


def build(ns: dict) -> dict:
    return {"numpy_sgd": sgd_trajectory(ns["SGD"], sgd_problem(SGD_SEED), **SGD_SETTINGS)}
