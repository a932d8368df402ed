"""Keras-style layers as torch modules (channels-last at the API, channels-last memory inside).

Layers are meant to be composed in ``pydlr.models.Sequential`` / ``Model`` (or called on ``Input``
tensors), which take channels-last data (N, H, W, C). Called directly on a tensor, a layer expects pydlr's
internal layout: NCHW-shaped with channels-last memory, i.e. ``x.permute(0, 3, 1, 2)`` of NHWC data
(``pydlr.layers.base.to_internal``), a view without copy. Weights use torch's layouts and names
(``weight``, ``bias``, ``running_mean``, ...); ``get_weights()``/``set_weights()`` speak Keras' layouts.
"""

from pydlr.layers.base import Layer, SymbolicTensor, clear_session
from pydlr.layers.conv import (
    Conv2D,
    DepthwiseConv2D,
    SeparableConv2D,
    conv_backend,
    get_conv_backend,
    set_conv_backend,
)
from pydlr.layers.core import (
    Activation,
    Add,
    Concatenate,
    Dense,
    Dropout,
    Flatten,
    Input,
    InputLayer,
    Lambda,
    ReLU,
    Rescaling,
    add,
    concatenate,
)
from pydlr.layers.fusion import layer_fusion, set_layer_fusion
from pydlr.layers.normalization import BatchNormalization
from pydlr.layers.pooling import (
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
)
from pydlr.layers.preprocessing import (
    CenterCrop,
    RandomContrast,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    Resizing,
)

# Keras' aliases
Convolution2D = Conv2D
SeparableConvolution2D = SeparableConv2D
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D

__all__ = [
    "Activation",
    "Add",
    "AveragePooling2D",
    "AvgPool2D",
    "BatchNormalization",
    "CenterCrop",
    "Concatenate",
    "Conv2D",
    "Convolution2D",
    "Dense",
    "DepthwiseConv2D",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling2D",
    "GlobalAvgPool2D",
    "GlobalMaxPool2D",
    "GlobalMaxPooling2D",
    "Input",
    "InputLayer",
    "Lambda",
    "Layer",
    "MaxPool2D",
    "MaxPooling2D",
    "RandomContrast",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "ReLU",
    "Rescaling",
    "Resizing",
    "SeparableConv2D",
    "SeparableConvolution2D",
    "SymbolicTensor",
    "add",
    "clear_session",
    "concatenate",
    "conv_backend",
    "get_conv_backend",
    "set_conv_backend",
    "layer_fusion",
    "set_layer_fusion",
]


_NO_TEXT = "pydlr has no recurrent or text layers; it covers 2-d convolutional networks for images"
_NOT_IN_PYDLR = {
    **dict.fromkeys(("LSTM", "GRU", "SimpleRNN", "Bidirectional", "TimeDistributed", "Embedding", "TextVectorization",
                     "MultiHeadAttention", "Attention", "LSTMCell", "GRUCell", "RNN"), _NO_TEXT),
    **dict.fromkeys(("Conv1D", "Conv3D", "MaxPooling1D", "MaxPooling3D", "GlobalAveragePooling1D",
                     "GlobalMaxPooling1D", "AveragePooling1D"), "pydlr's convolutions and pooling are 2-d (Conv2D, "
                    "MaxPooling2D, ...)"),
    **dict.fromkeys(("Conv2DTranspose", "UpSampling2D"), "pydlr has no upsampling layers; it offers Conv2D, "
                    "DepthwiseConv2D and SeparableConv2D"),
    "Reshape": "use Flatten(), or Lambda(lambda t: t.reshape(...)) (a model with a Lambda cannot be saved)",
    "LayerNormalization": "pydlr normalizes with BatchNormalization",
    "Normalization": "scale the inputs with Rescaling(scale, offset) inside the model",
}


def __getattr__(name: str):
    # keras.layers.LSTM and other Keras layers pydlr lacks: say so, and what to use
    from pydlr.errors import NotSupportedAttributeError

    if name in _NOT_IN_PYDLR:
        raise NotSupportedAttributeError(f"keras.layers.{name} is not in pydlr: {_NOT_IN_PYDLR[name]}")
    if name[:1].isupper():
        raise NotSupportedAttributeError(f"keras.layers.{name} is not in pydlr; its layers are: "
                                         f"{', '.join(n for n in __all__ if n[:1].isupper())}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
