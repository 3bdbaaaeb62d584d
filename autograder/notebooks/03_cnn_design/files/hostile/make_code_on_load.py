"""Writes code_on_load.pt: a torch.save checkpoint whose pickle runs a shell command when loaded
without ``weights_only=True`` (it would create ``PWNED`` in the working folder). The corpus case
``hostile_pickle_checkpoint`` submits it as ``checkpoints/mymodel.pt``.

    python autograder/notebooks/03_cnn_design/files/hostile/make_code_on_load.py
"""
import os
from pathlib import Path

import torch


class RunsCodeOnLoad:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


if __name__ == "__main__":
    torch.save({"state_dict": {"weight": RunsCodeOnLoad()}}, Path(__file__).with_name("code_on_load.pt"))
