"""Writes lookup_mymodel.pt: a valid checkpoint of the tiny network inside ``cheat_lookup_model``'s
MyModel (which answers by looking its input up in the test set, not with these weights).

    python autograder/notebooks/03_cnn_design/files/cheat/make_lookup_mymodel.py
"""
from pathlib import Path

import torch
from torch import nn

from a2lib.checkpoint import save_checkpoint


class MyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(8, 10)


if __name__ == "__main__":
    torch.manual_seed(0)
    save_checkpoint(Path(__file__).with_name("lookup_mymodel.pt"), MyModel())
