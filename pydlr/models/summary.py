"""Keras 3's model summary, rendered without rich (same boxes, column widths and wrapping), and the
accounting it shows: weight counts and bytes, the optimizer's slots, the saved file's size.

Keras 3 draws a rich table whose width is ``line_length`` (default ``min(88, terminal columns - 4)``,
or 108 with the "Connected to" column) and whose column widths come from relative ``positions``; rich then
shrinks the columns evenly to fit the borders and padding. The helpers here reproduce that arithmetic.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import Any

import torch

from pydlr.layers.base import format_shape
from pydlr.weights_format import weights_bytes, weights_metadata

Row = Sequence[str]


def readable_memory_size(size: float) -> str:
    """Keras' size text: ``217.75 KB`` (powers of 1024, two decimals)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def default_line_length(connected: bool) -> int:
    """Keras' default: 88 (108 for functional models), capped at the terminal width minus 4."""
    return min(108 if connected else 88, shutil.get_terminal_size().columns - 4)


def _ratio_reduce(total: int, values: list[int]) -> list[int]:
    """rich's ratio_reduce with equal ratios: remove ``total`` columns, rounding as rich does."""
    remaining, ratio, out = total, len(values), []
    for value in values:
        cut = min(value, round(remaining / ratio))
        out.append(value - cut)
        remaining -= cut
        ratio -= 1
    return out


def column_widths(line_length: int, positions: Sequence[float]) -> list[int]:
    """Content widths of the columns after rich fits the table (with borders and padding) in line_length."""
    widths, current = [], 0
    for pos in positions:
        width = int(pos * line_length) - current
        if width < 4:
            raise ValueError("Insufficient console width to print summary.")
        widths.append(width)
        current += width
    padded = [w + 2 for w in widths]
    available = line_length - (len(widths) + 1)
    excess = sum(padded) - available
    if excess > 0:
        padded = _ratio_reduce(excess, padded)
    return [w - 2 for w in padded]


def _wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap as rich does; a word longer than the cell is cut with an ellipsis."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            if len(word) > width:
                word = word[: width - 1] + "…"
            candidate = f"{line} {word}" if line else word
            if len(candidate) <= width:
                line = candidate
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines


def _cell_lines(row: Row, widths: list[int], align: Sequence[str]) -> list[str]:
    wrapped = [_wrap(str(cell), w) for cell, w in zip(row, widths, strict=False)]
    height = max(len(c) for c in wrapped)
    out = []
    for i in range(height):
        parts = []
        for cell, w, a in zip(wrapped, widths, align, strict=False):
            text = cell[i] if i < len(cell) else ""
            parts.append(text.rjust(w) if a == "right" else text.ljust(w))
        out.append(parts)
    return out


def render_table(
    header: Row,
    rows: Sequence[Row],
    align: Sequence[str],
    line_length: int,
    positions: Sequence[float],
) -> list[str]:
    """The table lines exactly as Keras 3 prints them without colour (rich's heavy-head box, row lines)."""
    widths = column_widths(line_length, positions)

    def rule(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    lines = [rule("┏", "┳", "┓", "━")]
    lines += ["┃ " + " ┃ ".join(p) + " ┃" for p in _cell_lines(header, widths, align)]
    lines.append(rule("┡", "╇", "┩", "━"))
    for i, row in enumerate(rows):
        if i:
            lines.append(rule("├", "┼", "┤", "─"))
        lines += ["│ " + " │ ".join(p) + " │" for p in _cell_lines(row, widths, align)]
    lines.append(rule("└", "┴", "┘", "─"))
    return lines


def summary_text(
    name: str,
    rows: Sequence[Row],
    totals: dict[str, float],
    connected: bool = False,
    line_length: int | None = None,
    extra_lines: Sequence[str] = (),
) -> str:
    """The whole summary: title, table, Keras' three totals lines, then pydlr's own lines.

    ``rows`` hold (name (type), output shape, params[, connected to]); ``totals`` holds trainable /
    non_trainable counts and their bytes, and optimizer / optimizer_bytes once an optimizer has state
    (Keras then adds an "Optimizer params" line and counts them in the total).
    """
    if connected:
        header, align, positions = (
            ["Layer (type)", "Output Shape", "Param #", "Connected to"],
            ["left", "left", "right", "left"],
            [0.3, 0.56, 0.74, 1.0],
        )
    else:
        header, align, positions = (
            ["Layer (type)", "Output Shape", "Param #"],
            ["left", "left", "right"],
            [0.45, 0.80, 1.0],
        )
    line_length = line_length or default_line_length(connected)
    lines = [f'Model: "{name}"', *render_table(header, rows, align, line_length, positions)]
    trainable, non_trainable = int(totals["trainable"]), int(totals["non_trainable"])
    t_bytes, n_bytes = totals["trainable_bytes"], totals["non_trainable_bytes"]
    optimizer = int(totals.get("optimizer", 0))
    o_bytes = totals.get("optimizer_bytes", 0)
    total, total_bytes = trainable + non_trainable + optimizer, t_bytes + n_bytes + o_bytes
    lines.append(f" Total params: {total:,} ({readable_memory_size(total_bytes)})")
    lines.append(f" Trainable params: {trainable:,} ({readable_memory_size(t_bytes)})")
    lines.append(f" Non-trainable params: {non_trainable:,} ({readable_memory_size(n_bytes)})")
    if "optimizer" in totals:
        lines.append(f" Optimizer params: {optimizer:,} ({readable_memory_size(o_bytes)})")
    lines += list(extra_lines)
    return "\n".join(lines)


# ---- the model's numbers: weights, their bytes, the optimizer's slots, the saved file -------------------
def param_totals(model: Any) -> dict[str, float]:
    """Trainable / non-trainable weight counts and their bytes at their dtypes (Keras' three totals)."""
    totals = {"trainable": 0, "non_trainable": 0, "trainable_bytes": 0, "non_trainable_bytes": 0}
    for t, trainable in model.weight_tensors():
        key = "trainable" if trainable else "non_trainable"
        totals[key] += t.numel()
        totals[key + "_bytes"] += t.numel() * t.element_size()
    return totals


def optimizer_totals(optimizer: Any) -> tuple[int, int] | None:
    """Keras-style optimizer weight count and bytes, or None before the optimizer has any state.

    Keras counts its optimizer's variables: the slot tensors (Adam's m and v, RMSprop's velocities,
    SGD's momentums) plus ``iterations`` (int64) and ``learning_rate`` (float32). The torch state's
    per-parameter ``step`` counters are Keras' single ``iterations`` and are not counted again.
    """
    state = getattr(optimizer, "state", None)
    if not isinstance(optimizer, torch.optim.Optimizer) or not state:
        return None
    count, size = 2, 8 + 4
    for entries in state.values():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor) and key != "step":
                count += value.numel()
                size += value.numel() * value.element_size()
    return count, size


def saved_weights_size(model: Any) -> int:
    """Bytes of the safetensors file ``io.save_weights`` writes for ``model``."""
    from pydlr.models.base import class_key  # base imports this module

    return len(weights_bytes(model.state_dict(), weights_metadata(class_key(type(model)))))


def summary_table(model: Any) -> list[dict[str, Any]]:
    """Rows for R's data.frame: layer, type, output_shape (Keras text), params, trainable."""
    return [
        {
            "layer": r["layer"],
            "type": r["type"],
            "output_shape": format_shape(r["output_shape"]),
            "params": int(r["params"]),
            "trainable": bool(r["trainable"]),
        }
        for r in model.summary_rows()
    ]


def summary_string(model: Any, line_length: int | None = None) -> str:
    """The text ``model.summary()`` prints: Keras' table and totals, then the weights' memory at their
    dtypes and the size of the saved weights file."""
    rows = []
    for r in model.summary_rows():
        params = f"{r['params']:,}" if r.get("built", True) else "0 (unbuilt)"
        cells = [f"{r['layer']} ({r['type']})", format_shape(r["output_shape"]), params]
        if model.connected_summary:
            cells.append(r.get("connected_to") or "-")
        rows.append(cells)
    totals = param_totals(model)
    optimizer = optimizer_totals(getattr(model, "optimizer", None))
    if optimizer is not None:
        totals["optimizer"], totals["optimizer_bytes"] = optimizer
    dtypes = sorted({str(t.dtype).replace("torch.", "") for t, _ in model.weight_tensors()})
    weight_bytes = int(totals["trainable_bytes"] + totals["non_trainable_bytes"])
    extra = [
        f" Weight memory: {weight_bytes:,} bytes ({', '.join(dtypes or ['float32'])})",
        f" Saved weights (safetensors): {saved_weights_size(model):,} bytes",
    ]
    return summary_text(model.name, rows, totals, model.connected_summary, line_length, extra)
