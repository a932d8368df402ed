"""Deep learning or not? ``compare_methods``: k-means, logistic regression, a random forest and a CNN on one
labelled image set, side by side (``pydlr.cluster.methods`` scores them; this module adds the network: it
sits above both cluster/ and the training engine, which cluster/ never imports)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pydlr.cluster.methods import METHODS, MethodComparison, run_methods
from pydlr.errors import InputError

__all__ = ["METHODS", "MethodComparison", "compare_methods"]


def compare_methods(
    x: Any, y: Any, x_test: Any = None, y_test: Any = None, *,
    methods: Sequence[str] | None = None, model: Any = None, embedding: Any = None,
    epochs: int = 1, batch_size: int = 64, time_budget: float | None = None, n_clusters: int | None = None,
    test_size: float = 0.25, random_state: int = 0, device: str = "cpu", n_estimators: int = 100,
) -> MethodComparison:
    """Deep learning or not? k-means, logistic regression, a random forest and a CNN on the same images.

    Parameters
    ----------
    x, y : array-like
        Images ``(n, h, w)`` or ``(n, h, w, channels)`` (integer pixels 0-255 are scaled to [0, 1]) and their
        classes (any labels, one per image). An image folder: ``x, y, names = pydlr.data.load_image_folder(
        path, image_size=(64, 64))``, then ``compare_methods(x, y)``.
    x_test, y_test : array-like, optional
        Held-out images and classes; without them a stratified ``test_size`` share of ``x`` is held out.
    methods : list of str, optional
        A subset of ``METHODS`` (default: all): ``"kmeans_pixels"``, ``"kmeans_embedding"``,
        ``"logistic_pixels"``, ``"logistic_embedding"``, ``"forest_pixels"``, ``"forest_embedding"``, ``"cnn"``.
    model : pydlr model, optional
        The network to train for the ``"cnn"`` row (default: the seed CNN with a head of one output a
        class). An uncompiled model is compiled with Adam and sparse categorical cross-entropy on logits.
    embedding : None, pydlr model or callable
        Where the ``*_embedding`` rows' features come from. None: the CNN trained here (the input of its
        last layer; with the seed CNN, the 64 units of Dense(64)). A pydlr model (e.g. a pretrained one):
        ``pydlr.pretrained.embed_images(model, images)``. A callable: ``embedding(images)`` -> (n, features).
    epochs, batch_size : int
        The CNN's training; ``epochs=0`` uses the given ``model`` as it is (trained before: its
        ``train_seconds`` is NaN).
    time_budget : float, optional
        Seconds each method may spend training (None: no limit). k-means stops its Lloyd iterations,
        logistic regression its solver iterations, the random forest its trees (it grows 10 at a time)
        and the CNN its batches when the budget is spent; each keeps what it reached.
    n_clusters : int, optional
        k for k-means (default: the number of classes).
    test_size : float
        Share held out when ``x_test`` is not given.
    random_state : int
        Seed of the split, the k-means seeding, the forest and the CNN's initial weights and shuffling.
    device : str
        Where k-means and the CNN compute: "cpu", "cuda" or "auto".
    n_estimators : int
        Trees of the random forest (when the time budget allows).

    Returns
    -------
    MethodComparison
        A DataFrame with ``COLUMNS``: ``method``, ``kind`` ("unsupervised", "supervised", "deep"),
        ``accuracy`` (test accuracy; for k-means after matching clusters to classes), ``ARI``, ``NMI``,
        ``train_seconds`` (for embedding rows, extracting the training images' features plus the
        classic model's fit; the CNN that makes the embedding is timed in its own row),
        ``predict_seconds`` (all test images, embedding included), ``size_mb`` (the fitted parameters;
        embedding rows include the network that makes the features). Printing it ends with a verdict;
        ``.plot()`` draws the embeddings.
    """
    from pydlr.pretrained import embed_images

    _check_seed_cnn_fits(x, methods, model, embedding)
    return run_methods(
        x, y, x_test, y_test, fit_cnn=fit_cnn, penultimate=penultimate, embed=embed_images, methods=methods, model=model,
        embedding=embedding, epochs=epochs, batch_size=batch_size, time_budget=time_budget,
        n_clusters=n_clusters, test_size=test_size, random_state=random_state, device=device,
        n_estimators=n_estimators,
    )


# The smallest image side the seed CNN takes ("valid" convolutions and pooling: 18 -> 16 -> 8 -> 6 -> 3 -> 1).
SEED_CNN_MIN_SIDE = 18


def _check_seed_cnn_fits(x: Any, methods: Sequence[str] | None, model: Any, embedding: Any) -> None:
    """Smaller images than the seed CNN takes fail inside its pooling, after the other rows ran: say so
    before any work, with what to do instead."""
    chosen = list(METHODS) if methods is None else list(methods)
    needs_cnn = "cnn" in chosen or (embedding is None and any(m.endswith("_embedding") for m in chosen))
    shape = np.shape(x)
    channels_first = len(shape) == 4 and shape[1] in (1, 3) and shape[3] > 4  # run_methods says how to fix it
    if (model is not None or not needs_cnn or len(shape) < 3 or channels_first
            or min(shape[1:3]) >= SEED_CNN_MIN_SIDE):
        return
    raise InputError("x", f"images of at least {SEED_CNN_MIN_SIDE} x {SEED_CNN_MIN_SIDE} pixels for the seed "
                     "CNN (or pass model = a network for smaller images, or methods without the CNN and "
                     "embedding rows)", f"images of {shape[1]} x {shape[2]} pixels", where="compare_methods")


def fit_cnn(x: np.ndarray, y: np.ndarray, num_classes: int, model: Any, epochs: int, batch_size: int,
            budget: float | None, seed: int, device: str) -> Any:
    """Train ``model`` (default: the seed CNN with ``num_classes`` logits) on (x, y); with a budget, a
    callback stops after the batch that spends it."""
    from pydlr.engine import Sequential
    from pydlr.layers import clear_session
    from pydlr.models import seed_cnn
    from pydlr.train import losses
    from pydlr.train.callbacks import KerasCallback

    if model is None:
        clear_session()
        torch.manual_seed(seed)
        model = seed_cnn(input_shape=x.shape[1:], num_classes=num_classes, model_class=Sequential)
    if not getattr(model, "compiled", False):
        model.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])

    class _Budget(KerasCallback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if time.perf_counter() - started >= budget:
                self.model.stop_training = True

    started = time.perf_counter()
    callbacks = [_Budget()] if budget is not None else None
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, seed=seed, device=device,
              callbacks=callbacks)
    return model


def penultimate(model: Any, images: np.ndarray, batch_size: int) -> np.ndarray:
    """The input of the model's last layer (e.g. the seed CNN's 64 Dense units), flattened per image;
    models without a ``layers`` list give their output, as ``pydlr.pretrained.embed_images``."""
    layers = getattr(model, "layers", None)
    if not layers:
        from pydlr.pretrained import embed_images

        return embed_images(model, images, batch_size=batch_size)
    box: list[torch.Tensor] = []
    hook = layers[-1].register_forward_pre_hook(lambda _m, args: box.append(args[0].detach().float().cpu()))
    try:
        model.predict(images, batch_size=max(batch_size, 256))
    finally:
        hook.remove()
    return torch.cat([b.reshape(b.shape[0], -1) for b in box]).numpy()
