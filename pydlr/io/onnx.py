"""ONNX export: a pydlr model as a standard ONNX graph that onnxruntime (or any ONNX runtime) runs.

pydlr's native operators (``torch.ops.pydlr.*``) are unknown to ONNX. During export every convolution and
pooling layer computes with torch's own functions instead (``set_conv_backend("torch")`` and each layer's
``backend`` set aside, which also turns conv+pool fusion off), so the exporter sees ``F.conv2d`` /
``F.max_pool2d`` and writes ``Conv`` / ``MaxPool`` nodes; activations become ``Relu`` / ``Clip`` nodes, and in
inference mode the exporter folds each BatchNormalization into the convolution before it. The graph takes
what ``predict`` takes, channels-last float32 (N, H, W, C) with a free batch axis, and returns what it
returns. Layers are checked against the set known to translate before anything is traced, so an
inexpressible layer is named in the error instead of surfacing as a tracer failure deep in torch.onnx.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pydlr import layers
from pydlr.errors import InputError, NotSupportedError
from pydlr.layers.base import Layer, to_internal, to_public
from pydlr.models import BaseModel
from pydlr.models.modes import evaluating

__all__ = ["EXPORTABLE_LAYERS", "export_onnx", "onnxruntime_predict"]

WHERE = "export_onnx"

# Layers whose inference computation is plain torch once the native backend is set aside.
EXPORTABLE_LAYERS: tuple[type, ...] = (
    layers.InputLayer, layers.Conv2D, layers.DepthwiseConv2D, layers.Dense, layers.Flatten,
    layers.Dropout, layers.Activation, layers.Rescaling, layers.Add, layers.Concatenate,
    layers.BatchNormalization, layers.MaxPooling2D, layers.AveragePooling2D,
    layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D,
)


class _PublicLayout(nn.Module):
    """The model as ``predict`` sees it: channels-last in, channels-last out (no validation or casting,
    which the exporter would otherwise trace as Python-side checks)."""

    def __init__(self, model: BaseModel):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return to_public(self.model.call_internal(to_internal(x)))


def _check_layers(model: BaseModel) -> None:
    for path, module in model.named_modules():
        if isinstance(module, Layer) and not isinstance(module, BaseModel) \
                and not isinstance(module, EXPORTABLE_LAYERS):
            names = ", ".join(sorted(t.__name__ for t in EXPORTABLE_LAYERS))
            raise NotSupportedError(
                f"{WHERE}: layer {path or module.name!r} ({type(module).__name__}) has no ONNX translation; "
                f"exportable layers: {names}"
            )


@contextmanager
def _stock_operators(model: nn.Module) -> Iterator[None]:
    """Every pydlr layer of ``model`` on torch's operators (restored afterwards)."""
    saved = [(m, m.backend) for m in model.modules() if isinstance(m, Layer) and hasattr(m, "backend")]
    try:
        for m, _ in saved:
            m.backend = "torch"
        with layers.conv_backend("torch"):
            yield
    finally:
        for m, backend in saved:
            m.backend = backend


def export_onnx(model: Any, path: str | os.PathLike, input_shape: Any = None, opset: int = 17) -> Path:
    """Write ``model`` as an ONNX file (inference mode) and return its path.

    Parameters
    ----------
    model : BaseModel
        A built pydlr model (Sequential, functional, MobileNetV2, EfficientNet-Lite, a fine-tuned model).
    path : str or PathLike
        The file to write (its folder must exist).
    input_shape : tuple, optional
        One sample's channels-last shape used to trace (default the model's declared input shape); the
        batch axis stays free in the file, height and width are fixed to this shape.
    opset : int
        ONNX opset version (>= 13).

    Returns
    -------
    pathlib.Path
        ``path``; the graph's input is named "input" (N, H, W, C) float32 and its output "output".
    """
    if not isinstance(model, BaseModel):
        raise InputError("model", "a pydlr model", model, WHERE)
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InputError("path", "a file path", path, WHERE)
    out = Path(path).expanduser()
    if not out.parent.is_dir():
        raise InputError("path", "a file in an existing folder", str(path), WHERE)
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 13:
        raise InputError("opset", "an integer >= 13", opset, WHERE)
    shape = tuple(input_shape) if input_shape is not None else model.declared_input_shape
    if shape is None or any(not isinstance(s, int) or s < 1 for s in shape):
        raise InputError("input_shape", "one sample's shape, e.g. (224, 224, 3) (the model declares none)",
                         input_shape, WHERE)
    _check_layers(model)
    ref = next(model.parameters(), None)
    if ref is not None and ref.dtype != torch.float32:
        raise NotSupportedError(f"{WHERE}: weights of dtype {ref.dtype}; ONNX export takes float32 models")
    example = torch.zeros((1, *shape), dtype=torch.float32)
    if not getattr(model, "built", True):  # built here, not while traced (the tracer refuses new weights)
        with evaluating(model), torch.no_grad():
            _PublicLayout(model)(example)
    try:
        with evaluating(model), _stock_operators(model), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                _PublicLayout(model), (example,), str(out), dynamo=False, opset_version=opset,
                input_names=["input"], output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, do_constant_folding=True,
            )
    except (torch.onnx.errors.OnnxExporterError, RuntimeError) as exc:
        out.unlink(missing_ok=True)
        raise NotSupportedError(f"{WHERE}: the model has an operation ONNX cannot express: {exc}") from exc
    return out


def onnxruntime_predict(path: str | os.PathLike, x: Any) -> Any:
    """Run an exported file with onnxruntime on channels-last float32 ``x`` (NumPy); its output array."""
    import numpy as np

    try:
        import onnxruntime
    except ImportError as exc:
        raise InputError("onnxruntime", "the package installed (pip install onnxruntime)", None,
                         "onnxruntime_predict") from exc
    where = "onnxruntime_predict"
    if not Path(path).is_file():
        raise InputError("path", "an existing .onnx file", str(path), where)
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own classes (InvalidProtobuf, Fail, ...) share no public base
        raise InputError("path", "an ONNX file (as export_onnx writes)", str(path), where) from exc
    x = np.ascontiguousarray(x, dtype=np.float32)
    _check_onnx_input(session.get_inputs()[0].shape, x, where)
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _check_onnx_input(expected: list[Any], x: Any, where: str) -> None:
    """``x`` against the graph's input shape (named axes such as "batch" take any size), before onnxruntime
    refuses it in its own words."""
    fixed = tuple(d if isinstance(d, int) else None for d in expected)
    if x.ndim != len(fixed) or any(d is not None and d != n for d, n in zip(fixed, x.shape, strict=True)):
        want = "(" + ", ".join("N" if d is None else str(d) for d in fixed) + ")"
        raise InputError("x", f"an array of shape {want}, as the exported model takes", x, where)
