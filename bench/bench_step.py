"""What pydlr's native operators buy inside a training step of the seed CNN, measured side by side.

One process, one model (seed CNN + Dense(64) + Dense(10), channels-last, Adam, batch 64, Fashion-MNIST),
trained in short bursts of --steps steps under each configuration in turn (--rounds rounds, each in a fresh
random order), so that machine noise hits every configuration alike. Configurations:

    auto        pydlr's default: per shape, the native fused conv + bias + ReLU where it is faster than
                torch's (pydlr.ops.native_wins), native max pooling, and the first Conv2D + MaxPooling2D as
                one fused op (pydlr.layers.fusion)
    auto-nofuse the same, layer by layer (no conv + pool fusion)
    auto-tpool  the same with torch's max_pool2d (and so no fusion)
    auto-tadam  auto with torch's fused Adam instead of pydlr's one-call NativeAdam (every other
                configuration uses pydlr's Adam, as fit() does)
    auto-tloss  auto with torch's cross_entropy instead of fit()'s sparse categorical cross-entropy loss
                (pydlr.ops.softmax_cross_entropy, one autograd node; every configuration but stock uses fit()'s)
    native      every convolution native (set_conv_backend("native")), native max pooling
    stock       torch's conv2d + relu, max_pool2d and cross_entropy (set_conv_backend("torch"))

Prints median ms per step (wall and process CPU) and each configuration's ratio to "stock" (< 1: faster).

Run: source scripts/env.sh && python bench/bench_step.py [--steps 100] [--rounds 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydlr import layers  # noqa: E402
from pydlr.data import load_fashion_mnist  # noqa: E402
from pydlr.layers import pooling  # noqa: E402
from pydlr.layers.fusion import layer_fusion  # noqa: E402
from pydlr.models import seed_cnn  # noqa: E402
from pydlr.train.losses import get_loss  # noqa: E402
from pydlr.train.optimizers import Adam  # noqa: E402

FIT_LOSS = get_loss("sparse_categorical_crossentropy", from_logits=True)  # what fit() computes


@contextlib.contextmanager
def configuration(name: str) -> Iterator[None]:
    """Switches the ops the layers call for the duration of one burst."""
    if name in ("stock", "native"):
        with layers.conv_backend("torch" if name == "stock" else "native"):
            yield
    elif name == "auto-nofuse":
        with layer_fusion(False):
            yield
    elif name == "auto-tpool":
        original = pooling.MaxPooling2D.__dict__["_native_ok"]  # the staticmethod itself
        pooling.MaxPooling2D._native_ok = staticmethod(lambda x: False)
        try:
            yield
        finally:
            pooling.MaxPooling2D._native_ok = original
    else:
        yield


def optimizer_of(name: str) -> str:
    return "torch" if name == "auto-tadam" else "pydlr"


def build_model() -> torch.nn.Module:
    return seed_cnn(head=True)  # weights as pydlr keeps them; activations are channels-last


def loss_of(name: str):
    return torch.nn.functional.cross_entropy if name in ("auto-tloss", "stock") else FIT_LOSS


def burst(model, opt, loss_fn, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int,
          start: int) -> tuple[float, float]:
    """`steps` training steps from batch index `start`; returns (wall s, process CPU s)."""
    t, c = time.perf_counter(), time.process_time()
    n = x.shape[0]
    for s in range(steps):
        i = ((start + s) * batch) % (n - batch)
        loss = loss_fn(model(x[i:i + batch]), y[i:i + batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    (x_train, y_train), _ = load_fashion_mnist()
    x = torch.from_numpy(x_train[: 200 * args.batch]).float().div_(255).unsqueeze(-1)  # NHWC, as fit feeds
    y = torch.from_numpy(y_train[: 200 * args.batch]).long()
    names = ["auto", "auto-nofuse", "auto-tpool", "auto-tadam", "auto-tloss", "native", "stock"]
    torch.manual_seed(0)
    model = build_model()
    opts = {"pydlr": Adam().build(list(model.parameters())),  # what fit() uses: NativeAdam on CPU float32
            "torch": torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7, fused=True)}
    walls: dict[str, list[float]] = {k: [] for k in names}
    cpus: dict[str, list[float]] = {k: [] for k in names}
    for name in names:  # warm-up: first-call allocations, oneDNN primitives
        with configuration(name):
            burst(model, opts[optimizer_of(name)], loss_of(name), x, y, 5, args.batch, 0)
    step = 0
    order = random.Random(0)
    for _ in range(args.rounds):
        for name in order.sample(names, len(names)):  # a fresh order each round: no position bias
            with configuration(name):
                wall, cpu = burst(model, opts[optimizer_of(name)], loss_of(name), x, y, args.steps, args.batch,
                                  step)
            step += args.steps
            walls[name].append(1e3 * wall / args.steps)
            cpus[name].append(1e3 * cpu / args.steps)
    print(f"# torch {torch.__version__}, threads {args.threads}, batch {args.batch}, {args.rounds} rounds of "
          f"{args.steps} steps, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', '(unset)')}, "
          f"GLIBC_TUNABLES={'set' if os.environ.get('GLIBC_TUNABLES') else 'unset'}")
    print(f"{'configuration':<12} {'ms/step':>8} {'x stock':>8} {'CPU ms/step':>12} {'x stock':>8}")
    ref_w, ref_c = statistics.median(walls["stock"]), statistics.median(cpus["stock"])
    for name in names:
        w, c = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"{name:<12} {w:8.2f} {w / ref_w:8.2f} {c:12.2f} {c / ref_c:8.2f}")


if __name__ == "__main__":
    main()
