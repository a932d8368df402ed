"""Image folders (PNG/JPEG via PIL, resized) and Arrow tables as training data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from pydlr.data import arrow_to_arrays, load_image_folder
from pydlr.errors import InputError


def write_folder(root, sizes=((10, 12), (20, 16))):
    colors = {"cats": (200, 10, 10), "dogs": (10, 10, 200)}
    for cls, color in colors.items():
        (root / cls).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            img = Image.new("RGB", (w, h), color)
            img.save(root / cls / (f"{i}.png" if i % 2 == 0 else f"{i}.jpg"))
    return colors


def test_image_folder_reads_resizes_and_labels_alphabetically(tmp_path):
    colors = write_folder(tmp_path)
    x, y, names = load_image_folder(tmp_path, image_size=(8, 6), shuffle=False)
    assert names == ["cats", "dogs"] and x.shape == (4, 8, 6, 3) and x.dtype == np.uint8
    assert y.tolist() == [0, 0, 1, 1]
    for i, cls in enumerate(["cats", "cats", "dogs", "dogs"]):
        assert np.abs(x[i].reshape(-1, 3).mean(0) - colors[cls]).max() < 6  # JPEG is lossy
    g, _, _ = load_image_folder(tmp_path, image_size=(5, 5), color_mode="grayscale")
    assert g.shape == (4, 5, 5, 1)


def test_image_folder_is_shuffled_by_default_and_seeded(tmp_path):
    """In folder order each class is one block: validation_split (the last samples) saw one class only."""
    for cls, value in (("a", 10), ("b", 120), ("c", 240)):
        (tmp_path / cls).mkdir()
        for i in range(8):
            Image.new("L", (4, 4), value + i).save(tmp_path / cls / f"{i}.png")
    x, y, names = load_image_folder(tmp_path, image_size=(4, 4), color_mode="grayscale", seed=3)
    assert names == ["a", "b", "c"] and sorted(y.tolist()) == [0] * 8 + [1] * 8 + [2] * 8
    assert y.tolist() != sorted(y.tolist())  # not class by class
    assert len(set(y[-6:].tolist())) > 1  # a 25% validation split holds more than one class
    np.testing.assert_array_equal(x[:, 0, 0, 0] // 110, y)  # images stay with their labels (10+, 120+, 240+)
    again, y_again, _ = load_image_folder(tmp_path, image_size=(4, 4), color_mode="grayscale", seed=3)
    np.testing.assert_array_equal(again, x)
    np.testing.assert_array_equal(y_again, y)
    other = load_image_folder(tmp_path, image_size=(4, 4), color_mode="grayscale", seed=4)[1]
    assert other.tolist() != y.tolist()
    ordered = load_image_folder(tmp_path, image_size=(4, 4), color_mode="grayscale", shuffle=False)[1]
    assert ordered.tolist() == sorted(y.tolist())
    with pytest.raises(InputError, match="seed"):
        load_image_folder(tmp_path, seed=-1)


def test_image_folder_decodes_pngs_natively_with_pillows_pixels(tmp_path, monkeypatch):
    """Plain PNGs go through the batched native decoder, the rest (JPEG, palette) through Pillow: the same
    arrays as Pillow for every file, for chunks of one size (no resize) and of mixed sizes."""
    from pydlr.data import decode, folders

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (6, 6, 3), np.uint8)).save(tmp_path / cls / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (9, 7, 3), np.uint8)).convert("P").save(tmp_path / "a" / "p.png")
    Image.fromarray(rng.integers(0, 256, (9, 7, 3), np.uint8)).save(tmp_path / "b" / "j.jpg")
    monkeypatch.setattr(folders, "_CHUNK", 4)  # several chunks, some all-native at the target size
    out = {}
    for use in (True, False):
        monkeypatch.setattr(decode, "_native_png", lambda use=use: use)
        for size in ((6, 6), (5, 8)):
            out[use, size] = load_image_folder(tmp_path, image_size=size, shuffle=False)
    for size in ((6, 6), (5, 8)):
        assert np.array_equal(out[True, size][0], out[False, size][0])
        assert np.array_equal(out[True, size][1], out[False, size][1])
    assert out[True, (6, 6)][0].shape == (12, 6, 6, 3)


def test_image_folder_names_a_corrupt_png_among_native_ones(tmp_path):
    (tmp_path / "a").mkdir()
    for i in range(3):
        Image.new("L", (4, 4), 10 * i).save(tmp_path / "a" / f"{i}.png")
    (tmp_path / "a" / "1b_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(InputError, match="readable PNG/JPEG") as info:
        load_image_folder(tmp_path, image_size=(4, 4), color_mode="grayscale")
    assert "1b_broken.png" in info.value.received  # the message shortens long paths; the value keeps it


def test_image_folder_bad_input(tmp_path):
    with pytest.raises(InputError, match="existing folder"):
        load_image_folder(tmp_path / "nope")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(InputError, match="no images"):
        load_image_folder(tmp_path)
    (tmp_path / "empty_class" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="readable"):
        load_image_folder(tmp_path, image_size=(4, 4))
    with pytest.raises(InputError, match="image_size"):
        load_image_folder(tmp_path, image_size=(0, 4))


def test_arrow_columns_and_list_columns_become_arrays():
    rng = np.random.RandomState(0)
    pixels = rng.randint(0, 255, size=(5, 4)).astype(np.uint8)
    table = pa.table({f"p{i}": pixels[:, i] for i in range(4)} | {"label": [0, 1, 2, 1, 0]})
    x, y = arrow_to_arrays(table, image_shape=(2, 2, 1))
    assert x.shape == (5, 2, 2, 1) and x.dtype == np.float32
    assert (x.reshape(5, 4) == pixels).all() and y.tolist() == [0, 1, 2, 1, 0]
    lists = pa.table({"img": pa.array(list(pixels.astype(np.float32)), pa.list_(pa.float32(), 4)),
                      "label": pa.array(["a", "b", "a", "b", "b"]).dictionary_encode()})
    x2, y2 = arrow_to_arrays(lists, image_shape=(2, 2, 1))
    assert (x2 == x).all() and y2.tolist() == [0, 1, 0, 1, 1]  # factor codes
    with pytest.raises(InputError, match="nulls"):
        arrow_to_arrays(pa.table({"a": [1.0, None], "label": [0, 1]}))
    with pytest.raises(InputError, match="image_shape"):
        arrow_to_arrays(table, image_shape=(3, 3))
