"""float32 vs precision="bfloat16" (autocast) for the seed CNN on the CPU, side by side in one process.

Two copies of the seed CNN + Dense(64) + Dense(10) with the same initial weights train on the same first
--train images of Fashion-MNIST (batch 64, Adam, 2 threads), epoch by epoch in alternation (the order flips
every epoch), so machine noise hits both alike. Prints each epoch's wall time, the median epoch-time ratio
bfloat16 / float32, and the test accuracy (10,000 images) of both after every epoch.

Run: source scripts/env.sh && python bench/bench_bf16.py [--train 20000] [--epochs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pydlr  # noqa: E402
from pydlr.data import load_fashion_mnist  # noqa: E402
from pydlr.models import seed_cnn  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    (x, y), (xt, yt) = load_fashion_mnist()
    x, y = (x[: args.train] / 255.0).astype("float32"), y[: args.train]
    xt = (xt / 255.0).astype("float32")
    models = {}
    for precision in ("float32", "bfloat16"):
        torch.manual_seed(0)
        m = seed_cnn(model_class=pydlr.Sequential)
        m.compile(optimizer="adam", loss=pydlr.train.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
        models[precision] = m
    times = {k: [] for k in models}
    print(f"seed CNN, {args.train} training images, batch 64, Adam, {args.threads} threads; "
          f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}")
    for epoch in range(args.epochs):
        order = list(models) if epoch % 2 == 0 else list(models)[::-1]
        for precision in order:
            t0 = time.perf_counter()
            models[precision].fit(x, y, batch_size=64, epochs=1, verbose=0, seed=epoch, precision=precision)
            times[precision].append(time.perf_counter() - t0)
        acc = {k: m.evaluate(xt, yt, batch_size=256, return_dict=True)["accuracy"] for k, m in models.items()}
        print(f"epoch {epoch + 1}: float32 {times['float32'][-1]:.2f} s, bfloat16 {times['bfloat16'][-1]:.2f} s; "
              f"test accuracy float32 {acc['float32']:.4f}, bfloat16 {acc['bfloat16']:.4f}")
    ratio = statistics.median(b / f for b, f in zip(times["bfloat16"], times["float32"], strict=True))
    print(f"epoch time bfloat16 / float32: median of per-epoch ratios {ratio:.3f}")


if __name__ == "__main__":
    main()
