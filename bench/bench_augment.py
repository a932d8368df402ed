"""On-the-fly augmentation cost: seed-CNN epoch with augmentation vs without, side by side.

Contenders, rotated every round so machine load hits all alike: no augmentation; augmentation
inline (workers=0, in the training process); augmentation in 1 and 2 prefetching worker processes;
and the "beforehand" alternative (augment once into a materialised data set, then train plain).
Target: epoch with augmentation on the fly (2 workers) <= 1.3x the epoch without.
Augmentation: horizontal flip, rotation 0.05, shift 0.1, zoom 0.1 (one affine_grid/grid_sample per
batch), brightness/contrast 0.1.

Run: source scripts/env.sh && python bench/bench_augment.py [--limit 12800] [--rounds 3] [--threads 2]
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_fit import EpochTimer  # noqa: E402  (one epoch timer for both benches)

from pydlr import engine  # noqa: E402
from pydlr.data import Augment, augment_beforehand, load_fashion_mnist  # noqa: E402
from pydlr.models import seed_cnn  # noqa: E402
from pydlr.train import losses  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=12800)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    (x, y), _ = load_fashion_mnist()
    x = (x[: args.limit].astype(np.float32) / 255.0)[..., None]
    y = y[: args.limit]
    aug = Augment(flip="horizontal", rotation=0.05, shift=0.1, zoom=0.1, brightness=0.1,
                  contrast=0.1)
    t = time.perf_counter()
    x_before, y_before = augment_beforehand(x, y, aug, copies=1, seed=0, include_original=False)
    t_before = time.perf_counter() - t
    print(f"# {len(x)} images, batch {args.batch_size}, threads {args.threads}, "
          f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}, load {os.getloadavg()[0]:.1f}")
    print(f"# augmenting beforehand once took {t_before:.2f} s")

    torch.manual_seed(0)
    base = seed_cnn(model_class=engine.Sequential)
    setups = {
        "no augmentation": dict(),
        "on the fly, inline (workers=0)": dict(augment=aug, workers=0),
        "on the fly, 1 worker": dict(augment=aug, workers=1),
        "on the fly, 2 workers": dict(augment=aug, workers=2),
        "beforehand (materialised)": dict(data=(x_before, y_before)),
    }
    models = {}
    for name in setups:
        m = copy.deepcopy(base)
        m.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
        models[name] = (m, EpochTimer())
    times: dict[str, list[float]] = {k: [] for k in setups}
    cpu: dict[str, list[float]] = {k: [] for k in setups}
    for r in range(args.rounds):
        for name, kw in setups.items():
            m, timer = models[name]
            kw = dict(kw)
            xd, yd = kw.pop("data", (x, y))
            m.fit(xd, yd, batch_size=args.batch_size, epochs=1, verbose=0, seed=r,
                  callbacks=[timer], **kw)
            times[name].append(timer.times[-1])
            cpu[name].append(timer.cpu[-1])
        print(f"round {r + 1}: " + ", ".join(f"{k}: {v[-1]:.2f} s" for k, v in times.items()),
              flush=True)
    keep = slice(1, None) if args.rounds > 2 else slice(None)
    med = {k: statistics.median(v[keep]) for k, v in times.items()}
    cmed = {k: statistics.median(v[keep]) for k, v in cpu.items()}
    ref = med["no augmentation"]
    print()
    print("Wall time is what counts for the target; CPU time is the training process's own (worker")
    print("processes excluded), shown to separate the work moved off the main process from noise.")
    print("| setup                          | wall s/epoch | wall ratio | main-process CPU s |")
    print("|--------------------------------|--------------|------------|--------------------|")
    for k, v in med.items():
        print(f"| {k:<30} | {v:12.2f} | {v / ref:10.3f} | {cmed[k]:18.2f} |")


if __name__ == "__main__":
    main()
