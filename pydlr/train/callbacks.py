"""Callbacks with Keras' names and arguments: EarlyStopping, ModelCheckpoint, CSVLogger, LambdaCallback,
BackupAndRestore (resume), ReduceLROnPlateau, TerminateOnNaN, LearningRateScheduler, TensorBoard, plus the adapter that lets Keras-style callbacks (``on_epoch_end(epoch,
logs)``...) run on the Learner's events.
"""

from __future__ import annotations

import csv
import math
import os
import string
from pathlib import Path
from typing import Any

import torch

from pydlr.atomic_files import atomic_write_bytes
from pydlr.errors import InputError
from pydlr.train.checkpoint import (
    check_writable,
    load_training_state,
    save_training_state,
)
from pydlr.train.events import Callback as LearnerCallback
from pydlr.train.events import CancelFitException
from pydlr.train.history import History
from pydlr.train.schedules import LearningRateScheduler, set_lr
from pydlr.train.tensorboard import TensorBoard
from pydlr.weights_format import safetensors_bytes

__all__ = [
    "KerasCallback", "LambdaCallback", "EarlyStopping", "ModelCheckpoint", "CSVLogger",
    "BackupAndRestore", "save_weights", "Callback", "LearnerCallback", "LearningRateScheduler",
    "ReduceLROnPlateau", "TerminateOnNaN", "TensorBoard",
]


class KerasCallback(LearnerCallback):
    """Base for callbacks written Keras' way: override ``on_train_begin(logs)``,
    ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``, ``on_train_batch_begin(batch, logs)``,
    ``on_train_batch_end(batch, logs)`` (or Keras 2's ``on_batch_begin`` / ``on_batch_end``),
    ``on_train_end(logs)``. ``self.model`` is the model and ``self.params`` Keras' dict (epochs,
    steps, verbose); setting ``self.model.stop_training = True`` stops after the current batch.
    Batch-end logs cost one host sync per batch, so they are computed only when a batch method is
    overridden. This is ``pydlr.train.callbacks.Callback``, Keras' base class name.
    """

    order = 50
    params: dict = {}

    @property
    def model(self):
        return self.learn.model if self.learn is not None else None

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...

    def _overrides(self, name: str) -> bool:
        return getattr(type(self), name) is not getattr(KerasCallback, name)

    def before_fit(self):
        self.params = dict(self.learn.history.params)
        self._begin = next((m for m in ("on_train_batch_begin", "on_batch_begin")
                            if self._overrides(m)), None)
        self._end = next((m for m in ("on_train_batch_end", "on_batch_end")
                          if self._overrides(m)), None)
        self.on_train_begin({})

    def after_fit(self):
        self.on_train_end(dict(self.learn.logs))

    def before_epoch(self):
        self.on_epoch_begin(self.learn.epoch, {})

    def after_epoch(self):
        self.on_epoch_end(self.learn.epoch, dict(self.learn.logs))

    def before_batch(self):
        if self.learn.training and self._begin:
            getattr(self, self._begin)(self.learn.iter, {})

    def after_batch(self):
        if self.learn.training and self._end:
            getattr(self, self._end)(self.learn.iter, self.learn.running_logs())


class LambdaCallback(KerasCallback):
    """Keras' LambdaCallback: plain functions for each moment (the R package wraps R functions here).

    ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``, ``on_train_batch_begin(batch, logs)``,
    ``on_train_batch_end(batch, logs)`` (Keras 3's names; Keras 2's ``on_batch_begin`` / ``on_batch_end``
    mean the same), ``on_train_begin(logs)``, ``on_train_end(logs)``.
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_batch_begin=None,
                 on_batch_end=None, on_train_begin=None, on_train_end=None, on_train_batch_begin=None,
                 on_train_batch_end=None):
        for name, fn in locals().items():
            if name != "self" and fn is not None and not callable(fn):
                raise InputError(name, "a function or None", fn, where="LambdaCallback")
        for keras3, keras2 in (("on_train_batch_begin", on_batch_begin), ("on_train_batch_end", on_batch_end)):
            if locals()[keras3] is not None and keras2 is not None:
                raise InputError(keras3, f"a function, or {keras3.replace('train_', '')} (the same moment), "
                                 "not both", "both", where="LambdaCallback")
        self._fns = {"epoch_begin": on_epoch_begin, "epoch_end": on_epoch_end,
                     "batch_begin": on_train_batch_begin or on_batch_begin,
                     "batch_end": on_train_batch_end or on_batch_end,
                     "train_begin": on_train_begin, "train_end": on_train_end}

    def on_train_begin(self, logs=None):
        if self._fns["train_begin"]:
            self._fns["train_begin"](logs)

    def on_train_end(self, logs=None):
        if self._fns["train_end"]:
            self._fns["train_end"](logs)

    def on_epoch_begin(self, epoch, logs=None):
        if self._fns["epoch_begin"]:
            self._fns["epoch_begin"](epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self._fns["epoch_end"]:
            self._fns["epoch_end"](epoch, logs)

    def before_batch(self):
        if self.learn.training and self._fns["batch_begin"]:
            self._fns["batch_begin"](self.learn.iter, {})

    def after_batch(self):
        if self.learn.training and self._fns["batch_end"]:
            self._fns["batch_end"](self.learn.iter, self.learn.running_logs())


def _monitor_mode(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise InputError("mode", "'auto', 'min' or 'max'", mode)
    if mode != "auto":
        return mode
    return "max" if any(s in monitor for s in ("acc", "auc", "precision", "recall")) else "min"


class _Monitor:
    """Shared 'is this epoch better?' logic of EarlyStopping and ModelCheckpoint."""

    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0):
        self.monitor = monitor
        self.mode = _monitor_mode(monitor, mode)
        self.min_delta = abs(min_delta)
        self.best = math.inf if self.mode == "min" else -math.inf

    def value(self, logs: dict) -> float | None:
        return logs.get(self.monitor)

    def epoch_value(self, learn: Any, where: str) -> float | None:
        """This epoch's monitored value, or None on an epoch that ``validation_freq`` left without
        validation (Keras skips those epochs too); a name that is never logged is an InputError."""
        value = learn.logs.get(self.monitor)
        if value is not None:
            return value
        if (self.monitor.startswith("val_") and learn.valid_data is not None
                and not any(k.startswith("val_") for k in learn.logs)):
            return None
        raise InputError("monitor", f"one of the logged values {sorted(learn.logs)}", self.monitor, where=where)

    def check_logged(self, learn, where: str) -> None:
        """A validation value without validation data is never logged: refuse it as the fit starts,
        not after its first epoch (Keras' default monitor is "val_loss")."""
        if self.monitor.startswith("val_") and learn.valid_data is None:
            raise InputError("monitor", "a value the fit logs: without validation data (validation_data or "
                             f"validation_split) only training values such as {self.monitor[4:]!r}",
                             self.monitor, where=where)

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class _MonitoredBest:
    """Keras' ``best`` of the callbacks that watch a logged value: the best value so far (inf or -inf before
    the first epoch, by mode), read-only."""

    @property
    def best(self) -> float:
        return self.m.best


class EarlyStopping(_MonitoredBest, LearnerCallback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs (Keras' args).

    With ``restore_best_weights`` the model gets the best epoch's weights back when the fit ends, whether it
    stopped early or ran all its epochs (Keras 3's ``on_train_end``); ``best_epoch`` is that epoch (0-based).
    Cancels the fit by raising CancelFitException.
    """

    order = 80  # after the checkpoints of the same epoch

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        if not isinstance(patience, int) or patience < 0:
            raise InputError("patience", "a non-negative integer", patience, where="EarlyStopping")
        self.m = _Monitor(monitor, mode, min_delta)
        self.patience, self.verbose, self.baseline = patience, verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights = None

    def before_fit(self):
        self.m.check_logged(self.learn, "EarlyStopping")
        self.wait, self.stopped_epoch, self.best_epoch, self.best_weights = 0, 0, 0, None
        self.m.best = math.inf if self.m.mode == "min" else -math.inf
        if self.baseline is not None:
            self.m.best = self.baseline

    def after_epoch(self):
        value = self.m.epoch_value(self.learn, "EarlyStopping")
        if value is None:
            return
        if self.learn.epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self.m.improved(value):
            self.m.best, self.wait, self.best_epoch = value, 0, self.learn.epoch
            if self.restore_best_weights:
                self.best_weights = {k: v.detach().clone()
                                     for k, v in self.learn.model.state_dict().items()}
        if self.wait >= self.patience and self.wait > 0 and self.learn.epoch > 0:  # Keras' rule
            self.stopped_epoch = self.learn.epoch
            if self.verbose:
                print(f"Epoch {self.stopped_epoch + 1}: early stopping")
            self.learn.stop_training = True

    def after_fit(self):
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.learn.model.load_state_dict(self.best_weights)

    def state_dict(self):
        return {"wait": self.wait, "best": self.m.best}

    def load_state_dict(self, state):
        self.wait, self.m.best = int(state["wait"]), float(state["best"])


def save_weights(model: torch.nn.Module, path: Path, include_optimizer: bool = False) -> None:
    """Save a model atomically through pydlr.io, so a checkpoint loads like any saved model
    (``io.save_model``: architecture + weights (+ optimizer); ``io.save_weights`` when
    ``include_optimizer`` is False); plain torch modules get a safetensors file of their state dict."""
    from pydlr import io

    if not isinstance(model, torch.nn.Module):
        raise InputError("model", "a pydlr model or a torch.nn.Module", model, where="save_weights")
    if hasattr(model, "get_config") and include_optimizer:
        io.save_model(model, path, include_optimizer=True)
    elif hasattr(model, "get_config"):
        io.save_weights(model, path)
    else:
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        atomic_write_bytes(path, safetensors_bytes(tensors, {"format": "pydlr-weights"}))


class ModelCheckpoint(_MonitoredBest, LearnerCallback):
    """Save the model after each epoch (Keras' args). ``filepath`` may use Keras' placeholders: ``{epoch}``
    (1-based) and any logged value (``"ckpt_{epoch:02d}_{val_loss:.3f}.safetensors"``), formatted with
    the epoch's logs at save time; ``save_best_only`` keeps only improvements of ``monitor``. Writes are
    atomic: a crash leaves the previous file intact.

    The pattern is checked at construction: placeholders must be names (``epoch``, ``batch`` or a log
    name; which logs exist is known only once training runs) whose format fits a number. Keras' HDF5
    names (``.h5``, ``.weights.h5``) are refused with the safetensors name to use: pydlr never writes HDF5.
    """

    order = 60

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, mode: str = "auto",
                 save_weights_only: bool = False, save_freq: str = "epoch"):
        from pydlr.io import refuse_hdf5

        if save_freq != "epoch":
            raise InputError("save_freq", "'epoch' (batch-frequency saving is not supported)",
                             save_freq, where="ModelCheckpoint")
        self.filepath = str(filepath)
        refuse_hdf5(self.filepath, "ModelCheckpoint", "filepath")
        probe = _format_path(self.filepath, 1, _AnyLogs())
        check_writable(probe, "filepath", where="ModelCheckpoint")
        self.m = _Monitor(monitor, mode)
        self.verbose, self.save_best_only = verbose, save_best_only
        self.save_weights_only = save_weights_only
        self.last_saved: str | None = None

    def before_fit(self):
        if self.save_best_only:
            self.m.check_logged(self.learn, "ModelCheckpoint")
        self.m.best = math.inf if self.m.mode == "min" else -math.inf

    def after_epoch(self):
        if self.learn.rank != 0:  # DDP: rank 0 writes
            return
        logs = self.learn.logs
        path = Path(_format_path(self.filepath, self.learn.epoch + 1, logs))
        if self.save_best_only:
            value = self.m.epoch_value(self.learn, "ModelCheckpoint")
            if value is None or not self.m.improved(value):
                return
            self.m.best = value
        path.parent.mkdir(parents=True, exist_ok=True)
        save_weights(self.learn.model, path, include_optimizer=not self.save_weights_only)
        self.last_saved = str(path)
        if self.verbose:
            print(f"Epoch {self.learn.epoch + 1}: saved model to {path}")

    def state_dict(self):
        return {"best": self.m.best}

    def load_state_dict(self, state):
        self.m.best = float(state["best"])


class _AnyLogs(dict):
    """Format helper: any log placeholder formats as 0.0 when probing the path at construction."""

    def __missing__(self, key):
        return 0.0


def _format_path(pattern: str, epoch: int, logs: dict) -> str:
    """Keras' checkpoint path: ``pattern`` formatted with ``epoch`` (1-based), ``batch`` and the logs.

    Placeholders must be names: ``{}`` / ``{0}`` and a name that is not logged are InputErrors naming the
    placeholder and the logged names, as is a format that does not fit a number (``{val_loss:02d}``).
    """
    values = _AnyLogs(logs) if isinstance(logs, _AnyLogs) else dict(logs)
    values.update(epoch=epoch, batch=0)
    where = "ModelCheckpoint"
    try:
        for _, field, _, _ in string.Formatter().parse(pattern):
            if field is not None and not field.isidentifier():
                raise InputError("filepath", "placeholders that are names such as {epoch:02d} or "
                                 "{val_loss:.3f}", pattern, where=where)
        return pattern.format_map(values)
    except KeyError as err:
        raise InputError("filepath", "a pattern whose placeholders are epoch or logged values "
                         f"{sorted(logs)}", f"{{{err.args[0]}}}", where=where) from None
    except (ValueError, IndexError) as err:
        raise InputError("filepath", f"a path pattern whose placeholders format numbers ({err})",
                         pattern, where=where) from None


class CSVLogger(LearnerCallback):
    """Append one row of epoch logs per epoch to a CSV file (Keras' args), flushed each epoch."""

    order = 60

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        self.path = check_writable(filename, "filename", where="CSVLogger")
        self.sep, self.append = separator, append
        self._keys: list[str] | None = None

    def before_fit(self):
        self._keys = None
        if self.learn.rank != 0:
            return
        if not self.append and self.path.exists():
            self.path.unlink()

    def after_epoch(self):
        if self.learn.rank != 0:
            return
        logs = self.learn.logs
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        if self._keys is None:
            self._keys = list(logs)
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f, delimiter=self.sep)
            if new_file:
                w.writerow(["epoch"] + self._keys)
            w.writerow([self.learn.epoch] + [f"{logs.get(k, float('nan'))!r}" for k in self._keys])


class BackupAndRestore(LearnerCallback):
    """Write the whole training state after every epoch and restore it when a fit starts.

    This is what ``fit(..., resume=path)`` installs: if ``path`` holds a checkpoint, training continues
    after its last complete epoch with the same weights, optimizer state, RNG states, history and
    callback states, so the final weights equal an uninterrupted run's (bit-identical on CPU).
    The file is kept after the fit (a finished run resumes to "nothing left to do").
    """

    order = 95  # last: before_fit restores states after the others have reset theirs

    def __init__(self, path: str | os.PathLike):
        self.path = check_writable(path, "resume")
        self.restored_epoch: int | None = None

    def before_fit(self):
        learn = self.learn
        self.restored_epoch = None
        if not self.path.exists():
            return
        meta = load_training_state(self.path, learn.model, learn.opt)
        learn.history = History.from_dict(meta["history"])
        learn.start_epoch = int(meta["epoch"])
        learn.seed = int(meta["seed"])
        learn.train_data.seed = learn.seed
        states = meta.get("callbacks", {})
        for key, cb in _keyed(learn.cbs).items():
            if key in states:
                cb.load_state_dict(states[key])
        self.restored_epoch = learn.start_epoch

    def after_epoch(self):
        learn = self.learn
        if learn.rank != 0:  # DDP: one writer; every rank restores from the same file
            return
        states = {key: cb.state_dict() for key, cb in _keyed(learn.cbs).items()}
        meta = {"epoch": learn.epoch + 1, "seed": learn.seed, "history": learn.history.to_dict(),
                "callbacks": states}
        save_training_state(self.path, learn.model, learn.opt, meta)


class ReduceLROnPlateau(_MonitoredBest, LearnerCallback):
    """Keras' ReduceLROnPlateau: multiply the learning rate by ``factor`` (not below ``min_lr``) when
    ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs, then wait ``cooldown`` epochs
    before counting again (Keras' arguments, defaults and rules)."""

    order = 70  # before EarlyStopping of the same epoch, as Keras lists them

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, verbose: int = 0,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0):
        where = "ReduceLROnPlateau"
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor < 1:
            raise InputError("factor", "a number between 0 and 1 (the rate is multiplied by it)", factor, where)
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(name, "a non-negative integer", value, where)
        if isinstance(min_lr, bool) or not isinstance(min_lr, (int, float)) or min_lr < 0:
            raise InputError("min_lr", "a non-negative number", min_lr, where)
        self.m = _Monitor(monitor, mode, min_delta)
        self.factor, self.patience, self.verbose = float(factor), patience, verbose
        self.cooldown, self.min_lr = cooldown, float(min_lr)
        self.wait = self.cooldown_counter = 0

    def before_fit(self):
        self.m.check_logged(self.learn, "ReduceLROnPlateau")
        self.wait = self.cooldown_counter = 0
        self.m.best = math.inf if self.m.mode == "min" else -math.inf

    def after_epoch(self):
        value = self.m.epoch_value(self.learn, "ReduceLROnPlateau")
        if value is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.m.improved(value):
            self.m.best, self.wait = value, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        old = float(self.learn.opt.param_groups[0]["lr"])
        if self.wait >= self.patience and old > self.min_lr:
            new = max(old * self.factor, self.min_lr)
            set_lr(self.learn.opt, new)
            if self.verbose:
                print(f"Epoch {self.learn.epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
            self.cooldown_counter, self.wait = self.cooldown, 0

    def state_dict(self):
        return {"wait": self.wait, "best": self.m.best, "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, state):
        self.wait, self.m.best = int(state["wait"]), float(state["best"])
        self.cooldown_counter = int(state["cooldown_counter"])


class TerminateOnNaN(LearnerCallback):
    """Keras' TerminateOnNaN: stop training, without an error, after the first batch whose loss is NaN or
    infinite (reads the loss every batch: one host sync per batch on a GPU). Without it, ``fit`` raises a
    TrainingError on such a loss (``nan_check=True``)."""

    order = 90  # before NanCheck (100), which would raise

    def after_batch(self):
        learn = self.learn
        if not learn.training or learn.loss is None:
            return
        value = float(learn.loss.detach())
        if not math.isfinite(value):
            print(f"Batch {learn.iter}: Invalid loss, terminating training")
            learn.stop_training = True
            raise CancelFitException()


Callback = KerasCallback  # Keras' name for the base class users subclass


def _keyed(cbs) -> dict:
    """Callbacks by 'ClassName#k' (k-th of its class), stable when other callbacks come and go."""
    seen: dict[str, int] = {}
    out = {}
    for cb in cbs:
        k = seen.get(cb.name, 0)
        seen[cb.name] = k + 1
        out[f"{cb.name}#{k}"] = cb
    return out
