"""Peer: torchvision's own MobileNetV2 (``torchvision.models.mobilenet_v2``) in eager mode, timed on request.

Run by bench/bench_pretrained.py in the peers' environment (.venv-peers: scripts/setup_peers.sh), which has
torchvision; the project's venv does not. The parent writes the weights (safetensors, torchvision's keys) and a
batch (.npy, channels-last float32) and then sends commands on standard input, one a line, so that this row
is timed interleaved with the parent's own rows:

    run nchw | run channels_last   one forward pass in inference mode; answers its seconds
    save PATH                      the outputs of the NCHW model for the batch, as .npy; answers "saved"
    quit

The first line written is "ready torchvision <version>" once the models are built and warmed up.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torchvision_cpu import import_torchvision  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("weights", help="safetensors file with torchvision's mobilenet_v2 keys")
    ap.add_argument("batch", help=".npy file, (N, H, W, 3) float32")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torchvision = import_torchvision()
    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(args.threads)
    state = load_file(args.weights)
    x = torch.from_numpy(np.load(args.batch, allow_pickle=False)).permute(0, 3, 1, 2)
    models, inputs = {}, {}
    for layout, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
        model = torchvision.models.mobilenet_v2()
        model.load_state_dict(state, strict=True)
        models[layout] = model.eval().to(memory_format=fmt)
        inputs[layout] = x.contiguous(memory_format=fmt)
        with torch.inference_mode():
            models[layout](inputs[layout])  # warm-up
    print(f"ready torchvision {torchvision.__version__}", flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "run":
            with torch.inference_mode():
                start = time.perf_counter()
                models[arg](inputs[arg])
                print(time.perf_counter() - start, flush=True)
        elif cmd == "save":
            with torch.inference_mode():
                np.save(arg, models["nchw"](inputs["nchw"]).numpy(), allow_pickle=False)
            print("saved", flush=True)
        elif cmd == "quit":
            break


if __name__ == "__main__":
    main()
