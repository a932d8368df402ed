"""What pydlr's native operators buy in MobileNetV2 / EfficientNet-Lite0, side by side in one process.

pydlr's MobileNetV2 and EfficientNet-Lite (the architectures behind ``pretrained`` and fine-tuning) run on
channels-last activations; under the default "auto" backend their depthwise layers take pydlr's depthwise
kernels, and in training each BatchNorm with the ReLU6 after it runs as one fused operator
(``pydlr.ops.batch_norm_act``). This times a training step (forward, cross-entropy, backward, SGD step; BatchNorm
in training mode) and inference (eval, no_grad) with the default backend ("auto") and with torch's operators
everywhere ("stock": torch's convolutions, batch_norm and relu6, the same model and weights), interleaved in
bursts of --steps steps over --rounds rounds in a fresh order each round, and prints median ms per step and
auto / stock (< 1: pydlr faster). --no-inference times training only; --unfused adds pydlr without the fused
BatchNorm + ReLU6 (``layers.layer_fusion(False)``) as a third configuration; --no-bn-depthwise adds pydlr with
every fusion but the expand BatchNorm + ReLU6 + depthwise operator (``pydlr.ops.batch_norm_act_depthwise``), to
measure what that operator buys.

Run: source scripts/env.sh && python bench/bench_mobilenet.py [--model mobilenet_v2] [--size 96] [--batch 32]
     [--rounds 7]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydlr import layers, ops  # noqa: E402
from pydlr.models import mobilenet_v2  # noqa: E402
from pydlr.models.efficientnet_lite import EfficientNetLite  # noqa: E402

MODELS = {
    "mobilenet_v2": lambda size: mobilenet_v2(num_classes=10, input_shape=(size, size, 3)),
    "efficientnet_lite0": lambda size: EfficientNetLite(0, num_classes=10, input_shape=(size, size, 3)),
}

# name -> (convolution backend, layer fusion, BatchNorm + ReLU6 + depthwise operator): "unfused" is pydlr without
# the fused BatchNorm + ReLU6 (--unfused), "no_bn_dw" without the fused expand BatchNorm + depthwise (--no-bn-depthwise)
CONFIGS = {"auto": ("auto", True, True), "stock": ("torch", True, True), "unfused": ("auto", False, True),
           "no_bn_dw": ("auto", True, False)}
_BN_DW_SUPPORTED = ops.batch_norm_act_depthwise_supported


@contextlib.contextmanager
def configured(name: str):
    """The configuration's backend and fusion switches; "no_bn_dw" declines the expand BatchNorm + depthwise
    operator (the fusion layer asks ``ops.batch_norm_act_depthwise_supported`` before using it)."""
    backend, fusion, bn_dw = CONFIGS[name]
    ops.batch_norm_act_depthwise_supported = _BN_DW_SUPPORTED if bn_dw else (lambda *a: False)
    try:
        with layers.conv_backend(backend), layers.layer_fusion(fusion):
            yield
    finally:
        ops.batch_norm_act_depthwise_supported = _BN_DW_SUPPORTED


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
    p.add_argument("--model", choices=sorted(MODELS), default="mobilenet_v2")
    p.add_argument("--size", type=int, default=96, help="image height and width")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-inference", action="store_true", help="time the training step only")
    p.add_argument("--unfused", action="store_true",
                   help="also time pydlr without layer fusion (BatchNorm and ReLU6 as separate torch ops)")
    p.add_argument("--no-bn-depthwise", action="store_true",
                   help="also time pydlr without the expand BatchNorm + ReLU6 + depthwise operator")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = MODELS[args.model](args.size)
    x = torch.randn(args.batch, args.size, args.size, 3)  # channels-last images, as fit() feeds them
    y = torch.randint(0, 10, (args.batch,))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    print(
        f"# torch {torch.__version__}, threads {args.threads}, {args.model} (10 classes) at {args.size}x"
        f"{args.size}, batch {args.batch}, {args.rounds} rounds of {args.steps} steps, "
        f"GLIBC_TUNABLES={'set' if os.environ.get('GLIBC_TUNABLES') else 'unset'}"
    )
    names = ["auto", "stock"] + (["unfused"] if args.unfused else []) + (["no_bn_dw"] if args.no_bn_depthwise else [])
    print(f"{'pass':<10} " + " ".join(f"{n + ' ms':>10}" for n in names) + f" {'auto/stock':>11}"
          + "".join(f" {n + '/stock':>15}" for n in names[2:]))
    for train in (True,) if args.no_inference else (True, False):
        model.train(train)
        times: dict[str, list[float]] = {k: [] for k in names}
        for name in names:  # warm-up: allocations, oneDNN primitives
            with configured(name):
                burst(model, opt, x, y, 2, train)
        order = random.Random(0)
        for _ in range(args.rounds):
            for name in order.sample(names, len(names)):
                with configured(name):
                    times[name].append(1e3 * burst(model, opt, x, y, args.steps, train))
        med = {k: statistics.median(v) for k, v in times.items()}
        label = "train" if train else "inference"
        line = f"{label:<10} " + " ".join(f"{med[n]:10.1f}" for n in names) + f" {med['auto'] / med['stock']:11.2f}"
        line += "".join(f" {med[n] / med['stock']:15.2f}" for n in names[2:])
        print(line, flush=True)

if __name__ == "__main__":
    main()
