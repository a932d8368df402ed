"""pydlr::rows_to_float32 (native/convert_cpu.cpp) and the one helper that uses it (rows_as_float32): every
memory order, dtype and row range gives exactly NumPy's float32 cast, bit for bit, including the tails its
8 x 8 register transposes and 256-row blocks leave, the streamed 16 x 8 transposes of outputs past 16 MiB, NaN and
values beyond float32's range."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pydlr import ops
from pydlr.data.arrays import as_x_tensor, rows_as_float32

DTYPES = [np.float64, np.float32, np.int64, np.int32, np.int16, np.uint8]


def values(shape: tuple[int, ...], dtype) -> np.ndarray:
    rng = np.random.default_rng(sum(shape))
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal(shape) * 1e3).astype(dtype)
    return rng.integers(0, 120, shape).astype(dtype)


def orders(a: np.ndarray) -> dict[str, np.ndarray]:
    """The layouts users hand in: R's (column-major), row-major, a row-strided slice, axes permuted."""
    out = {"F": np.asfortranarray(a), "C": np.ascontiguousarray(a), "every other row": np.concatenate([a, a])[::2]}
    if a.ndim >= 3:
        out["axes 1, 2 swapped"] = np.ascontiguousarray(np.swapaxes(a, 1, 2)).swapaxes(1, 2)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (9, 8), (300, 17), (513, 28, 28), (40, 5, 6, 3), (600,),
                                   (2100, 9), (4099, 3, 5)])
def test_native_rows_equal_numpys_cast(dtype, shape):
    a = values(shape, dtype)
    for name, arr in orders(a).items():
        src = torch.from_numpy(arr)
        n = arr.shape[0]
        for start, stop in [(0, n), (n // 3, n - n // 5), (n - 1, n), (0, 0)]:
            got = ops.rows_to_float32(src, start, stop)
            want = arr[start:stop].astype(np.float32)
            assert got.dtype == torch.float32 and got.is_contiguous(), (name, start, stop)
            assert got.shape == want.shape, (name, start, stop)
            assert np.array_equal(got.numpy(), want), (name, dtype, shape, start, stop)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32])
@pytest.mark.parametrize("shape", [(5461, 28, 28), (5465, 784), (5400, 800)])
def test_outputs_past_16_mib_stream_the_same_values(dtype, shape):
    # 5461 x 784 floats is just over 16 MiB (the streamed transposes on a CPU with AVX-512, whole 16-value lines);
    # 5465 rows leave a tail of 1 row past the last 8; 800 values are 50 lines a row. Row ranges that start inside
    # a run and end before the last row.
    a = np.asfortranarray(values(shape, dtype))
    n = a.shape[0]
    for start, stop in [(0, n), (3, n - 2)]:
        got = ops.rows_to_float32(torch.from_numpy(a), start, stop)
        assert np.array_equal(got.numpy(), a[start:stop].astype(np.float32)), (start, stop)


@pytest.mark.parametrize("shape", [(5461, 28, 28), (300, 17), (513, 28, 28), (9, 8)])
@pytest.mark.parametrize("order", ["F", "C", "every other row", "axes 1, 2 swapped"])
def test_the_checked_pass_finds_every_non_finite_value(shape, order):
    # rows_to_float32_checked: the values of rows_to_float32 and whether all are finite in float32, from every
    # kernel (streamed and cached register transposes and their scalar tails, the streamed and plain casts of
    # row-major rows, the strided gather): one bad value at a time, first, in the middle and last.
    a = values(shape, np.float64)
    if order not in orders(a):
        pytest.skip(f"no {order!r} order for {len(shape)}-d arrays")
    good = orders(a)[order]
    got, finite = ops.float32_rows_checked(torch.from_numpy(good))
    assert finite and np.array_equal(got.numpy(), good.astype(np.float32))
    n = a.shape[0]
    for where in [(0,) + (0,) * (a.ndim - 1), (n // 2,) + tuple(d // 2 for d in shape[1:]), tuple(d - 1 for d in shape)]:
        for bad in (np.nan, np.inf, -np.inf, 1e300):  # 1e300 is infinite in float32
            b = a.copy()
            b[where] = bad
            arr = orders(b)[order]  # "every other row" keeps only some of b's rows: maybe not the bad one
            got, finite = ops.float32_rows_checked(torch.from_numpy(arr))
            with np.errstate(over="ignore"):
                want = arr.astype(np.float32)
            assert finite == bool(np.isfinite(want).all()), (where, bad)
            assert np.array_equal(got.numpy(), want, equal_nan=True)
    ints = orders(values(shape, np.int32))[order]
    assert ops.float32_rows_checked(torch.from_numpy(ints))[1]


def test_as_x_tensor_refuses_non_finite_values_found_in_its_conversion():
    from pydlr.data.arrays import as_x_tensor
    from pydlr.errors import InputError

    a = values((5461, 28, 28), np.float64)
    for arr in (np.asfortranarray(a), a):
        arr = arr.copy(order="K")
        arr[100, 3, 4] = np.nan
        arr[5000, 0, 0] = 1e300
        with pytest.raises(InputError, match="2 non-finite"):
            as_x_tensor(arr)
    assert torch.equal(as_x_tensor(np.asfortranarray(a)), torch.from_numpy(a.astype(np.float32)))


def test_special_values_cast_as_numpy_casts_them():
    a = np.asfortranarray(values((70, 9, 10), np.float64))
    a[3, 1, 2], a[64, 8, 9], a[5, 0, 0], a[6, 0, 1] = np.nan, np.inf, 1e300, -1e-320
    with np.errstate(over="ignore"):
        want = a.astype(np.float32)
    got = ops.rows_to_float32(torch.from_numpy(a), 0, 70).numpy()
    assert np.array_equal(got, want, equal_nan=True)
    assert np.isinf(got[5, 0, 0]) and got[6, 0, 1] == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_order_converts_as_numpys_cast(dtype):
    # rows_as_float32 picks torch's copy for row-major arrays, the native pass for the others: both give
    # NumPy's cast bit for bit, read-only (R's memory) or not
    a = values((300, 7, 5), dtype)
    for name, arr in orders(a).items():
        for writeable in (True, False):  # the layout itself, then the same memory read-only
            arr.flags.writeable = writeable
            for start, stop in [(0, 300), (17, 273), (299, 400)]:
                got = rows_as_float32(arr, start, stop)
                assert got.dtype == torch.float32 and got.is_contiguous(), name
                assert np.array_equal(got.numpy(), arr[start:stop].astype(np.float32)), (name, writeable, start)


def test_special_values_in_row_major_arrays_cast_as_numpy_casts_them():
    a = values((70, 9, 10), np.float64)
    a[3, 1, 2], a[64, 8, 9], a[5, 0, 0], a[6, 0, 1] = np.nan, np.inf, 1e300, -1e-320
    with np.errstate(over="ignore"):
        want = a.astype(np.float32)
    got = ops.float32_rows(torch.from_numpy(a)).numpy()
    assert np.array_equal(got, want, equal_nan=True)
    assert np.signbit(got[6, 0, 1]) == np.signbit(want[6, 0, 1])


def test_bad_arguments_raise_before_any_work():
    src = torch.zeros(10, 3, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="rows 4:11 are not within the 10 rows"):
        ops.rows_to_float32(src, 4, 11)
    with pytest.raises(RuntimeError, match="rows 5:4"):
        ops.rows_to_float32(src, 5, 4)
    with pytest.raises(RuntimeError, match="0-d"):
        ops.rows_to_float32(torch.tensor(1.0), 0, 0)
    with pytest.raises(RuntimeError, match="must be float64, float32, int64, int32, int16 or uint8, got ComplexFloat"):
        ops.rows_to_float32(torch.zeros(4, 2, dtype=torch.complex64), 0, 4)


def test_r_arrays_convert_through_the_native_pass_without_a_copy_of_their_own():
    r_like = np.asfortranarray(values((257, 28, 28), np.float64))
    r_like.flags.writeable = False  # what the bridge hands over: a read-only view of R's memory
    out = rows_as_float32(r_like, 1, 257)
    assert np.array_equal(out.numpy(), r_like[1:].astype(np.float32))
    assert out.numpy().flags.writeable and out.is_contiguous()


def test_row_major_float32_is_shared_and_everything_else_converted():
    x = values((50, 4), np.float32)
    assert rows_as_float32(x).data_ptr() == x.ctypes.data  # shared: nothing to convert
    assert as_x_tensor(x).data_ptr() == x.ctypes.data
    flipped = x[::-1]  # negative strides: NumPy's cast
    assert np.array_equal(rows_as_float32(flipped).numpy(), flipped)
    r_ints = np.asfortranarray(values((30, 6, 6), np.int32))  # R's integer arrays
    t = as_x_tensor(r_ints)
    assert t.dtype == torch.float32 and np.array_equal(t.numpy(), r_ints.astype(np.float32))
