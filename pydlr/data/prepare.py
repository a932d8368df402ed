"""Preparing the data of fit / evaluate / predict once, with every check done before any work starts.

- x: a contiguous float32 tensor, checked against the model's input shape by the model's own
  ``conform_input`` (which also applies the one-channel rule: (N, H, W) for an (H, W, 1) model).
- The output shape comes from the model's shape bookkeeping (``output_shape`` once built, else
  ``compute_output_shape``), not from running data through it; plain torch modules have none, and then
  the checks that need it are skipped.
- y: converted for the loss's kind and checked against the output shape (class range, one-hot width,
  the shape of binary and regression targets), so a loss that does not fit the model fails here with an
  InputError naming the fix, not inside torch.
- Sample weights (``sample_weight`` times the ``class_weight`` of each sample's class).
- ``validation_split``: the last fraction, before shuffling (Keras' rule), with a warning when the
  validation part holds classes the training part lacks (data sorted by class).

The loss is taken by its ``name`` and ``kind`` ("sparse", "categorical", "binary", "regression"), so this
module needs nothing of pydlr.train.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pydlr.data.arrays import (
    as_x_tensor,
    as_y_tensor,
    check_lengths,
    check_x_values,
    rows_as_float32,
)
from pydlr.data.scale import data_scale, other_scale, warn_other_scale
from pydlr.errors import InputError

__all__ = ["Prepared", "FitData", "ArrayRows", "prepare_x", "prepare_x_rows", "output_shape", "check_loss_fits_model",
           "prepare_data", "prepare_fit_data", "prepare_dataset_fit", "sample_weights", "split_point",
           "with_class_weight"]


@dataclass
class Prepared:
    """Inputs, targets (None for predict) and per-sample weights (None without weights)."""

    x: torch.Tensor | ArrayRows
    y: torch.Tensor | None = None
    w: torch.Tensor | None = None

    def split(self, cut: int) -> tuple[Prepared, Prepared]:
        def part(t, s):  # a TensorList (several inputs or outputs) is cut tensor by tensor
            if t is None:
                return None
            return type(t)(v[s] for v in t) if isinstance(t, list) else t[s]

        head, tail = slice(None, cut), slice(cut, None)
        return (Prepared(part(self.x, head), part(self.y, head), part(self.w, head)),
                Prepared(part(self.x, tail), part(self.y, tail), part(self.w, tail)))


@dataclass
class FitData:
    train: Prepared
    valid: Prepared | None


def refuse_several(value: Any, name: str, what: str, where: str) -> None:
    """InputError when a list holds arrays of different shapes where one array is expected: a list meant
    for a model with several inputs (or outputs) given to a model with one (NumPy would make an object
    array of it, and the message would name that instead of the mistake)."""
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        return
    shapes = {tuple(getattr(v, "shape", ())) for v in value if hasattr(v, "shape")}
    if len(shapes) > 1:
        raise InputError(name, f"one array (the model has one {what}; a list of arrays is for a model "
                         f"with several {what}s)", f"a list of {len(value)} arrays of shapes "
                         f"{[tuple(v.shape) for v in value if hasattr(v, 'shape')]}", where=where)


def prepare_x(model: Any, x: Any, where: str, name: str = "x") -> torch.Tensor:
    """x as a float32 tensor that fits the model's input shape (see the module docstring)."""
    refuse_several(x, name, "input", where)
    t = as_x_tensor(x, where=where, name=name)
    conform = getattr(model, "conform_input", None)
    return conform(t, name=name, where=where) if conform is not None else t


# predict() and evaluate() convert a NumPy x whole, like fit(), while its float32 copy takes at most this many
# bytes: the native pass then checks the values as it converts them, so x is read once. Batch by batch, x is
# read twice: the finiteness check (every value, before any work starts) and each batch's conversion. Measured
# on the 10,000 Fashion-MNIST test images, predict() at batch 256 (2026-12-05, 2 threads): row-major float64
# 154.0 ms batch by batch, 148.6 whole; R's column-major order 157.1 and 146.6. Past this size the copy would
# add too much to the memory a large array already takes, and x goes batch by batch.
WHOLE_CONVERSION_BYTES = 512 * 2**20


class ArrayRows:
    """A checked NumPy array of inputs that becomes float32 batch by batch (predict and evaluate on arrays
    whose float32 copy would pass ``WHOLE_CONVERSION_BYTES``).

    One batch at a time, the conversion (R's column-major order included) reads data that the forward pass
    then finds in the cache, and a row-major float32 array is not copied at all. ``shape`` is the conformed
    shape (the model's one-channel rule applied), so the shape checks of ``prepare_data`` work unchanged.
    """

    def __init__(self, arr: np.ndarray, shape: torch.Size):
        self.arr = arr
        self.shape = shape

    def __len__(self) -> int:
        return int(self.shape[0])

    def batch(self, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` as a C-contiguous float32 tensor of the conformed shape."""
        out = rows_as_float32(self.arr, start, stop)
        return out.view((out.shape[0], *self.shape[1:]))


def prepare_x_rows(model: Any, x: Any, where: str, name: str = "x") -> ArrayRows | torch.Tensor:
    """``prepare_x`` for data read in order, batch by batch (predict, evaluate): a numeric NumPy array whose
    float32 copy would pass ``WHOLE_CONVERSION_BYTES`` becomes an :class:`ArrayRows` after the same checks
    (shape, finite values) and no copy; anything else is ``prepare_x``'s float32 tensor."""
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiu" or x.size * 4 <= WHOLE_CONVERSION_BYTES:
        return prepare_x(model, x, where, name)
    check_x_values(x, where, name)
    conform = getattr(model, "conform_input", None)
    shape = torch.empty(x.shape, device="meta")  # the shape checks only: no memory
    if conform is not None:
        shape = conform(shape, name=name, where=where)
    return ArrayRows(x, shape.shape)


def output_shape(model: Any, sample_shape: tuple[int, ...]) -> tuple | None:
    """The model's output shape for one sample (no batch axis), or None when it keeps no shapes (a plain
    torch module) or has several outputs. An input-less Sequential is built for ``sample_shape`` here, as
    Keras builds it from the first batch."""
    shape = getattr(model, "output_shape", None)
    if shape is None and callable(getattr(model, "compute_output_shape", None)):
        shape = (None, *model.compute_output_shape(tuple(sample_shape)))
    if shape is None or isinstance(shape, list):
        return None
    return tuple(shape[1:])


def _final_activation(model: Any) -> str | None:
    if getattr(model, "classifier_activation", None) is not None:
        return model.classifier_activation
    outputs = getattr(model, "outputs", None)
    layers = getattr(model, "layers", None)
    if isinstance(outputs, list) and len(outputs) == 1 and hasattr(outputs[0], "layer"):
        last = outputs[0].layer
    elif layers is not None and len(layers):
        last = layers[-1]
    else:
        return None
    return getattr(last, "activation", None)


def check_loss_fits_model(model: Any, loss: Any, where: str = "compile",
                          out_shape: tuple | None = None) -> None:
    """InputError when the loss cannot fit the model's outputs whatever the labels: a class loss on one
    output unit, or binary_crossentropy on a softmax over several units. Silent while the shape is
    unknown (an unbuilt model is checked again when fit builds it)."""
    if out_shape is None:
        shape = getattr(model, "output_shape", None)
        out_shape = tuple(shape[1:]) if isinstance(shape, tuple) else None
    if not out_shape:
        return
    width = out_shape[-1]
    if loss.kind in ("sparse", "categorical") and width == 1:
        raise InputError("loss", "binary_crossentropy (or a model with one output unit per class) for "
                         "a model with 1 output unit", f"{loss.name} with 1 output unit", where=where)
    if loss.kind == "binary" and width and width > 1 and _final_activation(model) == "softmax":
        raise InputError("loss", f"categorical_crossentropy (one-hot labels) or "
                         f"sparse_categorical_crossentropy (integer labels) for a {width}-unit softmax; "
                         "binary_crossentropy takes independent sigmoid outputs",
                         loss.name, where=where)
    if where.startswith("fit"):
        warn_if_outputs_are_logits(model, loss)


def warn_if_outputs_are_logits(model: Any, loss: Any) -> None:
    """A warning when a probability loss meets a last layer whose outputs are not probabilities: Keras reads
    them as probabilities all the same and trains on nonsense without an error (R has no from_logits to say
    otherwise, so forgetting the softmax is the likely cause there)."""
    final = _final_activation(model)
    if loss.from_logits or final is None or loss.kind not in ("sparse", "categorical", "binary"):
        return
    if final == "linear":
        fix = "sigmoid" if loss.kind == "binary" else "softmax"
        _warn_outputs(f"{loss.name} reads the model's outputs as probabilities, but its last layer has no "
                      f"activation: give it a \"{fix}\" activation (or, in Python, compile with a loss made "
                      "with from_logits=True)")
    elif loss.kind != "binary" and final != "softmax":
        # a sigmoid over the classes (a classic slip): Keras divides the outputs by their sum, or on
        # TensorFlow reads the sigmoid's logits as a softmax's, and pydlr does neither: the losses differ
        _warn_outputs(f"{loss.name} reads the model's outputs as probabilities over the classes, but its last "
                      f"layer's activation is \"{final}\", whose outputs do not sum to 1: give it a \"softmax\" "
                      "activation (for independent yes/no labels, binary_crossentropy with sigmoid)")
    elif loss.kind == "binary" and final == "softmax":
        _warn_outputs(f"{loss.name} on a softmax over one unit: its output is always 1, so the model cannot "
                      "learn; give the last layer a \"sigmoid\" activation")


def _warn_outputs(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=7)


def multiclass_softmax_units(model: Any, out_shape: tuple | None) -> int | None:
    """The number of units of a last softmax layer of 3 or more units (a choice among that many classes),
    else None: the models that 0/1 labels cannot be meant for."""
    width = out_shape[-1] if out_shape and len(out_shape) == 1 else None
    return width if width is not None and width >= 3 and _final_activation(model) == "softmax" else None


def _is_logical(y: Any) -> bool:
    """True/False labels (a bool tensor, array, Series or list), one per sample (a bool one-hot matrix is a
    legitimate categorical target)."""
    if isinstance(y, torch.Tensor):
        kind, shape = y.dtype == torch.bool, tuple(y.shape)
    else:
        try:
            arr = np.asarray(y)
        except (TypeError, ValueError):
            return False
        kind, shape = arr.dtype == np.bool_, arr.shape
    return kind and (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1))


def refuse_logical_labels(model: Any, y: Any, out_shape: tuple | None, where: str, name: str = "y") -> None:
    """InputError for True/False labels given to a 3-or-more-class softmax: taken as classes 0 and 1 they
    would train a model whose other classes never occur, almost surely not what was meant (Keras takes them
    silently)."""
    units = multiclass_softmax_units(model, out_shape)
    if units is not None and _is_logical(y):
        raise InputError(name, f"class indices 0 to {units - 1} (integers) for a model whose last layer is a "
                         f"{units}-unit softmax; for two classes end the model with Dense(1, "
                         "activation='sigmoid') and loss='binary_crossentropy'",
                         y, where=where)


def _check_target_shape(t: torch.Tensor, out_shape: tuple, loss: Any, name: str, where: str) -> None:
    """Binary and regression targets must have the outputs' shape (the loss compares them elementwise)."""
    got = tuple(t.shape[1:])
    if len(got) == len(out_shape) and all(o is None or o == g for o, g in zip(out_shape, got, strict=True)):
        return
    hint = ""
    integral = not t.is_floating_point() or torch.equal(t, t.round())
    if t.dim() == 1 and len(out_shape) == 1 and integral:
        hint = (f"; y looks like class labels: with {out_shape[0]} outputs use "
                "loss='sparse_categorical_crossentropy'")
    want = ", ".join(str(s) for s in ("n", *out_shape))
    raise InputError(name, f"targets of shape ({want}), the shape of the model's outputs, for "
                     f"{loss.name}{hint}", f"targets of shape {tuple(t.shape)}", where=where)


def prepare_y(y: Any, loss: Any, out_shape: tuple | None, where: str, name: str = "y") -> torch.Tensor:
    """y converted for the loss and checked against the output shape (see the module docstring)."""
    if y is None:
        raise InputError(name, "labels (y) for training", None, where=where)
    refuse_several(y, name, "output", where)
    n_out = out_shape[-1] if out_shape else None
    t = as_y_tensor(y, loss.kind, n_out, where=where, name=name)
    if loss.kind == "custom" and t.is_floating_point() and t.dim() == 1 and out_shape == (1,):
        t = t.unsqueeze(1)  # as Keras, y_true gets y_pred's rank for a one-unit output
    if loss.kind in ("binary", "regression"):
        if t.dim() == 1 and out_shape == (1,):
            t = t.unsqueeze(1)
        if out_shape is not None:
            _check_target_shape(t, out_shape, loss, name, where)
    return t


def _classes(y: torch.Tensor, kind: str) -> torch.Tensor | None:
    if kind == "sparse":
        return y
    if kind == "categorical":
        return y.argmax(-1)
    if kind == "binary" and y.reshape(len(y), -1).shape[1] == 1:
        return y.reshape(-1).round().to(torch.int64)
    return None


def check_class_weight(class_weight: Any, kind: str | None, where: str, n_classes: int | None = None) -> None:
    """``class_weight`` is a non-empty dict {class: weight} for a classification loss, its classes whole
    numbers 0..n_classes - 1 (when the model's output says how many) and its weights finite and >= 0 (checked
    before any batch is read when the batches come later, from a dataset)."""
    if not isinstance(class_weight, dict) or not class_weight:
        raise InputError("class_weight", "a dict {class: weight}", class_weight, where=where)
    if kind not in ("sparse", "categorical", "binary"):
        raise InputError("class_weight", "used only with a classification loss", class_weight, where=where)
    top = n_classes - 1 if n_classes else None
    for key, value in class_weight.items():
        whole = not isinstance(key, bool) and isinstance(key, (int, np.integer))
        if not whole or key < 0 or (top is not None and key > top):
            classes = f"0..{top}" if top is not None else "0, 1, ..."
            raise InputError("class_weight", f"a dict keyed by class index {classes} (one of the model's classes)",
                             f"the key {key!r}", where=where)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
                math.isfinite(float(value)) and value >= 0):
            raise InputError("class_weight", "finite weights >= 0", f"{value!r} for class {key}",
                             where=where)


def sample_weights(y: torch.Tensor, kind: str, class_weight: Any, sample_weight: Any,
                   where: str, n_classes: int | None = None) -> torch.Tensor | None:
    """Per-sample loss weights: ``sample_weight`` times the weight of each sample's class (``n_classes``: the
    model's, where known, for `check_class_weight`)."""
    w = None
    if class_weight is not None:
        check_class_weight(class_weight, kind, where, n_classes)
        classes = _classes(y, kind)
        if classes is None:
            raise InputError("class_weight", "used only with a classification loss", class_weight,
                             where=where)
        classes = classes.to(torch.int64)
        n_cls = max(int(classes.max()) + 1, max(int(k) for k in class_weight) + 1)
        table = torch.ones(n_cls)
        for k, v in class_weight.items():
            table[int(k)] = float(v)
        w = table[classes]
    if sample_weight is not None:
        sw = as_x_tensor(sample_weight, where=where, name="sample_weight").reshape(-1)
        if sw.shape[0] != y.shape[0]:
            raise InputError("sample_weight", f"{y.shape[0]} weights", sw, where=where)
        w = sw if w is None else w * sw
    return w


def with_class_weight(data: Prepared, kind: str, class_weight: Any, where: str,
                      n_classes: int | None = None) -> Prepared:
    """``data`` with each sample's weight multiplied by its class's ``class_weight``. fit applies it after
    splitting off ``validation_split``: Keras weighs only the training part by class, and the validation
    loss by ``sample_weight`` alone."""
    if class_weight is None:
        return data
    if isinstance(data.y, list):  # a TensorList: several outputs
        raise InputError("class_weight", "None for a model with several outputs (Keras' rule: weigh "
                         "the samples with sample_weight)", class_weight, where=where)
    by_class = sample_weights(data.y, kind, class_weight, None, where, n_classes)
    return Prepared(data.x, data.y, by_class if data.w is None else data.w * by_class)


def prepare_data(model: Any, loss: Any, x: Any, y: Any, sample_weight: Any = None,
                 class_weight: Any = None, where: str = "evaluate",
                 names: tuple[str, str] = ("x", "y"), in_order: bool = False) -> tuple[Prepared, tuple | None]:
    """x, y and weights checked and converted; also returns the model's output shape. ``in_order``
    (evaluate: batches read in order, no shuffle): a NumPy x stays as it is, an :class:`ArrayRows`."""
    xt = prepare_x_rows(model, x, where, names[0]) if in_order else prepare_x(model, x, where, names[0])
    out_shape = output_shape(model, tuple(xt.shape[1:]))
    check_loss_fits_model(model, loss, where, out_shape)
    refuse_logical_labels(model, y, out_shape, where, names[1])
    yt = prepare_y(y, loss, out_shape, where, names[1])
    check_lengths(xt, yt, where, names[1])
    weights = sample_weights(yt, loss.kind, class_weight, sample_weight, where, _n_classes(loss.kind, out_shape))
    return Prepared(xt, yt, weights), out_shape


def _n_classes(kind: str, out_shape: tuple | None) -> int | None:
    """How many classes the model's output gives (None where it does not say)."""
    if not out_shape or not isinstance(out_shape, tuple) or not isinstance(out_shape[-1], int):
        return None
    if kind == "binary":
        return 2 if out_shape[-1] == 1 else out_shape[-1]
    return out_shape[-1] if kind in ("sparse", "categorical") else None


def split_point(n: int, validation_split: float, where: str) -> int:
    """How many of n samples train under ``validation_split``: Keras' ``floor(n * (1 - split))``, so the
    validation part is the remainder (Keras gives it the rounding, 101 of 1001 samples at 0.1, where
    ``floor(n * split)`` would give 100 and train on one more sample than Keras)."""
    cut = int(math.floor(n * (1.0 - validation_split)))
    if cut < 1 or cut >= n:
        raise InputError("validation_split", "a fraction leaving samples on both sides",
                         validation_split, where=where)
    return cut


def prepare_fit_data(model: Any, loss: Any, x: Any, y: Any, sample_weight: Any = None,
                     class_weight: Any = None, validation_split: float = 0.0,
                     validation_data: Any = None, where: str = "fit") -> FitData:
    """Training and validation data for fit (``validation_data`` wins over ``validation_split``)."""
    split = validation_data is None and validation_split
    # with validation_split the class weights wait for the split: they weigh the training part only
    train, out_shape = prepare_data(model, loss, x, y, sample_weight, None if split else class_weight, where)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise InputError("validation_data", "a tuple (x_val, y_val) or (x_val, y_val, weights)",
                             validation_data, where=where)
        weights = validation_data[2] if len(validation_data) == 3 else None
        valid, _ = prepare_data(model, loss, validation_data[0], validation_data[1], weights, None,
                                where, ("validation_data[0]", "validation_data[1]"))
        _warn_other_validation_scale(x, validation_data[0])
        return FitData(train, valid)
    if not validation_split:
        return FitData(train, None)
    train, valid = train.split(split_point(train.x.shape[0], validation_split, where))
    _warn_unseen_classes(train.y, valid.y, loss.kind, validation_split)
    return FitData(with_class_weight(train, loss.kind, class_weight, where, _n_classes(loss.kind, out_shape)),
                   valid)


def _warn_other_validation_scale(x: Any, x_val: Any) -> None:
    """The `InputScaleWarning` predict() gives, for validation images on another scale than the training
    images (x / 255 for one, 0-255 for the other): val_loss would measure other inputs than meant."""
    seen, trained = data_scale(x_val), data_scale(x)
    if other_scale(seen, trained):
        warn_other_scale(seen, trained, name="validation_data[0]")


def _warn_unseen_classes(y_train: torch.Tensor, y_valid: torch.Tensor, kind: str,
                         fraction: float) -> None:
    """Warn when the validation part holds classes the training part never shows (sorted data)."""
    train, valid = _classes(y_train, kind), _classes(y_valid, kind)
    if train is None:
        return
    unseen = sorted(set(valid.unique().tolist()) - set(train.unique().tolist()))
    if not unseen:
        return
    shown = ", ".join(str(int(c)) for c in unseen[:10]) + (", ..." if len(unseen) > 10 else "")
    warnings.warn(
        f"validation_split={fraction} holds out the last {fraction:.0%} of the samples (Keras' rule, "
        f"taken before shuffling), and {len(unseen)} class(es) in it ({shown}) never occur in the "
        "training part: the data look sorted by class, so the validation scores measure classes the "
        "model never saw. Shuffle x and y together first (Python: idx = np.random.permutation(len(x)); "
        "x, y = x[idx], y[idx]; R: idx <- sample(dim(x)[1])), or pass validation_data.",
        UserWarning, stacklevel=4,
    )


def prepare_dataset_fit(model: Any, loss: Any, ds: Any, y: Any, validation_split: float = 0.0,
                        validation_data: Any = None, where: str = "fit", class_weight: Any = None,
                        **unused: Any) -> tuple | None:
    """The checks of fit / evaluate (predict: ``loss`` None) on an image dataset, before any file is read:
    no y (the labels come with the dataset), no batch_size / sample_weight (``unused``: they belong to
    arrays, as in keras), ``class_weight`` (weighs each batch by its labels, as keras does for a dataset)
    for a classification loss, no validation_split (the dataset's own split), images that fit
    the model's input, labels that fit the loss and the outputs, and a validation dataset (for evaluate,
    the dataset) with the classes of the training dataset. Returns the model's output shape (building an input-less Sequential for it)."""
    from pydlr.data.image_dataset import ImageDataset, check_dataset, check_same_classes

    if y is not None:
        raise InputError("y", "None when x is a dataset (its labels are used)", y, where=where)
    for name, value in unused.items():
        if value is not None:
            raise InputError(name, "None when x is a dataset (batches come from the dataset: set "
                             "batch_size in image_dataset_from_directory)", value, where=where)
    if validation_split:
        raise InputError("validation_split", "0 when x is a dataset (make the validation dataset with "
                         "image_dataset_from_directory(..., subset='validation'))", validation_split,
                         where=where)
    spec = getattr(model, "input_spec", None)
    check_dataset(ds, tuple(spec) if spec is not None else None, None, None, where)
    out_shape = output_shape(model, ds.image_shape)
    if loss is None:
        return out_shape
    check_loss_fits_model(model, loss, where, out_shape)
    n_out = out_shape[-1] if out_shape else None
    check_dataset(ds, None, loss.kind, n_out, where)
    if class_weight is not None:
        check_class_weight(class_weight, loss.kind, where)
    if where != "fit":  # evaluate: the labels must mean what they meant in the model's last fit
        check_same_classes(getattr(model, "trained_class_names", None), ds, where, name="x")
    if validation_data is not None:
        if not isinstance(validation_data, ImageDataset):
            raise InputError("validation_data", "an image dataset when x is one (from "
                             "image_dataset_from_directory(..., subset='validation'))", validation_data,
                             where=where)
        check_dataset(validation_data, tuple(spec) if spec is not None else None, loss.kind, n_out, where,
                      name="validation_data")
        check_same_classes(ds.class_names, validation_data, where)
    return out_shape
