"""Mini-batches for one epoch: which samples (the semantics) and how they are produced (the speed).

Semantics (tested in tests/test_data_batching.py):
- one optimizer update per mini-batch; an epoch is ``steps`` batches;
- default ``steps = ceil(N / batch_size)``: every sample once per epoch, the last batch partial
  (N = 2000, batch 20 -> 100 batches; N = 2001 -> 101, the last of 1 sample);
- with ``steps_per_epoch`` given, batches are always full and are cut from a stream of consecutive
  shuffled passes over the data, so ``steps_per_epoch * batch_size > N`` cycles the data (each pass a
  new permutation) and a smaller product uses a random subset; each epoch starts a new stream;
- the order of epoch ``e`` depends only on (seed, e): resuming at epoch e reproduces it exactly.

Speed: x is converted once to a float32 tensor (on the training device when it is a GPU and no
worker processes are used); each batch is gathered with ``index_select`` into a buffer allocated once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from pydlr.data.arrays import check_lengths
from pydlr.data.augment import Augment
from pydlr.data.workers import AugmentPool, PoolOwner
from pydlr.errors import InputError

__all__ = ["ArrayBatches", "epoch_batches", "mix_seed", "DEFAULT_BATCH_SIZE", "resolve_batch_size"]

# Keras' default. The one place it is written: fit, evaluate, predict and the R package (which passes
# NULL through) all resolve a missing batch size here.
DEFAULT_BATCH_SIZE = 32


def resolve_batch_size(batch_size: object, where: str, name: str = "batch_size") -> int:
    """``batch_size`` checked (a positive integer), or `DEFAULT_BATCH_SIZE` when it is None."""
    if batch_size is None:
        return DEFAULT_BATCH_SIZE
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise InputError(name, "a positive integer or None", batch_size, where=where)
    return int(batch_size)


def mix_seed(*parts: int) -> int:
    """Combine integers into one 63-bit seed (splitmix64 steps), so nearby inputs give unrelated seeds."""
    z = 0x9E3779B97F4A7C15
    for p in parts:
        z = (z ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        z ^= z >> 31
    return z & 0x7FFFFFFFFFFFFFFF


def epoch_batches(n: int, batch_size: int, steps: int | None, shuffle: bool, seed: int,
                  epoch: int, rank: int = 0, world_size: int = 1) -> list[torch.Tensor]:
    """The index tensors of each batch of ``epoch`` (see the module docstring for the rules).

    With ``world_size > 1`` (DDP) each rank gets its shard from torch's ``DistributedSampler``
    (same seed on every rank, padded to equal shards): ``ceil(n / world_size)`` samples a pass.
    """
    batch_size = resolve_batch_size(batch_size, "epoch_batches")
    passes = 0

    def one_pass() -> torch.Tensor:
        nonlocal passes
        passes += 1
        if world_size > 1:
            from torch.utils.data import DistributedSampler

            sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank,
                                         shuffle=shuffle, seed=mix_seed(seed, 1) % 2**62)
            sampler.set_epoch(epoch * 4096 + passes - 1)
            return torch.tensor(list(iter(sampler)), dtype=torch.int64)
        g = torch.Generator().manual_seed(mix_seed(seed, epoch, 1, passes))
        return torch.randperm(n, generator=g) if shuffle else torch.arange(n)

    if steps is None:
        return list(one_pass().split(batch_size))
    need = steps * batch_size
    per_pass = math.ceil(n / world_size)
    stream = torch.cat([one_pass() for _ in range(math.ceil(need / per_pass))])[:need]
    return list(stream.split(batch_size))


class ArrayBatches(PoolOwner):
    """Batches of in-memory tensors for one fit.

    Parameters
    ----------
    x, y : torch.Tensor
        Float32 inputs (N, ...) and prepared labels (N, ...); y may be None (predict).
    batch_size, steps_per_epoch, shuffle, seed
        See the module docstring.
    sample_weight : torch.Tensor, optional
        Per-sample loss weights (N,) (class weights are turned into these).
    augment : Augment, optional
        Applied per batch, in ``workers`` prefetching processes when workers > 0, else inline.
    device : torch.device
        Where batches are delivered.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None, batch_size: int,
                 steps_per_epoch: int | None = None, shuffle: bool = True, seed: int = 0,
                 sample_weight: torch.Tensor | None = None, augment: Augment | None = None,
                 workers: int = 0, device: torch.device | str = "cpu", pin_memory: bool = True,
                 rank: int = 0, world_size: int = 1):
        batch_size = resolve_batch_size(batch_size, "ArrayBatches")
        check_lengths(x, y, where="ArrayBatches")
        self.n = int(x.shape[0])
        self.rank, self.world_size = int(rank), int(world_size)
        self.batch_size = int(batch_size)
        self.steps_per_epoch = steps_per_epoch
        self.shuffle = shuffle
        self.seed = int(seed)
        self.device = torch.device(device)
        self.augment = augment.with_range(x) if augment is not None else None
        self.workers = int(workers) if augment is not None else 0
        on_gpu = self.device.type != "cpu"
        keep_host = self.workers > 0
        self.x = x if (keep_host or not on_gpu) else x.to(self.device)
        self.y = y.to(self.device) if y is not None else None
        self.w = sample_weight.to(self.device) if sample_weight is not None else None
        self._xbuf = (torch.empty((min(self.batch_size, self.n),) + tuple(self.x.shape[1:]),
                                  dtype=self.x.dtype, device=self.x.device)
                      if not keep_host else None)
        self._pin = pin_memory and on_gpu and torch.cuda.is_available()
        self._pool = None

    @property
    def steps(self) -> int:
        """Batches per epoch."""
        if self.steps_per_epoch is not None:
            return int(self.steps_per_epoch)
        return math.ceil(math.ceil(self.n / self.world_size) / self.batch_size)

    def batch_seed(self, epoch: int, step: int) -> int:
        return mix_seed(self.seed, epoch, step, self.rank, 2)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor | None,
                                                  torch.Tensor | None]]:
        """Yield ``(xb, yb, wb)`` for each batch of ``epoch`` (wb None without weights).

        xb may be a view of a reused buffer: it is valid until the next batch is requested.
        """
        batches = epoch_batches(self.n, self.batch_size, self.steps_per_epoch, self.shuffle,
                                self.seed, epoch, self.rank, self.world_size)
        if self.workers > 0:
            yield from self._epoch_workers(epoch, batches)
            return
        draws = self._epoch_draws(epoch, batches) if self.augment is not None and self.x.is_cuda else None
        start = 0
        for step, idx in enumerate(batches):
            idx_dev = idx.to(self.device, non_blocking=True) if self.x.device != idx.device else idx
            xb = torch.index_select(self.x, 0, idx_dev, out=self._xbuf[: idx.shape[0]])
            if draws is not None:
                theta, photo = (None if t is None else t[start:start + idx.shape[0]] for t in draws)
                xb = self.augment.apply(xb, theta, photo)
            elif self.augment is not None:
                g = torch.Generator().manual_seed(self.batch_seed(epoch, step))
                xb = self.augment(xb, g)  # on the data's device
            start += idx.shape[0]
            yield xb, self._labels(idx_dev), self._weights(idx_dev)

    def _epoch_draws(self, epoch: int, batches: list[torch.Tensor]) -> tuple:
        """The epoch's augmentation parameters on the GPU, (theta, photometric draws), from the same per-batch
        generators as batch-by-batch augmentation. On a GPU a batch's own draws and small CPU ops cost more
        than its warp (seed CNN, H200: augmentation made an epoch 1.7x longer); here they are a few
        vectorised CPU ops and one copy an epoch."""
        geo, photo = [], []
        for step, idx in enumerate(batches):
            a, b = self.augment.draw(idx.shape[0], torch.Generator().manual_seed(self.batch_seed(epoch, step)))
            geo.append(a)
            photo.append(b)
        theta = (None if geo[0] is None else
                 self.augment.theta_from(torch.cat(geo), self.x.shape[1], self.x.shape[2]).to(self.device))
        return theta, (None if photo[0] is None else torch.cat(photo).to(self.device))

    def _labels(self, idx: torch.Tensor) -> torch.Tensor | None:
        return self.y.index_select(0, idx) if self.y is not None else None

    def _weights(self, idx: torch.Tensor) -> torch.Tensor | None:
        return self.w.index_select(0, idx) if self.w is not None else None

    def _epoch_workers(self, epoch: int, batches: list[torch.Tensor]):
        if self._pool is None:
            self._pool = AugmentPool(self.x, self.augment, self.batch_size, self.workers)
        for _step, (xb, idx) in enumerate(self._pool.run(
                [(i, self.batch_seed(epoch, s)) for s, i in enumerate(batches)])):
            if self.device.type != "cpu":
                xb = (xb.pin_memory() if self._pin else xb).to(self.device, non_blocking=True)
                idx = idx.to(self.device, non_blocking=True)
            yield xb, self._labels(idx), self._weights(idx)
