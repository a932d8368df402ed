"""ONNX export from R: ``pydlr.io.export_onnx`` and an onnxruntime run of the file."""

from __future__ import annotations

from typing import Any

import numpy as np

from pydlr.api_r._convert import c_array, shape
from pydlr.io import onnx


def export_onnx(model: Any, path: str, input_shape: Any = None, opset: int = 17) -> str:
    """``pydlr.io.export_onnx``; the written path as a string."""
    return str(onnx.export_onnx(model, path, input_shape=shape(input_shape), opset=int(opset)))


def onnxruntime_predict(path: str, x: Any) -> np.ndarray:
    """``pydlr.io.onnxruntime_predict`` (R's column-major result)."""
    return c_array(onnx.onnxruntime_predict(path, np.asarray(x, dtype=np.float32)))
