"""Training on several processes and machines from R: the torchrun command (``pydlr.train.distributed``).

``fit`` itself needs nothing from R: under torchrun the engine joins the process group (see
``pydlr.train.distributed``), and ``training.fit`` forwards ``distributed`` to ``fit_distributed``.
"""

from __future__ import annotations

from typing import Any

from pydlr.train.distributed import torchrun_command as _torchrun_command


def torchrun_command(script: str, nproc_per_node: Any = 2, nnodes: int = 1, rdzv_endpoint: str | None = None,
                     program: str | None = "Rscript", script_args: Any = ()) -> list[str]:
    """``pydlr.train.distributed.torchrun_command``; R's ``script_args`` arrive as a list."""
    args = script_args if isinstance(script_args, (list, tuple)) else [script_args]
    return _torchrun_command(script, nproc_per_node=nproc_per_node, nnodes=nnodes, rdzv_endpoint=rdzv_endpoint,
                             program=program, script_args=[str(a) for a in args])
