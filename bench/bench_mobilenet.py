"""What pydlr's native convolutions buy in MobileNetV2, side by side in one process.

pydlr's MobileNetV2 (the architecture behind ``pretrained.MobileNetV2`` and fine-tuning) runs on channels-last
activations; its depthwise 3x3 layers take pydlr's tiled depthwise kernels and its small pointwise layers the
dense direct kernel under the default "auto" backend. This times a training step (forward, cross-entropy,
backward, SGD step; BatchNorm in training mode) and inference (eval, no_grad) with the default backend ("auto")
and with torch's convolutions everywhere ("stock"), interleaved in bursts of --steps steps over --rounds rounds
in a fresh order each round, and prints median ms per step and auto / stock (< 1: pydlr faster).

Run: source scripts/env.sh && python bench/bench_mobilenet.py [--size 96] [--batch 32] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydlr import layers  # noqa: E402
from pydlr.models import mobilenet_v2  # noqa: E402

BACKENDS = {"auto": "auto", "stock": "torch"}


def burst(model, opt, x: torch.Tensor, y: torch.Tensor, steps: int, train: bool) -> float:
    """Mean seconds per step over `steps` steps."""
    start = time.perf_counter()
    for _ in range(steps):
        if train:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                model(x)
    return (time.perf_counter() - start) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=96, help="image height and width")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = mobilenet_v2(num_classes=10, input_shape=(args.size, args.size, 3))
    x = torch.randn(args.batch, args.size, args.size, 3)  # channels-last images, as fit() feeds them
    y = torch.randint(0, 10, (args.batch,))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    print(
        f"# torch {torch.__version__}, threads {args.threads}, MobileNetV2 (10 classes) at {args.size}x"
        f"{args.size}, batch {args.batch}, {args.rounds} rounds of {args.steps} steps, "
        f"GLIBC_TUNABLES={'set' if os.environ.get('GLIBC_TUNABLES') else 'unset'}"
    )
    print(f"{'pass':<10} {'auto ms':>9} {'stock ms':>9} {'auto/stock':>11}")
    for train in (True, False):
        model.train(train)
        times: dict[str, list[float]] = {k: [] for k in BACKENDS}
        for backend in BACKENDS.values():  # warm-up: allocations, oneDNN primitives
            with layers.conv_backend(backend):
                burst(model, opt, x, y, 2, train)
        order = random.Random(0)
        for _ in range(args.rounds):
            for name in order.sample(list(BACKENDS), len(BACKENDS)):
                with layers.conv_backend(BACKENDS[name]):
                    times[name].append(1e3 * burst(model, opt, x, y, args.steps, train))
        auto, stock = statistics.median(times["auto"]), statistics.median(times["stock"])
        label = "train" if train else "inference"
        print(f"{label:<10} {auto:9.1f} {stock:9.1f} {auto / stock:11.2f}", flush=True)


if __name__ == "__main__":
    main()
