"""Reference values on disk: what the hidden tests compare with, read in the trusted process only.

A notebook's references live in its folder (``autograder/notebooks/<stem>/reference/``), one file per
reference: ``NAME.npz`` when every value is a number or a numeric array (loaded back as arrays),
else ``NAME.json`` (arrays become nested lists). ``autograder.tools.build_references`` writes them
from the executed source notebook; they never enter a student's kernel.
"""
from __future__ import annotations

import json
import numbers
from pathlib import Path

import numpy as np


def _is_numeric(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biufc"
    return isinstance(value, (numbers.Number, np.generic)) and not isinstance(value, bool)


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().cpu().numpy().tolist()
    return value


def write_reference(folder: Path, name: str, values: dict) -> Path:
    """Write one reference as ``folder/name.npz`` (all numeric) or ``.json``; remove the other; return the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    values = {k: (v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in values.items()}
    numeric = all(_is_numeric(v) for v in values.values())
    path = folder / f"{name}.{'npz' if numeric else 'json'}"
    stale = folder / f"{name}.{'json' if numeric else 'npz'}"
    if numeric:
        np.savez_compressed(path, **{k: np.asarray(v) for k, v in values.items()})
    else:
        path.write_text(json.dumps(_jsonable(values), indent=1, sort_keys=True) + "\n")
    stale.unlink(missing_ok=True)
    return path


def load_reference(folder: Path, name: str) -> dict:
    """Reference ``name`` of ``folder``: numpy arrays from .npz, plain values from .json."""
    npz, js = Path(folder) / f"{name}.npz", Path(folder) / f"{name}.json"
    if npz.exists():
        with np.load(npz, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    if js.exists():
        return json.loads(js.read_text())
    raise FileNotFoundError(f"No reference values named {name!r} in {folder}: generate them with `a2kit reference`.")
