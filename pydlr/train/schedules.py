"""Learning-rate schedules: pure functions, and the callbacks that apply them.

A schedule is a plain function of the training progress ``pos`` in [0, 1] (fraction of all batches of
the fit) returning a learning rate: `cosine`, `one_cycle`; `step` is a function of the epoch. The
callbacks set the rate of every parameter group before each batch (`ParamScheduler`) or each epoch
(`LearningRateScheduler`, Keras' ``schedule(epoch, lr)``). Both are stateless given the epoch and
batch, so resumed runs follow the same rates. `fit_one_cycle` is a few lines on top of ``fit``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch

from pydlr.errors import InputError
from pydlr.train.events import Callback

__all__ = ["cosine", "one_cycle", "step", "ParamScheduler", "LearningRateScheduler",
           "fit_one_cycle", "set_lr"]


def _cos(start: float, end: float, pos: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * min(max(pos, 0.0), 1.0))) / 2


def cosine(start: float, end: float = 0.0) -> Callable[[float], float]:
    """Cosine annealing from ``start`` to ``end`` over the fit."""
    return lambda pos: _cos(start, end, pos)


def one_cycle(max_lr: float, pct_start: float = 0.25, div: float = 25.0,
              div_final: float = 1e5, where: str = "one_cycle") -> Callable[[float], float]:
    """fastai's one-cycle: cosine warm-up from max_lr/div to max_lr over ``pct_start`` of the fit,
    then cosine annealing down to max_lr/div_final. ``where``: the function errors name (fit_one_cycle's
    callers never called this one)."""
    if not 0 < pct_start < 1:
        raise InputError("pct_start", "a fraction in (0, 1)", pct_start, where=where)

    def f(pos: float) -> float:
        if pos < pct_start:
            return _cos(max_lr / div, max_lr, pos / pct_start)
        return _cos(max_lr, max_lr / div_final, (pos - pct_start) / (1 - pct_start))

    return f


def step(initial_lr: float, factor: float = 0.1, every: int = 10) -> Callable[[int], float]:
    """Step decay: ``initial_lr * factor ** (epoch // every)`` (a function of the epoch)."""
    if not isinstance(every, int) or every < 1:
        raise InputError("every", "a positive integer (epochs)", every, where="step")
    return lambda epoch: initial_lr * factor ** (int(epoch) // every)


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class ParamScheduler(Callback):
    """Sets the learning rate before every training batch from ``schedule(pos)``. When the fit ends the
    optimizer gets its rates from before it back: the schedule is this fit's, and a later ``fit()`` trains
    at the compiled rate (not at one-cycle's last, max_lr / 1e5)."""

    order = 10

    def __init__(self, schedule: Callable[[float], float]):
        if not callable(schedule):
            raise InputError("schedule", "a function of the progress in [0, 1]", schedule,
                             where="ParamScheduler")
        self.schedule = schedule
        self.lrs: list[float] = []
        self._rates_before: list[float] = []

    def before_fit(self):
        self._rates_before = [group["lr"] for group in self.learn.opt.param_groups]

    def after_fit(self):
        for group, lr in zip(self.learn.opt.param_groups, self._rates_before, strict=False):
            group["lr"] = lr

    def before_batch(self):
        learn = self.learn
        if not learn.training:
            return
        total = learn.n_epochs * learn.n_iter
        pos = (learn.epoch * learn.n_iter + learn.iter) / max(total, 1)
        lr = float(self.schedule(pos))
        set_lr(learn.opt, lr)
        self.lrs.append(lr)


class LearningRateScheduler(Callback):
    """Keras' LearningRateScheduler: ``schedule(epoch, lr) -> lr`` at each epoch's start
    (``schedule(epoch)`` with one argument works too, e.g. ``step(...)``)."""

    order = 10

    def __init__(self, schedule: Callable, verbose: int = 0):
        if not callable(schedule):
            raise InputError("schedule", "a function (epoch, lr) -> lr", schedule,
                             where="LearningRateScheduler")
        self.schedule, self.verbose = schedule, verbose

    def before_epoch(self):
        opt = self.learn.opt
        lr = opt.param_groups[0]["lr"]
        try:
            new = self.schedule(self.learn.epoch, lr)
        except TypeError:
            new = self.schedule(self.learn.epoch)
        if isinstance(new, torch.Tensor) and new.numel() == 1:  # Keras takes a scalar tensor too
            new = new.item()
        if isinstance(new, bool) or not isinstance(new, numbers.Real) or not math.isfinite(new) or new <= 0:
            raise InputError("schedule", "a function returning a positive learning rate", new,
                             where="LearningRateScheduler")
        set_lr(opt, float(new))
        if self.verbose:
            print(f"Epoch {self.learn.epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{new}.")


def fit_one_cycle(model, x, y, epochs: int, max_lr: float = 1e-3, pct_start: float = 0.25,
                  callbacks=None, **fit_kwargs):
    """``model.fit`` with a one-cycle learning-rate schedule (fastai's recipe)."""
    cbs = [ParamScheduler(one_cycle(max_lr, pct_start, where="fit_one_cycle"))] + list(callbacks or [])
    return model.fit(x, y, epochs=epochs, callbacks=cbs, **fit_kwargs)
