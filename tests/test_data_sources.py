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
    x, y, names = load_image_folder(tmp_path, image_size=(8, 6))
    assert names == ["cats", "dogs"] and x.shape == (4, 8, 6, 3) and x.dtype == np.uint8
    assert y.tolist() == [0, 0, 1, 1]
    for i, cls in enumerate(["cats", "cats", "dogs", "dogs"]):
        assert np.abs(x[i].reshape(-1, 3).mean(0) - colors[cls]).max() < 6  # JPEG is lossy
    g, _, _ = load_image_folder(tmp_path, image_size=(5, 5), color_mode="grayscale")
    assert g.shape == (4, 5, 5, 1)


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
