"""The functions R's bridge (r-package/R/bridge.R) calls: R's exported structs to pyarrow, NumPy, torch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from pydlr.bridge.arrow import import_from_c
from pydlr.bridge.views import as_numpy, as_tensor


def arrow_from_r(schema_addr: float, array_addr: float, batch: bool = False) -> pa.Array | pa.RecordBatch:
    """R's exported vector (pyarrow Array) or data.frame/matrix (RecordBatch), on R's memory."""
    return import_from_c(schema_addr, array_addr, batch=batch)


def numpy_from_r(schema_addr: float, array_addr: float, shape: Sequence[int] | None = None,
                 batch: bool = False, logical: bool = False) -> Any:
    """R's numeric vector/matrix/array as a read-only NumPy view of R's memory, with R's dims."""
    arr = as_numpy(import_from_c(schema_addr, array_addr, batch=batch), shape)
    return arr != 0 if logical else arr


def tensor_from_r(schema_addr: float, array_addr: float, shape: Sequence[int] | None = None,
                  batch: bool = False, layout: str | None = None, dtype: str | None = None,
                  contiguous: bool = False, logical: bool = False) -> Any:
    """R's numeric data as a torch tensor viewing R's memory (see :func:`pydlr.bridge.as_tensor`)."""
    data = import_from_c(schema_addr, array_addr, batch=batch)
    return as_tensor(data, shape=shape, layout=layout, dtype=dtype, contiguous=contiguous, logical=logical)


def arrow_to_tensor(data: Any, dtype: str | None = None) -> Any:
    """A pyarrow Array/Table (e.g. from the R arrow package) as a torch tensor."""
    return as_tensor(data, dtype=dtype)
