"""Training from R: ``compile``, ``fit``, ``evaluate``, ``predict``, ``predict_classes`` and Keras callbacks.

Arguments arrive under the engine's own names and are forwarded as they are: the engine
(``pydlr.engine.TrainingMixin``) holds the one definition of their defaults (batch size, ``verbose="auto"``)
and checks their meaning; R has checked their types. Only R's missing types are translated here (an
optimizer spec as a dict, augmentation settings as a dict, R functions whose logs must be plain numbers).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from pydlr import train
from pydlr.api_r._convert import c_array, history, strings
from pydlr.api_r.errors import in_r_syntax
from pydlr.data.augment import Augment
from pydlr.data.columns import on_columns, validation_on_columns
from pydlr.data.prepare import multiclass_softmax_units, output_shape
from pydlr.data.scale import InputScaleWarning
from pydlr.errors import InputError, NotSupportedError
from pydlr.train import optimizers
from pydlr.train.events import Callback as LearnerCallback


def optimizer(spec: Any) -> Any:
    """A name ("adam") as it is, or R's ``optimizer_*()`` ({"name": ..., "args": {...}}) as the core's spec
    (``pydlr.train.optimizers.get(name, **args)``)."""
    if isinstance(spec, Mapping):
        return optimizers.get(str(spec.get("name")), **dict(spec.get("args") or {}))
    return spec


optimizer_spec = optimizer  # compile's argument `optimizer` shadows the function inside compile


def compile(model: Any, optimizer: Any = "rmsprop", loss: Any = None,  # noqa: A001 (Keras' name)
            metrics: Sequence[Any] | None = None) -> Any:
    """``model.compile(optimizer, loss, metrics)``; returns the model. ``metrics`` holds names and R's
    ``metric_*()`` objects as ``{"class_name", "config"}`` (``pydlr.metrics.<class_name>(**config)``)."""
    model.compile(optimizer=optimizer_spec(optimizer), loss=loss, metrics=list(metrics or []))
    return model


def fit(model: Any, x: Any, y: Any = None, class_names: Any = None, column_names: Any = None,
        validation_column_names: Any = None, **kwargs: Any) -> dict[str, Any]:
    """``model.fit(x, y, **kwargs)``; returns the history as plain values (see ``_convert.history``).
    ``class_names`` (R's factor levels of ``y``) are the model's classes while it trains (`_DataNames`);
    ``column_names`` the names of x's columns (a data.frame's, which crosses as a plain array): the model
    keeps them, and reads the validation data's columns (named ``validation_column_names``) and later
    predict() and evaluate() data by them (`pydlr.data.columns`).

    ``augment`` may come as R's ``augmentation()`` settings (a dict); ``validation_data`` as a list;
    ``distributed`` as R's ``list(nproc_per_node = 2)`` (``fit_distributed``'s arguments, which forwards
    the other fit arguments to every process). Under torchrun, a failed collective (a peer process that
    died) becomes a TrainingError that says so.
    """
    names = _DataNames(class_names, column_names)
    _fit_args(kwargs, names.columns, validation_column_names, "fit")
    distributed = kwargs.pop("distributed", None)
    if isinstance(distributed, Mapping) or distributed is True:
        from pydlr.train.distributed import fit_distributed

        options = dict(distributed) if isinstance(distributed, Mapping) else {}
        out = history(fit_distributed(model, x, y, **options, **kwargs))
        names.name(model)  # the processes trained copies of it: name the model here
        return out
    from pydlr.train.distributed import explain_failure

    kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), names]
    with explain_failure():
        return _history_with_warnings(lambda: model.fit(x, y, **kwargs))


class _DataNames(LearnerCallback):
    """Names the classes of the labels (R's factor levels) and the columns of the inputs (a data.frame's)
    being trained on as the fit starts, so the checkpoints written during it (ModelCheckpoint, order 60)
    keep them, as save_model() does after it. The engine resets both at the start of a fit on plain arrays,
    which is what R's data cross as."""

    order = 0

    def __init__(self, class_names: Any, column_names: Any):
        self.classes, self.columns = strings(class_names), strings(column_names)

    def name(self, model: Any) -> None:
        model.trained_class_names, model.trained_column_names = self.classes, self.columns

    def before_fit(self):
        self.name(self.learn.model)


def _history_with_warnings(run: Callable[[], Any]) -> dict[str, Any]:
    """``history(run())`` plus ``"warnings"``: the messages of the warnings pydlr raised meanwhile."""
    with _pydlr_warnings() as caught:
        out = history(run())
    out["warnings"] = caught
    return out


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def _pydlr_warnings() -> Iterator[list[str]]:
    """Collect the warnings pydlr itself raises, in R's syntax (R re-signals them as R warnings, so they reach
    ``withCallingHandlers``/``expect_warning`` rather than only the console); others show as usual."""
    caught: list[str] = []
    records: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("default")
            yield caught
    except BaseException:  # a failed call loses no warning: all of them show as usual
        for w in records:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        raise
    for w in records:
        # the input-scale warning points past pydlr's frames, which from R are all there is
        if os.path.abspath(w.filename).startswith(_PACKAGE_DIR) or isinstance(w.message, InputScaleWarning):
            caught.append(in_r_syntax(str(w.message)))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _fit_args(kwargs: dict[str, Any], column_names: list[str] | None = None, validation_column_names: Any = None,
              where: str = "fit") -> None:
    """R's shapes of fit's arguments as the engine takes them, in place: the validation inputs' columns
    read by the training columns' names."""
    if isinstance(kwargs.get("augment"), Mapping):
        kwargs["augment"] = augment(kwargs["augment"])
    if isinstance(kwargs.get("validation_data"), list):
        kwargs["validation_data"] = tuple(kwargs["validation_data"])
    if validation_column_names is not None:
        kwargs["validation_data"] = validation_on_columns(kwargs.get("validation_data"), column_names, where,
                                                          strings(validation_column_names), "validation_data[[1]]")


def fit_one_cycle(model: Any, x: Any, y: Any = None, epochs: int = 1, max_lr: float = 1e-3,
                  pct_start: float = 0.25, class_names: Any = None, column_names: Any = None,
                  validation_column_names: Any = None, **kwargs: Any) -> dict[str, Any]:
    """``pydlr.train.fit_one_cycle(model, x, y, epochs, max_lr, pct_start, **fit_args)``; ``class_names``,
    ``column_names`` and ``validation_column_names`` as `fit`'s."""
    names = _DataNames(class_names, column_names)
    _fit_args(kwargs, names.columns, validation_column_names, "fit_one_cycle")
    kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), names]
    return _history_with_warnings(lambda: train.fit_one_cycle(model, x, y, epochs=epochs, max_lr=max_lr,
                                                              pct_start=pct_start, **kwargs))


def lr_find(model: Any, x: Any, y: Any = None, **kwargs: Any) -> dict[str, Any]:
    """``pydlr.train.lr_find(model, x, y, ...)`` as columns (lr, loss) plus the suggested rates."""
    _fit_args(kwargs)
    res = train.lr_find(model, x, y, **kwargs)
    return {"lr": [float(v) for v in res.lrs], "loss": [float(v) for v in res.losses],
            "suggestion": float(res.suggestion), "min_lr": float(res.min_lr)}


def augment_beforehand(x: Any, y: Any = None, augment: Mapping[str, Any] | None = None, copies: int = 1,
                       seed: int = 0, include_original: bool = True) -> dict[str, Any]:
    """``pydlr.data.augment_beforehand`` with R's ``augmentation()`` settings; ``{"x": ..., "y": ...}``."""
    from pydlr.data import augment_beforehand as _beforehand

    aug = globals()["augment"](augment) if isinstance(augment, Mapping) else augment
    out = _beforehand(x, y, aug, copies=copies, seed=seed, include_original=include_original)
    x_out, y_out = out if y is not None else (out, None)
    return {"x": c_array(x_out), "y": None if y_out is None else c_array(y_out)}


# Keras' step-based schedules (keras.optimizers.schedules), by class name.
_SCHEDULES = ("ExponentialDecay", "CosineDecay", "PiecewiseConstantDecay")


def lr_schedule(class_name: str, config: Mapping[str, Any]) -> Any:
    """``pydlr.train.<class_name>(**config)``, one of Keras' learning-rate schedules (an optimizer's
    ``learning_rate``, applied before every step from the optimizer's step count)."""
    if class_name not in _SCHEDULES:
        raise NotSupportedError(f"schedule {class_name!r} is not supported; pydlr offers "
                                f"{', '.join(_SCHEDULES)}.")
    cfg = dict(config)
    for key in ("boundaries", "values"):
        if key in cfg and not isinstance(cfg[key], list):
            cfg[key] = [cfg[key]]
    return getattr(train, class_name)(**cfg)


def lr_schedule_values(schedule: Any, steps: Sequence[int]) -> list[float]:
    """The rates a schedule gives at ``steps`` (R's ``plot``/``print`` of a schedule)."""
    return [float(schedule(int(s))) for s in steps]


def augment(settings: Mapping[str, Any]) -> Augment:
    """R's ``augmentation()`` settings as ``pydlr.data.Augment`` (which checks them)."""
    args = dict(settings)
    if isinstance(args.get("shift"), list):
        args["shift"] = tuple(args["shift"])
    return Augment(**args)


def softmax_units(model: Any, sample_shape: Sequence[int]) -> int | None:
    """The units of the model's last layer when it is a softmax over 3 or more classes (for R's refusal of
    TRUE/FALSE labels, worded in R), else None."""
    out_shape = output_shape(model, tuple(int(d) for d in sample_shape))
    return multiclass_softmax_units(model, out_shape)


def evaluate(model: Any, x: Any, y: Any, batch_size: int | None = None, column_names: Any = None
             ) -> dict[str, Any]:
    """``model.evaluate(x, y, return_dict=True)``: ``{"metrics": loss and metrics in Keras' order, "warnings":
    pydlr's warnings meanwhile, in R's syntax}`` (`_pydlr_warnings`: images on another scale than the
    training images, said once, as an R warning); ``column_names`` as `predict`'s."""
    x = _on_trained_columns(model, x, column_names, "evaluate")
    with _pydlr_warnings() as caught:
        result = model.evaluate(x, y, batch_size=batch_size, return_dict=True)
    return {"metrics": {str(k): float(v) for k, v in dict(result).items()}, "warnings": caught}


def predict(model: Any, x: Any, batch_size: int | None = None, column_names: Any = None) -> dict[str, Any]:
    """``model.predict(x)``: ``{"out": outputs (probabilities for a softmax head), one row per sample,
    "warnings": as `evaluate`'s}``. ``column_names``: the names of x's columns (a data.frame's), read by the
    names the model was fitted on."""
    x = _on_trained_columns(model, x, column_names, "predict")
    with _pydlr_warnings() as caught:
        out = c_array(model.predict(x, batch_size=batch_size))
    return {"out": out, "warnings": caught}


def predict_classes(model: Any, x: Any, batch_size: int | None = None, column_names: Any = None
                    ) -> dict[str, Any]:
    """``model.predict_classes(x)``: ``{"out": 0-based classes (argmax, or output > 0.5 for one sigmoid
    unit), "warnings": as `evaluate`'s}``; ``column_names`` as `predict`'s."""
    x = _on_trained_columns(model, x, column_names, "predict")
    with _pydlr_warnings() as caught:
        out = c_array(model.predict_classes(x, batch_size=batch_size), dtype=np.int32)
    return {"out": out, "warnings": caught}


def _on_trained_columns(model: Any, x: Any, column_names: Any, where: str) -> Any:
    """x's columns, named ``column_names``, in the order of the model's training columns (`on_columns`)."""
    if column_names is None:
        return x
    return on_columns(x, getattr(model, "trained_column_names", None), where, names=strings(column_names))


# Base classes and the progress bar (fit's own) are not callbacks a user builds.
_BASES = ("Callback", "KerasCallback", "ProgressBar")


def callback_names() -> list[str]:
    """The core's Keras callbacks (``pydlr.train``) R may build by class name."""
    return sorted(name for name in train.__all__ if name not in _BASES
                  and isinstance(getattr(train, name), type) and issubclass(getattr(train, name), train.Callback))


def callback(class_name: str, config: Mapping[str, Any] | None = None) -> Any:
    """``pydlr.train.<class_name>(**config)``; R functions in ``config`` get Keras' arguments as plain values.

    ``epoch``/``batch`` stay 0-based as in Keras; ``logs`` become a dict of floats (a named list in R).
    """
    if class_name not in callback_names():
        raise NotSupportedError(
            f"callback {class_name!r} is not supported; pydlr offers {', '.join(callback_names())}.")
    cfg = {k: v for k, v in dict(config or {}).items() if v is not None}
    if class_name == "LearningRateScheduler" and callable(cfg.get("schedule")):
        cfg["schedule"] = _as_schedule(cfg["schedule"])
    if class_name == "LambdaCallback":
        cfg = {name: _as_hook(fn) for name, fn in cfg.items()}
    return getattr(train, class_name)(**cfg)


def _as_schedule(fn: Callable[..., Any]) -> Callable[[int, float], float]:
    """Keras' ``schedule(epoch, lr)`` from an R function, whose result is a number (or a length-1 list)."""

    def schedule(epoch: int, lr: float) -> float:
        value = fn(int(epoch), float(lr))
        value = value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError("schedule", "an R function returning the learning rate, one number", value,
                             where="callback_learning_rate_scheduler")
        return float(value)

    return schedule


def _as_hook(fn: Callable[..., Any]) -> Callable[..., None]:
    """An R hook called with Keras' (index, logs), logs as plain floats."""

    def hook(*args: Any, **kwargs: Any) -> None:
        logs = kwargs.pop("logs", None)
        if args and (args[-1] is None or isinstance(args[-1], Mapping)):
            *args, logs = args
        fn(*[int(a) for a in args], _float_logs(logs))

    return hook


def _float_logs(logs: Mapping[str, Any] | None) -> dict[str, float]:
    out = {}
    for key, value in (logs or {}).items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def history_to_r(h: Any) -> dict[str, Any]:
    """A Keras ``History`` made in Python as the plain values R's ``pydlr_history`` holds."""
    return history(h)


def history_from_r(metrics: Mapping[str, Any], epoch: Sequence[int], params: Mapping[str, Any] | None) -> Any:
    """R's ``pydlr_history`` (1-based epochs) as a Keras ``History`` (0-based epochs)."""
    h = train.History.from_dict({"history": {k: list(np.atleast_1d(v)) for k, v in metrics.items()},
                                 "epoch": [int(e) - 1 for e in np.atleast_1d(epoch)],
                                 "params": dict(params or {})})
    return h
