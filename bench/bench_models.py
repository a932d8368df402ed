"""Overhead of pydlr's Keras-style model layer vs. the same network written in plain torch.

The seed CNN (Conv2D 32/64/64 + pooling + Dense 64 + Dense 10) is timed three ways, side by side in one
process, interleaved rep by rep, medians of ``--reps`` rounds of ``--iters`` steps, batch 64, float32,
torch.set_num_threads(2):

* ``torch``: a hand-written ``nn.Sequential`` (NCHW-shaped, channels-last memory, as pydlr runs inside);
* ``pydlr/native``: ``pydlr.models.seed_cnn()`` with ``conv_backend("native")`` (``pydlr.ops.conv2d``, relu fused);
* ``pydlr/torch``: the same model with ``conv_backend("torch")`` (torch's conv; shows the layer overhead).

Each is timed for inference (``fwd``, eval, no_grad) and a training step (``fwd+bwd``). ``ratio`` is
pydlr time / torch time (1.00 = no overhead). The allocator setting in effect is printed: compare runs
made under the same one (scripts/env.sh sets it).

Run: ``source scripts/env.sh && python bench/bench_models.py [--reps 7] [--iters 20]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from pydlr import layers, models

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from test_models import torch_seed_cnn  # noqa: E402  (the tests' plain-torch twin, weights copied in)


def timed(fn: Callable[[], object], iters: int) -> float:
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = models.seed_cnn()
    reference = torch_seed_cnn(model).to(memory_format=torch.channels_last)
    x_nhwc = torch.rand(args.batch, 28, 28, 1)
    x_nchw = x_nhwc.permute(0, 3, 1, 2)  # channels-last memory, as pydlr's models see it

    def infer(net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return net(x)

        return run

    def train(net: nn.Module, x: torch.Tensor) -> Callable[[], object]:
        def run() -> object:
            net.zero_grad(set_to_none=True)
            net(x).square().mean().backward()

        return run

    variants = {
        "torch": (reference, x_nchw, None),
        "pydlr/native": (model, x_nhwc, "native"),
        "pydlr/torch": (model, x_nhwc, "torch"),
    }
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.reps):
        for mode in ("fwd", "fwd+bwd"):
            for name, (net, x, backend) in variants.items():
                net.train(mode != "fwd")
                if mode == "fwd":
                    net.eval()
                step = infer(net, x) if mode == "fwd" else train(net, x)
                with layers.conv_backend(backend or layers.get_conv_backend()):
                    step()  # warm-up
                    results.setdefault((mode, name), []).append(timed(step, args.iters))
    print(
        f"seed CNN, batch {args.batch}, 2 threads, GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}"
    )
    print(f"{'mode':<8} {'variant':<13} {'median ms':>10} {'ratio vs torch':>15}")
    for mode in ("fwd", "fwd+bwd"):
        base = statistics.median(results[(mode, "torch")])
        for name in variants:
            ms = statistics.median(results[(mode, name)])
            print(f"{mode:<8} {name:<13} {ms:>10.3f} {ms / base:>15.2f}")


if __name__ == "__main__":
    main()
