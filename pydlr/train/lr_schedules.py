"""Keras' ``keras.optimizers.schedules``: learning rates as functions of the optimizer's step, given as
``learning_rate=`` of an optimizer (``keras.optimizers.Adam(learning_rate=ExponentialDecay(...))``).

A schedule is called with the number of optimizer steps taken so far (Keras' ``optimizer.iterations``,
counted over every fit of the model) and returns the rate of the next step; `ScheduleStep` sets it before
each training batch. Schedules are JSON configs in saved models (`serialize` / `deserialize`), never
pickles; a subclass of `LearningRateSchedule` outside this module cannot be saved.
"""

from __future__ import annotations

import math
from typing import Any

from pydlr.errors import InputError
from pydlr.train.events import Callback

__all__ = ["LearningRateSchedule", "ExponentialDecay", "CosineDecay", "PiecewiseConstantDecay",
           "serialize", "deserialize", "ScheduleStep"]


def _positive(value: Any, name: str, where: str, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise InputError(name, "a non-negative number" if allow_zero else "a positive number", value, where)
    return float(value)


class LearningRateSchedule:
    """Keras' base class: subclasses define ``__call__(step) -> learning rate`` and ``get_config()``."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> LearningRateSchedule:
        return cls(**config)


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (the exponent floored with
    ``staircase=True``), Keras' formula."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False, name: str = "ExponentialDecay"):
        where = "ExponentialDecay"
        self.initial_learning_rate = _positive(initial_learning_rate, "initial_learning_rate", where)
        self.decay_steps = _positive(decay_steps, "decay_steps", where)
        self.decay_rate = _positive(decay_rate, "decay_rate", where)
        self.staircase, self.name = bool(staircase), name

    def __call__(self, step: int) -> float:
        p = step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (math.floor(p) if self.staircase else p)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Keras' CosineDecay: an optional linear warmup from ``initial_learning_rate`` to ``warmup_target``
    over ``warmup_steps``, then a cosine from there down to ``alpha`` times it over ``decay_steps``."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 name: str = "CosineDecay", warmup_target: float | None = None, warmup_steps: int = 0):
        where = "CosineDecay"
        self.initial_learning_rate = _positive(initial_learning_rate, "initial_learning_rate", where, True)
        self.decay_steps = _positive(decay_steps, "decay_steps", where)
        self.alpha = _positive(alpha, "alpha", where, allow_zero=True)
        self.warmup_target = None if warmup_target is None else _positive(warmup_target, "warmup_target",
                                                                          where)
        self.warmup_steps = _positive(warmup_steps, "warmup_steps", where, allow_zero=True)
        self.name = name

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            start = self.initial_learning_rate
        else:
            start = self.warmup_target
            if step < self.warmup_steps:
                return self.initial_learning_rate + (start - self.initial_learning_rate) * (
                    step / self.warmup_steps)
        done = min(max(step - self.warmup_steps, 0), self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * done))
        return start * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while ``step <= boundaries[i]``, then
    ``values[-1]`` (Keras' rule: the boundary step itself still has the earlier value)."""

    def __init__(self, boundaries: list[int], values: list[float], name: str = "PiecewiseConstant"):
        where = "PiecewiseConstantDecay"
        if not isinstance(boundaries, (list, tuple)) or not isinstance(values, (list, tuple)) or (
                len(values) != len(boundaries) + 1):
            raise InputError("values", "one more value than boundaries", values, where)
        if list(boundaries) != sorted(boundaries):
            raise InputError("boundaries", "increasing step numbers", boundaries, where)
        self.boundaries = [int(b) for b in boundaries]
        self.values = [_positive(v, "values", where, allow_zero=True) for v in values]
        self.name = name

    def __call__(self, step: int) -> float:
        for boundary, value in zip(self.boundaries, self.values, strict=False):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self) -> dict:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


_CLASSES = {c.__name__: c for c in (ExponentialDecay, CosineDecay, PiecewiseConstantDecay)}


def serialize(schedule: LearningRateSchedule) -> dict:
    """``{"class_name": ..., "config": {...}}``, JSON-safe (saved with the model's compile settings)."""
    name = type(schedule).__name__
    if _CLASSES.get(name) is not type(schedule):
        raise InputError("learning_rate", f"one of pydlr's schedules {sorted(_CLASSES)} to be saved",
                         name, where="save_model")
    return {"class_name": name, "config": schedule.get_config()}


def deserialize(config: dict) -> LearningRateSchedule:
    """The schedule `serialize` described."""
    if not isinstance(config, dict) or config.get("class_name") not in _CLASSES:
        raise InputError("learning_rate", f"a schedule config of {sorted(_CLASSES)}", config,
                         where="deserialize")
    return _CLASSES[config["class_name"]].from_config(config["config"])


class ScheduleStep(Callback):
    """Counts Keras' ``optimizer.iterations`` (the optimizer steps of every fit and ``train_on_batch`` of the
    model, kept on the torch optimizer) and, given a schedule, sets the learning rate from
    ``schedule(iterations)`` before each training batch. fit adds one always: counting costs an integer
    addition a batch."""

    order = 10

    def __init__(self, schedule: LearningRateSchedule | None = None):
        self.schedule = schedule

    def before_batch(self) -> None:
        if not self.learn.training or self.schedule is None:
            return
        opt = self.learn.opt
        lr = float(self.schedule(getattr(opt, "iterations", 0)))
        for group in opt.param_groups:
            group["lr"] = lr

    def after_batch(self) -> None:
        if self.learn.training:
            self.learn.opt.iterations = getattr(self.learn.opt, "iterations", 0) + 1

    # fit(resume=...) checkpoints carry the step count, so a resumed run follows the same rates
    def state_dict(self) -> dict:
        return {"iterations": int(getattr(self.learn.opt, "iterations", 0))}

    def load_state_dict(self, state: dict) -> None:
        self.learn.opt.iterations = int(state["iterations"])
