"""Keras-named optimizers with Keras' default hyperparameters, built into torch optimizers.

Keras creates optimizers before the model has weights; these specs do the same and become a
``torch.optim.Optimizer`` once `fit` knows the parameters (``build(params)``).

Defaults (Keras 3): SGD lr 0.01, momentum 0; Adam lr 1e-3, betas (0.9, 0.999), epsilon 1e-7;
AdamW the same plus weight_decay 0.004; RMSprop lr 1e-3, rho 0.9, epsilon 1e-7, momentum 0.
torch's epsilon placement (added to sqrt(v)) is Keras' placement for all four.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields

import torch

from pydlr import ops
from pydlr.errors import InputError, NotSupportedError
from pydlr.train import lr_schedules as schedules

__all__ = ["schedules", "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "NativeAdam", "get_optimizer", "get",
           "with_learning_rate", "import_torch_optimizer_machinery"]


def import_torch_optimizer_machinery() -> None:
    """Import now what torch imports when a process builds its first optimizer.

    ``torch.optim.Optimizer.__init__`` is wrapped by ``torch._disable_dynamo``, which imports
    ``torch._dynamo`` on its first call: about 800 modules, ~1.0 s of CPU on this project's 2-core
    machines and more from a cold disk. ``compile`` calls this, so the cost is paid once where training
    is configured, whether or not the optimizer can be built yet, and no fit's first epoch pays it.
    """
    import torch._dynamo  # noqa: F401


class KerasLearningRate:
    """Keras' ``optimizer.learning_rate`` on a torch optimizer: reading gives the first parameter group's
    rate; setting it sets every group's, which is what the next step uses (a callback's
    ``self.model.optimizer.learning_rate = 0.0`` really stops the updates)."""

    iterations: int = 0  # Keras' step count; fit counts it on the instance (lr_schedules.ScheduleStep)

    @property
    def learning_rate(self) -> float:
        return float(self.param_groups[0]["lr"])

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise InputError("learning_rate", "a non-negative number", value, where="optimizer")
        for group in self.param_groups:
            group["lr"] = float(value)


_WITH_LEARNING_RATE: dict[type, type] = {}


def with_learning_rate(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """``optimizer`` (the same object) given Keras' ``learning_rate`` property (`KerasLearningRate`).

    Its class becomes a subclass of its own class with the same name; state, ``state_dict`` and steps
    are untouched. Also applied to torch optimizers users pass to ``compile``, so the property means
    the same whatever built the optimizer.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise InputError("optimizer", "a torch.optim.Optimizer", optimizer, where="with_learning_rate")
    cls = type(optimizer)
    if isinstance(optimizer, KerasLearningRate):
        return optimizer
    if cls not in _WITH_LEARNING_RATE:
        _WITH_LEARNING_RATE[cls] = type(cls.__name__, (KerasLearningRate, cls),
                                        {"__module__": cls.__module__, "__doc__": cls.__doc__})
    optimizer.__class__ = _WITH_LEARNING_RATE[cls]
    return optimizer


class NativeAdam(torch.optim.Adam):
    """``torch.optim.Adam`` (AdamW with ``decoupled_weight_decay=True``) whose CPU float32 update is one
    native call for all parameters (``pydlr.ops.adam_step_``, torch's formula).

    torch's fused CPU Adam spends ~0.5 ms a step on the seed CNN's 93,000 weights, almost all of it per-tensor
    overhead (bench/bench_step.py); this takes ~0.05 ms. State, ``state_dict`` and ``load_state_dict`` are
    torch.optim.Adam's (step counters as float32 tensors), so checkpoints move between the two. Groups with
    parameters elsewhere (CUDA, float64, ...) or with amsgrad/maximize/capturable/differentiable take
    torch's own step.
    """

    def __init__(self, params, **kwargs):
        kwargs.setdefault("foreach", False)  # torch's own step, when taken, is its for-loop (state layout as ours)
        super().__init__(params, **kwargs)

    @staticmethod
    def _native_group(group: dict) -> bool:
        if group["amsgrad"] or group["maximize"] or group["capturable"] or group["differentiable"]:
            return False
        if group["fused"] or isinstance(group["lr"], torch.Tensor):
            return False
        return all(p.device.type == "cpu" and p.dtype == torch.float32 and p.is_contiguous()
                   and (p.grad is None or (p.grad.is_contiguous() and not p.grad.is_sparse
                                           and p.grad.dtype == torch.float32))
                   for p in group["params"])

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 (torch.optim.Adam.step)
        if not all(self._native_group(g) for g in self.param_groups):
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, avgs, sqs, steps = [], [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0, dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(p.grad)
                avgs.append(state["exp_avg"])
                sqs.append(state["exp_avg_sq"])
                steps.append(state["step"])
            if params:
                beta1, beta2 = group["betas"]
                ops.adam_step_(params, grads, avgs, sqs, steps, float(group["lr"]), float(beta1), float(beta2),
                               float(group["eps"]), float(group["weight_decay"]),
                               bool(group["decoupled_weight_decay"]))
        return loss


def _adam_class(params: list[torch.Tensor]) -> tuple[type[torch.optim.Adam], dict]:
    """pydlr's one-call Adam for CPU float32 models, torch's fused Adam elsewhere (CUDA, float64, mixed)."""
    if params and all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params):
        return NativeAdam, {}
    return torch.optim.Adam, _fast_flags(params)


def _fast_flags(params: list[torch.Tensor], fused: bool = True) -> dict:
    """torch's fused kernels (Adam/AdamW/SGD, CPU and CUDA): the whole update of a tensor in one
    kernel. Measured on the seed CNN's weights, 1 thread: fused Adam step 0.47 ms, foreach 1.5 ms,
    the default for-loop 1.7 ms. Optimizers without a fused kernel (RMSprop) use foreach."""
    ok = fused and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return {"fused": True} if ok else {"foreach": True}


# Keras 2 names that Keras 3 renamed, and Keras 3 arguments pydlr's optimizers do not implement
_RENAMED = {"lr": "learning_rate=", "decay": "learning_rate=keras.optimizers.schedules.InverseTimeDecay(...)"}
_KERAS_ONLY = ("clipnorm", "clipvalue", "global_clipnorm", "use_ema", "ema_momentum", "ema_overwrite_frequency",
               "loss_scale_factor", "gradient_accumulation_steps", "name")


def _unknown_argument(cls_name: str, key: str, value: object, known: list[str]) -> Exception:
    where = f"optimizers.{cls_name}"
    if key in _RENAMED:
        return InputError(key, f"written {_RENAMED[key]} (Keras 3's name for it)", value, where=where)
    if key in _KERAS_ONLY:
        return NotSupportedError(f"{where}({key}=...) is not supported: pydlr's {cls_name} takes "
                                 f"{', '.join(known)}")
    return InputError(key, f"one of {cls_name}'s arguments: {', '.join(known)}", value, where=where)


@dataclass
class Optimizer:
    """Base of the specs: ``learning_rate`` and ``build(params)``."""

    learning_rate: float = 0.001

    def __new__(cls, *args, **kwargs):
        # the dataclass __init__ would answer an old or unsupported Keras argument (lr=, clipnorm=) with a
        # bare TypeError; name it and say what to write
        known = {f.name for f in fields(cls)}
        for key in kwargs:
            if key not in known:
                raise _unknown_argument(cls.__name__, key, kwargs[key], sorted(known))
        return super().__new__(cls)

    def build(self, params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
        raise NotImplementedError

    def get_config(self) -> dict:
        """``{"class_name": "Adam", <Keras argument>: value, ...}`` (``get(**config)`` rebuilds it); a
        schedule as its JSON config."""
        config = {"class_name": type(self).__name__.lower(), **asdict(self)}
        if isinstance(self.learning_rate, schedules.LearningRateSchedule):
            config["learning_rate"] = schedules.serialize(self.learning_rate)
        return config

    @property
    def initial_lr(self) -> float:
        """The rate the built optimizer starts with: a schedule's rate at step 0."""
        lr = self.learning_rate
        return float(lr(0)) if isinstance(lr, schedules.LearningRateSchedule) else lr

    def __post_init__(self) -> None:
        if isinstance(self.learning_rate, dict):  # a saved schedule (get_config)
            self.learning_rate = schedules.deserialize(self.learning_rate)
        if isinstance(self.learning_rate, schedules.LearningRateSchedule):
            return
        if not isinstance(self.learning_rate, (int, float)) or not self.learning_rate > 0:
            raise InputError("learning_rate", "a positive number or a keras.optimizers.schedules "
                             "schedule", self.learning_rate, where=type(self).__name__)
        self._check_ranges()

    # The settings torch would only refuse when the optimizer is built, at fit time: checked here, where
    # the user wrote them. (name, low, high, high included)
    _RANGES = (("momentum", 0.0, 1.0, True), ("rho", 0.0, 1.0, True), ("beta_1", 0.0, 1.0, False),
               ("beta_2", 0.0, 1.0, False), ("epsilon", 0.0, float("inf"), False),
               ("weight_decay", 0.0, float("inf"), False))

    def _check_ranges(self) -> None:
        for name, low, high, closed in self._RANGES:
            if not hasattr(self, name):
                continue
            value = getattr(self, name)
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and low <= value and (value <= high if closed else value < high))
            if not ok:
                bracket = "]" if closed else ")"
                raise InputError(name, f"a number in [{low:g}, {high:g}{bracket}", value,
                                 where=type(self).__name__)


@dataclass
class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum; Keras' defaults."""

    learning_rate: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def build(self, params):
        params = list(params)
        return with_learning_rate(torch.optim.SGD(
            params, lr=self.initial_lr, momentum=self.momentum, nesterov=self.nesterov,
            weight_decay=self.weight_decay, **_fast_flags(params)))


@dataclass
class Adam(Optimizer):
    """Adam with Keras' defaults (epsilon 1e-7, not torch's 1e-8)."""

    learning_rate: float = 0.001
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    amsgrad: bool = False

    def build(self, params):
        return _build_adam(self, params)


@dataclass
class AdamW(Optimizer):
    """AdamW (decoupled weight decay) with Keras' defaults (weight_decay 0.004, epsilon 1e-7)."""

    learning_rate: float = 0.001
    weight_decay: float = 0.004
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    amsgrad: bool = False

    def build(self, params):
        return _build_adam(self, params, decoupled_weight_decay=self.weight_decay)


def _build_adam(spec: Adam | AdamW, params, decoupled_weight_decay: float | None = None):
    """The torch optimizer for an `Adam` spec, or for `AdamW` with ``decoupled_weight_decay``."""
    params = list(params)
    cls, flags = _adam_class(params)
    extra = {}
    if decoupled_weight_decay is not None:
        if cls is torch.optim.Adam:
            cls = torch.optim.AdamW
        else:
            flags = {"decoupled_weight_decay": True}
        extra = {"weight_decay": decoupled_weight_decay}
    return with_learning_rate(cls(params, lr=spec.initial_lr, betas=(spec.beta_1, spec.beta_2),
                                  eps=spec.epsilon, amsgrad=spec.amsgrad, **extra, **flags))


@dataclass
class RMSprop(Optimizer):
    """RMSprop with Keras' defaults (rho 0.9, epsilon 1e-7; torch's defaults are 0.99 and 1e-8)."""

    learning_rate: float = 0.001
    rho: float = 0.9
    momentum: float = 0.0
    epsilon: float = 1e-7
    centered: bool = False

    def build(self, params):
        params = list(params)
        return with_learning_rate(torch.optim.RMSprop(
            params, lr=self.initial_lr, alpha=self.rho, eps=self.epsilon, momentum=self.momentum,
            centered=self.centered, **_fast_flags(params, fused=False)))


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}


def get_optimizer(optimizer) -> Optimizer | torch.optim.Optimizer:
    """Resolve "adam" / "sgd" / "adamw" / "rmsprop", a spec, or a ready ``torch.optim.Optimizer``."""
    if isinstance(optimizer, str) and optimizer.lower() in _BY_NAME:
        return _BY_NAME[optimizer.lower()]()
    if isinstance(optimizer, (Optimizer, torch.optim.Optimizer)):
        return optimizer
    raise InputError("optimizer", f"one of {sorted(_BY_NAME)}, a pydlr optimizer "
                     "(pydlr.optimizers.Adam(...)) or a torch.optim.Optimizer", optimizer,
                     where="compile")


def get(name: str, **kwargs) -> Optimizer:
    """An optimizer spec by name with Keras' argument names, e.g. ``get("adam", learning_rate=1e-3)``;
    names are case-insensitive ("Adam", "adam")."""
    if not isinstance(name, str) or name.lower() not in _BY_NAME:
        raise InputError("optimizer", f"one of {sorted(_BY_NAME)}", name)
    try:
        return _BY_NAME[name.lower()](**kwargs)
    except TypeError as exc:
        raise InputError("optimizer arguments", f"arguments of {_BY_NAME[name.lower()].__name__}",
                         sorted(kwargs), where="optimizer") from exc


_KERAS_OPTIMIZERS_NOT_IN_PYDLR = ("Adadelta", "Adagrad", "Adamax", "Nadam", "Ftrl", "Lion", "Adafactor", "LossScaleOptimizer")


def __getattr__(name: str):
    # keras.optimizers.Adadelta() (Keras' classic MNIST script): name what pydlr offers instead
    if name in _KERAS_OPTIMIZERS_NOT_IN_PYDLR:
        from pydlr.errors import NotSupportedAttributeError

        raise NotSupportedAttributeError(
            f"keras.optimizers.{name} is not in pydlr: its optimizers are SGD, Adam, AdamW and RMSprop; or give "
            f"compile() a torch optimizer over the model's weights (torch.optim.{name}(model.parameters()), "
            "where torch has it)")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
