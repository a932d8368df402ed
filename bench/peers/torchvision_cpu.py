"""Import torchvision's pure-Python parts (models, datasets, transforms) on the CPU build of torch.

The registry's torchvision 0.28.0 wheel for torch 2.13.0 is built against CUDA: its ``_C.so`` needs
``libc10_cuda.so``, which the CPU torch does not ship, so ``torch.ops.load_library`` fails (torchvision itself
tolerates that and runs without its C++ operators). What breaks the import is one place that does not
tolerate it: ``torchvision/_meta_registrations.py`` registers fake (meta) kernels for ``torchvision::nms`` and
``torchvision::qnms`` without checking that the operators exist, and ``torch.library.register_fake`` refuses
an operator that was never defined. Deleting ``_C.so`` does not help (the operators are still undefined);
editing the installed ``_meta_registrations.py`` would, but changes the vendor's file behind pip's back.

So, when ``_C.so`` cannot be loaded, :func:`import_torchvision` defines those two schemas (the ones torchvision's
C++ registers, without any kernel) before importing torchvision. Nothing else changes: calling ``nms`` raises
torch's "no kernel" error, as a torchvision without its extension would; the models, ImageFolder and the
PIL transforms, which never touch these operators, are the wheel's own code. When ``_C.so`` does load (a CPU
wheel), nothing is defined and torchvision imports as usual.

Usable from the peers' environment only (the project's .venv has no torchvision): scripts/setup_peers.sh.
Call it before anything that imports torchvision there, directly or not: lightning imports torchmetrics,
which imports torchvision whenever it is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

# The schemas of torchvision's C++ registration (torchvision/csrc/ops/nms.cpp, quantized/cpu/qnms_kernel.cpp).
_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_LIBRARY = None  # the torch.library.Library holding the schemas must outlive this call


def _extension_loads(package_dir: Path) -> bool:
    import torch

    lib = next(iter(package_dir.glob("_C*.so")), None)
    if lib is None:
        return False
    try:
        torch.ops.load_library(str(lib))
    except (OSError, RuntimeError):
        return False
    return True


def import_torchvision():
    """Return the imported ``torchvision`` module (see the module docstring for what is done first)."""
    global _LIBRARY
    import sys

    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("torchvision is not installed here: run scripts/setup_peers.sh and use .venv-peers")
    if not _extension_loads(Path(next(iter(spec.submodule_search_locations)))):
        _LIBRARY = torch.library.Library("torchvision", "DEF")
        for schema in _SCHEMAS.values():
            _LIBRARY.define(schema)
    import torchvision

    return torchvision
