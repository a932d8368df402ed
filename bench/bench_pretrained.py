"""Inference speed of the pretrained ImageNet networks: pydlr against stock torch and onnxruntime, one run.

MobileNetV2 and EfficientNet-Lite0 at 224 x 224, batch 32, 2 threads, real weights. Rows, interleaved in a
fresh order each round (median seconds per batch):
- "torchvision eager (NCHW)" and "(channels-last)": torchvision's own ``mobilenet_v2`` with the same weights,
  in its default memory layout and in channels-last (pydlr's layout), MobileNetV2 only (torchvision has no
  EfficientNet-Lite). torchvision lives in the peers' venv (scripts/setup_peers.sh), so it runs there as a
  subprocess (bench/peers/torchvision_infer.py) that times one batch whenever this script asks: the rows stay
  interleaved. Its outputs are checked against pydlr's (same weights, same numbers). Without the peers' venv
  the rows are skipped;
- "stock torch eager": pydlr's unfolded module tree on torch's own operators (conv, BN, ReLU6 as separate
  passes, channels-last): what an eager torch model of the same architecture computes;
- "pydlr predict": ``model.predict``, the inference copy (BN folded, ReLU6 fused into the native kernels);
- "onnxruntime": pydlr's exported file (``export_onnx``) in onnxruntime with 2 intra-op threads.
Ratios are pydlr's speed over each reference (> 1: pydlr faster). The machine's load and the allocator
setting are printed with the table: on a shared machine the ratios are noisy.

Run: source scripts/env.sh && python bench/bench_pretrained.py [--rounds 5] [--batch 32]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "peers"))

from peer_common import peers_python  # noqa: E402

from pydlr import applications, io, layers  # noqa: E402
from pydlr.pretrained import registry  # noqa: E402


class TorchvisionPeer:
    """torchvision's mobilenet_v2 in the peers' venv (bench/peers/torchvision_infer.py), timed on request."""

    def __init__(self, name: str, x: np.ndarray, folder: Path):
        from safetensors.torch import save_file

        weights, batch = folder / f"{name}-torchvision.safetensors", folder / f"{name}-batch.npy"
        save_file({k: v.contiguous() for k, v in registry.state_dict(name).items()}, str(weights))
        np.save(batch, x, allow_pickle=False)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the peers' venv has no pydlr
        self.proc = subprocess.Popen(
            [str(peers_python()), str(ROOT / "bench" / "peers" / "torchvision_infer.py"), str(weights),
             str(batch), "--threads", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        ready = self.proc.stdout.readline().split()
        if ready[:1] != ["ready"]:
            self.close()
            raise RuntimeError("the torchvision peer did not start (see its error above)")
        self.version = ready[-1]

    def ask(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def outputs(self, folder: Path) -> np.ndarray:
        path = folder / "torchvision-out.npy"
        self.ask(f"save {path}")
        return np.load(path, allow_pickle=False)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def torchvision_rows(name: str, model, x: np.ndarray, folder: Path) -> tuple[dict, TorchvisionPeer | None]:
    """The torchvision rows (each returns the seconds the peer measured), and the peer to close."""
    if name != "mobilenet_v2" or not peers_python().exists():
        return {}, None  # torchvision has no EfficientNet-Lite
    peer = TorchvisionPeer(name, x, folder)
    theirs = torch.softmax(torch.from_numpy(peer.outputs(folder)), dim=-1).numpy()  # pydlr's top: softmax
    ours = model.predict(x, batch_size=len(x))
    print(f"torchvision {peer.version} ({peers_python().parent.parent}): max |probability difference| to "
          f"pydlr {np.abs(theirs - ours).max():.1e}, same top-1 for {(theirs.argmax(1) == ours.argmax(1)).mean():.0%}"
          " of the batch")
    return {f"torchvision eager ({label})": (lambda layout=layout: float(peer.ask(f"run {layout}")))
            for label, layout in (("NCHW", "nchw"), ("channels-last", "channels_last"))}, peer


def runners(name: str, model, x: np.ndarray, folder: Path) -> dict:
    xt = torch.from_numpy(x)
    path = io.export_onnx(model, folder / f"{name}.onnx")
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 2, 1
    session = onnxruntime.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def stock() -> None:
        with layers.conv_backend("torch"), torch.inference_mode():
            model(xt)

    rows = {"stock torch eager": stock,
            "pydlr predict": lambda: model.predict(x, batch_size=len(x)),
            "onnxruntime": lambda: session.run(None, {"input": x})}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    from skimage import data

    print(f"load average {os.getloadavg()}, GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}, "
          f"torch {torch.__version__}, 2 threads, batch {args.batch}, 224 x 224")
    with tempfile.TemporaryDirectory() as tmp:
        for name, ctor in (("mobilenet_v2", applications.MobileNetV2),
                           ("efficientnet_lite0", applications.EfficientNetLite0)):
            probe = ctor(weights=None)
            photos = np.concatenate([applications.preprocess_inputs(probe, img)
                                     for img in (data.chelsea(), data.coffee(), data.astronaut())])
            x = np.ascontiguousarray(photos[rng.integers(0, 3, args.batch)], dtype=np.float32)
            model = ctor()
            rows = runners(name, model, x, Path(tmp))
            tv_rows, peer = torchvision_rows(name, model, x, Path(tmp))
            rows.update(tv_rows)
            try:
                med = time_rows(rows, args.rounds)
            finally:
                if peer is not None:
                    peer.close()
            ours = med["pydlr predict"]
            print(f"\n{name}")
            print(f"{'row':<34} {'s/batch':>9} {'images/s':>9} {'pydlr speed-up':>15}")
            for key, sec in med.items():
                print(f"{key:<34} {sec:9.3f} {args.batch / sec:9.1f} {sec / ours:15.2f}")
            if name == "mobilenet_v2" and not tv_rows:
                print(f"(torchvision eager: skipped, no peers' venv at {peers_python()}: scripts/setup_peers.sh)")


def time_rows(rows: dict, rounds: int) -> dict[str, float]:
    """Median seconds of each row over ``rounds``, the rows in a fresh random order each round. A row may
    return the seconds it measured itself (the subprocess peer: its own clock, without the pipe)."""
    for fn in rows.values():
        fn()  # warm-up: caches, kernel choices, the folded copy
    times: dict[str, list[float]] = {k: [] for k in rows}
    for _ in range(rounds):
        for key in random.sample(list(rows), len(rows)):
            start = time.perf_counter()
            measured = rows[key]()
            elapsed = time.perf_counter() - start
            times[key].append(measured if isinstance(measured, float) else elapsed)
    return {k: statistics.median(v) for k, v in times.items()}


if __name__ == "__main__":
    main()
