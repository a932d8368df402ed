"""pydlr's weights file format (safetensors + JSON metadata): its name, version and bytes.

A leaf module (it imports nothing of pydlr), below both io/ (which writes the files) and models/ (whose
summary reports the size of the file io would write), so the summary needs no import of io.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from safetensors.torch import save as _st_save

FORMAT_NAME = "pydlr"
FORMAT_VERSION = 1


def plain_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors safetensors accepts (no copy for ones already so); shared storage split."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, t in state.items():
        t = t.detach().cpu()
        if not t.is_contiguous():
            t = t.contiguous()
        if t.data_ptr() in seen and t.numel():
            t = t.clone()
        if t.numel():
            seen.add(t.data_ptr())
        out[key] = t
    return out


def weights_bytes(state: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None) -> bytes:
    """The serialized safetensors bytes of a state dict (metadata values as JSON strings), with the
    tensors' checksum in the metadata (``tensors_sha256``) so a changed or corrupted file is refused."""
    tensors = plain_tensors(state)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    meta[CHECKSUM_KEY] = tensors_sha256(tensors)
    return safetensors_bytes(tensors, meta)


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """safetensors' own serialization with its JSON header written in sorted key order, so that the same
    tensors and metadata always give the same bytes (a file's checksum identifies its content).

    safetensors keeps the header in a hash map whose order changes from call to call; the tensor data and
    their offsets are already in a fixed order, so only the header is rewritten (padded with spaces to a
    multiple of 8 bytes, as safetensors pads it)."""
    raw = _st_save(tensors, metadata=metadata)
    n = int.from_bytes(raw[:8], "little")
    header = json.dumps(json.loads(raw[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + raw[8 + n:]


CHECKSUM_KEY = "tensors_sha256"


def tensors_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of ``state`` in key order: what a file must hold."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().contiguous().cpu()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def weights_metadata(class_name: str) -> dict[str, str]:
    """The metadata ``save_weights`` stores (shared with the summary so it reports the real file size)."""
    return {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION), "class_name": class_name}
