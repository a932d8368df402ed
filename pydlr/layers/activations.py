"""Keras' activation names mapped to functions on internal tensors (channel axis = dim 1)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from pydlr.errors import InputError

ActivationFn = Callable[[torch.Tensor], torch.Tensor]

# The attribute a softmax or sigmoid output carries (activation name, input) under, as Keras' `_keras_logits`: the
# cross-entropy losses (pydlr.train.losses) compute from these logits when the model ends in that activation and
# the loss is given probabilities (from_logits=False, Keras' default), as Keras on TensorFlow does. That is exact
# where clipping the probabilities at 1e-7 is not (clipped samples get no gradient) and skips the activation's
# backward.
LOGITS_ATTRIBUTE = "_pydlr_logits"


def softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the channel axis; the output remembers its logits (LOGITS_ATTRIBUTE)."""
    out = torch.softmax(x, dim=1)
    setattr(out, LOGITS_ATTRIBUTE, ("softmax", x))
    return out


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """The logistic function; the output remembers its logits (LOGITS_ATTRIBUTE)."""
    out = torch.sigmoid(x)
    setattr(out, LOGITS_ATTRIBUTE, ("sigmoid", x))
    return out

# Keras' axis -1 is the channel axis, which is dim 1 of pydlr's internal tensors (NCHW-shaped or (N, F)).
ACTIVATIONS: dict[str, ActivationFn] = {
    "linear": lambda x: x,
    "relu": F.relu,
    "relu6": F.relu6,
    "sigmoid": sigmoid,
    "tanh": torch.tanh,
    "softmax": softmax,
    "log_softmax": lambda x: torch.log_softmax(x, dim=1),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),  # Keras 3's default negative_slope
    "gelu": F.gelu,  # Keras 3 default: approximate=False
    "elu": F.elu,
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "silu": F.silu,
    "swish": F.silu,
    "hard_sigmoid": lambda x: F.relu6(x + 3.0) / 6.0,
    "exponential": torch.exp,
}

# Activations the native convolution can apply inside the op.
FUSABLE = ("relu", "relu6")


def normalize_activation(activation: str | None, where: str) -> str:
    """Validate an activation name (None means linear, as in Keras) and return its canonical name."""
    if activation is None:
        return "linear"
    if not isinstance(activation, str) or activation.lower() not in ACTIVATIONS:
        raise InputError(
            "activation", f"one of {', '.join(sorted(ACTIVATIONS))} or None", activation, where
        )
    return activation.lower()


def get(name: str) -> ActivationFn:
    """The function for a canonical activation name."""
    return ACTIVATIONS[name]
