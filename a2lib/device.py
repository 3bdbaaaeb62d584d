"""Which device to compute on (the settings cell's ``DEVICE`` where it names one, else CUDA, then
Apple's MPS, then the CPU), and on a CPU which precision.

Whether bfloat16 autocast trains faster than float32 on a CPU is not written in its feature flags:
on one AVX512-BF16 CPU without AMX it was 1.6x faster, on another one slower. So it is measured
(:func:`cpu_precision`): on first use, a short timed trial of both on a small convolutional network
(about a second), cached per machine, CPU model, torch version and thread count in
``~/.cache/a2lib/precision.json``. ``A2_PRECISION=float32`` or ``=bfloat16`` forces either; while
the grader runs a notebook nothing is measured (float32, unless forced): grading stays the same
from one kernel to the next.
"""
from __future__ import annotations

import functools
import json
import os
import platform
import time
from pathlib import Path

import torch

from .mode import setting

PRECISION_SETTING = "A2_PRECISION"   # "auto" (default: measured), "float32" or "bfloat16"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "a2lib" / "precision.json"
MARGIN = 0.95   # bfloat16 is chosen when it takes at most this share of float32's time


def default_device() -> torch.device:
    """The settings cell's ``DEVICE`` (``"cuda"``, ``"mps"``, ``"cpu"``) if set, else the fastest one there is."""
    chosen = setting("device")
    if chosen:
        return torch.device(chosen)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def machine_key() -> str:
    """What the measured answer depends on: the machine, its CPU model, torch's version, the thread count."""
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.node()}|{cpu}|torch {torch.__version__}|{torch.get_num_threads()} threads"


def _trial_model() -> torch.nn.Module:
    """A small network of the course's kind (convolutions, pooling, linear layers) for the timed trial."""
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 6 * 6, 128), nn.ReLU(), nn.Linear(128, 10))


def measure_cpu_precisions(batch: int = 32, steps: int = 3, rounds: int = 2) -> dict[str, float]:
    """Seconds per training step (forward, backward, SGD) in float32 and in bfloat16 autocast on this CPU,
    the best of ``rounds`` interleaved rounds of ``steps`` steps after one warm-up step each.

    Random images [batch, 3, 32, 32] and labels [batch]; the torch seed is restored afterwards."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(0)
        x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
        models = {p: _trial_model() for p in ("float32", "bfloat16")}
        best = {p: float("inf") for p in models}
        for _ in range(rounds):
            for precision, model in models.items():
                optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

                def step():
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
                        loss = torch.nn.functional.cross_entropy(model(x).float(), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()

                step()  # warm-up: oneDNN picks its kernels
                start = time.perf_counter()
                for _ in range(steps):
                    step()
                best[precision] = min(best[precision], (time.perf_counter() - start) / steps)
        return best
    finally:
        torch.random.set_rng_state(state)


def _read_cache() -> dict:
    try:
        return json.loads(CACHE.read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(entries: dict) -> None:
    try:
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        tmp = CACHE.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
        tmp.replace(CACHE)
    except OSError:  # a read-only home: measured again next time
        pass


def _cpu_can_bfloat16() -> bool:
    """bfloat16 in hardware (AVX512-BF16 or AMX); elsewhere it is emulated, never faster."""
    cpu = torch.cpu
    return any(bool(getattr(cpu, name, lambda: False)()) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


@functools.lru_cache(maxsize=1)  # asked for every batch: measured (or read) once per process
def cpu_precision() -> str:
    """``"bfloat16"`` or ``"float32"``: the faster on this CPU (see the module docstring)."""
    forced = os.environ.get(PRECISION_SETTING, "auto").strip().lower()
    if forced in ("float32", "bfloat16"):
        return forced
    from .mode import grading

    if grading() or not _cpu_can_bfloat16():
        return "float32"
    key, cache = machine_key(), _read_cache()
    if key not in cache:
        seconds = measure_cpu_precisions()
        choice = "bfloat16" if seconds["bfloat16"] <= MARGIN * seconds["float32"] else "float32"
        cache[key] = {"precision": choice, "seconds_per_step": seconds, "measured_at": time.strftime("%Y-%m-%d")}
        _write_cache(cache)
    return cache[key]["precision"]
