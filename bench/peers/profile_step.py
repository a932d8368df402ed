"""Where a training step of the seed CNN spends its time: torch.profiler over N steps, by operator.

For docs/performance.md ("how far from the FLOP limit, and what stands in the way"). Profiles either the
hand-written channels-last torch loop or pydlr's own fit (through its public API, steps_per_epoch=N), with
the same data, batch and threads as bench_peers.py. CPU times of operators are process-CPU based and so
hold up better than wall time on a shared machine; the FLOP column is the profiler's estimate.

    python bench/peers/profile_step.py --what torch-cl --steps 200
    PYTHONPATH=. python bench/peers/profile_step.py --what pydlr --steps 200
"""

from __future__ import annotations

import peer_common as pc

args = pc.parse_args(__doc__, {
    "--what": {"choices": ["torch-cl", "torch-nchw", "pydlr"], "default": "torch-cl"},
    "--steps": {"type": int, "default": 200},
    "--rows": {"type": int, "default": 25},
})
pc.set_thread_env(args.threads, args.interop)

import time  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

pc.set_torch_threads(torch, args.threads, args.interop)
torch.manual_seed(pc.SEED)
x_train, y_train, _, _ = pc.load_fashion_mnist(args.limit)
n = args.steps * pc.BATCH_SIZE
x_train, y_train = x_train[:n], y_train[:n]


def torch_run() -> None:
    cl = args.what == "torch-cl"
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))
    if cl:
        model = model.to(memory_format=torch.channels_last)
    x = torch.from_numpy(x_train).permute(0, 3, 1, 2)
    x = x if cl else x.contiguous()
    y = torch.from_numpy(y_train)
    opt = torch.optim.Adam(model.parameters(), lr=pc.LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()
    for i in range(0, len(x), pc.BATCH_SIZE):
        loss = loss_fn(model(x[i:i + pc.BATCH_SIZE]), y[i:i + pc.BATCH_SIZE])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def pydlr_run() -> None:
    import pydlr
    from pydlr import layers
    from pydlr.train import losses, optimizers
    from pydlr.utils import set_random_seed

    set_random_seed(pc.SEED)
    model = pydlr.Sequential([
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.Flatten(),
        layers.Dense(64, activation="relu"), layers.Dense(10)], input_shape=(28, 28, 1))
    model.compile(optimizer=optimizers.Adam(learning_rate=pc.LEARNING_RATE),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=pc.BATCH_SIZE, epochs=1, verbose=0, seed=pc.SEED, device="cpu")


run = pydlr_run if args.what == "pydlr" else torch_run
run()  # warm-up: first-call allocations, oneDNN primitive creation
t0, c0 = time.perf_counter(), pc.EpochClock._cpu()
with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
    run()
wall, cpu = time.perf_counter() - t0, pc.EpochClock._cpu() - c0
print(f"{args.what}: {args.steps} steps of batch {pc.BATCH_SIZE} under the profiler: {wall:.2f} s wall, "
      f"{cpu:.2f} s process CPU; per step {1000 * wall / args.steps:.2f} ms wall")
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=40))
