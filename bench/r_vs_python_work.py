"""Workloads for bench/r_vs_python.R, timed from R (called through reticulate in pydlr's prepared process)
and from Python (this file run with --worker as a subprocess of the same venv).

Each workload prepares its data once (not timed) and then runs one repetition per call of ``run()``.
Protocol of the worker: one line ``<name> <reps> <quick>`` in, one JSON line out: ``{"total": [...],
"convert": [...], "loop": [...]}``, seconds per rep (see ``time_reps``).

Stage clocks: importing this module wraps three functions of pydlr, in whichever process imports it (the R
process through reticulate, the worker here), so both sides time the same stages of a verb: ``convert`` is
the conversion of x to float32 (the whole array for fit, ``pydlr.data.prepare.as_x_tensor``; batch by batch
for predict and evaluate, ``ArrayRows.batch``) and ``loop`` the training loop (``Learner.fit``). What a rep
spends outside both (R's checks and hand-over, model building, the result's way back) is the rest. A
perf_counter pair per call: microseconds against batches of milliseconds.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

import pydlr
from pydlr.cluster import KMeans
from pydlr.data import load_fashion_mnist, prepare
from pydlr.layers import Dense
from pydlr.models import seed_cnn
from pydlr.train import learner

# The whole-epoch R-API rows (fit, fit_one_cycle) train on a third of the training set per rep: more, shorter
# R/Python pairs resolve a 5% difference where three 5 s epochs did not (the machine drifts +-15% over minutes).
EPOCH_ROWS = 20_000

_clock: dict[str, float] = {"convert": 0.0, "loop": 0.0}


def _clocked(stage: str, fn: Callable) -> Callable:
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _clock[stage] += time.perf_counter() - start

    timed.__wrapped__ = fn
    return timed


if not hasattr(prepare.ArrayRows.batch, "__wrapped__"):  # once per process
    prepare.as_x_tensor = _clocked("convert", prepare.as_x_tensor)
    prepare.ArrayRows.batch = _clocked("convert", prepare.ArrayRows.batch)
    learner.Learner.fit = _clocked("loop", learner.Learner.fit)


def stage_clock(reset: bool = True) -> dict[str, float]:
    """Seconds spent in each stage since the last reset (see the module docstring)."""
    out = dict(_clock)
    if reset:
        _clock.update(convert=0.0, loop=0.0)
    return out


def _fashion(quick: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    (x, y), (x_test, _) = load_fashion_mnist()
    if quick:
        x, y = x[:6400], y[:6400]
    to_float = lambda a: (a.astype(np.float32) / 255.0)[..., None]  # noqa: E731  (N, 28, 28, 1)
    return to_float(x), y, to_float(x_test)


def _mm(quick: bool) -> Callable[[], object]:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(1024, 1024, generator=gen), torch.randn(1024, 1024, generator=gen)
    return lambda: torch.mm(a, b)


def _dense(quick: bool) -> Callable[[], object]:
    torch.manual_seed(0)
    layer = Dense(64, activation="relu")
    layer.build((576,))
    x = torch.randn(64, 576, requires_grad=True)

    def run() -> None:
        layer.zero_grad(set_to_none=True)
        layer(x).sum().backward()

    return run


def _conv(quick: bool) -> Callable[[], object]:
    torch.manual_seed(0)
    model = seed_cnn(head=False)
    x = torch.randn(64, 28, 28, 1, requires_grad=True)

    def run() -> None:
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()

    return run


def _compiled_seed_cnn() -> pydlr.Sequential:
    torch.manual_seed(0)
    model = seed_cnn(model_class=pydlr.Sequential)
    model.compile(optimizer="adam", loss=pydlr.train.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def _fit(quick: bool) -> Callable[[], object]:
    x, y, _ = _fashion(quick)
    return lambda: _compiled_seed_cnn().fit(x, y, batch_size=64, epochs=1, verbose=0, seed=0)


def _epoch_f64(quick: bool) -> tuple[np.ndarray, np.ndarray]:
    """The whole-epoch R-API rows' training data as R holds it: float64, ``EPOCH_ROWS`` images (quick: 6,400)."""
    x, y, _ = _fashion(quick)
    n = len(x) if quick else EPOCH_ROWS
    return x[:n].astype(np.float64), y[:n]


def _fit_f64(quick: bool) -> Callable[[], object]:
    """The Python twin of R's fit() verb on R's data: float64 images, softmax head, Keras' loss name."""
    x, y = _epoch_f64(quick)

    def run() -> object:
        torch.manual_seed(0)
        model = seed_cnn(model_class=pydlr.Sequential, name="seed")
        model.pop()
        model.add(Dense(10, activation="softmax"))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model.fit(x, y, batch_size=64, epochs=1, verbose=0, seed=0, device="cpu")

    return run


def _predict(quick: bool) -> Callable[[], object]:
    _, _, x_test = _fashion(quick)
    model = _compiled_seed_cnn()
    return lambda: model.predict(x_test)


def _kmeans(quick: bool) -> Callable[[], object]:
    (x, _), _ = load_fashion_mnist()
    data = x.reshape(len(x), -1).astype(np.float32)
    if quick:
        data = data[:10_000]
    return lambda: KMeans(10, random_state=0).fit(data)


def _kmeans_f64(quick: bool) -> Callable[[], object]:
    """The Python twin of pydlr_kmeans() on R's data: float64 pixels (what R's numeric matrices are), and the
    same work: computed in float32 as pydlr_kmeans' default dtype, with the total sum of squares R's kmeans
    result reports (``totss_``, from the fit)."""
    (x, _), _ = load_fashion_mnist()
    data = x.reshape(len(x), -1).astype(np.float64)
    if quick:
        data = data[:10_000]
    return lambda: KMeans(10, random_state=0, dtype="float32").fit(data)


def _softmax_seed_cnn() -> pydlr.Sequential:
    """The seed CNN with a softmax head, compiled as R's verbs compile it (Keras' loss name)."""
    torch.manual_seed(0)
    model = seed_cnn(model_class=pydlr.Sequential, name="seed")
    model.pop()
    model.add(Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _lr_find_f64(quick: bool) -> Callable[[], object]:
    """The Python twin of R's lr_find(): 100 batches of 64 of R's float64 images."""
    x, y, _ = _fashion(quick)
    x = x.astype(np.float64)
    return lambda: pydlr.train.lr_find(_softmax_seed_cnn(), x, y, num_it=100, batch_size=64)


def _one_cycle_f64(quick: bool) -> Callable[[], object]:
    """The Python twin of R's fit_one_cycle(): one epoch, batch 64, max_lr 3e-3, on float64 images."""
    x, y = _epoch_f64(quick)
    return lambda: pydlr.train.fit_one_cycle(_softmax_seed_cnn(), x, y, epochs=1, max_lr=3e-3, batch_size=64,
                                             verbose=0, seed=0, device="cpu")


def _test_f64() -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 test images as R holds them after ``x / 255``: float64, (N, 28, 28), and their labels."""
    _, (x_test, y_test) = load_fashion_mnist()
    return x_test.astype(np.float64) / 255.0, y_test


def _predict_f64(quick: bool) -> Callable[[], object]:
    """The Python twin of R's predict() verb: batch 256 on the 10,000 float64 test images."""
    x, _ = _test_f64()
    model = _softmax_seed_cnn()
    return lambda: model.predict(x, batch_size=256)


def _evaluate_f64(quick: bool) -> Callable[[], object]:
    """The Python twin of R's evaluate() verb: batch 256 on the 10,000 float64 test images."""
    x, y = _test_f64()
    model = _softmax_seed_cnn()
    return lambda: model.evaluate(x, y, batch_size=256, verbose=0)


def image_folder(quick: bool) -> str:
    """A folder of Fashion-MNIST PNGs in class folders (6,400 images; 1,280 with ``quick``), made once."""
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from make_image_folder import make_image_folder

    limit = 1280 if quick else 6400
    folder = Path(f"/tmp/pydlr-r-vs-python-folder-{limit}")
    if not (folder / ".complete").exists():
        make_image_folder(folder, limit=limit)
        (folder / ".complete").write_text("ok")
    return str(folder)


def _image_folder_f(quick: bool) -> Callable[[], object]:
    """The Python twin of R's image_dataset_from_directory() + fit(): the dataset made and one epoch of the
    seed CNN trained from the folder (the default workers: none on 2 cores), batch 64."""
    folder = image_folder(quick)

    def run() -> None:
        ds = pydlr.utils.image_dataset_from_directory(folder, color_mode="grayscale", image_size=(28, 28),
                                                      batch_size=64, seed=1, verbose=False)
        _softmax_seed_cnn().fit(ds, epochs=1, verbose=0, seed=0)

    return run


WORKLOADS: dict[str, Callable[[bool], Callable[[], object]]] = {
    "mm": _mm, "dense": _dense, "conv": _conv, "fit": _fit, "predict": _predict, "kmeans": _kmeans,
    "fit_f64": _fit_f64, "kmeans_f64": _kmeans_f64, "lr_find_f64": _lr_find_f64,
    "one_cycle_f64": _one_cycle_f64, "predict_f64": _predict_f64, "evaluate_f64": _evaluate_f64,
    "image_folder_f": _image_folder_f,
}
_prepared: dict[tuple[str, bool], Callable[[], object]] = {}


def runner(name: str, quick: bool = False) -> Callable[[], object]:
    """The prepared workload ``name`` (prepared once per process)."""
    key = (name, bool(quick))
    if key not in _prepared:
        _prepared[key] = WORKLOADS[name](bool(quick))
    return _prepared[key]


def run(name: str, quick: bool = False) -> None:
    """One repetition of ``name``; returns nothing (R times the call)."""
    runner(name, quick)()


def time_reps(name: str, reps: int, quick: bool = False) -> dict[str, list[float]]:
    """Seconds of ``reps`` repetitions of ``name``, timed here: ``total`` per rep, and the stage clocks'
    ``convert`` and ``loop`` within it."""
    work = runner(name, quick)
    times: dict[str, list[float]] = {"total": [], "convert": [], "loop": []}
    for _ in range(reps):
        stage_clock(reset=True)
        start = time.perf_counter()
        work()
        times["total"].append(time.perf_counter() - start)
        for stage, seconds in stage_clock().items():
            times[stage].append(seconds)
    return times


def worker() -> None:
    print(json.dumps({"ready": True, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] == "quit":
            break
        name, reps, quick = parts[0], int(parts[1]), parts[2] == "1"
        print(json.dumps(time_reps(name, reps, quick)), flush=True)


if __name__ == "__main__" and "--worker" in sys.argv:
    worker()
