"""Exceptions raised by pydlr (the R package maps them to R conditions of the same names), and its warnings."""

from __future__ import annotations

from typing import Any


class PydlrError(Exception):
    """Base class of all pydlr errors."""


class InputError(PydlrError, ValueError):
    """Bad input, detected before any work starts.

    The message names where it happened, the argument, what was expected and what came.
    """

    def __init__(self, argument: str, expected: str, received: Any, where: str | None = None):
        self.argument = argument
        self.expected = expected
        self.received = received
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(
            f"{prefix}argument `{argument}` must be {expected}; received {describe(received)}."
        )


class NotSupportedError(PydlrError, NotImplementedError):
    """A Keras feature outside pydlr's supported subset; the message says what pydlr offers instead."""


class NotSupportedAttributeError(NotSupportedError, AttributeError):
    """A Keras name a pydlr module does not have (``layers.LSTM``): NotSupportedError's message, and an
    AttributeError so that ``hasattr()`` and ``getattr(module, name, default)`` keep working."""


class TrainingError(PydlrError, RuntimeError):
    """Training stopped for a reason the user must act on (e.g. a NaN loss)."""


def write_failed(path: Any, exc: OSError) -> OSError:
    """The OSError of a failed atomic write (full disk, quota, read-only folder), saying which file and that
    the previous one is untouched: the same class and errno, so ``except OSError`` still catches it."""
    reason = exc.strerror or str(exc)
    return OSError(exc.errno, f"could not write {path}: {reason}; nothing was replaced (an earlier file at "
                              "that path is intact). Free space or choose another folder, then save again")


def is_out_of_memory(exc: BaseException) -> bool:
    """torch running out of memory: a GPU's ``torch.OutOfMemoryError``, or the CPU allocator's plain
    RuntimeError ("DefaultCPUAllocator: can't allocate memory: you tried to allocate ...")."""
    text = str(exc)
    return (type(exc).__name__ == "OutOfMemoryError" or "can't allocate memory" in text
            or "DefaultCPUAllocator" in text)


# The fix for channels-first images (PyTorch's and R's image layout) where pydlr wants channels last
CHANNELS_FIRST_FIX = ("they look channels first (n, channels, height, width): move the channels last with "
                      "np.moveaxis(x, 1, -1) in Python, aperm(x, c(1, 3, 4, 2)) in R")


def describe(value: Any) -> str:
    """A short, readable description of a received value for error messages."""
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {value.dtype}"
    if isinstance(value, (tuple, list)) and 0 < len(value) <= 4 and any(hasattr(v, "shape") for v in value):
        # (x_val,) for validation_data: the arrays' shapes, not their printed values
        return f"a {type(value).__name__} of {len(value)}: ({', '.join(describe(v) for v in value)})"
    text = repr(value)
    # Long values keep both ends: a path's file name is at its end, and it is the part that identifies it.
    return text if len(text) <= 120 else text[:58] + "..." + text[-59:]


class InputScaleWarning(UserWarning):
    """Images on another scale than the model's training images (pydlr.data.scale): ``seen`` is the largest
    magnitude of these inputs, ``trained`` of the training inputs, ``advice`` how to scale them."""

    def __init__(self, message: str, seen: float, trained: float, advice: str):
        super().__init__(message)
        self.seen, self.trained, self.advice = seen, trained, advice
