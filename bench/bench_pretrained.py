"""Inference speed of the pretrained ImageNet networks: pydlr against stock torch and onnxruntime, one run.

MobileNetV2 and EfficientNet-Lite0 at 224 x 224, batch 32, 2 threads, real weights. Rows, interleaved in a
fresh order each round (median seconds per batch):
- "torchvision eager": torchvision's own model with the same weights, when torchvision imports (it is not
  in the project's venv: run with the peers' venv after scripts/setup_peers.sh, or the row is skipped);
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
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydlr import applications, io, layers  # noqa: E402
from pydlr.pretrained import registry  # noqa: E402


def _torchvision(name: str):
    """torchvision's model with the registry's weights, or None when torchvision is absent."""
    try:
        import torchvision
    except ImportError:
        return None
    if name != "mobilenet_v2":
        return None  # torchvision has no EfficientNet-Lite
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(registry.state_dict(name))
    return model.eval().to(memory_format=torch.channels_last)


def runners(name: str, ctor, x: np.ndarray, folder: Path) -> dict:
    model = ctor()
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
    tv = _torchvision(name)
    if tv is not None:
        nchw = xt.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)

        def torchvision_eager() -> None:
            with torch.inference_mode():
                tv(nchw)

        rows["torchvision eager"] = torchvision_eager
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
            rows = runners(name, ctor, x, Path(tmp))
            for fn in rows.values():
                fn()  # warm-up: caches, kernel choices, the folded copy
            times: dict[str, list[float]] = {k: [] for k in rows}
            for _ in range(args.rounds):
                for key in random.sample(list(rows), len(rows)):
                    start = time.perf_counter()
                    rows[key]()
                    times[key].append(time.perf_counter() - start)
            med = {k: statistics.median(v) for k, v in times.items()}
            ours = med["pydlr predict"]
            print(f"\n{name}")
            print(f"{'row':<20} {'s/batch':>9} {'images/s':>9} {'pydlr speed-up':>15}")
            for key, sec in med.items():
                print(f"{key:<20} {sec:9.3f} {args.batch / sec:9.1f} {sec / ours:15.2f}")
            if "torchvision eager" not in med:
                print("(torchvision eager: skipped, torchvision is not installed in this environment)")


if __name__ == "__main__":
    main()
