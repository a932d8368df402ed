"""The model's training / inference mode, switched for a block and always restored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Inference mode for the block, then the caller's mode again, also when the block raises: a forward
    pass in training mode would update BatchNormalization's running statistics (changing the model) and
    apply Dropout, and a model left in eval mode by a failed call would train without them."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
