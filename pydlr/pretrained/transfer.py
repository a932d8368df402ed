"""Transfer learning on a pretrained backbone: frozen embeddings, and fastai-style fine-tuning.

``fine_tune`` is a few lines on the engine: a new head (global average pooling, dropout, dense softmax) on a
frozen base; train the head for ``freeze_epochs`` with ``learning_rate``; then unfreeze the base and train
everything for ``epochs`` with ``learning_rate * unfrozen_lr_factor`` (fastai's ``fine_tune``; Keras'
transfer-learning guide). BatchNormalization stays frozen (inference mode) by default, as Keras advises
for small data sets: batch statistics of a few images would overwrite ImageNet's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from pydlr import layers
from pydlr.data.batching import resolve_batch_size
from pydlr.engine import Sequential
from pydlr.errors import InputError
from pydlr.layers import BatchNormalization
from pydlr.models import BaseModel
from pydlr.train.optimizers import Adam

__all__ = ["embed", "fine_tune"]


def _check_model(model: Any, where: str) -> None:
    if not isinstance(model, BaseModel):
        raise InputError("model", "a pydlr model (e.g. pretrained.load('mobilenet_v2'))", model, where)


def embed(model: Any, images: Any, batch_size: int | None = None) -> np.ndarray:
    """Frozen features: the backbone's globally average-pooled output, (N, features) float32.

    Works with any model that has ``embed`` (MobileNetV2 / ResNet18, with or without their top) and with
    any other pydlr model (its output, flattened per sample). Runs in inference mode without gradients.
    ``images`` are preprocessed channels-last arrays (see `preprocess`).
    """
    where = "embed"
    _check_model(model, where)
    batch_size = resolve_batch_size(batch_size, where)
    x = model.prepare_input(images)  # validates shape/type before any work; internal layout
    fn = model.forward_features if hasattr(model, "forward_features") else model.call_internal
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, x.shape[0], batch_size):
                feats = fn(x[start:start + batch_size])
                out.append(feats.reshape(feats.shape[0], -1).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


def _freeze_batchnorm(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, BatchNormalization):
            m.trainable = False


def _check_count(value: Any, name: str, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(name, f"an integer >= {minimum}", value, where)
    return int(value)


def _with_head(base: BaseModel, num_classes: int, dropout: float, seed: int | None) -> Sequential:
    """``Sequential([base, pooling, dropout, dense])``; the head's initial weights follow ``seed``.

    The head builds (and draws its weights) as the model is assembled, before ``fit`` seeds anything: from
    torch's global generator, the head started from different weights on every call, and ``seed`` did not
    make fine_tune reproducible. The draw uses a forked generator, so the caller's random state is untouched.
    """
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        head = [layers.GlobalAveragePooling2D(), layers.Dense(num_classes, activation="softmax")]
        if dropout:
            head.insert(1, layers.Dropout(dropout))
        return Sequential([base, *head])


def fine_tune(
    base: Any,
    num_classes: int,
    x: Any,
    y: Any,
    epochs: int = 1,
    freeze_epochs: int = 1,
    learning_rate: float = 1e-3,
    unfrozen_lr_factor: float = 0.01,
    batch_size: int | None = None,
    dropout: float = 0.2,
    validation_data: Any = None,
    train_batchnorm: bool = False,
    seed: int | None = 0,
    verbose: int = 0,
    **fit_args: Any,
) -> Sequential:
    """A new classifier on a pretrained ``base``, trained frozen, then unfrozen with a lower LR.

    Parameters
    ----------
    base : BaseModel
        A backbone without its top, e.g. ``pretrained.load("mobilenet_v2", include_top=False,
        input_shape=(96, 96, 3))``; it becomes the first layer of the returned model (its weights change).
    num_classes : int
        Classes of the new head (softmax outputs; labels are 0-based integers).
    x, y : arrays
        Preprocessed channels-last images and integer labels.
    epochs, freeze_epochs : int
        Epochs after unfreezing (0: keep the base frozen) and head-only epochs before.
    learning_rate : float
        Adam's learning rate for the head; the unfrozen phase uses ``learning_rate * unfrozen_lr_factor``.
    train_batchnorm : bool
        Let BatchNormalization layers train in the unfrozen phase (batch statistics); default False.
    seed : int, optional
        Makes the whole run reproducible: the head's initial weights, the data order, dropout and
        augmentation of both phases (two calls with the same seed on equal bases give equal models).
    fit_args
        Passed to ``fit`` (e.g. ``augment``, ``callbacks``).

    Returns
    -------
    pydlr.Sequential
        ``[base, GlobalAveragePooling2D, Dropout, Dense(num_classes, softmax)]``, compiled; its
        ``history`` holds both phases (``model.fine_tune_history = {"frozen": ..., "unfrozen": ...}``).
    """
    where = "fine_tune"
    _check_model(base, where)
    if getattr(base, "include_top", False):
        raise InputError("base", "a backbone without its classifier (include_top=False)", base, where)
    num_classes = _check_count(num_classes, "num_classes", where, 2)
    epochs = _check_count(epochs, "epochs", where, 0)
    freeze_epochs = _check_count(freeze_epochs, "freeze_epochs", where, 0)
    if epochs + freeze_epochs == 0:
        raise InputError("epochs", "epochs + freeze_epochs >= 1", (epochs, freeze_epochs), where)
    for name, value in (("learning_rate", learning_rate), ("unfrozen_lr_factor", unfrozen_lr_factor)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise InputError(name, "a positive number", value, where)
    if getattr(base, "pooling", None) is not None:
        raise InputError("base", "a backbone returning its feature map (pooling=None)", base, where)

    model = _with_head(base, num_classes, dropout, seed)
    fit = dict(batch_size=batch_size, validation_data=validation_data, seed=seed, verbose=verbose,
               **fit_args)
    histories: dict[str, Any] = {}
    if freeze_epochs:
        base.trainable = False
        model.compile(optimizer=Adam(learning_rate=learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        histories["frozen"] = model.fit(x, y, epochs=freeze_epochs, **fit)
    if epochs:
        base.trainable = True
        if not train_batchnorm:
            _freeze_batchnorm(base)
        model.compile(optimizer=Adam(learning_rate=learning_rate * unfrozen_lr_factor),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        histories["unfrozen"] = model.fit(x, y, epochs=epochs, **fit)
    model.eval()
    model.fine_tune_history = histories
    return model
