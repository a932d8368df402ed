"""Keras' activation names mapped to functions on internal tensors (channel axis = dim 1)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from pydlr.errors import InputError

ActivationFn = Callable[[torch.Tensor], torch.Tensor]

# Keras' axis -1 is the channel axis, which is dim 1 of pydlr's internal tensors (NCHW-shaped or (N, F)).
ACTIVATIONS: dict[str, ActivationFn] = {
    "linear": lambda x: x,
    "relu": F.relu,
    "relu6": F.relu6,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda x: torch.softmax(x, dim=1),
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
