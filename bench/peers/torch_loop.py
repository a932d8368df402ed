"""Peer: a hand-written torch training loop for the seed CNN (NCHW or channels-last memory, optional bf16).

What a careful torch user writes: the data as one float32 tensor, a fresh permutation each epoch, slicing
batches out of it, Adam, cross-entropy on logits. No DataLoader (its per-sample collation costs time here).
"""

from __future__ import annotations

import peer_common as pc

args = pc.parse_args(__doc__, {
    "--layout": {"choices": ["nchw", "channels_last"], "default": "nchw"},
    "--bf16": {"action": "store_true", "help": "CPU autocast to bfloat16 for forward and loss"},
})
pc.set_thread_env(args.threads, args.interop)

import contextlib  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

threads = pc.set_torch_threads(torch, args.threads, args.interop)
torch.manual_seed(pc.SEED)


def seed_cnn() -> nn.Sequential:
    """Conv(32,3)-Pool-Conv(64,3)-Pool-Conv(64,3)-Flatten-Dense(64)-Dense(10), ReLUs, logits out."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(64 * 3 * 3, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def as_input(x_nhwc: np.ndarray) -> torch.Tensor:
    """NHWC numpy -> NCHW-shaped tensor; for channels-last the permute is that layout already (no copy)."""
    t = torch.from_numpy(x_nhwc).permute(0, 3, 1, 2)
    return t if args.layout == "channels_last" else t.contiguous()


x_train, y_train, x_test, y_test = pc.load_fashion_mnist(args.limit)
xt, yt = as_input(x_train), torch.from_numpy(y_train)
xe = as_input(x_test)
model = seed_cnn()
if args.layout == "channels_last":
    model = model.to(memory_format=torch.channels_last)
opt = torch.optim.Adam(model.parameters(), lr=pc.LEARNING_RATE)
loss_fn = nn.CrossEntropyLoss()


def autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()


clock = pc.EpochClock()
gen = torch.Generator().manual_seed(pc.SEED)
n = len(xt)
for _ in range(args.epochs):
    clock.start()
    model.train()
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, pc.BATCH_SIZE):
        idx = perm[i:i + pc.BATCH_SIZE]
        xb, yb = xt[idx], yt[idx]
        with autocast():
            loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    clock.stop()


@torch.inference_mode()
def logits(x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with autocast():
        return torch.cat([model(x[i:i + args.predict_batch]).float() for i in range(0, len(x),
                                                                                      args.predict_batch)])


acc = float((logits(xe).argmax(1).numpy() == y_test).mean())
ips = None if args.no_predict else pc.time_predict(lambda x: logits(x).softmax(1).numpy(), xe)
name = f"torch loop {args.layout}" + (" bf16" if args.bf16 else "")
pc.write_result(args, name, clock, acc, ips, {"torch": torch.__version__}, threads)
