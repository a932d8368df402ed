"""pydlr.bridge on the Python side: Arrow export/import, zero-copy views, R's dims and image layouts."""

from __future__ import annotations

import ctypes

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from pydlr.bridge import as_numpy, as_tensor, export_to_c, import_from_c, to_arrow
from pydlr.bridge.cabi import ArrowArray, ArrowSchema, release_if_held
from pydlr.bridge.views import r_dims_view
from pydlr.errors import InputError


def _round_trip(obj):
    """Export into fresh C structs, import them back with pyarrow (what R's C side reads)."""
    schema, array = ArrowSchema(), ArrowArray()
    info = export_to_c(obj, ctypes.addressof(schema), ctypes.addressof(array))
    assert schema.release and array.release
    data = import_from_c(ctypes.addressof(schema), ctypes.addressof(array), batch=info["batch"])
    assert not schema.release and not array.release  # moved into pyarrow
    release_if_held(schema, array)
    return info, data


def test_numpy_exports_without_copy_in_memory_order():
    a = np.arange(12.0)
    exported = to_arrow(a)
    assert exported.data.buffers()[1].address == a.ctypes.data
    assert exported.shape is None
    c = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    ec = to_arrow(c)
    assert (ec.shape, ec.order) == ((2, 3, 4), "C")
    assert ec.data.buffers()[1].address == c.ctypes.data
    f = np.asfortranarray(c)
    ef = to_arrow(f)
    assert (ef.shape, ef.order) == ((2, 3, 4), "F")
    assert ef.data.buffers()[1].address == f.ctypes.data
    strided = np.arange(20.0).reshape(4, 5)[:, ::2]  # neither C nor F: one copy, C order
    es = to_arrow(strided)
    assert es.order == "C" and es.shape == (4, 3)
    np.testing.assert_array_equal(np.asarray(es.data).reshape(4, 3), strided)


def test_torch_exports_without_copy_and_widens_half():
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    e = to_arrow(t)
    assert e.data.buffers()[1].address == t.data_ptr()
    assert e.data.type == pa.float32() and e.shape == (2, 3)
    h = to_arrow(torch.ones(3, dtype=torch.float16, requires_grad=False))
    assert h.data.type == pa.float32()
    g = to_arrow(torch.ones(2, requires_grad=True) * 2)  # detached, not refused
    assert g.data.to_pylist() == [2.0, 2.0]


def test_export_import_round_trip_keeps_values_nulls_and_types():
    df = pd.DataFrame({
        "x": [1.5, None, 3.0],
        "g": pd.Categorical(["a", None, "b"]),
        "s": ["\u00e9t\u00e9", None, "\U0001F600"],
        "t": pd.to_datetime(["2020-01-01", None, "2021-01-01"], utc=True),
    })
    info, batch = _round_trip(df)
    assert info["batch"] is True
    assert batch.column(0).null_count == 1
    assert pa.types.is_dictionary(batch.column(1).type)
    assert batch.column(2).to_pylist() == ["\u00e9t\u00e9", None, "\U0001F600"]
    assert pa.types.is_timestamp(batch.column(3).type) and batch.column(3).type.tz == "UTC"
    info, arr = _round_trip(np.arange(6.0).reshape(2, 3))
    assert info == {"batch": False, "shape": [2, 3], "order": "C"}
    assert arr.to_pylist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    info, tbl = _round_trip(pa.chunked_array([[1, 2], [3]]))
    assert tbl.to_pylist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("obj", "pattern"),
    [
        ([1, 2, 3], "torch tensor, NumPy array"),
        (np.array([1 + 2j]), "real-valued"),
        (np.array([{"a": 1}], dtype=object), "numbers, booleans, strings"),
        (pa.array([[1, 2], [3]]), r"`obj` of Arrow type list<item: int64>"),
        (pa.table({"ok": [1], "nested": [{"a": 1}]}), r"column `nested` of Arrow type struct"),
        (pa.array([b"x"]), "Arrow type binary"),
        (torch.ones(2, dtype=torch.complex64), "real-valued"),
    ],
)
def test_unsupported_objects_raise_input_error_naming_column_and_type(obj, pattern):
    with pytest.raises(InputError, match=pattern):
        to_arrow(obj)


def test_as_numpy_views_arrow_memory_read_only():
    arr = pa.array(np.arange(10.0))
    v = as_numpy(arr)
    assert v.ctypes.data == arr.buffers()[1].address
    assert not v.flags.writeable
    sliced = as_numpy(arr.slice(3, 4))
    np.testing.assert_array_equal(sliced, [3.0, 4.0, 5.0, 6.0])
    assert sliced.ctypes.data == arr.buffers()[1].address + 3 * 8
    np.testing.assert_array_equal(as_numpy(pa.array([1, None, 3])), [1.0, np.nan, 3.0])
    np.testing.assert_array_equal(as_numpy(pa.array([True, False])), [True, False])
    with pytest.raises(InputError, match="numeric or boolean Arrow data"):
        as_numpy(pa.array(["a"]))


def test_r_dims_view_is_column_major_without_copy():
    flat = np.arange(24.0)  # R's memory of array(0:23, c(2, 3, 4))
    v = r_dims_view(flat, (2, 3, 4))
    assert v.shape == (2, 3, 4) and np.shares_memory(v, flat)
    assert v.flags.f_contiguous
    for i, j, k in [(0, 0, 0), (1, 2, 3), (1, 0, 2), (0, 2, 1)]:
        assert v[i, j, k] == i + 2 * j + 6 * k  # R: x[i + 1, j + 1, k + 1]
    with pytest.raises(InputError, match="dims holding 24 elements"):
        r_dims_view(flat, (5, 5))


def test_as_tensor_image_layouts_give_nhwc_views():
    n, h, w, c = 2, 3, 4, 2
    flat = np.arange(n * h * w * c, dtype=np.float64)
    nhwc = as_tensor(flat, shape=(n, h, w, c))
    assert nhwc.data_ptr() == flat.ctypes.data
    assert nhwc.stride() == (1, n, n * h, n * h * w)
    ref = r_dims_view(flat, (n, h, w, c))
    hwcn = np.asfortranarray(ref.transpose(1, 2, 3, 0)).ravel(order="F")  # R's memory of an h x w x c x n array
    t2 = as_tensor(hwcn, shape=(h, w, c, n), layout="hwcn")
    assert t2.shape == (n, h, w, c) and torch.equal(t2, nhwc)
    nchw = np.asfortranarray(ref.transpose(0, 3, 1, 2)).ravel(order="F")
    assert torch.equal(as_tensor(nchw, shape=(n, c, h, w), layout="nchw"), nhwc)
    cont = as_tensor(flat, shape=(n, h, w, c), contiguous=True, dtype="float32")
    assert cont.is_contiguous() and cont.dtype == torch.float32
    assert cont.permute(0, 3, 1, 2).is_contiguous(memory_format=torch.channels_last)
    assert as_tensor(np.array([1, 0, 1], dtype=np.int32), logical=True).dtype == torch.bool
    with pytest.raises(InputError, match="layout"):
        as_tensor(flat, shape=(n, h, w, c), layout="chwn")
    with pytest.raises(InputError, match="dtype"):
        as_tensor(flat, dtype="float128x")
