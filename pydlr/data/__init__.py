"""Data: offline data sets, array preparation, batching, augmentation and prefetching workers, and image
datasets streamed from disk (`image_dataset_from_directory`, `image_dataset_from_dataframe`)."""

from pydlr.data.arrow import arrow_to_arrays
from pydlr.data.augment import Augment, augment_beforehand
from pydlr.data.batching import ArrayBatches, epoch_batches
from pydlr.data.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist, load_mnist
from pydlr.data.folders import load_image_folder
from pydlr.data.image_dataset import (
    ImageDataset,
    image_dataset_from_dataframe,
    image_dataset_from_directory,
)

__all__ = [
    "Augment", "augment_beforehand", "ArrayBatches", "epoch_batches", "load_fashion_mnist",
    "load_mnist", "FASHION_MNIST_CLASSES", "load_image_folder", "arrow_to_arrays", "ImageDataset",
    "image_dataset_from_directory", "image_dataset_from_dataframe",
]
