"""Per layer of the seed CNN's training step: forward + backward time of pydlr's float32 path against torch's
bfloat16 (oneDNN) and float32 paths, side by side in one process.

Layers (batch 64, channels-last, 2 threads): conv1 1->32 at 28x28 + ReLU + 2x2 max pool, conv2 32->64 at 13x13 +
ReLU + pool, conv3 64->64 at 5x5 + ReLU, dense 576->64 + ReLU, dense 64->10. Candidates per layer:

    pydlr-f32   what pydlr's float32 training runs (native fused conv + pool, Winograd, NativeAdam's layouts)
    torch-f32   torch's conv2d / linear + relu + max_pool2d in float32 (oneDNN)
    torch-bf16  the same under torch.autocast("cpu", bfloat16): weights cast each step, oneDNN's bf16 kernels,
                float32 gradients for the float32 weights (what precision="bfloat16" means)
    bf16-pure   bfloat16 input and weights without casts (the kernel's own speed, a lower bound for bf16)

Each round times --reps calls of every candidate (forward + backward with a dense upstream gradient, or the forward
alone), alternating the order; a candidate's figure is the smallest of its per-round medians (on a shared machine
the noise only adds time). Prints tables in milliseconds and torch-bf16's ratio to pydlr-f32.

Run: source scripts/env.sh && python bench/bench_bf16_layers.py [--reps 30] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydlr import ops  # noqa: E402

CL = torch.channels_last
# name: (input shape NCHW, weight shape or None for dense, pool after)
LAYERS = {
    "conv1 1->32 28x28 +pool": ((64, 1, 28, 28), (32, 1, 3, 3), True),
    "conv2 32->64 13x13 +pool": ((64, 32, 13, 13), (64, 32, 3, 3), True),
    "conv3 64->64 5x5": ((64, 64, 5, 5), (64, 64, 3, 3), False),
    "dense 576->64 relu": ((64, 576), (64, 576), False),
    "dense 64->10": ((64, 64), (10, 64), False),
}


def _layer_fn(name: str, candidate: str):
    """A closure running one forward + backward of the layer in the candidate's way."""
    xshape, wshape, pool = LAYERS[name]
    dense = len(xshape) == 2
    torch.manual_seed(0)
    x = torch.randn(xshape)
    w = torch.randn(wshape) * 0.1
    b = torch.zeros(wshape[0])
    if not dense:
        x = x.contiguous(memory_format=CL)
    if candidate == "bf16-pure":
        x, w, b = x.bfloat16(), w.bfloat16(), b.bfloat16()
    x.requires_grad_(name != "conv1 1->32 28x28 +pool")  # the first layer needs no input gradient
    w.requires_grad_(True)
    b.requires_grad_(True)
    relu = name != "dense 64->10"

    def forward():
        if dense:
            y = F.linear(x, w, b)
            return torch.relu(y) if relu else y
        if candidate == "pydlr-f32":
            if pool:
                return ops.conv2d_act_pool(x, w, b, 1, 0, 1, 1, "relu", 2, 2)
            return ops.conv2d(x, w, b, 1, 0, 1, 1, activation="relu")
        y = torch.relu(F.conv2d(x, w, b))
        return F.max_pool2d(y, 2) if pool else y

    def step(backward: bool = True):
        if candidate == "torch-bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = forward()
        else:
            y = forward()
        if backward:
            y.backward(torch.ones_like(y))  # dense (not expanded) upstream gradient, as in training
            x.grad = w.grad = b.grad = None

    return step


def _median_ms(fn, reps: int, backward: bool) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(backward)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    candidates = ("pydlr-f32", "torch-f32", "torch-bf16", "bf16-pure")
    print(f"batch 64, {args.threads} threads, channels-last; GLIBC_TUNABLES="
          f"{os.environ.get('GLIBC_TUNABLES', '(unset)')}; ms, smallest per-round median")
    for backward in (True, False):
        print("forward + backward" if backward else "forward only (gradients on, as in training)")
        print(f"{'layer':26s}" + "".join(f"{c:>12s}" for c in candidates) + "   torch-bf16/pydlr-f32")
        total = dict.fromkeys(candidates, 0.0)
        for name in LAYERS:
            fns = {c: _layer_fn(name, c) for c in candidates}
            for fn in fns.values():
                for _ in range(5):
                    fn()
            runs = {c: [] for c in candidates}
            for r in range(args.rounds):
                for c in candidates if r % 2 == 0 else candidates[::-1]:
                    runs[c].append(_median_ms(fns[c], args.reps, backward))
            med = {c: min(v) for c, v in runs.items()}
            for c in candidates:
                total[c] += med[c]
            print(f"{name:26s}" + "".join(f"{med[c]:12.3f}" for c in candidates)
                  + f"   {med['torch-bf16'] / med['pydlr-f32']:.2f}")
        print(f"{'sum':26s}" + "".join(f"{total[c]:12.3f}" for c in candidates)
              + f"   {total['torch-bf16'] / total['pydlr-f32']:.2f}")


if __name__ == "__main__":
    main()
