"""BatchNormalization with Keras' arguments and defaults, stored under torch's names."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pydlr.errors import InputError, NotSupportedError
from pydlr.layers import initializers
from pydlr.layers.base import Layer, Shape, format_shape, reject_unsupported


class BatchNormalization(Layer):
    """Keras' ``BatchNormalization(axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True)``.

    Normalizes the channel axis. Stored as torch's BatchNorm: ``weight`` (gamma), ``bias`` (beta),
    ``running_mean``, ``running_var``, ``num_batches_tracked`` (torchvision's key names). Keras' momentum m
    is torch's ``1 - m``. As in Keras 3, a layer with ``trainable=False`` runs in inference mode.
    Differences from Keras, documented: the moving variance is updated with the unbiased batch variance
    (torch's rule); Keras uses the biased one.
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: str = "zeros",
        gamma_initializer: str = "ones",
        moving_mean_initializer: str = "zeros",
        moving_variance_initializer: str = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        synchronized: bool = False,
        **kwargs: Any,
    ):
        # Long because it is Keras' whole signature, each argument checked where Keras would take it.
        super().__init__(**kwargs)
        where = self.where
        reject_unsupported(
            where,
            beta_regularizer=beta_regularizer,
            gamma_regularizer=gamma_regularizer,
            beta_constraint=beta_constraint,
            gamma_constraint=gamma_constraint,
        )
        if axis not in (-1, 3, 1) or synchronized:
            raise NotSupportedError(
                f"{where}: only axis=-1 (channels) and synchronized=False are supported; "
                f"received axis={axis!r}, synchronized={synchronized!r}."
            )
        self.axis = axis
        for argument, value, low, high in (
            ("momentum", momentum, 0.0, 1.0),
            ("epsilon", epsilon, 0.0, None),
        ):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= low
            if (
                not ok
                or (high is not None and value > high)
                or (argument == "epsilon" and value <= 0)
            ):
                raise InputError(
                    argument, "a number in [0, 1]" if high else "a positive number", value, where
                )
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        names = {
            "beta_initializer": beta_initializer,
            "gamma_initializer": gamma_initializer,
            "moving_mean_initializer": moving_mean_initializer,
            "moving_variance_initializer": moving_variance_initializer,
        }
        self.initializer_names = {
            k: initializers.normalize_initializer(v, k, where) for k, v in names.items()
        }
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        self.register_buffer("running_mean", None)
        self.register_buffer("running_var", None)
        self.register_buffer("num_batches_tracked", None)
        self.num_features: int | None = None

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            **self.initializer_names,
        }

    def check_input_shape(self, input_shape: Shape) -> None:
        if input_shape[-1] != self.num_features:
            raise InputError(
                "input shape",
                f"a tensor with {self.num_features} channels (last axis)",
                format_shape(input_shape),
                self.where,
            )

    def build(self, input_shape: Shape) -> None:
        n = input_shape[-1]
        if self.axis == 1 and len(input_shape) != 1:
            raise NotSupportedError(
                f"{self.where}: axis=1 is only the channel axis for (N, features) input."
            )
        self.num_features = n
        init = self.initializer_names
        if self.scale:
            self.weight = nn.Parameter(torch.empty(n))
            initializers.initialize(self.weight.data, init["gamma_initializer"], (n,))
        if self.center:
            self.bias = nn.Parameter(torch.empty(n))
            initializers.initialize(self.bias.data, init["beta_initializer"], (n,))
        self.running_mean = torch.empty(n)
        initializers.initialize(self.running_mean, init["moving_mean_initializer"], (n,))
        self.running_var = torch.empty(n)
        initializers.initialize(self.running_var, init["moving_variance_initializer"], (n,))
        self.num_batches_tracked = torch.tensor(0, dtype=torch.long)

    @property
    def uses_batch_statistics(self) -> bool:
        """Whether a call normalizes with the batch's statistics and updates the moving ones (training mode,
        and trainable: a frozen layer normalizes with its moving statistics, as in Keras)."""
        return self.training and self.trainable

    @property
    def torch_momentum(self) -> float:
        """The moving statistics' update rate in torch's convention (the weight of the new batch)."""
        return 1.0 - self.momentum

    def call(self, x: torch.Tensor) -> torch.Tensor:
        training = self.uses_batch_statistics
        if training:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training,
            self.torch_momentum,
            self.epsilon,
        )

    def get_weights(self) -> list[np.ndarray]:
        """[gamma, beta, moving_mean, moving_variance] (those present), as Keras orders them."""
        tensors = [self.weight, self.bias, self.running_mean, self.running_var]
        return [t.detach().cpu().numpy().copy() for t in tensors if t is not None]

    def set_weights(self, weights: list[Any]) -> None:
        """Set [gamma, beta, moving_mean, moving_variance] (those present)."""
        targets = [
            t
            for t in (self.weight, self.bias, self.running_mean, self.running_var)
            if t is not None
        ]
        if not self.built or len(weights) != len(targets):
            raise InputError(
                "weights", f"a list of {len(targets)} arrays for a built layer", weights, self.where
            )
        with torch.no_grad():
            for t, w in zip(targets, weights, strict=False):
                t.copy_(torch.as_tensor(np.asarray(w)))
