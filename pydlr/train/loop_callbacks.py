"""The callbacks the Learner's loop is made of: history recording, per-epoch seeding, the NaN check and
mixed precision. The Learner adds them itself (see ``Learner.__init__``); the distributed one lives in
pydlr.train.distributed beside the rest of the DDP code.

Orders: Recorder runs first at ``after_epoch`` so checkpoints written by later callbacks include the
epoch just finished; NanCheck runs last at ``after_batch``, after user callbacks that change the loss.
None of them acts inside the training step except GradScaling (float16 on CUDA), so the step can be
captured as a CUDA graph (pydlr.train.cuda_graphs).
"""

from __future__ import annotations

import contextlib
import math

import torch

from pydlr.data.batching import mix_seed
from pydlr.errors import TrainingError
from pydlr.train.events import Callback, CancelStepException

__all__ = ["Recorder", "EpochSeed", "NanCheck", "Autocast", "GradScaling", "no_autocast"]


def no_autocast(cache_enabled: bool = True) -> contextlib.AbstractContextManager:
    """The Learner's forward context at full precision (the signature of `Autocast`'s)."""
    return contextlib.nullcontext()


class Recorder(Callback):
    """Appends each epoch's logs to ``learn.history`` (Keras' History)."""

    order = -50

    def after_epoch(self) -> None:
        self.learn.history.append(self.learn.epoch, self.learn.logs)


class EpochSeed(Callback):
    """Seeds torch's global generator per (seed, epoch, rank) before each training stage, so dropout &
    co. make every epoch reproducible on its own (resume, DDP ranks) whatever ran before it; the global
    generator is restored when the fit ends."""

    order = -40

    def fit_context(self):
        devices = [self.learn.device.index or 0] if self.learn.device.type == "cuda" else []
        return torch.random.fork_rng(devices=devices, enabled=True)

    def before_train(self) -> None:
        torch.manual_seed(mix_seed(self.learn.seed, self.learn.epoch, self.learn.rank, 3))


class NanCheck(Callback):
    """Stops training with a TrainingError when the loss is NaN or infinite.

    On the CPU the loss is read every ``every`` batches (reading it costs no device sync there). On GPUs
    a flag is or-ed on the device every batch and read every ``every`` batches, so the check costs one
    sync per ``every`` batches and still catches a bad batch between two reads.
    """

    order = 100

    def __init__(self, every: int = 1):
        self.every = int(every)
        self._bad: torch.Tensor | None = None

    def before_train(self) -> None:
        self._bad = None

    def after_batch(self) -> None:  # after the step, as Keras' TerminateOnNaN (a graphed step has no after_loss)
        learn = self.learn
        if not learn.training:
            return
        loss = learn.loss.detach()
        if loss.device.type != "cpu":
            bad = ~torch.isfinite(loss)
            self._bad = bad if self._bad is None else self._bad | bad
        if learn.iter % self.every:
            return
        if loss.device.type == "cpu":
            value = float(loss)
            if not math.isfinite(value):
                self._stop(f"the loss became {value}")
        elif bool(self._bad):
            self._stop("the loss became NaN or infinite")

    def _stop(self, what: str) -> None:
        raise TrainingError(
            f"{what} at epoch {self.learn.epoch + 1}, batch {self.learn.iter + 1}: training diverged. "
            "Lower the learning rate, check the inputs are scaled (e.g. x / 255) and the labels match "
            "the loss (one-hot for categorical_crossentropy, integers for "
            "sparse_categorical_crossentropy), or clip gradients."
        )


class Autocast(Callback):
    """The forward pass autocast to ``precision`` ("bfloat16" or "float16"). It only sets the Learner's
    ``forward_context`` and acts at no event inside the step, so a CUDA graph can capture the step.

    The weights stay float32 and so do their gradients. On a CPU with AMX-BF16, pydlr's 3x3 convolutions with 32k
    input and output channels (with or without a 2x2 max pooling fused) run bf16 AMX kernels under it (bf16
    operands, float32 sums and outputs); every other native CPU operator (the first layer's fused kernel, Winograd,
    pooling) runs in float32, as do Dense products too small for bf16's GEMM to win (docs/performance.md,
    "bf16 autocast")."""

    order = -30

    def __init__(self, precision: str):
        self.dtype = torch.bfloat16 if precision == "bfloat16" else torch.float16

    def before_fit(self) -> None:
        device, dtype = self.learn.device.type, self.dtype

        def forward_context(cache_enabled: bool = True):
            # a CUDA graph capture asks for cache_enabled=False: cached casts would outlive the capture
            return torch.autocast(device, dtype=dtype, cache_enabled=cache_enabled)

        self.learn.forward_context = forward_context

    def after_fit(self) -> None:
        self.learn.forward_context = no_autocast


class GradScaling(Callback):
    """float16 training on CUDA: the loss scaled before the backward pass, and the optimizer step taken by
    the scaler (it skips steps whose gradients overflowed). It reads the gradients' finiteness on the host,
    so a fit with it runs eagerly (no CUDA graph)."""

    order = 95  # its before_step replaces the plain step: after callbacks that adjust gradients

    def before_fit(self) -> None:
        self.scaler = torch.amp.GradScaler(self.learn.device.type)

    def before_backward(self) -> None:
        self.learn.loss_grad = self.scaler.scale(self.learn.loss_grad)

    def before_step(self) -> None:
        self.scaler.step(self.learn.opt)
        self.scaler.update()
        raise CancelStepException()  # the scaler took (or skipped) the step
