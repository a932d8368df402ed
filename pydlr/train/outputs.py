"""compile's losses and metrics, as Keras 3 resolves them, for one output or several.

- One output: ``loss`` is a name, a `Loss`, a function ``fn(y_true, y_pred)`` or a torch loss module;
  ``metrics`` a list of names, `Metric` objects, functions ``fn(y_true, y_pred)`` or torch modules
  ``module(input, target)``, each returning one value per sample (averaged) or one per batch.
- Several outputs (a functional model with ``outputs=[...]``): ``loss`` is one loss for every output, a
  list in output order or a dict keyed by the output layers' names; ``loss_weights`` likewise (default
  1), the total loss being ``sum(weight * output loss)``; ``metrics`` a list with one entry (a metric or a
  list of them, or None) per output, or a dict by output name (a flat list of another length applies to
  every output). History names as Keras: ``loss``, ``<output>_loss`` (unweighted), ``<output>_<metric>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from pydlr.data.structured import output_names
from pydlr.errors import InputError
from pydlr.layers.base import to_snake_case
from pydlr.train.losses import Loss, MultiOutputLoss, get_loss, per_sample_values
from pydlr.train.metric_objects import KerasMetric
from pydlr.train.metrics import Metric, get_metric

__all__ = ["compile_loss", "compile_metrics", "custom_metric", "loss_config", "loss_from_config",
           "metrics_config"]

WHERE = "compile"


def _is_user_metric(metric: Any) -> bool:
    """A user's function or torch module (Keras metric objects with ``update_state`` are resolved by
    ``get_metric``)."""
    return callable(metric) and not isinstance(metric, (str, type, Metric)) and not hasattr(metric, "update_state")


def custom_metric(fn: Callable[..., Any]) -> Metric:
    """A `Metric` from ``fn(y_true, y_pred)`` (Keras' order) or a torch module ``module(input, target)``."""
    name = getattr(fn, "__name__", None) or to_snake_case(type(fn).__name__)
    module = isinstance(fn, torch.nn.Module)

    def batch_sum(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        values = per_sample_values(fn(pred, target) if module else fn(target, pred), pred.shape[0], "metrics")
        return values * pred.shape[0] if values.dim() == 0 else values.sum()

    return Metric("custom_metric" if name == "<lambda>" else name, batch_sum)


def _one_metric(metric: Any, loss: Loss) -> Metric:
    return custom_metric(metric) if _is_user_metric(metric) else get_metric(metric, loss.kind, loss.from_logits)


def _per_output(value: Any, names: list[str], argument: str, default: Any) -> list[Any]:
    """One entry per output from a single value, a list in output order or a dict by output name."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise InputError(argument, f"a dict keyed by the output names {names}", f"keys {unknown}", WHERE)
        return [value.get(n, default) for n in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise InputError(argument, f"{len(names)} entries, one per output ({', '.join(names)}), or a dict",
                             f"{len(value)} entries", WHERE)
        return list(value)
    return [value] * len(names)


def compile_loss(model: Any, loss: Any, loss_weights: Any = None) -> Loss:
    """The compiled loss: a `Loss` for one output, a `MultiOutputLoss` for several."""
    names = output_names(model)
    if names is None or len(names) == 1:
        if loss_weights is not None and list(_per_output(loss_weights, names or ["output"], "loss_weights",
                                                         1.0)) != [1.0]:
            raise InputError("loss_weights", "weights for a model with several outputs", loss_weights, WHERE)
        if isinstance(loss, dict) and names is not None:
            loss = _per_output(loss, names, "loss", None)[0]
        if isinstance(loss, (list, tuple)) and len(loss) == 1:
            loss = loss[0]
        return get_loss(loss)
    parts = _per_output(loss, names, "loss", None)
    missing = [n for n, p in zip(names, parts, strict=True) if p is None]
    if missing:
        raise InputError("loss", f"a loss for every output ({', '.join(names)})", f"none for {missing}", WHERE)
    weights = _per_output(1.0 if loss_weights is None else loss_weights, names, "loss_weights", 1.0)
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
            raise InputError("loss_weights", "non-negative numbers", loss_weights, WHERE)
    return MultiOutputLoss(names, [get_loss(p) for p in parts], weights)


class _OutputState:
    """A metric object (AUC, ...) of one output of several: updated with that output's labels and
    predictions, otherwise the object itself."""

    def __init__(self, state: Any, i: int):
        self.state, self.i = state, i

    def update_state(self, y_true: Any, y_pred: Any) -> None:
        self.state.update_state(y_true[self.i], y_pred[self.i])

    def __getattr__(self, name: str) -> Any:  # result, reset_state, sync
        return getattr(self.state, name)


def _output_metric(metric: Metric, i: int, prefix: str) -> Metric:
    if metric.state is not None:
        return Metric(f"{prefix}_{metric.name}", None, state=_OutputState(metric.state, i))
    return Metric(f"{prefix}_{metric.name}", lambda p, t: metric(p[i], t[i]))


def _output_loss(loss: MultiOutputLoss, i: int) -> Metric:
    # the loss already computed for this output in this batch (sample weights included), as a sum
    return Metric(f"{loss.names[i]}_loss", lambda p, t: loss.last[i] * p[i].shape[0])


def compile_metrics(metrics: Any, loss: Loss) -> list[Metric]:
    """The metrics to report (see the module docstring); for several outputs the per-output losses first."""
    if metrics is None:
        metrics = []
    if isinstance(metrics, (str, Metric, KerasMetric)) or _is_user_metric(metrics):
        metrics = [metrics]
    if not isinstance(loss, MultiOutputLoss):
        if isinstance(metrics, dict):
            metrics = [m for v in metrics.values() for m in (v if isinstance(v, (list, tuple)) else [v])]
        return [_one_metric(m, loss) for m in metrics]
    names = loss.names
    if isinstance(metrics, Sequence) and not isinstance(metrics, dict) and len(metrics) != len(names):
        per_output = [list(metrics)] * len(names)
    else:
        per_output = _per_output(metrics, names, "metrics", None)
    out = [_output_loss(loss, i) for i in range(len(names))]
    for i, (name, entry, part) in enumerate(zip(names, per_output, loss.parts, strict=True)):
        entries = [] if entry is None else entry if isinstance(entry, (list, tuple)) else [entry]
        out += [_output_metric(_one_metric(m, part), i, name) for m in entries]
    return out


def loss_config(loss: Loss) -> dict | None:
    """JSON for a compiled loss, None when it is a user's (a function cannot be written to JSON: the model
    is then saved uncompiled, as Keras loads a model whose loss is not registered)."""
    if isinstance(loss, MultiOutputLoss):
        parts = [loss_config(p) for p in loss.parts]
        if any(p is None for p in parts):
            return None
        return {"outputs": dict(zip(loss.names, parts, strict=True)),
                "loss_weights": dict(zip(loss.names, loss.weights, strict=True))}
    if loss.kind == "custom":
        return None
    return {"name": loss.name, "from_logits": loss.from_logits}


def loss_from_config(config: dict) -> Any:
    """The ``loss`` / ``loss_weights`` arguments of compile from `loss_config`'s result."""
    if "outputs" in config:
        return ({k: get_loss(v["name"], from_logits=bool(v.get("from_logits"))) for k, v in
                 config["outputs"].items()}, config.get("loss_weights"))
    return get_loss(config["name"], from_logits=bool(config.get("from_logits"))), None


def metrics_config(argument: Any, compiled: list[Metric], loss: Loss) -> Any:
    """The metrics argument as JSON: names, and a metric object's class and arguments (a user's function is
    left out, as its loss would be)."""
    if not isinstance(loss, MultiOutputLoss):
        return [m.config or m.name for m, a in zip(compiled, _as_list(argument), strict=False)
                if not _is_user_metric(a)]

    def saved(entry: Any) -> Any:
        return entry.saved() if isinstance(entry, KerasMetric) else entry if isinstance(entry, str) else None

    def names(entry: Any) -> Any:
        if isinstance(entry, (list, tuple)):
            return [saved(e) for e in entry if saved(e) is not None]
        return entry if entry is None else saved(entry)

    if isinstance(argument, dict):
        return {k: names(v) for k, v in argument.items()}
    return [names(e) for e in _as_list(argument)]


def _as_list(argument: Any) -> list[Any]:
    if argument is None:
        return []
    return list(argument) if isinstance(argument, (list, tuple)) else [argument]
