"""predict and evaluate convert NumPy inputs batch by batch (pydlr.data.prepare.ArrayRows): the results
must equal those of the float32 tensor path for every layout and dtype R and Python hand in, and bad
values must be refused before any batch runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_train_engine import quadrant_data, small_model

from pydlr.data.prepare import ArrayRows, prepare_x_rows
from pydlr.errors import InputError


def trained():
    x, y = quadrant_data(130)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=0)
    return m, x, y


def layouts(x: np.ndarray) -> dict[str, np.ndarray]:
    x64 = x.astype(np.float64)
    readonly = np.asfortranarray(x64)
    readonly.flags.writeable = False  # what R's bridge hands over: a read-only view of R's memory
    f32_readonly = x.copy()
    f32_readonly.flags.writeable = False
    return {"float64 C": x64, "float64 F (R)": np.asfortranarray(x64), "read-only F": readonly,
            "float32 C": x, "float32 read-only": f32_readonly, "float32 F": np.asfortranarray(x),
            "strided": np.stack([x64, 0 * x64], axis=-1)[..., 0], "(N, H, W)": x64[..., 0],
            "(N, H, W) F": np.asfortranarray(x64[..., 0])}


def test_predict_and_evaluate_equal_the_tensor_path_for_every_layout():
    m, x, y = trained()
    ref = m.predict(torch.from_numpy(x), batch_size=48)
    ref_eval = m.evaluate(torch.from_numpy(x), y, batch_size=48, return_dict=True)
    for name, arr in layouts(x).items():
        out = m.predict(arr, batch_size=48)
        assert out.dtype == np.float32 and out.shape == (130, 4), name
        assert np.array_equal(out, ref), name
        assert m.evaluate(arr, y, batch_size=48, return_dict=True) == ref_eval, name
    weights = np.linspace(0.5, 2, 130)
    assert (m.evaluate(np.asfortranarray(x.astype(np.float64)), y, sample_weight=weights, batch_size=48)
            == pytest.approx(m.evaluate(torch.from_numpy(x), y, sample_weight=weights, batch_size=48)))


def test_integer_images_convert_per_batch():
    m, x, _ = trained()
    pixels = (x * 255).round().astype(np.uint8)
    assert np.array_equal(m.predict(pixels, batch_size=50),
                          m.predict(torch.from_numpy(pixels.astype(np.float32)), batch_size=50))


def test_rows_view_the_array_without_a_copy():
    m, x, _ = trained()
    xf = np.asfortranarray(x.astype(np.float64)[..., 0])
    rows = prepare_x_rows(m, xf, "predict")
    assert isinstance(rows, ArrayRows) and rows.arr is xf and tuple(rows.shape) == (130, 8, 8, 1)
    b = rows.batch(120, 200)
    assert b.dtype == torch.float32 and b.is_contiguous() and tuple(b.shape) == (10, 8, 8, 1)
    assert torch.equal(b, torch.from_numpy(x[120:]))


@pytest.mark.parametrize("bad, count", [(np.nan, 2), (np.inf, 2), (-np.inf, 2), (1e39, 2)])
def test_non_finite_values_are_refused_before_any_batch(bad, count):
    m, x, y = trained()
    xf = np.asfortranarray(x.astype(np.float64))
    xf[5, 1, 2, 0] = bad
    xf[129, 7, 7, 0] = bad
    calls = []
    m.register_forward_hook(lambda *a: calls.append(1))
    with pytest.raises(InputError, match=f"{count} non-finite values"):
        m.predict(xf, batch_size=16)
    with pytest.raises(InputError, match=f"{count} non-finite values"):
        m.evaluate(xf, y, batch_size=16)
    assert not calls  # refused before the first batch


def test_wrong_shapes_and_empty_arrays_are_refused():
    m, x, y = trained()
    with pytest.raises(InputError, match=r"\(None, 8, 8, 1\).*\(3, 7, 8, 1\)"):
        m.predict(np.zeros((3, 7, 8, 1)))
    with pytest.raises(InputError, match="non-empty"):
        m.predict(np.zeros((0, 8, 8, 1)))
    with pytest.raises(InputError, match="y"):
        m.evaluate(x.astype(np.float64), y[:-1])
