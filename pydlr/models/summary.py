"""Keras 3's model summary table, rendered without rich: same boxes, column widths and wrapping.

Keras 3 draws a rich table whose width is ``line_length`` (default ``min(88, terminal columns - 4)``,
or 108 with the "Connected to" column) and whose column widths come from relative ``positions``; rich then
shrinks the columns evenly to fit the borders and padding. The helpers here reproduce that arithmetic.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

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
