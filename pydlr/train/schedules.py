"""Learning-rate schedules: pure functions, and the callbacks that apply them.

A schedule is a plain function of the training progress ``pos`` in [0, 1] (fraction of all batches of
the fit) returning a learning rate: `cosine`, `one_cycle`; `step` is a function of the epoch. The
callbacks set the rate of every parameter group before each batch (`ParamScheduler`) or each epoch
(`LearningRateScheduler`, Keras' ``schedule(epoch, lr)``). Both are stateless given the epoch and
batch, so resumed runs follow the same rates. `fit_one_cycle` is a few lines on top of ``fit``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pydlr.errors import InputError
from pydlr.train.events import Callback

__all__ = ["cosine", "one_cycle", "step", "ParamScheduler", "LearningRateScheduler",
           "fit_one_cycle", "set_lr", "LearningRateSchedule", "ExponentialDecay", "CosineDecay",
           "PiecewiseConstantDecay", "StepScheduler", "ReduceLROnPlateau"]


def _cos(start: float, end: float, pos: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * min(max(pos, 0.0), 1.0))) / 2


def cosine(start: float, end: float = 0.0) -> Callable[[float], float]:
    """Cosine annealing from ``start`` to ``end`` over the fit."""
    return lambda pos: _cos(start, end, pos)


def one_cycle(max_lr: float, pct_start: float = 0.25, div: float = 25.0,
              div_final: float = 1e5) -> Callable[[float], float]:
    """fastai's one-cycle: cosine warm-up from max_lr/div to max_lr over ``pct_start`` of the fit,
    then cosine annealing down to max_lr/div_final."""
    if not 0 < pct_start < 1:
        raise InputError("pct_start", "a fraction in (0, 1)", pct_start, where="one_cycle")

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
    """Sets the learning rate before every training batch from ``schedule(pos)``."""

    order = 10

    def __init__(self, schedule: Callable[[float], float]):
        if not callable(schedule):
            raise InputError("schedule", "a function of the progress in [0, 1]", schedule,
                             where="ParamScheduler")
        self.schedule = schedule
        self.lrs: list[float] = []

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
        if not isinstance(new, (int, float)) or not math.isfinite(new) or new <= 0:
            raise InputError("schedule", "a function returning a positive learning rate", new,
                             where="LearningRateScheduler")
        set_lr(opt, float(new))
        if self.verbose:
            print(f"Epoch {self.learn.epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{new}.")


def fit_one_cycle(model, x, y, epochs: int, max_lr: float = 1e-3, pct_start: float = 0.25,
                  callbacks=None, **fit_kwargs):
    """``model.fit`` with a one-cycle learning-rate schedule (fastai's recipe)."""
    cbs = [ParamScheduler(one_cycle(max_lr, pct_start))] + list(callbacks or [])
    return model.fit(x, y, epochs=epochs, callbacks=cbs, **fit_kwargs)


# ----- Keras' step-based schedules (keras.optimizers.schedules) and ReduceLROnPlateau -----------------
class LearningRateSchedule:
    """Keras' ``LearningRateSchedule``: ``schedule(step) -> lr``, ``step`` counting optimizer updates
    from 0. Applied by `StepScheduler` (Keras gives it to the optimizer; here it is a callback, so the
    optimizers stay plain torch optimizers and a resumed run recomputes the rate from the step)."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        return dict(vars(self))


def _positive(value, argument: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(argument, "a positive number", value, where=where)
    return float(value)


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (integer division with
    ``staircase``), Keras' ``ExponentialDecay``."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False):
        where = "ExponentialDecay"
        self.initial_learning_rate = _positive(initial_learning_rate, "initial_learning_rate", where)
        self.decay_steps = _positive(decay_steps, "decay_steps", where)
        self.decay_rate = _positive(decay_rate, "decay_rate", where)
        self.staircase = bool(staircase)

    def __call__(self, step: int) -> float:
        p = step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (math.floor(p) if self.staircase else p)


class CosineDecay(LearningRateSchedule):
    """Keras' ``CosineDecay``: optional linear warm-up from ``initial_learning_rate`` to
    ``warmup_target`` over ``warmup_steps``, then cosine decay over ``decay_steps`` down to
    ``alpha`` times the peak rate, where it stays."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 warmup_target: float | None = None, warmup_steps: int = 0):
        where = "CosineDecay"
        if (isinstance(initial_learning_rate, bool) or not isinstance(initial_learning_rate, (int, float))
                or not initial_learning_rate >= 0):  # 0 is usual before a warm-up
            raise InputError("initial_learning_rate", "a number >= 0", initial_learning_rate, where=where)
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = _positive(decay_steps, "decay_steps", where)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise InputError("alpha", "a fraction in [0, 1]", alpha, where=where)
        self.alpha = float(alpha)
        self.warmup_target = (None if warmup_target is None
                              else _positive(warmup_target, "warmup_target", where))
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise InputError("warmup_steps", "a non-negative integer", warmup_steps, where=where)
        self.warmup_steps = warmup_steps

    def __call__(self, step: int) -> float:
        peak = self.initial_learning_rate if self.warmup_target is None else self.warmup_target
        if self.warmup_target is not None and step < self.warmup_steps:
            return self.initial_learning_rate + (peak - self.initial_learning_rate) * step / self.warmup_steps
        pos = min(step - (self.warmup_steps if self.warmup_target is not None else 0), self.decay_steps)
        cos = 0.5 * (1 + math.cos(math.pi * pos / self.decay_steps))
        return peak * ((1 - self.alpha) * cos + self.alpha)


class PiecewiseConstantDecay(LearningRateSchedule):
    """Keras' ``PiecewiseConstantDecay``: ``values[i]`` while ``step <= boundaries[i]`` (and
    ``values[-1]`` after the last boundary); one more value than boundaries."""

    def __init__(self, boundaries, values):
        where = "PiecewiseConstantDecay"
        boundaries, values = list(boundaries), list(values)
        if len(values) != len(boundaries) + 1 or sorted(boundaries) != boundaries:
            raise InputError("values", f"{len(boundaries) + 1} values for {len(boundaries)} increasing "
                             "boundaries", values, where=where)
        self.boundaries = [int(b) for b in boundaries]
        self.values = [_positive(v, "values", where) for v in values]

    def __call__(self, step: int) -> float:
        for boundary, value in zip(self.boundaries, self.values, strict=False):
            if step <= boundary:
                return value
        return self.values[-1]


class StepScheduler(Callback):
    """Sets the learning rate before every training batch to ``schedule(step)``, ``step`` the number of
    updates since the start of this fit's first epoch (epoch * batches per epoch + batch), so a resumed
    or continued run (``initial_epoch``) follows the same rates."""

    order = 10

    def __init__(self, schedule: Callable[[int], float]):
        if not callable(schedule):
            raise InputError("schedule", "a LearningRateSchedule or a function of the step",
                             schedule, where="StepScheduler")
        self.schedule = schedule

    def before_batch(self):
        learn = self.learn
        if learn.training:
            set_lr(learn.opt, float(self.schedule(learn.epoch * learn.n_iter + learn.iter)))


class ReduceLROnPlateau(Callback):
    """Keras' ``ReduceLROnPlateau``: multiply the rate by ``factor`` when ``monitor`` has not improved
    by ``min_delta`` for ``patience`` epochs, then wait ``cooldown`` epochs; never below ``min_lr``."""

    order = 70  # after the epoch's logs, before EarlyStopping (80) decides on the same epoch

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0):
        from pydlr.train.callbacks import _Monitor

        where = "ReduceLROnPlateau"
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor < 1:
            raise InputError("factor", "a number in (0, 1)", factor, where=where)
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(name, "a non-negative integer", value, where=where)
        self.m = _Monitor(monitor, mode, min_delta)
        self.factor, self.patience, self.verbose = float(factor), patience, verbose
        self.cooldown, self.min_lr = cooldown, float(min_lr)
        self.wait = self.cooldown_left = 0

    def before_fit(self):
        self.wait = self.cooldown_left = 0
        self.m.best = math.inf if self.m.mode == "min" else -math.inf

    def after_epoch(self):
        learn = self.learn
        value = self.m.value(learn.logs)
        if value is None:
            raise InputError("monitor", f"one of the logged values {sorted(learn.logs)}",
                             self.m.monitor, where="ReduceLROnPlateau")
        lr = learn.opt.param_groups[0]["lr"]
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self.m.improved(value):
            self.m.best, self.wait = value, 0
            return
        if self.cooldown_left > 0:
            return
        self.wait += 1
        if self.wait >= self.patience and lr > self.min_lr:
            new = max(lr * self.factor, self.min_lr)
            set_lr(learn.opt, new)
            if self.verbose:
                print(f"Epoch {learn.epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
            self.cooldown_left, self.wait = self.cooldown, 0

    def state_dict(self):
        return {"wait": self.wait, "cooldown_left": self.cooldown_left, "best": self.m.best}

    def load_state_dict(self, state):
        self.wait, self.cooldown_left = int(state["wait"]), int(state["cooldown_left"])
        self.m.best = float(state["best"])
