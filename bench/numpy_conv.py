"""Benchmark: the reference numpy Conv2D (notebook 2's solution) against PyTorch and a plain loop version.

Forward + backward on CIFAR-sized batches, float64 and float32, in the same run:

* ``torch``: ``torch.nn.functional.conv2d`` with autograd on the CPU (the field's implementation);
* ``reference``: notebook 2's ``Conv2D`` (im2col + one matrix product; k*k strided adds for dx),
  taken from the source notebook's solution cells, so the benchmark times what students are graded on;
* ``loop``: the textbook version with a Python loop over images, filters and output pixels. It is
  timed on ``--loop-images`` images and scaled to the batch (its cost is exactly linear in N).

Timing: the best of ``--repeats`` runs in CPU seconds of this process (``time.process_time``), with
one thread for numpy's BLAS and for torch by default, so that a busy shared machine changes the
figures little and both sides get the same cores. Set ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``
before running to compare with more threads (CPU seconds then add up over the threads).

Prints a table and writes ``bench/results/numpy_conv.json`` with ``torch_ratio`` (reference time /
torch time, the worst shape) and ``loop_speedup`` (loop time / reference time, the worst shape).
Targets: torch_ratio <= 3, loop_speedup >= 50.

    .venv/bin/python bench/numpy_conv.py [--batch 64] [--repeats 3] [--loop-images 2]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy and torch load
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from hardware import describe  # bench/hardware.py

KIT_ROOT = Path(__file__).resolve().parent.parent
RESULTS = KIT_ROOT / "bench" / "results" / "numpy_conv.json"
# (in_channels, out_channels, kernel_size, stride, padding, image size): CIFAR's first and second stages
SHAPES = [(3, 32, 3, 1, 1, 32), (3, 32, 5, 1, 2, 32), (32, 64, 3, 1, 1, 16), (32, 64, 5, 1, 2, 16)]


def reference_conv_class():
    """``Conv2D`` as defined by notebook 2's solution cells."""
    from autograder.tools.solutions import load_solution_namespace

    return load_solution_namespace(KIT_ROOT / "notebooks" / "02_numpy_convnet.ipynb")["Conv2D"]


# -- the plain loop baseline -----------------------------------------------------------------------
def loop_forward(x, w, b, stride, padding):
    n, _, h, wid = x.shape
    f, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    h_out, w_out = (h + 2 * padding - k) // stride + 1, (wid + 2 * padding - k) // stride + 1
    out = np.zeros((n, f, h_out, w_out), dtype=x.dtype)
    for i in range(n):
        for o in range(f):
            for r in range(h_out):
                for c in range(w_out):
                    window = xp[i, :, r * stride:r * stride + k, c * stride:c * stride + k]
                    out[i, o, r, c] = np.sum(window * w[o]) + b[o]
    return out


def loop_backward(dout, x, w, stride, padding):
    n, _, h, wid = x.shape
    f, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for i in range(n):
        for o in range(f):
            for r in range(dout.shape[2]):
                for c in range(dout.shape[3]):
                    rows, cols = slice(r * stride, r * stride + k), slice(c * stride, c * stride + k)
                    dw[o] += dout[i, o, r, c] * xp[i, :, rows, cols]
                    dxp[i, :, rows, cols] += dout[i, o, r, c] * w[o]
    return dxp[:, :, padding:padding + h, padding:padding + wid], dw, db


# -- timing ---------------------------------------------------------------------------------------
def best_of(fn, repeats: int) -> float:
    """Smallest CPU time (seconds, all of this process's threads) of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def time_shape(conv_class, shape, batch, dtype, repeats, loop_images, rng):
    c_in, c_out, k, s, p, size = shape
    x = rng.normal(size=(batch, c_in, size, size)).astype(dtype)
    layer = conv_class(c_in, c_out, k, s, p)
    layer.weight = (rng.normal(size=layer.weight.shape) * 0.1).astype(dtype)
    layer.bias = rng.normal(size=layer.bias.shape).astype(dtype)
    dout = rng.normal(size=layer.forward(x).shape).astype(dtype)

    def reference():
        layer.forward(x)
        layer.backward(dout)

    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, layer.weight, layer.bias))
    doutt = torch.tensor(dout)

    def with_torch():
        xt.grad = wt.grad = bt.grad = None
        F.conv2d(xt, wt, bt, stride=s, padding=p).backward(doutt)

    # Same numbers from all three before timing anything.
    reference()
    with_torch()
    tol = 1e-8 if dtype == np.float64 else 1e-3
    scale = float(np.abs(wt.grad.numpy()).max())
    assert np.abs(layer.dw - wt.grad.numpy()).max() <= tol * scale, "reference dw differs from torch"
    few = slice(0, loop_images)
    loop_out = loop_forward(x[few], layer.weight, layer.bias, s, p)
    loop_dx, loop_dw, _ = loop_backward(dout[few], x[few], layer.weight, s, p)
    few_out = layer.forward(x[few])
    assert np.abs(loop_out - few_out).max() <= tol * max(1.0, float(np.abs(few_out).max())), "loop output differs"
    layer.backward(dout[few])
    assert np.abs(loop_dx - layer.dx).max() <= tol * max(1.0, float(np.abs(layer.dx).max())), "loop dx differs"

    t_ref = best_of(reference, repeats)
    t_torch = best_of(with_torch, repeats)
    t_loop_few = best_of(lambda: (loop_forward(x[few], layer.weight, layer.bias, s, p),
                                  loop_backward(dout[few], x[few], layer.weight, s, p)), 1)
    t_loop = t_loop_few * batch / loop_images
    return {"shape": f"{c_in}->{c_out} k{k} {size}x{size}", "dtype": np.dtype(dtype).name, "batch": batch,
            "reference_s": t_ref, "torch_s": t_torch, "loop_s": t_loop,
            "torch_ratio": t_ref / t_torch, "loop_speedup": t_loop / t_ref}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-images", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    hw = f"{describe()}, numpy {np.__version__}"
    conv_class = reference_conv_class()
    rng = np.random.default_rng(0)
    rows = [time_shape(conv_class, shape, args.batch, dtype, args.repeats, args.loop_images, rng)
            for dtype in (np.float64, np.float32) for shape in SHAPES]
    table = pd.DataFrame(rows)
    print(f"Conv2D forward + backward, CPU seconds, batch {args.batch}, best of {args.repeats} "
          f"(loop: {args.loop_images} images, scaled to the batch); {hw}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    result = {
        "torch_ratio": float(table["torch_ratio"].max()),
        "loop_speedup": float(table["loop_speedup"].min()),
        "targets": {"torch_ratio": "<= 3", "loop_speedup": ">= 50"},
        "timing": "best CPU seconds (time.process_time) of forward + backward", "threads": torch.get_num_threads(),
        "batch": args.batch, "repeats": args.repeats, "loop_images": args.loop_images,
        "hardware": hw, "rows": rows,
    }
    print(f"torch_ratio (worst shape) = {result['torch_ratio']:.2f}   loop_speedup (worst shape) = {result['loop_speedup']:.0f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
