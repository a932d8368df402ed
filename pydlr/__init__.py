"""pydlr: deep learning for R users, with a Python core.

Keras-style on purpose, so ``import pydlr as keras`` runs common Keras scripts::

    import pydlr as keras
    from pydlr import layers
    model = keras.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(32, (3, 3), activation="relu")])
    model.summary()
"""

from pydlr import data, datasets, errors, layers, metrics, models, saving, utils
from pydlr.engine import Model, Sequential
from pydlr.io import load_model, load_weights, save_model, save_weights
from pydlr.layers import Input, clear_session
from pydlr.train import callbacks, losses, optimizers

__version__ = "0.1.0"

# Keras' ``keras.models`` namespace also holds the saving functions and the trainable Sequential and Model;
# they need io/ and train/, which models/ never imports (the model knows no files and no loop), so the
# top-level package, where Keras' names meet, puts them there. pydlr's own modules import the plain classes
# from pydlr.models.sequential / pydlr.models.functional.
models.Sequential = Sequential
models.Model = Model
_plain_seed_cnn = models.seed_cnn


def _seed_cnn(*args, **kwargs):
    if len(args) < 5:  # model_class is the fifth parameter
        kwargs.setdefault("model_class", Sequential)
    return _plain_seed_cnn(*args, **kwargs)


_seed_cnn.__doc__ = (_plain_seed_cnn.__doc__ or "") + "\n    From ``pydlr.models`` the model is trainable (compile/fit).\n"
_seed_cnn.__name__ = _seed_cnn.__qualname__ = "seed_cnn"
models.seed_cnn = _seed_cnn
models.load_model = saving.load_model
models.save_model = saving.save_model
models.model_from_json = saving.model_from_json


def __getattr__(name: str):
    """``pydlr.r`` (R through rpy2), ``pydlr.applications``, ``pydlr.pretrained``, ``pydlr.cluster``,
    ``pydlr.compare`` and ``pydlr.interpret`` on first use: importing pydlr neither imports rpy2 nor starts R,
    nor reads the pretrained registry, nor imports scikit-learn."""
    if name in _LAZY_MODULES:
        import importlib

        return importlib.import_module(f"pydlr.{name}")
    if name in _KERAS_MODULES_NOT_IN_PYDLR:  # a Keras script's keras.regularizers.l2(...), ...
        from pydlr.errors import NotSupportedAttributeError

        raise NotSupportedAttributeError(f"keras.{name} is not in pydlr: {_KERAS_MODULES_NOT_IN_PYDLR[name]}")
    raise AttributeError(f"module 'pydlr' has no attribute {name!r}")


_LAZY_MODULES = ("r", "applications", "pretrained", "cluster", "compare", "interpret")

_KERAS_MODULES_NOT_IN_PYDLR = {
    "regularizers": "weight decay is an optimizer argument (keras.optimizers.AdamW(weight_decay=...))",
    "constraints": "pydlr's layers take no constraints",
    "initializers": "name an initializer as a string (kernel_initializer=\"he_normal\")",
    "activations": "name an activation as a string (activation=\"relu\"); torch.nn.functional inside call()",
    "backend": "keras.backend.clear_session() is keras.clear_session() here; inside call(), tensors are torch "
               "tensors",
    "mixed_precision": "train in bfloat16 with fit(..., precision=\"bfloat16\")",
}

__all__ = [
    "Input", "Model", "Sequential", "applications", "callbacks", "clear_session", "data", "datasets", "errors",
    "layers",
    "load_model", "load_weights", "losses", "metrics", "models", "optimizers", "save_model", "save_weights", "saving",
    "utils", "__version__",
]
