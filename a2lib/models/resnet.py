"""ResNet-32 for CIFAR (He et al. 2016, section 4.2), as in the class-balanced loss reference code.

Three stages of 5 BasicBlocks with 16, 32 and 64 channels; a stage that halves the resolution
uses the parameter-free "option A" shortcut (subsample, then zero-pad the new channels).
About 0.46 M parameters.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class ShortcutA(nn.Module):
    """Identity shortcut across a stride-2 block: keep every other pixel, zero-pad the channels."""

    def __init__(self, extra_channels: int):
        super().__init__()
        self.extra = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.extra // 2
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, half, self.extra - half))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU. [B, in, H, W] -> [B, out, H/stride, W/stride]."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Identity() if stride == 1 and in_planes == planes else ShortcutA(planes - in_planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCIFAR(nn.Module):
    """ResNet for 32x32 images: [B, 3, 32, 32] -> logits [B, num_classes]."""

    def __init__(self, blocks_per_stage=(5, 5, 5), widths=(16, 32, 64), num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, in_planes = [], widths[0]
        for stage, (n, planes) in enumerate(zip(blocks_per_stage, widths)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(BasicBlock(in_planes, planes, stride))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


def resnet32(num_classes: int = 10) -> ResNetCIFAR:
    """ResNet-32 for CIFAR: 1 + 3 * 5 * 2 + 1 = 32 weighted layers."""
    return ResNetCIFAR((5, 5, 5), (16, 32, 64), num_classes)
