"""Seeding, and the runtime facts R's ``pydlr_config()`` reports (torch, threads, the native build)."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

import numpy as np
import torch

import pydlr
from pydlr import ops, utils
from pydlr.pretrained import registry


def set_random_seed(seed: int) -> None:
    """``pydlr.utils.set_random_seed``: Python's, NumPy's and torch's generators."""
    utils.set_random_seed(seed)


def runtime_info() -> dict[str, Any]:
    """Versions, threads and builds, read from this process's Python and torch."""
    return {
        "python": sys.executable,
        "python_version": sys.version.split()[0],
        "pydlr_version": pydlr.__version__,
        "torch_version": torch.__version__,
        "torch_lib": os.path.dirname(torch.__file__),
        "threads": {"torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads(),
                    "cores": os.cpu_count()},
        "torch_parallel_info": torch.__config__.parallel_info(),
        "torch_build": torch.__config__.show(),
        "native": ops.build_info(),
        "cpu_cache": {k: float(v) for k, v in ops.cpu_cache_info().items()},  # R integers stop at 2^31
        "numpy_version": np.__version__,
        "pyarrow_version": _version_of("pyarrow"),
        "cuda": _cuda_info(),
        "weights": [_weights_info(name) for name in sorted(registry.REGISTRY)],
    }


def _version_of(module: str) -> str | None:
    """A module's version without importing it when it is absent (None then)."""
    if importlib.util.find_spec(module) is None:
        return None
    return str(getattr(__import__(module), "__version__", "unknown"))


def _cuda_info() -> dict[str, Any]:
    """Whether torch was built with CUDA, whether a device is usable, and the devices' names."""
    available = torch.cuda.is_available()
    return {
        "built": torch.version.cuda,
        "available": available,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if available else [],
    }


def _weights_info(name: str) -> dict[str, Any]:
    """Pretrained weights: whether the source package is installed, whether the converted cache exists."""
    spec = registry.spec(name)
    cache = registry.cache_path(name)
    return {
        "name": name,
        "present": importlib.util.find_spec(spec.package) is not None,
        "install_hint": spec.install_hint,
        "cache": str(cache),
        "cached": cache.is_file(),
    }
