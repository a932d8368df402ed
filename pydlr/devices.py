"""Device names resolved for pydlr: "auto", "cpu", "cuda", "cuda:i" or a torch.device, checked against this
machine before any work starts (fit, predict, KMeans). torch knows more device types ("mps", "xpu", "meta",
...) than pydlr's kernels run on, so those are refused here rather than failing inside torch."""

from __future__ import annotations

from typing import Any

import torch

from pydlr.errors import InputError

__all__ = ["resolve_device"]


def resolve_device(device: Any, where: str, choices: str = "'auto', 'cpu' or 'cuda[:i]'") -> torch.device:
    """'auto' -> CUDA when present, else CPU; also 'cpu', 'cuda', 'cuda:1', torch.device. ``choices`` is how
    the caller's errors name the accepted values."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError("device", choices, device, where=where) from None
    if dev.type not in ("cpu", "cuda"):
        raise InputError("device", f"{choices} (pydlr runs on CPUs and NVIDIA GPUs)", device, where=where)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device", "'cpu' or 'auto' (no CUDA device is available)", device, where=where)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise InputError("device", f"one of 'cuda:0'..'cuda:{n - 1}' ({n} CUDA device(s) here)", device,
                         where=where)
    return dev
