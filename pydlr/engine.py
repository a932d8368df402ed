"""Keras' training API on pydlr's models: ``compile``, ``fit``, ``evaluate``, ``predict``.

``pydlr.Sequential`` is ``engine.Sequential``: ``pydlr.models.Sequential`` plus `TrainingMixin` (the
models know no training loop; the mixin adds it). The mixin works on any ``torch.nn.Module`` that takes
channels-last batches, so it can also be mixed into other model classes (``engine.Model`` for the
functional API).

Where the work is: argument checks in pydlr.train.options, data preparation in pydlr.data.prepare,
the loop and its callbacks (history, seeding, NaN check, precision, DDP) in pydlr.train.

Semantics (as Keras; tested in tests/test_train_engine.py)
----------------------------------------------------------
- One optimizer update per mini-batch. An epoch is ``steps_per_epoch`` batches, by default
  ``ceil(N / batch_size)`` with the last batch partial (N = 2000, batch 20: 100 updates; N = 2001:
  101). With ``steps_per_epoch`` given, batches are full and the data cycle (a new permutation each
  pass) when ``steps_per_epoch * batch_size > N``.
- ``validation_split`` holds out the *last* fraction of x/y before shuffling, as Keras (with a warning
  when that part holds classes the training part lacks: data sorted by class).
- ``class_weight`` / ``sample_weight`` weight each sample's loss: ``sum(w * l) / batch``.
- Outputs: ``predict`` returns what the model's last layer returns, as Keras: probabilities when it
  ends in softmax/sigmoid. A model that outputs logits (pydlr's ``seed_cnn`` head) is compiled with
  ``losses.SparseCategoricalCrossentropy(from_logits=True)`` (Keras' way), and then
  ``predict_proba`` gives probabilities (softmax, or sigmoid for one output) and ``predict_classes``
  the classes either way.
- ``compile`` changes nothing unless it succeeds, and builds ``model.optimizer`` at once when the model
  has its weights (else at the first fit); ``model.optimizer.learning_rate`` reads and sets the rate
  the next step uses.
- ``seed``: bit-identical weights on CPU for the same seed and the same initial weights
  (``pydlr.utils.set_random_seed`` before building the model makes those reproducible too). The seed
  fixes shuffling, augmentation and dropout; fit leaves the global RNG as it found it.
- ``resume=path``: the full training state is written atomically to ``path`` after every epoch; a
  fit started with an existing ``path`` continues after its last complete epoch and reaches the same
  final weights as an uninterrupted run (bit-identical on CPU).
- Speed: the data are converted once to float32 tensors (channels-last; on the GPU when training
  there), batches are gathered into a reused buffer, loss and metrics are summed on the device, and
  the progress bar reads them a few times a second, not every batch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from pydlr.data.augment import Augment
from pydlr.data.batching import ArrayBatches, resolve_batch_size
from pydlr.data.columns import column_names, on_columns, validation_on_columns
from pydlr.data.image_dataset import (
    DatasetBatches,
    ImageDataset,
    dataset_batches,
    with_skipped_rows,
)
from pydlr.data.prepare import (
    ArrayRows,
    Prepared,
    check_loss_fits_model,
    prepare_data,
    prepare_dataset_fit,
    prepare_fit_data,
    prepare_x_rows,
    sample_weights,
    split_point,
    with_class_weight,
)
from pydlr.data.scale import data_scale, other_scale, warn_other_scale
from pydlr.data.structured import (
    IterableBatches,
    ListBatches,
    has_several_inputs,
    is_iterable_source,
    prepare_inputs,
    prepare_structured,
    rows,
    split_batch,
    to_device,
)
from pydlr.errors import InputError, is_out_of_memory
from pydlr.io.saving import apply_optimizer_state
from pydlr.models.functional import Model as _BaseModel
from pydlr.models.inference import FoldedInference
from pydlr.models.modes import evaluating
from pydlr.models.sequential import Sequential as _BaseSequential
from pydlr.saving import SavingMethods
from pydlr.train import distributed as ddp
from pydlr.train.events import Callback
from pydlr.train.history import History
from pydlr.train.learner import Learner
from pydlr.train.losses import Loss, MultiOutputLoss
from pydlr.train.lr_schedules import LearningRateSchedule, ScheduleStep
from pydlr.train.metrics import Metric
from pydlr.train.optimizers import (
    get_optimizer,
    import_torch_optimizer_machinery,
    with_learning_rate,
)
from pydlr.train.options import FitOptions, resolve_device
from pydlr.train.outputs import (
    compile_loss,
    compile_metrics,
    loss_config,
    loss_from_config,
    metrics_config,
)
from pydlr.train.progress import ProgressBar
from pydlr.train.validation_freq import ValidationFreq

__all__ = ["TrainingMixin", "Sequential", "Model", "resolve_device"]


class TrainingMixin:
    """compile / fit / evaluate / predict for an ``nn.Module`` that takes NHWC (or (N, features)) input."""

    # ----- compile ------------------------------------------------------------------------------
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None,
                metrics: Sequence[Any] | None = None, loss_weights: Any = None, **kwargs: Any) -> None:
        """Configure training (Keras' ``compile``; default optimizer "rmsprop" as Keras).

        Everything is checked and built before anything is assigned: a failed compile leaves the model
        as it was.

        Parameters
        ----------
        optimizer : str or Optimizer or torch.optim.Optimizer
            "sgd", "adam", "adamw", "rmsprop" (Keras' defaults), a spec such as
            ``pydlr.train.optimizers.Adam(learning_rate=1e-3)``, or a torch optimizer already holding
            this model's parameters.
        loss : str or Loss or callable, or a list/dict of them for several outputs
            "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
            "mse", "mae", ``losses.SparseCategoricalCrossentropy(from_logits=True)`` etc., a function
            ``fn(y_true, y_pred)`` or a torch loss module (`pydlr.train.outputs`).
        metrics : list
            "accuracy", "top_k" (k = 5), "top_<k>", "mae", "mse", ``pydlr.metrics`` objects (``AUC()``,
            ``Precision()``, ``F1Score(average="macro")``, ...; their ``name`` is the history key), functions
            ``fn(y_true, y_pred)``; per output for several outputs (a list of lists or a dict by output name).
        loss_weights : list or dict, optional
            Several outputs: the weight of each output's loss in the total (default 1 each).
        """
        unsupported = sorted(k for k, v in kwargs.items() if v is not None and k not in ("jit_compile",))
        if unsupported:
            raise InputError("compile arguments", "optimizer, loss, metrics", unsupported,
                             where="compile")
        if loss is None:
            raise InputError("loss", "a loss name such as 'categorical_crossentropy'", loss,
                             where="compile")
        loss_fn = compile_loss(self, loss, loss_weights)
        metric_fns = compile_metrics(metrics, loss_fn)
        spec = get_optimizer(optimizer)
        if not isinstance(loss_fn, MultiOutputLoss):
            check_loss_fits_model(self, loss_fn, "compile")
        import_torch_optimizer_machinery()  # torch's one-time cost of a first optimizer, paid here
        built = self._build_optimizer(spec)
        self._loss: Loss = loss_fn
        self._loss_argument = loss
        self._metrics: list[Metric] = metric_fns
        self._metrics_argument = metrics
        self._optimizer_spec = spec
        self.optimizer = built if built is not None else spec
        self.compiled = True
        self.stop_training = False

    @property
    def loss(self) -> Any:
        """Keras' ``model.loss``: the loss given to ``compile`` (None before)."""
        modules = self.__dict__.get("_modules", {})
        if "loss" in modules:  # a subclass's self.loss = torch module (nn.Module files it with the layers)
            return modules["loss"]
        return getattr(self, "_loss_argument", None)

    @loss.setter
    def loss(self, value: Any) -> None:  # a subclass may keep its own ``self.loss``, as Keras allows
        self._loss_argument = value

    @property
    def metrics_names(self) -> list[str]:
        """The names of ``evaluate``'s list, in its order: "loss", then each output's loss (several
        outputs) and the metrics (Keras 2's meaning, the one ``dict(zip(model.metrics_names, scores))``
        relies on; Keras 3 gives ["loss", "compile_metrics"] there)."""
        return ["loss"] + [m.name for m in getattr(self, "_metrics", [])]

    def _build_optimizer(self, spec: Any) -> torch.optim.Optimizer | None:
        """The torch optimizer for ``spec`` over the trainable weights; None while the model has no
        weights yet (an input-less Sequential is built by its first fit)."""
        if isinstance(spec, torch.optim.Optimizer):
            return with_learning_rate(spec)
        params = [p for p in self.parameters() if p.requires_grad]
        if not getattr(self, "built", True) or not params:
            return None
        built = spec.build(params)
        built.pydlr_device = params[0].device  # what the implementation was chosen for
        return built

    def get_compile_config(self) -> dict | None:
        """JSON-safe compile settings (saved by ``io.save_model``; see `compile_from_config`)."""
        if not getattr(self, "compiled", False):
            return None
        spec = self._optimizer_spec
        if isinstance(spec, torch.optim.Optimizer):
            defaults = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.defaults.items()
                        if isinstance(v, (int, float, bool, tuple, type(None)))}
            opt = {"class_name": f"torch.optim.{type(spec).__name__}", "config": defaults}
        else:
            opt = spec.get_config()
        loss = loss_config(self._loss)
        if loss is None:  # a user's loss function cannot be written to JSON: saved uncompiled
            return None
        return {"optimizer": opt, "loss": loss,
                "metrics": metrics_config(self._metrics_argument, self._metrics, self._loss)}

    def compile_from_config(self, config: dict) -> None:
        """Re-compile from `get_compile_config`'s result (the optimizer is built then, so a saved
        optimizer state can be loaded into it)."""
        from pydlr.train import optimizers

        opt = dict(config["optimizer"])
        name = opt.pop("class_name")
        if name.startswith("torch.optim."):
            cls = getattr(torch.optim, name.split(".")[-1])
            kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in opt["config"].items()}
            optimizer = cls([p for p in self.parameters() if p.requires_grad], **kw)
        else:
            optimizer = optimizers.get(name, **opt)
        loss, loss_weights = loss_from_config(config["loss"])
        metrics = config.get("metrics")
        self.compile(optimizer=optimizer, loss=loss, metrics=list(metrics or []) if not isinstance(
            metrics, dict) else metrics, loss_weights=loss_weights)

    def _require_compiled(self, where: str) -> None:
        if not getattr(self, "compiled", False):
            raise InputError("model", "a compiled model (call model.compile(optimizer=..., loss=...) "
                             "first)", "a model that was not compiled", where=where)

    # ----- fit ----------------------------------------------------------------------------------
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: int | str = "auto", callbacks: Sequence[Callback] | None = None,
            validation_split: float = 0.0, validation_data: Sequence[Any] | None = None,
            shuffle: bool = True, class_weight: dict | None = None, sample_weight: Any = None,
            initial_epoch: int = 0, steps_per_epoch: int | None = None,
            validation_batch_size: int | None = None, seed: int | None = None,
            device: Any = "auto", resume: Any = None, augment: Augment | None = None,
            workers: int = 0, precision: str = "auto", print_fn: Any = None,
            dynamic_progress: bool | None = None, distributed: bool | Mapping = False,
            nproc_per_node: int = 2, nan_check: bool = True, validation_steps: int | None = None,
            validation_freq: Any = 1) -> History:
        """Train the model in place; returns a `History` (also kept as ``self.history``).

        Keras' arguments and meanings (epoch rules: the module docstring; batch_size None: 32;
        verbose "auto": `pydlr.train.progress.resolve_verbose`), plus: seed (reproducibility), device
        ("auto": CUDA when present), resume (a checkpoint path, restored if it exists, written every
        epoch), augment (an `Augment` applied per batch) and workers (processes that prefetch it),
        precision ("auto": bfloat16/float16 autocast on CUDA, float32 on CPU), print_fn and
        dynamic_progress (the R package passes its console printer and whether its line can be
        rewritten in place), distributed (True, or R's list as {"nproc_per_node": n}: re-run under torchrun,
        ``pydlr.train.distributed``; every other argument goes to the processes, callbacks excepted),
        nan_check (stop with TrainingError on a NaN/Inf loss). x may be an image dataset
        (`pydlr.utils.image_dataset_from_directory`): labels, batch size and decoding workers come with
        it (``workers`` is for arrays), validation_data is a dataset too, and validation_steps /
        validation_freq are keras'.
        """
        self._require_compiled("fit")
        if not isinstance(shuffle, (bool, np.bool_)):  # bool("yes"), bool("batch") would pass unnoticed
            raise InputError("shuffle", "True or False", shuffle, where="fit")
        if distributed:
            # Every fit argument goes to the processes: callbacks are refused there by name, and the others
            # (resume, shuffle, augment, ...) left out would be dropped without a word.
            options = dict(distributed) if isinstance(distributed, Mapping) else {"nproc_per_node": nproc_per_node}
            return ddp.fit_distributed(self, x, y, batch_size=batch_size, epochs=epochs, seed=seed,
                                       verbose=verbose, **options, callbacks=callbacks,
                                       validation_data=validation_data, validation_split=validation_split,
                                       sample_weight=sample_weight, class_weight=class_weight,
                                       steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
                                       validation_freq=validation_freq, shuffle=shuffle,
                                       initial_epoch=initial_epoch, augment=augment, workers=workers,
                                       precision=precision, nan_check=nan_check,
                                       validation_batch_size=validation_batch_size,
                                       resume=None if resume is None else os.fspath(resume),
                                       device=device if isinstance(device, str) else str(device))
        opts = FitOptions.check(**{k: v for k, v in locals().items() if k in FitOptions.names()})
        ctx = ddp.ddp_context(opts.device)  # None unless running under torchrun with > 1 process
        dev = ctx.device if ctx else opts.device
        if isinstance(x, ImageDataset):
            train, valid = self._dataset_batches(x, y, validation_data, opts, dev, ctx, batch_size=batch_size,
                                                 sample_weight=sample_weight, class_weight=class_weight)
        elif self._general_data(x, validation_data, y):
            train, valid = self._general_batches(x, y, sample_weight, class_weight, validation_data, opts,
                                                 dev, ctx)
        else:
            validation_data = validation_on_columns(validation_data, column_names(x))
            data = prepare_fit_data(self, self._loss, x, y, sample_weight, class_weight,
                                    opts.validation_split, validation_data)
            self._to_device(dev)
            train, valid = self._fit_batches(data, opts, dev, ctx)
        # what label k means from now on: evaluate on a dataset checks its classes against these
        self.trained_class_names = x.class_names if isinstance(x, ImageDataset) else None
        self.input_scale = data_scale(x)  # predict/evaluate warn on images of another scale (None: not images)
        self.trained_column_names = column_names(x)  # predict/evaluate read a table's columns by these names
        learner = self._learner(dev, opts, train.steps)
        self.stop_training = False
        try:
            self.history = learner.fit(opts.epochs, train, valid, initial_epoch=opts.initial_epoch,
                                       callbacks=self._fit_callbacks(opts, ctx), seed=train.seed)
        finally:
            train.close()
            if valid is not None:
                valid.close()
        return self.history

    def _fit_batches(self, data, opts: FitOptions, dev: torch.device, ctx):
        """The training and validation batch sources of one fit (each rank its shard under DDP)."""
        if opts.augment is not None and data.train.x.dim() != 4:
            raise InputError("augment", "image data (n, height, width, channels)", data.train.x,
                             where="fit")
        seed = ddp.broadcast_seed(opts.seed) if ctx else opts.seed
        rank, world = (ctx.rank, ctx.world_size) if ctx else (0, 1)
        tr = data.train
        train = ArrayBatches(tr.x, tr.y, opts.batch_size, opts.steps_per_epoch, opts.shuffle, seed,
                             tr.w, opts.augment, opts.workers, dev, rank=rank, world_size=world)
        va = data.valid
        valid = (ArrayBatches(va.x, va.y, opts.validation_batch_size, None, False, 0, va.w, None, 0,
                              dev) if va is not None else None)
        return train, valid

    # ----- several inputs or outputs, generators (pydlr.data.structured) ---------------------------------
    def _general_data(self, x: Any, validation_data: Any = None, y: Any = None) -> bool:
        """Whether the data take the general path: several inputs or outputs (or dicts by name), or a
        generator/DataLoader (one array in, one out keeps the one-tensor path)."""
        return (isinstance(getattr(self, "_loss", None), MultiOutputLoss) or has_several_inputs(self, x)
                or isinstance(y, dict) or is_iterable_source(x) or is_iterable_source(validation_data))

    def _converter(self, where: str, targets: bool = True, class_weight: Any = None):
        """Checks and converts one batch of a generator as `prepare_structured` does arrays."""
        def convert(batch: Any) -> tuple[Any, Any, Any]:
            bx, by, bw = split_batch(batch)
            if not targets:
                return prepare_inputs(self, bx, where), None, None
            p = prepare_structured(self, self._loss, bx, by, bw, class_weight, where)
            return p.x, p.y, p.w

        return convert

    def _general_source(self, x: Any, y: Any, sample_weight: Any, where: str, batch_size: int,
                        steps: int | None, dev: torch.device, argument: str = "x",
                        targets: bool = True) -> IterableBatches | ListBatches:
        """The batches of evaluate / predict / validation on the general path."""
        if is_iterable_source(x):
            if y is not None:
                raise InputError("y", f"None when {argument} is a generator or DataLoader (it yields the "
                                 "targets)", y, where=where)
            return IterableBatches(x, steps, self._converter(where, targets), dev, argument, where)
        if targets:
            data = prepare_structured(self, self._loss, x, y, sample_weight, None, where)
        else:
            data = Prepared(prepare_inputs(self, x, where))
        return ListBatches(data, batch_size, steps, False, 0, dev)

    def _general_batches(self, x: Any, y: Any, sample_weight: Any, class_weight: Any, validation_data: Any,
                         opts: FitOptions, dev: torch.device, ctx):
        """fit's batch sources on the general path (checked before the first step)."""
        where = "fit"
        if opts.augment is not None:
            raise InputError("augment", "None with several inputs or a generator (augment in the generator, "
                             "or with augmentation layers in the model)", opts.augment, where=where)
        self._to_device(dev)
        valid = None
        if is_iterable_source(x):
            if y is not None:
                raise InputError("y", "None when x is a generator or DataLoader (it yields the targets)", y,
                                 where=where)
            if opts.validation_split:
                raise InputError("validation_split", "0 when x is a generator (pass validation_data)",
                                 opts.validation_split, where=where)
            if sample_weight is not None:
                raise InputError("sample_weight", "None when x is a generator (its batches may be (x, y, "
                                 "sample_weight))", sample_weight, where=where)
            train = IterableBatches(x, opts.steps_per_epoch, self._converter(where, True, class_weight), dev,
                                    "x", where)
        else:
            split = validation_data is None and opts.validation_split
            # with validation_split the class weights wait for the split: they weigh the training part only
            data = prepare_structured(self, self._loss, x, y, sample_weight, None if split else class_weight,
                                      where)
            if split:
                data, held = data.split(split_point(data.x.shape[0], opts.validation_split, where))
                data = with_class_weight(data, getattr(self._loss, "kind", None), class_weight, where)
                valid = ListBatches(held, opts.validation_batch_size, None, False, 0, dev)
            seed = ddp.broadcast_seed(opts.seed) if ctx else opts.seed
            rank, world = (ctx.rank, ctx.world_size) if ctx else (0, 1)
            train = ListBatches(data, opts.batch_size, opts.steps_per_epoch, opts.shuffle, seed, dev, rank, world)
        if validation_data is not None:
            vx, vy, vw = (validation_data, None, None) if is_iterable_source(validation_data) else \
                self._validation_tuple(validation_data)
            valid = self._general_source(vx, vy, vw, where, opts.validation_batch_size, opts.validation_steps,
                                         dev, "validation_data")
        return train, valid

    @staticmethod
    def _validation_tuple(validation_data: Any) -> tuple[Any, Any, Any]:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise InputError("validation_data", "a tuple (x_val, y_val) or (x_val, y_val, weights), or a "
                             "generator", validation_data, where="fit")
        return split_batch(tuple(validation_data))

    def _dataset_batches(self, ds, y, validation_data, opts: FitOptions, dev: torch.device, ctx,
                         **array_only: Any):
        """The batch sources of a fit on image datasets (checked against the model and the loss first;
        the worker processes start with the first epoch)."""
        prepare_dataset_fit(self, self._loss, ds, y, opts.validation_split, validation_data, **array_only)
        self._to_device(dev)
        seed = ddp.broadcast_seed(opts.seed) if ctx else opts.seed
        rank, world = (ctx.rank, ctx.world_size) if ctx else (0, 1)
        class_weight, kind = array_only.get("class_weight"), self._loss.kind
        weigh = None if class_weight is None else (
            lambda yb: sample_weights(yb, kind, class_weight, None, "fit"))
        return dataset_batches(ds, validation_data, steps_per_epoch=opts.steps_per_epoch,
                               validation_steps=opts.validation_steps, shuffle=opts.shuffle, seed=seed,
                               augment=opts.augment, device=dev, rank=rank, world_size=world, weigh=weigh)

    def _fit_callbacks(self, opts: FitOptions, ctx) -> list[Callback]:
        """This fit's callbacks: progress (rank 0 only), the user's, resume, DDP."""
        verbose = opts.verbose if not ctx or ctx.rank == 0 else 0
        cbs: list[Callback] = ([ProgressBar(verbose, opts.print_fn, opts.dynamic_progress)]
                               if verbose else [])
        cbs.append(ScheduleStep(self._schedule()))
        cbs += opts.callbacks
        if opts.validation_freq != 1:
            cbs.append(ValidationFreq(opts.validation_freq))
        if opts.resume is not None:
            cbs.append(opts.resume)
        if ctx:
            cbs.append(ddp.DistributedTraining(ctx))
        return cbs

    def _schedule(self) -> LearningRateSchedule | None:
        """The compiled optimizer's learning-rate schedule (keras.optimizers.schedules), if it has one."""
        lr = getattr(self._optimizer_spec, "learning_rate", None)
        return lr if isinstance(lr, LearningRateSchedule) else None

    def _learner(self, dev: torch.device, opts: FitOptions, steps: int) -> Learner:
        """A Learner on this model for one fit, with its optimizer ready (built now if compile could
        not yet) and Keras' ``params``."""
        self.optimizer = self._optimizer_for_fit()
        pending = getattr(self, "pending_optimizer_state", None)
        if pending is not None:  # io.load_model(compile=False) left the saved state for us
            apply_optimizer_state(self.optimizer, pending)
            self.pending_optimizer_state = None
        learner = Learner(self, self._loss, self.optimizer, self._metrics, device=dev,
                          precision=opts.precision, nan_check_every=None if opts.nan_check else 0)
        learner.history.params = {"epochs": opts.epochs, "steps": steps, "verbose": opts.verbose,
                                  "batch_size": opts.batch_size}
        return learner

    def _optimizer_for_fit(self) -> torch.optim.Optimizer:
        """The compiled optimizer, ready for this fit.

        Built now when the model had no weights at compile. Rebuilt from the compiled spec when the
        weights moved to another device since it was built (the implementation is chosen per device:
        pydlr's one-call Adam on CPU float32, torch's fused kernels on CUDA), keeping its state and rate;
        or when the set of trainable weights changed (Keras asks for a new compile then), keeping the
        rate. A torch optimizer given to compile is the user's and is used as it is.
        """
        opt, spec = self.optimizer, self._optimizer_spec
        if isinstance(spec, torch.optim.Optimizer):
            return opt
        if not isinstance(opt, torch.optim.Optimizer):
            return self._built_for_fit(opt)
        trainable = [p for p in self.parameters() if p.requires_grad]
        same_weights = [id(p) for g in opt.param_groups for p in g["params"]] == list(map(id, trainable))
        moved = any(p.device != getattr(opt, "pydlr_device", p.device) for p in trainable)
        if same_weights and not moved:
            return opt
        new = self._built_for_fit(spec)
        if same_weights:  # torch's load_state_dict puts each state tensor where its weight is
            new.load_state_dict({"state": opt.state_dict()["state"],
                                 "param_groups": new.state_dict()["param_groups"]})
        new.learning_rate = opt.learning_rate
        if hasattr(opt, "iterations"):  # a schedule's step count goes on
            new.iterations = opt.iterations
        return new

    def _built_for_fit(self, spec: Any) -> torch.optim.Optimizer:
        built = self._build_optimizer(spec)
        if built is None:
            raise InputError("model", "a model with trainable weights", "no trainable weights",
                             where="fit")
        return built

    def _to_device(self, dev: torch.device) -> None:
        """Move the weights (``Module.to`` keeps the Parameter objects); a user's torch optimizer's
        state moves with them (pydlr's own optimizers are rebuilt for the device, see
        `_optimizer_for_fit`)."""
        ref = next(iter(self.parameters()), None)
        if ref is None or ref.device == dev:
            return
        self.to(dev)
        opt = getattr(self, "optimizer", None)
        if not isinstance(getattr(self, "_optimizer_spec", None), torch.optim.Optimizer):
            return
        for state in opt.state.values():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.dim() > 0:
                    state[key] = value.to(dev)

    # ----- evaluate / predict -------------------------------------------------------------------
    def _device(self) -> torch.device:
        ref = next(iter(self.parameters()), None)
        return ref.device if ref is not None else torch.device("cpu")

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: int | str = 0, sample_weight: Any = None, steps: int | None = None,
                 return_dict: bool = False) -> list[float] | dict[str, float] | float:
        """Loss and metrics on (x, y): ``[loss, metric...]`` (a float when there are no metrics, as
        Keras), or a dict with ``return_dict=True``. x may hold several inputs, y several outputs, or x may
        be a generator / DataLoader of batches (``steps`` of them: all of a DataLoader's by default). Images
        on another scale than the training images get an `InputScaleWarning`, as in `predict`."""
        where = "evaluate"
        self._require_compiled(where)
        batch_size = resolve_batch_size(batch_size, where)
        x = on_columns(x, getattr(self, "trained_column_names", None), where)
        self._warn_other_scale(x)
        dev = self._device()
        if isinstance(x, ImageDataset):
            prepare_dataset_fit(self, self._loss, x, y, where=where, sample_weight=sample_weight)
            batches = DatasetBatches(x, shuffle=False, device=dev)
        elif self._general_data(x, None, y):
            batches = self._general_source(x, y, sample_weight, where, batch_size, _steps(steps, where), dev)
        else:
            data, _ = prepare_data(self, self._loss, x, y, sample_weight, None, where, in_order=True)
            batches = (_InOrderBatches(data, batch_size, dev) if isinstance(data.x, ArrayRows)
                       else ArrayBatches(data.x, data.y, batch_size, None, False, 0, data.w, None, 0, dev))
        learner = Learner(self, self._loss, self.optimizer, self._metrics, device=dev)
        try:
            logs = learner.validate(batches)
        finally:
            batches.close()
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    # ----- one batch at a time (Keras' *_on_batch) -------------------------------------------------
    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None, class_weight: dict | None = None,
                       return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """One optimizer step on the batch (x, y), where the weights are; returns this batch's loss and
        metrics as `evaluate` does (Keras 3's ``train_on_batch``). A learning-rate schedule steps on."""
        return self._on_batch("train_on_batch", x, y, sample_weight, class_weight, return_dict, True)

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                      return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """Loss and metrics of the batch (x, y) in inference mode, no update (Keras 3's ``test_on_batch``)."""
        return self._on_batch("test_on_batch", x, y, sample_weight, None, return_dict, False)

    def predict_on_batch(self, x: Any) -> np.ndarray:
        """The model's outputs for one batch as a NumPy array (Keras 3's ``predict_on_batch``)."""
        xt = to_device(prepare_inputs(self, x, "predict_on_batch"), self._device())
        with evaluating(self), torch.inference_mode():
            return _numpy_outputs([self(xt)])

    def _on_batch(self, where: str, x: Any, y: Any, sample_weight: Any, class_weight: dict | None,
                  return_dict: bool, training: bool) -> float | list[float] | dict[str, float]:
        self._require_compiled(where)
        if self._general_data(x, None, y):
            data = prepare_structured(self, self._loss, x, y, sample_weight, class_weight, where)
        else:
            data, _ = prepare_data(self, self._loss, x, y, sample_weight, class_weight, where)
        dev = self._device()
        if training:
            self.optimizer = self._optimizer_for_fit()
        cbs = [ScheduleStep(self._schedule())] if training else []
        learner = Learner(self, self._loss, self.optimizer, self._metrics, callbacks=cbs, device=dev)
        logs = learner.one_batch(data.x.to(dev), data.y.to(dev), to_device(data.w, dev), training=training)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x: Any, batch_size: int | None = None, verbose: int | str = 0,
                steps: int | None = None) -> np.ndarray | list[np.ndarray]:
        """The model's outputs for x as a NumPy array (probabilities when the model ends in softmax /
        sigmoid; logits otherwise, as Keras; see `predict_proba`); a list of arrays for several outputs.
        x may hold several inputs (a list, or a dict by Input name), or be a generator / DataLoader
        (``steps`` batches of it; its batches are x or (x, ...) tuples), or an image dataset (one row per
        file of its ``file_paths``, NaN for a file skipped as unreadable). Images on another scale than the
        training images (pixels 0-255 for a model trained on x / 255; photos not preprocessed for an ImageNet
        network) get an `InputScaleWarning` (pydlr.data.scale): the predictions would be for other inputs than
        meant."""
        where = "predict"
        batch_size = resolve_batch_size(batch_size, where)
        x = on_columns(x, getattr(self, "trained_column_names", None), where)
        self._warn_other_scale(x)
        dev = self._device()
        skipped_before = len(x.bad_files) if isinstance(x, ImageDataset) else 0
        batches = self._predict_batches(x, batch_size, dev, where, _steps(steps, where))
        outs = []
        try:
            with evaluating(self), torch.inference_mode():
                for xb in batches:
                    outs.append(self(xb))
        except RuntimeError as exc:
            if not is_out_of_memory(exc):
                raise
            failed_at = len(outs) + 1
            outs.clear()  # free what was computed before saying so
            raise MemoryError(
                f"{where}: the {dev} device ran out of memory at batch {failed_at}: use a smaller batch_size "
                f"(this call used {batch_size}; try {max(1, batch_size // 2)}) or a smaller input size") from None
        out = _numpy_outputs(outs)
        if isinstance(x, ImageDataset):  # a NaN row for each file skipped as unreadable
            skipped = x.bad_files[skipped_before:]
            out = ([with_skipped_rows(x, o, skipped) for o in out] if isinstance(out, list)
                   else with_skipped_rows(x, out, skipped))
        return out

    def _warn_other_scale(self, x: Any) -> None:
        """An `InputScaleWarning` when image inputs x are on another scale than the training images."""
        found = scale_mismatch(self, x)
        if found is not None:
            warn_other_scale(*found)

    def _predict_batches(self, x: Any, batch_size: int, dev: torch.device, where: str, steps: int | None = None):
        """predict's input batches on ``dev``: slices of x, or a dataset's batches in its file order
        (``dataset.file_paths``, not reshuffled, so outputs line up with ``dataset.labels``)."""
        if isinstance(x, ImageDataset):
            prepare_dataset_fit(self, None, x, None, where=where)
            src = DatasetBatches(x, shuffle=False, device=dev)
            try:
                for xb, _, _ in src.epoch(0):
                    yield xb
            finally:
                src.close()
            return
        if is_iterable_source(x) or has_several_inputs(self, x):
            src = self._general_source(x, None, None, where, batch_size, steps, dev, targets=False)
            for xb, _, _ in src.epoch(0):
                yield xb
            return
        xt = prepare_x_rows(self, x, where) if isinstance(x, np.ndarray) else prepare_inputs(self, x, where)
        if isinstance(xt, ArrayRows):
            for start in range(0, len(xt), batch_size):
                yield to_device(xt.batch(start, start + batch_size), dev)
            return
        for start in range(0, xt.shape[0], batch_size):
            xb = rows(xt, slice(start, start + batch_size))
            yield to_device(xb, dev)

    def _outputs_are_logits(self) -> bool:
        loss = getattr(self, "_loss", None)
        return bool(loss is not None and loss.from_logits)

    def predict_proba(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities: the outputs when the model ends in softmax/sigmoid; softmax (sigmoid
        for one output or a binary loss) of them when the model was compiled with from_logits=True."""
        out = self.predict(x, batch_size)
        if not self._outputs_are_logits():
            return out
        t = torch.from_numpy(out)
        if out.shape[-1] == 1 or self._loss.kind == "binary":
            return torch.sigmoid(t).numpy()
        return torch.softmax(t, dim=-1).numpy()

    def predict_classes(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """Predicted classes (int64): argmax of the outputs, or output > 0.5 (> 0 for logits) for a
        single output unit; -1 for a row without outputs (an image file skipped as unreadable)."""
        out = self.predict(x, batch_size)
        if out.ndim >= 2 and out.shape[-1] > 1:
            classes = out.argmax(axis=-1).astype(np.int64)
        else:
            threshold = 0.0 if self._outputs_are_logits() else 0.5
            classes = (out.reshape(out.shape[0], -1)[:, 0] > threshold).astype(np.int64)
        classes[np.isnan(out.reshape(out.shape[0], -1)).any(axis=1)] = -1
        return classes


class _InOrderBatches:
    """evaluate's batches of an :class:`ArrayRows` x, in order (the part of ArrayBatches' interface that
    ``Learner.validate`` uses): x becomes float32 batch by batch, y and weights are sliced."""

    def __init__(self, data: Prepared, batch_size: int, device: torch.device):
        self.x, self.batch_size, self.device = data.x, int(batch_size), device
        self.y, self.w = to_device(data.y, device), to_device(data.w, device)
        self.steps = -(-len(self.x) // self.batch_size)

    def epoch(self, epoch: int):
        for start in range(0, len(self.x), self.batch_size):
            part = slice(start, start + self.batch_size)
            yield (to_device(self.x.batch(start, part.stop), self.device), self.y[part],
                   None if self.w is None else self.w[part])

    def close(self) -> None:
        pass


def _steps(steps: Any, where: str) -> int | None:
    from pydlr.layers.base import positive_int

    return None if steps is None else positive_int(steps, "steps", where)


def _numpy_outputs(outs: list[Any]) -> np.ndarray | list[np.ndarray]:
    """predict's result from the outputs of each batch: one array, or one per output (several outputs)."""
    if isinstance(outs[0], (list, tuple)):
        return [torch.cat([o[i].float() for o in outs]).cpu().numpy() for i in range(len(outs[0]))]
    return torch.cat([o.float() for o in outs]).cpu().numpy()


class Sequential(FoldedInference, TrainingMixin, SavingMethods, _BaseSequential):
    """Keras' Sequential with compile/fit/evaluate/predict (pydlr.Sequential).

    ``predict`` runs a copy with BatchNormalization folded (``models.inference``) when a layer is a network
    that predicts that way itself (an application network: a ``fine_tune`` result, or a user's head on one);
    a plain stack of layers predicts as it trains."""

    @property
    def fold_inference(self) -> bool:
        return any(getattr(layer, "fold_inference", False) for layer in self.layers)


class Model(TrainingMixin, SavingMethods, _BaseModel):
    """Keras' functional Model with compile/fit/evaluate/predict (pydlr.Model)."""


def scale_mismatch(model: Any, x: Any) -> tuple[float, float, bool] | None:
    """``(seen, trained, pretrained)`` when the images x reach ``seen`` and ``model``'s training images reached
    ``trained`` more than `pydlr.data.scale.RATIO` times apart; None when they agree or a scale is unknown (a
    table, a dataset, a model never fitted). ``trained`` is what fit() saw, or for an ImageNet network never
    fitted here the scale of its preprocessed photos (``pretrained`` True for such networks either way)."""
    from pydlr.pretrained.imagenet import input_scale

    trained, pretrained = getattr(model, "input_scale", None), input_scale(model)
    if trained is None:
        trained = pretrained
    if trained is None:
        return None
    seen = data_scale(x)
    return (seen, trained, pretrained is not None) if other_scale(seen, trained) else None
