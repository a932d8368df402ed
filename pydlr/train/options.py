"""fit's settings, checked once: every argument of ``fit`` that is not data, validated and resolved
(defaults, ``verbose="auto"``, the device, the precision, the seed) before any work starts.

``TrainingMixin.fit`` is the one argument list; `FitOptions` takes those arguments by name and holds
the checked values. The data arguments (x, y, weights, validation data) are pydlr.data.prepare's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pydlr import devices
from pydlr.data.augment import Augment
from pydlr.data.batching import resolve_batch_size
from pydlr.errors import InputError
from pydlr.train.callbacks import BackupAndRestore
from pydlr.train.events import Callback
from pydlr.train.progress import resolve_verbose
from pydlr.train.validation_freq import check_validation_freq

__all__ = ["FitOptions", "resolve_device", "resolve_precision", "positive_int"]

WHERE = "fit"


def positive_int(value: Any, name: str, where: str, allow_none: bool = False) -> int | None:
    """``value`` as an int > 0 (or None when allowed), else InputError naming ``name``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InputError(name, "a positive integer" + (" or None" if allow_none else ""), value,
                         where=where)
    return int(value)


def resolve_device(device: Any, where: str = WHERE) -> torch.device:
    """`pydlr.devices.resolve_device`, its errors naming ``where`` (fit by default)."""
    return devices.resolve_device(device, where)


def resolve_precision(precision: str, dev: torch.device, where: str = WHERE) -> str:
    """'auto' -> bfloat16 (float16 where bf16 is unsupported) on CUDA, float32 on the CPU."""
    if precision == "auto":
        if dev.type == "cuda":
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return "float32"
    if precision not in ("float32", "bfloat16", "float16"):
        raise InputError("precision", "'auto', 'float32', 'bfloat16' or 'float16'", precision,
                         where=where)
    if precision == "float16" and dev.type == "cpu":
        raise InputError("precision", "'float32' or 'bfloat16' on the CPU", precision, where=where)
    return precision


@dataclasses.dataclass
class FitOptions:
    """The checked non-data arguments of ``fit`` (meanings in ``TrainingMixin.fit``)."""

    batch_size: int
    epochs: int
    verbose: int
    callbacks: list[Callback]
    validation_split: float
    shuffle: bool
    initial_epoch: int
    steps_per_epoch: int | None
    validation_batch_size: int
    seed: int
    device: torch.device
    resume: BackupAndRestore | None
    augment: Augment | None
    workers: int
    precision: str
    print_fn: Any
    dynamic_progress: bool
    nan_check: bool
    validation_steps: int | None
    validation_freq: int | tuple[int, ...]

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def check(cls, **args: Any) -> FitOptions:
        """Validate and resolve ``fit``'s non-data arguments, given by name (all of them)."""
        epochs = positive_int(args["epochs"], "epochs", WHERE)
        initial_epoch, split = args["initial_epoch"], args["validation_split"]
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) \
                or not 0 <= initial_epoch < epochs:
            raise InputError("initial_epoch", f"an integer in 0..{epochs - 1}", initial_epoch, WHERE)
        if isinstance(split, bool) or not isinstance(split, (int, float)) or not 0 <= split < 1:
            raise InputError("validation_split", "a fraction in [0, 1)", split, where=WHERE)
        workers, augment, seed = args["workers"], args["augment"], args["seed"]
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise InputError("workers", "a non-negative integer", workers, where=WHERE)
        if augment is not None and not isinstance(augment, Augment):
            raise InputError("augment", "a pydlr.data.Augment(...)", augment, where=WHERE)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise InputError("seed", "a non-negative integer or None", seed, where=WHERE)
        callbacks = _check_callbacks(args["callbacks"])
        verbose, dynamic = resolve_verbose(args["verbose"], args["dynamic_progress"], WHERE)
        device = resolve_device(args["device"])
        batch_size = resolve_batch_size(args["batch_size"], WHERE)
        return cls(
            batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
            validation_split=float(split), shuffle=bool(args["shuffle"]),
            initial_epoch=int(initial_epoch),
            steps_per_epoch=positive_int(args["steps_per_epoch"], "steps_per_epoch", WHERE, True),
            validation_batch_size=resolve_batch_size(args["validation_batch_size"] or batch_size,
                                                     WHERE, "validation_batch_size"),
            seed=int(torch.randint(0, 2**62, (1,)).item()) if seed is None else int(seed),
            device=device,
            resume=BackupAndRestore(args["resume"]) if args["resume"] is not None else None,
            augment=augment, workers=workers,
            precision=resolve_precision(args["precision"], device),
            print_fn=args["print_fn"], dynamic_progress=dynamic, nan_check=bool(args["nan_check"]),
            validation_steps=positive_int(args["validation_steps"], "validation_steps", WHERE, True),
            validation_freq=check_validation_freq(args["validation_freq"], WHERE),
        )


def _check_callbacks(callbacks: Sequence[Any] | None) -> list[Callback]:
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    if not isinstance(callbacks, (list, tuple)) or not all(isinstance(c, Callback) for c in callbacks):
        raise InputError("callbacks", "a list of pydlr callbacks", callbacks, where=WHERE)
    return list(callbacks)
