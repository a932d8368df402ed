"""Worker processes that decode, resize, augment and batch image files while the model trains.

Both pools are `pydlr.data.workers.WorkerPool`s (read AugmentPool's docstring): the main process
decides every batch's files and seed; each worker owns a pair of one-way pipes; batches are written into
a fixed ring of shared-memory slots allocated once (x float32 and y), and only ``(step, slot, kept, bad)``
travels back.
Memory is therefore bounded by the slots (``prefetch + 1`` batches) whatever the number of files, plus
the optional decoded-image cache. Workers start by fork and share the file index (one NumPy bytes array)
copy-on-write; each runs one torch thread.

A file that cannot be decoded either stops the epoch with a TrainingError naming the file
(``on_bad_file="error"``, the default), or is left out of its batch and reported back
(``on_bad_file="skip"``): the batch is then shorter, and the dataset warns and counts.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from pydlr.data.augment import Augment, pixel_centres
from pydlr.data.decode import ImageSpec, decode_image, decode_pngs, decode_warp_pngs, resize_array
from pydlr.data.image_index import FileIndex
from pydlr.data.workers import WorkerPool, one_thread
from pydlr.errors import TrainingError

__all__ = ["DecodeJob", "DecodePool", "BadImageError", "load_batch"]


class BadImageError(TrainingError):
    """An image file could not be read (``path`` names it)."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"cannot read image file {path!r}: {reason} (remove or replace the file, or pass "
                         "on_bad_file='skip' to leave unreadable files out with a warning)")


@dataclass
class DecodeJob:
    """Everything a worker needs to turn file indices into a batch (shared with workers by fork)."""

    index: FileIndex
    spec: ImageSpec
    label_mode: str | None
    on_bad_file: str = "error"
    augment: Augment | None = None
    maps: tuple[Callable[..., Any], ...] = ()
    cache: np.ndarray | None = None   # (n, h, w, c) uint8: a view of shared memory, or a file map
    cached: np.ndarray | None = None  # (n,) uint8 flags, a view of shared memory
    num_classes: int = 0
    y_shape: tuple[int, ...] = field(default=())
    cache_slot: np.ndarray | None = None  # (n,) int64: where file i sits in the cache (None: at i)

    def y_dtype(self) -> torch.dtype:
        return torch.int64 if self.label_mode == "int" else torch.float32


def _slot(job: DecodeJob, i: int) -> int:
    return i if job.cache_slot is None else int(job.cache_slot[i])


def _image(job: DecodeJob, i: int, resize: bool = True, decoded: np.ndarray | None = None) -> np.ndarray:
    """File i's image (``decoded``: its pixels at their own size, from `decode_pngs`), from the cache when
    there, stored in it when the dataset caches."""
    slot = _slot(job, i)
    if job.cached is not None and job.cached[slot]:
        return job.cache[slot]
    if decoded is None:
        arr = decode_image(os.fsdecode(job.index.paths[i]), job.spec, resize)
    else:
        arr = resize_array(decoded, job.spec) if resize else decoded
    if job.cached is not None:
        job.cache[slot] = arr
        job.cached[slot] = 1  # after the pixels: a reader that sees the flag sees the image
    return arr


def _labels(job: DecodeJob, idx: np.ndarray, out: torch.Tensor) -> None:
    lab = torch.from_numpy(job.index.labels[idx])
    if job.label_mode == "int":
        out.copy_(lab)
    elif job.label_mode == "categorical":
        out.zero_().scatter_(1, lab.view(-1, 1), 1.0)
    else:  # binary
        out.copy_(lab.view(-1, 1).to(torch.float32))


_STAGE: dict[tuple, np.ndarray] = {}


def _staging(job: DecodeJob, batch_size: int) -> np.ndarray:
    """A uint8 batch buffer, one per process and shape (decoded images land here, then one cast)."""
    key = (batch_size,) + job.spec.shape
    buf = _STAGE.get(key)
    if buf is None:
        _STAGE.clear()
        buf = _STAGE[key] = np.empty(key, dtype=np.uint8)
    return buf


def _resizes_in_augment(job: DecodeJob) -> bool:
    """Whether the batch's geometric augmentation does the resize too: the images are decoded at their own
    size and the one bilinear resampling of the augmentation maps them onto the target size, instead of
    Pillow resizing each image and the augmentation resampling it again (one interpolation instead of two,
    one Pillow image less per file). Only for bilinear resizes and a bilinear augmentation, without crop or
    pad, and not with a cache (it holds resized images)."""
    sp, aug = job.spec, job.augment
    return (aug is not None and aug.geometric and aug.interpolation == "bilinear"
            and sp.interpolation == "bilinear" and not sp.crop_to_aspect_ratio and not sp.pad_to_aspect_ratio
            and job.cached is None)


def _decode_files(job: DecodeJob, idx: np.ndarray, resize: bool
                  ) -> tuple[list[int], list[np.ndarray] | np.ndarray, list[tuple[str, str]]]:
    """(kept indices, their decoded arrays, [(path, reason) of skipped files]). The arrays are one
    (n, h, w, c) array when the native decoder took the whole batch at one size that needs no resize, and
    there is no cache to fill (`_image` fills it)."""
    cached = _cached_batch(job, idx)
    if cached is not None:
        return idx.tolist(), cached, []
    native, whole = _native_pngs(job, idx)
    if whole is not None and (not resize or whole.shape[1:] == job.spec.shape):
        if job.cached is not None:  # the cache holds images at the target size: resize is True here
            _store(job, idx, whole)
        return idx.tolist(), whole, []
    if whole is not None:
        native = dict(zip(idx.tolist(), whole, strict=True))
    kept: list[int] = []
    arrays: list[np.ndarray] = []
    bad: list[tuple[str, str]] = []
    for i in idx:
        try:
            arrays.append(_image(job, int(i), resize, native.get(int(i))))
        except (OSError, ValueError, SyntaxError) as exc:  # Pillow's ways of saying "not an image"
            path = os.fsdecode(job.index.paths[int(i)])
            if job.on_bad_file != "skip":
                raise BadImageError(path, f"{type(exc).__name__}: {exc}") from None
            bad.append((path, str(exc)))
            continue
        kept.append(int(i))
    return kept, arrays, bad


def _cache_slots(job: DecodeJob, idx: np.ndarray) -> np.ndarray:
    return idx if job.cache_slot is None else job.cache_slot[idx]


def _cached_batch(job: DecodeJob, idx: np.ndarray) -> np.ndarray | None:
    """The batch's images as one (n, h, w, c) array when every one is in the cache (one gather, no per-file
    Python: after the first pass this is the whole of a cached dataset's reading), else None."""
    if job.cached is None:
        return None
    slots = _cache_slots(job, idx)
    if not job.cached[slots].all():
        return None
    return job.cache[slots]


def _store(job: DecodeJob, idx: np.ndarray, images: np.ndarray) -> None:
    """Put a decoded batch into the cache, the flags after the pixels (see `_image`)."""
    slots = _cache_slots(job, idx)
    job.cache[slots] = images
    job.cached[slots] = 1


_FS = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


def _native_pngs(job: DecodeJob, idx: np.ndarray) -> tuple[dict[int, np.ndarray], np.ndarray | None]:
    """The batch's uncached PNGs that the native decoder takes, decoded in one call (the others are left
    to `decode_image`, file by file): ({file index: own-size pixels}, None), or ({}, (n, h, w, c) array)
    when that is every file of the batch, all of one size."""
    todo = idx if job.cached is None else idx[job.cached[_cache_slots(job, idx)] == 0]
    paths = [p.decode(*_FS) for p in job.index.paths[todo].tolist()]  # os.fsdecode, without its checks
    decoded = decode_pngs(paths, job.spec)
    if isinstance(decoded, np.ndarray) and len(todo) == len(idx):
        return {}, decoded
    return {i: arr for i, arr in zip(todo.tolist(), decoded, strict=True) if arr is not None}, None


def _same_source_size(arrays: list[np.ndarray] | np.ndarray, spec) -> bool:
    """One source size for the whole batch, and no shrinking below half (where Pillow's resize filters
    against aliasing and a single bilinear sampling would not)."""
    hs, ws = arrays[0].shape[:2]
    # one array holds one size; iterating it would make a view an image (3-4 us an image measured)
    same = isinstance(arrays, np.ndarray) or all(a.shape == arrays[0].shape for a in arrays)
    return same and 2 * hs >= spec.height and 2 * ws >= spec.width


def load_batch(job: DecodeJob, idx: np.ndarray, seed: int, x_out: torch.Tensor,
               y_out: torch.Tensor | None) -> tuple[int, list[tuple[str, str]]]:
    """Decode the files ``idx`` into ``x_out[:kept]`` (float32 NHWC, values 0-255) and their labels into
    ``y_out[:kept]``, then augment and map them. Returns ``(kept, [(path, reason) of skipped files])``.

    The native decoding runs on torch's compute threads (one parallel region a batch), everything after it on
    one thread (`one_thread`: many small operators). In a worker process both are one thread anyway.
    A batch of plain PNGs with a geometric augmentation takes `_decoded_and_warped` (decoding and warp in one
    native pass); every other batch, and one with any file that pass does not take, the steps below."""
    kept = _decoded_and_warped(job, idx, seed, x_out, y_out)
    if kept is not None:
        return kept, []
    fused = _resizes_in_augment(job)
    kept, arrays, bad = _decode_files(job, idx, resize=not fused)
    if not kept:
        return 0, bad
    with one_thread():
        return _finish_batch(job, kept, arrays, fused, seed, x_out, y_out), bad


def _decoded_and_warped(job: DecodeJob, idx: np.ndarray, seed: int, x_out: torch.Tensor,
                        y_out: torch.Tensor | None) -> int | None:
    """The batch decoded and geometrically augmented in one native pass (`decode_warp_pngs`: each image
    decoded and warped straight into the batch on the compute threads, no grid or per-batch float copy), with
    the random draws and the photometric part, labels and maps as `_finish_batch`: the same batch. Returns
    the batch size, or None (nothing kept from it) where that pass does not apply: no geometric augmentation
    it supports, a cache, a file it does not take."""
    aug = job.augment
    warp = aug.warp_codes() if aug is not None and job.cached is None else None
    if warp is None:
        return None
    n, sp = len(idx), job.spec
    paths = [p.decode(*_FS) for p in job.index.paths[idx].tolist()]  # os.fsdecode, without its checks
    gen = torch.Generator().manual_seed(seed)
    geo, photo = aug.draw(n, gen)
    theta = aug.theta_from(geo, sp.height, sp.width)
    if not decode_warp_pngs(paths, sp, theta, pixel_centres(sp.width), pixel_centres(sp.height), x_out, warp,
                            resize=_resizes_in_augment(job)):
        return None
    with one_thread():
        xb = x_out[:n]
        if photo is not None:
            xb.copy_(aug.apply(xb, None, photo))
        yb = y_out[:n] if y_out is not None else None
        if yb is not None:
            _labels(job, idx, yb)
        for fn in job.maps:
            xb, yb = _apply_map(fn, xb, yb, x_out, y_out, n)
    return n


def _finish_batch(job: DecodeJob, kept: list[int], arrays, fused: bool, seed: int, x_out: torch.Tensor,
                  y_out: torch.Tensor | None) -> int:
    """The decoded images of `load_batch` resized, augmented, mapped and written into the slot; returns kept."""
    n = len(kept)
    xb = x_out[:n]
    gen = torch.Generator().manual_seed(seed)
    if fused and _same_source_size(arrays, job.spec):
        src = torch.from_numpy(arrays if isinstance(arrays, np.ndarray) else np.stack(arrays)).to(torch.float32)
        xb.copy_(job.augment(src, gen, size=(job.spec.height, job.spec.width)))
    elif isinstance(arrays, np.ndarray) and arrays.shape[1:] == job.spec.shape:
        xb.copy_(torch.from_numpy(arrays))  # the batch in one array (a cached batch): one uint8 -> float32 pass
        if job.augment is not None:
            xb.copy_(job.augment(xb, gen))
    else:
        stage = _staging(job, x_out.shape[0])
        for k, arr in enumerate(arrays):
            stage[k] = resize_array(arr, job.spec) if fused else arr
        xb.copy_(torch.from_numpy(stage[:n]))  # one uint8 -> float32 pass for the batch
        if job.augment is not None:
            xb.copy_(job.augment(xb, gen))
    yb = y_out[:n] if y_out is not None else None
    if yb is not None:
        _labels(job, np.asarray(kept, dtype=np.int64), yb)
    for fn in job.maps:
        xb, yb = _apply_map(fn, xb, yb, x_out, y_out, n)
    return n


def _apply_map(fn, xb, yb, x_out, y_out, n):
    """A user function ``fn(x, y) -> (x, y)`` (``fn(x) -> x`` without labels); same shapes required,
    because the result is written back into the shared slot."""
    res = fn(xb) if yb is None else fn(xb, yb)
    if yb is not None and not (isinstance(res, (tuple, list)) and len(res) == 2):
        raise TrainingError("a dataset map function of (images, labels) must return (images, labels), as "
                            f"tf.data's map: it returned {type(res).__name__}; for the images alone, "
                            "map(lambda x, y: (f(x), y))")
    new_x, new_y = (res, None) if yb is None else res
    new_x = torch.as_tensor(new_x)
    if tuple(new_x.shape) != tuple(xb.shape):
        raise TrainingError(f"a dataset map function must keep the batch shape {tuple(xb.shape)}; "
                            f"it returned {tuple(new_x.shape)}")
    x_out[:n].copy_(new_x)
    if yb is not None:
        y_out[:n].copy_(torch.as_tensor(new_y).reshape(yb.shape))
    return x_out[:n], (y_out[:n] if yb is not None else None)


# While a model trains, workers run at a lower priority than it. Training's compute threads meet at
# barriers every operator: a worker that preempts one of them stalls all of them, so on a machine with as
# many cores as compute threads an equal-priority worker costs training more than its own CPU time.
# Measured (seed CNN, 6,000 PNGs, 1 worker, 2 cores, 2026-12-04): epoch time vs in-memory arrays
# 1.40x / 1.43x at niceness 0, 1.13x / 1.26x at 10. On idle cores the niceness changes nothing.
TRAINING_NICENESS = 10


def _decode_batch(job: DecodeJob, slots, step: int, slot: int, idx: np.ndarray, seed: int) -> tuple:
    try:
        x_out, y_out = slots[slot]
        kept, bad = load_batch(job, idx, seed, x_out, y_out)
        return step, slot, kept, bad, None
    except BadImageError as exc:
        return step, slot, 0, [(exc.path, exc.reason)], "bad"
    except Exception:  # noqa: BLE001 - reported to the main process, which raises
        return step, slot, 0, [], traceback.format_exc()


def make_slots(job: DecodeJob, batch_size: int, n_slots: int, shared: bool):
    """``n_slots`` (x, y) buffer pairs of one batch each (in shared memory for workers)."""
    slots = []
    for _ in range(n_slots):
        x = torch.empty((batch_size,) + job.spec.shape, dtype=torch.float32)
        y = (torch.empty((batch_size,) + job.y_shape, dtype=job.y_dtype())
             if job.label_mode is not None else None)
        if shared:
            x.share_memory_()
            if y is not None:
                y.share_memory_()
        slots.append((x, y))
    return slots


def warm_up(job: DecodeJob) -> None:
    """Import Pillow's decoders and run the augmentation once here, before forking, so every worker
    inherits them instead of paying for them on its first batch (measured: ~0.5 s a worker)."""
    from PIL import Image

    Image.preinit()
    if job.augment is not None:
        job.augment(torch.zeros((1,) + job.spec.shape), torch.Generator().manual_seed(0))


class DecodePool(WorkerPool):
    """``workers`` processes and ``prefetch + 1`` shared batch slots (at least ``workers + 1``)."""

    what = "image worker"

    def __init__(self, job: DecodeJob, batch_size: int, workers: int, prefetch: int, niceness: int = 0):
        warm_up(job)
        self.slots = make_slots(job, batch_size, max(prefetch, workers) + 1, shared=True)
        super().__init__(workers, functools.partial(_decode_batch, job, self.slots), niceness)

    def run(self, batches: list[tuple[np.ndarray, int]], on_bad: Callable[[list], None]
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """Yield ``(xb, yb)`` in order for ``batches`` = [(file indices, seed), ...]; views of a slot,
        valid until the next item is requested. ``on_bad`` receives the skipped files of each batch."""
        free = list(range(len(self.slots)))
        done: dict[int, tuple[int, int]] = {}
        submitted = received = 0

        def submit() -> None:
            nonlocal submitted
            idx, seed = batches[submitted]
            self.task_out[submitted % len(self.task_out)].send((submitted, free.pop(), idx, seed))
            submitted += 1

        while submitted < len(batches) and len(free) > 1:  # one slot stays with the consumer
            submit()
        held: int | None = None
        try:
            for step in range(len(batches)):
                while step not in done:
                    s, slot, kept, bad, err = self._get()
                    received += 1
                    if err == "bad":
                        raise BadImageError(*bad[0])
                    if err is not None:
                        raise TrainingError(f"an image worker failed on batch {s}:\n{err}")
                    if bad:
                        on_bad(bad)
                    done[s] = (slot, kept)
                slot, kept = done.pop(step)
                if held is not None:
                    free.append(held)
                held = slot
                if submitted < len(batches) and free:
                    submit()
                if kept == 0:
                    continue
                x, y = self.slots[slot]
                yield x[:kept], (y[:kept] if y is not None else None)
        finally:
            # collect what is still in flight (an interrupted epoch) so the next run starts clean
            self._drain(submitted - received)
