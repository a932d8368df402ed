"""Which files a dataset reads and their labels: from class folders or from a table of files.

Only names are read here (no image is opened), so listing 200,000 files takes a second or two and every
check that can be made without decoding happens before any work starts. Paths are made absolute: a
dataset keeps reading its files after the working directory changes (R's ``setwd()``). Paths are kept in one NumPy
bytes array rather than a list of Python strings: worker processes started by fork share it without
touching per-object reference counts, so its pages are never copied into every worker (the usual cause
of memory growing with the number of files in a torch DataLoader).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pydlr.data.decode import IMAGE_EXTENSIONS
from pydlr.errors import InputError

__all__ = ["FileIndex", "index_directory", "index_dataframe"]


@dataclass
class FileIndex:
    """Files (bytes paths, in reading order), their integer labels (or None) and the class names."""

    paths: np.ndarray
    labels: np.ndarray | None
    class_names: list[str] | None
    ignored: list[str] = field(default_factory=list)  # non-image files left out

    def __len__(self) -> int:
        return int(self.paths.shape[0])

    def subset(self, idx: np.ndarray) -> FileIndex:
        return FileIndex(self.paths[idx], None if self.labels is None else self.labels[idx],
                         self.class_names, self.ignored)

    def counts(self) -> dict[str, int]:
        """Number of files per class (class names in label order)."""
        if self.labels is None or self.class_names is None:
            return {}
        n = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(c) for name, c in zip(self.class_names, n, strict=True)}


def _walk_images(folder: Path, follow_links: bool) -> tuple[list[str], list[str]]:
    """Image files under ``folder`` (recursively, sorted as keras does) and the other files found."""
    images, other = [], []
    for root, dirs, files in os.walk(folder, followlinks=follow_links):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            (images if name.lower().endswith(IMAGE_EXTENSIONS) else other).append(os.path.join(root, name))
    return images, other


def _as_bytes(paths: list[str]) -> np.ndarray:
    return np.array([os.fsencode(p) for p in paths], dtype=np.bytes_) if paths else np.array([], "S1")


def index_directory(directory: Any, labels: Any, class_names: Any, follow_links: bool,
                    where: str) -> FileIndex:
    """keras' ``index_directory``: ``labels="inferred"`` (one subfolder per class, alphanumeric order or
    ``class_names``' order), ``None`` (every image under ``directory``, no labels) or a list of integer
    labels, one per image file in sorted path order."""
    if not isinstance(directory, (str, os.PathLike)):
        raise InputError("directory", "a folder path (a string)", directory, where=where)
    root = Path(directory)
    if not root.exists():
        raise InputError("directory", f"an existing folder ({str(root)!r} does not exist)", str(root),
                         where=where)
    if not root.is_dir():
        raise InputError("directory", "a folder (not a file)", str(root), where=where)
    root = Path(os.path.abspath(root))  # the files stay found after a change of working directory
    if isinstance(labels, str) and labels == "inferred":
        return _index_inferred(root, class_names, follow_links, where)
    if class_names is not None:
        raise InputError("class_names", "None unless labels='inferred'", class_names, where=where)
    images, other = _walk_images(root, follow_links)
    if not images:
        raise InputError("directory", f"a folder holding images ({', '.join(IMAGE_EXTENSIONS)}); "
                         f"{str(root)!r} has none" + _ignored_note(other), str(root), where=where)
    if labels is None:
        return FileIndex(_as_bytes(images), None, None, other)
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.dtype.kind not in "iu" or (lab.size and lab.min() < 0):
        raise InputError("labels", "'inferred', None, or a list of non-negative integer labels", labels,
                         where=where)
    if lab.shape[0] != len(images):
        raise InputError("labels", f"one label per image file ({len(images)} files found in "
                         f"{str(root)!r})", f"{lab.shape[0]} labels", where=where)
    k = int(lab.max()) + 1
    if lab.size and lab.min() >= 1:
        warn_one_based_labels(k)
    return FileIndex(_as_bytes(images), lab.astype(np.int64), [str(i) for i in range(k)], other)


ONE_BASED_LABELS = "`labels` has no 0"


def warn_one_based_labels(k: int) -> None:
    """keras' labels are 0-based class indices: 1-based ones (R's habit) leave class 0 without an image and
    add a class; R warns with its own advice, so its caller filters this message (ONE_BASED_LABELS)."""
    warnings.warn(f"{ONE_BASED_LABELS}: they are 0-based class indices, so class 0 gets no image and there are "
                  f"{k} classes; for 1-based labels pass [label - 1 for label in labels]", UserWarning,
                  stacklevel=4)


def _ignored_note(other: list[str]) -> str:
    if not other:
        return ""
    return f" (ignored {len(other)} non-image file(s) such as {os.path.basename(other[0])!r})"


def _index_inferred(root: Path, class_names: Any, follow_links: bool, where: str) -> FileIndex:
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if class_names is None:
        names = found
    else:
        if (not isinstance(class_names, (list, tuple)) or not class_names
                or not all(isinstance(c, str) for c in class_names) or len(set(class_names)) != len(class_names)):
            raise InputError("class_names", "a list of distinct subfolder names", class_names, where=where)
        names = list(class_names)
        if sorted(names) != found:
            raise InputError("class_names", f"the names of the subfolders of {str(root)!r}: {found}",
                             names, where=where)
    if not names:
        loose = [p.name for p in root.iterdir() if p.is_file()]
        note = f" (it holds {len(loose)} file(s) but no subfolders)" if loose else " (it is empty)"
        raise InputError("directory", f"a folder with one subfolder per class (labels='inferred'); "
                         f"{str(root)!r}{note}", str(root), where=where)
    paths: list[str] = []
    labels: list[int] = []
    ignored: list[str] = []
    for k, name in enumerate(names):
        images, other = _walk_images(root / name, follow_links)
        if not images:
            raise InputError("directory", f"image files ({', '.join(IMAGE_EXTENSIONS)}) in every class "
                             f"subfolder; there are no images in {str(root / name)!r}" + _ignored_note(other),
                             str(root), where=where)
        paths += images
        labels += [k] * len(images)
        ignored += other
    return FileIndex(_as_bytes(paths), np.asarray(labels, dtype=np.int64), names, ignored)


def index_dataframe(dataframe: Any, directory: Any, x_col: str, y_col: str | None, class_names: Any,
                    where: str) -> FileIndex:
    """Files listed in a table (pandas DataFrame, or a dict of columns): ``x_col`` paths (relative to
    ``directory`` when given), ``y_col`` labels (strings or integers; None for no labels).

    Class names are ``class_names`` when given (their order is the label order), else the distinct
    labels in their own order: a Categorical's categories, numbers numerically, text sorted. Missing files are reported here, before any work.
    """
    columns = _columns(dataframe, where)
    if x_col not in columns:
        raise InputError("x_col", f"a column of the table ({sorted(columns)})", x_col, where=where)
    raw_paths = [str(p) for p in np.asarray(columns[x_col], dtype=object)]
    if not raw_paths:
        raise InputError("dataframe", "a table with at least one row", "an empty table", where=where)
    base = Path(directory) if directory is not None else None
    if base is not None and not base.is_dir():
        raise InputError("directory", "an existing folder (or None)", str(base), where=where)
    paths = [str(base / p) if base is not None else p for p in raw_paths]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise InputError(x_col, f"paths of existing files; {len(missing)} missing file(s), the first "
                         f"{missing[0]!r}", missing[0], where=where)
    paths = [os.path.abspath(p) for p in paths]  # found after a change of working directory too
    if y_col is None:
        return FileIndex(_as_bytes(paths), None, None)
    if y_col not in columns:
        raise InputError("y_col", f"a column of the table ({sorted(columns)}) or None", y_col, where=where)
    values = np.asarray(columns[y_col], dtype=object)
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in values):
        raise InputError(y_col, "a label in every row (no NA/None)", "missing labels", where=where)
    as_text = [str(v.item() if hasattr(v, "item") else v) for v in values]
    names = (_label_order(dataframe, y_col, values, as_text) if class_names is None
             else [str(c) for c in class_names])
    lookup = {name: k for k, name in enumerate(names)}
    unknown = sorted(set(as_text) - set(lookup))
    if unknown:
        raise InputError("class_names", f"every label found in column {y_col!r}",
                         f"labels {unknown[:5]} not in class_names", where=where)
    labels = np.asarray([lookup[t] for t in as_text], dtype=np.int64)
    return FileIndex(_as_bytes(paths), labels, names)


def _label_order(dataframe: Any, y_col: str, values: np.ndarray, as_text: list[str]) -> list[str]:
    """Class names when none are given, in the order the labels' type implies (as R's factor()): a pandas
    Categorical's categories in their order (those used), numbers in numeric order (2 before 10, where
    sorting their text would put "10" first), other labels sorted."""
    categories = getattr(getattr(_column(dataframe, y_col), "cat", None), "categories", None)
    if categories is not None:
        used = set(as_text)
        return [str(c) for c in categories if str(c) in used]
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
           for v in values):
        return [t for _, t in sorted({(float(v), t) for v, t in zip(values, as_text, strict=True)})]
    return sorted(set(as_text))


def _column(dataframe: Any, name: str) -> Any:
    try:
        return dataframe[name] if hasattr(dataframe, "columns") else None
    except KeyError:
        return None


def _columns(dataframe: Any, where: str) -> dict[str, Any]:
    if hasattr(dataframe, "columns") and hasattr(dataframe, "__getitem__"):  # pandas
        return {str(c): dataframe[c].to_numpy() for c in dataframe.columns}
    if isinstance(dataframe, dict):
        return {str(k): np.asarray(v, dtype=object) for k, v in dataframe.items()}
    raise InputError("dataframe", "a pandas DataFrame (or a dict of columns)", dataframe, where=where)
