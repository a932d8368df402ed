"""Benchmark pydlr's native convolution against torch.nn.functional.conv2d, side by side in one process.

Batch 64, torch.set_num_threads(2), float32. For every layer and input layout (NCHW-contiguous and
channels_last) it times, interleaving the two implementations rep by rep and taking medians:

* ``plain``: pydlr ``ops.conv2d`` vs ``F.conv2d`` (with bias);
* ``fused``: pydlr ``ops.conv2d(..., activation=act)`` vs ``F.conv2d`` followed by ``relu``/``relu6``
  (skipped for linear layers such as MobileNetV2's pointwise projections);

each forward only (``fwd``) and forward + backward (``fwd+bwd``: grads of weight, bias and, except for the
network's first layer, of the input). ``speedup`` is torch time / pydlr time (> 1: pydlr faster). ``kernel`` is
the forward kernel pydlr picked for the shape (``winograd_f43`` / ``winograd_f33``: Winograd F(4x4, 3x3) or
F(3x3, 3x3), whose backward computes the weight gradient in the Winograd domain too; ``onednn``: oneDNN with the
activation as a post-op, see native/conv_onednn.cpp); ``target`` is the speedup the row must reach (fused seed layers >= 1.0x, depthwise >= 1.0x,
other plain rows >= 0.8x). ``--own`` switches the oneDNN route off: pydlr's own kernels on every shape.

Run: ``source scripts/env.sh && python bench/bench_conv.py [--quick] [--layout nchw|cl|both] [--own]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pydlr import ops


@dataclass(frozen=True)
class Layer:
    """One benchmarked convolution."""

    name: str
    cin: int
    cout: int
    size: int
    kernel: int
    stride: int
    padding: int
    groups: int
    act: str  # "relu", "relu6" or "none" (linear layer: no fused row)
    input_grad: bool = True
    pool: int = (
        0  # > 0: followed by max pooling (pool x pool, stride pool); pydlr runs ops.conv2d_act_pool
    )


LAYERS = [
    Layer("seed 1->32 @28", 1, 32, 28, 3, 1, 0, 1, "relu", input_grad=False),
    Layer("seed 1->32 @28 +pool2", 1, 32, 28, 3, 1, 0, 1, "relu", input_grad=False, pool=2),
    Layer("seed 32->64 @13", 32, 64, 13, 3, 1, 0, 1, "relu"),
    Layer("seed 64->64 @5", 64, 64, 5, 3, 1, 0, 1, "relu"),
    Layer("mnv2 dw3x3 32 s1 @112", 32, 32, 112, 3, 1, 1, 32, "relu6"),
    Layer("mnv2 dw3x3 96 s2 @112", 96, 96, 112, 3, 2, 1, 96, "relu6"),
    Layer("mnv2 dw3x3 144 s1 @56", 144, 144, 56, 3, 1, 1, 144, "relu6"),
    Layer("mnv2 dw3x3 144 s2 @56", 144, 144, 56, 3, 2, 1, 144, "relu6"),
    Layer("mnv2 pw1x1 32->16 @112", 32, 16, 112, 1, 1, 0, 1, "none"),
    Layer("mnv2 pw1x1 96->24 @56", 96, 24, 56, 1, 1, 0, 1, "none"),
]

ACT_FN = {"relu": torch.relu, "relu6": F.relu6}


def _torch_fn(layer: Layer, fused: bool):
    def run(x, w, b):
        y = F.conv2d(x, w, b, layer.stride, layer.padding, 1, layer.groups)
        y = ACT_FN[layer.act](y) if fused else y
        return F.max_pool2d(y, layer.pool) if layer.pool else y

    return run


def _pydlr_fn(layer: Layer, fused: bool):
    act = layer.act if fused else "none"
    geometry = ((layer.stride,) * 2, (layer.padding,) * 2, (1, 1), layer.groups, act)

    def run(x, w, b):
        if layer.pool:  # convolution, bias, activation and pooling in one operator
            return ops.conv2d_act_pool(x, w, b, *geometry, layer.pool)
        return ops.conv2d(x, w, b, *geometry)

    return run


def _target(layer: Layer, fused: bool) -> float:
    """The minimum speedup for a row (the project's bar for native kernels)."""
    if layer.groups > 1 and layer.groups == layer.cin:
        return 1.0
    return 1.0 if fused and layer.name.startswith("seed") else 0.8


def _timed(fn, x, w, b, gy, backward: bool) -> float:
    start = time.perf_counter()
    if backward:
        fn(x, w, b).backward(gy)
        x.grad = w.grad = b.grad = None
    else:
        with torch.no_grad():
            fn(x, w, b)
    return time.perf_counter() - start


def bench_case(
    layer: Layer, channels_last: bool, fused: bool, backward: bool, budget_s: float, batch: int
):
    """Median seconds of torch and pydlr for one case, interleaved rep by rep."""
    gen = torch.Generator().manual_seed(0)
    if channels_last:
        # NHWC memory viewed as NCHW, as pydlr's layers see their inputs. Not .contiguous(channels_last): with
        # one channel that gives NCHW-compatible strides, and torch and pydlr then both take their NCHW paths.
        x = torch.randn(batch, layer.size, layer.size, layer.cin, generator=gen).permute(0, 3, 1, 2)
    else:
        x = torch.randn(batch, layer.cin, layer.size, layer.size, generator=gen)
    w = (
        torch.randn(
            layer.cout, layer.cin // layer.groups, layer.kernel, layer.kernel, generator=gen
        )
        * 0.1
    )
    b = torch.randn(layer.cout, generator=gen) * 0.1
    x.requires_grad_(backward and layer.input_grad)
    w.requires_grad_(backward)
    b.requires_grad_(backward)
    fns = {"torch": _torch_fn(layer, fused), "pydlr": _pydlr_fn(layer, fused)}
    with torch.no_grad():
        ref = fns["torch"](x, w, b)
    gy = (
        torch.randn(ref.shape, generator=gen).contiguous(memory_format=torch.channels_last)
        if channels_last
        else torch.randn(ref.shape, generator=gen)
    )
    times: dict[str, list[float]] = {"torch": [], "pydlr": []}
    for name in fns:  # warm-up (allocator, first-touch, oneDNN primitive cache)
        for _ in range(2):
            _timed(fns[name], x, w, b, gy, backward)
    first = sum(_timed(fns[n], x, w, b, gy, backward) for n in fns)
    reps = int(min(200, max(7, budget_s / max(first, 1e-6))))
    for _ in range(reps):
        for name in fns:
            times[name].append(_timed(fns[name], x, w, b, gy, backward))
    kernel = (
        "conv_act_pool"
        if layer.pool
        else ops._C.conv2d_cpu_path(x, w, [layer.stride] * 2, [layer.padding] * 2, [1, 1], layer.groups)
    )
    return statistics.median(times["torch"]), statistics.median(times["pydlr"]), reps, kernel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter time budget per case")
    parser.add_argument("--layout", choices=["nchw", "cl", "both"], default="both")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--only", default="", help="substring filter on layer names")
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads (2 as specified; 1 is steadier on a shared machine)",
    )
    parser.add_argument(
        "--own", action="store_true", help="pydlr's own kernels on every shape (no oneDNN route)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ops._C.set_onednn_enabled(not args.own)
    budget = 0.4 if args.quick else 1.5
    info = ops.build_info()
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}, float32"
    )
    print(f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset: glibc default allocator)')}")
    print(f"pydlr build: {info}")
    layouts = {"nchw": [False], "cl": [True], "both": [False, True]}[args.layout]
    header = (
        f"{'layer':24s} {'layout':6s} {'op':5s} {'pass':7s} {'torch ms':>9s} {'pydlr ms':>9s} "
        f"{'speedup':>8s} {'reps':>5s}  {'kernel':14s} target"
    )
    missed = []
    print(header)
    print("-" * len(header))
    for layer in LAYERS:
        if args.only and args.only not in layer.name:
            continue
        for cl in layouts:
            for fused in [False, True] if layer.act != "none" else [False]:
                for backward in (False, True):
                    t_torch, t_pydlr, reps, kernel = bench_case(
                        layer, cl, fused, backward, budget, args.batch
                    )
                    target = _target(layer, fused)
                    row = (
                        f"{layer.name:24s} {'cl' if cl else 'nchw':6s} {'fused' if fused else 'plain':5s} "
                        f"{'fwd+bwd' if backward else 'fwd':7s} {t_torch * 1e3:9.3f} {t_pydlr * 1e3:9.3f} "
                        f"{t_torch / t_pydlr:7.2f}x {reps:5d}  {kernel:14s}"
                    )
                    met = t_torch / t_pydlr >= target
                    print(f"{row} >={target:.1f} {'met' if met else 'MISSED'}", flush=True)
                    if not met:
                        missed.append(row)
    print(f"\n{len(missed)} row(s) below its target" + (":" if missed else "."))
    for row in missed:
        print("  " + row)


if __name__ == "__main__":
    main()
