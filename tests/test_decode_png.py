"""The native batched PNG decoder (pydlr.data.decode.decode_pngs) against Pillow, on PNG files written here
byte by byte: every row filter on every sample layout, IDAT data split over chunks, ancillary chunks, files
that only libpng takes (interlaced, a suggested palette, data after the zlib stream) and broken files, which
must come back undecoded (None) so that Pillow decodes them or names the problem."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pydlr import ops
from pydlr.data.decode import check_image_spec, decode_image, decode_pngs

pytestmark = pytest.mark.skipif(not ops.png_decoder_available(), reason="built without libpng")

CTYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # samples per pixel -> PNG colour type
MODES = ("grayscale", "rgb", "rgba")
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _filter_rows(img: np.ndarray, filters) -> bytes:
    """PNG's filtered scanlines of img (h, w, samples) uint8, row y with filters[y % len(filters)]."""
    h, w, bpp = img.shape
    rows = img.reshape(h, w * bpp).astype(np.int64)
    out = []
    for y in range(h):
        x, up = rows[y], rows[y - 1] if y else np.zeros_like(rows[y])
        left = np.concatenate([np.zeros(bpp, np.int64), x[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), up[:-bpp]])
        f = filters[y % len(filters)]
        pred = {0: 0, 1: left, 2: up, 3: (left + up) // 2, 4: _paeth(left, up, upleft)}[f]
        out.append(bytes([f]) + ((x - pred) % 256).astype(np.uint8).tobytes())
    return b"".join(out)


def png_bytes(img: np.ndarray, filters=(0, 1, 2, 3, 4), idat_parts: int = 1, before: bytes = b"",
              after_stream: bytes = b"", interlace: bool = False, idat_crc: int | None = None,
              stream=None) -> bytes:
    """A PNG file of img (h, w, samples) uint8, written here: ``before`` goes between IHDR and IDAT, the
    zlib stream is split over ``idat_parts`` chunks, ``after_stream`` is appended to it."""
    h, w, bpp = img.shape
    if interlace:
        raw = b"".join(_filter_rows(img[y0::dy, x0::dx], filters) for x0, y0, dx, dy in ADAM7
                       if img[y0::dy, x0::dx].size)
    else:
        raw = _filter_rows(img, filters)
    data = (zlib.compress(raw, 9) if stream is None else stream(raw)) + after_stream
    cuts = np.linspace(0, len(data), idat_parts + 1).astype(int)
    idat = b"".join(_chunk(b"IDAT", data[a:b], idat_crc) for a, b in zip(cuts[:-1], cuts[1:], strict=True))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, CTYPES[bpp], 0, 0, int(interlace))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + before + idat + _chunk(b"IEND", b"")


def _write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _pillow(path: str, mode: str) -> np.ndarray:
    spec = check_image_spec((4, 4), mode, "bilinear", False, "test")
    return decode_image(path, spec, resize=False)


def _native(paths: list[str], mode: str) -> list:
    spec = check_image_spec((4, 4), mode, "bilinear", False, "test")
    out = decode_pngs(paths, spec)
    return list(out) if isinstance(out, np.ndarray) else out


@pytest.mark.parametrize("mode", MODES)
def test_every_filter_and_sample_layout_gives_pillows_pixels(tmp_path, mode):
    rng = np.random.default_rng(0)
    paths = []
    for bpp in (1, 2, 3, 4):
        for first in range(5):  # each filter on the first row too (no row above: zeros)
            img = rng.integers(0, 256, (9, 7, bpp), np.uint8)
            img[4:] = img[4:] // 16 * 16  # runs of equal values as well as noise
            filters = tuple((first + k) % 5 for k in range(5))
            paths.append(_write(tmp_path, f"{bpp}_{first}.png", png_bytes(img, filters)))
    native = _native(paths, mode)
    assert all(a is not None for a in native)
    for p, arr in zip(paths, native, strict=True):
        assert np.array_equal(arr, _pillow(p, mode)), p


def test_chunk_layouts_and_sizes(tmp_path):
    rng = np.random.default_rng(1)
    text = _chunk(b"tEXt", b"Comment\x00made by hand") + _chunk(b"gAMA", struct.pack(">I", 45455))
    cases = {
        "split.png": png_bytes(rng.integers(0, 256, (28, 28, 1), np.uint8), idat_parts=4),
        "ancillary.png": png_bytes(rng.integers(0, 256, (5, 3, 3), np.uint8), before=text),
        "one_pixel.png": png_bytes(rng.integers(0, 256, (1, 1, 2), np.uint8)),
        "stored.png": png_bytes(rng.integers(0, 256, (6, 6, 4), np.uint8), stream=lambda r: zlib.compress(r, 0)),
        # larger than the first read buffer (64 KiB): the buffer grows
        "big.png": png_bytes(rng.integers(0, 256, (160, 200, 3), np.uint8), idat_parts=3),
    }
    paths = [_write(tmp_path, k, v) for k, v in cases.items()]
    assert (tmp_path / "big.png").stat().st_size > 65536
    for mode in MODES:
        native = _native(paths, mode)
        for p, arr in zip(paths, native, strict=True):
            assert arr is not None and np.array_equal(arr, _pillow(p, mode)), (p, mode)


def test_unusual_files_still_give_pillows_pixels(tmp_path):
    """Interlaced files, a suggested palette in an RGB file, data after the zlib stream and a stream longer
    than the image leave the direct path; libpng decodes them from the same bytes. A bad IDAT CRC, which
    Pillow ignores, gives Pillow's pixels too."""
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (10, 13, 3), np.uint8)
    plte = _chunk(b"PLTE", bytes(range(12)))
    cases = {
        "interlaced_grey.png": png_bytes(rng.integers(0, 256, (11, 9, 1), np.uint8), interlace=True),
        "interlaced_rgba.png": png_bytes(rng.integers(0, 256, (8, 8, 4), np.uint8), interlace=True),
        "suggested_palette.png": png_bytes(rgb, before=plte),
        "trailing_data.png": png_bytes(rgb, after_stream=b"\x00\x01\x02"),
        "long_stream.png": png_bytes(rgb, stream=lambda r: zlib.compress(r + b"\x00" * 9)),  # libpng warns
        # Pillow ignores IDAT CRCs (libpng would refuse the file and Pillow decode it): decoded directly
        "idat_crc.png": png_bytes(rgb, idat_crc=12345),
    }
    paths = [_write(tmp_path, k, v) for k, v in cases.items()]
    for mode in MODES:
        for p, arr in zip(paths, _native(paths, mode), strict=True):
            assert arr is not None and np.array_equal(arr, _pillow(p, mode)), (p, mode)


def test_broken_files_are_left_to_pillow(tmp_path):
    """Every one of these comes back None (Pillow then decodes it or names the problem), never as pixels."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (8, 8, 1), np.uint8)
    good = png_bytes(img)
    raw = _filter_rows(img, (0,))
    bad_filter = raw[:9] + bytes([5]) + raw[10:]  # row 1's filter byte: 5 is not a PNG filter
    cases = {
        "ihdr_crc.png": good[:29] + b"\x00\x00\x00\x00" + good[33:],
        "truncated.png": good[: len(good) - 30],
        "short_stream.png": png_bytes(img, stream=lambda r: zlib.compress(r[:-5])),
        "bad_adler.png": png_bytes(img, stream=lambda r: zlib.compress(r)[:-4] + b"\x00\x00\x00\x00"),
        "bad_filter.png": png_bytes(img, stream=lambda r: zlib.compress(bad_filter)),
        "signature_only.png": good[:8],
        "empty.png": b"",
        "not_png.png": b"GIF89a" + b"\x00" * 40,
    }
    paths = [_write(tmp_path, k, v) for k, v in cases.items()]
    native = _native(paths + [str(tmp_path / "missing.png")], "grayscale")
    assert [p for p, a in zip(paths, native, strict=False) if a is not None] == []
    assert native[-1] is None  # the missing file


def test_a_batch_mixes_decoded_and_refused_files_in_order(tmp_path):
    rng = np.random.default_rng(4)
    imgs = [rng.integers(0, 256, (6 + k, 5, 1), np.uint8) for k in range(3)]
    paths = [_write(tmp_path, "a.png", png_bytes(imgs[0])),
             _write(tmp_path, "b.png", png_bytes(imgs[1], stream=lambda r: zlib.compress(r)[:-6])),
             _write(tmp_path, "c.png", png_bytes(imgs[2]))]
    native = _native(paths, "grayscale")
    assert native[1] is None
    assert np.array_equal(native[0], imgs[0]) and np.array_equal(native[2], imgs[2])
    Image.open(paths[0]).load()  # the hand-written files are valid PNGs to Pillow too


def test_an_image_over_the_direct_paths_size_limit_is_decoded_by_libpng(tmp_path):
    """Over 64 MiB of inflated rows, libpng (a row at a time) decodes it: the same pixels."""
    img = np.zeros((8200, 8200, 1), np.uint8)
    img[::97, ::89] = 200
    raw = b"".join(b"\x00" + row.tobytes() for row in img[..., 0])
    ihdr = struct.pack(">IIBBBBB", 8200, 8200, 8, 0, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 1))
            + _chunk(b"IEND", b""))
    path = _write(tmp_path, "large.png", data)
    (arr,) = _native([path], "grayscale")
    assert arr is not None and np.array_equal(arr, img)


def test_a_batch_split_between_threads_gives_the_one_thread_result(tmp_path):
    """The files of a batch are shared out between torch's threads: pixels, offsets and refusals come back in
    file order, the same as decoded on one thread (sizes differ, so every offset depends on the order)."""
    import torch

    rng = np.random.default_rng(5)
    paths = []
    for k in range(40):
        img = rng.integers(0, 256, (3 + k % 7, 2 + k % 5, 1), np.uint8)
        broken = k % 9 == 4  # a stream cut short: refused, whichever thread meets it
        paths.append(_write(tmp_path, f"{k:02d}.png",
                            png_bytes(img, stream=(lambda r: zlib.compress(r)[:-6]) if broken else None)))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = ops.decode_png_batch(paths, 1)
        torch.set_num_threads(max(2, threads))
        split = ops.decode_png_batch(paths, 1)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one[0], split[0]) and torch.equal(one[1], split[1]) and one[2] == split[2]
    assert sum(bool(e) for e in one[2]) == 4


# ----- decoding fused with Augment's warp (ops.decode_png_warp_batch) --------------------------------------

def _warp_reference(paths, mode, aug, theta, size):
    """What the fused pass must give: the files decoded at their own size, then Augment.apply's grid_sample."""
    import torch

    spec = check_image_spec(size, mode, "bilinear", False, "test")
    imgs = [torch.from_numpy(np.asarray(a)).to(torch.float32) for a in _native(paths, mode)]
    return torch.cat([aug.apply(x[None], t[None], None, size) for x, t in zip(imgs, theta, strict=True)]), spec


def _fused(paths, spec, aug, theta, resize):
    import torch

    from pydlr.data.augment import pixel_centres

    out = torch.full((len(paths) + 2,) + spec.shape, -7.0)
    errors = ops.decode_png_warp_batch(paths, spec.channels, theta, pixel_centres(spec.width),
                                       pixel_centres(spec.height), out, *aug.warp_codes(), resize)
    return out, errors


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("fill", [("reflect", 0.0), ("nearest", 0.0), ("constant", 0.0), ("constant", 37.5)])
def test_fused_warp_equals_decoding_then_augment(tmp_path, mode, interpolation, fill):
    """Every interpolation and fill mode the fused pass takes, grey, RGB and RGBA, sources of the output's size
    and of others (the warp then resizes too), rotations, shifts, zooms (in and out: samples outside the
    image), flips: grid_sample's values to float rounding."""
    import torch

    from pydlr.data import Augment

    rng = np.random.default_rng(11)
    sizes = [(12, 10), (12, 10), (9, 13), (20, 16), (6, 5), (12, 10), (15, 15), (12, 10), (7, 12)]
    paths = [_write(tmp_path, f"{k}.png", png_bytes(rng.integers(0, 256, (h, w, 1 + k % 4), np.uint8)))
             for k, (h, w) in enumerate(sizes)]
    aug = Augment(flip="horizontal_and_vertical", rotation=0.3, shift=0.2, zoom=(-0.5, 0.6),
                  interpolation=interpolation, fill_mode=fill[0], fill_value=fill[1], value_range=(0, 255))
    geo, _ = aug.draw(len(paths), torch.Generator().manual_seed(3))
    theta = aug.theta_from(geo, 12, 10)
    want, spec = _warp_reference(paths, mode, aug, theta, (12, 10))
    got, errors = _fused(paths, spec, aug, theta, resize=True)
    assert errors == [""] * len(paths)
    # the same float operations as torch's kernel (identical on the machine this was written on); a tolerance
    # for a torch built to round differently
    torch.testing.assert_close(got[:len(paths)], want, atol=1e-4, rtol=1e-5)
    assert bool((got[len(paths):] == -7.0).all())  # nothing written past the batch
    if interpolation == "nearest":  # every value is a source sample (or the fill): a wrong pick shows whole
        assert (got[:len(paths)] - want).abs().max() < 1e-3


def test_fused_warp_of_flips_and_quarter_turns_is_exact(tmp_path):
    import torch

    from pydlr.data import Augment

    rng = np.random.default_rng(2)
    imgs = [rng.integers(0, 256, (8, 8, 3), np.uint8) for _ in range(4)]
    paths = [_write(tmp_path, f"{k}.png", png_bytes(img)) for k, img in enumerate(imgs)]
    flip = Augment(flip="horizontal_and_vertical", value_range=(0, 255))
    u = torch.tensor([[0, 0, 0, 0, -0.5, 0.5], [0, 0, 0, 0, 0.5, -0.5], [0, 0, 0, 0, -0.5, -0.5],
                      [0, 0, 0, 0, 0.5, 0.5]], dtype=torch.float32)
    spec = check_image_spec((8, 8), "rgb", "bilinear", False, "test")
    got, errors = _fused(paths, spec, flip, flip.theta_from(u, 8, 8), resize=False)
    x = torch.from_numpy(np.stack(imgs)).to(torch.float32)
    assert errors == [""] * 4
    assert torch.equal(got[0], x[0].flip(1)) and torch.equal(got[1], x[1].flip(0))
    assert torch.equal(got[2], x[2].flip(0).flip(1)) and torch.equal(got[3], x[3])
    quarter = Augment(rotation=(0.25, 0.25), value_range=(0, 255))
    got, _ = _fused(paths, spec, quarter, quarter.theta_from(torch.zeros(4, 6), 8, 8), resize=False)
    want = quarter.apply(x, quarter.theta_from(torch.zeros(4, 6), 8, 8), None)
    torch.testing.assert_close(got[:4], want, atol=1e-3, rtol=0)
    torch.testing.assert_close(got[:4], torch.rot90(x, 1, (1, 2)), atol=1e-3, rtol=0)


def test_fused_warp_refuses_what_it_does_not_take_and_names_why(tmp_path):
    """Broken files, non-PNGs and sizes outside the rule come back with a reason (the caller then prepares
    the batch the other way); the good files beside them are still written."""
    import torch

    from pydlr.data import Augment

    rng = np.random.default_rng(4)
    good = png_bytes(rng.integers(0, 256, (10, 10, 1), np.uint8))
    paths = [_write(tmp_path, "good.png", good), _write(tmp_path, "broken.png", good[:len(good) // 2]),
             _write(tmp_path, "text.png", b"not a png at all"),
             _write(tmp_path, "small.png", png_bytes(rng.integers(0, 256, (4, 10, 1), np.uint8))),
             _write(tmp_path, "other.png", png_bytes(rng.integers(0, 256, (10, 12, 1), np.uint8)))]
    aug = Augment(rotation=0.1, value_range=(0, 255))
    theta = aug.theta_from(aug.draw(5, torch.Generator().manual_seed(0))[0], 10, 10)
    spec = check_image_spec((10, 10), "grayscale", "bilinear", False, "test")
    _, errors = _fused(paths, spec, aug, theta, resize=True)
    assert errors[0] == "" and errors[4] == "" and errors[3] == "size"
    assert errors[1] and errors[2]
    _, errors = _fused(paths, spec, aug, theta, resize=False)
    assert errors[0] == "" and errors[3] == "size" and errors[4] == "size"


def test_fused_warp_split_between_threads_gives_the_one_thread_result(tmp_path):
    import torch

    from pydlr.data import Augment

    rng = np.random.default_rng(8)
    paths = [_write(tmp_path, f"{k:02d}.png", png_bytes(rng.integers(0, 256, (9 + k % 4, 11, 3), np.uint8)))
             for k in range(45)]
    aug = Augment(flip="horizontal", rotation=0.2, zoom=0.2, value_range=(0, 255))
    theta = aug.theta_from(aug.draw(len(paths), torch.Generator().manual_seed(1))[0], 9, 11)
    spec = check_image_spec((9, 11), "rgb", "bilinear", False, "test")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, e1 = _fused(paths, spec, aug, theta, resize=True)
        torch.set_num_threads(max(2, threads))
        split, e2 = _fused(paths, spec, aug, theta, resize=True)
    finally:
        torch.set_num_threads(threads)
    assert e1 == e2 == [""] * len(paths)
    assert torch.equal(one, split)


@pytest.mark.parametrize("isa", ["256", "0"])
def test_fused_warp_without_avx512_gives_the_same_images(tmp_path, isa):
    """The AVX2 rows of 8 and the one-pixel-at-a-time code (PYDLR_WARP_ISA caps the instruction set, read
    once a process: a fresh one here) give what the widest path gives, grey and RGB, every padding."""
    import subprocess
    import sys

    import torch

    rng = np.random.default_rng(9)
    paths = [_write(tmp_path, f"{k}.png", png_bytes(rng.integers(0, 256, (11 + k % 3, 19, 1 + 2 * (k % 2)),
                                                                np.uint8))) for k in range(6)]
    script = """
import sys, torch
sys.path.insert(0, sys.argv[1])
from test_decode_png import _fused
from pydlr.data import Augment
from pydlr.data.decode import check_image_spec
paths = sys.argv[3:]
outs = []
for mode in ("grayscale", "rgb"):
    for fill in ("reflect", "nearest", "constant"):
        for interp in ("bilinear", "nearest"):
            aug = Augment(flip="horizontal", rotation=0.2, shift=0.1, zoom=(-0.4, 0.5), fill_mode=fill,
                          fill_value=9.0, interpolation=interp, value_range=(0, 255))
            theta = aug.theta_from(aug.draw(len(paths), torch.Generator().manual_seed(2))[0], 12, 18)
            spec = check_image_spec((12, 18), mode, "bilinear", False, "test")
            outs.append(_fused(paths, spec, aug, theta, True)[0])
torch.save(outs, sys.argv[2])
"""
    results = {}
    for cap in ("512", isa):
        dest = tmp_path / f"out{cap}.pt"
        env = {**os.environ, "PYDLR_WARP_ISA": cap}
        subprocess.run([sys.executable, "-c", script, os.path.dirname(__file__), str(dest), *paths], env=env,
                       check=True)
        results[cap] = torch.load(dest, weights_only=True)  # tensors only: nothing unpickled runs code
    for wide, narrow in zip(results["512"], results[isa], strict=True):
        torch.testing.assert_close(narrow, wide, atol=1e-4, rtol=1e-5)
