"""Arrow tables (pyarrow Table / RecordBatch, e.g. from the R bridge) to training arrays.

Two layouts are understood: one numeric column per feature (pixels ``p0 .. p783`` and a ``label``
column, as CSV-born data sets come), or one list / fixed-size-list column holding each sample's
values. ``image_shape`` reshapes the features per sample (channels-last), e.g. (28, 28, 1).
Numeric columns are read through NumPy without copying where Arrow's layout allows it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pydlr.errors import InputError

__all__ = ["arrow_to_arrays"]


def _column_numpy(col, name: str, where: str) -> np.ndarray:
    import pyarrow as pa

    if col.null_count:
        raise InputError(name, "a column without nulls (NA)", f"{col.null_count} nulls", where=where)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) or \
            pa.types.is_large_list(col.type):
        flat = col.flatten().to_numpy(zero_copy_only=False)
        n = len(col)
        if n == 0 or flat.size % n:
            raise InputError(name, "lists of equal length", col.type, where=where)
        return flat.reshape(n, -1)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
            or pa.types.is_boolean(col.type) or pa.types.is_dictionary(col.type)):
        raise InputError(name, "a numeric column", str(col.type), where=where)
    if pa.types.is_dictionary(col.type):  # R factors: their integer codes
        return col.indices.to_numpy(zero_copy_only=False)
    return col.to_numpy(zero_copy_only=False)


def arrow_to_arrays(table, label: str | None = "label", features: Sequence[str] | None = None,
                    image_shape: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(x, y)`` from an Arrow table: x float32 ``(n, *image_shape)`` or ``(n, features)``, y the
    ``label`` column (None when ``label`` is None)."""
    import pyarrow as pa

    where = "arrow_to_arrays"
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if not isinstance(table, pa.Table):
        raise InputError("table", "a pyarrow Table or RecordBatch", table, where=where)
    names = list(table.column_names)
    if label is not None and label not in names:
        raise InputError("label", f"one of the columns {names[:10]}", label, where=where)
    features = list(features) if features is not None else [n for n in names if n != label]
    missing = [f for f in features if f not in names]
    if missing or not features:
        raise InputError("features", "existing feature columns", missing or features, where=where)
    parts = [_column_numpy(table.column(f), f, where) for f in features]
    x = np.concatenate([p.reshape(len(p), -1) for p in parts], axis=1).astype(np.float32)
    if image_shape is not None:
        shape = tuple(int(v) for v in image_shape)
        if int(np.prod(shape)) != x.shape[1]:
            raise InputError("image_shape", f"a shape with {x.shape[1]} values per sample", shape,
                             where=where)
        x = x.reshape((x.shape[0],) + shape)
    y = _column_numpy(table.column(label), label, where) if label is not None else None
    return x, y
