"""Tables by column name.

fit() on a pandas DataFrame (or a pyarrow Table) records its column names (``Model.trained_column_names``,
saved with the model); predict() and evaluate() then read a table's columns by these names, as R's
``predict.lm()`` does: the same columns in another order are the same data, and other names are an error
that names them. By position alone, a table with its columns in another order would silently feed each value
to the wrong input. Plain arrays have no names and are taken as they come.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pydlr.errors import InputError

__all__ = ["column_names", "on_columns", "validation_on_columns"]


def column_names(x: Any) -> list[str] | None:
    """The column names of a pandas DataFrame or a pyarrow Table / RecordBatch; None for anything else."""
    names = getattr(x, "column_names", None)  # pyarrow
    if names is None and hasattr(x, "columns") and hasattr(x, "to_numpy") and getattr(x, "ndim", 0) == 2:
        names = list(x.columns)  # pandas
    return None if names is None else [str(n) for n in names]


def on_columns(x: Any, trained: list[str] | None, where: str, name: str = "x", names: list[str] | None = None,
               fitter: str = "fit()") -> Any:
    """``x`` with its columns in the training order (a reordered copy), or ``x`` itself when it has no names,
    the model none, or the same order. InputError when the names differ from the training ones.

    ``names``: the columns' names of a 2-D array that crossed without them (R's data.frames and named
    matrices reach Python as plain arrays); ``fitter`` names the call that saw the training columns."""
    have = column_names(x) if names is None else [str(n) for n in names]
    if trained is None or have is None or have == list(trained):
        return x
    if set(have) == set(trained) and len(set(have)) == len(have):
        if names is not None:
            return np.asarray(x)[:, [have.index(c) for c in trained]]
        return x.select(list(trained)) if hasattr(x, "select") else x[list(trained)]
    missing = [c for c in trained if c not in have]
    extra = [c for c in have if c not in trained]
    repeated = sorted({c for c in have if have.count(c) > 1})
    found = ", ".join([*([f"{_some(missing)} missing"] if missing else []),
                       *([f"{_some(extra)} not among them"] if extra else []),
                       *([f"{_some(repeated)} repeated"] if repeated else [])])
    raise InputError(name, f"data with the columns {fitter} was given ({_some(list(trained), 8)})",
                     f"columns {found}", where=where)


def _some(names: list[str], most: int = 2) -> str:
    """The first ``most`` names and how many more: a table of 200 columns gives a message one can read."""
    if len(names) <= most + 1:  # "and 1 more" would be no shorter than the name
        return ", ".join(names)
    return f"{', '.join(names[:most])} and {len(names) - most} more"


def validation_on_columns(validation_data: Any, trained: list[str] | None, where: str = "fit",
                          names: list[str] | None = None, name: str = "validation_data") -> Any:
    """fit()'s ``validation_data`` (x, y[, weights]) with a table x read by the training table's column names;
    ``names``, ``name`` as `on_columns`' (R's validation x crosses as a plain array, its names beside it)."""
    if trained is None or not isinstance(validation_data, (tuple, list)) or not validation_data:
        return validation_data
    return (on_columns(validation_data[0], trained, where, name, names=names), *validation_data[1:])
