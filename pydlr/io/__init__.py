"""Saving and loading models: architecture as JSON, weights (and optimizer state) as safetensors;
ONNX export."""

from pydlr.io.onnx import export_onnx, onnxruntime_predict
from pydlr.io.saving import (
    load_model,
    load_weights,
    model_config,
    refuse_hdf5,
    save_model,
    save_weights,
)

__all__ = [
    "export_onnx", "load_model", "load_weights", "onnxruntime_predict", "model_config", "refuse_hdf5", "save_model", "save_weights",
]
