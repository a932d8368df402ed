"""k-means in torch with scikit-learn's estimator conventions (Lloyd iterations, k-means++ seeding)."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
import scipy.sparse
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import _check_feature_names

from pydlr import ops
from pydlr.devices import resolve_device
from pydlr.errors import InputError, PydlrError

_WHERE = "KMeans"


class NotFittedError(PydlrError, SklearnNotFittedError):
    """A fitted attribute or method was used before ``fit`` (scikit-learn's NotFittedError too)."""


class KMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    """k-means clustering computed with torch (CPU or GPU), following scikit-learn's ``KMeans``.

    A scikit-learn estimator (``BaseEstimator``, ``ClusterMixin``, ``TransformerMixin``): it works in
    ``Pipeline``, ``GridSearchCV``, ``cross_val_score`` and ``clone``, and passes scikit-learn's
    ``check_estimator`` (tests/test_cluster.py lists the checks it waives and why).

    Parameters
    ----------
    n_clusters : int
        Number of clusters.
    init : {"k-means++", "random"} or array of shape (n_clusters, n_features)
        Seeding: scikit-learn's greedy k-means++ (``2 + log(k)`` candidates per step), ``n_clusters``
        distinct random samples, or the given centers.
    n_init : int or "auto"
        Number of seedings; the run with the lowest inertia is kept. ``"auto"`` is scikit-learn's rule
        (its default since 1.4): 1 run for "k-means++" or given centers, 10 for "random".
    max_iter : int
        Maximum Lloyd iterations per run.
    tol : float
        Convergence: the sum of squared center shifts at most ``tol`` times the mean feature variance
        (scikit-learn's rule); a run also stops when no label changes.
    random_state : int or None
        Seed of the seedings; the same seed gives the same result on the same device.
    device : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
    chunk_size : int
        Rows per block of the distance computation on a GPU (blocks hold at least 2**26 distances, 256 MiB,
        since each block costs kernel launches). On the CPU a native kernel reads the data at most once an
        iteration (distances, nearest center and the new centers' sums in one pass, no distance matrix; with
        ``algorithm="hamerly"`` only the rows whose closest center may have changed).

    algorithm : {"auto", "lloyd", "hamerly"}
        How Lloyd's iterations are computed; all three give the same result (the same labels at every
        iteration, the same centers up to the rounding of their sums, the same inertia and iteration count).
        "lloyd": every iteration computes the distances of every row to every center (scikit-learn's
        "lloyd"). "hamerly": Hamerly's bounds (the idea of scikit-learn's "elkan" with one lower bound a row):
        a row is read again only when the centers moved enough that its closest center may have changed, with
        a margin for the rounding of the distances, so a late iteration reads a few percent of the rows; it
        keeps three float64 values a row (24 bytes) and ends with one pass for each row's distance to its own
        center (the inertia). CPU only. "auto" (the default): "hamerly" on the CPU, where it was faster than
        "lloyd" at every width measured (2 to 784 features), "lloyd" on a GPU.
    dtype : {None, "float32", "float64"}
        Precision of the computation. None (as scikit-learn): float64 data in float64, float32 data in float32,
        other numbers (integers, e.g. pixels) in float32. "float32" halves the memory read an iteration of
        float64 data (one conversion pass first; on 60,000 x 784 doubles ~0.16 s on these 2 cores, loaded).
        ``cluster_centers_`` has the dtype computed in.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_samples,), int64
    inertia_ : float
        Sum of squared distances of the samples to their closest center.
    n_iter_ : int
        Lloyd iterations of the kept run.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when ``X`` in ``fit`` was a DataFrame with string column names.
    device_ : str
    withinss_ : ndarray of shape (n_clusters,)
        Sum of squared distances of each cluster's samples to its center (sums to ``inertia_``).
    totss_ : float
        Sum of squared distances of the samples to their mean (stats::kmeans' ``totss``), from the last
        assignment's per-cluster sums: no extra pass over the data.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        init: str | np.ndarray = "k-means++",
        n_init: int = 1,
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state: int | None = None,
        device: str = "auto",
        chunk_size: int = 8192,
        dtype: str | None = None,
        algorithm: str = "auto",
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.chunk_size = chunk_size
        self.dtype = dtype
        self.algorithm = algorithm

    # --- scikit-learn's protocol (get_params, clone, repr and tags come from BaseEstimator) -----------
    def set_params(self, **params: Any) -> KMeans:
        """Set constructor parameters (validated at the next ``fit``); returns self."""
        names = self._get_param_names()
        for name in params:
            if name not in names:
                where = f"{type(self).__name__}.set_params"
                raise InputError(name, f"one of {', '.join(names)}", name, where=where)
        return super().set_params(**params)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # transform returns distances in the input's float dtype (computed in the fitted centers' dtype)
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self) -> int:
        """Columns of ``transform`` (one distance per center), for ``get_feature_names_out``."""
        return int(self.cluster_centers_.shape[0])

    # --- fitting -----------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> KMeans:
        """Cluster ``X`` (array-like of shape (n_samples, n_features)); ``y`` is ignored."""
        self._check_params()
        device = _resolve_device(self.device)
        x, x_sq = _as_matrix_with_norms(X, "X", device, where=f"{_WHERE}.fit", dtype=_DTYPES[self.dtype])
        _check_feature_names(self, X, reset=True)
        if x.shape[0] < self.n_clusters:
            raise InputError(
                "X", f"at least n_clusters={self.n_clusters} samples", f"{x.shape[0]} samples",
                where=f"{_WHERE}.fit",
            )
        init_centers = self._check_init_array(x)
        bounded = _bounded(self.algorithm, device)
        generator = torch.Generator(device="cpu")
        generator.manual_seed(_seed(self.random_state))
        tol = self.tol * _mean_variance(x, x_sq) if self.tol > 0 else 0.0
        best, best_inertia = None, float("inf")
        for _ in range(self._runs(auto_random=10)):
            if init_centers is not None:
                centers = init_centers.clone()
            elif self.init == "random":
                pick = torch.randperm(x.shape[0], generator=generator)[: self.n_clusters]
                centers = x.index_select(0, pick.to(device))
            else:
                centers = _kmeans_plusplus(x, x_sq, self.n_clusters, generator, self.chunk_size)
            run = _lloyd(x, x_sq, centers, self.max_iter, tol, self.chunk_size, bounded)
            inertia = float(run[2].sum(dtype=torch.float64))
            if best is None or inertia < best_inertia:
                best, best_inertia = run, inertia
        self._set_fitted(x, *best, device)
        return self

    def _set_fitted(self, x: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor, min_dist: torch.Tensor,
                    n_iter: int, totss: torch.Tensor, device: torch.device) -> None:
        inertia = float(min_dist.sum(dtype=torch.float64))
        self.cluster_centers_ = centers.cpu().numpy()
        self.labels_ = labels.cpu().numpy().astype(np.int64, copy=False)
        self.inertia_ = float(inertia)
        # pydlr extra (stats::kmeans' withinss): the inertia of each cluster.
        self.withinss_ = _withinss(labels, min_dist, self.n_clusters)
        # pydlr extra (stats::kmeans' totss): the sum of squared distances to the data's mean.
        self.totss_ = float(totss)
        self.n_iter_ = int(n_iter)
        self.n_features_in_ = int(x.shape[1])
        self.device_ = str(device)
        distinct = int(np.unique(self.labels_).size)
        if distinct < self.n_clusters:  # empty clusters: their centers are no cluster's (scikit-learn's warning)
            warnings.warn(ConvergenceWarning(
                f"Number of distinct clusters ({distinct}) found smaller than n_clusters ({self.n_clusters}). "
                "Possibly due to duplicate points in X."), stacklevel=3)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then return ``labels_``."""
        return self.fit(X).labels_

    def predict(self, X: Any) -> np.ndarray:
        """Index of the closest center for each row of ``X``."""
        x, x_sq, centers = self._fitted_input(X, "predict")
        labels, _ = _assign(x, x_sq, centers, self.chunk_size)
        return labels.cpu().numpy().astype(np.int64)

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distances of each row of ``X`` to each center, shape (n_samples, n_clusters).

        Computed in the fitted centers' dtype; returned in ``X``'s float dtype (float32 for other types), as
        scikit-learn's.
        """
        x, _, centers = self._fitted_input(X, "transform")
        return torch.cdist(x, centers).cpu().numpy().astype(_float_dtype(X), copy=False)

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then ``transform(X)``."""
        return self.fit(X).transform(X)

    def score(self, X: Any, y: Any = None) -> float:
        """Opposite of the inertia of ``X`` with the fitted centers (higher is better)."""
        x, x_sq, centers = self._fitted_input(X, "score")
        labels, _ = _assign(x, x_sq, centers, self.chunk_size)
        return -float(_cluster_inertia(x, labels, centers, centers.shape[0]).sum())

    def _runs(self, auto_random: int) -> int:
        """Seedings to run: ``n_init``, or for "auto" scikit-learn's count (one for k-means++ or given
        centers, ``auto_random`` for random seeding, whose single runs vary more)."""
        if self.n_init != "auto":
            return int(self.n_init)
        return auto_random if isinstance(self.init, str) and self.init == "random" else 1

    # --- checks ------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        where = f"{_WHERE}.fit"
        _check_int(self.n_clusters, "n_clusters", 1, where)
        if self.n_init != "auto":
            _check_int(self.n_init, "n_init", 1, where)
        _check_int(self.max_iter, "max_iter", 1, where)
        _check_int(self.chunk_size, "chunk_size", 1, where)
        if not isinstance(self.dtype, (str, type(None))) or self.dtype not in _DTYPES:
            raise InputError("dtype", 'None, "float32" or "float64"', self.dtype, where=where)
        if not isinstance(self.tol, numbers.Real) or isinstance(self.tol, bool) or not self.tol >= 0:
            raise InputError("tol", "a number >= 0", self.tol, where=where)
        if not isinstance(self.algorithm, str) or self.algorithm not in _ALGORITHMS:
            raise InputError("algorithm", '"auto", "lloyd" or "hamerly"', self.algorithm, where=where)
        if isinstance(self.init, str) and self.init not in ("k-means++", "random"):
            raise InputError("init", '"k-means++", "random" or an array of centers', self.init, where=where)
        if self.random_state is not None and (
            isinstance(self.random_state, bool) or not isinstance(self.random_state, numbers.Integral)
            or self.random_state < 0
        ):
            raise InputError("random_state", "None or an integer >= 0", self.random_state, where=where)
        if not (isinstance(self.device, (str, torch.device))):
            raise InputError("device", '"auto", "cpu" or "cuda"', self.device, where=where)

    def _check_init_array(self, x: torch.Tensor) -> torch.Tensor | None:
        if isinstance(self.init, str):
            return None
        centers = _as_matrix(self.init, "init", x.device, where=f"{_WHERE}.fit", dtype=x.dtype)
        if tuple(centers.shape) != (self.n_clusters, x.shape[1]):
            raise InputError(
                "init", f"an array of shape ({self.n_clusters}, {x.shape[1]})", self.init,
                where=f"{_WHERE}.fit",
            )
        return centers

    def _fitted_input(self, X: Any, method: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``X`` in the fitted centers' dtype and device, its squared row norms, and the centers."""
        if not hasattr(self, "cluster_centers_"):
            raise NotFittedError(f"{_WHERE}.{method}: this KMeans is not fitted yet; call fit(X) first.")
        device = torch.device(self.device_)
        centers = torch.from_numpy(self.cluster_centers_).to(device)
        x, x_sq = _as_matrix_with_norms(X, "X", device, where=f"{_WHERE}.{method}", dtype=centers.dtype)
        _check_feature_names(self, X, reset=False)  # warns when DataFrame columns differ from fit's
        if x.shape[1] != self.n_features_in_:
            raise InputError(
                "X",
                f"{self.n_features_in_} features as in fit (X has {x.shape[1]} features, but KMeans is "
                f"expecting {self.n_features_in_} features as input)",
                f"{x.shape[1]} features",
                where=f"{_WHERE}.{method}",
            )
        return x, x_sq, centers


_DTYPES = {None: None, "float32": torch.float32, "float64": torch.float64}
_ALGORITHMS = ("auto", "lloyd", "hamerly")


def _bounded(algorithm: str, device: torch.device) -> bool:
    """Whether Lloyd's iterations use Hamerly's bounds (native, CPU only)."""
    if algorithm == "hamerly" and device.type != "cpu":
        raise InputError("algorithm", '"lloyd" or "auto" on a GPU ("hamerly" runs on the CPU)', algorithm,
                         where=f"{_WHERE}.fit")
    return algorithm != "lloyd" and device.type == "cpu"


def _float_dtype(value: Any) -> np.dtype:
    """float64 for float64 input (NumPy or torch), else float32: the dtype ``transform`` returns."""
    dtype = getattr(value, "dtype", None)
    return np.dtype(np.float64) if dtype in (np.float64, torch.float64) else np.dtype(np.float32)


def _check_int(value: Any, name: str, minimum: int, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(name, f"an integer >= {minimum}", value, where=where)


def _seed(random_state: int | None) -> int:
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    return int(random_state)


def _resolve_device(device: str | torch.device) -> torch.device:
    return resolve_device(device, _WHERE, choices='"auto", "cpu" or "cuda"')


class NonNumericInputError(InputError, TypeError):
    """Data that are not numbers (e.g. strings or dicts in an object array): an InputError and a TypeError."""


class _Said(str):
    """A received value already in words: printed as it is in an InputError's message (no quotes)."""

    def __repr__(self) -> str:
        return str(self)


def _numeric_view(value: Any, argument: str, where: str) -> torch.Tensor:
    """``value`` (array-like or tensor) as a torch tensor sharing its memory where it can; numeric only."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if scipy.sparse.issparse(value):
        raise InputError(argument, "a dense array (sparse input is not supported; pass X.toarray())",
                         _Said(f"a sparse {type(value).__name__}"), where=where)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(argument, "a numeric 2-d array", value, where=where) from exc
    if array.dtype.kind == "O":  # e.g. a pandas object column holding numbers
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise NonNumericInputError(argument, f"a numeric 2-d array ({exc})", array, where=where) from exc
    if array.dtype.kind == "c":
        raise InputError(argument, "real numbers (Complex data not supported)", array, where=where)
    if array.dtype.kind not in "biuf":
        raise NonNumericInputError(argument, "a numeric 2-d array", array, where=where)
    if any(stride < 0 for stride in array.strides):
        array = np.ascontiguousarray(array)
    with warnings.catch_warnings():  # read-only views (R's memory through the bridge): only read here
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def _as_matrix(value: Any, argument: str, device: torch.device, where: str,
               dtype: torch.dtype | None = None) -> torch.Tensor:
    """A 2-d, finite, contiguous float tensor on ``device`` (no copy when ``value`` already is one).

    ``dtype`` None: float64 data stay float64 (computed in float64), everything else becomes float32.
    """
    tensor = _float_tensor(value, argument, device, where, dtype)
    if not _all_finite(tensor, _row_sq_norms(tensor)):
        raise InputError(argument, "finite values (no NaN or Inf)", value, where=where)
    return tensor


def _as_matrix_with_norms(value: Any, argument: str, device: torch.device, where: str,
                          dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``_as_matrix`` and the squared row norms, which its finiteness check reads (one pass over the data)."""
    tensor = _float_tensor(value, argument, device, where, dtype)
    x_sq = _row_sq_norms(tensor)
    if not _all_finite(tensor, x_sq):
        raise InputError(argument, "finite values (no NaN or Inf)", value, where=where)
    return tensor, x_sq


def _float_tensor(value: Any, argument: str, device: torch.device, where: str,
                  dtype: torch.dtype | None) -> torch.Tensor:
    tensor = _numeric_view(value, argument, where)
    if tensor.ndim == 1:
        raise InputError(
            argument, "a 2-d array (n_samples, n_features)",
            _Said(f"a 1-d array of length {tensor.shape[0]}. Reshape your data with X.reshape(-1, 1) if it "
                  "has a single feature or X.reshape(1, -1) if it is a single sample"),
            where=where,
        )
    if tensor.ndim != 2 or tensor.shape[0] == 0:
        raise InputError(argument, "a non-empty 2-d array (n_samples, n_features)", value, where=where)
    if tensor.shape[1] == 0:
        raise InputError(
            argument, "a non-empty 2-d array (n_samples, n_features)",
            _Said(f"0 feature(s) (shape={tuple(tensor.shape)}) while a minimum of 1 is required"),
            where=where,
        )
    if tensor.dtype.is_complex or tensor.dtype == torch.bool:
        raise InputError(argument, "a real numeric array", value, where=where)
    if dtype is None:
        dtype = torch.float64 if tensor.dtype == torch.float64 else torch.float32
    if tensor.dtype == dtype and tensor.device == device and tensor.is_contiguous():
        return tensor
    if dtype == torch.float32 and device.type == "cpu" and tensor.device.type == "cpu":
        # R's column-major doubles take the native tiled transpose (60,000 x 784 in 28 ms, torch's strided copy 65)
        return ops.float32_rows(tensor)
    # One pass for dtype, layout and device together.
    return torch.empty(tuple(tensor.shape), dtype=dtype, device=device).copy_(tensor)


def _all_finite(x: torch.Tensor, x_sq: torch.Tensor) -> bool:
    """No NaN or Inf in ``x``, read from its squared row norms (a NaN or Inf anywhere in a row makes the row's
    norm NaN or Inf), then the elements of the rows whose norms are not finite (a norm can overflow on finite
    values)."""
    suspect = torch.nonzero(~torch.isfinite(x_sq)).flatten()
    return not suspect.numel() or bool(torch.isfinite(x[suspect]).all())


# Rows per block of the whole-data passes outside Lloyd's loop (norms, variance, inertia): temporaries
# stay at a block's size, so data of 1e7 x 100 float32 (4 GB) fit in memory with its copy-free view.
_ROWS = 1 << 16


def _blocks(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``x`` split in blocks of rows of about 2**22 values (16 MB of float32)."""
    return x.split(max(1, (1 << 22) // max(1, x.shape[1])))


def _row_sq_norms(x: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean norm of each row, a block of rows at a time."""
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[0], _ROWS):
        block = x[start : start + _ROWS]
        torch.linalg.vector_norm(block, dim=1, out=out[start : start + _ROWS]).square_()
    return out


def _mean_variance(x: torch.Tensor, x_sq: torch.Tensor) -> float:
    """Mean over features of the (biased) variance, in float64, from the column sums (one pass) and the row
    norms: (mean of ||x||^2 - ||mean of x||^2) / d."""
    mean = sum(block.sum(dim=0, dtype=torch.float64) for block in _blocks(x)) / x.shape[0]
    mean_sq = float(x_sq.sum(dtype=torch.float64)) / x.shape[0]
    return max(0.0, (mean_sq - float(mean @ mean)) / x.shape[1])


def _step(x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor,
          min_dist: torch.Tensor, chunk: int, accumulate: bool = True) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Lloyd's E-step (``labels``, ``min_dist`` written) and, with ``accumulate``, the M-step's per-cluster
    float64 sums, int64 counts and the number of labels changed."""
    if x.device.type == "cpu":
        return ops.kmeans_step(x, x_sq, centers, labels, min_dist, accumulate)
    return _torch_step(x, x_sq, centers, labels, min_dist, chunk, accumulate)


def _torch_step(x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor,
                min_dist: torch.Tensor, chunk: int, accumulate: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``_step`` with torch ops, for GPUs: chunks of at least 2**26 / k rows (256 MiB of float32 distances),
    as each chunk costs a handful of kernel launches."""
    k, d = centers.shape
    chunk = max(chunk, (1 << 26) // k)
    c_sq = (centers * centers).sum(dim=1, keepdim=True)
    # (k, chunk) blocks: C @ X^T rather than X @ C^T.
    buffer = torch.empty(k, min(chunk, x.shape[0]), dtype=x.dtype, device=x.device)
    new = torch.empty(buffer.shape[1], dtype=torch.int64, device=x.device)
    sums = torch.zeros(k, d, dtype=torch.float64, device=x.device)
    # index_add_ into k rows is k * d addresses hit by every sample's atomics (10M x 64, k = 10: ~220 ms an
    # iteration on an H200); a one-hot (k, chunk) @ (chunk, d) GEMM streams the chunk instead.
    onehot = torch.empty(k, buffer.shape[1], dtype=x.dtype, device=x.device) if accumulate else None
    changed = torch.zeros((), dtype=torch.int64, device=x.device)
    for a in range(0, x.shape[0], chunk):
        b = min(a + chunk, x.shape[0])
        block, lab = buffer[:, : b - a], new[: b - a]
        torch.addmm(c_sq, centers, x[a:b].t(), beta=1.0, alpha=-2.0, out=block)
        torch.min(block, dim=0, out=(min_dist[a:b], lab))
        if accumulate:
            changed += lab.ne(labels[a:b]).sum()
            hot = onehot[:, : b - a].zero_().scatter_(0, lab.unsqueeze(0), 1.0)
            sums += hot @ x[a:b]
        labels[a:b] = lab
    min_dist.add_(x_sq).clamp_(min=0.0)
    if not accumulate:
        return sums[:0], torch.zeros(0, dtype=torch.int64, device=x.device), 0
    return sums, torch.bincount(labels, minlength=k), int(changed)


def _assign(x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, chunk_size: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Closest center and squared distance ||x||^2 - 2 x.c + ||c||^2 for each row."""
    labels = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    min_dist = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    _step(x, x_sq, centers, labels, min_dist, chunk_size, accumulate=False)
    return labels, min_dist


def _lloyd(
    x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, max_iter: int, tol: float, chunk: int,
    bounded: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, torch.Tensor]:
    """One Lloyd run from ``centers``; returns (centers, labels, squared distances, iterations, total sum of
    squares). ``bounded``: Hamerly's bounds (``_lloyd_bounded``), the same run reading fewer rows."""
    if bounded:
        return _lloyd_bounded(x, x_sq, centers, max_iter, tol)
    n = x.shape[0]
    labels = torch.full((n,), -1, dtype=torch.int64, device=x.device)
    min_dist = torch.empty(n, dtype=x.dtype, device=x.device)
    n_iter, converged = 0, False
    while n_iter < max_iter:
        n_iter += 1
        sums, counts, changed = _step(x, x_sq, centers, labels, min_dist, chunk)
        if changed == 0:  # strict convergence: labels and distances already belong to ``centers``
            converged = True
            break
        _relocate_empty(x, labels, min_dist, sums, counts)
        new_centers = (sums / counts.unsqueeze(1)).to(x.dtype)
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if shift <= tol:
            break
    if not converged:  # the final assignment against the final centers (as scikit-learn)
        sums, counts, _ = _step(x, x_sq, centers, labels, min_dist, chunk)
    return centers, labels, min_dist, n_iter, _total_ss(centers, min_dist, sums, counts)


def _lloyd_bounded(
    x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, max_iter: int, tol: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, torch.Tensor]:
    """``_lloyd`` on the CPU with Hamerly's bounds (native/kmeans_cpu.cpp): the same labels at each iteration,
    the same stopping rules. The per-cluster sums are kept across iterations (float64) and updated only for
    rows that change cluster; the distances that the inertia and the empty-cluster rule need come from a
    pass that computes each row's distance to its own center: one at the end, and one in an iteration that
    leaves a cluster empty."""
    n, d = x.shape
    k = centers.shape[0]
    labels = torch.full((n,), -1, dtype=torch.int64)
    upper, lower, norms = (torch.empty(n, dtype=torch.float64) for _ in range(3))
    sums = torch.zeros(k, d, dtype=torch.float64)
    counts = torch.zeros(k, dtype=torch.int64)
    moved = torch.zeros(k, dtype=torch.float64)  # how far each center moved since the bounds were set
    min_dist = torch.empty(n, dtype=x.dtype)
    n_iter, converged = 0, False
    while n_iter < max_iter:
        n_iter += 1
        changed, _ = ops.kmeans_bounded_step(x, centers, moved, labels, upper, lower, norms, sums, counts)
        if changed == 0:
            converged = True
            break
        new_sums, new_counts = sums, counts
        if bool((counts == 0).any()):
            # The rule needs every row's distance; relocation moves sums, not labels: on copies, so that the
            # kept sums still match the labels.
            ops.kmeans_own_dists(x, x_sq, centers, labels, min_dist)
            new_sums, new_counts = sums.clone(), counts.clone()
            _relocate_empty(x, labels, min_dist, new_sums, new_counts)
        new_centers = (new_sums / new_counts.unsqueeze(1)).to(x.dtype)
        shift = float(((new_centers - centers) ** 2).sum())
        # float64 distances, raised by a relative 1e-12 against their own rounding: the bounds must not shrink
        moved = (new_centers.double() - centers.double()).square_().sum(dim=1).sqrt_().mul_(1.0 + 1e-12)
        centers = new_centers
        if shift <= tol:
            break
    if not converged:  # the final assignment against the final centers (as scikit-learn)
        ops.kmeans_bounded_step(x, centers, moved, labels, upper, lower, norms, sums, counts)
    # The inertia's distances: one read of the data, the distance to one center a row.
    ops.kmeans_own_dists(x, x_sq, centers, labels, min_dist)
    return centers, labels, min_dist, n_iter, _total_ss(centers, min_dist, sums, counts)


def _total_ss(centers: torch.Tensor, min_dist: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor
              ) -> torch.Tensor:
    """stats::kmeans' totss (squared distances to the data's mean) without another pass over the data, from
    the last assignment's distances, per-cluster sums S_j and counts n_j: with m the mean and c_j the centers,
    sum ||x - m||^2 = sum ||x - c_j||^2 + 2 (S_j - n_j c_j).(c_j - m) + n_j ||c_j - m||^2 (float64)."""
    c = centers.double()
    n_j = counts.double().unsqueeze(1)
    mean = sums.sum(dim=0) / counts.sum()
    between = 2.0 * ((sums - n_j * c) * (c - mean)).sum() + (n_j * (c - mean) ** 2).sum()
    return min_dist.sum(dtype=torch.float64) + between


def _relocate_empty(x: torch.Tensor, labels: torch.Tensor, min_dist: torch.Tensor, sums: torch.Tensor,
                    counts: torch.Tensor) -> None:
    """scikit-learn's rule for empty clusters: each takes one of the samples farthest from their centers,
    which leaves its old cluster (sums and counts updated in place; ``labels`` stay as assigned)."""
    empty = torch.nonzero(counts == 0).flatten()
    if not empty.numel():
        return
    far = torch.topk(min_dist, empty.numel()).indices
    old = labels[far]
    rows = x.index_select(0, far).to(sums.dtype)
    sums.index_add_(0, old, rows, alpha=-1.0)
    counts.index_add_(0, old, torch.full_like(old, -1))
    sums[empty] = rows
    counts[empty] = 1


def _kmeans_plusplus(
    x: torch.Tensor, x_sq: torch.Tensor, n_clusters: int, generator: torch.Generator, chunk: int = 8192,
) -> torch.Tensor:
    """scikit-learn's greedy k-means++: each step samples 2 + log(k) candidates ~ D^2, keeps the best (the
    draws come from torch's generator, not NumPy's: the same seed gives other centers than scikit-learn's)."""
    n = x.shape[0]
    trials = 2 + int(math.log(n_clusters))
    centers = torch.empty(n_clusters, x.shape[1], dtype=x.dtype, device=x.device)
    first = int(torch.randint(n, (1,), generator=generator))
    centers[0] = x[first]
    inf = torch.full((n,), float("inf"), dtype=x.dtype, device=x.device)
    closest, potential = _pp_dists(x, x_sq, x[first : first + 1], inf, chunk)
    closest, potential = closest[0], float(potential[0])
    for c in range(1, n_clusters):
        rand = torch.rand(trials, generator=generator, dtype=torch.float64).to(x.device) * potential
        cumulative = torch.cumsum(closest, 0, dtype=torch.float64)
        candidates = torch.searchsorted(cumulative, rand).clamp_(max=n - 1)
        dist, pots = _pp_dists(x, x_sq, x.index_select(0, candidates), closest, chunk)
        best = int(torch.argmin(pots))
        closest = dist[best]
        potential = float(pots[best])
        centers[c] = x[candidates[best]]
    return centers


def _pp_dists(x: torch.Tensor, x_sq: torch.Tensor, points: torch.Tensor, closest: torch.Tensor, chunk: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """min(closest, squared distances of ``points`` (m small) to every row), shape (m, n), and its float64
    row sums."""
    if x.device.type == "cpu":
        return ops.kmeans_pp_dists(x, x_sq, points.contiguous(), closest)
    return _torch_pp_dists(x, x_sq, points, closest, chunk)


def _torch_pp_dists(x: torch.Tensor, x_sq: torch.Tensor, points: torch.Tensor, closest: torch.Tensor, chunk: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``_pp_dists`` with torch ops, for GPUs."""
    out = torch.empty(points.shape[0], x.shape[0], dtype=x.dtype, device=x.device)
    p_sq = (points * points).sum(dim=1, keepdim=True)
    for a in range(0, x.shape[0], chunk):
        b = min(a + chunk, x.shape[0])
        torch.addmm(p_sq, points, x[a:b].t(), beta=1.0, alpha=-2.0, out=out[:, a:b])
    out.add_(x_sq.unsqueeze(0)).clamp_(min=0.0)
    torch.minimum(out, closest.unsqueeze(0), out=out)
    return out, out.sum(dim=1, dtype=torch.float64)


def _withinss(labels: torch.Tensor, min_dist: torch.Tensor, k: int) -> np.ndarray:
    """Per-cluster sums of the squared distances Lloyd's last assignment computed, in float64."""
    out = torch.zeros(k, dtype=torch.float64, device=min_dist.device)
    return out.index_add_(0, labels, min_dist.double()).cpu().numpy()


def _cluster_inertia(x: torch.Tensor, labels: torch.Tensor, centers: torch.Tensor, k: int) -> torch.Tensor:
    """Per-cluster sums of squared distances to the centers, in float64."""
    out = torch.zeros(k, dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], 8192):
        block = x[start : start + 8192]
        lab = labels[start : start + 8192]
        dist = ((block - centers[lab]) ** 2).sum(dim=1, dtype=torch.float64)
        out.index_add_(0, lab, dist)
    return out.cpu()
