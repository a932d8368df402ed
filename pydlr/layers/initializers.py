"""Keras' weight initializers by name, with Keras' fan computation (kernel shape in Keras' layout)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from pydlr.errors import InputError

# Keras draws truncated normals at 2 standard deviations and rescales so the variance is the nominal one.
_TRUNC_STD_FACTOR = 0.87962566103423978


def truncated_normal_(t: torch.Tensor, std: float) -> None:
    """Normal(0, std) truncated at 2 std by redrawing the outliers (torch's trunc_normal_ is ~100x slower)."""
    with torch.no_grad():
        t.normal_(0.0, std)
        while True:
            outside = t.abs() > 2.0 * std
            n = int(outside.sum())
            if n == 0:
                return
            t[outside] = torch.empty(n, dtype=t.dtype, device=t.device).normal_(0.0, std)


def _fans(keras_shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras' fan_in/fan_out: for kernels (kh, kw, in, out) the receptive field multiplies in and out."""
    if len(keras_shape) < 1:
        return 1, 1
    if len(keras_shape) == 1:
        return keras_shape[0], keras_shape[0]
    receptive = math.prod(keras_shape[:-2])
    return keras_shape[-2] * receptive, keras_shape[-1] * receptive


def _variance_scaling(scale: float, mode: str, distribution: str) -> Callable:
    def init(t: torch.Tensor, keras_shape: tuple[int, ...]) -> None:
        fan_in, fan_out = _fans(keras_shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, n)
        with torch.no_grad():
            if distribution == "uniform":
                limit = math.sqrt(3.0 * variance)
                t.uniform_(-limit, limit)
            else:
                truncated_normal_(t, math.sqrt(variance) / _TRUNC_STD_FACTOR)

    return init


def _constant(value: float) -> Callable:
    def init(t: torch.Tensor, keras_shape: tuple[int, ...]) -> None:
        with torch.no_grad():
            t.fill_(value)

    return init


def _random_normal(t: torch.Tensor, keras_shape: tuple[int, ...]) -> None:
    with torch.no_grad():
        t.normal_(0.0, 0.05)


def _random_uniform(t: torch.Tensor, keras_shape: tuple[int, ...]) -> None:
    with torch.no_grad():
        t.uniform_(-0.05, 0.05)


def _truncated_normal(t: torch.Tensor, keras_shape: tuple[int, ...]) -> None:
    truncated_normal_(t, 0.05)


def _kaiming_normal_fan_out(t: torch.Tensor, keras_shape: tuple[int, ...]) -> None:
    """torchvision's conv init: kaiming_normal_(mode="fan_out", nonlinearity="relu"), not truncated."""
    _, fan_out = _fans(keras_shape)
    with torch.no_grad():
        t.normal_(0.0, math.sqrt(2.0 / max(1, fan_out)))


INITIALIZERS: dict[str, Callable] = {
    "glorot_uniform": _variance_scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": _variance_scaling(1.0, "fan_avg", "normal"),
    "he_uniform": _variance_scaling(2.0, "fan_in", "uniform"),
    "he_normal": _variance_scaling(2.0, "fan_in", "normal"),
    "lecun_uniform": _variance_scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": _variance_scaling(1.0, "fan_in", "normal"),
    "zeros": _constant(0.0),
    "ones": _constant(1.0),
    "random_normal": _random_normal,
    "random_uniform": _random_uniform,
    "truncated_normal": _truncated_normal,
    # pydlr's addition (not a Keras name): torchvision's initialization of convolutions
    "kaiming_normal_fan_out": _kaiming_normal_fan_out,
}


def normalize_initializer(name: str, argument: str, where: str) -> str:
    """Validate an initializer name (case-insensitive, as Keras) and return the canonical name."""
    if not isinstance(name, str) or name.lower() not in INITIALIZERS:
        raise InputError(argument, f"one of {', '.join(sorted(INITIALIZERS))}", name, where)
    return name.lower()


def initialize(t: torch.Tensor, name: str, keras_shape: tuple[int, ...]) -> None:
    """Fill ``t`` in place with initializer ``name``; ``keras_shape`` is the weight's shape in Keras' layout."""
    INITIALIZERS[name](t, keras_shape)
