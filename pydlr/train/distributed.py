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
import contextlib
import json
import os
import re
import shutil
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
    env = torchrun_env()
    if env is None or env["WORLD_SIZE"] <= 1:
        return None
    import datetime

    import torch.distributed as dist

    local_rank = env["LOCAL_RANK"]
    use_cuda = device.type == "cuda" and torch.cuda.is_available()
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise InputError("environment variable LOCAL_RANK", f"a GPU index below "
                             f"{torch.cuda.device_count()} (one GPU per process on this machine)",
                             local_rank, where="fit")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        # bounded: a peer that never joins, or dies, ends the run with an error instead of a hang
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=ddp_timeout()))
        # Leave the group before the interpreter tears down: otherwise gloo's threads can still be joinable
        # when its objects are destroyed during finalization, and the process dies with "terminate called
        # without an active exception" (SIGABRT) after training finished (seen ~1 run in 6).
        atexit.register(_leave_process_group)
    return DDPContext(dist.get_rank(), local_rank, dist.get_world_size(), device, backend)


# torchrun's variables: the group's size and this process's place in it, and where the rendezvous is.
_INT_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


def torchrun_env(environ: dict[str, str] | None = None) -> dict[str, object] | None:
    """torchrun's environment checked for consistency: None outside torchrun (no WORLD_SIZE and no RANK),
    else the parsed variables. InputError names the variable that is missing or does not fit the others,
    before any connection is tried (a wrong RANK would otherwise wait for the rendezvous until timeout)."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env and "RANK" not in env:
        return None

    def bad(name: str, expected: str, got: object) -> InputError:
        return InputError(f"environment variable {name}", expected + " (torchrun sets WORLD_SIZE, RANK, "
                          "LOCAL_RANK, MASTER_ADDR and MASTER_PORT; launch with torchrun, or unset them all)",
                          got, where="fit")

    out: dict[str, object] = {}
    for name in _INT_VARS:
        raw = env.get(name)
        if raw is None:
            raise bad(name, "set", "unset")
        try:
            out[name] = int(raw)
        except ValueError:
            raise bad(name, "an integer", raw) from None
    world, rank, local = out["WORLD_SIZE"], out["RANK"], out["LOCAL_RANK"]
    if world < 1:
        raise bad("WORLD_SIZE", "a positive integer", world)
    if not 0 <= rank < world:
        raise bad("RANK", f"an integer in 0..{world - 1} (WORLD_SIZE is {world})", rank)
    local_world = int(env.get("LOCAL_WORLD_SIZE", world))
    if not 0 <= local < local_world or local > rank:
        raise bad("LOCAL_RANK", f"an integer in 0..{min(local_world - 1, rank)} (RANK {rank}, "
                  f"LOCAL_WORLD_SIZE {local_world})", local)
    if world > 1:
        if not env.get("MASTER_ADDR"):
            raise bad("MASTER_ADDR", "the address of the rank-0 machine", "unset")
        port = env.get("MASTER_PORT")
        if port is None or not port.isdigit() or not 0 < int(port) < 65536:
            raise bad("MASTER_PORT", "a TCP port number (1-65535)", port or "unset")
    return out


def ddp_timeout() -> float:
    """Seconds a process waits for its peers (joining, and each collective) before failing: the
    ``PYDLR_DDP_TIMEOUT`` environment variable, 300 by default."""
    raw = os.environ.get("PYDLR_DDP_TIMEOUT", "300")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise InputError("environment variable PYDLR_DDP_TIMEOUT", "a positive number of seconds", raw,
                         where="fit")
    return value


@contextlib.contextmanager
def explain_failure():
    """Inside a distributed run, a failed collective (a peer that died, or a lost connection) becomes a
    TrainingError that says so: the torch message alone names sockets, not processes."""
    try:
        yield
    except RuntimeError as exc:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or not _is_peer_failure(exc):
            raise
        first = _first_sentence(str(exc)) or type(exc).__name__
        raise TrainingError(
            f"distributed training stopped: another process of this run (rank {dist.get_rank()} of "
            f"{dist.get_world_size()} here) failed or could not be reached ({first}). The checkpoint of the "
            "last complete epoch, if fit(resume = ) was given, is intact: restart the same command to "
            "continue from it."
        ) from None


def _first_sentence(text: str) -> str:
    """The gist of a torch/gloo message: its first sentence, without the C++ source location."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = re.sub(r"^\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", line)
    return line.split(". ")[0][:300]


def _is_peer_failure(exc: BaseException) -> bool:
    import torch.distributed as dist

    text = str(exc).lower()
    return isinstance(exc, dist.DistError) or any(
        s in text for s in ("gloo", "nccl", "connection", "timed out", "timeout", "peer"))


def torchrun_command(script: str, nproc_per_node: int | str = 1, nnodes: int = 1,
                     rdzv_endpoint: str | None = None, program: str | None = None,
                     rdzv_id: str = "pydlr", script_args: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The torchrun command that runs ``script`` on ``nnodes`` machines x ``nproc_per_node`` processes
    (the same command on every machine; c10d rendezvous at ``rdzv_endpoint``, "host:port" of any one of
    them). ``program``: the interpreter for a script that is not Python (e.g. "Rscript"), run with
    torchrun's ``--no-python``; None runs the script with Python."""
    where = "torchrun_command"
    if not (isinstance(nproc_per_node, int) and nproc_per_node > 0) and nproc_per_node not in ("gpu", "cpu",
                                                                                          "auto"):
        raise InputError("nproc_per_node", "a positive integer or 'gpu'", nproc_per_node, where=where)
    if isinstance(nnodes, bool) or not isinstance(nnodes, int) or nnodes < 1:
        raise InputError("nnodes", "a positive integer", nnodes, where=where)
    if nnodes > 1 and not rdzv_endpoint:
        raise InputError("rdzv_endpoint", "'host:port' of one of the machines (several nodes)",
                         rdzv_endpoint, where=where)
    cmd = ["torchrun"]
    if rdzv_endpoint:
        cmd += [f"--nnodes={nnodes}", f"--nproc-per-node={nproc_per_node}", "--rdzv-backend=c10d",
                f"--rdzv-endpoint={rdzv_endpoint}", f"--rdzv-id={rdzv_id}"]
    else:
        cmd += ["--standalone", f"--nproc-per-node={nproc_per_node}"]
    if program:
        cmd += ["--no-python", program]
    return cmd + [str(script), *map(str, script_args)]


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
        for state in learn.stateful_metrics:  # AUC, Precision, ...: gather every process's predictions
            state.sync()


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
                    nproc_per_node: int = 2, verbose=0, timeout: float | None = None, **fit_args):
    """Train ``model`` with ``nproc_per_node`` DDP processes on this machine; returns its History.

    The model (architecture, weights, compile settings, optimizer state), the data and ``fit_args``
    (``fit``'s other arguments: plain values, arrays, an `Augment`) go to a temporary folder; each
    process rebuilds the model from it. Callbacks cannot be sent (they may hold functions of this
    session); ``resume=`` gives per-epoch checkpoints, written by rank 0.
    """
    if not isinstance(nproc_per_node, int) or isinstance(nproc_per_node, bool) or nproc_per_node < 1:
        raise InputError("nproc_per_node", "a positive integer", nproc_per_node, where="fit")
    if not hasattr(model, "get_config"):
        raise InputError("model", "a pydlr model (it is rebuilt in each process)", model, where="fit")
    for key in ("print_fn", "dynamic_progress", "distributed"):
        fit_args.pop(key, None)
    if fit_args.pop("callbacks", None):
        raise InputError("callbacks", "none with distributed training started from this session (each "
                         "process rebuilds the model; use resume = for checkpoints, or run the script "
                         "under torchrun)", "callbacks", where="fit")
    _check_dataset_fit(model, x, y, batch_size, fit_args)
    # The folder holds a copy of the data: removed whatever happens, so repeated fits do not fill the disk.
    work = Path(tempfile.mkdtemp(prefix="pydlr-ddp-"))
    try:
        return _fit_in_processes(model, x, y, batch_size, epochs, seed, verbose, nproc_per_node, timeout,
                                 fit_args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fit_in_processes(model, x, y, batch_size, epochs, seed, verbose, nproc_per_node, timeout, fit_args: dict,
                      work: Path):
    """`fit_distributed`'s work once its folder exists: send, run torchrun, take the trained weights back."""
    from pydlr import io
    from pydlr.train.history import History

    try:
        io.save_model(model, work / "model.safetensors", include_optimizer=True)
    except Exception as exc:  # e.g. a model class pydlr cannot describe: say so before any process starts
        raise InputError("model", "a model pydlr can save (save_model) to send to the processes", model,
                         where="fit") from exc
    args = {"batch_size": batch_size, "epochs": epochs, "seed": seed, "verbose": verbose,
            **_send_fit_args(fit_args, x, y, work)}
    (work / "args.json").write_text(json.dumps(args))
    cmd = [_python(), "-m", "torch.distributed.run", f"--nproc_per_node={nproc_per_node}",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}",
           "-m", "pydlr.train.distributed", "--worker", str(work)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [_package_root(),
                                                                   os.environ.get("PYTHONPATH")] if p))
    done = subprocess.run(cmd, timeout=timeout, capture_output=verbose == 0, text=True, env=env)
    if done.returncode != 0:
        tail = (done.stderr or "")[-2000:] if verbose == 0 else ""
        raise TrainingError(f"distributed training failed (exit {done.returncode}):\n{tail}")
    trained = io.load_model(work / "trained.safetensors", model_class=type(model))
    with torch.no_grad():
        for k, v in trained.state_dict().items():
            model.state_dict()[k].copy_(v)
    model.input_scale = trained.input_scale  # the training images' scale the processes saw (pydlr.data.scale)
    history = History.from_dict(json.loads((work / "history.json").read_text()))
    model.history = history
    return history


def _check_dataset_fit(model, x, y, batch_size, fit_args: dict) -> None:
    """An image dataset is checked against the model and the loss here, before any process starts (as
    fit does in one process)."""
    from pydlr.data.image_dataset import ImageDataset
    from pydlr.data.prepare import prepare_dataset_fit

    if isinstance(x, ImageDataset):
        prepare_dataset_fit(model, getattr(model, "_loss", None), x, y, fit_args.get("validation_split") or 0.0,
                            fit_args.get("validation_data"), batch_size=batch_size,
                            sample_weight=fit_args.get("sample_weight"), class_weight=fit_args.get("class_weight"))
    for argument, value in (("x", x), ("validation_data", fit_args.get("validation_data"))):
        if isinstance(value, ImageDataset) and value.maps:
            value.describe(argument)  # raises: functions cannot be sent


def _send_fit_args(fit_args: dict, x, y, work: Path) -> dict:
    """Write the data of a fit to ``work`` (arrays as npy, an image dataset as the JSON description of its
    files and settings: each process then reads its own shard of the files) and return its other arguments
    as JSON values."""
    from pydlr.data.arrays import as_x_tensor
    from pydlr.data.augment import Augment
    from pydlr.data.image_dataset import ImageDataset

    def save(name: str, value) -> str:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        np.save(work / f"{name}.npy", np.asarray(value))
        return name

    def save_dataset(name: str, ds: ImageDataset, argument: str) -> str:
        (work / f"{name}.json").write_text(json.dumps(ds.describe(argument)))
        return name

    if isinstance(x, ImageDataset):
        save_dataset("x", x, "x")
    else:
        save("x", as_x_tensor(x, where="fit").numpy())
        save("y", y)
    out: dict = {}
    for key, value in fit_args.items():
        if value is None:
            continue
        if key == "sample_weight":
            out[key] = {"npy": save(key, value)}
        elif key == "validation_data" and isinstance(value, ImageDataset):
            out[key] = {"dataset": save_dataset("val", value, key)}
        elif key == "validation_data":
            out[key] = {"npy_list": [save(f"val{i}", v) for i, v in enumerate(value)]}
        elif key == "augment" and isinstance(value, Augment):
            out[key] = {"augment": value.get_config()}
        elif key == "class_weight":
            out[key] = {"class_weight": [[int(k), float(v)] for k, v in dict(value).items()]}
        else:
            try:
                json.dumps(value)
            except TypeError:
                raise InputError(key, "a plain value (number, string, list) that can be sent to the "
                                 "processes", value, where="fit") from None
            out[key] = value
    return out


def _load_dataset(work: Path, name: str):
    from pydlr.data.image_dataset import ImageDataset

    return ImageDataset.from_description(json.loads((work / f"{name}.json").read_text()))


def _receive_fit_args(args: dict, work: Path) -> dict:
    from pydlr.data.augment import Augment

    out = {}
    for key, value in args.items():
        if isinstance(value, dict) and "npy" in value:
            value = np.load(work / f"{value['npy']}.npy")
        elif isinstance(value, dict) and "npy_list" in value:
            value = tuple(np.load(work / f"{n}.npy") for n in value["npy_list"])
        elif isinstance(value, dict) and "dataset" in value:
            value = _load_dataset(work, value["dataset"])
        elif isinstance(value, dict) and "augment" in value:
            value = Augment.from_config(value["augment"])
        elif isinstance(value, dict) and "class_weight" in value:
            value = {k: v for k, v in value["class_weight"]}
        out[key] = value
    return out


def _python() -> str:
    """This interpreter's executable; inside R (reticulate) ``sys.executable`` can be R itself."""
    exe = sys.executable
    if exe and "python" in os.path.basename(exe).lower():
        return exe
    candidate = Path(sys.prefix) / "bin" / "python"
    return str(candidate) if candidate.exists() else exe


def _package_root() -> str:
    """The folder holding this pydlr (so the processes import the same one)."""
    return str(Path(__file__).resolve().parents[2])


def _worker(folder: str) -> None:
    """What each torchrun process runs for `fit_distributed`."""
    from pydlr import io

    work = Path(folder)
    args = _receive_fit_args(json.loads((work / "args.json").read_text()), work)
    model = io.load_model(work / "model.safetensors")
    if (work / "x.json").exists():  # an image dataset: this rank reads its shard of the files
        x, y = _load_dataset(work, "x"), None
    else:
        x, y = np.load(work / "x.npy"), np.load(work / "y.npy")
    args.setdefault("device", "auto")
    history = model.fit(x, y, **args)
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
