"""The kit's two speeds, grading mode, and seeding.

Every notebook's setup cell says ``FAST = fast_mode(default=False)``: the fast mode runs the same
code path on small subsets and few epochs (CI executes every notebook end to end on a CPU in
minutes); the full mode runs the real experiment. ``grading()`` is True while nbgrader autogrades
(the checks then hold fast-mode runs to the thresholds); student cells never need it: the grader
does not run the training cells.
"""
from __future__ import annotations

import os
import random

import numpy as np

_TRUE = {"1", "true", "yes", "on"}


def fast_mode(default: bool = False) -> bool:
    """True when the environment variable ``A2_FAST`` is set to 1/true/yes/on."""
    value = os.environ.get("A2_FAST")
    return default if value is None else value.strip().lower() in _TRUE


def grading() -> bool:
    """True while nbgrader autogrades the notebook (it sets ``NBGRADER_EXECUTION``)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def seed_everything(seed: int = 0, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices); optionally ask torch for deterministic kernels."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        use_deterministic_algorithms()


def use_deterministic_algorithms() -> None:
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` without its import of the compiler.

    The public call imports ``torch._inductor`` (about 4 s on a CPU) only to copy the flag into the
    compiler's config; the kit never compiles, so the flag is set directly, and copied into that
    config only when something already imported it.
    """
    import sys

    import torch

    torch._C._set_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    inductor_config = sys.modules.get("torch._inductor.config")
    if inductor_config is not None:
        inductor_config.deterministic = True
