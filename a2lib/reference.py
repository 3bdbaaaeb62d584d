"""Reference values for the hidden tests.

They are generated from the source notebooks' solutions by ``python -m autograder.reference`` into
``autograder/reference/NAME.npz`` (arrays) or ``NAME.json``; never typed in by hand. The folder is
taken from ``A2_REFERENCE_DIR`` when set (the grader sets it), else from the kit's checkout.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

_CHECKOUT_REFERENCE = Path(__file__).resolve().parent.parent / "autograder" / "reference"


def reference_dir() -> Path:
    return Path(os.environ.get("A2_REFERENCE_DIR", _CHECKOUT_REFERENCE))


def load(name: str) -> dict:
    """Load reference values ``name`` as a dict (numpy arrays from .npz, plain values from .json)."""
    folder = reference_dir()
    npz, js = folder / f"{name}.npz", folder / f"{name}.json"
    if npz.exists():
        with np.load(npz, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    if js.exists():
        return json.loads(js.read_text())
    raise FileNotFoundError(
        f"No reference values named {name!r} in {folder}. "
        "Instructors: generate them with `python -m autograder.reference`."
    )
