"""keras' ``validation_freq``: validate only on some epochs (an int: every n-th epoch; a list: those
1-based epochs). Epochs without validation have no ``val_*`` entries in the history, as in keras."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pydlr.errors import InputError
from pydlr.train.events import Callback, CancelValidException

__all__ = ["ValidationFreq", "check_validation_freq"]


def check_validation_freq(value: Any, where: str = "fit") -> int | tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1:
        return int(value)
    if (isinstance(value, (list, tuple)) and value
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in value)):
        return tuple(int(v) for v in value)
    raise InputError("validation_freq", "a positive integer (validate every n epochs) or a list of 1-based "
                     "epochs", value, where=where)


class ValidationFreq(Callback):
    """Cancels the validation of the epochs keras' ``validation_freq`` leaves out."""

    def __init__(self, freq: int | Sequence[int]):
        self.freq = freq

    def before_validate(self) -> None:
        epoch = self.learn.epoch + 1
        run = epoch in self.freq if isinstance(self.freq, tuple) else epoch % self.freq == 0
        if not run:
            raise CancelValidException()
