"""Image datasets streamed from disk, from R: ``image_dataset_from_directory`` / ``_from_dataframe``, facts
for ``print()``, a first batch, and fit / evaluate / predict on datasets.

Datasets cross to R as opaque handles, their facts (class names, counts, batches) as plain values. Table
labels arrive as strings (R factors come with their levels as ``class_names``). Meaning is checked by the
core (`pydlr.data.image_dataset`, the engine); only R's types are translated here.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pydlr.api_r._convert import c_array, history, int_tuple
from pydlr.api_r.training import augment as augment_settings
from pydlr.data.image_dataset import (
    SKIPPED_FILE,
    ImageDataset,
    image_dataset_from_dataframe,
    image_dataset_from_directory,
)
from pydlr.data.image_index import ONE_BASED_LABELS
from pydlr.errors import InputError

__all__ = ["from_directory", "from_dataframe", "info", "files", "first_batch", "fit", "evaluate", "predict",
           "predict_classes"]


def _list(result: Any) -> list[ImageDataset]:
    return list(result) if isinstance(result, tuple) else [result]


def from_directory(directory: str, labels: Any = "inferred", **kwargs: Any) -> list[ImageDataset]:
    """`image_dataset_from_directory` with R's types; always a list (two datasets for subset "both")."""
    if isinstance(labels, (list, tuple)):
        labels = [int(v) for v in labels]
    kwargs["image_size"] = int_tuple(kwargs["image_size"])
    with warnings.catch_warnings():  # R has warned about 1-based labels already, in R's syntax
        warnings.filterwarnings("ignore", message=ONE_BASED_LABELS)
        return _list(image_dataset_from_directory(directory, labels=labels, **kwargs))


def from_dataframe(paths: list[str], labels: list[str] | None, x_col: str = "filename", y_col: str = "class",
                   **kwargs: Any) -> list[ImageDataset]:
    """`image_dataset_from_dataframe` from R's columns (``paths``, and ``labels`` as strings or None), kept
    under the R data.frame's column names so that errors name the columns the user wrote."""
    table = {x_col: list(paths)}
    if labels is not None:
        table[y_col] = list(labels)
    kwargs["image_size"] = int_tuple(kwargs["image_size"])
    return _list(image_dataset_from_dataframe(table, x_col=x_col,
                                              y_col=y_col if labels is not None else None, **kwargs))


def _skips_warned_by_r(fun: Callable[..., Any]) -> Callable[..., Any]:
    """``fun`` without Python's warning per skipped file: R warns once per call, in R's words, from the
    dataset's ``bad_files`` (a second, Python-worded message beside it would repeat it)."""
    @functools.wraps(fun)
    def run(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=SKIPPED_FILE)
            return fun(*args, **kwargs)
    return run


def _dataset(ds: Any, argument: str = "dataset") -> ImageDataset:
    if not isinstance(ds, ImageDataset):
        raise InputError(argument, "an image dataset", ds)
    return ds


def info(ds: Any) -> dict[str, Any]:
    """What R prints and keeps: class names, files per class, batches, shapes, skipped files."""
    ds = _dataset(ds)
    return {"class_names": ds.class_names or [], "counts": [int(v) for v in ds.counts().values()],
            "num_files": ds.num_files, "batches": len(ds), "batch_size": ds.batch_size,
            "image_shape": list(ds.image_shape), "label_mode": ds.label_mode,
            "ignored": len(ds.ignored_files), "bad_files": [p for p, _ in ds.bad_files]}


def files(ds: Any) -> dict[str, Any]:
    """The files in the order of predict's rows, and their 0-based labels (int32; None without labels)."""
    ds = _dataset(ds)
    labels = ds.labels
    return {"file_paths": ds.file_paths, "labels": None if labels is None else c_array(labels, np.int32)}


@_skips_warned_by_r
def first_batch(ds: Any) -> dict[str, np.ndarray]:
    """The first batch of one pass (``next(iter(ds))``) as arrays: images, and labels when there are some."""
    first = next(iter(_dataset(ds).take(1)))
    images, labels = first if isinstance(first, tuple) else (first, None)
    out = {"images": images.numpy()}
    if labels is not None:
        out["labels"] = labels.numpy()
    return out


def _pad_validation(h: dict[str, Any], validation_freq: Any) -> dict[str, Any]:
    """With ``validation_freq`` the ``val_*`` lists are shorter than the epochs: pad them with NaN (NA in
    R) at the epochs that were not validated, so R's data.frame of the history lines up."""
    epochs = h["epoch"]
    ran = [e for e in epochs if (e in validation_freq if isinstance(validation_freq, (list, tuple))
                                 else e % int(validation_freq) == 0)]
    for k, vals in h["metrics"].items():
        if 0 < len(vals) < len(epochs):
            at = dict(zip(ran[-len(vals):], vals, strict=False))
            h["metrics"][k] = [at.get(e, float("nan")) for e in epochs]
        elif not vals:
            h["metrics"][k] = [float("nan")] * len(epochs)
    return h


@_skips_warned_by_r
def fit(model: Any, dataset: Any, **kwargs: Any) -> dict[str, Any]:
    """``model.fit(dataset, **kwargs)`` (engine's names); the history as plain values, as `training.fit`."""
    _dataset(dataset, "x")
    if kwargs.get("validation_data") is not None:
        _dataset(kwargs["validation_data"], "validation_data")
    if isinstance(kwargs.get("augment"), Mapping):
        kwargs["augment"] = augment_settings(kwargs["augment"])
    if isinstance(kwargs.get("validation_freq"), list):
        kwargs["validation_freq"] = tuple(kwargs["validation_freq"])
    distributed = kwargs.pop("distributed", None)
    if isinstance(distributed, Mapping):  # R's list(nproc_per_node = n), checked by R
        kwargs.update(distributed=True, **distributed)
    return _pad_validation(history(model.fit(dataset, **kwargs)), kwargs.get("validation_freq", 1))


@_skips_warned_by_r
def evaluate(model: Any, dataset: Any) -> dict[str, float]:
    """Loss and metrics over one pass of ``dataset`` (``model.evaluate(dataset, return_dict=True)``)."""
    result = model.evaluate(_dataset(dataset, "x"), return_dict=True)
    return {str(k): float(v) for k, v in dict(result).items()}


@_skips_warned_by_r
def predict(model: Any, dataset: Any) -> np.ndarray:
    """Outputs for the dataset's files, in ``file_paths`` order."""
    return c_array(model.predict(_dataset(dataset, "x")))


@_skips_warned_by_r
def predict_classes(model: Any, dataset: Any) -> np.ndarray:
    """0-based classes for the dataset's files, in ``file_paths`` order."""
    return c_array(model.predict_classes(_dataset(dataset, "x")), dtype=np.int32)
