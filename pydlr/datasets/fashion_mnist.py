"""keras.datasets.fashion_mnist: 60,000 + 10,000 28x28 grey images of 10 clothing classes."""

from __future__ import annotations

import numpy as np

from pydlr.data.datasets import load_fashion_mnist

__all__ = ["load_data"]


def load_data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x_train, y_train), (x_test, y_test))``: x uint8 ``(60000, 28, 28)`` / ``(10000, 28, 28)``,
    y uint8 ``(60000,)`` / ``(10000,)`` with labels 0-9 (keras' shapes and dtypes)."""
    (x_tr, y_tr), (x_te, y_te) = load_fashion_mnist()
    return (x_tr, y_tr.astype(np.uint8)), (x_te, y_te.astype(np.uint8))
