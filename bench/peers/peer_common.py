"""Shared pieces of the peer runners: data, thread settings, timing and the result file.

Every runner (pydlr, the hand-written torch loop, Keras on TensorFlow and on torch, Lightning) imports this
module, so each reads the same data and reports the same fields. It needs only the standard library and
NumPy (1.x in the project's venv, 2.x in the peers' venv), never pydlr: the peers' venv has no pydlr.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
SEED = 0


def peers_python() -> Path:
    """The interpreter of the peers' venv: $PYDLR_PEERS_VENV (as bench/bench_peers.py reads it), else
    .venv-peers in this checkout (scripts/setup_peers.sh creates it)."""
    venv = os.environ.get("PYDLR_PEERS_VENV") or Path(__file__).resolve().parents[2] / ".venv-peers"
    return Path(venv) / "bin" / "python"


def parse_args(description: str, extra: dict[str, dict[str, Any]] | None = None) -> argparse.Namespace:
    """Parse the options every runner takes (and `extra` ones: {flag: argparse kwargs}).

    Parameters
    ----------
    description : str
        What the runner measures (shown by --help).
    extra : dict, optional
        Additional options of this runner.

    Returns
    -------
    argparse.Namespace
        With epochs, threads, interop, predict_batch, out and the extras.
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--interop", type=int, default=2)
    p.add_argument("--predict-batch", type=int, default=256)
    p.add_argument("--no-predict", action="store_true", help="skip the inference measurement")
    p.add_argument("--out", type=Path, required=True, help="where to write the JSON result")
    p.add_argument("--limit", type=int, default=0,
                   help="smoke test only: train on the first LIMIT images (0: all 60,000)")
    for flag, kwargs in (extra or {}).items():
        p.add_argument(flag, **kwargs)
    return p.parse_args()


def set_thread_env(threads: int, interop: int) -> None:
    """Set the thread-count variables every runtime reads at start (call before importing a framework)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[var] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(interop)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def set_torch_threads(torch: Any, threads: int, interop: int) -> dict[str, int]:
    """Apply the thread counts to an imported torch and report what it now uses."""
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(interop)
    except RuntimeError:  # already set (e.g. by a framework that started a parallel region)
        pass
    return {"torch_threads": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads()}


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load_fashion_mnist(limit: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Full Fashion-MNIST, NHWC float32 in [0, 1] and int64 labels.

    Parameters
    ----------
    limit : int
        Keep only the first `limit` training images (0: all); for smoke tests of the runners.

    Returns
    -------
    tuple of numpy.ndarray
        x_train (60000, 28, 28, 1), y_train (60000,), x_test (10000, 28, 28, 1), y_test (10000,).
    """
    def images(name: str) -> np.ndarray:
        raw = _read_idx(DATA_DIR / name, 16)
        return (raw.reshape(-1, 28, 28, 1).astype(np.float32) / np.float32(255.0))

    def labels(name: str) -> np.ndarray:
        return _read_idx(DATA_DIR / name, 8).astype(np.int64)

    n = limit or None
    return (images("train-images-idx3-ubyte.gz")[:n], labels("train-labels-idx1-ubyte.gz")[:n],
            images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz"))


class EpochClock:
    """Wall and process-CPU seconds of each epoch (CPU time shows how much of the wall time was waiting)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        # Seconds of each epoch spent in stalls: the first batch's excess over the epoch's median batch, for
        # runners that report batch ends (batch_end). Keras on TensorFlow idles ~10 s before the first batch of
        # many epochs on this machine; the steady epoch (wall minus stall) is its speed without that.
        self.stall: list[float] = []
        self._t0 = 0.0
        self._c0 = 0.0
        self._batch_ends: list[float] = []

    @staticmethod
    def _cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def start(self) -> None:
        """Mark the start of an epoch."""
        self._t0, self._c0 = time.perf_counter(), self._cpu()
        self._batch_ends = []

    def batch_end(self) -> None:
        """Mark the end of a training batch (optional; gives the stall figure)."""
        self._batch_ends.append(time.perf_counter())

    def stop(self) -> None:
        """Mark the end of an epoch."""
        self.wall.append(time.perf_counter() - self._t0)
        self.cpu.append(self._cpu() - self._c0)
        ends = [self._t0, *self._batch_ends]
        if len(ends) > 2:
            durations = [b - a for a, b in zip(ends[:-1], ends[1:], strict=True)]
            self.stall.append(max(0.0, durations[0] - statistics.median(durations)))


def time_predict(predict: Any, x: np.ndarray, repeats: int = 3) -> float:
    """Images per second of `predict(x)`: one warm-up call (tracing, allocation), then the median of `repeats`."""
    predict(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict(x)
        times.append(time.perf_counter() - t0)
    return len(x) / float(np.median(times))


def write_result(args: argparse.Namespace, name: str, clock: EpochClock, test_acc: float,
                 predict_ips: float | None, versions: dict[str, str],
                 threads: dict[str, int] | None = None, notes: str = "") -> None:
    """Write one runner's result as JSON to `args.out` and echo a one-line summary on stdout."""
    result = {
        "name": name,
        "epochs": args.epochs,
        "train_images": args.limit or 60000,
        "epoch_wall_s": clock.wall,
        "epoch_cpu_s": clock.cpu,
        "epoch_stall_s": clock.stall,
        "test_acc": test_acc,
        "predict_images_per_s": predict_ips,
        "predict_batch": args.predict_batch,
        "batch_size": BATCH_SIZE,
        "threads": {"requested": args.threads, "interop": args.interop, **(threads or {}),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "versions": {"python": platform.python_version(), "numpy": np.__version__, **versions},
        "executable": sys.executable,
        "notes": notes,
    }
    args.out.write_text(json.dumps(result, indent=1))
    walls = " ".join(f"{w:.2f}" for w in clock.wall)
    print(f"{name}: epochs {walls} s, test acc {test_acc:.4f}, predict {predict_ips or float('nan'):.0f} img/s")
