"""Image datasets streamed from disk: keras' ``image_dataset_from_directory`` and a table of files.

``image_dataset_from_directory("photos/", image_size=(180, 180), batch_size=32)`` lists the files (no
image is opened) and returns an `ImageDataset`: batches of ``(images, labels)``, images float32
``(batch, height, width, channels)`` with values 0-255 as keras, labels as ``label_mode`` says. Iterating
it (or fitting on it) decodes, resizes, augments and batches the images in worker processes that prefetch
the next batches while the current one is used (`pydlr.data.image_workers`); memory stays bounded by the
prefetched batches (plus the decoded images when ``cache`` is on), whatever the number of files.

Keras' meanings: class folders in alphanumeric order (or ``class_names``' order); ``label_mode`` "int"
(int64 ``(batch,)``), "categorical" (float32 one-hot ``(batch, classes)``), "binary" (float32
``(batch, 1)``, exactly two classes) or None (images only); ``validation_split`` + ``subset`` split the
file list after one shuffle with ``seed`` (the last fraction is the validation set; "both" returns the
pair); ``shuffle`` reshuffles every pass. tf.data's ``cache()``, ``prefetch()``, ``map()``, ``take()`` and
``shuffle(buffer_size)`` are methods that return a new dataset, as in TensorFlow; its other methods
(``batch``, ``repeat``, ...) raise NotSupportedError saying what to write instead.

Epoch semantics inside ``fit`` are the arrays' (`pydlr.data.batching`): one pass a epoch by default, and
with ``steps_per_epoch`` full batches cut from consecutive shuffled passes (100 steps x 20 images =
2,000 images an epoch, cycling when that is more than the data hold); with DDP each rank reads its shard.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from pydlr.data.augment import Augment
from pydlr.data.batching import epoch_batches, mix_seed
from pydlr.data.decode import ImageSpec, check_image_spec
from pydlr.data.image_cache import CacheFile, check_cache_path, fingerprint
from pydlr.data.image_index import FileIndex, index_dataframe, index_directory
from pydlr.data.image_workers import (
    TRAINING_NICENESS,
    DecodeJob,
    DecodePool,
    load_batch,
    make_slots,
)
from pydlr.data.workers import PoolOwner
from pydlr.errors import InputError, NotSupportedError

__all__ = ["ImageDataset", "DatasetBatches", "image_dataset_from_directory",
           "image_dataset_from_dataframe", "check_dataset", "check_same_classes", "dataset_batches",
           "with_skipped_rows"]

LABEL_MODES = ("int", "categorical", "binary", None)

_BATCH_ADVICE = "set batch_size in image_dataset_from_directory(..., batch_size=N)"
_TF_DATA_ADVICE = {
    "batch": _BATCH_ADVICE, "unbatch": _BATCH_ADVICE, "rebatch": _BATCH_ADVICE, "padded_batch": _BATCH_ADVICE,
    "repeat": "fit(..., steps_per_epoch=N) cycles through the files for as many batches as asked",
    "filter": "choose the files with image_dataset_from_dataframe() on a filtered table",
    "skip": "take(count) limits the batches; choose files with image_dataset_from_dataframe()",
    "apply": "use map(fn) with fn(images, labels) -> (images, labels)",
    "concatenate": "put the files in one folder, or one table for image_dataset_from_dataframe()",
    "zip": "image_dataset_from_dataframe() pairs files and labels from one table",
    "as_numpy_iterator": "iterate the dataset itself: `for images, labels in dataset` gives torch tensors "
                         "(.numpy() gives arrays)",
}

# The start of the warning for each file skipped with on_bad_file="skip" (R filters it: it warns in its words).
SKIPPED_FILE = "skipped unreadable image file"


def _default_workers() -> int:
    """None on two cores or fewer, else one per two cores, up to four. Training on the CPU keeps two cores
    busy, so a worker's CPU time comes out of the training's (and preempting a compute thread stalls its
    partner at the next barrier); in the training process the batch's files are decoded on both compute
    threads between steps instead. Measured (seed CNN, 60,000 PNGs with augmentation, 2 cores, idle,
    2026-12-05, bench_images.py --sections training): epoch 1.29x the in-memory epoch with 0 workers against
    1.38x with 1 (1.35x against 1.55x before the faster decoder); with ``cache()`` 1.11x and 1.10x."""
    cores = os.cpu_count() or 2
    return 0 if cores <= 2 else min(4, cores // 2)


def _count(n: int, noun: str) -> str:
    """``"1 batch"``, ``"3 batches"``, ``"1,200 files"``."""
    return f"{n:,} {noun}" + ("" if n == 1 else "es" if noun.endswith(("ch", "sh", "s", "x")) else "s")


class ImageDataset:
    """Batches of images read from files (see the module docstring). Made by
    `image_dataset_from_directory` / `image_dataset_from_dataframe`, not directly.

    Attributes
    ----------
    class_names : list of str or None
    file_paths : list of str (in listing order; shuffled once when ``shuffle`` was set)
    bad_files : list of (path, reason), one entry per skip so far with ``on_bad_file="skip"`` (a file is
                skipped again at every pass)
    """

    def __init__(self, index: FileIndex, spec: ImageSpec, batch_size: int, label_mode: str | None,
                 shuffle: bool, seed: int, workers: int, prefetch: int | None, cache: bool | str,
                 on_bad_file: str, name: str = "dataset"):
        self._index = index
        self.spec = spec
        self.batch_size = int(batch_size)
        self.label_mode = label_mode
        self.shuffle_each_pass = bool(shuffle)
        self.seed = int(seed)
        self.workers = int(workers)
        self._prefetch = prefetch
        self._cache_spec = cache
        self.on_bad_file = on_bad_file
        self.augment: Augment | None = None
        self.maps: tuple[Callable[..., Any], ...] = ()
        self._take: int | None = None
        self._iterations = 0
        self._cache = self._cached = self._cache_slot = None
        self.bad_files: list[tuple[str, str]] = []
        self.name = name

    # ----- what it holds --------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str] | None:
        return list(self._index.class_names) if self._index.class_names is not None else None

    @property
    def num_classes(self) -> int:
        return len(self._index.class_names or ())

    @property
    def file_paths(self) -> list[str]:
        return [os.fsdecode(p) for p in self._index.paths]

    @property
    def labels(self) -> np.ndarray | None:
        """Integer labels of the files, in ``file_paths`` order (None without labels)."""
        return None if self._index.labels is None else self._index.labels.copy()

    @property
    def ignored_files(self) -> list[str]:
        """Non-image files found in the folders and left out (keras reads only its image formats)."""
        return list(self._index.ignored)

    @property
    def num_files(self) -> int:
        return len(self._index)

    def counts(self) -> dict[str, int]:
        """Files per class, in class order."""
        return self._index.counts()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.spec.shape

    @property
    def prefetch_batches(self) -> int:
        return self._prefetch if self._prefetch is not None else max(2, 2 * self.workers)

    def __len__(self) -> int:
        """Batches in one pass (keras' ``cardinality()``)."""
        n = math.ceil(self.num_files / self.batch_size)
        return n if self._take is None else min(n, self._take)

    def cardinality(self) -> int:
        return len(self)

    def __repr__(self) -> str:
        h, w, c = self.spec.shape
        lines = [f"<ImageDataset {self.name}: {_count(self.num_files, 'file')}, batch_size {self.batch_size} "
                 f"({_count(len(self), 'batch')}), images {h}x{w}x{c}, label_mode {self.label_mode!r}>"]
        counts = self.counts()
        if counts:
            width = max(len(k) for k in counts)
            lines += [f"  {k:<{width}}  {v:,}" for k, v in counts.items()]
        if self._index.ignored:
            lines.append(f"  ({len(self._index.ignored)} non-image file(s) ignored)")
        if self.bad_files:  # a file is skipped again at every pass: count files, not skips
            lines.append(f"  ({len({p for p, _ in self.bad_files})} unreadable file(s) skipped)")
        return "\n".join(lines)

    # ----- tf.data's methods (each returns a new dataset) -----------------------------------------
    def _copy(self, **changes: Any) -> ImageDataset:
        new = copy.copy(self)
        new._cache = new._cached = new._cache_slot = None  # a new pipeline fills its own cache
        # bad_files stays shared: the derived dataset reads the same files
        new._iterations = 0
        for k, v in changes.items():
            setattr(new, k, v)
        return new

    def cache(self, filename: str | os.PathLike = "") -> ImageDataset:
        """Keep decoded images after their first read: in memory (``""``, shared by the workers, for this
        dataset's life), or in the file ``filename`` (memory-mapped, for data larger than RAM, and kept:
        later passes and later processes read it while the file list and the decoding are unchanged;
        see `pydlr.data.image_cache`)."""
        if not isinstance(filename, (str, os.PathLike)):
            raise InputError("filename", "a file path, or '' for memory", filename, where="cache")
        if str(filename):
            check_cache_path(str(filename), "cache")
        return self._copy(_cache_spec=str(filename) if str(filename) else True)

    def prefetch(self, buffer_size: int | None = None) -> ImageDataset:
        """Batches prepared ahead of the one in use (None or -1, tf.data.AUTOTUNE: twice the workers)."""
        if buffer_size is not None and buffer_size != -1 and (
                not isinstance(buffer_size, (int, np.integer)) or buffer_size < 1):
            raise InputError("buffer_size", "a positive integer, or None/-1 for automatic", buffer_size,
                             where="prefetch")
        return self._copy(_prefetch=None if buffer_size in (None, -1) else int(buffer_size))

    def map(self, fn: Callable[..., Any] | Augment, num_parallel_calls: Any = None, deterministic: Any = None,
            name: str | None = None) -> ImageDataset:
        """Apply ``fn(images, labels) -> (images, labels)`` (``fn(images)`` without labels) to every batch
        in the workers; images keep their shape. An `Augment` is applied as random augmentation (draws
        from the batch's seed), as ``fit(augment=...)`` does for arrays. tf.data's ``num_parallel_calls``
        (``tf.data.AUTOTUNE`` in Keras' tutorials), ``deterministic`` and ``name`` are accepted and have
        nothing to set: the dataset's workers run the map, in a fixed order."""
        if isinstance(fn, Augment):
            return self._copy(augment=fn if fn.value_range is not None else _with_pixel_range(fn))
        if not callable(fn):
            raise InputError("fn", "a function of (images, labels) or an Augment", fn, where="map")
        return self._copy(maps=self.maps + (fn,))

    def take(self, count: int) -> ImageDataset:
        """At most ``count`` batches a pass."""
        if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 1:
            raise InputError("count", "a positive integer", count, where="take")
        return self._copy(_take=int(count))

    def shuffle(self, buffer_size: int, seed: int | None = None,
                reshuffle_each_iteration: bool | None = None) -> ImageDataset:
        """tf.data's ``shuffle``: every pass reshuffled, over all files (more thorough than a buffer of
        ``buffer_size``, which only bounds tf.data's memory: here the file list is shuffled, not images)."""
        if not isinstance(buffer_size, (int, np.integer)) or isinstance(buffer_size, bool) or buffer_size < 1:
            raise InputError("buffer_size", "a positive integer", buffer_size, where="shuffle")
        if reshuffle_each_iteration is False:
            raise NotSupportedError("shuffle(reshuffle_each_iteration=False) is not supported: pydlr's datasets "
                                    "reshuffle every pass; for one fixed order, make the dataset with "
                                    "shuffle=False")
        return self._copy(shuffle_each_pass=True, seed=self.seed if seed is None else int(seed))

    def __getattr__(self, name: str) -> Any:
        # tf.data methods a Keras script may call: say what to do instead of a bare AttributeError
        if name in _TF_DATA_ADVICE:
            raise NotSupportedError(f"dataset.{name}() is tf.data's, and pydlr's image datasets do not have it: "
                                    f"{_TF_DATA_ADVICE[name]}")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ----- sent to other processes (fit(distributed=True)) ---------------------------------------------
    def describe(self, argument: str = "x") -> dict[str, Any]:
        """This dataset as JSON values (files, labels, decoding, batching, augmentation), for
        `from_description` in another process; an in-memory cache becomes one per process. Functions
        given to ``map`` cannot be described: an InputError says so before any process starts."""
        if self.maps:
            raise InputError(argument, "a dataset without map() functions (functions cannot be sent to the "
                             "processes: put the scaling in the model, e.g. layers.Rescaling, or run the "
                             "script under torchrun / pydlr-train)", "a dataset with map() functions",
                             where="fit")
        sp = self.spec
        return {"paths": self.file_paths, "labels": None if self._index.labels is None
                else self._index.labels.tolist(), "class_names": self.class_names,
                "image_size": [sp.height, sp.width], "color_mode": sp.mode_name, "interpolation": sp.interpolation,
                "crop_to_aspect_ratio": sp.crop_to_aspect_ratio, "pad_to_aspect_ratio": sp.pad_to_aspect_ratio,
                "batch_size": self.batch_size, "label_mode": self.label_mode, "shuffle": self.shuffle_each_pass,
                "seed": self.seed, "workers": self.workers, "prefetch": self._prefetch,
                "cache": self._cache_spec, "on_bad_file": self.on_bad_file, "take": self._take,
                "name": self.name, "augment": None if self.augment is None else self.augment.get_config()}

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> ImageDataset:
        """The dataset `describe` wrote (same files in the same order, same settings)."""
        index = FileIndex(np.array([os.fsencode(p) for p in d["paths"]], dtype=np.bytes_),
                          None if d["labels"] is None else np.asarray(d["labels"], dtype=np.int64),
                          d["class_names"])
        spec = ImageSpec(tuple(d["image_size"]), d["color_mode"], d["interpolation"], d["crop_to_aspect_ratio"],
                         d["pad_to_aspect_ratio"])
        ds = cls(index, spec, d["batch_size"], d["label_mode"], d["shuffle"], d["seed"], d["workers"],
                 d["prefetch"], d["cache"], d["on_bad_file"], d["name"])
        ds._take = d["take"]
        if d["augment"] is not None:
            ds.augment = Augment.from_config(d["augment"])
        return ds

    # ----- iteration ------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        """One pass: ``(images, labels)`` tensors per batch (``images`` alone when label_mode is None),
        copies the caller may keep. Each pass is reshuffled (keras' reshuffle_each_iteration)."""
        it = self._iterations
        self._iterations += 1
        batches = DatasetBatches(self, steps=None, shuffle=self.shuffle_each_pass, seed=self.seed)
        try:
            for xb, yb, _ in batches.epoch(it):
                yield xb.clone() if yb is None else (xb.clone(), yb.clone())
        finally:
            batches.close()

    def job(self, augment: Augment | None = None) -> DecodeJob:
        """The workers' description of this dataset (its shared cache allocated on first use)."""
        self._allocate_cache()
        aug = augment if augment is not None else self.augment
        if aug is not None and aug.value_range is None:
            aug = _with_pixel_range(aug)
        k = self.num_classes
        y_shape = {"int": (), "categorical": (k,), "binary": (1,), None: ()}[self.label_mode]
        return DecodeJob(self._index, self.spec, self.label_mode, self.on_bad_file, aug, self.maps,
                         self._cache, self._cached, k, y_shape, self._cache_slot)

    def _allocate_cache(self) -> None:
        if not self._cache_spec or self._cache is not None:
            return
        shape = (self.num_files,) + self.spec.shape
        # NumPy views of shared memory (or a shared file map): forked workers write, everyone reads
        if self._cache_spec is True:
            self._cache = torch.empty(shape, dtype=torch.uint8).share_memory_().numpy()
            self._cached = torch.zeros(self.num_files, dtype=torch.uint8).share_memory_().numpy()
        else:  # a file kept across passes and processes, valid while the files and the decoding stay
            # images sit in the file in sorted path order: the same file serves any shuffle seed
            order = np.argsort(self._index.paths, kind="stable")
            self._cache_slot = np.empty_like(order)
            self._cache_slot[order] = np.arange(len(order))
            sp = self.spec
            key = fingerprint(self._index.paths[order], (sp.shape, sp.mode, sp.interpolation,
                                                         sp.crop_to_aspect_ratio, sp.pad_to_aspect_ratio))
            cached = CacheFile(self._cache_spec, self.num_files, sp.shape, key)
            self._cache, self._cached = cached.pixels, cached.flags

    def _note_bad(self, bad: list[tuple[str, str]]) -> None:
        for path, reason in bad:
            self.bad_files.append((path, reason))
            warnings.warn(f"{SKIPPED_FILE} {path!r} ({reason}); "
                          f"{len(self.bad_files)} skipped so far", stacklevel=4)


def _with_pixel_range(aug: Augment) -> Augment:
    """Dataset images are 0-255: brightness and clipping work in that range."""
    return dataclasses.replace(aug, value_range=(0.0, 255.0))


class DatasetBatches(PoolOwner):
    """An `ImageDataset` as the training loop's batch source (the interface of `ArrayBatches`: ``steps``,
    ``epoch(e)`` yielding ``(xb, yb, None)``, ``close()``).

    The worker pool lives from the first epoch to ``close()``, so workers are forked once per fit.
    ``niceness`` lowers the workers' priority (fit passes ``TRAINING_NICENESS``: see image_workers).
    """

    def __init__(self, ds: ImageDataset, steps: int | None = None, shuffle: bool | None = None,
                 seed: int | None = None, augment: Augment | None = None,
                 device: torch.device | str = "cpu", rank: int = 0, world_size: int = 1,
                 niceness: int = 0, weigh: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.ds = ds
        self.weigh = weigh
        self.niceness = int(niceness)
        self.steps_per_epoch = steps
        self.shuffle = ds.shuffle_each_pass if shuffle is None else bool(shuffle)
        self.seed = ds.seed if seed is None else int(seed)
        self.job = ds.job(augment)
        self.device = torch.device(device)
        self.rank, self.world_size = int(rank), int(world_size)
        self._pool: DecodePool | None = None
        self._inline_slot = None

    @property
    def steps(self) -> int:
        if self.steps_per_epoch is not None:
            return int(self.steps_per_epoch)
        per_rank = math.ceil(math.ceil(self.ds.num_files / self.world_size) / self.ds.batch_size)
        return per_rank if self.ds._take is None else min(per_rank, self.ds._take)

    def _plan(self, epoch: int) -> list[tuple[np.ndarray, int]]:
        batches = epoch_batches(self.ds.num_files, self.ds.batch_size, self.steps_per_epoch, self.shuffle,
                                self.seed, epoch, self.rank, self.world_size)
        if self.steps_per_epoch is None and self.ds._take is not None:
            batches = batches[: self.ds._take]
        return [(b.numpy(), mix_seed(self.seed, epoch, s, self.rank, 2)) for s, b in enumerate(batches)]

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]:
        """Yield ``(xb, yb, wb)`` for each batch (wb None without ``weigh``); xb/yb are views valid until
        the next batch."""
        plan = self._plan(epoch)
        source = self._inline(plan) if self.ds.workers == 0 else self._workers(plan)
        for xb, yb in source:
            wb = self.weigh(yb) if self.weigh is not None and yb is not None else None  # on the CPU, as yb
            if self.device.type != "cpu":
                xb = xb.to(self.device, non_blocking=True)
                yb = yb.to(self.device, non_blocking=True) if yb is not None else None
                wb = wb.to(self.device, non_blocking=True) if wb is not None else None
            yield xb, yb, wb

    def _inline(self, plan):
        if self._inline_slot is None:
            self._inline_slot = make_slots(self.job, self.ds.batch_size, 1, shared=False)[0]
        x_out, y_out = self._inline_slot
        for idx, seed in plan:
            kept, bad = load_batch(self.job, idx, seed, x_out, y_out)
            if bad:
                self.ds._note_bad(bad)
            if kept:
                yield x_out[:kept], (y_out[:kept] if y_out is not None else None)

    def _workers(self, plan):
        if self._pool is None:
            self._pool = DecodePool(self.job, self.ds.batch_size, self.ds.workers, self.ds.prefetch_batches,
                                    self.niceness)
        yield from self._pool.run(plan, self.ds._note_bad)


# ----- the constructors ---------------------------------------------------------------------------
def _check_common(label_mode, batch_size, shuffle, seed, validation_split, subset, workers, prefetch,
                  cache, on_bad_file, where, data_format=None) -> None:
    if data_format not in (None, "channels_last"):
        raise InputError("data_format", "None or 'channels_last' (pydlr's images are channels-last, as "
                         "keras' default)", data_format, where=where)
    if label_mode not in LABEL_MODES:
        raise InputError("label_mode", "'int', 'categorical', 'binary' or None", label_mode, where=where)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError("batch_size", "a positive integer", batch_size, where=where)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise InputError("shuffle", "True or False", shuffle, where=where)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InputError("seed", "a non-negative integer or None", seed, where=where)
    if validation_split is not None and (isinstance(validation_split, bool)
                                         or not isinstance(validation_split, (int, float))
                                         or not 0 < validation_split < 1):
        raise InputError("validation_split", "a fraction strictly between 0 and 1, or None",
                         validation_split, where=where)
    if subset not in (None, "training", "validation", "both"):
        raise InputError("subset", "'training', 'validation', 'both' or None", subset, where=where)
    if (subset is None) != (validation_split is None):
        raise InputError("subset" if subset is None else "validation_split",
                         "given together with " + ("validation_split" if subset is None else "subset"),
                         subset if subset is None else validation_split, where=where)
    if validation_split is not None and shuffle and seed is None:
        raise InputError("seed", "an integer when validation_split is used with shuffle=True (so the "
                         "training and validation subsets do not overlap)", seed, where=where)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))
                                or workers < 0):
        raise InputError("workers", "a non-negative integer (0: decode in this process) or None", workers,
                         where=where)
    if prefetch is not None and prefetch != "auto" and (
            isinstance(prefetch, bool) or not isinstance(prefetch, (int, np.integer)) or prefetch < 1):
        raise InputError("prefetch", "'auto' or a positive number of batches", prefetch, where=where)
    if not isinstance(cache, (bool, str, os.PathLike)):
        raise InputError("cache", "False, True (memory) or a file path", cache, where=where)
    if isinstance(cache, (str, os.PathLike)) and os.fspath(cache):
        check_cache_path(os.fspath(cache), where)
    if on_bad_file not in ("error", "skip"):
        raise InputError("on_bad_file", "'error' or 'skip'", on_bad_file, where=where)


def _build(index: FileIndex, spec: ImageSpec, label_mode, batch_size, shuffle, seed, validation_split,
           subset, workers, prefetch, cache, on_bad_file, verbose, where):
    if index.labels is None:
        label_mode = None
    if label_mode == "binary" and index.class_names is not None and len(index.class_names) != 2:
        raise InputError("label_mode", f"'int' or 'categorical' for {len(index.class_names)} classes "
                         "('binary' needs exactly 2)", label_mode, where=where)
    if seed is None:
        seed = int(np.random.randint(0, 1_000_000))  # keras' choice when shuffling without a seed
    if shuffle:
        order = np.random.RandomState(int(seed) % 2**32).permutation(len(index))
        index = index.subset(order)
    if verbose:
        k = len(index.class_names or ())
        print(f"Found {len(index)} files" + (f" belonging to {k} classes." if index.labels is not None
                                              else "."))
    cache = str(cache) if isinstance(cache, os.PathLike) else cache

    def make(sub: FileIndex, name: str, cache_spec) -> ImageDataset:
        return ImageDataset(sub, spec, batch_size, label_mode, shuffle, seed,
                            _default_workers() if workers is None else workers,
                            None if prefetch in (None, "auto") else int(prefetch), cache_spec, on_bad_file,
                            name)

    if validation_split is None:
        return make(index, "all", cache)
    n_val = int(validation_split * len(index))
    if n_val < 1 or n_val >= len(index):
        raise InputError("validation_split", f"a fraction leaving files on both sides of {len(index)}",
                         validation_split, where=where)
    train = make(index.subset(np.arange(len(index) - n_val)), "training",
                 cache + ".training" if isinstance(cache, str) else cache)
    val = make(index.subset(np.arange(len(index) - n_val, len(index))), "validation",
               cache + ".validation" if isinstance(cache, str) else cache)
    if verbose:
        if subset in ("training", "both"):
            print(f"Using {train.num_files} files for training.")
        if subset in ("validation", "both"):
            print(f"Using {val.num_files} files for validation.")
    return {"training": train, "validation": val, "both": (train, val)}[subset]


def image_dataset_from_directory(
    directory: str | os.PathLike, labels: Any = "inferred", label_mode: str | None = "int",
    class_names: list[str] | None = None, color_mode: str = "rgb", batch_size: int = 32,
    image_size: tuple[int, int] = (256, 256), shuffle: bool = True, seed: int | None = None,
    validation_split: float | None = None, subset: str | None = None, interpolation: str = "bilinear",
    follow_links: bool = False, crop_to_aspect_ratio: bool = False, pad_to_aspect_ratio: bool = False,
    data_format: str | None = None, verbose: bool = True, *,
    workers: int | None = None, prefetch: int | str | None = "auto", cache: bool | str = False,
    on_bad_file: str = "error",
) -> ImageDataset | tuple[ImageDataset, ImageDataset]:
    """keras' ``image_dataset_from_directory`` (same arguments and meanings; see the module docstring).

    pydlr's additions: ``workers`` (decoding processes; None: none on two cores or fewer, where
    training keeps both busy, else one per two cores, at most four; 0 decodes in the calling process),
    ``prefetch`` (batches prepared ahead; "auto": twice the workers), ``cache`` (True: keep decoded images in shared memory after the first pass; a path: in a
    memory-mapped file that later passes and later processes read, as tf.data's cache file, rebuilt when
    the files or the decoding change), ``on_bad_file`` ("error": stop naming the file; "skip": leave it out, warn and
    count it in ``dataset.bad_files``).

    Returns
    -------
    ImageDataset, or (training, validation) with ``subset="both"``.
    """
    where = "image_dataset_from_directory"
    _check_common(label_mode, batch_size, shuffle, seed, validation_split, subset, workers, prefetch, cache,
                  on_bad_file, where, data_format)
    spec = check_image_spec(image_size, color_mode, interpolation, crop_to_aspect_ratio, where,
                            pad_to_aspect_ratio)
    if labels is None or label_mode is None:  # keras: no labels at all, every image under directory
        labels, label_mode = None, None
    index = index_directory(directory, labels, class_names, bool(follow_links), where)
    return _build(index, spec, label_mode, batch_size, shuffle, seed, validation_split, subset, workers,
                  prefetch, cache, on_bad_file, verbose, where)


def image_dataset_from_dataframe(
    dataframe: Any, directory: str | os.PathLike | None = None, x_col: str = "filename",
    y_col: str | None = "class", label_mode: str | None = "int", class_names: list[str] | None = None,
    color_mode: str = "rgb", batch_size: int = 32, image_size: tuple[int, int] = (256, 256),
    shuffle: bool = True, seed: int | None = None, validation_split: float | None = None,
    subset: str | None = None, interpolation: str = "bilinear", crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False, data_format: str | None = None, verbose: bool = True, *,
    workers: int | None = None, prefetch: int | str | None = "auto",
    cache: bool | str = False, on_bad_file: str = "error",
) -> ImageDataset | tuple[ImageDataset, ImageDataset]:
    """The same dataset from a table of files: ``x_col`` holds paths (relative to ``directory`` when
    given), ``y_col`` labels (strings or numbers; class names are the distinct labels in their own order
    unless ``class_names`` gives one: a Categorical's categories, as R's factor levels; numbers in
    numeric order; text sorted). Rows are read in table order (then shuffled with ``seed``).
    Argument names of keras' ``flow_from_dataframe`` for the table, of
    `image_dataset_from_directory` for the rest."""
    where = "image_dataset_from_dataframe"
    _check_common(label_mode, batch_size, shuffle, seed, validation_split, subset, workers, prefetch, cache,
                  on_bad_file, where, data_format)
    spec = check_image_spec(image_size, color_mode, interpolation, crop_to_aspect_ratio, where,
                            pad_to_aspect_ratio)
    if not isinstance(x_col, str):
        raise InputError("x_col", "a column name", x_col, where=where)
    if y_col is not None and not isinstance(y_col, str):
        raise InputError("y_col", "a column name or None", y_col, where=where)
    if class_names is not None and (not isinstance(class_names, (list, tuple)) or not class_names):
        raise InputError("class_names", "a non-empty list of labels or None", class_names, where=where)
    index = index_dataframe(dataframe, directory, x_col, None if label_mode is None else y_col, class_names,
                            where)
    return _build(index, spec, label_mode, batch_size, shuffle, seed, validation_split, subset, workers,
                  prefetch, cache, on_bad_file, verbose, where)


# ----- checks made by fit / evaluate / predict before any work ------------------------------------
_LOSS_LABELS = {"sparse": "int", "categorical": "categorical", "binary": "binary"}


def check_dataset(ds: ImageDataset, input_shape: tuple | None, loss_kind: str | None, n_out: int | None,
                  where: str, name: str = "x") -> None:
    """The dataset's images fit the model's input, and its labels the loss and the output width."""
    if input_shape is not None:
        want = tuple(input_shape)
        got = ds.image_shape
        if len(want) != 3 or any(w is not None and w != g for w, g in zip(want, got, strict=False)):
            raise InputError(name, f"images of shape {want} (the model's input; set image_size and "
                             "color_mode of the dataset to match)", f"a dataset of {got[0]}x{got[1]}x{got[2]} "
                             "images", where=where)
    if loss_kind is None:  # predict: labels are not used
        return
    if ds.label_mode is None:
        raise InputError(name, "a dataset with labels (label_mode 'int', 'categorical' or 'binary')",
                         "a dataset made with label_mode=None", where=where)
    want_mode = _LOSS_LABELS.get(loss_kind)
    if want_mode is not None and ds.label_mode != want_mode:
        raise InputError(name, f"a dataset with label_mode={want_mode!r} for this loss (match the loss: 'int' "
                         "for sparse_categorical_crossentropy, 'categorical' for categorical_crossentropy, "
                         "'binary' for binary_crossentropy)", f"a dataset made with label_mode={ds.label_mode!r}",
                         where=where)
    k = ds.num_classes
    if n_out is not None and ((loss_kind == "sparse" and k > n_out)
                              or (loss_kind == "categorical" and k != n_out)
                              or (loss_kind == "binary" and n_out != 1)):
        raise InputError(name, f"labels the model's {n_out} output(s) can take",
                         f"a dataset of {k} classes", where=where)


def check_same_classes(trained: list[str] | None, ds: ImageDataset, where: str,
                       name: str = "validation_data") -> None:
    """A dataset's labels mean what the training labels meant: the same class names in the same order
    (label k is class k of each; another folder set would shift the labels without any error)."""
    if ds.class_names is not None and trained is not None and list(trained) != ds.class_names:
        only_t = sorted(set(trained) - set(ds.class_names))
        only_v = sorted(set(ds.class_names) - set(trained))
        other = "validation" if name == "validation_data" else "this dataset"
        detail = (f"only in training: {only_t}; only in {other}: {only_v}" if only_t or only_v
                  else "the same names in another order")
        raise InputError(name, f"a dataset with the training dataset's classes {list(trained)} in that order "
                         f"({detail})", ds.class_names, where=where)


def with_skipped_rows(ds: ImageDataset, out: np.ndarray, skipped: list[tuple[str, str]]) -> np.ndarray:
    """predict's outputs for ``ds`` with a NaN row where a file was skipped as unreadable in that pass
    (``on_bad_file="skip"``), so that row i stays ``file_paths[i]`` and ``labels[i]``: without them every
    later row would belong to the file after its own."""
    if not skipped:
        return out
    order = {p: i for i, p in enumerate(ds.file_paths)}
    missing = sorted({order[p] for p, _ in skipped if p in order})
    full = np.full((out.shape[0] + len(missing),) + out.shape[1:], np.nan, dtype=out.dtype)
    kept = np.ones(full.shape[0], dtype=bool)
    kept[missing] = False
    full[kept] = out
    return full


def dataset_batches(train: ImageDataset, validation: ImageDataset | None, *, steps_per_epoch: int | None,
                    validation_steps: int | None, shuffle: bool, seed: int, augment: Augment | None,
                    device: torch.device, rank: int = 0, world_size: int = 1,
                    weigh: Callable[[torch.Tensor], torch.Tensor] | None = None
                    ) -> tuple[DatasetBatches, DatasetBatches | None]:
    """The batch sources of a fit on datasets (checked by `pydlr.data.prepare.prepare_dataset_fit`):
    training batches (shuffled when both ``shuffle`` and the dataset say so, augmented with ``augment`` or
    the dataset's own augmentation, sharded by rank, each sample weighted by ``weigh(labels)`` when
    given: ``class_weight``) and validation batches (unweighted, as keras'; in order,
    ``validation_steps`` of them, cycling when that is more than a pass). Workers run at
    ``TRAINING_NICENESS``."""
    src = DatasetBatches(train, steps=steps_per_epoch, shuffle=train.shuffle_each_pass and shuffle, seed=seed,
                         augment=augment, device=device, rank=rank, world_size=world_size,
                         niceness=TRAINING_NICENESS, weigh=weigh)
    if validation is None:
        return src, None
    return src, DatasetBatches(validation, steps=validation_steps, shuffle=False, seed=0, device=device,
                               niceness=TRAINING_NICENESS)
