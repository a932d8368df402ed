"""Saving and loading models: architecture as JSON, weights (and optimizer state) as safetensors."""

from pydlr.io.saving import (
    load_model,
    load_weights,
    model_config,
    refuse_hdf5,
    save_model,
    save_weights,
)

__all__ = [
    "load_model", "load_weights", "model_config", "refuse_hdf5", "save_model", "save_weights",
]
