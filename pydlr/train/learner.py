"""The Learner: a short fit -> epoch -> batch loop whose every extra is a callback (fastai's design).

History recording, per-epoch seeding, the NaN check and mixed precision are callbacks
(pydlr.train.loop_callbacks) that the Learner adds itself; DDP is one too (pydlr.train.distributed). On
CUDA the training step may run as a captured CUDA graph (pydlr.train.cuda_graphs).

Speed rules: no host synchronisation per batch (loss and metric sums stay on the device; ``.item()``
happens when a callback asks for ``running_logs()`` or at the end of a stage; the NaN check reads the loss
each batch only on the CPU, where that costs no sync); no per-batch allocation in the data path (see
pydlr.data.batching); the event dispatch only calls callbacks that define the event.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Sequence

import torch

from pydlr.errors import TrainingError, is_out_of_memory
from pydlr.models.base import loop_call
from pydlr.models.modes import evaluating
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
from pydlr.train.loop_callbacks import (
    Autocast,
    EpochSeed,
    GradScaling,
    NanCheck,
    Recorder,
    no_autocast,
)
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
        Stay attached for every fit of this Learner (besides the loop's own: Recorder, EpochSeed,
        NanCheck, and Autocast below float32, GradScaling for float16 on CUDA).
    device : torch.device
    precision : {"float32", "bfloat16", "float16"}
        Autocast dtype of the forward pass; float16 uses a gradient scaler (CUDA). On the CPU, bfloat16 runs
        pydlr's AMX kernels for 3x3 convolutions with 32k channels where the CPU has AMX-BF16, and keeps small
        Dense products and the other native convolutions float32 (faster there; docs/performance.md).
    nan_check_every : int, optional
        Batches between finiteness checks of the loss (default: 1 on CPU, 50 on GPUs; 0 = off).

    Callbacks may define ``fit_context()`` returning a context manager that the Learner holds open for
    the whole fit (exceptions included), e.g. to restore global state.
    """

    def __init__(self, model: torch.nn.Module, loss: Loss, optimizer: torch.optim.Optimizer,
                 metrics: Sequence[Metric] = (), callbacks: Iterable[Callback] = (),
                 device: torch.device | str = "cpu", precision: str = "float32",
                 nan_check_every: int | None = None):
        self.model = model
        self.loss_func = loss
        self.opt = optimizer
        self.metrics = list(metrics)
        # metrics of the whole epoch (AUC, Precision, ...) keep a state instead of a running sum
        self.stateful_metrics = [m.state for m in self.metrics if m.state is not None]
        self.device = torch.device(device)
        every = nan_check_every if nan_check_every is not None else (
            1 if self.device.type == "cpu" else 50)
        own: list[Callback] = [Recorder(), EpochSeed()] + ([NanCheck(every)] if every else [])
        if precision != "float32":
            own.append(Autocast(precision))
        if precision == "float16" and self.device.type == "cuda":
            own.append(GradScaling())
        self.cbs: list[Callback] = own + list(callbacks)
        self.history = History()
        self.stop_training = False
        self.epoch = self.iter = self.n_epochs = self.n_iter = self.start_epoch = 0
        self.training = False
        self.logs: dict[str, float] = {}
        self.train_data = self.valid_data = None
        self.seed = 0
        self.forward_module: torch.nn.Module = model  # the DDP callback puts its wrapper here
        # the forward pass runs in forward_context(cache_enabled=True) (Autocast sets it)
        self.forward_context: Callable[..., contextlib.AbstractContextManager] = no_autocast
        self.rank, self.world_size = 0, 1
        self._graph: GraphedStep | None = None  # the training step as a CUDA graph (pydlr.train.cuda_graphs)
        self.graph_status = "eager"
        self.totals: list[torch.Tensor] = []
        self.count = 0
        self._handlers: dict | None = None

    # ----- events -------------------------------------------------------------------------------
    def _build_handlers(self) -> None:
        cbs = sorted(self.cbs, key=lambda c: c.order)
        for cb in cbs:
            cb.learn = self
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
        self._build_handlers()
        self.n_epochs, self.start_epoch, self.seed = n_epochs, initial_epoch, seed
        self.train_data, self.valid_data = train_data, valid_data
        self.stop_training = False
        model_training = self.model.training  # a user's eval() before fit holds after it, as in validate
        try:
            with _old_objects_frozen(), contextlib.ExitStack() as stack:
                for cb in sorted(self.cbs, key=lambda c: c.order):
                    if callable(getattr(cb, "fit_context", None)):
                        stack.enter_context(cb.fit_context())
                self._with_events(self._do_fit, "fit", CancelFitException)
        except RuntimeError as exc:  # torch.OutOfMemoryError (GPU) or the CPU allocator's RuntimeError
            if not is_out_of_memory(exc):
                raise
            raise self._out_of_memory(train_data) from None
        finally:
            for cb in extra:
                self.cbs.remove(cb)
            self._build_handlers()
            self._close_graph()
            self._release_fit_data()
            self.model.train(model_training)
        return self.history

    def _release_fit_data(self) -> None:
        """Drop this fit's data and last batch. The Learner and its callbacks refer to each other, so a finished
        Learner is freed by Python's cyclic collector only, at a moment set by the process's whole history;
        what it still held lived until then (the training tensor: 180 MB for Fashion-MNIST in float32), so
        memory grew fit after fit and later work page-faulted fresh memory in (lr_find, from R and from
        Python: 0.4 s of system time a call). Without references here it is freed when fit returns."""
        self.train_data = self.valid_data = None
        self.xb = self.yb = self.wb = self.pred = self.loss = self.loss_grad = None

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
        """A GraphedStep when this fit's training step can run as a CUDA graph, else None (reason kept).
        Asked after before_fit, when the callbacks have set the Learner up (DDP, precision)."""
        why = GraphedStep.unusable(self)
        if why is None and not isinstance(getattr(train_data, "batch_size", None), int):
            why = "batches of unknown size"
        self.graph_status = f"eager: {why}" if why else "eager"
        return None if why else GraphedStep(self, train_data.batch_size)

    def _close_graph(self) -> None:
        if self._graph is not None:
            self.graph_status = self._graph.status()
            self._graph.close()
            self._graph = None
        if isinstance(getattr(self.history, "params", None), dict):
            self.history.params["cuda_graph"] = self.graph_status

    def _do_fit(self) -> None:
        self._graph = self._graphed_step(self.train_data)
        for epoch in range(self.start_epoch, self.n_epochs):  # before_fit may move start_epoch
            self.epoch = epoch
            self._with_events(self._do_epoch, "epoch", CancelEpochException)
            if self._should_stop():
                raise CancelFitException()

    def _should_stop(self) -> bool:
        return self.stop_training or bool(getattr(self.model, "stop_training", False))

    def _do_epoch(self) -> None:
        self.logs = {}
        self._do_train()
        if self.valid_data is not None:
            self._with_events(self._do_validate, "validate", CancelValidException)

    def _do_train(self) -> None:
        self.model.train()
        self.training = True
        self.n_iter = self.train_data.steps
        self._with_events(lambda: self._run_batches(self.train_data.epoch(self.epoch)), "train",
                          CancelTrainException)
        self.logs.update(self.stage_logs(prefix=""))  # after after_train: DDP has reduced the totals

    def _do_validate(self) -> None:
        self.logs.update(self.validate(self.valid_data, prefix="val_"))

    def validate(self, data=None, prefix: str = "") -> dict[str, float]:
        """Mean loss and metrics over ``data`` (an ArrayBatches; default: the fit's validation data) in
        eval mode without gradients; the batch events fire with ``training`` False. The model's mode is
        restored afterwards."""
        data = self.valid_data if data is None else data
        if self._handlers is None:
            self._build_handlers()
        was_training = self.training
        self.training = False
        self.n_iter = data.steps
        try:
            with evaluating(self.model), torch.no_grad():
                self._run_batches(data.epoch(0))
        finally:
            self.training = was_training
        return self.stage_logs(prefix=prefix)

    def one_batch(self, xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor | None = None,
                  training: bool = True) -> dict[str, float]:
        """Loss and metrics of one batch, with one optimizer step when ``training`` (Keras'
        ``train_on_batch`` / ``test_on_batch``). The batch events fire, the fit's and epoch's do not;
        the model's mode is restored afterwards."""
        if self._handlers is None:
            self._build_handlers()
        model_training = self.model.training
        self.model.train(training)
        self.training, self.iter, self.n_iter = training, 0, 1
        self._reset_sums()
        self.xb, self.yb, self.wb = xb, yb, wb
        try:
            with contextlib.nullcontext() if training else torch.no_grad():
                self._with_events(self._eager_batch, "batch", CancelBatchException)
        finally:
            self.model.train(model_training)
            self.training = False
        return self.stage_logs()

    def _run_batches(self, batches) -> None:
        self._reset_sums()
        for i, (xb, yb, wb) in enumerate(batches):
            self.iter, self.xb, self.yb, self.wb = i, xb, yb, wb
            self._with_events(self._do_one_batch, "batch", CancelBatchException)
            if self.training and self._should_stop():
                raise CancelFitException()

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
        with self.forward_context(), loop_call():
            self.pred = self.forward_module(self.xb)
        self("after_pred")
        self.loss = self.loss_func(self.pred, self.yb, self.wb)
        self("after_loss")
        self._accumulate()
        if not self.training:
            return
        self.loss_grad = self.loss  # what backward() runs on (GradScaling scales it)
        self("before_backward")
        self.loss_grad.backward()
        self("after_backward")
        self._with_events(self.opt.step, "step", CancelStepException)
        self.opt.zero_grad(set_to_none=True)

    # ----- running sums on the device -----------------------------------------------------------
    def _reset_sums(self) -> None:
        # separate 0-d tensors: one in-place add per value and batch, no indexing ops
        self.totals = [torch.zeros((), dtype=torch.float32, device=self.device)
                       for _ in range(1 + len(self.metrics))]
        self.count = 0
        for state in self.stateful_metrics:
            state.reset_state()

    def _accumulate(self) -> None:
        n = self.xb.shape[0]
        totals = self.totals
        totals[0].add_(self.loss.detach(), alpha=n)
        if self.metrics:
            pred = self.pred.detach()  # detached inputs: no graph is recorded, no no_grad needed
            for j, m in enumerate(self.metrics, start=1):
                if m.state is None:
                    totals[j].add_(m.fn(pred, self.yb))
                else:
                    m.state.update_state(self.yb, pred)
        self.count += n

    def running_logs(self) -> dict[str, float]:
        """Mean loss and metrics over the batches of the current stage so far (one host sync)."""
        return self.stage_logs(prefix="val_" if not self.training else "")

    def stage_logs(self, prefix: str = "") -> dict[str, float]:
        """Mean loss and metrics of the current stage from ``totals`` / ``count``, keys prefixed."""
        if self.count == 0:
            return {}
        values = (torch.stack(self.totals).double() / self.count).tolist()
        for j, m in enumerate(self.metrics, start=1):
            if m.state is not None:
                values[j] = float(m.state.result())
        names = ["loss"] + [m.name for m in self.metrics]
        return {prefix + k: v for k, v in zip(names, values, strict=True)}


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
