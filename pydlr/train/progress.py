"""Progress reporting: a Keras-like bar that updates in place on a terminal, one line per epoch elsewhere.

``verbose``: 0 silent; 1 a bar per epoch (updated in place with ``\\r`` when ``dynamic``, else one line
per epoch, "Epoch i/n" and the finished bar together, so a knitr document or a log gets exactly one line an
epoch); 2 one line per epoch. ``print_fn(text, end)`` lets a host print (the R
package passes one that writes to the R console, which handles ``\\r`` in RStudio and the terminal;
under knitr it passes ``dynamic=False``). Updates are throttled to ``interval`` seconds, so the bar
costs one host sync per interval, not per batch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from pydlr.errors import InputError
from pydlr.train.events import Callback

__all__ = ["ProgressBar", "format_logs", "format_duration", "resolve_verbose"]


def resolve_verbose(verbose: object, dynamic: bool | None, where: str) -> tuple[int, bool]:
    """``(verbose, dynamic)`` checked, with ``verbose="auto"`` resolved: the one place of that rule.

    "auto" is 1, as Keras (a bar per epoch; where its line cannot be rewritten in place, it is printed
    once at the end of each epoch, so logs and knitted documents get no half-drawn bars). ``dynamic``:
    whether the line can be rewritten in place; None guesses from stdout (a terminal); the R package
    passes its own guess for the R console.
    """
    dynamic = sys.stdout.isatty() if dynamic is None else bool(dynamic)
    if isinstance(verbose, str) and verbose == "auto":
        return 1, dynamic
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise InputError("verbose", "0, 1, 2 or 'auto'", verbose, where=where)
    return int(verbose), dynamic


def _default_print(text: str, end: str = "\n") -> None:
    sys.stdout.write(text + end)
    sys.stdout.flush()


def format_duration(seconds: float) -> str:
    """'1h02m', '3m05s', '12s', '850ms' as Keras prints them."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    if seconds >= 60:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    if seconds >= 1:
        return f"{seconds:.0f}s"
    return f"{seconds * 1000:.0f}ms"


def format_logs(logs: dict[str, float]) -> str:
    """' - loss: 0.4321 - accuracy: 0.8765'."""
    return "".join(f" - {k}: {v:.4f}" for k, v in logs.items())


class ProgressBar(Callback):
    """Prints training progress (see the module docstring)."""

    order = 90

    def __init__(self, verbose: int = 1, print_fn: Callable[..., None] | None = None,
                 dynamic: bool | None = None, interval: float = 0.25, width: int = 30):
        self.verbose = int(verbose)
        self.print_fn = print_fn or _default_print
        self.dynamic = resolve_verbose(self.verbose, dynamic, "ProgressBar")[1]
        self.interval = interval
        self.width = width
        self._last = 0.0
        self._t0 = 0.0
        self._last_len = 0
        self._steps = 0

    def _out(self, text: str, end: str = "\n") -> None:
        try:
            self.print_fn(text, end)
        except TypeError:  # a print function without `end`
            self.print_fn(text)

    def before_train(self) -> None:
        self._steps = self.learn.train_data.steps

    def before_epoch(self) -> None:
        if self.verbose == 1 and self.dynamic:
            self._out(f"Epoch {self.learn.epoch + 1}/{self.learn.n_epochs}")
        self._t0 = self._last = time.perf_counter()

    def after_batch(self) -> None:
        if self.verbose != 1 or not self.dynamic or not self.learn.training:
            return
        now = time.perf_counter()
        step = self.learn.iter + 1
        if now - self._last < self.interval and step < self.learn.n_iter:
            return
        self._last = now
        self._line(step, self.learn.n_iter, now - self._t0, self.learn.running_logs(), end="")

    def _line(self, step: int, total: int, elapsed: float, logs: dict[str, float], end: str) -> None:
        done = int(self.width * step / max(total, 1))
        bar = "=" * max(done - 1, 0) + (">" if done < self.width else "=") + "." * (self.width - done)
        w = len(str(total))
        if step < total:
            eta = elapsed / step * (total - step)
            timing = f" - ETA: {format_duration(eta)}"
        else:
            timing = f" - {format_duration(elapsed)} {elapsed / max(step, 1) * 1000:.0f}ms/step"
        text = f"{step:>{w}}/{total} [{bar}]{timing}{format_logs(logs)}"
        if not self.dynamic:
            text = f"Epoch {self.learn.epoch + 1}/{self.learn.n_epochs} - {text}"
        pad = " " * max(self._last_len - len(text), 0)
        self._last_len = len(text)
        self._out(("\r" if self.dynamic else "") + text + pad, end)

    def after_epoch(self) -> None:
        elapsed = time.perf_counter() - self._t0
        if self.verbose == 1:
            self._line(self._steps, self._steps, elapsed, self.learn.logs, end="\n")
            self._last_len = 0
        elif self.verbose == 2:
            self._out(f"Epoch {self.learn.epoch + 1}/{self.learn.n_epochs} - "
                      f"{format_duration(elapsed)}{format_logs(self.learn.logs)}")
