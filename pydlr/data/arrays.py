"""Turning user arrays into training tensors once, with every check done before any work.

x becomes a contiguous float32 tensor in the caller's (channels-last) layout; y becomes what the loss
takes: int64 classes ("sparse"), float32 one-hot rows ("categorical"), float32 targets otherwise.
NumPy arrays that are already float32 and C-contiguous are shared, not copied.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from pydlr import ops
from pydlr.errors import InputError

__all__ = ["as_x_tensor", "as_y_tensor", "check_lengths", "check_x_values", "rows_as_float32"]


def _as_array(value: Any, name: str, where: str) -> np.ndarray | torch.Tensor:
    """``value`` as a NumPy array of numbers, or the tensor it is."""
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise InputError(name, "a real numeric array", value, where=where)
        return value.detach()
    if hasattr(value, "to_numpy") and not isinstance(value, np.ndarray):  # pandas / Arrow
        value = value.to_numpy()
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is bad input
        raise InputError(name, "an array or tensor", value, where=where) from exc
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise InputError(name, "a numeric array", arr, where=where)
    if arr.dtype.kind == "c":  # torch would drop the imaginary part with only a warning
        raise InputError(name, "a real numeric array", arr, where=where)
    return arr


def _to_numpy_or_tensor(value: Any, name: str, where: str, float32: bool = False) -> torch.Tensor:
    """``value`` as a tensor; with ``float32``, a NumPy array of numbers becomes float32 on the way (one pass,
    :func:`rows_as_float32`) instead of keeping its dtype."""
    return _as_tensor(_as_array(value, name, where), float32)


def _as_tensor(arr: np.ndarray | torch.Tensor, float32: bool = False) -> torch.Tensor:
    """:func:`_to_numpy_or_tensor` from :func:`_as_array`'s result."""
    if isinstance(arr, torch.Tensor):
        return arr
    if arr.ndim >= 1 and (arr.dtype == np.float64 or (float32 and arr.dtype.kind in "fiu")):
        return rows_as_float32(arr)
    if not arr.flags.writeable:  # torch.from_numpy warns on read-only memory (R's arrays)
        arr = arr.copy()
    return torch.from_numpy(np.ascontiguousarray(arr))


def _shareable(arr: np.ndarray) -> bool:
    """A row-major float32 array that is writeable: torch can use its memory as it is, no copy."""
    return arr.dtype == np.float32 and arr.flags.c_contiguous and arr.flags.writeable


def _native_source(arr: np.ndarray) -> torch.Tensor | None:
    """``arr`` viewed as a tensor where `pydlr.ops.float32_rows` converts it (the native pass's dtypes, no negative
    strides: torch cannot view a reversed array), unless it is shareable (no copy at all); else None."""
    if _shareable(arr) or arr.dtype not in _NATIVE_DTYPES or min(arr.strides, default=0) < 0:
        return None
    with warnings.catch_warnings():  # read-only memory (R's): only read here
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(arr)


def rows_as_float32(arr: np.ndarray, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """Rows ``start:stop`` of a numeric NumPy array as a C-contiguous float32 tensor, in one pass whatever the
    array's memory order.

    A row-major float32 array that is writeable is shared, not copied. Other arrays of the native pass's dtypes
    convert through `pydlr.ops.float32_rows`: torch's copy for row-major ones, the native tiled transpose
    (``pydlr::rows_to_float32``) for any other order, R's column-major arrays above all; the rest (negative
    strides, other dtypes) through NumPy's cast. Measured on the 10,000 Fashion-MNIST test images in batches of 256
    (2026-12-05): in R's order NumPy's strided cast 6.7-7.0 ms, the native pass 3.9-4.3 on one thread and 2.3 on
    the two a batch of 256 takes; in row-major order NumPy's cast 3.3-3.9, torch's copy 1.5.
    """
    n = arr.shape[0]
    stop = n if stop is None else min(stop, n)  # as slicing does: the last batch may ask past the end
    start = min(start, stop)
    src = _native_source(arr)
    if src is not None:
        return ops.float32_rows(src, start, stop)
    if _shareable(arr):
        return torch.from_numpy(arr)[start:stop]
    with np.errstate(invalid="ignore"):  # NaN (R's NA) is reported by the finiteness check, not as a cast warning
        out = np.ascontiguousarray(arr[start:stop], dtype=np.float32)
    if not out.flags.writeable:  # torch.from_numpy warns on read-only memory (R's arrays)
        out = out.copy()
    return torch.from_numpy(out)


_NATIVE_DTYPES = tuple(np.dtype(str(t).removeprefix("torch.")) for t in ops.ROWS_TO_FLOAT32_DTYPES)


def as_x_tensor(x: Any, where: str = "fit", name: str = "x") -> torch.Tensor:
    """x as a contiguous float32 tensor; raises InputError on NaN/Inf or an empty or 0-d array. An array the native
    pass converts is checked in that same pass (`pydlr.ops.float32_rows_checked`): no second read of it."""
    arr = _as_array(x, name, where)
    src = _native_source(arr) if isinstance(arr, np.ndarray) and arr.ndim >= 1 and arr.shape[0] else None
    if src is not None:
        t, finite = ops.float32_rows_checked(src)
        check_x_values(t, where, name, finite=not finite)  # the exact count, for the message, only when off
        return t
    t = _as_tensor(arr, float32=True)
    check_x_values(t, where, name, finite=False)
    if t.dtype != torch.float32:
        t = t.to(torch.float32)
    check_x_values(t, where, name)
    return t.contiguous()


def check_x_values(x: np.ndarray | torch.Tensor, where: str, name: str = "x", finite: bool = True) -> None:
    """InputError unless ``x`` has samples along a first axis and (with ``finite``) only values that are
    finite in float32: the checks every input array passes, whether converted at once or batch by batch."""
    if x.ndim < 1 or x.shape[0] == 0:
        raise InputError(name, "a non-empty array with samples along the first axis", x, where=where)
    bad = _count_non_finite(x) if finite else 0
    if bad:
        raise InputError(name, "finite numbers (no NaN/NA or Inf)", f"{bad} non-finite values", where=where)


def _count_non_finite(x: np.ndarray | torch.Tensor) -> int:
    """Values of ``x`` that are not finite once in float32 (NaN, Inf, beyond float32's range).

    One read-only min/max reduction over the values in their memory order (a C- or F-ordered array is
    viewed flat) decides the common case; the exact count, which allocates, runs only when something is
    off."""
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            return 0
        flat = x.reshape(-1) if x.is_contiguous() else x.contiguous().reshape(-1)
    else:
        if x.dtype.kind != "f":
            return 0
        flat = x.ravel(order="K")  # a view for C- and F-contiguous arrays (R's)
        with warnings.catch_warnings():  # read-only memory (R's): only read here
            warnings.simplefilter("ignore", UserWarning)
            flat = torch.from_numpy(flat)
    lo, hi = torch.aminmax(flat)
    limit = float(np.finfo(np.float32).max)
    if -limit <= float(lo) and float(hi) <= limit:  # also False for NaN
        return 0
    return int((~torch.isfinite(flat.to(torch.float32))).sum())


def check_lengths(x: torch.Tensor, y: torch.Tensor | None, where: str = "fit", name: str = "y") -> None:
    """x and y must have the same number of samples."""
    if y is not None and y.shape[0] != x.shape[0]:
        raise InputError(name, f"{x.shape[0]} samples, as many as x", f"{y.shape[0]} samples",
                         where=where)


def as_y_tensor(y: Any, kind: str, n_outputs: int | None, where: str = "fit",
                name: str = "y") -> torch.Tensor:
    """Labels converted for a loss ``kind`` and checked against the model's output width.

    Parameters
    ----------
    kind : {"sparse", "categorical", "binary", "regression", "custom"}
    n_outputs : int or None
        Size of the model's last output axis (number of classes for classification).
    """
    t = _to_numpy_or_tensor(y, name, where)
    if t.ndim == 0 or t.shape[0] == 0:
        raise InputError(name, "a non-empty array of labels", t, where=where)
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise InputError(name, "finite labels (no NaN/NA or Inf)", t, where=where)
    if kind == "sparse":
        if t.ndim == 2 and t.shape[1] == 1:
            t = t[:, 0]
        if t.ndim != 1:
            raise InputError(name, "integer class labels of shape (n,) for "
                             "sparse_categorical_crossentropy (one-hot labels need "
                             "categorical_crossentropy)", t, where=where)
        if t.is_floating_point():
            if not torch.equal(t, t.round()):
                raise InputError(name, "integer class labels", t, where=where)
        t = t.to(torch.int64)
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or (n_outputs is not None and hi >= n_outputs):
            raise InputError(name, f"class labels in 0..{(n_outputs or 0) - 1} (the model has "
                             f"{n_outputs} outputs)", f"labels in {lo}..{hi}", where=where)
        return t.contiguous()
    if kind == "custom":  # a user's loss gets labels as they are: integers as int64 (torch's class targets)
        integral = not t.is_floating_point() and t.dtype != torch.bool
        return t.to(torch.int64 if integral else torch.float32).contiguous()
    t = t.to(torch.float32)
    if kind == "categorical":
        if t.ndim != 2 or (n_outputs is not None and t.shape[1] != n_outputs):
            hint = (" (integer labels: use to_categorical(y) or "
                    "loss='sparse_categorical_crossentropy')" if t.ndim == 1 else "")
            raise InputError(name, f"one-hot labels of shape (n, {n_outputs}){hint}", t, where=where)
        if t.min() < 0 or t.max() > 1:
            raise InputError(name, "one-hot (or probability) rows with values in [0, 1]",
                             f"values in {float(t.min())}..{float(t.max())}", where=where)
    if kind == "binary" and (t.min() < 0 or t.max() > 1):
        raise InputError(name, "binary targets in [0, 1]",
                         f"values in {float(t.min())}..{float(t.max())}", where=where)
    return t.contiguous()
