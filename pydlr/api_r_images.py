"""The R package's door to image datasets streamed from disk (plain arguments in, plain results out).

As `pydlr.api_r`: R has checked and converted the arguments (integers, strings, lists); datasets travel
back to R as opaque handles, with their facts (class names, counts, batches) as plain values. Labels in
tables come as strings (R factors are converted with their levels as ``class_names``).
"""

from __future__ import annotations

from typing import Any

from pydlr.data.image_dataset import (
    ImageDataset,
    image_dataset_from_dataframe,
    image_dataset_from_directory,
)
from pydlr.errors import InputError

__all__ = ["image_dataset_directory", "image_dataset_table", "dataset_info", "dataset_batch", "fit_dataset",
           "evaluate_dataset", "predict_dataset"]


def _size(value: Any) -> tuple[int, int]:
    return tuple(int(v) for v in value)  # type: ignore[return-value]


def _pack(result: Any) -> list[ImageDataset]:
    return list(result) if isinstance(result, tuple) else [result]


def image_dataset_directory(directory: str, labels: Any = "inferred", **kwargs: Any) -> list[ImageDataset]:
    """`image_dataset_from_directory` with R's arguments; always a list (two datasets for subset "both")."""
    if isinstance(labels, (list, tuple)):
        labels = [int(v) for v in labels]
    kwargs["image_size"] = _size(kwargs["image_size"])
    return _pack(image_dataset_from_directory(directory, labels=labels, **kwargs))


def image_dataset_table(paths: list[str], labels: list[str] | None, **kwargs: Any) -> list[ImageDataset]:
    """`image_dataset_from_dataframe` from R's columns (``paths`` and string ``labels``)."""
    table = {"filename": list(paths)}
    if labels is not None:
        table["class"] = list(labels)
    kwargs["image_size"] = _size(kwargs["image_size"])
    return _pack(image_dataset_from_dataframe(table, x_col="filename",
                                              y_col="class" if labels is not None else None, **kwargs))


def _check(ds: Any) -> ImageDataset:
    if not isinstance(ds, ImageDataset):
        raise InputError("dataset", "an image dataset", ds)
    return ds


def dataset_info(ds: Any) -> dict[str, Any]:
    """What R prints and stores: class names, files per class, batches, shapes, skipped files."""
    ds = _check(ds)
    counts = ds.counts()
    return {
        "class_names": ds.class_names or [],
        "counts": [int(v) for v in counts.values()],
        "num_files": ds.num_files,
        "batches": len(ds),
        "batch_size": ds.batch_size,
        "image_shape": list(ds.image_shape),
        "label_mode": ds.label_mode,
        "ignored": len(ds._index.ignored),
        "bad_files": [p for p, _ in ds.bad_files],
    }


def dataset_batch(ds: Any) -> dict[str, Any]:
    """The first batch of one pass, as NumPy arrays (images, and labels when the dataset has them)."""
    ds = _check(ds)
    first = next(iter(ds.take(1)))
    images, labels = first if isinstance(first, tuple) else (first, None)
    out = {"images": images.numpy()}
    if labels is not None:
        out["labels"] = labels.numpy()
    return out


def _history(history: Any, validation_freq: Any = 1) -> dict[str, Any]:
    """A History as plain values, in the shape ``pydlr.api_r.fit`` returns (R's .new_history reads it).

    With ``validation_freq`` the ``val_*`` lists are shorter than the epochs: they are padded with NaN
    (NA in R) at the epochs that were not validated, so R's data.frame of the history lines up."""
    from pydlr.api_r import _plain

    d = history.to_dict()
    epochs = [int(e) + 1 for e in d["epoch"]]
    metrics = {}
    for k, vals in d["history"].items():
        vals = [float(v) for v in vals]
        if len(vals) < len(epochs):
            ran = [e for e in epochs if (e in validation_freq if isinstance(validation_freq, (list, tuple))
                                         else e % int(validation_freq) == 0)]
            at = dict(zip(ran[-len(vals):], vals, strict=False)) if vals else {}
            vals = [at.get(e, float("nan")) for e in epochs]
        metrics[str(k)] = vals
    return {"metrics": metrics, "epoch": epochs, "params": _plain(dict(d.get("params") or {}))}


def fit_dataset(model: Any, dataset: Any, validation_data: Any = None, augment: Any = None,
                class_weight: Any = None, dynamic: bool = False, **kwargs: Any) -> dict[str, Any]:
    """``model.fit(dataset, ...)`` with R's arguments; returns the history as `pydlr.api_r.fit` does."""
    from pydlr.api_r import _augment

    _check(dataset)
    if validation_data is not None:
        _check(validation_data)
    if class_weight is not None:
        kwargs["class_weight"] = {int(k): float(v) for k, v in class_weight.items()}
    history = model.fit(dataset, validation_data=validation_data, dynamic_progress=bool(dynamic),
                        augment=None if augment is None else _augment(augment), **kwargs)
    return _history(history, kwargs.get("validation_freq", 1))


def evaluate_dataset(model: Any, dataset: Any) -> dict[str, float]:
    """Loss and metrics over one pass of ``dataset``."""
    result = model.evaluate(_check(dataset), return_dict=True)
    return {str(k): float(v) for k, v in dict(result).items()}


def predict_dataset(model: Any, dataset: Any, classes: bool = False) -> Any:
    """Outputs (or classes) for the dataset's files in ``file_paths`` order, as `pydlr.api_r.predict`."""
    import numpy as np

    ds = _check(dataset)
    if classes:
        return np.ascontiguousarray(model.predict_classes(ds), dtype=np.int32)
    return np.ascontiguousarray(model.predict(ds))
