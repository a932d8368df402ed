"""Seeding, and the runtime facts R's ``pydlr_config()`` reports (torch, threads, the native build)."""

from __future__ import annotations

import os
import sys
from typing import Any

import torch

import pydlr
from pydlr import ops, utils


def set_random_seed(seed: int) -> None:
    """``pydlr.utils.set_random_seed``: Python's, NumPy's and torch's generators."""
    utils.set_random_seed(seed)


def runtime_info() -> dict[str, Any]:
    """Versions, threads and builds, read from this process's Python and torch."""
    return {
        "python": sys.executable,
        "pydlr_version": pydlr.__version__,
        "torch_version": torch.__version__,
        "torch_lib": os.path.dirname(torch.__file__),
        "threads": {"torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads(),
                    "cores": os.cpu_count()},
        "torch_parallel_info": torch.__config__.parallel_info(),
        "torch_build": torch.__config__.show(),
        "native": ops.build_info(),
    }
