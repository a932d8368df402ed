"""The Learner: a short fit -> epoch -> batch loop whose every extra is a callback (fastai's design).

Speed rules kept here (issue 10): no host synchronisation per batch (loss and metric sums stay on the
device; ``.item()`` happens when a callback asks for ``running_logs()`` or at the end of an epoch,
except the NaN check, which reads the loss each batch on CPU, where reading it costs no sync, and every
``nan_check_every`` batches on GPUs); no per-batch allocation in the data path (see
pydlr.data.batching); the event dispatch only calls callbacks that define the event.
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Callable, Iterable, Sequence

import torch

from pydlr.data.batching import mix_seed
from pydlr.errors import TrainingError
from pydlr.train.cuda_graphs import GraphedStep
from pydlr.train.events import (
    EVENTS,
    Callback,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
)
from pydlr.train.history import History
from pydlr.train.losses import Loss
from pydlr.train.metrics import Metric

__all__ = ["Learner"]

_CANCELS = (CancelFitException, CancelEpochException, CancelTrainException, CancelValidException,
            CancelBatchException, CancelStepException)


class Learner:
    """Trains ``model`` with ``loss`` and a torch ``optimizer``, reporting ``metrics``.

    Parameters
    ----------
    model : torch.nn.Module
        Takes a batch as the data source delivers it (NHWC images for pydlr's models).
    loss : pydlr.train.losses.Loss
    optimizer : torch.optim.Optimizer
    metrics : sequence of pydlr.train.metrics.Metric
    callbacks : iterable of Callback
        Stay attached for every fit of this Learner.
    device : torch.device
    precision : {"float32", "bfloat16", "float16"}
        Autocast dtype of the forward pass; float16 uses a gradient scaler (CUDA).
    nan_check_every : int, optional
        Batches between finiteness checks of the loss (default: 1 on CPU, 50 on GPUs; 0 = off).
    """

    def __init__(self, model: torch.nn.Module, loss: Loss, optimizer: torch.optim.Optimizer,
                 metrics: Sequence[Metric] = (), callbacks: Iterable[Callback] = (),
                 device: torch.device | str = "cpu", precision: str = "float32",
                 nan_check_every: int | None = None):
        self.model = model
        self.loss_func = loss
        self.opt = optimizer
        self.metrics = list(metrics)
        self.device = torch.device(device)
        self.precision = precision
        self.nan_check_every = (nan_check_every if nan_check_every is not None
                                else (1 if self.device.type == "cpu" else 50))
        self.cbs: list[Callback] = list(callbacks)
        self.history = History()
        self.stop_training = False
        self.scaler = (torch.amp.GradScaler(self.device.type)
                       if precision == "float16" and self.device.type == "cuda" else None)
        self.epoch = 0
        self.iter = 0
        self.n_epochs = 0
        self.n_iter = 0
        self.start_epoch = 0
        self.training = False
        self.logs: dict[str, float] = {}
        self.train_data = self.valid_data = None
        self.seed = 0
        self.forward_module: torch.nn.Module = model  # a DDP wrapper under torchrun
        self.rank, self.world_size = 0, 1
        self._graph: GraphedStep | None = None  # the training step as a CUDA graph (pydlr.train.cuda_graphs)
        self.graph_status = "eager"

    # ----- events -------------------------------------------------------------------------------
    def _build_handlers(self) -> None:
        cbs = sorted(self.cbs, key=lambda c: c.order)
        self._handlers = {e: [(c, getattr(c, e)) for c in cbs if callable(getattr(c, e, None))]
                          for e in EVENTS}

    def __call__(self, event: str) -> None:
        for cb, handler in self._handlers[event]:
            try:
                handler()
            except _CANCELS:
                raise
            except Exception as exc:  # name the callback and the moment, keep the exception's type
                if hasattr(exc, "add_note"):
                    exc.add_note(f"(raised by callback {cb.name} at {event}, epoch "
                                 f"{self.epoch + 1}, batch {self.iter + 1})")
                raise

    def _with_events(self, fn: Callable[[], None], stage: str, cancel: type[Exception]) -> None:
        try:
            self(f"before_{stage}")
            fn()
        except cancel:
            self(f"after_cancel_{stage}")
        self(f"after_{stage}")

    # ----- the loop -----------------------------------------------------------------------------
    def fit(self, n_epochs: int, train_data, valid_data=None, initial_epoch: int = 0,
            callbacks: Iterable[Callback] = (), seed: int = 0) -> History:
        """Train for epochs ``initial_epoch .. n_epochs - 1`` over ``train_data`` (an ArrayBatches).

        Returns the Learner's History (epochs of earlier fits stay in it, as in Keras).
        """
        extra = list(callbacks)
        self.cbs.extend(extra)
        for cb in self.cbs:
            cb.learn = self
        self._build_handlers()
        self.n_epochs, self.start_epoch, self.seed = n_epochs, initial_epoch, seed
        self.train_data, self.valid_data = train_data, valid_data
        self.stop_training = False
        self._graph = self._graphed_step(train_data)
        try:
            with _old_objects_frozen():
                self._with_events(self._do_fit, "fit", CancelFitException)
        except torch.OutOfMemoryError:
            raise self._out_of_memory(train_data) from None
        finally:
            for cb in extra:
                self.cbs.remove(cb)
            self._build_handlers()
            if self._graph is not None:
                self.graph_status = self._graph.status()
                self._graph.close()
                self._graph = None
            if isinstance(getattr(self.history, "params", None), dict):
                self.history.params["cuda_graph"] = self.graph_status
        return self.history

    def _out_of_memory(self, train_data) -> TrainingError:
        """The device ran out of memory: free what the failed step held and say what to change."""
        self.opt.zero_grad(set_to_none=True)
        self.pred = self.loss = self.xb = self.yb = self.wb = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        size = getattr(train_data, "batch_size", None)
        hint = f"a smaller batch_size (this fit used {size}; try {max(1, size // 2)})" if size else "smaller batches"
        return TrainingError(
            f"the {self.device} device ran out of memory at epoch {self.epoch + 1}, batch {self.iter + 1}: use "
            f"{hint} or a smaller model/input size. The model's weights are those of the last completed step "
            "and it can be fitted again."
        )

    def _graphed_step(self, train_data) -> GraphedStep | None:
        """A GraphedStep when this fit's training step can run as a CUDA graph, else None (reason kept)."""
        why = GraphedStep.unusable(self)
        if why is None and not isinstance(getattr(train_data, "batch_size", None), int):
            why = "batches of unknown size"
        self.graph_status = f"eager: {why}" if why else "eager"
        return None if why else GraphedStep(self, train_data.batch_size)

    def _do_fit(self) -> None:
        for epoch in range(self.start_epoch, self.n_epochs):  # before_fit may move start_epoch
            self.epoch = epoch
            self._with_events(self._do_epoch, "epoch", CancelEpochException)
            if self._should_stop():
                raise CancelFitException()

    def _should_stop(self) -> bool:
        return self.stop_training or bool(getattr(self.model, "stop_training", False))

    def _do_epoch(self) -> None:
        self.logs = {}
        self._with_events(self._do_train, "train", CancelTrainException)
        self.logs.update(self._epoch_logs(prefix=""))
        if self.valid_data is not None:
            self._with_events(self._do_validate, "validate", CancelValidException)
        self.history.append(self.epoch, self.logs)  # before after_epoch: checkpoints include it

    def _do_train(self) -> None:
        self.model.train()
        self.training = True
        # dropout & co. draw from torch's global generator: seed it per (seed, epoch, rank) so every
        # epoch is reproducible on its own (resume, DDP ranks) whatever ran before it
        torch.manual_seed(mix_seed(self.seed, self.epoch, self.rank, 3))
        self.n_iter = self.train_data.steps
        self._run_batches(self.train_data.epoch(self.epoch))

    def _do_validate(self) -> None:
        self.model.eval()
        self.training = False
        self.n_iter = self.valid_data.steps
        try:
            with torch.no_grad():
                self._run_batches(self.valid_data.epoch(0))
        finally:
            self.training = True
        self.logs.update(self._epoch_logs(prefix="val_"))

    def _run_batches(self, batches) -> None:
        self._reset_sums()
        for i, (xb, yb, wb) in enumerate(batches):
            self.iter, self.xb, self.yb, self.wb = i, xb, yb, wb
            self._with_events(self._do_one_batch, "batch", CancelBatchException)
            if self.training and self._should_stop():
                raise CancelFitException()

    def _autocast(self, cache_enabled: bool = True):
        if self.precision == "float32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bfloat16" else torch.float16
        # (a CUDA graph capture needs the weight cast cache off: cached casts would outlive the capture)
        return torch.autocast(self.device.type, dtype=dtype, cache_enabled=cache_enabled)

    def _do_one_batch(self) -> None:
        graph = self._graph if self.training else None
        if graph is None:
            self._eager_batch()
            return
        if graph.replay(self):  # forward, loss, backward and update from the captured graph
            self._accumulate()
            self("after_step")
            return
        with graph.eager_context(self):
            self._eager_batch()

    def _eager_batch(self) -> None:
        with self._autocast():
            self.pred = self.forward_module(self.xb)
        self("after_pred")
        self.loss = self.loss_func(self.pred, self.yb, self.wb)
        self("after_loss")
        self._accumulate()
        if not self.training:
            return
        self._with_events(self._do_step, "step", CancelStepException)

    def _do_step(self) -> None:
        self("before_backward")
        if self.scaler is not None:
            self.scaler.scale(self.loss).backward()
        else:
            self.loss.backward()
        self("after_backward")
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    # ----- running sums on the device -----------------------------------------------------------
    def _reset_sums(self) -> None:
        # separate 0-d tensors: one in-place add per value and batch, no indexing ops
        self._sums = [torch.zeros((), dtype=torch.float32, device=self.device)
                      for _ in range(1 + len(self.metrics))]
        self._count = 0

    def _accumulate(self) -> None:
        n = self.xb.shape[0]
        loss = self.loss.detach()
        if self.training and self.nan_check_every and self.iter % self.nan_check_every == 0:
            self._check_finite(loss)
        sums = self._sums
        sums[0].add_(loss, alpha=n)
        if self.metrics:
            pred = self.pred.detach()  # detached inputs: no graph is recorded, no no_grad needed
            for j, m in enumerate(self.metrics, start=1):
                sums[j].add_(m(pred, self.yb))
        self._count += n

    def _check_finite(self, loss: torch.Tensor) -> None:
        value = float(loss) if loss.device.type == "cpu" else float(self._sums[0])
        if not math.isfinite(value):
            raise TrainingError(
                f"the loss became {value} at epoch {self.epoch + 1}, batch {self.iter + 1}: training "
                "diverged. Lower the learning rate, check the inputs are scaled (e.g. x / 255) and "
                "the labels match the loss (one-hot for categorical_crossentropy, integers for "
                "sparse_categorical_crossentropy), or clip gradients."
            )

    def running_logs(self) -> dict[str, float]:
        """Mean loss and metrics over the batches of the current stage so far (one host sync)."""
        return self._epoch_logs(prefix="val_" if not self.training else "", reduce=False)

    def _epoch_logs(self, prefix: str, reduce: bool = True) -> dict[str, float]:
        sums = torch.stack(self._sums).double()
        count = self._count
        if reduce and self.world_size > 1 and prefix == "":  # training shards differ by rank
            import torch.distributed as dist

            both = torch.cat([sums, torch.tensor([float(count)], dtype=torch.float64,
                                                 device=sums.device)])
            dist.all_reduce(both)
            sums, count = both[:-1], int(both[-1])
        if count == 0:
            return {}
        values = (sums / count).tolist()
        names = ["loss"] + [m.name for m in self.metrics]
        return {prefix + k: v for k, v in zip(names, values, strict=False)}


@contextlib.contextmanager
def _old_objects_frozen():
    """Python's cyclic GC ignores the objects that exist when training starts (gc.freeze), until it ends.

    A training step makes many short-lived Python objects (tensors, autograd nodes), so the collector runs
    often, and its full collections walked the ~300,000 objects that importing torch, NumPy and pandas
    leaves behind: 10% of a seed-CNN step's samples were in gc_collect_main. Frozen, they are skipped; the
    step's own garbage is still collected. Measured: 3.6% less time a step (bench/bench_step.py set-up).
    Nested fits (a callback that fits) leave the outer freeze in place.
    """
    already = gc.get_freeze_count() > 0
    if not already:
        gc.freeze()
    try:
        yield
    finally:
        if not already:
            gc.unfreeze()
