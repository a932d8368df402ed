"""Help people see inside the black box: filters, feature maps, Grad-CAM, and where a model errs.

``filters`` (first-layer kernels as an image grid), ``activations`` (feature maps of a layer),
``grad_cam`` (class-evidence heatmaps), ``confusion_matrix`` and ``top_losses``; ``plot_*`` draw them with
matplotlib (Agg) and save PNGs. Deep learning is not always the answer: ``top_losses`` and the confusion
matrix show when a simpler model (e.g. logistic regression on ``pretrained.embed_images`` features) is enough.
``view_model`` serves a live page (draw a digit, watch every layer respond); ``filter_patterns`` finds by
gradient ascent the input each filter responds to most.
"""

from pydlr.interpret.errors_analysis import confusion_matrix, top_losses
from pydlr.interpret.inside import (
    activations,
    filter_grid,
    filters,
    find_layer,
    grad_cam,
    grad_cam_details,
)
from pydlr.interpret.live import ModelView, view_model
from pydlr.interpret.patterns import filter_patterns
from pydlr.interpret.plots import (
    plot_activations,
    plot_confusion_matrix,
    plot_filter_patterns,
    plot_filters,
    plot_grad_cam,
    plot_top_losses,
)

__all__ = [
    "ModelView",
    "activations",
    "confusion_matrix",
    "filter_grid",
    "filter_patterns",
    "filters",
    "find_layer",
    "grad_cam",
    "grad_cam_details",
    "plot_activations",
    "plot_confusion_matrix",
    "plot_filter_patterns",
    "plot_filters",
    "plot_grad_cam",
    "plot_top_losses",
    "top_losses",
    "view_model",
]
