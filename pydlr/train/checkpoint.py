"""Training-state checkpoints for interrupt/resume: one safetensors file, written atomically, no pickle.

The file holds the model's state dict (``model/<key>``), the optimizer's tensors (``optim/<i>/<name>``)
and torch's RNG states (``rng/cpu``, ``rng/cuda<i>``); its metadata holds JSON for everything else:
epoch count, seed, history, optimizer hyperparameters and scalar state, callbacks' states.
It is written to a temporary file in the same folder, fsynced and renamed over the old one, so an
exception or Ctrl-C at any moment leaves the previous complete checkpoint in place.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open

from pydlr.atomic_files import atomic_write_bytes
from pydlr.errors import InputError
from pydlr.weights_format import safetensors_bytes

__all__ = ["save_training_state", "load_training_state", "check_writable"]

FORMAT = "pydlr-training-state"


def check_writable(path: str | os.PathLike, argument: str, where: str = "fit") -> Path:
    """Fail before training when ``path`` could not be written; creates nothing.

    The folder may not exist yet (it is created at the first write): then its nearest existing
    ancestor must be a writable folder.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InputError(argument, "a file path (a non-empty string)", path, where=where)
    p = Path(path)
    if p.is_dir():
        raise InputError(argument, "a file path (not an existing folder)", str(p), where=where)
    folder = p.parent if str(p.parent) else Path(".")
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(argument, "a path in a writable folder",
                         f"{p} ({probe} is not a folder)", where=where)
    try:  # a real write (permission bits say nothing for root or on special file systems)
        fd, tmp = tempfile.mkstemp(prefix=".pydlr-probe-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise InputError(argument, "a path in a writable folder",
                         f"{p} ({probe}: {exc.strerror})", where=where) from None
    return p


def _plain(value):
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value


def save_training_state(path: str | os.PathLike, model: torch.nn.Module,
                        optimizer: torch.optim.Optimizer | None, meta: dict) -> None:
    """Write the checkpoint (see the module docstring). ``meta`` must be JSON-safe."""
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model/{k}"] = v.detach().to("cpu").contiguous().clone()
    optim_meta = None
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars: dict[str, dict] = {}
        for i, st in sd["state"].items():
            for name, val in st.items():
                if isinstance(val, torch.Tensor):
                    tensors[f"optim/{i}/{name}"] = val.detach().to("cpu").contiguous().clone()
                else:
                    scalars.setdefault(str(i), {})[name] = val
        groups = [{k: _plain(v) for k, v in g.items()} for g in sd["param_groups"]]
        optim_meta = {"groups": groups, "scalars": scalars, "class": type(optimizer).__name__}
    tensors["rng/cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, st in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda{i}"] = st
    metadata = {"format": FORMAT, "version": "1",
                "meta": json.dumps(meta), "optimizer": json.dumps(optim_meta)}
    p = Path(path)
    atomic_write_bytes(p, safetensors_bytes(tensors, metadata))


def load_training_state(path: str | os.PathLike, model: torch.nn.Module,
                        optimizer: torch.optim.Optimizer | None) -> dict:
    """Restore model weights, optimizer state and RNG states in place; return the JSON meta."""
    with safe_open(str(path), framework="pt") as f:
        md = f.metadata() or {}
        if md.get("format") != FORMAT:
            raise InputError("resume", "a pydlr training-state checkpoint", str(path),
                             where="fit")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model_sd = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    own = model.state_dict()
    if set(own) != set(model_sd) or any(own[k].shape != v.shape for k, v in model_sd.items()):
        raise InputError("resume", "a checkpoint of this model's architecture",
                         f"{str(path)!r} with other weights", where="fit")
    with torch.no_grad():
        for k, v in model_sd.items():
            own[k].copy_(v)  # keeps each tensor's device and memory format
    optim_meta = json.loads(md.get("optimizer", "null"))
    if optimizer is not None and optim_meta is not None:
        _load_optimizer(optimizer, tensors, optim_meta)
    torch.set_rng_state(tensors["rng/cpu"])
    cuda = sorted(k for k in tensors if k.startswith("rng/cuda"))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    return json.loads(md["meta"])


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim/"):
            _, i, name = k.split("/", 2)
            state.setdefault(int(i), {})[name] = v
    for i, sc in meta["scalars"].items():
        state.setdefault(int(i), {}).update(sc)
    current = optimizer.state_dict()
    groups = []
    for saved, cur in zip(meta["groups"], current["param_groups"], strict=False):
        g = dict(cur)
        g.update({k: (tuple(v) if isinstance(cur.get(k), tuple) else v)
                  for k, v in saved.items() if k != "params"})
        groups.append(g)
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    # torch casts loaded state to each parameter's dtype/device; match its memory format too
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for p in params:
        st = optimizer.state.get(p, {})
        for name, v in st.items():
            if isinstance(v, torch.Tensor) and v.shape == p.shape and v.dim() == 4:
                st[name] = torch.empty_like(p).copy_(v)
