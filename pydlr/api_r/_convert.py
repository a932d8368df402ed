"""R's types to Python's (R has no tuples and no integer scalars distinct from length-1 vectors) and
results to plain values R converts cheaply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def int_tuple(value: Any) -> tuple[int, ...]:
    """An R integer vector (an int when of length 1, else a list) as a tuple of ints."""
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return (int(value),)


def shape(value: Any) -> tuple[int, ...] | None:
    """A shape from R (NULL, one number or a list of them)."""
    return None if value is None else int_tuple(value)


def strings(value: Any) -> list[str] | None:
    """An R character vector (NULL, one string, or a list: reticulate hands a length-1 vector over as a
    plain string) as a list of str, or None."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(v) for v in value]


def plain(value: Any) -> Any:
    """NumPy / torch scalars and containers as plain Python values for R."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


def c_array(value: Any, dtype: Any = None) -> np.ndarray:
    """A C-ordered NumPy array (what the bridge hands back to R without a transpose)."""
    return np.ascontiguousarray(np.asarray(value), dtype=dtype)


def labels(value: Any) -> np.ndarray:
    """0-based class labels from R (an integer array of any shape) as a flat int64 array."""
    return np.asarray(value).reshape(-1).astype(np.int64)


def history(h: Any) -> dict[str, Any]:
    """A Keras ``History`` as plain values: metrics per epoch, 1-based epochs (R's), params."""
    d = h.to_dict()
    return {
        "metrics": {str(k): [float(v) for v in vals] for k, vals in d["history"].items()},
        "epoch": [int(e) + 1 for e in d["epoch"]],
        "params": plain(dict(d.get("params") or {})),
    }
