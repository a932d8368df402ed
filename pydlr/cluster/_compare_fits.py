"""The fits behind `compare_methods` that need more than a few lines: a random forest and a CNN, each
within a time budget, and the CNN's penultimate features."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch


def fit_forest(x: np.ndarray, y: np.ndarray, n_estimators: int, budget: float | None, seed: int) -> Any:
    """scikit-learn's RandomForestClassifier; under a budget it grows 10 trees at a time (warm start)
    until ``n_estimators`` or the budget, whichever comes first."""
    from sklearn.ensemble import RandomForestClassifier

    if budget is None:
        return RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=-1).fit(x, y)
    started = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=min(10, n_estimators), random_state=seed, n_jobs=-1,
                                    warm_start=True).fit(x, y)
    while forest.n_estimators < n_estimators and time.perf_counter() - started < budget:
        forest.set_params(n_estimators=min(forest.n_estimators + 10, n_estimators))
        forest.fit(x, y)
    return forest


def forest_megabytes(forest: Any) -> float:
    """Megabytes of the trees' node and value arrays (what predicting needs)."""
    total = 0
    for tree in forest.estimators_:
        state = tree.tree_.__getstate__()
        total += state["nodes"].nbytes + state["values"].nbytes
    return total / 1e6


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
    models without a ``layers`` list give their output, as ``pydlr.pretrained.embed``."""
    from pydlr.pretrained import embed

    layers = getattr(model, "layers", None)
    if not layers:
        return embed(model, images, batch_size=batch_size)
    box: list[torch.Tensor] = []
    hook = layers[-1].register_forward_pre_hook(lambda _m, args: box.append(args[0].detach().float().cpu()))
    try:
        model.predict(images, batch_size=max(batch_size, 256))
    finally:
        hook.remove()
    return torch.cat([b.reshape(b.shape[0], -1) for b in box]).numpy()
