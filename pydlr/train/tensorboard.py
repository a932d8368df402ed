"""Keras' TensorBoard callback, written through torch's ``torch.utils.tensorboard.SummaryWriter``.

The layout is Keras': ``log_dir/train`` and ``log_dir/validation`` hold the event files; each epoch writes
``epoch_<metric>`` (validation values without their ``val_`` prefix, in the validation folder) and
``epoch_learning_rate``; ``update_freq="batch"`` or N also writes ``batch_<metric>`` (the running means of
the epoch so far, as Keras' batch logs) every N training batches; ``histogram_freq`` N writes every
weight's histogram every N epochs; ``write_graph`` the model's graph (traced once, in inference mode, on
the first batch). Under torchrun only rank 0 writes.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from pydlr.errors import InputError, NotSupportedError
from pydlr.models.modes import evaluating
from pydlr.train.events import Callback

__all__ = ["TensorBoard"]


def _count(value, argument: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(argument, f"an integer >= {minimum}", value, "TensorBoard")
    return value


class TensorBoard(Callback):
    """Keras' ``TensorBoard(log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
    write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
    embeddings_metadata=None)``; ``write_images``, ``profile_batch`` and the embeddings are not supported."""

    order = 60

    def __init__(self, log_dir: str | os.PathLike = "logs", histogram_freq: int = 0, write_graph: bool = True,
                 write_images: bool = False, write_steps_per_second: bool = False,
                 update_freq: str | int = "epoch", profile_batch: int = 0, embeddings_freq: int = 0,
                 embeddings_metadata: dict | None = None):
        where = "TensorBoard"
        if not isinstance(log_dir, (str, os.PathLike)) or not str(log_dir):
            raise InputError("log_dir", "a folder path", log_dir, where)
        self.histogram_freq = _count(histogram_freq, "histogram_freq")
        if not isinstance(write_graph, bool):
            raise InputError("write_graph", "True or False", write_graph, where)
        if update_freq not in ("epoch", "batch") and (isinstance(update_freq, bool) or
                                                       not isinstance(update_freq, int) or update_freq < 1):
            raise InputError("update_freq", '"epoch", "batch" or a positive integer', update_freq, where)
        for argument, value in (("write_images", write_images), ("write_steps_per_second", write_steps_per_second),
                                ("profile_batch", profile_batch), ("embeddings_freq", embeddings_freq),
                                ("embeddings_metadata", embeddings_metadata)):
            if value not in (False, 0, None):
                raise NotSupportedError(f"TensorBoard: {argument}={value!r} is not supported; pydlr writes "
                                        "scalars, weight histograms and the graph.")
        self.log_dir = Path(log_dir)
        self.write_graph = write_graph
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self._writers: dict[str, object] = {}
        self._train_step = 0
        self._graph_done = False

    def _writer(self, kind: str):
        if kind not in self._writers:
            from torch.utils.tensorboard import SummaryWriter

            self._writers[kind] = SummaryWriter(log_dir=str(self.log_dir / kind))
        return self._writers[kind]

    def _writes(self) -> bool:
        return getattr(self.learn, "rank", 0) == 0

    def before_fit(self):
        self._graph_done = not self.write_graph
        # the batch count goes on from initial_epoch, as Keras' global step
        self._train_step = self.learn.epoch * getattr(self.learn.train_data, "steps", 0)

    def before_batch(self):
        if not self._graph_done and self.learn.training and self._writes():
            self._graph_done = True
            self._add_graph(self.learn.xb)

    def _add_graph(self, xb: torch.Tensor) -> None:
        model = self.learn.model
        try:
            with evaluating(model), warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                self._writer("train").add_graph(model, xb[:1])
        except Exception as err:  # noqa: BLE001 (tracing fails on some models; training goes on)
            warnings.warn(f"TensorBoard: the model's graph could not be written ({type(err).__name__}: "
                          f"{str(err)[:200]}); the scalars and histograms are.", stacklevel=2)

    def after_batch(self):
        learn = self.learn
        if not learn.training:
            return
        self._train_step += 1
        if self.update_freq != "epoch" and self._train_step % self.update_freq == 0 and self._writes():
            writer = self._writer("train")
            for name, value in learn.running_logs().items():
                writer.add_scalar(f"batch_{name}", value, self._train_step)

    def after_epoch(self):
        if not self._writes():
            return
        learn, epoch = self.learn, self.learn.epoch
        for name, value in learn.logs.items():
            kind, key = ("validation", name[4:]) if name.startswith("val_") else ("train", name)
            self._writer(kind).add_scalar(f"epoch_{key}", value, epoch)
        opt = getattr(learn, "opt", None)
        if opt is not None and getattr(opt, "param_groups", None):
            self._writer("train").add_scalar("epoch_learning_rate", float(opt.param_groups[0]["lr"]), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._histograms(epoch)
        for writer in self._writers.values():
            writer.flush()

    def _histograms(self, epoch: int) -> None:
        writer = self._writer("train")
        for module in self.learn.model.modules():
            layer = getattr(module, "name", None)
            if not isinstance(layer, str):
                continue
            for pname, p in module.named_parameters(recurse=False):
                writer.add_histogram(f"{layer}/{pname}", p.detach().float().cpu(), epoch)

    def after_fit(self):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
