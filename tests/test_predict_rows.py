"""predict and evaluate convert a NumPy input whole (checked in the same pass) or, past
pydlr.data.prepare.WHOLE_CONVERSION_BYTES, batch by batch (ArrayRows): either way the results must equal
those of the float32 tensor path for every layout and dtype R and Python hand in, and bad values must be
refused before any batch runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_train_engine import quadrant_data, small_model

from pydlr.data import prepare
from pydlr.data.prepare import ArrayRows, prepare_x_rows
from pydlr.errors import InputError


@pytest.fixture(params=["whole", "batch by batch"])
def conversion(request, monkeypatch):
    """Both ways predict and evaluate convert an array: whole (small arrays), batch by batch (large ones)."""
    if request.param == "batch by batch":
        monkeypatch.setattr(prepare, "WHOLE_CONVERSION_BYTES", 0)
    return request.param


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


def test_predict_and_evaluate_equal_the_tensor_path_for_every_layout(conversion):
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


@pytest.mark.filterwarnings("ignore::pydlr.errors.InputScaleWarning")  # 0-255 pixels, trained on [0, 1]
def test_integer_images_convert_exactly(conversion):
    m, x, _ = trained()
    pixels = (x * 255).round().astype(np.uint8)
    assert np.array_equal(m.predict(pixels, batch_size=50),
                          m.predict(torch.from_numpy(pixels.astype(np.float32)), batch_size=50))


def test_small_arrays_convert_whole_and_large_ones_by_batch(monkeypatch):
    m, x, _ = trained()
    xf = np.asfortranarray(x.astype(np.float64)[..., 0])
    whole = prepare_x_rows(m, xf, "predict")  # 130 x 8 x 8 float32: far below the budget
    assert isinstance(whole, torch.Tensor) and whole.dtype == torch.float32 and whole.is_contiguous()
    assert tuple(whole.shape) == (130, 8, 8, 1) and torch.equal(whole, torch.from_numpy(x))
    monkeypatch.setattr(prepare, "WHOLE_CONVERSION_BYTES", xf.size * 4 - 1)  # one byte short: by batch
    rows = prepare_x_rows(m, xf, "predict")
    assert isinstance(rows, ArrayRows) and rows.arr is xf and tuple(rows.shape) == (130, 8, 8, 1)
    b = rows.batch(120, 200)
    assert b.dtype == torch.float32 and b.is_contiguous() and tuple(b.shape) == (10, 8, 8, 1)
    assert torch.equal(b, torch.from_numpy(x[120:]))


@pytest.mark.parametrize("bad, count", [(np.nan, 2), (np.inf, 2), (-np.inf, 2), (1e39, 2)])
def test_non_finite_values_are_refused_before_any_batch(bad, count, conversion):
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


def _seed_like(seed: int = 0):
    """Conv layers that take the Winograd kernels at predict's batch sizes (3x3, 16-64 channels)."""
    from pydlr import Sequential
    from pydlr.layers import Conv2D, Dense, Flatten, Input
    from pydlr.utils import set_random_seed

    set_random_seed(seed)
    m = Sequential([Input((12, 12, 16)), Conv2D(32, (3, 3), activation="relu"), Conv2D(32, (3, 3)), Flatten(),
                    Dense(3)])
    m.compile("adam", "mse")
    return m


def _fresh_copy(m):
    """A model with m's weights in new tensors: nothing cached for them."""
    twin = _seed_like(1)
    twin.load_state_dict({k: v.clone() for k, v in m.state_dict().items()})
    return twin


@pytest.mark.parametrize("update", ["fit (pydlr's Adam)", "torch optimizer", "load_state_dict", "in-place"])
def test_cached_winograd_transforms_follow_weight_updates(update):
    from pydlr import _C

    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 12, 12, 16)).astype(np.float32)
    y = rng.standard_normal((256, 3)).astype(np.float32)
    m = _seed_like()
    conv = m.layers[0]
    for layer, (c, hw) in zip(m.layers[:2], [(16, 12), (32, 10)], strict=True):  # both layers run Winograd
        xb = torch.zeros(128, c, hw, hw).contiguous(memory_format=torch.channels_last)
        assert _C.conv2d_cpu_path(xb, layer.weight, [1, 1], [0, 0], [1, 1], 1).startswith("winograd")
    before = m.predict(x, batch_size=128)
    assert np.array_equal(m.predict(x, batch_size=128), before)  # second call: transforms from the cache
    if update == "fit (pydlr's Adam)":
        m.fit(x, y, batch_size=64, epochs=1, verbose=0, seed=0)
    elif update == "torch optimizer":
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        m(torch.from_numpy(x[:64])).sum().backward()
        opt.step()
    elif update == "load_state_dict":
        m.load_state_dict({k: v * 1.5 for k, v in m.state_dict().items()})
    else:
        with torch.no_grad():
            conv.weight.mul_(-1)
    after = m.predict(x, batch_size=128)
    assert not np.array_equal(after, before)
    assert np.array_equal(after, _fresh_copy(m).predict(x, batch_size=128))


def test_whole_array_conversion_is_c_contiguous_float32_for_every_layout():
    """fit()'s whole-array path (as_x_tensor) converts R's column-major doubles in one pass: the same values
    as the C-order float32 array, C-contiguous, and a copy that leaves R's read-only memory untouched."""
    from pydlr.data.arrays import as_x_tensor

    _, x, _ = trained()
    for name, arr in layouts(x).items():
        t = as_x_tensor(arr)
        assert t.dtype == torch.float32 and t.is_contiguous(), name
        assert np.array_equal(t.numpy(), np.asarray(arr, dtype=np.float32)), name
