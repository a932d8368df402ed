"""``keras.utils.plot_model`` drawn with matplotlib: Keras draws through pydot and Graphviz, which pydlr does
not need; the same boxes-and-arrows picture comes from the model's own graph.

Each layer is a box (name and type; output shape with ``show_shapes``; activation, trainable on request),
arrows follow the functional graph (a chain for Sequential and subclassed models), and layers are placed in
ranks by their longest distance from the inputs, top to bottom (``rankdir="TB"``) or left to right ("LR").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydlr.errors import InputError
from pydlr.interpret.plots import _pyplot
from pydlr.models import BaseModel

__all__ = ["plot_model", "model_graph"]

FORMATS = ("png", "pdf", "svg")


def model_graph(model: BaseModel) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """The boxes (summary rows, one per layer) and arrows (index pairs) of a model's picture."""
    rows = model.summary_rows()
    index = {row["layer"]: i for i, row in enumerate(rows)}
    nodes = getattr(model, "nodes", None)
    if nodes is None or getattr(model, "subclassed", False):
        return rows, [(i, i + 1) for i in range(len(rows) - 1)]
    edges = []
    for node in nodes:
        for t in node.inputs:
            edge = (index[t.layer.name], index[node.layer.name])
            if edge not in edges:
                edges.append(edge)
    return rows, edges


def _ranks(n: int, edges: list[tuple[int, int]]) -> list[int]:
    rank = [0] * n
    for _ in range(n):  # longest path; the rows come in execution order, so this settles fast
        changed = False
        for a, b in edges:
            if rank[b] < rank[a] + 1:
                rank[b], changed = rank[a] + 1, True
        if not changed:
            break
    return rank


def _label(row: dict[str, Any], layer: Any, show_shapes: bool, show_layer_names: bool,
           show_layer_activations: bool, show_trainable: bool) -> str:
    lines = [f"{row['layer']} ({row['type']})" if show_layer_names else row["type"]]
    if show_shapes:
        shape = row.get("output_shape")
        lines.append("Output shape: " + ("?" if shape is None else str((None, *shape)) if isinstance(shape, tuple)
                                         else str(shape)))
    activation = getattr(layer, "activation", None)
    if show_layer_activations and isinstance(activation, str):
        lines.append(f"Activation: {activation}")
    if show_trainable:
        lines.append(f"Trainable: {'Y' if row.get('trainable') else 'N'}")
    return "\n".join(lines)


def plot_model(model: Any, to_file: str | os.PathLike = "model.png", show_shapes: bool = False,
               show_dtype: bool = False, show_layer_names: bool = True, rankdir: str = "TB",
               expand_nested: bool = False, dpi: int = 200, show_layer_activations: bool = False,
               show_trainable: bool = False, **kwargs: Any) -> None:
    """Keras' ``plot_model``: a picture of the model's layers and connections written to ``to_file``
    (.png, .pdf or .svg). ``show_dtype`` adds "float32" (pydlr's layers compute in float32);
    ``expand_nested`` draws a nested model as one box."""
    where = "plot_model"
    if not isinstance(model, BaseModel):
        raise InputError("model", "a pydlr model", model, where)
    unknown = sorted(k for k in kwargs if k not in ("show_layer_range", "layer_range"))
    if unknown:
        raise InputError(unknown[0], "an argument of plot_model", unknown[0], where)
    if rankdir not in ("TB", "LR"):
        raise InputError("rankdir", '"TB" or "LR"', rankdir, where)
    if not Path(os.fspath(to_file)).expanduser().parent.is_dir():
        raise InputError("to_file", "a file in an existing folder", str(to_file), where)
    fmt = Path(os.fspath(to_file)).suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise InputError("to_file", "a file name ending in .png, .pdf or .svg (pydlr draws with matplotlib; "
                         "Graphviz formats such as .dot need pydot and Graphviz, which pydlr does not use)",
                         str(to_file), where)
    rows, edges = model_graph(model)
    layers = {getattr(m, "name", None): m for m in model.modules()}
    labels = [_label(r, layers.get(r["layer"]), show_shapes, show_layer_names, show_layer_activations,
                     show_trainable) + ("\nfloat32" if show_dtype else "") for r in rows]
    rank = _ranks(len(rows), edges)
    slots: dict[int, int] = {}
    place = []
    for r in rank:
        place.append((r, slots.get(r, 0)))
        slots[r] = slots.get(r, 0) + 1
    width, depth = max(slots.values(), default=1), max(rank, default=0) + 1
    lines = max((label.count("\n") + 1 for label in labels), default=1)
    box_w, box_h = 3.4, 0.32 + 0.22 * lines
    step_w, step_h = box_w + 0.5, box_h + 0.6
    tb = rankdir == "TB"
    along_step, across_step = (step_h, step_w) if tb else (step_w, step_h)
    along, across = depth * along_step, width * across_step
    plt = _pyplot()
    size = (across, along) if tb else (along, across)
    fig = plt.figure(figsize=size)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()

    def centre(i: int) -> tuple[float, float]:
        r, k = place[i]
        a = (width - slots[r]) * across_step / 2 + k * across_step + across_step / 2
        b = r * along_step + along_step / 2
        return (a, along - b) if tb else (b, across - a)

    dx, dy = (0.0, box_h / 2) if tb else (box_w / 2, 0.0)
    for a, b in edges:
        (x0, y0), (x1, y1) = centre(a), centre(b)
        ax.annotate("", xy=(x1 - dx, y1 + dy), xytext=(x0 + dx, y0 - dy),
                    arrowprops={"arrowstyle": "->", "color": "#444444"})
    for i, label in enumerate(labels):
        x, y = centre(i)
        ax.text(x, y, label, ha="center", va="center", fontsize=9, family="monospace",
                bbox={"boxstyle": "round,pad=0.4", "facecolor": "#e8eef7", "edgecolor": "#34495e"})
    ax.set_xlim(0, size[0])
    ax.set_ylim(0, size[1])
    fig.savefig(os.fspath(to_file), format=fmt, dpi=dpi)
    plt.close(fig)
