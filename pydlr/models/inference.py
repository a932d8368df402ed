"""Inference-only rewrite of a convolutional network: BatchNormalization folded into the convolution before
it, and the ReLU / ReLU6 after it fused into that convolution.

In inference mode ``bn(conv(x)) = conv'(x)`` with ``w' = w * g / sqrt(var + eps)`` (per output channel) and
``b' = beta + (b - mean) * g / sqrt(var + eps)``, so each conv -> BN -> ReLU6 triple becomes one convolution
with ``activation="relu6"``, which pydlr's native depthwise and pointwise kernels compute in one pass over
the output (no BN pass, no activation pass, no intermediate tensors). The folded copy is for inference and
export: its BN statistics are gone, so it cannot be trained further the same way; the original is untouched.

Which layers follow which is read from the module tree: consecutive children of an ``nn.Sequential``
(MobileNetV2, ResNet's downsample), or a module's ``conv_bn_act`` list of attribute-name triples
(EfficientNet-Lite's blocks and ResNet's, whose forward calls its layers by name).

``FoldedInference`` gives a model a ``predict`` that runs such a copy, cached until a weight changes: the
application networks always, and a ``Sequential`` holding one (what ``fine_tune`` returns).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from pydlr.errors import InputError
from pydlr.layers import Activation, BatchNormalization, Conv2D, DepthwiseConv2D
from pydlr.layers.activations import FUSABLE
from pydlr.models.base import BaseModel

__all__ = ["FoldedInference", "fold_batchnorm"]

_CONVS = (Conv2D, DepthwiseConv2D)


def _fold(conv: nn.Module, bn: BatchNormalization) -> None:
    """Fold ``bn`` (inference statistics) into ``conv``'s weight and bias, in place."""
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var + bn.epsilon)
        if bn.weight is not None:
            scale = scale * bn.weight
        shift = -bn.running_mean * scale
        if bn.bias is not None:
            shift = shift + bn.bias
        if conv.bias is not None:
            shift = shift + conv.bias * scale
        conv.weight.mul_(scale.view(-1, *([1] * (conv.weight.dim() - 1))))
        conv.bias = nn.Parameter(shift.to(conv.weight.dtype))
        conv.use_bias = True


def _fuse_activation(conv: nn.Module, act: nn.Module | None) -> bool:
    """Move a ReLU/ReLU6 after a linear convolution into it; True when it did."""
    if isinstance(act, Activation) and act.activation in FUSABLE and conv.activation == "linear":
        conv.activation = act.activation
        conv._auto_choice.clear()  # the fused kernel may win where the plain one did not
        return True
    return False


def _fold_sequential(seq: nn.Sequential) -> None:
    names = list(seq._modules)
    i = 0
    while i + 1 < len(names):
        conv, bn = seq._modules[names[i]], seq._modules[names[i + 1]]
        if isinstance(conv, _CONVS) and conv.activation == "linear" and isinstance(bn, BatchNormalization):
            _fold(conv, bn)
            seq._modules[names[i + 1]] = nn.Identity()
            act = seq._modules[names[i + 2]] if i + 2 < len(names) else None
            if _fuse_activation(conv, act):
                seq._modules[names[i + 2]] = nn.Identity()
            i += 2
        else:
            i += 1


def _fold_named(module: nn.Module, triples: list[tuple[str, str, str | None]]) -> None:
    fused_acts = set()
    for conv_name, bn_name, act_name in triples:
        conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
        if (not isinstance(conv, _CONVS) or conv.activation != "linear"
                or not isinstance(bn, BatchNormalization)):
            continue  # BN after a non-linear convolution does not fold into it
        _fold(conv, bn)
        setattr(module, bn_name, nn.Identity())
        if act_name is not None and _fuse_activation(conv, getattr(module, act_name)):
            fused_acts.add(act_name)
    # The triples name every use of a module's activations, so a fused one has no other caller left
    for act_name in fused_acts:
        setattr(module, act_name, nn.Identity())


def fold_batchnorm(model: Any) -> BaseModel:
    """A copy of ``model`` for inference, with BatchNormalization folded into the convolutions and ReLU6
    fused into them (see the module docstring); outputs equal the original's in inference mode up to float
    rounding (about 1e-5)."""
    if not isinstance(model, BaseModel):
        raise InputError("model", "a pydlr model", model, "fold_batchnorm")
    folded = copy.deepcopy(model).eval()
    for module in list(folded.modules()):
        if isinstance(module, nn.Sequential):
            _fold_sequential(module)
        triples = getattr(module, "conv_bn_act", None)
        if triples:
            _fold_named(module, list(triples))
    folded.inference_folded = True
    return folded


class FoldedInference:
    """Mixin: ``predict`` runs ``inference_model()``, the folded copy, when ``fold_inference`` is true
    (the class attribute here; a ``Sequential`` derives it from its layers). Put it before the class whose
    ``predict`` it wraps."""

    fold_inference = True

    def inference_model(self) -> nn.Module:
        """A copy with BatchNormalization folded into the convolutions and ReLU6 fused into them
        (``fold_batchnorm``), made again whenever a weight changed since the last one (a fit step, a load,
        an edit): ``predict`` runs it."""
        tensors = [*self.parameters(), *self.buffers()]
        # in-place updates bump _version; .to(device) / .data = ... swap the storage (data_ptr)
        stamp = tuple((id(t), t._version, t.data_ptr()) for t in tensors)
        cached = self.__dict__.get("_inference_cache")
        if cached is None or cached[0] != stamp:
            self.__dict__["_inference_cache"] = None  # never deep-copied into the new copy
            cached = (stamp, fold_batchnorm(self))
            self.__dict__["_inference_cache"] = cached
        return cached[1]

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        """Keras' ``predict``, on the inference copy (``inference_model``) when ``fold_inference``: same
        outputs up to float rounding (~1e-6), fewer passes over memory."""
        if getattr(self, "inference_folded", False) or not self.fold_inference:
            return super().predict(x, *args, **kwargs)
        return self.inference_model().predict(x, *args, **kwargs)

    def __deepcopy__(self, memo: dict) -> Any:
        # The cached inference copy is derived data: copies (fold_batchnorm's own, user copies) skip it.
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            new.__dict__[key] = None if key == "_inference_cache" else copy.deepcopy(value, memo)
        return new
