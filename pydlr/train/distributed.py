"""Training on several processes and machines: torch.distributed DDP launched by torchrun.

How it works
------------
``model.fit(...)`` notices it runs under torchrun (``WORLD_SIZE`` > 1 in the environment) and then:
joins the process group (gloo on CPU, nccl on GPUs, one GPU per process by ``LOCAL_RANK``); wraps
the model in ``DistributedDataParallel`` (which broadcasts rank 0's initial weights and all-reduces
gradients every batch); gives each rank its shard of every epoch through torch's
``DistributedSampler`` (same seed on all ranks); averages the epoch's training loss/metrics over all
ranks; prints progress and writes checkpoints on rank 0 only. ``batch_size`` is per process (the
global batch is ``batch_size * world_size``, as in torch).

Launch
------
One machine, 2 processes::

    pydlr-train --nproc-per-node 2 train.py [script arguments]

Several machines (run on every node, ``--node-rank`` 0..nnodes-1, the master's address reachable
from all)::

    pydlr-train --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 --master-port 29500 \\
                --nproc-per-node 4 train.py

``pydlr-train`` is torchrun with these defaults (``--master-addr 127.0.0.1``, a free port); any
torchrun option can follow ``--``. From an interactive session, ``model.fit(x, y, ...,
distributed=True, nproc_per_node=2)`` saves the model, its compile settings and the data to a
temporary folder, runs torchrun on this module's worker, and loads the trained weights back.
torchrun sets ``OMP_NUM_THREADS=1`` per process unless it is set.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pydlr.errors import InputError, TrainingError
from pydlr.train.events import Callback

__all__ = ["main", "ddp_context", "DDPContext", "DistributedTraining", "fit_distributed", "free_port"]


@dataclass
class DDPContext:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str


def ddp_context(device: torch.device) -> DDPContext | None:
    """Join the process group when running under torchrun with more than one process, else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device.type == "cuda" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
        # Leave the group before the interpreter tears down: otherwise gloo's threads can still be joinable
        # when its objects are destroyed during finalization, and the process dies with "terminate called
        # without an active exception" (SIGABRT) after training finished (seen ~1 run in 6).
        atexit.register(_leave_process_group)
    return DDPContext(dist.get_rank(), local_rank, dist.get_world_size(), device, backend)


def _leave_process_group() -> None:
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        return
    # Tear down together: a rank that closes its connections while a peer's gloo threads still use theirs can
    # still abort that peer at exit (SIGABRT, ~1 CI run in 10 even with the destroy above). Bounded, so that a
    # rank that died does not hold the others at exit.
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=60))
        else:
            dist.barrier()
    except Exception:  # a peer is gone: leave anyway
        pass
    dist.destroy_process_group()


def wrap(model: torch.nn.Module, ctx: DDPContext) -> torch.nn.Module:
    """DistributedDataParallel around ``model`` (rank 0's weights are broadcast to all ranks)."""
    import warnings

    from torch.nn.parallel import DistributedDataParallel

    # A conv weight with one input channel has equivalent contiguous and channels-last strides
    # (they differ only on the size-1 axis); DDP's reducer warns about it although nothing is copied
    # wrongly. Silence that one message.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


class DistributedTraining(Callback):
    """The Learner under torchrun: the model wrapped in DDP for the forward pass, the rank known to the
    callbacks that write files (rank 0 writes), and the training totals of each epoch summed over all
    ranks (each rank trains on its own shard) before the epoch's logs are computed."""

    order = -100  # before every other callback's before_fit

    def __init__(self, ctx: DDPContext):
        self.ctx = ctx

    def before_fit(self) -> None:
        learn = self.learn
        learn.forward_module = wrap(learn.model, self.ctx)
        learn.rank, learn.world_size = self.ctx.rank, self.ctx.world_size

    def after_fit(self) -> None:
        self.learn.forward_module = self.learn.model

    def after_train(self) -> None:
        import torch.distributed as dist

        learn = self.learn
        both = torch.cat([torch.stack(learn.totals).double(),
                          torch.tensor([float(learn.count)], dtype=torch.float64,
                                       device=learn.totals[0].device)])
        dist.all_reduce(both)
        learn.totals = list(both[:-1].float().unbind())
        learn.count = int(both[-1])


def broadcast_seed(seed: int) -> int:
    import torch.distributed as dist

    box = [int(seed)]
    dist.broadcast_object_list(box, src=0)
    return int(box[0])


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----- fit(..., distributed=True): run this fit under torchrun and take the weights back ------------
def fit_distributed(model, x, y, batch_size=None, epochs: int = 1, seed=None,
                    nproc_per_node: int = 2, verbose=0, timeout: float | None = None):
    """Train ``model`` with ``nproc_per_node`` DDP processes on this machine; returns its History."""
    from pydlr import io
    from pydlr.data.arrays import as_x_tensor
    from pydlr.train.history import History

    if not isinstance(nproc_per_node, int) or nproc_per_node < 1:
        raise InputError("nproc_per_node", "a positive integer", nproc_per_node, where="fit")
    if not hasattr(model, "get_config"):
        raise InputError("model", "a pydlr model (it is rebuilt in each process)", model, where="fit")
    work = Path(tempfile.mkdtemp(prefix="pydlr-ddp-"))
    io.save_model(model, work / "model.safetensors", include_optimizer=True)
    np.save(work / "x.npy", as_x_tensor(x, where="fit").numpy())
    np.save(work / "y.npy", np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y))
    args = {"batch_size": batch_size, "epochs": epochs, "seed": seed, "verbose": verbose}
    (work / "args.json").write_text(json.dumps(args))
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc_per_node}",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}",
           "-m", "pydlr.train.distributed", "--worker", str(work)]
    done = subprocess.run(cmd, timeout=timeout, capture_output=verbose == 0, text=True)
    if done.returncode != 0:
        tail = (done.stderr or "")[-2000:] if verbose == 0 else ""
        raise TrainingError(f"distributed training failed (exit {done.returncode}):\n{tail}")
    trained = io.load_model(work / "trained.safetensors", model_class=type(model))
    with torch.no_grad():
        for k, v in trained.state_dict().items():
            model.state_dict()[k].copy_(v)
    history = History.from_dict(json.loads((work / "history.json").read_text()))
    model.history = history
    return history


def _worker(folder: str) -> None:
    """What each torchrun process runs for `fit_distributed`."""
    from pydlr import io

    work = Path(folder)
    args = json.loads((work / "args.json").read_text())
    model = io.load_model(work / "model.safetensors")
    x, y = np.load(work / "x.npy"), np.load(work / "y.npy")
    history = model.fit(x, y, batch_size=args["batch_size"], epochs=args["epochs"],
                        seed=args["seed"], verbose=args["verbose"], device="auto")
    if int(os.environ.get("RANK", "0")) == 0:
        io.save_model(model, work / "trained.safetensors", include_optimizer=False)
        (work / "history.json").write_text(json.dumps(history.to_dict()))


# ----- the pydlr-train entry point ------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``pydlr-train``: torchrun with pydlr's defaults (see the module docstring)."""
    ap = argparse.ArgumentParser(
        prog="pydlr-train",
        description="Run a pydlr training script on several processes/machines (DDP via torchrun).")
    ap.add_argument("--nproc-per-node", default="1", help="processes on this machine (or 'gpu')")
    ap.add_argument("--nnodes", default="1")
    ap.add_argument("--node-rank", type=int, default=0)
    ap.add_argument("--master-addr", default="127.0.0.1")
    ap.add_argument("--master-port", type=int, default=None)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("script", nargs="?", help="the training script (calls model.fit as usual)")
    ap.add_argument("script_args", nargs=argparse.REMAINDER)
    ns = ap.parse_args(argv)
    if ns.worker:
        _worker(ns.worker)
        return 0
    if not ns.script:
        ap.error("the training script is missing")
    port = ns.master_port or (free_port() if ns.nnodes == "1" else 29500)
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={ns.nproc_per_node}",
           f"--nnodes={ns.nnodes}", f"--node_rank={ns.node_rank}",
           f"--master_addr={ns.master_addr}", f"--master_port={port}", ns.script, *ns.script_args]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
