"""k-means in torch with scikit-learn's estimator conventions (Lloyd iterations, k-means++ seeding)."""

from __future__ import annotations

import math
import numbers
import warnings
from concurrent.futures import ThreadPoolExecutor
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
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import _check_feature_names

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
    n_init : int
        Number of seedings; the run with the lowest inertia is kept.
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
        Rows per block of the distance computation (bounds memory at ``chunk_size * n_clusters``; on a GPU
        blocks hold at least 2**26 distances, 256 MiB, since each block costs kernel launches).

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
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.chunk_size = chunk_size

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
        # transform returns distances in the input's float dtype (computed in float32)
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
        x = _as_matrix(X, "X", device, where=f"{_WHERE}.fit")
        _check_feature_names(self, X, reset=True)
        if x.shape[0] < self.n_clusters:
            raise InputError(
                "X", f"at least n_clusters={self.n_clusters} samples", f"{x.shape[0]} samples",
                where=f"{_WHERE}.fit",
            )
        init_centers = self._check_init_array(x)
        generator = torch.Generator(device="cpu")
        generator.manual_seed(_seed(self.random_state))
        x_sq = _row_sq_norms(x)
        tol = self.tol * _mean_variance(x) if self.tol > 0 else 0.0
        best, best_inertia = None, float("inf")
        plan = _Plan(x.shape[0], device, self.chunk_size)
        try:
            for _ in range(self.n_init):
                if init_centers is not None:
                    centers = init_centers.clone()
                elif self.init == "random":
                    pick = torch.randperm(x.shape[0], generator=generator)[: self.n_clusters]
                    centers = x[pick.to(device)]
                else:
                    centers = _kmeans_plusplus(x, x_sq, self.n_clusters, generator, plan)
                run = _lloyd(x, x_sq, centers, self.max_iter, tol, plan)
                inertia = float(run[2].double().sum())
                if best is None or inertia < best_inertia:
                    best, best_inertia = run, inertia
        finally:
            plan.close()
        self._set_fitted(x, *best, device)
        return self

    def _set_fitted(self, x: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor, min_dist: torch.Tensor,
                    n_iter: int, device: torch.device) -> None:
        inertia = float(min_dist.double().sum())
        self.cluster_centers_ = centers.cpu().numpy()
        self.labels_ = labels.cpu().numpy().astype(np.int64)
        self.inertia_ = float(inertia)
        # pydlr extra (stats::kmeans' withinss): the inertia of each cluster.
        self.withinss_ = _withinss(labels, min_dist, self.n_clusters)
        self.n_iter_ = int(n_iter)
        self.n_features_in_ = int(x.shape[1])
        self.device_ = str(device)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then return ``labels_``."""
        return self.fit(X).labels_

    def predict(self, X: Any) -> np.ndarray:
        """Index of the closest center for each row of ``X``."""
        x, centers = self._fitted_input(X, "predict")
        labels, _ = _assign(x, _row_sq_norms(x), centers, self.chunk_size)
        return labels.cpu().numpy().astype(np.int64)

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distances of each row of ``X`` to each center, shape (n_samples, n_clusters).

        Computed in float32; returned in ``X``'s float dtype (float32 for other types), as scikit-learn's.
        """
        x, centers = self._fitted_input(X, "transform")
        return torch.cdist(x, centers).cpu().numpy().astype(_float_dtype(X), copy=False)

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then ``transform(X)``."""
        return self.fit(X).transform(X)

    def score(self, X: Any, y: Any = None) -> float:
        """Opposite of the inertia of ``X`` with the fitted centers (higher is better)."""
        x, centers = self._fitted_input(X, "score")
        labels, _ = _assign(x, _row_sq_norms(x), centers, self.chunk_size)
        return -float(_cluster_inertia(x, labels, centers, centers.shape[0]).sum())

    # --- checks ------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        where = f"{_WHERE}.fit"
        _check_int(self.n_clusters, "n_clusters", 1, where)
        _check_int(self.n_init, "n_init", 1, where)
        _check_int(self.max_iter, "max_iter", 1, where)
        _check_int(self.chunk_size, "chunk_size", 1, where)
        if not isinstance(self.tol, numbers.Real) or isinstance(self.tol, bool) or not self.tol >= 0:
            raise InputError("tol", "a number >= 0", self.tol, where=where)
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
        centers = _as_matrix(self.init, "init", x.device, where=f"{_WHERE}.fit")
        if tuple(centers.shape) != (self.n_clusters, x.shape[1]):
            raise InputError(
                "init", f"an array of shape ({self.n_clusters}, {x.shape[1]})", self.init,
                where=f"{_WHERE}.fit",
            )
        return centers

    def _fitted_input(self, X: Any, method: str) -> tuple[torch.Tensor, torch.Tensor]:
        if not hasattr(self, "cluster_centers_"):
            raise NotFittedError(f"{_WHERE}.{method}: this KMeans is not fitted yet; call fit(X) first.")
        device = torch.device(self.device_)
        x = _as_matrix(X, "X", device, where=f"{_WHERE}.{method}")
        _check_feature_names(self, X, reset=False)  # warns when DataFrame columns differ from fit's
        if x.shape[1] != self.n_features_in_:
            raise InputError(
                "X",
                f"{self.n_features_in_} features as in fit (X has {x.shape[1]} features, but KMeans is "
                f"expecting {self.n_features_in_} features as input)",
                f"{x.shape[1]} features",
                where=f"{_WHERE}.{method}",
            )
        return x, torch.from_numpy(self.cluster_centers_).to(device)


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
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError("device", '"auto", "cpu" or "cuda"', device, where=f"{_WHERE}.fit") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device", "a device present on this machine (no CUDA here)", device, where=_WHERE)
    return resolved


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


def _as_matrix(value: Any, argument: str, device: torch.device, where: str) -> torch.Tensor:
    """A 2-d, finite, float32 tensor on ``device`` (no copy when ``value`` already is one)."""
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
    if tensor.dtype != torch.float32 or tensor.device != device or not tensor.is_contiguous():
        # One pass for dtype, layout (e.g. R's column-major doubles) and device together.
        tensor = torch.empty(tuple(tensor.shape), dtype=torch.float32, device=device).copy_(tensor)
    if not _all_finite(tensor):
        raise InputError(argument, "finite values (no NaN or Inf)", value, where=where)
    return tensor


def _all_finite(x: torch.Tensor) -> bool:
    """No NaN or Inf in ``x``: row sums first (one read at memory speed, n values: a NaN or Inf anywhere
    in a row makes its sum NaN or Inf), then the elements of the rows whose sums are not finite (a sum
    can overflow on finite values)."""
    sums = x.sum(dim=1)
    suspect = torch.nonzero(~torch.isfinite(sums)).flatten()
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


def _mean_variance(x: torch.Tensor) -> float:
    """Mean over features of the (biased) variance, in float64, a block of rows at a time (two passes)."""
    mean = sum(block.sum(dim=0).double() for block in _blocks(x)) / x.shape[0]
    centre = mean.to(x.dtype)
    squares = sum(((block - centre) ** 2).sum(dim=0).double() for block in _blocks(x))
    return float((squares / x.shape[0]).mean())


class _Plan:
    """How one pass over the samples is split: contiguous slabs, one per worker thread, walked in chunks.

    On CPU each worker runs torch single-threaded over its own slab (one parallel region per pass, as
    scikit-learn's Cython loop does): many small per-chunk ops each opening an OpenMP region of their own
    are several times slower, worst on a loaded machine. On GPU one slab with large chunks.
    """

    def __init__(self, n: int, device: torch.device, chunk_size: int) -> None:
        self.cpu = device.type == "cpu"
        self.workers = max(1, min(torch.get_num_threads(), n // 1024)) if self.cpu else 1
        bounds = np.linspace(0, n, self.workers + 1).astype(int)
        self.slabs = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
        self.chunk = min(chunk_size, 512) if self.cpu else chunk_size
        self._pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None
        self._threads = torch.get_num_threads()

    def map(self, fn: Any) -> list[Any]:
        if self._pool is None:
            return [self._single(fn, slab) for slab in self.slabs]
        return list(self._pool.map(lambda slab: self._single(fn, slab), self.slabs))

    def _single(self, fn: Any, slab: tuple[int, int]) -> Any:
        if self._pool is not None:
            torch.set_num_threads(1)  # this worker thread's OpenMP/MKL team only
        return fn(*slab)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            torch.set_num_threads(self._threads)  # the default for threads created later


def _assign(
    x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, chunk_size: int,
    plan: _Plan | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Closest center and squared distance ||x||^2 - 2 x.c + ||c||^2 for each row."""
    own = plan is None
    plan = plan or _Plan(x.shape[0], x.device, chunk_size)
    try:
        labels = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
        min_dist = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
        step = _SlabStep(x, x_sq, centers, labels, min_dist, plan.chunk, accumulate=False)
        plan.map(step)
    finally:
        if own:
            plan.close()
    return labels, min_dist


class _SlabStep:
    """E-step (and partial M-step sums) of Lloyd's algorithm on rows [start, stop), chunk by chunk."""

    def __init__(
        self, x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor,
        min_dist: torch.Tensor, chunk: int, accumulate: bool = True,
    ) -> None:
        self.x, self.x_sq, self.labels, self.min_dist = x, x_sq, labels, min_dist
        self.centers = centers
        self.c_sq = (centers * centers).sum(dim=1, keepdim=True)
        # On a GPU each chunk costs a handful of kernel launches: chunks of at least 2**26 / k rows (256 MiB of
        # float32 distances) keep a pass over 10M rows to a few launches instead of thousands.
        self.chunk = max(chunk, (1 << 26) // self.c_sq.shape[0]) if x.is_cuda else chunk
        self.accumulate = accumulate

    def __call__(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor, int] | None:
        x, k = self.x, self.c_sq.shape[0]
        # (k, chunk) blocks: C @ X^T is ~1.5x faster than X @ C^T for a small k (MKL, measured).
        buffer = torch.empty(k, min(self.chunk, stop - start), dtype=x.dtype, device=x.device)
        new = torch.empty(buffer.shape[1], dtype=torch.int64, device=x.device)
        sums = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device) if self.accumulate else None
        # On a GPU, index_add_ into k rows is k * d addresses hit by every sample's atomics (10M x 64, k = 10:
        # ~220 ms an iteration on an H200); a one-hot (k, chunk) @ (chunk, d) GEMM streams the chunk instead.
        onehot = (torch.empty(k, buffer.shape[1], dtype=x.dtype, device=x.device)
                  if self.accumulate and x.is_cuda else None)
        changed = torch.zeros((), dtype=torch.int64, device=x.device)
        for a in range(start, stop, self.chunk):
            b = min(a + self.chunk, stop)
            block, labels = buffer[:, : b - a], new[: b - a]
            torch.addmm(self.c_sq, self.centers, x[a:b].t(), beta=1.0, alpha=-2.0, out=block)
            torch.min(block, dim=0, out=(self.min_dist[a:b], labels))
            if self.accumulate:
                changed += labels.ne(self.labels[a:b]).sum()
                if onehot is None:
                    sums.index_add_(0, labels, x[a:b])  # the chunk is still in cache
                else:
                    hot = onehot[:, : b - a].zero_().scatter_(0, labels.unsqueeze(0), 1.0)
                    sums.addmm_(hot, x[a:b])
            self.labels[a:b] = labels
        dist = self.min_dist[start:stop]
        dist.add_(self.x_sq[start:stop]).clamp_(min=0.0)
        if not self.accumulate:
            return None
        counts = torch.bincount(self.labels[start:stop], minlength=k).to(x.dtype)
        return sums, counts, int(changed)


def _lloyd(
    x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, max_iter: int, tol: float,
    plan: _Plan,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """One Lloyd run from ``centers``; returns (centers, labels, squared distances, iterations)."""
    n = x.shape[0]
    labels = torch.full((n,), -1, dtype=torch.int64, device=x.device)
    min_dist = torch.empty(n, dtype=x.dtype, device=x.device)
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        parts = plan.map(_SlabStep(x, x_sq, centers, labels, min_dist, plan.chunk))
        if sum(p[2] for p in parts) == 0:  # strict convergence: no label changed
            break
        sums = torch.stack([p[0] for p in parts]).sum(dim=0)
        counts = torch.stack([p[1] for p in parts]).sum(dim=0)
        empty = torch.nonzero(counts == 0).flatten()
        if empty.numel():  # an empty cluster takes the sample farthest from its center
            far = torch.topk(min_dist, empty.numel()).indices
            sums[empty] = x[far]
            counts[empty] = 1.0
        new_centers = sums / counts.unsqueeze(1)
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if shift <= tol:
            break
    # Final assignment against the final centers (as scikit-learn), inertia accumulated in float64.
    plan.map(_SlabStep(x, x_sq, centers, labels, min_dist, plan.chunk, accumulate=False))
    return centers, labels, min_dist, n_iter


def _kmeans_plusplus(
    x: torch.Tensor, x_sq: torch.Tensor, n_clusters: int, generator: torch.Generator, plan: _Plan,
) -> torch.Tensor:
    """scikit-learn's greedy k-means++: each step samples 2 + log(k) candidates ~ D^2, keeps the best."""
    n = x.shape[0]
    trials = 2 + int(math.log(n_clusters))
    centers = torch.empty(n_clusters, x.shape[1], dtype=x.dtype, device=x.device)
    first = int(torch.randint(n, (1,), generator=generator))
    centers[0] = x[first]
    closest = _sq_dist_to(x, x_sq, x[first : first + 1], plan)[0].double()
    potential = float(closest.sum())
    for c in range(1, n_clusters):
        rand = torch.rand(trials, generator=generator, dtype=torch.float64).to(x.device) * potential
        candidates = torch.searchsorted(torch.cumsum(closest, 0), rand).clamp_(max=n - 1)
        dist = _sq_dist_to(x, x_sq, x[candidates], plan).double()  # (trials, n)
        dist = torch.minimum(dist, closest.unsqueeze(0))
        pots = dist.sum(dim=1)
        best = int(torch.argmin(pots))
        closest = dist[best].contiguous()
        potential = float(pots[best])
        centers[c] = x[candidates[best]]
    return centers


def _sq_dist_to(x: torch.Tensor, x_sq: torch.Tensor, points: torch.Tensor, plan: _Plan) -> torch.Tensor:
    """Squared distances (m, n) of ``points`` (m small) to every row of ``x``, clamped at 0."""
    out = torch.empty(points.shape[0], x.shape[0], dtype=x.dtype, device=x.device)
    p_sq = (points * points).sum(dim=1, keepdim=True)

    def slab(start: int, stop: int) -> None:
        for a in range(start, stop, plan.chunk):
            b = min(a + plan.chunk, stop)
            torch.addmm(p_sq, points, x[a:b].t(), beta=1.0, alpha=-2.0, out=out[:, a:b])
        out[:, start:stop].add_(x_sq[start:stop].unsqueeze(0)).clamp_(min=0.0)

    plan.map(slab)
    return out


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
