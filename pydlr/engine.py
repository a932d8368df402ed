"""Keras' training API on pydlr's models: ``compile``, ``fit``, ``evaluate``, ``predict``.

``pydlr.Sequential`` is ``engine.Sequential``: the models owner's Sequential plus `TrainingMixin`.
The mixin works on any ``torch.nn.Module`` that takes channels-last batches, so it can also be mixed
into other model classes (``engine.Model`` for the functional API).

Semantics (as Keras; tested in tests/test_train_engine.py)
----------------------------------------------------------
- One optimizer update per mini-batch. An epoch is ``steps_per_epoch`` batches, by default
  ``ceil(N / batch_size)`` with the last batch partial (N = 2000, batch 20: 100 updates; N = 2001:
  101). With ``steps_per_epoch`` given, batches are full and the data cycle (a new permutation each
  pass) when ``steps_per_epoch * batch_size > N``.
- ``validation_split`` holds out the *last* fraction of x/y before shuffling, as Keras.
- ``class_weight`` / ``sample_weight`` weight each sample's loss: ``sum(w * l) / batch``.
- Outputs: ``predict`` returns what the model's last layer returns, as Keras: probabilities when it
  ends in softmax/sigmoid. A model that outputs logits (pydlr's ``seed_cnn`` head) is compiled with
  ``losses.SparseCategoricalCrossentropy(from_logits=True)`` (Keras' way), and then
  ``predict_proba`` gives probabilities (softmax, or sigmoid for one output) and ``predict_classes``
  the classes either way.
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

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pydlr.data.arrays import as_x_tensor, as_y_tensor, check_lengths
from pydlr.data.augment import Augment
from pydlr.data.batching import ArrayBatches
from pydlr.errors import InputError
from pydlr.train.callbacks import BackupAndRestore
from pydlr.train.events import Callback
from pydlr.train.history import History
from pydlr.train.learner import Learner
from pydlr.train.losses import Loss, get_loss
from pydlr.train.metrics import Metric, get_metric
from pydlr.train.optimizers import get_optimizer
from pydlr.train.progress import ProgressBar

__all__ = ["TrainingMixin", "Sequential", "Model", "resolve_device"]


def resolve_device(device: Any, where: str = "fit") -> torch.device:
    """'auto' -> CUDA when present, else CPU; also 'cpu', 'cuda', 'cuda:1', torch.device."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError("device", "'auto', 'cpu' or 'cuda[:i]'", device, where=where) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device", "'cpu' or 'auto' (no CUDA device is available)", device,
                         where=where)
    return dev


def _positive_int(value: Any, name: str, where: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InputError(name, "a positive integer" + (" or None" if allow_none else ""), value,
                         where=where)
    return int(value)


class TrainingMixin:
    """compile / fit / evaluate / predict for an ``nn.Module`` that takes NHWC (or (N, features)) input."""

    # ----- compile ------------------------------------------------------------------------------
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None,
                metrics: Sequence[Any] | None = None, **kwargs: Any) -> None:
        """Configure training (Keras' ``compile``; default optimizer "rmsprop" as Keras).

        Parameters
        ----------
        optimizer : str or Optimizer or torch.optim.Optimizer
            "sgd", "adam", "adamw", "rmsprop" (Keras' defaults), a spec such as
            ``pydlr.train.optimizers.Adam(learning_rate=1e-3)``, or a torch optimizer already holding
            this model's parameters.
        loss : str or Loss
            "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
            "mse", "mae", or ``losses.SparseCategoricalCrossentropy(from_logits=True)`` etc.
        metrics : list of str
            "accuracy", "top_k" (k = 5), "top_<k>", "mae", "mse".
        """
        unsupported = sorted(k for k, v in kwargs.items() if v is not None and k not in ("jit_compile",))
        if unsupported:
            raise InputError("compile arguments", "optimizer, loss, metrics", unsupported,
                             where="compile")
        if loss is None:
            raise InputError("loss", "a loss name such as 'categorical_crossentropy'", loss,
                             where="compile")
        if isinstance(metrics, (str, Metric)):
            metrics = [metrics]
        self._loss: Loss = get_loss(loss)
        self._metrics: list[Metric] = [get_metric(m, self._loss.kind, self._loss.from_logits)
                                       for m in (metrics or [])]
        self._optimizer_spec = get_optimizer(optimizer)
        self.optimizer: torch.optim.Optimizer | None = (
            self._optimizer_spec if isinstance(self._optimizer_spec, torch.optim.Optimizer) else None)
        self.compiled = True
        self.stop_training = False

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
        return {"optimizer": opt,
                "loss": {"name": self._loss.name, "from_logits": self._loss.from_logits},
                "metrics": [m.name for m in self._metrics]}

    def compile_from_config(self, config: dict) -> None:
        """Re-compile from `get_compile_config`'s result and build the optimizer now (so a saved
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
        loss = get_loss(config["loss"]["name"], from_logits=bool(config["loss"].get("from_logits")))
        self.compile(optimizer=optimizer, loss=loss, metrics=list(config.get("metrics") or []))
        if self.optimizer is None:
            self.optimizer = self._optimizer_spec.build(
                [p for p in self.parameters() if p.requires_grad])

    def _require_compiled(self, where: str) -> None:
        if not getattr(self, "compiled", False):
            raise InputError("model", "a compiled model (call model.compile(optimizer=..., loss=...) "
                             "first)", "a model that was not compiled", where=where)

    # ----- data preparation ---------------------------------------------------------------------
    def _expected_input(self) -> tuple | None:
        spec = getattr(self, "input_spec", None)
        return tuple(spec) if spec is not None else None

    def _prepare_x(self, x: Any, where: str, name: str = "x") -> torch.Tensor:
        t = as_x_tensor(x, where=where, name=name)
        spec = self._expected_input()
        if spec is not None:
            if (t.dim() == len(spec) and len(spec) == 3 and spec[-1] == 1
                    and tuple(t.shape[1:]) == tuple(spec[:2])):
                t = t.unsqueeze(-1)  # (N, H, W) for a one-channel model, as the models accept
            got = tuple(t.shape[1:])
            if len(got) != len(spec) or any(s is not None and s != g for s, g in zip(spec, got, strict=False)):
                raise InputError(name, f"samples of shape {spec} (the model's input shape, channels "
                                 "last)", f"samples of shape {got}", where=where)
        return t

    def _output_width(self, x: torch.Tensor, device: torch.device, where: str) -> int | None:
        """Run two samples through the model (eval mode, no grad) to learn its output width."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out = self(x[:2].to(device))
        except InputError:
            raise
        except (RuntimeError, ValueError) as exc:
            raise InputError("x", "samples the model can take", f"samples of shape "
                             f"{tuple(x.shape[1:])} ({str(exc).splitlines()[0]})", where=where) from None
        finally:
            self.train(was_training)
        return int(out.shape[-1]) if out.dim() >= 2 else None

    def _prepare_y(self, y: Any, n_out: int | None, where: str, name: str = "y") -> torch.Tensor:
        if y is None:
            raise InputError(name, "labels (y) for training", None, where=where)
        t = as_y_tensor(y, self._loss.kind, n_out, where=where)
        if self._loss.kind in ("binary", "regression") and t.dim() == 1 and n_out == 1:
            t = t.unsqueeze(1)
        return t

    def _sample_weights(self, y: torch.Tensor, class_weight: Any, sample_weight: Any,
                        where: str) -> torch.Tensor | None:
        w = None
        if class_weight is not None:
            if not isinstance(class_weight, dict) or not class_weight:
                raise InputError("class_weight", "a dict {class: weight}", class_weight, where=where)
            if self._loss.kind not in ("sparse", "categorical", "binary"):
                raise InputError("class_weight", "used only with a classification loss",
                                 class_weight, where=where)
            classes = (y.argmax(-1) if self._loss.kind == "categorical" else y.reshape(len(y), -1)[:, 0]
                       ).to(torch.int64)
            n_cls = max(int(classes.max()) + 1, max(int(k) for k in class_weight) + 1)
            table = torch.ones(n_cls)
            for k, v in class_weight.items():
                table[int(k)] = float(v)
            w = table[classes]
        if sample_weight is not None:
            sw = as_x_tensor(sample_weight, where=where, name="sample_weight").reshape(-1)
            if sw.shape[0] != y.shape[0]:
                raise InputError("sample_weight", f"{y.shape[0]} weights", sw, where=where)
            w = sw if w is None else w * sw
        return w

    # ----- fit ----------------------------------------------------------------------------------
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: int | str = "auto", callbacks: Sequence[Callback] | None = None,
            validation_split: float = 0.0, validation_data: Sequence[Any] | None = None,
            shuffle: bool = True, class_weight: dict | None = None, sample_weight: Any = None,
            initial_epoch: int = 0, steps_per_epoch: int | None = None,
            validation_batch_size: int | None = None, seed: int | None = None,
            device: Any = "auto", resume: Any = None, augment: Augment | None = None,
            workers: int = 0, precision: str = "auto", print_fn: Any = None,
            dynamic_progress: bool | None = None, distributed: bool = False,
            nproc_per_node: int = 2, nan_check: bool = True) -> History:
        """Train the model in place; returns a `History` (also kept as ``self.history``).

        Keras' arguments and meanings (see the module docstring for the epoch rules), plus:
        seed (reproducibility), device ("auto" = CUDA when present), resume (a checkpoint path,
        restored when it exists and written after every epoch), augment (an `Augment`, applied per
        batch), workers (augmentation processes that prefetch; 0 = in this process), precision
        ("auto": float16 autocast on CUDA (bfloat16 where supported), float32 on CPU; or "float32",
        "bfloat16"), print_fn / dynamic_progress (how the progress bar prints: the R package passes
        its console printer), distributed (re-run this fit under torchrun, see
        ``pydlr.train.distributed``), nan_check (stop with TrainingError when the loss is NaN/Inf;
        checked every batch on CPU, every 50 on GPUs).
        """
        where = "fit"
        self._require_compiled(where)
        if distributed:
            from pydlr.train.distributed import fit_distributed

            return fit_distributed(self, x, y, batch_size=batch_size, epochs=epochs, seed=seed,
                                   nproc_per_node=nproc_per_node, verbose=verbose)
        batch_size = 32 if batch_size is None else _positive_int(batch_size, "batch_size", where)
        epochs = _positive_int(epochs, "epochs", where)
        steps_per_epoch = _positive_int(steps_per_epoch, "steps_per_epoch", where, allow_none=True)
        if verbose == "auto":
            verbose = 1
        if verbose not in (0, 1, 2) or isinstance(verbose, bool):
            raise InputError("verbose", "0, 1, 2 or 'auto'", verbose, where=where)
        if not isinstance(initial_epoch, int) or not 0 <= initial_epoch < epochs:
            raise InputError("initial_epoch", f"an integer in 0..{epochs - 1}", initial_epoch,
                             where=where)
        if not isinstance(validation_split, (int, float)) or not 0 <= validation_split < 1:
            raise InputError("validation_split", "a fraction in [0, 1)", validation_split,
                             where=where)
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise InputError("workers", "a non-negative integer", workers, where=where)
        if augment is not None and not isinstance(augment, Augment):
            raise InputError("augment", "a pydlr.data.Augment(...)", augment, where=where)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise InputError("seed", "a non-negative integer or None", seed, where=where)
        if callbacks is not None and not all(isinstance(c, Callback) for c in callbacks):
            raise InputError("callbacks", "a list of pydlr callbacks", callbacks, where=where)
        dev = resolve_device(device, where)
        from pydlr.train import distributed as ddp

        ctx = ddp.ddp_context(dev)  # None unless running under torchrun with > 1 process
        rank, world = (ctx.rank, ctx.world_size) if ctx else (0, 1)
        if ctx:
            dev = ctx.device
            verbose = verbose if rank == 0 else 0
        precision = self._resolve_precision(precision, dev, where)
        backup = BackupAndRestore(resume) if resume is not None else None

        xt = self._prepare_x(x, where)
        if augment is not None and xt.dim() != 4:
            raise InputError("augment", "image data (n, height, width, channels)", xt, where=where)
        self._to_device(dev)
        n_out = self._output_width(xt, dev, where)
        yt = self._prepare_y(y, n_out, where)
        check_lengths(xt, yt, where)
        wt = self._sample_weights(yt, class_weight, sample_weight, where)

        val = None
        if validation_data is not None:
            val = self._validation_tuple(validation_data, n_out, where)
        elif validation_split > 0:
            n_val = int(math.floor(xt.shape[0] * validation_split))
            if n_val < 1 or n_val >= xt.shape[0]:
                raise InputError("validation_split", "a fraction leaving samples on both sides",
                                 validation_split, where=where)
            cut = xt.shape[0] - n_val
            val = (xt[cut:], yt[cut:], None if wt is None else wt[cut:])
            xt, yt, wt = xt[:cut], yt[:cut], (None if wt is None else wt[:cut])

        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        if ctx:
            seed = ddp.broadcast_seed(seed)
        train = ArrayBatches(xt, yt, batch_size, steps_per_epoch, shuffle, int(seed), wt, augment,
                             workers, dev, rank=rank, world_size=world)
        valid = (ArrayBatches(val[0], val[1], validation_batch_size or batch_size, None, False, 0,
                              val[2], None, 0, dev) if val is not None else None)
        learner = self._make_learner(dev, precision)
        if not nan_check:
            learner.nan_check_every = 0
        if ctx:
            learner.forward_module = ddp.wrap(self, ctx)
            learner.rank, learner.world_size = rank, world
        cbs = [ProgressBar(verbose, print_fn, dynamic_progress)] if verbose else []
        cbs += list(callbacks or [])
        if backup is not None:
            cbs.append(backup)
        learner.history.params = {"epochs": epochs, "steps": train.steps, "verbose": verbose,
                                  "batch_size": batch_size}
        self.stop_training = False
        devices = [dev.index or 0] if dev.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices, enabled=True):
                torch.manual_seed(int(seed) % 2**63)
                if dev.type == "cuda":
                    torch.cuda.manual_seed(int(seed) % 2**63)
                history = learner.fit(epochs, train, valid, initial_epoch=initial_epoch,
                                      callbacks=cbs, seed=int(seed))
        finally:
            train.close()
        self.history = history
        return history

    def _resolve_precision(self, precision: str, dev: torch.device, where: str) -> str:
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

    def _to_device(self, dev: torch.device) -> None:
        ref = next(iter(self.parameters()), None)
        if ref is not None and ref.device != dev:
            if self.optimizer is not None and not isinstance(self._optimizer_spec,
                                                             torch.optim.Optimizer):
                self.optimizer = None  # rebuilt for the moved parameters
            self.to(dev)

    def _validation_tuple(self, data: Any, n_out: int | None, where: str):
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            raise InputError("validation_data", "a tuple (x_val, y_val) or (x_val, y_val, weights)",
                             data, where=where)
        xv = self._prepare_x(data[0], where, name="validation_data[0]")
        yv = self._prepare_y(data[1], n_out, where, name="validation_data[1]")
        check_lengths(xv, yv, where)
        wv = None
        if len(data) == 3 and data[2] is not None:
            wv = as_x_tensor(data[2], where=where, name="validation_data[2]").reshape(-1)
        return xv, yv, wv

    def _make_learner(self, dev: torch.device, precision: str) -> Learner:
        if self.optimizer is None:
            self.optimizer = self._optimizer_spec.build(
                [p for p in self.parameters() if p.requires_grad])
        pending = getattr(self, "pending_optimizer_state", None)
        if pending is not None:  # io.load_model(compile=False) left the saved state for us
            self.optimizer.load_state_dict(pending)
            self.pending_optimizer_state = None
        return Learner(self, self._loss, self.optimizer, self._metrics, device=dev,
                       precision=precision)

    # ----- evaluate / predict -------------------------------------------------------------------
    def _device(self) -> torch.device:
        ref = next(iter(self.parameters()), None)
        return ref.device if ref is not None else torch.device("cpu")

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: int | str = 0, sample_weight: Any = None,
                 return_dict: bool = False) -> list[float] | dict[str, float] | float:
        """Loss and metrics on (x, y): ``[loss, metric...]`` (a float when there are no metrics, as
        Keras), or a dict with ``return_dict=True``."""
        where = "evaluate"
        self._require_compiled(where)
        batch_size = 32 if batch_size is None else _positive_int(batch_size, "batch_size", where)
        xt = self._prepare_x(x, where)
        dev = self._device()
        n_out = self._output_width(xt, dev, where)
        yt = self._prepare_y(y, n_out, where)
        check_lengths(xt, yt, where)
        wt = self._sample_weights(yt, None, sample_weight, where)
        data = ArrayBatches(xt, yt, batch_size, None, False, 0, wt, None, 0, dev)
        learner = Learner(self, self._loss, self.optimizer, self._metrics, device=dev)
        learner.cbs = []
        learner._build_handlers()
        self.eval()
        try:
            with torch.no_grad():
                learner.training = False
                learner.n_iter = data.steps
                learner._run_batches(data.epoch(0))
        finally:
            self.train()
        logs = learner._epoch_logs(prefix="")
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x: Any, batch_size: int | None = None, verbose: int | str = 0) -> np.ndarray:
        """The model's outputs for x as a NumPy array (probabilities when the model ends in softmax /
        sigmoid; logits otherwise, as Keras; see `predict_proba`)."""
        where = "predict"
        batch_size = 32 if batch_size is None else _positive_int(batch_size, "batch_size", where)
        xt = self._prepare_x(x, where)
        dev = self._device()
        outs = []
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                for start in range(0, xt.shape[0], batch_size):
                    xb = xt[start:start + batch_size]
                    if dev.type != "cpu":
                        xb = xb.to(dev, non_blocking=True)
                    outs.append(self(xb).float())
        finally:
            self.train(was_training)
        return torch.cat(outs).cpu().numpy()

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
        single output unit."""
        out = self.predict(x, batch_size)
        if out.ndim >= 2 and out.shape[-1] > 1:
            return out.argmax(axis=-1).astype(np.int64)
        threshold = 0.0 if self._outputs_are_logits() else 0.5
        return (out.reshape(out.shape[0], -1)[:, 0] > threshold).astype(np.int64)


def _base_sequential():
    from pydlr.models import Sequential as _Sequential

    return _Sequential


class Sequential(TrainingMixin, _base_sequential()):
    """Keras' Sequential with compile/fit/evaluate/predict (pydlr.Sequential)."""


try:  # the functional Model, when the models module offers it
    from pydlr.models import Model as _BaseModel

    class Model(TrainingMixin, _BaseModel):
        """Keras' functional Model with compile/fit/evaluate/predict (pydlr.Model)."""

except ImportError:  # pragma: no cover - depends on the models owner's progress
    Model = None  # type: ignore[assignment,misc]
