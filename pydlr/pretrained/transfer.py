"""Transfer learning on a pretrained backbone: frozen embeddings, and fastai-style fine-tuning.

``fine_tune`` is fastai's recipe on the engine: the head replaced (global average pooling, dropout, dense
softmax), trained on the frozen body with a one-cycle schedule; then the body unfrozen and everything trained
with discriminative learning rates over layer groups (early layers slowest) under one-cycle again.
BatchNormalization stays frozen (inference mode) by default, as Keras advises for small data sets: batch
statistics of a few images would overwrite ImageNet's.
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
from pydlr.layers.base import format_shape
from pydlr.models import BaseModel
from pydlr.models.modes import evaluating
from pydlr.train.optimizers import Adam
from pydlr.train.schedules import ParamScheduler, one_cycle

__all__ = ["embed_images", "fine_tune"]


def _check_model(model: Any, where: str) -> None:
    if not isinstance(model, BaseModel):
        raise InputError("model", "a pydlr model (e.g. pretrained.load('mobilenet_v2'))", model, where)


def embed_images(model: Any, images: Any, batch_size: int | None = None) -> np.ndarray:
    """Frozen features: the backbone's globally average-pooled output, (N, features) float32.

    Works with any model that has ``embed`` (MobileNetV2 / ResNet18, with or without their top) and with
    any other pydlr model (its output, flattened per sample). Runs in inference mode without gradients.
    ``images`` are preprocessed channels-last arrays (see `preprocess`).
    """
    where = "embed_images"
    _check_model(model, where)
    batch_size = resolve_batch_size(batch_size, where)
    x = model.prepare_input(images)  # validates shape/type before any work; internal layout
    if getattr(model, "fold_inference", False):  # application networks: BN folded, ReLU6 fused (same values)
        model = model.inference_model()
    fn = model.forward_features if hasattr(model, "forward_features") else model.call_internal
    out = []
    with evaluating(model), torch.inference_mode():
        for start in range(0, x.shape[0], batch_size):
            feats = fn(x[start:start + batch_size])
            out.append(feats.reshape(feats.shape[0], -1).float().cpu())
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


def _split_data(data: Any, y: Any, where: str) -> tuple[Any, np.ndarray, list[str] | None]:
    """(x, y, class names) from arrays + ``y``, an (x, y) pair, ``load_image_folder``'s (x, y, classes), or
    an image dataset (labels and batches come with it: y is None)."""
    from pydlr.data.image_dataset import ImageDataset

    if isinstance(data, ImageDataset):
        if y is not None or data.label_mode != "int":
            raise InputError("data", "an image dataset with label_mode='int' (its labels, no y)", data, where)
        return data, None, list(data.class_names or []) or None
    names = None
    if isinstance(data, (tuple, list)) and len(data) in (2, 3) and y is None:
        x, y = data[0], data[1]
        names = list(data[2]) if len(data) == 3 else None
    else:
        x = data
    if y is None:
        raise InputError("data", "images with labels: (x, y), load_image_folder's (x, y, classes), or x "
                         "with y=", data, where)
    labels = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or labels.min(initial=0) < 0:
        raise InputError("y", "0-based integer class labels, one per image", y, where)
    return x, labels.astype(np.int64), names


def _headless(model: BaseModel, where: str) -> BaseModel:
    """The backbone of ``model``: an application network loses its classifier (fastai replaces the head);
    a model without one is used as it is (its output must be a feature map)."""
    if getattr(model, "include_top", False):
        drop = getattr(model, "drop_top", None)
        if drop is None:
            raise InputError("model", "a backbone or an application network (its head is replaced)", model,
                             where)
        drop()
    if getattr(model, "pooling", None) is not None:
        raise InputError("model", "a backbone returning its feature map (pooling=None)", model, where)
    return model


def _input_spec(base: BaseModel) -> Any:
    """The base's input shape (no batch axis), or None where it is not known yet.

    A Sequential cut from a trained model (``Sequential(list(m.layers[:5]))``) has no input of its own
    while its first layer was built for one: it is built for that shape now, as fit would build it from a
    first batch of that shape, so the one-channel rule and the checks below apply to it as to ``m``.
    """
    if base.input_spec is None and isinstance(base, Sequential) and len(base.layers):
        first = base.layers[0]
        shape = first.input_spec if isinstance(first, BaseModel) else getattr(first, "input_shape", None)
        if shape is not None and getattr(first, "built", False):
            base.build(tuple(shape))
    return base.input_spec


def _body_advice(base: BaseModel) -> str:
    """How to pass the convolutional body of ``base``: its layers up to the last feature map, where known."""
    outputs = []
    for layer in getattr(base, "layers", None) or []:
        shape = layer.nested_output_shape if isinstance(layer, BaseModel) else getattr(layer, "output_shape", None)
        outputs.append(shape)
    cut = max((i + 1 for i, shape in enumerate(outputs) if shape is not None and len(shape) == 3), default=0)
    r_advice = ("a base built without its head, e.g. application_mobilenet_v2(include_top = FALSE) or "
                "keras_model_sequential() ending at its last convolution")
    if isinstance(base, Sequential) and cut:
        return f"pass its body: Sequential(list(model.layers[:{cut}])) in Python, {r_advice} in R"
    return "pass a base built without its head (include_top=False for an application network)"


def _check_feature_map(base: BaseModel, where: str) -> None:
    """The base must output a feature map (batch, h, w, channels) for the new head's global pooling; a
    classifier (output (None, 10)) is refused here, naming ``model``, rather than by a layer the user never
    made."""
    out = getattr(base, "output_shape", None)
    if isinstance(out, list) or (isinstance(out, tuple) and len(out) != 4):
        raise InputError("model", "a convolutional base whose output is a feature map (batch, h, w, channels): "
                         + _body_advice(base), f"a model whose output is {out}", where)


def _grey_advice(base: BaseModel) -> str:
    """How to give a colour network grey images: its own preprocessing (ImageNet networks), else repeated."""
    from pydlr.pretrained.imagenet import model_mode

    if model_mode(base) is not None and getattr(base, "declared_input_shape", None) is not None:
        return ("preprocess them as its weights expect (the grey channel repeated to 3, resized to the "
                "model's input size, scaled): applications.preprocess_inputs(model, x) in Python, "
                "application_preprocess_inputs(model, x) in R")
    return ("repeat the grey channel: np.repeat(x.reshape(*x.shape[:3], 1), 3, axis=-1) in Python, "
            "array(rep(x, 3), c(dim(x)[1:3], 3)) in R")


def _conform_images(base: BaseModel, spec: Any, x: Any, where: str) -> Any:
    """``x`` checked against the base's input shape before any work, under fit's own rule
    (``conform_input``: (N, H, W) is one channel for an (H, W, 1) input). Grey images for a colour network
    are refused with what to do; other mismatches say the shape as it came and the input shape wanted."""
    if spec is None:  # built from the first batch by fit, as any input-less model
        return x
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise InputError("data", "numeric images (a NumPy array or torch tensor)", x, where)
        images = torch.from_numpy(np.ascontiguousarray(x))
    elif isinstance(x, torch.Tensor):
        images = x
    else:
        raise InputError("data", "images as a NumPy array or torch tensor", x, where)
    # (N, H, W) or (N, H, W, 1); an (H, W, C) colour image without its batch axis is not grey
    grey = (images.dim() == 3 and images.shape[-1] != spec[-1]) or (images.dim() == 4 and images.shape[-1] == 1)
    if len(spec) == 3 and spec[-1] not in (None, 1) and grey:
        raise InputError("data", f"colour images (n, height, width, {spec[-1]}), channels last, as the model "
                         f"takes {format_shape(spec)}; for grey images " + _grey_advice(base), x, where)
    try:
        images = base.conform_input(images, "data", where, spec)
    except InputError as e:  # the whole data set's shape, as it came (conform_input saw a tensor)
        raise InputError("data", e.expected, x, where) from None
    return images.numpy() if isinstance(x, np.ndarray) else images


def layer_groups(model: Sequential, n_groups: int = 3) -> list[list[nn.Parameter]]:
    """fastai's layer groups: the backbone's parameters in module order cut into ``n_groups - 1``
    contiguous parts of about equal size (early, generic features first), then the new head."""
    base, head = model.layers[0], model.layers[1:]
    body = list(base.parameters())
    total = sum(p.numel() for p in body)
    groups: list[list[nn.Parameter]] = [[] for _ in range(n_groups)]
    before = 0
    for p in body:  # by the share of the body's parameters that precede it
        groups[min(n_groups - 2, before * (n_groups - 1) // max(total, 1))].append(p)
        before += p.numel()
    groups[-1] = [p for layer in head for p in layer.parameters()]
    return groups


def _discriminative_adam(model: Sequential, lrs: list[float]) -> torch.optim.Optimizer:
    """Adam (Keras' epsilon) with one parameter group a layer group; each group keeps its rate's share of
    the largest (``lr_scale``) for the schedule to multiply."""
    from pydlr.train.optimizers import _adam_class

    groups = layer_groups(model, max(2, len(lrs)))
    if len(lrs) == 1:  # one rate for all
        groups = [[p for g in groups for p in g]]
    trainable = [[p for p in g if p.requires_grad] for g in groups]
    top = max(lrs)
    param_groups = [{"params": g, "lr": lr, "lr_scale": lr / top} for g, lr in zip(trainable, lrs, strict=True)
                    if g]
    cls, flags = _adam_class([p for g in trainable for p in g])
    return cls(param_groups, lr=top, betas=(0.9, 0.999), eps=1e-7, **flags)


class _GroupOneCycle(ParamScheduler):
    """One-cycle over the fit, each parameter group at its ``lr_scale`` of the scheduled rate."""

    def before_batch(self):
        learn = self.learn
        if not learn.training:
            return
        pos = (learn.epoch * learn.n_iter + learn.iter) / max(learn.n_epochs * learn.n_iter, 1)
        lr = float(self.schedule(pos))
        for group in learn.opt.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        self.lrs.append(lr)


_LOSS = "sparse_categorical_crossentropy"


def _lr_slice(low: float, high: float, n: int) -> list[float]:
    """fastai's ``slice(low, high)``: ``n`` rates spaced evenly on a log scale."""
    if n == 1:
        return [high]
    return [float(low * (high / low) ** (i / (n - 1))) for i in range(n)]


def fine_tune(
    model: Any,
    data: Any,
    epochs: int = 1,
    freeze_epochs: int = 1,
    base_lr: float = 2e-3,
    y: Any = None,
    num_classes: int | None = None,
    lr_mult: float = 100.0,
    pct_start: float = 0.3,
    div: float = 5.0,
    n_groups: int = 3,
    batch_size: int | None = None,
    dropout: float = 0.2,
    validation_data: Any = None,
    train_batchnorm: bool = False,
    seed: int | None = 0,
    verbose: int = 0,
    **fit_args: Any,
) -> Sequential:
    """fastai's ``fine_tune``: a new head, trained on the frozen body, then everything with discriminative
    learning rates, both phases on a one-cycle schedule.

    1. The head is replaced: an application network loses its classifier, and global average pooling,
       dropout and a softmax ``Dense(num_classes)`` go on the body.
    2. Frozen phase: ``freeze_epochs`` of the head alone, one-cycle up to ``base_lr`` (fastai's
       ``pct_start=0.99``: warm-up almost all the way); the body's BatchNormalization layers stay in
       inference mode, so ImageNet's statistics are kept.
    3. Unfreeze, halve ``base_lr`` (as fastai), and train ``epochs`` with one rate a layer group
       (``n_groups``: the body cut in ``n_groups - 1`` parts, then the head), from ``base_lr / lr_mult``
       for the earliest layers to ``base_lr`` for the head, spaced on a log scale, under a one-cycle
       schedule (``pct_start``, starting at the peak divided by ``div``). BatchNormalization keeps its
       statistics unless ``train_batchnorm``.

    Parameters
    ----------
    model : BaseModel
        An application network, with its top (it is removed) or without (``include_top=False``), or any
        backbone returning a feature map (batch, h, w, channels), checked before any work: for a trained
        classifier such as ``load("seed_cnn_fashion_mnist")``, pass its body,
        ``Sequential(list(m.layers[:5]))``. It becomes the first layer of the result (its weights change).
    data : array, (x, y), (x, y, class_names) or ImageDataset
        Preprocessed channels-last images and labels; ``load_image_folder``'s result works as it is, and so
        does an image dataset with integer labels (``image_dataset_from_directory``; preprocess it with
        ``dataset.map``). The images are checked against the model's input shape under fit's rule: (N, H, W)
        is one channel for a model taking (H, W, 1). Grey images for a colour (3-channel) network are
        refused: ``applications.preprocess_inputs(model, x)`` (or ``preprocess``) repeats the grey channel
        to 3, as the ImageNet weights expect.
    epochs, freeze_epochs : int
        Epochs after unfreezing (0 keeps the body frozen) and head-only epochs before.
    base_lr : float
        The peak learning rate of the frozen phase; half of it is the head's peak after unfreezing.
    y : array, optional
        Labels when ``data`` holds the images alone.
    num_classes : int, optional
        Classes of the new head (default: ``len(class_names)`` or ``max(y) + 1``).
    lr_mult, pct_start, div, n_groups
        fastai's discriminative-rate ratio, one-cycle warm-up fraction and start divisor, layer groups.
    seed : int, optional
        Makes the whole run reproducible: the head's initial weights, data order, dropout, augmentation.
    fit_args
        Passed to ``fit`` (e.g. ``augment``, ``callbacks``).

    Returns
    -------
    pydlr.Sequential
        ``[model, GlobalAveragePooling2D, Dropout, Dense(num_classes, softmax)]``, in inference mode,
        compiled with Adam at the earliest layer group's rate; ``fine_tune_history = {"frozen": History, "unfrozen": History}`` and ``fine_tune_lrs`` (the
        peak rate of each layer group after unfreezing).
    """
    where = "fine_tune"
    _check_model(model, where)
    x, labels, names = _split_data(data, y, where)
    epochs, freeze_epochs, n_groups = _check_schedule(epochs, freeze_epochs, base_lr, lr_mult, div, pct_start,
                                                      n_groups, where)
    num_classes = _check_num_classes(num_classes, labels, names, where)
    base = _headless(model, where)
    spec = _input_spec(base)
    _check_feature_map(base, where)
    if labels is not None:  # a dataset's images are checked by fit against the model
        x = _conform_images(base, spec, x, where)  # shape checked before any training, as fit's rule has it

    net = _with_head(base, num_classes, dropout, seed)
    callbacks = list(fit_args.pop("callbacks", None) or [])
    fit = dict(batch_size=batch_size, validation_data=validation_data, seed=seed, verbose=verbose,
               callbacks=callbacks, **fit_args)
    histories: dict[str, Any] = {}
    if freeze_epochs:
        base.trainable = False
        histories["frozen"] = _train_phase(net, x, labels, [base_lr], freeze_epochs,
                                           one_cycle(base_lr, pct_start=0.99, div=25.0), fit)
    lrs = _lr_slice(base_lr / 2 / lr_mult, base_lr / 2, n_groups)
    if epochs:
        base.trainable = True
        if not train_batchnorm:
            _freeze_batchnorm(base)
        histories["unfrozen"] = _train_phase(net, x, labels, lrs, epochs,
                                             one_cycle(max(lrs), pct_start=pct_start, div=div), fit)
    return _finish(net, histories, lrs, lrs[0] if epochs else base_lr, names)


def _check_schedule(epochs, freeze_epochs, base_lr, lr_mult, div, pct_start, n_groups,
                    where: str) -> tuple[int, int, int]:
    """fine_tune's epochs, rates and groups, checked before any work."""
    epochs = _check_count(epochs, "epochs", where, 0)
    freeze_epochs = _check_count(freeze_epochs, "freeze_epochs", where, 0)
    if epochs + freeze_epochs == 0:
        raise InputError("epochs", "epochs + freeze_epochs >= 1", (epochs, freeze_epochs), where)
    for name, value in (("base_lr", base_lr), ("lr_mult", lr_mult), ("div", div)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise InputError(name, "a positive number", value, where)
    if isinstance(pct_start, bool) or not isinstance(pct_start, (int, float)) or not 0 < pct_start < 1:
        raise InputError("pct_start", "a fraction in (0, 1)", pct_start, where)
    return epochs, freeze_epochs, _check_count(n_groups, "n_groups", where, 2)


def _check_num_classes(num_classes, labels, names, where: str) -> int:
    """The new head's width: given, else the class names' count, else ``max(y) + 1``; every label below it."""
    top = -1 if labels is None else int(labels.max(initial=0))
    default_classes = len(names) if names else max(2, top + 1)
    num_classes = _check_count(default_classes if num_classes is None else num_classes, "num_classes",
                               where, 2)
    if top >= num_classes:
        raise InputError("y", f"labels below num_classes ({num_classes})", top, where)
    return num_classes


def _train_phase(net, x, labels, lrs: list[float], epochs: int, schedule, fit: dict[str, Any]):
    """One phase: Adam with one rate a layer group, the one-cycle ``schedule`` scaled per group."""
    net.compile(optimizer=_discriminative_adam(net, lrs), loss=_LOSS, metrics=["accuracy"])
    fit = dict(fit, callbacks=[_GroupOneCycle(schedule), *fit["callbacks"]])
    return net.fit(x, labels, epochs=epochs, **fit)


def _finish(net, histories: dict[str, Any], lrs: list[float], rate: float, names) -> Sequential:
    # Compiled again with a plain Adam spec: a further fit trains the whole network at the earliest group's
    # rate (safe for the body), and save_model records an optimizer that load_model can rebuild (the
    # per-group optimizer of the phases is a torch object, which saved configs cannot name).
    net.compile(optimizer=Adam(learning_rate=rate), loss=_LOSS, metrics=["accuracy"])
    net.eval()
    net.fine_tune_history = histories
    net.fine_tune_lrs = lrs
    if names:
        net.class_names = tuple(names)
    return net
