"""Property-based tests (hypothesis): the native operators against torch on random geometry, dtypes and
layouts; the Arrow bridge's round trips on random tables (Python alone, and through R's C code); KMeans
against scikit-learn on random blobs.

Example counts are bounded so the file runs in well under a minute on 2 cores. The "ci" profile (the
default, see conftest.py) is derandomized: the same examples on every run; HYPOTHESIS_PROFILE=dev draws
new ones each run.
"""

from __future__ import annotations

import ctypes
import math
import struct

import numpy as np
import pyarrow as pa
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pydlr import ops
from pydlr.bridge import export_to_c, import_from_c
from pydlr.bridge.cabi import ArrowArray, ArrowSchema, release_if_held


def bounded(examples: int) -> settings:
    """A test's example count; no per-example deadline (a shared machine's timings say nothing)."""
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

# ---- native operators ------------------------------------------------------------------------------------

TOL = {torch.float32: 2e-5, torch.float64: 1e-12}


@st.composite
def conv_geometry(draw):
    groups = draw(st.integers(1, 3))
    depthwise = draw(st.booleans())
    cin_g = 1 if depthwise else draw(st.integers(1, 4))
    cout_g = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    # the dilated kernel must fit the padded input (torch refuses it otherwise, and so does pydlr)
    assume(dilation[0] * (kh - 1) + 1 <= h + 2 * padding[0] and dilation[1] * (kw - 1) + 1 <= w + 2 * padding[1])
    n = draw(st.integers(1, 3))
    return dict(n=n, cin=cin_g * groups, cout=cout_g * groups, h=h, w=w, kh=kh, kw=kw, stride=stride,
                padding=padding, dilation=dilation, groups=groups)


def _conv_inputs(g, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(g["n"], g["cin"], g["h"], g["w"], generator=gen, dtype=dtype)
    w = torch.randn(g["cout"], g["cin"] // g["groups"], g["kh"], g["kw"], generator=gen, dtype=dtype)
    b = torch.randn(g["cout"], generator=gen, dtype=dtype)
    return x, w, b


def _close(got, want, dtype):
    tol = TOL[dtype]
    torch.testing.assert_close(got, want, rtol=tol, atol=tol * max(1.0, want.abs().max().item()))


@bounded(40)
@given(g=conv_geometry(), dtype=st.sampled_from([torch.float32, torch.float64]),
       layout=st.sampled_from(["contiguous", "channels_last"]), bias=st.booleans(),
       onednn=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_conv2d_matches_torch_values_and_gradients(g, dtype, layout, bias, onednn, seed):
    x, w, b = _conv_inputs(g, dtype, seed)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    b = b if bias else None
    geometry = (g["stride"], g["padding"], g["dilation"], g["groups"])
    before = ops.onednn_route()
    ops.set_onednn_route(onednn)
    try:
        xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
        bs = b.clone().requires_grad_() if bias else None
        y = ops.conv2d(xs, ws, bs, *geometry)
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        br = b.clone().requires_grad_() if bias else None
        ref = F.conv2d(xr, wr, br, *geometry)
        assert y.shape == ref.shape and y.dtype == dtype
        _close(y, ref.detach(), dtype)
        gy = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=dtype)
        y.backward(gy)
        ref.backward(gy)
        _close(xs.grad, xr.grad, dtype)
        _close(ws.grad, wr.grad, dtype)
        if bias:
            _close(bs.grad, br.grad, dtype)
    finally:
        ops.set_onednn_route(before)


@bounded(25)
@given(g=conv_geometry(), act=st.sampled_from(["relu", "relu6"]),
       layout=st.sampled_from(["contiguous", "channels_last"]), seed=st.integers(0, 2**31 - 1))
def test_conv2d_fused_activation_matches_torch(g, act, layout, seed):
    x, w, b = _conv_inputs(g, torch.float64, seed)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    geometry = (g["stride"], g["padding"], g["dilation"], g["groups"])
    y = ops.conv2d(x, w, b, *geometry, activation=act)
    z = F.conv2d(x, w, b, *geometry)
    _close(y, torch.relu(z) if act == "relu" else F.relu6(z), torch.float64)


@bounded(10)
@given(g=conv_geometry(), seed=st.integers(0, 2**31 - 1))
def test_conv2d_refuses_bfloat16_with_the_dtype_named(g, seed):
    x, w, b = _conv_inputs(g, torch.float32, seed)
    with pytest.raises(RuntimeError, match="float32 or float64; got BFloat16"):
        ops.conv2d(x.bfloat16(), w.bfloat16(), b.bfloat16(), g["stride"], g["padding"], g["dilation"], g["groups"])


@bounded(30)
@given(n=st.integers(1, 3), c=st.integers(1, 5), h=st.integers(1, 11), w=st.integers(1, 11),
       k=st.tuples(st.integers(1, 4), st.integers(1, 4)), s=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       dtype=st.sampled_from([torch.float32, torch.float64]),
       layout=st.sampled_from(["contiguous", "channels_last"]), seed=st.integers(0, 2**31 - 1))
def test_max_pool2d_matches_torch_exactly(n, c, h, w, k, s, dtype, layout, seed):
    assume(k[0] <= h and k[1] <= w)
    x = torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    xs, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, ref = ops.max_pool2d(xs, k, s), F.max_pool2d(xr, k, s)
    assert torch.equal(y, ref)  # a maximum is one of the inputs: exact
    gy = torch.randn(ref.shape, dtype=dtype)
    y.backward(gy)
    ref.backward(gy)
    assert torch.equal(xs.grad, xr.grad)  # no ties in random floats: every gradient lands where torch's does


# ---- the Arrow bridge --------------------------------------------------------------------------------------

INT32 = st.integers(-(2**31) + 1, 2**31 - 1)  # -2**31 is R's NA_integer_
INT32_EDGES = st.sampled_from([-(2**31) + 1, -1, 0, 1, 2**31 - 1])
FLOATS = st.one_of(st.floats(allow_nan=False), st.just(math.nan), st.sampled_from([0.0, -0.0, 5e-324, -math.inf]))
# R strings cannot hold NUL; surrogates are not UTF-8.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
DATES = st.integers(-(2**31) + 1, 2**31 - 1)


def _nullable(values):
    return st.one_of(st.none(), values)


@st.composite
def arrow_columns(draw, n):
    kind = draw(st.sampled_from(["double", "int32", "bool", "string", "dictionary", "date32"]))
    if kind == "double":
        return pa.array(draw(st.lists(_nullable(FLOATS), min_size=n, max_size=n)), pa.float64())
    if kind == "int32":
        return pa.array(draw(st.lists(_nullable(st.one_of(INT32, INT32_EDGES)), min_size=n, max_size=n)), pa.int32())
    if kind == "bool":
        return pa.array(draw(st.lists(_nullable(st.booleans()), min_size=n, max_size=n)), pa.bool_())
    if kind == "string":
        return pa.array(draw(st.lists(_nullable(TEXT), min_size=n, max_size=n)), pa.string())
    if kind == "date32":
        return pa.array(draw(st.lists(_nullable(DATES), min_size=n, max_size=n)), pa.int32()).cast(pa.date32())
    levels = draw(st.lists(TEXT, min_size=1, max_size=5, unique=True))
    codes = draw(st.lists(_nullable(st.integers(0, len(levels) - 1)), min_size=n, max_size=n))
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(levels, pa.string()),
                                          ordered=draw(st.booleans()))


@st.composite
def record_batches(draw, max_rows=8):
    n = draw(st.integers(0, max_rows))
    k = draw(st.integers(1, 4))
    cols = [draw(arrow_columns(n)) for _ in range(k)]
    return pa.record_batch(cols, names=[f"c{j}" for j in range(k)])


def _bits(v):
    """A value with floats as their bit patterns (NaN == NaN, 0.0 != -0.0)."""
    return struct.pack("<d", v) if isinstance(v, float) else v


def _values(col: pa.Array) -> list:
    """The column's values, dates as day counts (Python's date stops at year 1 and 9999; Arrow's does not)."""
    if pa.types.is_date32(col.type):
        col = col.cast(pa.int32())
    return [_bits(v) for v in col.to_pylist()]


def _same(a: pa.RecordBatch, b: pa.RecordBatch) -> bool:
    if a.schema != b.schema or a.num_rows != b.num_rows:
        return False
    return all(_values(x) == _values(y) for x, y in zip(a.columns, b.columns, strict=True))


@bounded(40)
@given(batch=record_batches())
def test_bridge_round_trip_in_python_is_bit_exact(batch):
    schema, array = ArrowSchema(), ArrowArray()
    export_to_c(batch, ctypes.addressof(schema), ctypes.addressof(array))
    back = import_from_c(ctypes.addressof(schema), ctypes.addressof(array), batch=True)
    release_if_held(schema, array)
    assert _same(batch, back)


@pytest.fixture(scope="module")
def pr():
    import pydlr.r

    pydlr.r.robjects()  # starts R (inside this process) and loads the R package pydlr
    return pydlr.r


@bounded(25)
@given(batch=record_batches())
def test_bridge_round_trip_through_r_is_bit_exact(pr, batch):
    """Python -> R's C importer -> an R data.frame -> R's C exporter -> Python: the same table, bit for bit
    (an R factor's dictionary comes back with int32 indices, as it left)."""
    rdf = pr.to_r(batch)
    back = pr.from_r(rdf)
    assert _same(batch, back)


@pytest.mark.parametrize("values", [[2**31 - 1, -(2**31) + 1, None], [-(2**31), 5]])
def test_int32_extremes_through_r(pr, values):
    """2^31 - 1 stays an integer; -2^31, R's NA_integer_ bit pattern, makes the column double, exactly."""
    back = pr.from_r(pr.to_r(pa.record_batch([pa.array(values, pa.int32())], names=["i"])))
    want = pa.int32() if -(2**31) not in values else pa.float64()
    assert back.schema.field(0).type == want
    assert back.column(0).to_pylist() == values


# ---- KMeans against scikit-learn -----------------------------------------------------------------------

@bounded(15)
@given(n=st.integers(20, 300), d=st.integers(1, 6), k=st.integers(1, 6), spread=st.floats(0.2, 3.0),
       seed=st.integers(0, 2**31 - 1))
def test_kmeans_matches_scikit_learn_from_the_same_centers(n, d, k, spread, seed):
    from sklearn.cluster import KMeans as SkKMeans
    from sklearn.datasets import make_blobs

    from pydlr.cluster import KMeans

    assume(k <= n)
    x, _ = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=spread, random_state=seed % 2**31)
    rng = np.random.default_rng(seed)
    init = x[rng.choice(n, size=k, replace=False)]
    ours = KMeans(n_clusters=k, init=init, n_init=1, max_iter=300, tol=1e-6).fit(x)
    ref = SkKMeans(n_clusters=k, init=init, n_init=1, max_iter=300, tol=1e-6, algorithm="lloyd").fit(x)
    # same data, same start, same algorithm: the same local optimum, up to rounding (pydlr computes in
    # float32, scikit-learn in the data's float64)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-4, abs=1e-6)
    assert ours.cluster_centers_.shape == (k, d)
    scale = max(1.0, float(np.abs(ref.cluster_centers_).max()))
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-4, atol=1e-4 * scale)
    assert len(np.unique(ours.labels_)) <= k


# ---- the native PNG decoder (pydlr::decode_png_batch) ------------------------------------------------------

needs_libpng = pytest.mark.skipif(not ops.png_decoder_available(), reason="built without libpng")
PNG_CHANNELS = {1: "L", 3: "RGB", 4: "RGBA"}


def _png_bytes(arr: np.ndarray, mode: str, interlace: bool = False) -> bytes:
    """A PNG of ``arr`` written by Pillow, or (``interlace``) an Adam7-interlaced one written here: Pillow
    writes no interlaced PNG."""
    import io

    from PIL import Image

    if not interlace:
        buf = io.BytesIO()
        Image.fromarray(arr, mode).save(buf, "PNG")
        return buf.getvalue()
    import zlib

    a = arr.reshape(arr.shape[0], arr.shape[1], -1)
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                           (0, 1, 1, 2)):
        sub = a[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\0" + row.tobytes() for row in sub)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ctype = {"L": 0, "LA": 4, "RGB": 2, "RGBA": 6}[mode]
    ihdr = struct.pack(">IIBBBBB", a.shape[1], a.shape[0], 8, ctype, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def _decoded(meta, pixels, k: int, c: int) -> np.ndarray:
    h, w, off = (int(v) for v in meta[k])
    assert 0 <= off and off + h * w * c <= pixels.numel()  # every image lies inside the buffer
    return pixels.numpy()[off:off + h * w * c].reshape(h, w, c)


@needs_libpng
@bounded(30)
@given(mode=st.sampled_from(["L", "LA", "RGB", "RGBA"]), h=st.integers(1, 40), w=st.integers(1, 40),
       interlace=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_png_decoder_matches_pillow_in_every_colour_mode(tmp_path_factory, mode, h, w, interlace, seed):
    from PIL import Image

    bands = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, bands), dtype=np.uint8)
    path = tmp_path_factory.mktemp("png") / "x.png"
    path.write_bytes(_png_bytes(arr[..., 0] if bands == 1 else arr, mode, interlace))
    for c, target in PNG_CHANNELS.items():
        pixels, meta, errors = ops.decode_png_batch([str(path)], c)
        assert errors == [""]
        with Image.open(path) as img:
            ref = np.asarray(img.convert(target)).reshape(h, w, c)
        assert np.array_equal(_decoded(meta, pixels, 0, c), ref)


@needs_libpng
@bounded(60)
@given(cut=st.integers(0, 10_000), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)),
                                                  max_size=4),
       noise=st.binary(max_size=300), seed=st.integers(0, 2**31 - 1))
def test_png_decoder_survives_truncated_corrupted_and_random_files(tmp_path_factory, cut, flips, noise, seed):
    """Broken files come back as per-file errors beside the good ones, never a crash or a wrong-sized
    image; under scripts/sanitize.sh also never an out-of-bounds access or a leak of the error path."""
    arr = np.random.default_rng(seed).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    good = _png_bytes(arr, "RGB")
    folder = tmp_path_factory.mktemp("bad")
    truncated = good[: cut % len(good)]
    flipped = bytearray(good)
    for pos, bits in flips:
        flipped[pos % len(flipped)] ^= bits
    files = {"good.png": good, "truncated.png": truncated, "flipped.png": bytes(flipped),
             "noise.png": noise, "signature_then_noise.png": good[:8] + noise}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    paths = [str(folder / name) for name in files] + [str(folder / "missing.png")]
    pixels, meta, errors = ops.decode_png_batch(paths, 3)
    assert len(errors) == len(paths) == meta.shape[0]
    assert errors[0] == "" and np.array_equal(_decoded(meta, pixels, 0, 3), arr)
    assert errors[3] != "" and errors[5] != ""  # random bytes, a missing file
    if len(truncated) < len(good) - 12:  # cut before IEND (a lost IEND alone loses no pixel: not read)
        assert errors[1] != ""
    for k, err in enumerate(errors):
        if err:
            assert meta[k].tolist() == [0, 0, 0]
        else:  # a flip the format cannot notice (e.g. past IEND) decodes, at the file's own size
            assert _decoded(meta, pixels, k, 3).shape == (17, 23, 3)
