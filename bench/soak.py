"""Soak: repeated fit / save / load / predict cycles for a given time, with resident memory sampled.

Each cycle builds the seed CNN + Dense(64) + Dense(10), fits it for one epoch on --n-train Fashion-MNIST
images, saves it (single-file safetensors + JSON), loads it back, predicts --n-predict images with both
models and checks the predictions agree bit for bit (a cycle that disagrees stops the run with exit 1).
After every cycle it records the process's resident memory (VmRSS), its peak (VmHWM), the count of open
file descriptors and threads. A leak shows as a resident memory that keeps rising after the first cycles
(the allocator and torch's caches warm up in those); the summary fits a line to the second half.

Not part of CI (an hour by default). Run:
    source scripts/env.sh && nice -n 19 python bench/soak.py [--seconds 3600] [--csv soak.csv] [--png docs/soak-memory.png]
Prints the allocator setting (GLIBC_TUNABLES) it ran with.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pydlr  # noqa: E402
from pydlr.data import load_fashion_mnist  # noqa: E402
from pydlr.models import seed_cnn  # noqa: E402
from pydlr.train import losses  # noqa: E402

FIELDS = ["cycle", "elapsed_s", "rss_mib", "hwm_mib", "open_fds", "threads", "cycle_s", "loss"]


def proc_status() -> dict[str, float]:
    """Resident memory, its peak (MiB) and the thread count from /proc/self/status (Linux only)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024.0
            elif key == "Threads":
                out[key] = int(value)
    return out


def build_model(seed: int) -> pydlr.Sequential:
    torch.manual_seed(seed)
    model = seed_cnn(head=True, model_class=pydlr.Sequential)
    # seed_cnn ends in logits (no softmax)
    model.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def one_cycle(i: int, x: np.ndarray, y: np.ndarray, x_pred: np.ndarray, folder: Path,
              batch_size: int) -> float:
    """fit one epoch, save, load, predict with both; returns the epoch's loss."""
    model = build_model(i)
    hist = model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0, seed=i)
    path = folder / "soak.pydlr"
    pydlr.save_model(model, path)
    loaded = pydlr.load_model(path)
    p1 = model.predict(x_pred, verbose=0)
    p2 = loaded.predict(x_pred, verbose=0)
    if not np.array_equal(np.asarray(p1), np.asarray(p2)):
        raise SystemExit(f"cycle {i}: the loaded model's predictions differ from the saved model's")
    return float(hist.history["loss"][-1])


def drift(rows: list[dict]) -> tuple[float, float]:
    """Slope of resident memory over the second half of the run (MiB per hour) and its total change there."""
    half = rows[len(rows) // 2:]
    if len(half) < 2:
        return 0.0, 0.0
    t = np.array([r["elapsed_s"] for r in half])
    m = np.array([r["rss_mib"] for r in half])
    slope = float(np.polyfit(t, m, 1)[0]) * 3600.0 if np.ptp(t) > 0 else 0.0
    return slope, float(m[-1] - m[0])


def plot(rows: list[dict], png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["elapsed_s"] / 60.0 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(t, [r["rss_mib"] for r in rows], label="resident (VmRSS)")
    ax.plot(t, [r["hwm_mib"] for r in rows], "--", label="peak (VmHWM)")
    ax.set_xlabel("minutes")
    ax.set_ylabel("MiB")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3600.0, help="how long to run (default: 3600)")
    ap.add_argument("--n-train", type=int, default=4000, help="training images per cycle (default: 4000)")
    ap.add_argument("--n-predict", type=int, default=2000, help="images predicted per cycle (default: 2000)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default: 1, a shared machine)")
    ap.add_argument("--csv", default="soak-memory.csv", help="one row per cycle (default: soak-memory.csv)")
    ap.add_argument("--png", default="docs/soak-memory.png", help="the memory curve (default: docs/soak-memory.png)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    print(f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}  threads={args.threads}", flush=True)
    (x_train, y_train), (x_test, _) = load_fashion_mnist()
    x = (x_train[: args.n_train] / 255.0).astype(np.float32)[..., None]
    y = y_train[: args.n_train]
    x_pred = (x_test[: args.n_predict] / 255.0).astype(np.float32)[..., None]

    rows: list[dict] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pydlr-soak-") as tmp, open(args.csv, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        i = 0
        while time.perf_counter() - start < args.seconds:
            t0 = time.perf_counter()
            loss = one_cycle(i, x, y, x_pred, Path(tmp), args.batch_size)
            gc.collect()
            st = proc_status()
            row = {"cycle": i, "elapsed_s": round(time.perf_counter() - start, 2),
                   "rss_mib": round(st["VmRSS"], 1), "hwm_mib": round(st["VmHWM"], 1),
                   "open_fds": len(os.listdir("/proc/self/fd")), "threads": st["Threads"],
                   "cycle_s": round(time.perf_counter() - t0, 2), "loss": round(loss, 4)}
            rows.append(row)
            writer.writerow(row)
            fh.flush()
            if i % 20 == 0:
                print(row, flush=True)
            i += 1
    slope, change = drift(rows)
    first, last = rows[0], rows[-1]
    print(f"cycles {len(rows)} in {last['elapsed_s']:.0f} s; RSS after cycle 0 {first['rss_mib']:.0f} MiB, "
          f"at the end {last['rss_mib']:.0f} MiB, peak {max(r['hwm_mib'] for r in rows):.0f} MiB; "
          f"second half: {change:+.1f} MiB ({slope:+.1f} MiB/h); open fds {first['open_fds']} -> "
          f"{last['open_fds']}; threads {first['threads']} -> {last['threads']}")
    plot(rows, Path(args.png), f"pydlr soak: {len(rows)} fit/save/load/predict cycles, "
                               f"{last['elapsed_s'] / 60:.0f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
