"""The Learner's named events, the cancel exceptions, and the callback base class (fastai's pattern).

The loop is ``fit -> epoch -> (train -> batch*) -> (validate -> batch*)``; around each stage the Learner
fires ``before_<stage>`` and ``after_<stage>``, and a callback stops a stage by raising that stage's
``Cancel*Exception`` (caught by the stage, which then fires ``after_cancel_<stage>``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EVENTS", "Callback", "CancelFitException", "CancelEpochException", "CancelTrainException",
    "CancelValidException", "CancelBatchException", "CancelStepException",
]

EVENTS = (
    "before_fit", "before_epoch", "before_train", "before_batch", "after_pred", "after_loss",
    "before_backward", "after_backward", "before_step", "after_step", "after_cancel_step",
    "after_cancel_batch", "after_batch",
    "after_cancel_train", "after_train", "before_validate", "after_cancel_validate",
    "after_validate", "after_cancel_epoch", "after_epoch", "after_cancel_fit", "after_fit",
)


class CancelFitException(Exception):
    """Stop training now (after_cancel_fit, then after_fit run)."""


class CancelEpochException(Exception):
    """Skip the rest of this epoch."""


class CancelTrainException(Exception):
    """Skip the rest of this epoch's training batches."""


class CancelValidException(Exception):
    """Skip this epoch's validation."""


class CancelBatchException(Exception):
    """Skip the rest of this batch (no update)."""


class CancelStepException(Exception):
    """Skip this batch's optimizer step."""


class Callback:
    """Base of pydlr's callbacks: define any of ``EVENTS`` as a method taking no argument.

    The Learner is at ``self.learn`` while a fit runs. ``order`` sorts callbacks (lower first).
    ``state_dict()`` / ``load_state_dict()`` (JSON-safe) are saved in resume checkpoints.
    """

    order: int = 0
    learn: Any = None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None

    @property
    def name(self) -> str:
        return type(self).__name__
