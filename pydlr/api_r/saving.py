"""Saving and loading from R: ``pydlr.io``'s functions under their own names (one format for R and Python)."""

from __future__ import annotations

from typing import Any

from pydlr import io
from pydlr.api_r._convert import strings
from pydlr.engine import Sequential
from pydlr.models.sequential import Sequential as PlainSequential


def save_model(model: Any, path: str, include_optimizer: bool = True) -> str:
    """``pydlr.io.save_model``; R has already refused an existing path unless ``overwrite = TRUE``."""
    io.save_model(model, path, include_optimizer=include_optimizer, overwrite=True)
    return path


def load_model(path: str, compile: bool = True) -> Any:  # noqa: A002 (Keras' name)
    """``pydlr.io.load_model``; a plain ``pydlr.models.Sequential`` saved from Python comes back as the
    trainable ``pydlr.Sequential`` (same architecture and weights), so R can fit it."""
    model = io.load_model(path, compile=compile)
    if not hasattr(model, "fit") and isinstance(model, PlainSequential):
        model = io.load_model(path, model_class=Sequential, compile=compile)
    return model


def class_names(model: Any) -> list[str] | None:
    """The classes the model was trained on (kept by save_model), for R's factor levels; None if unknown."""
    return strings(getattr(model, "trained_class_names", None))


def save_weights(model: Any, path: str) -> str:
    """``pydlr.io.save_weights``: the weights only (safetensors, torch key names)."""
    io.save_weights(model, path)
    return path


def load_weights(model: Any, path: str) -> Any:
    """``pydlr.io.load_weights``: a weights file into a model of the same architecture, in place."""
    io.load_weights(model, path)
    return model
