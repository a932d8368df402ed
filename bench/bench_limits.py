"""How far the seed CNN's training step is from this machine's limits: each layer's time against the work it must do.

Two parts, measured in one run:

1. This machine's peaks, with the threads given: float32 GEMM GFLOP/s (torch.mm on square matrices, the
   best size) and memory GB/s (reading a 1 GiB tensor with torch.sum, and copying one with copy_,
   counting the bytes read plus the bytes written).
2. Each layer of the seed CNN + dense head (batch 64, channels-last, as fit() runs it) timed alone, forward and
   forward + backward, on the input the layer really sees in the model and a dense upstream gradient; the
   first layer computes no input gradient, as in training. For each: the FLOPs of a direct computation
   (2 x multiply-adds; pydlr's Winograd kernels do fewer, so a share above 100% is possible there), the
   least bytes it must move (inputs, weights and outputs once each), and the share of the limit reached:
   the roofline time max(FLOPs / GEMM peak, bytes / memory peak) divided by the measured time.
   The whole step (loss, backward, pydlr's Adam) is timed too; the gap to the sum of the layers is what
   Python, the loss and the optimizer cost.

Run: source scripts/env.sh && python bench/bench_limits.py [--threads 2] [--batch 64] [--reps 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydlr.data import load_fashion_mnist  # noqa: E402
from pydlr.layers.base import inside_model  # noqa: E402
from pydlr.layers.fusion import layer_fusion  # noqa: E402
from pydlr.models import seed_cnn  # noqa: E402
from pydlr.train.optimizers import Adam  # noqa: E402

FLOAT_BYTES = 4


def median_ms(fn: Callable[[], object], reps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def gemm_peak_gflops(reps: int) -> tuple[float, int]:
    """The best float32 GEMM rate over a few square sizes, and the size that gave it."""
    best = (0.0, 0)
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        c = torch.empty(n, n)
        ms = min(median_ms(lambda a=a, b=b, c=c: torch.mm(a, b, out=c), max(3, reps // 10)) for _ in range(2))
        best = max(best, (2 * n**3 / (ms * 1e-3) / 1e9, n))
    return best


def memory_peak_gbs(reps: int) -> dict[str, float]:
    """Read bandwidth (sum over 1 GiB) and copy bandwidth (1 GiB read + 1 GiB written)."""
    n = (1 << 30) // FLOAT_BYTES
    src, dst = torch.ones(n), torch.empty(n)
    gib = n * FLOAT_BYTES / 1e9
    read_ms = median_ms(lambda: src.sum(), max(3, reps // 10))
    copy_ms = median_ms(lambda: dst.copy_(src), max(3, reps // 10))
    return {"read": gib / (read_ms * 1e-3), "copy": 2 * gib / (copy_ms * 1e-3)}


def layer_work(layer: torch.nn.Module, x: torch.Tensor, out: torch.Tensor, grads_input: bool) -> tuple[float, float, float, float]:
    """(forward FLOPs, forward bytes, backward FLOPs, backward bytes) of a direct computation."""
    weights = sum(p.numel() for p in layer.parameters())
    kind = type(layer).__name__
    if kind == "Conv2D":  # weight (out, in / groups, kh, kw): one multiply-add per weight per output pixel
        fwd = 2.0 * out.numel() * layer.weight[0].numel()
    elif kind == "Dense":
        fwd = 2.0 * x.numel() * out.shape[-1]
    else:  # pooling, flatten: no arithmetic to speak of
        fwd = 0.0
    fwd_bytes = FLOAT_BYTES * (x.numel() + weights + out.numel())
    bwd = fwd * (2.0 if grads_input else 1.0) if weights else 0.0
    # upstream gradient and the saved input read, weight gradient and input gradient written
    bwd_bytes = FLOAT_BYTES * (out.numel() + x.numel() + 2 * weights + (x.numel() if grads_input else 0))
    return fwd, fwd_bytes, bwd, bwd_bytes


def layer_inputs(model: torch.nn.Module, x: torch.Tensor) -> list[tuple[torch.nn.Module, torch.Tensor, torch.Tensor]]:
    """Each layer with the input and output it has in a forward pass of the whole model."""
    seen: list[tuple[torch.nn.Module, torch.Tensor, torch.Tensor]] = []
    hooks = [layer.register_forward_hook(lambda m, i, o: seen.append((m, i[0].detach(), o.detach())))
             for layer in model.layers]
    with torch.no_grad(), layer_fusion(False):
        model(x)
    for h in hooks:
        h.remove()
    return seen


def time_layer(layer: torch.nn.Module, x: torch.Tensor, grads_input: bool, reps: int) -> tuple[float, float]:
    """(forward ms, forward + backward ms) of one layer alone, with a dense upstream gradient. The layer runs
    inside_model(): on the internal tensor its model hands it (called from a script, a layer takes NHWC images)."""
    xin = x.clone().requires_grad_(grads_input)
    with torch.no_grad(), inside_model():
        g = torch.randn_like(layer(xin))

    def forward() -> None:
        with torch.no_grad(), inside_model():
            layer(xin)

    def forward_backward() -> None:
        with inside_model():
            out = layer(xin)
        out.backward(g)
        layer.zero_grad(set_to_none=True)

    return median_ms(forward, reps), median_ms(forward_backward, reps)


def step_ms(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, reps: int) -> float:
    opt = Adam().build(list(model.parameters()))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return median_ms(step, reps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--reps", type=int, default=50)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    gflops, gemm_n = gemm_peak_gflops(args.reps)
    mem = memory_peak_gbs(args.reps)
    gbs = max(mem.values())
    print(f"# torch {torch.__version__}, {args.threads} threads, batch {args.batch}")
    print(f"# peaks: GEMM {gflops:.1f} GFLOP/s (float32, n = {gemm_n}); memory {mem['read']:.1f} GB/s read, "
          f"{mem['copy']:.1f} GB/s copy (read + write); the roofline uses {gbs:.1f} GB/s")

    (x_train, y_train), _ = load_fashion_mnist()
    x = torch.from_numpy(x_train[: args.batch]).float().div_(255).unsqueeze(-1)  # NHWC, as fit() feeds
    y = torch.from_numpy(y_train[: args.batch]).long()
    model = seed_cnn(head=True)

    print(f"{'layer':<16} {'fwd ms':>7} {'f+b ms':>7} {'MFLOP':>8} {'MB':>6} {'limit ms':>8} {'share':>6}")
    total = 0.0
    for i, (layer, xin, out) in enumerate(layer_inputs(model, x)):
        grads_input = i > 0
        fwd_ms, fb_ms = time_layer(layer, xin, grads_input, args.reps)
        f_fl, f_by, b_fl, b_by = layer_work(layer, xin, out, grads_input)
        flops, nbytes = f_fl + b_fl, f_by + b_by
        limit_ms = 1e3 * max(flops / (gflops * 1e9), nbytes / (gbs * 1e9))
        total += fb_ms
        width = out.shape[1]  # channels (the model's tensors are NCHW-shaped, channels-last in memory) or units
        name = f"{type(layer).__name__}{'(' + str(width) + ')' if flops else ''}"
        print(f"{name:<16} {fwd_ms:7.3f} {fb_ms:7.3f} {flops / 1e6:8.1f} {nbytes / 1e6:6.2f} {limit_ms:8.3f} "
              f"{limit_ms / fb_ms:6.0%}")
    whole = step_ms(model, x, y, args.reps)
    print(f"{'sum of layers':<16} {'':>7} {total:7.3f}")
    print(f"{'whole step':<16} {'':>7} {whole:7.3f}   (pydlr's defaults: fused conv + pool, native Adam; "
          f"the gap to the sum is loss, optimizer and Python)")


if __name__ == "__main__":
    main()
