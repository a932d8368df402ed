"""The narrow, stable Python API that the R package calls.

R reaches nothing else in pydlr. Arguments are plain (ints, floats, strings, lists, dicts, arrays handed over
by the R bridge) and results are plain (dicts, lists, NumPy arrays), so that the R side stays a thin typed
shell: it validates, converts at the border, and formats. Model handles are the only opaque objects that
cross; R keeps them inside its `pydlr_model` objects and passes them back here.

Every function validates what R cannot know (layer names, optimizer names) and raises
:class:`pydlr.errors.InputError` / :class:`pydlr.errors.NotSupportedError`, which the R side re-signals as
R conditions of class ``pydlr_input_error`` / ``pydlr_not_supported_error``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from pydlr.errors import InputError, NotSupportedError, PydlrError, TrainingError

# Layer classes R may build, by their Keras names (the R verbs map onto these one to one).
LAYER_TYPES: tuple[str, ...] = (
    "Conv2D",
    "DepthwiseConv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Flatten",
    "Dense",
    "Dropout",
    "BatchNormalization",
    "Activation",
    "Rescaling",
)

# Keras callback names R may build, with the pydlr class that implements each.
CALLBACK_TYPES: dict[str, str] = {
    "early_stopping": "EarlyStopping",
    "model_checkpoint": "ModelCheckpoint",
    "csv_logger": "CSVLogger",
    "lambda": "LambdaCallback",
    "learning_rate_scheduler": "LearningRateScheduler",
}

LAMBDA_HOOKS: tuple[str, ...] = (
    "on_epoch_begin",
    "on_epoch_end",
    "on_batch_begin",
    "on_batch_end",
    "on_train_begin",
    "on_train_end",
)

DATASETS: dict[str, str] = {"fashion_mnist": "load_fashion_mnist", "mnist": "load_mnist"}

# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def _module(name: str) -> Any:
    """Import a pydlr submodule by name (late, so `import pydlr.api_r` is cheap and cycle-free)."""
    return importlib.import_module(f"pydlr.{name}")


def _int_tuple(value: Any) -> tuple[int, ...]:
    """R sends integer vectors as an int (length 1) or a list; shapes are tuples."""
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return (int(value),)


def _ints(value: Any) -> int | tuple[int, ...]:
    """Keras' "an int or a tuple of ints" arguments (kernel_size, strides, ...) from R's integers."""
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return int(value)


def _shape(value: Any) -> tuple[int, ...] | None:
    return None if value is None else _int_tuple(value)


def _plain(value: Any) -> Any:
    """Turn NumPy / torch scalars and containers into plain Python values for R."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


def _as_array(x: Any, argument: str) -> Any:
    """Data arrive as NumPy arrays or torch tensors made by the R bridge (zero-copy views); pass them on."""
    if x is None:
        return None
    if hasattr(x, "shape"):
        return x
    raise InputError(argument, "an array or tensor handed over by the R bridge", x)


def _check_model(model: Any) -> None:
    if not hasattr(model, "layers") or not hasattr(model, "forward"):
        raise InputError("model", "a pydlr model", model)


# --------------------------------------------------------------------------------------------------
# Models and layers
# --------------------------------------------------------------------------------------------------


def new_sequential(input_shape: Sequence[int] | int | None = None, name: str | None = None) -> Any:
    """A new, empty :class:`pydlr.Sequential` (the trainable engine model).

    Parameters
    ----------
    input_shape
        Shape of one sample without the batch axis, channels-last, e.g. ``[28, 28, 1]``; or ``None``.
    name
        Model name shown by ``summary()``.
    """
    return _sequential_class()(input_shape=_shape(input_shape), name=name)


def _sequential_class() -> type:
    """The trainable Sequential (``pydlr.engine.Sequential``, which is ``pydlr.Sequential``)."""
    return _module("engine").Sequential


def add_layer(model: Any, layer_type: str, config: Mapping[str, Any] | None = None) -> Any:
    """Build a layer from its Keras class name and Keras arguments and append it to ``model``.

    ``config`` may contain ``input_shape``: it sets the model's input shape (Keras 2 style, as keras3's R
    verbs allow on the first layer).
    """
    _check_model(model)
    if layer_type not in LAYER_TYPES:
        raise NotSupportedError(
            f"layer type {layer_type!r} is not in pydlr's supported subset; "
            f"pydlr offers: {', '.join(LAYER_TYPES)}."
        )
    cfg = dict(config or {})
    for key in ("kernel_size", "strides", "pool_size", "dilation_rate"):
        if cfg.get(key) is not None:
            cfg[key] = _ints(cfg[key])
    if cfg.get("input_shape") is not None:
        cfg["input_shape"] = _int_tuple(cfg["input_shape"])
    if cfg.get("input_shape") is not None and len(model.layers) > 0:
        raise InputError("input_shape", "given only on the first layer of a model", cfg["input_shape"],
                         where=layer_type)
    layer = getattr(_module("layers"), layer_type)(**cfg)
    model.add(layer)
    return model


def summary_text(model: Any) -> str:
    """Keras' summary table (plus weight bytes and saved-file size) as one string."""
    _check_model(model)
    return str(model.summary_string())


def summary_table(model: Any) -> dict[str, list[Any]]:
    """The rows of the summary as columns: layer, type, output_shape (Keras' text), params, trainable (bool)."""
    _check_model(model)
    rows = model.summary_table()
    keys = ("layer", "type", "output_shape", "params", "trainable")
    return {key: [_plain(row[key]) for row in rows] for key in keys}


def count_params(model: Any) -> int:
    """Total number of parameters (trainable and not)."""
    _check_model(model)
    return int(model.count_params())


def model_info(model: Any) -> dict[str, Any]:
    """What R's print method shows: name, class, number of layers, built/compiled state, parameters."""
    _check_model(model)
    built = bool(getattr(model, "built", False))
    info: dict[str, Any] = {
        "name": str(getattr(model, "name", None) or type(model).__name__),
        "class": type(model).__name__,
        "n_layers": len(model.layers),
        "built": built,
        "compiled": bool(getattr(model, "compiled", False)),
        "params": int(model.count_params()) if built else None,
        "input_shape": _input_shape(model),
    }
    return info


def _input_shape(model: Any) -> list[int] | None:
    """The model's input shape without the batch axis, when known."""
    shape = getattr(model, "input_spec", None)
    if shape is None:
        return None
    shape = [int(v) for v in shape if v is not None]
    return shape or None


def get_weights(model: Any) -> list[np.ndarray]:
    """All parameters and buffers as NumPy arrays, in state-dict order (for tests and inspection)."""
    _check_model(model)
    return [t.detach().cpu().numpy().copy() for t in model.state_dict().values()]


def weight_names(model: Any) -> list[str]:
    """State-dict keys, in the order of :func:`get_weights`."""
    _check_model(model)
    return list(model.state_dict().keys())


# --------------------------------------------------------------------------------------------------
# Compile, fit, evaluate, predict
# --------------------------------------------------------------------------------------------------


def _optimizer(spec: str | Mapping[str, Any]) -> Any:
    """An optimizer from a name ("adam") or a dict {"name": ..., "args": {...}} made by optimizer_*()."""
    if isinstance(spec, str):
        return spec
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise InputError("optimizer", "a name such as 'adam' or an optimizer_*() object", spec)
    name = str(spec["name"])
    args = {k: v for k, v in dict(spec.get("args") or {}).items() if v is not None}
    optimizers = _module("train.optimizers")
    classes = {"adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "sgd": "SGD"}
    if name not in classes:
        raise NotSupportedError(f"optimizer {name!r} is not supported; pydlr offers {', '.join(classes)}.")
    return getattr(optimizers, classes[name])(**args)


def compile_model(
    model: Any,
    optimizer: str | Mapping[str, Any] = "rmsprop",
    loss: str | None = None,
    metrics: Sequence[str] | str | None = None,
) -> Any:
    """Configure ``model`` for training in place (Keras' ``compile``); returns the same model."""
    _check_model(model)
    if loss is None:
        raise InputError("loss", "a loss name such as 'categorical_crossentropy'", loss, where="compile")
    if isinstance(metrics, str):
        metrics = [metrics]
    model.compile(optimizer=_optimizer(optimizer), loss=loss, metrics=list(metrics or []))
    return model


def _logs(logs: Mapping[str, Any] | None) -> dict[str, float]:
    """Keras logs as plain floats (R sees a named list of numbers)."""
    return {str(k): float(v) for k, v in (logs or {}).items() if _is_number(v)}


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def fit(
    model: Any,
    x: Any,
    y: Any = None,
    batch_size: int | None = None,
    epochs: int = 1,
    steps_per_epoch: int | None = None,
    validation_split: float = 0.0,
    validation_data: Sequence[Any] | None = None,
    shuffle: bool = True,
    class_weight: Mapping[str, float] | None = None,
    initial_epoch: int = 0,
    callbacks: Sequence[Any] | None = None,
    verbose: int = 0,
    seed: int | None = None,
    resume: str | None = None,
    device: str = "auto",
    print_fn: Callable[..., Any] | None = None,
    dynamic: bool = False,
    augment: Mapping[str, Any] | None = None,
    workers: int = 0,
) -> dict[str, Any]:
    """Train ``model`` in place; returns the history as plain values.

    With ``print_fn`` (an R function ``(text, end)``), progress at ``verbose`` is printed through it (the
    R console), updating one line in place when ``dynamic`` (console, RStudio), else one line per epoch.

    Returns
    -------
    dict
        ``{"metrics": {name: [values per epoch]}, "epoch": [1-based epochs], "params": {...}}``.
    """
    _check_model(model)
    x = _as_array(x, "x")
    y = _as_array(y, "y")
    if validation_data is not None:
        validation_data = tuple(_as_array(v, "validation_data") for v in validation_data)
    if class_weight is not None:
        class_weight = {int(k): float(v) for k, v in class_weight.items()}
    kwargs: dict[str, Any] = {
        "batch_size": 32 if batch_size is None else int(batch_size),
        "epochs": int(epochs),
        "steps_per_epoch": None if steps_per_epoch is None else int(steps_per_epoch),
        "validation_split": float(validation_split),
        "validation_data": validation_data,
        "shuffle": bool(shuffle),
        "class_weight": class_weight,
        "initial_epoch": int(initial_epoch),
        "callbacks": list(callbacks or []),
        "verbose": int(verbose),
        "seed": None if seed is None else int(seed),
        "device": device,
        "resume": resume,
        "print_fn": print_fn,
        "dynamic_progress": bool(dynamic),
        "augment": None if augment is None else _augment(augment),
        "workers": int(workers),
    }
    history = model.fit(x, y, **kwargs).to_dict()
    return {
        "metrics": {str(k): [float(v) for v in vals] for k, vals in history["history"].items()},
        "epoch": [int(e) + 1 for e in history["epoch"]],
        "params": _plain(dict(history.get("params") or {})),
    }


def _augment(settings: Mapping[str, Any]) -> Any:
    """An ``Augment`` from R's ``augmentation()`` settings (Augment validates the values)."""
    from pydlr.data import Augment

    args = dict(settings)
    if "shift" in args and isinstance(args["shift"], (list, tuple)):
        args["shift"] = tuple(float(v) for v in args["shift"])
    return Augment(**args)


def evaluate(model: Any, x: Any, y: Any, batch_size: int | None = None) -> dict[str, float]:
    """Loss and metrics on (x, y) as a dict, in the order Keras reports them."""
    _check_model(model)
    x = _as_array(x, "x")
    y = _as_array(y, "y")
    kwargs: dict[str, Any] = {"return_dict": True}
    if batch_size is not None:
        kwargs["batch_size"] = int(batch_size)
    result = model.evaluate(x, y, **kwargs)
    return {str(k): float(v) for k, v in dict(result).items()}


def predict(model: Any, x: Any, batch_size: int | None = None, classes: bool = False) -> np.ndarray:
    """Model outputs (probabilities for a softmax head) as a NumPy array, one row per sample.

    With ``classes=True``: the predicted class per sample (int32, 0-based as Keras' labels): the argmax
    of the outputs, or output > 0.5 for a single sigmoid unit.
    """
    _check_model(model)
    x = _as_array(x, "x")
    kwargs: dict[str, Any] = {}
    if batch_size is not None:
        kwargs["batch_size"] = int(batch_size)
    if classes:
        return np.ascontiguousarray(model.predict_classes(x, **kwargs), dtype=np.int32)
    return np.ascontiguousarray(model.predict(x, **kwargs))


# --------------------------------------------------------------------------------------------------
# Callbacks
# --------------------------------------------------------------------------------------------------


def make_callback(kind: str, config: Mapping[str, Any] | None = None) -> Any:
    """A pydlr callback from its Keras name (see ``CALLBACK_TYPES``) and Keras arguments.

    For ``"lambda"``, the hooks are R functions; they receive Keras' arguments (``epoch``/``batch`` 0-based
    as in Keras, ``logs`` a dict of floats that R sees as a named list).
    """
    if kind not in CALLBACK_TYPES:
        raise NotSupportedError(
            f"callback {kind!r} is not supported; pydlr offers {', '.join(CALLBACK_TYPES)}."
        )
    cfg = {k: v for k, v in dict(config or {}).items() if v is not None}
    cls = getattr(_module("train"), CALLBACK_TYPES[kind])
    if kind == "learning_rate_scheduler":
        schedule = cfg.get("schedule")
        if not callable(schedule):
            raise InputError("schedule", "a function (epoch, lr) -> lr", schedule,
                             where="callback_learning_rate_scheduler")
        cfg["schedule"] = _wrap_schedule(schedule)
    if kind == "lambda":
        unknown = sorted(set(cfg) - set(LAMBDA_HOOKS))
        if unknown:
            raise InputError("...", f"hooks among {', '.join(LAMBDA_HOOKS)}", unknown, where="callback_lambda")
        cfg = {name: _wrap_hook(fn) for name, fn in cfg.items()}
    return cls(**cfg)


def _wrap_schedule(fn: Callable[..., Any]) -> Callable[[int, float], float]:
    """Keras' ``schedule(epoch, lr)`` from an R function; the result as a Python float."""

    def schedule(epoch: int, lr: float) -> float:
        value = fn(int(epoch), float(lr))
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = value[0]
        return float(value)

    return schedule


def _wrap_hook(fn: Callable[..., Any]) -> Callable[..., None]:
    """Call an R function with Keras' (index, logs) where logs are plain floats."""

    def hook(*args: Any, **kwargs: Any) -> None:
        logs = kwargs.pop("logs", None)
        if args and isinstance(args[-1], Mapping):
            *args, logs = args
        fn(*[int(a) for a in args], _logs(logs))

    return hook


# --------------------------------------------------------------------------------------------------
# Save / load, data sets, utilities
# --------------------------------------------------------------------------------------------------


def save_model(model: Any, path: str, include_optimizer: bool = True) -> str:
    """Save architecture (JSON) and weights (safetensors); returns the path written."""
    _check_model(model)
    _module("io").save_model(model, str(path), include_optimizer=bool(include_optimizer), overwrite=True)
    return str(path)


def load_model(path: str, compile: bool = True) -> Any:
    """Load a model saved by :func:`save_model` from R or by ``pydlr.io.save_model`` from Python.

    A plain ``pydlr.models.Sequential`` saved from Python comes back as the trainable
    ``pydlr.engine.Sequential`` (same architecture and weights), so R can fit it.
    """
    io = _module("io")
    model = io.load_model(str(path), compile=bool(compile))
    if not hasattr(model, "fit") and isinstance(model, _module("models").Sequential):
        model = io.load_model(str(path), model_class=_sequential_class(), compile=bool(compile))
    return model


def save_weights(model: Any, path: str) -> str:
    """Write only the weights (safetensors, torch key names) of ``model``; returns the path."""
    _check_model(model)
    _module("io").save_weights(model, str(path))
    return str(path)


def load_weights(model: Any, path: str) -> Any:
    """Copy a weights file into ``model`` (same architecture), in place; returns the model."""
    _check_model(model)
    _module("io").load_weights(model, str(path))
    return model


def load_dataset(name: str) -> dict[str, np.ndarray]:
    """A packaged data set as int32 arrays (R has no uint8): x_train (n, 28, 28), y_train (n,), ...."""
    if name not in DATASETS:
        raise InputError("name", f"one of {', '.join(DATASETS)}", name, where="load_dataset")
    (x_train, y_train), (x_test, y_test) = getattr(_module("data"), DATASETS[name])()
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return {k: np.ascontiguousarray(np.asarray(v), dtype=np.int32) for k, v in arrays.items()}


def set_random_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (Keras' ``set_random_seed``)."""
    _module("utils").set_random_seed(int(seed))


def error_info(exc: BaseException) -> dict[str, Any]:
    """What R needs to re-signal a Python exception as an R condition (no traceback)."""
    kind = "error"
    if isinstance(exc, InputError):
        kind = "input_error"
    elif isinstance(exc, NotSupportedError):
        kind = "not_supported_error"
    elif isinstance(exc, TrainingError):
        kind = "training_error"
    elif isinstance(exc, PydlrError):
        kind = "error"
    info: dict[str, Any] = {"kind": kind, "type": type(exc).__name__, "message": str(exc)}
    for attr in ("argument", "expected", "where"):
        value = getattr(exc, attr, None)
        if value is not None:
            info[attr] = str(value)
    return info
