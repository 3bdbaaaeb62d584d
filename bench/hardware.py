"""What a benchmark ran on, in one line: processor (or GPU), cores, load, torch; and which CIFAR-10 files."""
from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    """The processor's marketing name from /proc/cpuinfo (the architecture where that is not readable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: torch.device | str | None = None) -> str:
    """E.g. ``"Intel(R) Xeon(R) Processor, 2 cores (load 0.1 at start), CPU only, torch 2.14.1 (2 threads)"``."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    load = f" (load {os.getloadavg()[0]:.1f} at start)" if hasattr(os, "getloadavg") else ""
    where = (f"GPU {torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})" if device.type == "cuda"
             else "CPU only")
    return (f"{cpu_model()}, {os.cpu_count()} cores{load}, {where}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def data_note(root: Path) -> str:
    """Whether the CIFAR-10 files are the original ones (torchvision's md5) or a rebuilt copy."""
    import torchvision

    expected = dict(torchvision.datasets.CIFAR10.test_list)["test_batch"]
    path = Path(root) / "cifar-10-batches-py" / "test_batch"
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    if digest == expected:
        return "CIFAR-10, original files"
    return ("CIFAR-10 rebuilt from a JPEG copy (not the original pixels: accuracies can differ slightly "
            "from published figures)")
