"""Arrow C Data Interface structs in and out of Python, with pyarrow.

The structs live in memory the other side allocated; their addresses travel as plain numbers (R passes
doubles, exact below 2**53). Importing *moves* the structs' contents into pyarrow (their ``release``
becomes NULL, and pyarrow calls the producer's release when the last view goes). Exporting fills them
for R's C code, which copies once into R vectors and releases them.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from pydlr.errors import InputError

_WHERE = "pydlr bridge"


def import_from_c(schema_addr: float | int, array_addr: float | int, batch: bool = False
                  ) -> pa.Array | pa.RecordBatch:
    """Take over the Arrow structs at the given addresses.

    Parameters
    ----------
    schema_addr, array_addr
        Addresses of a filled ``ArrowSchema`` and ``ArrowArray`` (as numbers).
    batch
        The array is a struct to read as a :class:`pyarrow.RecordBatch` (an R data.frame).

    Returns
    -------
    pyarrow.Array or pyarrow.RecordBatch
        Whose buffers are the producer's memory (R's, for R vectors that allow it).
    """
    schema_ptr, array_ptr = _struct_address(schema_addr, "schema_addr"), _struct_address(array_addr, "array_addr")
    _check_structs(schema_ptr, array_ptr)
    try:
        data = (pa.RecordBatch if batch else pa.Array)._import_from_c(array_ptr, schema_ptr)
        # Numbers: the O(1) checks (lengths, offsets, null counts), so their import stays zero-copy at any
        # size. Strings and dictionaries: also their offsets, views and indices, O(n) like the copy R
        # made to export them, since a bad one makes every later read go out of bounds.
        data.validate(full=_has_indirection(data.schema if batch else data.type))
    except (pa.ArrowInvalid, pa.ArrowIndexError) as e:
        raise InputError("array_addr", "Arrow C Data Interface structs that follow the specification",
                         f"structs pyarrow refuses ({e})", where=_WHERE) from None
    return data


def _has_indirection(t: pa.DataType | pa.Schema) -> bool:
    """Whether reading the type follows offsets, views or indices stored in the data."""
    if isinstance(t, pa.Schema):
        return any(_has_indirection(f.type) for f in t)
    return (pa.types.is_dictionary(t) or pa.types.is_string(t) or pa.types.is_large_string(t)
            or pa.types.is_binary(t) or pa.types.is_large_binary(t) or t.id in _VIEW_IDS
            or pa.types.is_nested(t))


_VIEW_IDS = {getattr(pa, name)().id for name in ("string_view", "binary_view") if hasattr(pa, name)}


def _struct_address(addr: float | int, argument: str) -> int:
    if isinstance(addr, bool) or not isinstance(addr, (int, float, np.integer, np.floating)) or not addr > 0 \
            or addr != int(addr):
        raise InputError(argument, "the address of an Arrow C struct (a positive whole number)", addr,
                         where=_WHERE)
    return int(addr)


def _check_structs(schema_ptr: int, array_ptr: int) -> None:
    """What pyarrow's import would dereference without checking: the format, the buffer and child
    pointers (at the top level and one level down, as R's exporter builds: a struct of columns, each
    with at most a dictionary). Released structs are refused too. O(columns), no data read."""
    from pydlr.bridge.cabi import ArrowArray, ArrowSchema

    def check(s: ArrowSchema, a: ArrowArray, what: str, depth: int) -> None:
        problem = None
        if depth == 0 and not (s.release and a.release):
            problem = "released structs"
        elif not s.format:
            problem = "a schema without a format string"
        elif a.length < 0 or a.offset < 0 or a.null_count < -1:
            problem = "a negative length, offset or null count"
        elif a.n_buffers > 0 and not a.buffers:
            problem = "an array without its buffers"
        elif s.n_children != a.n_children or a.n_children < 0:
            problem = "schema and array with different numbers of children"
        elif a.n_children > 0 and not (s.children and a.children):
            problem = "children missing"
        elif bool(s.dictionary) != bool(a.dictionary):
            problem = "a dictionary on one side only"
        if problem:
            raise InputError("array_addr", "Arrow C Data Interface structs that follow the specification",
                             f"{what} with {problem}", where=_WHERE)
        if depth >= 1:
            return
        sp = ctypes.cast(s.children, ctypes.POINTER(ctypes.c_void_p))
        ap = ctypes.cast(a.children, ctypes.POINTER(ctypes.c_void_p))
        for j in range(a.n_children):
            if not sp[j] or not ap[j]:
                raise InputError("array_addr", "Arrow C Data Interface structs that follow the specification",
                                 f"child {j} missing", where=_WHERE)
            check(ArrowSchema.from_address(sp[j]), ArrowArray.from_address(ap[j]), f"child {j}", depth + 1)
        if s.dictionary:
            check(ArrowSchema.from_address(s.dictionary), ArrowArray.from_address(a.dictionary), "the dictionary",
                  depth + 1)

    check(ArrowSchema.from_address(schema_ptr), ArrowArray.from_address(array_ptr), "the array", 0)


@dataclass
class ArrowExport:
    """A Python object made ready for R: the Arrow data, and how R must shape it.

    ``shape`` is the N-d array's shape in R's order (None for vectors and tables); ``order`` is the
    memory order of the flat data: "F" (R's own, copied as is) or "C" (transposed while copied).
    """

    data: pa.Array | pa.RecordBatch
    shape: tuple[int, ...] | None = None
    order: str = "F"


def export_to_c(obj: Any, schema_addr: float | int, array_addr: float | int) -> dict[str, Any]:
    """Export a Python object into the (empty) Arrow structs at the given addresses.

    Parameters
    ----------
    obj
        A torch tensor, NumPy array, pyarrow Array/ChunkedArray/Table/RecordBatch, pandas
        DataFrame/Series, or a Python scalar.
    schema_addr, array_addr
        Addresses of writable ``ArrowSchema`` and ``ArrowArray`` structs.

    Returns
    -------
    dict
        ``{"batch": bool, "shape": list | None, "order": "F" | "C"}`` for R's importer.
    """
    exported = to_arrow(obj)
    exported.data._export_to_c(int(array_addr), int(schema_addr))
    return {
        "batch": isinstance(exported.data, pa.RecordBatch),
        "shape": None if exported.shape is None else list(exported.shape),
        "order": exported.order,
    }


def export_to_c_for_r(obj: Any, schema_addr: float | int, array_addr: float | int) -> list[int]:
    """:func:`export_to_c` for R's bridge: ``[batch, c_order, *shape]`` (cheap for reticulate to convert)."""
    info = export_to_c(obj, schema_addr, array_addr)
    return [int(info["batch"]), int(info["order"] == "C"), *(info["shape"] or [])]


def to_arrow(obj: Any) -> ArrowExport:
    """Convert a supported Python object to Arrow data for R, without a copy where possible.

    NumPy and torch data are not copied (numeric, contiguous); non-contiguous arrays are made
    C-contiguous (a copy), float16/bfloat16 widened to float32, CUDA tensors moved to the CPU.

    Raises
    ------
    InputError
        For objects and Arrow types R has no equivalent for (nested types, complex numbers, ...),
        naming the column and its type.
    """
    if isinstance(obj, pa.ChunkedArray):
        obj = obj.combine_chunks()
    if isinstance(obj, pa.Table):
        obj = _table_to_batch(obj)
    if isinstance(obj, pa.Array):
        return ArrowExport(_checked_array(obj, "`obj`"))
    if isinstance(obj, pa.RecordBatch):
        return ArrowExport(_checked_batch(obj))
    pd = _pandas()
    if pd is not None and isinstance(obj, pd.DataFrame):
        return ArrowExport(_checked_batch(pa.RecordBatch.from_pandas(obj, preserve_index=False)))
    if pd is not None and isinstance(obj, pd.Series):
        return ArrowExport(_checked_array(pa.Array.from_pandas(obj), "`obj`"))
    if _is_tensor(obj):
        obj = _tensor_to_numpy(obj)
    if isinstance(obj, (bool, int, float, str, np.generic)):
        obj = np.asarray(obj)
    if isinstance(obj, np.ndarray):
        return _numpy_export(obj)
    raise InputError(
        "obj",
        "a torch tensor, NumPy array, pyarrow Array/Table/RecordBatch or pandas DataFrame/Series",
        obj,
        where=_WHERE,
    )


def _table_to_batch(table: pa.Table) -> pa.RecordBatch:
    batches = table.combine_chunks().to_batches()
    if not batches:
        return pa.RecordBatch.from_pylist([], schema=table.schema)
    return batches[0]


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:  # pandas is optional for the bridge
        return None
    return pd


def _is_tensor(obj: Any) -> bool:
    torch = __import__("sys").modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def _tensor_to_numpy(t: Any) -> np.ndarray:
    import torch

    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    if t.is_complex():
        raise InputError("obj", "a real-valued tensor", t, where=_WHERE)
    return t.resolve_conj().resolve_neg().numpy()


def _numpy_export(a: np.ndarray) -> ArrowExport:
    kind = a.dtype.kind
    if kind == "c":
        raise InputError("obj", "a real-valued array (R's bridge has no complex type)", a, where=_WHERE)
    if kind == "f" and a.dtype.itemsize == 2:
        a = a.astype(np.float32)
    if kind in "OVm":
        raise InputError("obj", "a NumPy array of numbers, booleans, strings or datetime64", a, where=_WHERE)
    if a.ndim <= 1:
        return ArrowExport(_checked_array(pa.array(a.reshape(-1)), "`obj`"))
    order = "F" if a.flags.f_contiguous else "C"
    if not (a.flags.f_contiguous or a.flags.c_contiguous):
        a = np.ascontiguousarray(a)
    flat = a.ravel(order=order)  # a view: the buffer as it is in memory
    return ArrowExport(_checked_array(pa.array(flat), "`obj`"), shape=tuple(a.shape), order=order)


# ---- Arrow types R can hold ------------------------------------------------------------------------

def _supported(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return pa.types.is_integer(t.index_type) and _is_string(t.value_type)
    return (
        pa.types.is_null(t)
        or pa.types.is_boolean(t)
        or pa.types.is_integer(t)
        or pa.types.is_float32(t)
        or pa.types.is_float64(t)
        or _is_string(t)
        or pa.types.is_date(t)
        or pa.types.is_timestamp(t)
    )


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _checked_array(arr: pa.Array, what: str) -> pa.Array:
    if pa.types.is_float16(arr.type):
        arr = arr.cast(pa.float32())
    if not _supported(arr.type):
        raise InputError(
            "obj",
            "Arrow data of types R can hold (numbers, booleans, strings, dictionaries of strings, "
            "dates, timestamps)",
            _Received(f"{what} of Arrow type {arr.type}"),
            where=_WHERE,
        )
    return arr


def _checked_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    names = batch.schema.names
    columns = [_checked_array(col, f"column `{name}`") for name, col in zip(names, batch.columns, strict=True)]
    if any(c is not o for c, o in zip(columns, batch.columns, strict=True)):
        batch = pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
    return batch


class _Received:
    """A received value described by text (for InputError messages)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text
