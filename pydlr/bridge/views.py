"""NumPy and torch views of Arrow data, shaped as R's vectors, matrices and arrays.

R is column-major: an R array of dim (d0, d1, ..., dk) is, in memory, a C-order array of shape
(dk, ..., d1, d0). Reshaping the flat buffer to the reversed dims and transposing gives an array of
R's dims in R's order (``a[i, j] == x[i + 1, j + 1]``) with Fortran-order strides: a view, no copy.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from pydlr.errors import InputError

_WHERE = "pydlr bridge"

# Image layouts an R array may come in, and the axes that reorder it to NHWC.
LAYOUT_TO_NHWC = {"nhwc": (0, 1, 2, 3), "hwcn": (3, 0, 1, 2), "nchw": (0, 2, 3, 1)}


def as_numpy(data: pa.Array | pa.RecordBatch | pa.Table | np.ndarray,
             shape: Sequence[int] | None = None) -> np.ndarray:
    """A NumPy array of Arrow data, viewing its memory where the layout allows.

    Parameters
    ----------
    data
        A numeric/boolean Arrow array (zero-copy when numeric without nulls; floats and integers
        with nulls become float64 with NaN, booleans a copy), or a table of numeric columns (an
        (n, p) Fortran-order copy).
    shape
        R's dims of the flat array (R's order), or None for a 1-d array.

    Returns
    -------
    numpy.ndarray
        Read-only when it views foreign memory.
    """
    if isinstance(data, (pa.RecordBatch, pa.Table)):
        out = _table_to_numpy(data)
    elif isinstance(data, pa.ChunkedArray):
        out = _array_to_numpy(data.combine_chunks())
    elif isinstance(data, pa.Array):
        out = _array_to_numpy(data)
    elif isinstance(data, np.ndarray):
        out = data
    else:
        raise InputError("data", "a pyarrow Array, RecordBatch or Table", data, where=_WHERE)
    if shape is not None and len(shape) >= 2:
        out = r_dims_view(out, shape)
    return out


def r_dims_view(flat: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """View a flat column-major buffer with R's dims (F-order strides, no copy)."""
    dims = tuple(int(d) for d in shape)
    if int(np.prod(dims)) != flat.size:
        raise InputError("shape", f"dims holding {flat.size} elements", dims, where=_WHERE)
    return flat.reshape(dims[::-1]).transpose()


def as_tensor(data: Any, shape: Sequence[int] | None = None, layout: str | None = None,
              dtype: str | None = None, contiguous: bool = False, logical: bool = False) -> Any:
    """A torch tensor of Arrow/NumPy data: a view of its memory where the layout allows.

    Parameters
    ----------
    data
        As for :func:`as_numpy`.
    shape
        R's dims (R's order), or None.
    layout
        For 4-d images: "nhwc", "hwcn" or "nchw", the order of R's dims; the tensor is NHWC.
    dtype
        A torch dtype name (e.g. "float32") to convert to (a copy), or None.
    contiguous
        Copy into a C-contiguous tensor.
    logical
        The data are R logicals (int32 0/1): return a bool tensor (a copy).

    Returns
    -------
    torch.Tensor
        Sharing memory with `data` unless a conversion was asked for. The view of foreign (R's)
        memory must not be written in place.
    """
    import torch

    arr = as_numpy(data, shape)
    if layout is not None:
        if layout not in LAYOUT_TO_NHWC:
            raise InputError("layout", "one of " + ", ".join(LAYOUT_TO_NHWC), layout, where=_WHERE)
        if arr.ndim != 4:
            raise InputError("layout", "used with a 4-d array", arr, where=_WHERE)
        arr = arr.transpose(LAYOUT_TO_NHWC[layout])
    with warnings.catch_warnings():
        # R's memory is read-only for Python (R vectors have value semantics); torch has no
        # read-only tensors and warns. The docs of to_torch() say not to write in place.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        t = torch.from_numpy(arr) if arr.size else torch.from_numpy(np.array(arr))
    if logical:
        t = t != 0
    if dtype is not None:
        t = t.to(_torch_dtype(dtype))
    if contiguous:
        t = t.contiguous()
    return t


def _torch_dtype(name: str) -> Any:
    import torch

    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype):
        raise InputError("dtype", "a torch dtype name such as 'float32'", name, where=_WHERE)
    return dtype


_NUMERIC = {
    pa.float64(): np.float64, pa.float32(): np.float32,
    pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
    pa.uint8(): np.uint8, pa.uint16(): np.uint16, pa.uint32(): np.uint32, pa.uint64(): np.uint64,
}


def _array_to_numpy(arr: pa.Array) -> np.ndarray:
    t = arr.type
    if pa.types.is_dictionary(t):
        if arr.null_count:
            raise InputError("data", "a dictionary array without nulls", arr, where=_WHERE)
        arr, t = arr.indices, arr.type.index_type
    if t in _NUMERIC and arr.null_count == 0:
        dtype = np.dtype(_NUMERIC[t])
        if len(arr) == 0:
            return np.empty(0, dtype=dtype)
        # Zero-copy: the array's own data buffer (R's memory for an R vector), read-only.
        view = np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)
        view.flags.writeable = False
        return view
    if t in _NUMERIC:
        return arr.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    if pa.types.is_boolean(t):
        if arr.null_count:
            return np.where(arr.is_null().to_numpy(zero_copy_only=False), np.nan,
                            arr.fill_null(False).to_numpy(zero_copy_only=False).astype(np.float64))
        return arr.to_numpy(zero_copy_only=False)
    raise InputError("data", "numeric or boolean Arrow data", _Type(t), where=_WHERE)


def _table_to_numpy(table: pa.RecordBatch | pa.Table) -> np.ndarray:
    columns = [_array_to_numpy(c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c)
               for c in table.columns]
    if not columns:
        return np.empty((table.num_rows, 0))
    dtype = np.result_type(*columns)
    out = np.empty((len(columns), table.num_rows), dtype=dtype).T  # F-order, as R's matrices
    for j, col in enumerate(columns):
        out[:, j] = col
    return out


class _Type:
    def __init__(self, t: pa.DataType):
        self.t = t

    def __repr__(self) -> str:
        return f"Arrow data of type {self.t}"
