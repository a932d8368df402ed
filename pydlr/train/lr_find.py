"""The learning-rate finder (fastai / luz): train a few batches with an exponentially growing rate,
record the loss, suggest a rate; the model and optimizer are restored afterwards."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from pydlr.errors import InputError
from pydlr.train.events import Callback, CancelFitException
from pydlr.train.schedules import set_lr

__all__ = ["lr_find", "LRFindResult"]


@dataclass
class LRFindResult:
    """``lrs`` and smoothed ``losses`` per batch; ``suggestion`` = the rate of steepest descent of the
    smoothed loss (in log-lr); ``min_lr`` = (rate at the minimum loss) / 10."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    suggestion: float = float("nan")
    min_lr: float = float("nan")

    def plot(self, ax=None):
        """Loss against learning rate (log x axis), the suggestion marked; returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.lrs, self.losses)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss (smoothed)")
        if math.isfinite(self.suggestion):
            i = int(np.argmin(np.abs(np.log(self.lrs) - math.log(self.suggestion))))
            ax.plot([self.suggestion], [self.losses[i]], "o", color="red",
                    label=f"suggestion {self.suggestion:.2e}")
            ax.legend()
        return ax


class _LRFinder(Callback):
    order = 10

    def __init__(self, start_lr: float, end_lr: float, num_it: int, stop_div: bool, beta: float = 0.98):
        self.start_lr, self.end_lr, self.num_it, self.stop_div, self.beta = (
            start_lr, end_lr, num_it, stop_div, beta)
        self.result = LRFindResult()
        self._avg = 0.0
        self._best = math.inf

    def before_batch(self):
        lr = self.start_lr * (self.end_lr / self.start_lr) ** (self.learn.iter / max(self.num_it - 1, 1))
        set_lr(self.learn.opt, lr)
        self._lr = lr

    def after_loss(self):
        loss = float(self.learn.loss.detach())
        if not math.isfinite(loss):
            raise CancelFitException()
        i = len(self.result.losses) + 1
        self._avg = self.beta * self._avg + (1 - self.beta) * loss
        smooth = self._avg / (1 - self.beta ** i)
        self.result.lrs.append(self._lr)
        self.result.losses.append(smooth)
        self._best = min(self._best, smooth)
        if self.stop_div and smooth > 4 * self._best and i > 5:
            raise CancelFitException()


def lr_find(model, x, y, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
            batch_size: int | None = None, stop_div: bool = True, seed: int | None = 0,
            **fit_kwargs) -> LRFindResult:
    """Run the LR range test on a compiled ``model``; its weights and optimizer state are restored.

    Returns an `LRFindResult` (``.lrs``, ``.losses``, ``.suggestion``, ``.plot()``).
    """
    if not 0 < start_lr < end_lr:
        raise InputError("start_lr/end_lr", "0 < start_lr < end_lr", (start_lr, end_lr),
                         where="lr_find")
    if not isinstance(num_it, int) or num_it < 5:
        raise InputError("num_it", "an integer >= 5", num_it, where="lr_find")
    if not getattr(model, "compiled", False):
        raise InputError("model", "a compiled model", "a model that was not compiled", where="lr_find")
    weights = copy.deepcopy(model.state_dict())
    optimizer = model.optimizer  # a torch optimizer, or the spec while the model had no weights
    built = isinstance(optimizer, torch.optim.Optimizer)
    opt_state = copy.deepcopy(optimizer.state_dict()) if built else None
    iterations = getattr(optimizer, "iterations", 0)  # Keras' step count, which schedules read
    finder = _LRFinder(start_lr, end_lr, num_it, stop_div)
    try:
        model.fit(x, y, batch_size=batch_size, epochs=1, steps_per_epoch=num_it, verbose=0,
                  seed=seed, callbacks=[finder], nan_check=False, **fit_kwargs)
    finally:
        model.load_state_dict(weights)
        model.optimizer = optimizer
        if built:
            optimizer.load_state_dict(opt_state)
            optimizer.iterations = iterations
    res = finder.result
    # like fastai, ignore the first points (the debiased average is still settling) and the last
    skip_start, skip_end = min(10, len(res.losses) // 5), min(5, len(res.losses) // 10)
    lrs = np.array(res.lrs[skip_start:len(res.lrs) - skip_end])
    losses = np.array(res.losses[skip_start:len(res.losses) - skip_end])
    if len(losses) >= 3:
        grads = np.gradient(losses, np.log(lrs))
        res.suggestion = float(lrs[int(np.argmin(grads))])
        res.min_lr = float(lrs[int(np.argmin(losses))] / 10)
    return res
