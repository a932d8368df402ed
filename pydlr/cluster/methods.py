"""Deep learning or not? The machinery of ``pydlr.compare.compare_methods``: k-means, classic classifiers and a CNN
on one labelled image set, scored alike, with the verdict and the 2-D picture.

Every method sees the same split: supervised methods learn from the training images and are scored on the
test images; k-means learns from the training images without their labels and assigns the test images to
its clusters, which are then matched one-to-one to the classes (Hungarian method) to give an accuracy.
ARI and NMI compare the test images' predicted groups with their classes (any naming of the groups).

cluster/ never imports the training engine (tests/test_import_directions.py): the CNN's training and the
network features come in as functions from ``pydlr.compare``, the module above both.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pydlr.cluster._kmeans import KMeans, _check_int
from pydlr.cluster.metrics import adjusted_rand_index, matched_accuracy, normalized_mutual_info
from pydlr.errors import CHANNELS_FIRST_FIX, InputError

_WHERE = "compare_methods"
METHODS = (
    "kmeans_pixels", "kmeans_embedding", "logistic_pixels", "logistic_embedding",
    "forest_pixels", "forest_embedding", "cnn",
)
_LABELS = {
    "kmeans_pixels": ("k-means (pixels)", "unsupervised"),
    "kmeans_embedding": ("k-means (embedding)", "unsupervised"),
    "logistic_pixels": ("logistic regression (pixels)", "supervised"),
    "logistic_embedding": ("logistic regression (embedding)", "supervised"),
    "forest_pixels": ("random forest (pixels)", "supervised"),
    "forest_embedding": ("random forest (embedding)", "supervised"),
    "cnn": ("CNN", "deep"),
}
COLUMNS = ["method", "kind", "accuracy", "ARI", "NMI", "train_seconds", "predict_seconds", "size_mb"]


class MethodComparison(pd.DataFrame):
    """The table ``compare_methods`` returns: a pandas DataFrame (one row a method, ``COLUMNS``) that
    prints a one-line verdict after the rows and draws the embeddings with `plot`.

    Extra attributes: ``verdict`` (str) and ``details`` (test labels, features and cluster labels that
    `plot` uses). Operations on it (slicing, sorting) give plain DataFrames.
    """

    _metadata = ["verdict", "details"]

    @property
    def _constructor(self) -> type:
        return pd.DataFrame

    def __repr__(self) -> str:
        return pd.DataFrame(self).to_string(index=False, float_format=lambda v: f"{v:.3f}") + "\n" + self.verdict

    __str__ = __repr__

    def plot(self, features: str = "embedding", projection: str = "pca", max_points: int = 2000,
             path: Any = None, random_state: int = 0) -> Any:  # noqa: D417 (pandas' plot accessor replaced)
        """Two panels of the test images in 2-D, coloured by their class and by their k-means cluster.

        Parameters
        ----------
        features : {"embedding", "pixels"}
            Which features to project (the embedding needs an embedding row or the CNN).
        projection : {"pca", "tsne"}
            scikit-learn's PCA, or its t-SNE (slower: a few seconds for 2,000 points).
        max_points : int
            At most this many test images (a fixed random subset), to keep t-SNE and the figure light.
        path : str, optional
            Also save the figure as a PNG there.

        Returns
        -------
        matplotlib.figure.Figure
        """
        where = "MethodComparison.plot"
        feats = self.details.features
        if features not in ("embedding", "pixels") or features not in feats:
            raise InputError("features", f"one of {', '.join(repr(k) for k in feats)}", features, where=where)
        if projection not in ("pca", "tsne"):
            raise InputError("projection", '"pca" or "tsne"', projection, where=where)
        _check_int(max_points, "max_points", 10, where)
        xy, keep = project_2d(feats[features], projection, max_points, random_state)
        return _scatter_pair(xy, self.details.y_test[keep],
                             self.details.clusters.get(features, np.zeros(len(self.details.y_test)))[keep],
                             f"{features} ({'PCA' if projection == 'pca' else 't-SNE'})", path)


@dataclass
class _Details:
    y_test: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)
    clusters: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Data:
    """The validated inputs: images (n, h, w, c) float32 (in [0, 1] where they were integers), codes 0..C-1."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray


def run_methods(
    x: Any, y: Any, x_test: Any = None, y_test: Any = None, *, fit_cnn: Callable, penultimate: Callable,
    embed: Callable, methods: Sequence[str] | None = None, model: Any = None, embedding: Any = None,
    epochs: int = 1, batch_size: int = 64, time_budget: float | None = None, n_clusters: int | None = None,
    test_size: float = 0.25, random_state: int = 0, device: str = "cpu", n_estimators: int = 100,
) -> MethodComparison:
    """The body of ``pydlr.compare.compare_methods`` (its docstring says what each argument means).

    The network's parts come as functions, so this module needs no training engine:
    ``fit_cnn(x, y, num_classes, model, epochs, batch_size, time_budget, seed, device)`` returns the trained
    model, ``penultimate(model, images, batch_size)`` and ``embed(model, images, batch_size=)`` return
    (n, features) arrays.
    """
    chosen = _check_methods(methods)
    _check_budget(time_budget)
    for name, value, low in (("epochs", epochs, 0), ("batch_size", batch_size, 1),
                             ("random_state", random_state, 0), ("n_estimators", n_estimators, 1)):
        _check_int(value, name, low, _WHERE)
    data = _check_data(x, y, x_test, y_test, test_size, random_state)
    k = _check_clusters(n_clusters, data)
    needs_net = "cnn" in chosen or (any(m.endswith("_embedding") for m in chosen) and embedding is None)
    _check_networks(model, embedding, epochs, needs_net)

    runner = _Runner(data, k, time_budget, random_state, device, n_estimators)
    rows: dict[str, dict[str, Any]] = {}
    net = None
    if needs_net:
        net, row = _train_cnn(data, model, epochs, batch_size, time_budget, random_state, device, fit_cnn)
        if "cnn" in chosen:
            rows["cnn"] = row
    pixels_train = data.x_train.reshape(len(data.x_train), -1)
    pixels_test = data.x_test.reshape(len(data.x_test), -1)
    details = _Details(y_test=data.y_test, features={"pixels": pixels_test})
    for name in chosen:
        if name.endswith("_pixels"):
            rows[name] = runner.run(name, pixels_train, pixels_test, details, "pixels")
    if any(m.endswith("_embedding") for m in chosen):
        embed_fn, embed_mb = _embedding_function(embedding, net, batch_size, penultimate, embed)
        rows.update(_embedding_rows(runner, chosen, data, details, embed_fn, embed_mb))
    table = pd.DataFrame([{"method": _LABELS[m][0], "kind": _LABELS[m][1], **rows[m]} for m in chosen],
                         columns=COLUMNS)
    out = MethodComparison(table)
    out.verdict = verdict(table)
    out.details = details
    return out


def _check_clusters(n_clusters: int | None, data: _Data) -> int:
    """k: the number of classes unless given; never more than the distinct training images."""
    k = len(data.classes) if n_clusters is None else n_clusters
    _check_int(k, "n_clusters", 1, _WHERE)
    distinct = len(np.unique(data.x_train.reshape(len(data.x_train), -1), axis=0))
    if k > distinct:
        raise InputError("n_clusters", f"at most the {distinct} distinct training images", k, where=_WHERE)
    return k


def _check_networks(model: Any, embedding: Any, epochs: int, needs_net: bool) -> None:
    """``model`` and ``embedding`` checked before any method runs."""
    if embedding is not None and not callable(embedding) and not hasattr(embedding, "prepare_input"):
        raise InputError("embedding", "None, a pydlr model or a function of the images", embedding, where=_WHERE)
    if needs_net and model is not None and not hasattr(model, "fit"):
        raise InputError("model", "a pydlr model with compile/fit (e.g. pydlr.models.seed_cnn(...))", model,
                         where=_WHERE)
    if epochs == 0 and model is None:
        raise InputError("epochs", "at least 1 (0 uses a given model as trained: pass model=)", epochs,
                         where=_WHERE)


def _embedding_rows(runner: _Runner, chosen: Sequence[str], data: _Data, details: _Details,
                    embed_fn: Callable, embed_mb: float) -> dict[str, dict[str, Any]]:
    """The ``*_embedding`` rows: the embedding's own time and size are added to each method's."""
    started = time.perf_counter()
    emb_train = embed_fn(data.x_train)
    embed_train_s = time.perf_counter() - started
    started = time.perf_counter()
    emb_test = embed_fn(data.x_test)
    embed_test_s = time.perf_counter() - started
    details.features["embedding"] = emb_test
    rows = {}
    for name in chosen:
        if name.endswith("_embedding"):
            row = runner.run(name, emb_train, emb_test, details, "embedding")
            row["train_seconds"] += embed_train_s
            row["predict_seconds"] += embed_test_s
            row["size_mb"] += embed_mb
            rows[name] = row
    return rows


# --- validation -----------------------------------------------------------------------------------------
def _check_methods(methods: Sequence[str] | None) -> list[str]:
    if methods is None:
        return list(METHODS)
    if isinstance(methods, str):
        methods = [methods]
    chosen = list(dict.fromkeys(methods))
    unknown = [m for m in chosen if m not in METHODS]
    if not chosen or unknown:
        raise InputError("methods", f"a non-empty list of {', '.join(METHODS)}", methods, where=_WHERE)
    return chosen


def _check_budget(time_budget: Any) -> None:
    if time_budget is None:
        return
    if isinstance(time_budget, bool) or not isinstance(time_budget, (int, float, np.number)) \
            or not np.isfinite(time_budget) or time_budget <= 0:
        raise InputError("time_budget", "a positive number of seconds, or None for no limit", time_budget,
                         where=_WHERE)


def _images(value: Any, argument: str) -> np.ndarray:
    """(n, h, w, c) float32: integer pixels scaled to [0, 1]; finite; non-empty; numbers only."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(argument, "an array of images (n, height, width[, channels])", value,
                         where=_WHERE) from exc
    if array.dtype.kind not in "biuf":
        raise InputError(argument, "numeric images (n, height, width[, channels])", value, where=_WHERE)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or 0 in array.shape:
        raise InputError(argument, "a non-empty array of images (n, height, width[, channels])", value,
                         where=_WHERE)
    if array.shape[1] in (1, 3) and array.shape[3] > 4:  # a channel count first, a width of 5+ last
        raise InputError(argument, "images with the channels last (n, height, width, channels); "
                         + CHANNELS_FIRST_FIX, value, where=_WHERE)
    # Integer images are 8-bit pixels (uint8 from NumPy, integer arrays from R): scaled to [0, 1] as a CNN wants.
    scale = 255.0 if array.dtype.kind in "iu" else 1.0
    images = np.asarray(array, dtype=np.float32) / np.float32(scale)
    bad = ~np.isfinite(images.reshape(len(images), -1)).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError(argument, "finite pixel values (no NaN or Inf)",
                         _Words(f"{bad.sum()} image(s) with NaN or Inf, the first at index {rows[0]}"),
                         where=_WHERE)
    return images


class _Words(str):
    def __repr__(self) -> str:
        return str(self)


def _classes(value: Any, argument: str, n: int, x_argument: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 1:
        raise InputError(argument, "a 1-d vector of classes, one per image", value, where=_WHERE)
    if len(array) != n:
        raise InputError(argument, f"{n} classes (one per image of {x_argument})", _Words(f"{len(array)}"),
                         where=_WHERE)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(argument, "classes without NaN or Inf", value, where=_WHERE)
    if array.dtype.kind == "O" and any(v is None for v in array):
        raise InputError(argument, "classes without missing values", value, where=_WHERE)
    return array


def _check_data(x: Any, y: Any, x_test: Any, y_test: Any, test_size: float, random_state: int) -> _Data:
    images = _images(x, "x")
    labels = _classes(y, "y", len(images), "x")
    if (x_test is None) != (y_test is None):
        raise InputError("y_test" if y_test is None else "x_test", "given together with "
                         + ("x_test" if y_test is None else "y_test"), None, where=_WHERE)
    classes, codes = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise InputError("y", "at least 2 different classes", _Words(f"{len(classes)} class"), where=_WHERE)
    if x_test is None:
        if isinstance(test_size, bool) or not isinstance(test_size, (float, int)) or not 0 < test_size < 1:
            raise InputError("test_size", "a share between 0 and 1", test_size, where=_WHERE)
        from sklearn.model_selection import train_test_split

        stratify = codes if np.bincount(codes).min() >= 2 else None
        try:
            tr, te = train_test_split(np.arange(len(images)), test_size=test_size, random_state=random_state,
                                      stratify=stratify)
        except ValueError as exc:
            raise InputError("test_size", f"a share that leaves images on both sides ({exc})", test_size,
                             where=_WHERE) from exc
        return _Data(images[tr], codes[tr], images[te], codes[te], classes)
    test_images = _images(x_test, "x_test")
    if test_images.shape[1:] != images.shape[1:]:
        raise InputError("x_test", f"images of shape {images.shape[1:]} as x", test_images, where=_WHERE)
    test_labels = _classes(y_test, "y_test", len(test_images), "x_test")
    unknown = ~np.isin(test_labels, classes)
    if unknown.any():
        raise InputError("y_test", "classes that occur in y", _Words(repr(test_labels[unknown][0])), where=_WHERE)
    return _Data(images, codes, test_images, np.searchsorted(classes, test_labels), classes)


# --- the classic methods --------------------------------------------------------------------------------
class _Runner:
    """Fits one classic method on (train features, train codes), scores it on the test features."""

    def __init__(self, data: _Data, k: int, budget: float | None, seed: int, device: str,
                 n_estimators: int) -> None:
        self.data, self.k, self.budget, self.seed, self.device = data, k, budget, seed, device
        self.n_estimators = n_estimators

    def run(self, name: str, train: np.ndarray, test: np.ndarray, details: _Details, features: str
            ) -> dict[str, Any]:
        family = name.split("_")[0]
        fit, predict, size = {"kmeans": self._kmeans, "logistic": self._logistic, "forest": self._forest}[family]()
        started = time.perf_counter()
        fitted = fit(train, self.data.y_train)
        train_s = time.perf_counter() - started
        started = time.perf_counter()
        predicted = predict(fitted, test)
        predict_s = time.perf_counter() - started
        if family == "kmeans":
            details.clusters[features] = predicted
            accuracy = matched_accuracy(self.data.y_test, predicted)
        else:
            accuracy = float(np.mean(predicted == self.data.y_test))
        return _scores(accuracy, self.data.y_test, predicted, train_s, predict_s, size(fitted))

    def _left(self, started: float) -> bool:
        return self.budget is None or time.perf_counter() - started < self.budget

    def _kmeans(self) -> tuple[Callable, Callable, Callable]:
        step = 10 if self.budget is not None else 300

        def fit(x: np.ndarray, _y: np.ndarray) -> KMeans:
            started = time.perf_counter()
            km = KMeans(self.k, max_iter=step, random_state=self.seed, device=self.device).fit(x)
            total = km.n_iter_
            # Lloyd from the centers reached, `step` iterations at a time, while the budget lasts.
            while km.n_iter_ == step and total < 300 and self._left(started):
                km = KMeans(self.k, init=km.cluster_centers_, max_iter=step, device=self.device).fit(x)
                total += km.n_iter_
            return km

        return fit, lambda km, x: km.predict(x), lambda km: km.cluster_centers_.astype(np.float32).nbytes / 1e6

    def _logistic(self) -> tuple[Callable, Callable, Callable]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        step = 25 if self.budget is not None else 1000

        def fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
            started = time.perf_counter()
            # Standardized features: lbfgs converges in far fewer iterations (embeddings are unscaled).
            mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
            z = (x - mean) / scale
            lr = LogisticRegression(max_iter=step, warm_start=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                lr.fit(z, y)
                used = int(np.max(lr.n_iter_))
                while used >= step and used < 1000 and self._left(started):
                    lr.fit(z, y)
                    used = int(np.max(lr.n_iter_))
            return mean, scale, lr

        def size(fitted: tuple) -> float:
            mean, scale, lr = fitted
            return (lr.coef_.nbytes + lr.intercept_.nbytes + mean.nbytes + scale.nbytes) / 1e6

        return fit, lambda f, x: f[2].predict((x - f[0]) / f[1]), size

    def _forest(self) -> tuple[Callable, Callable, Callable]:
        from pydlr.cluster._forest import fit_forest, forest_megabytes

        return (lambda x, y: fit_forest(x, y, self.n_estimators, self.budget, self.seed),
                lambda rf, x: rf.predict(x), forest_megabytes)


def _scores(accuracy: float, y_test: np.ndarray, predicted: np.ndarray, train_s: float, predict_s: float,
            size_mb: float) -> dict[str, Any]:
    return {"accuracy": float(accuracy), "ARI": adjusted_rand_index(y_test, predicted),
            "NMI": normalized_mutual_info(y_test, predicted), "train_seconds": float(train_s),
            "predict_seconds": float(predict_s), "size_mb": float(size_mb)}


# --- the CNN and the embedding --------------------------------------------------------------------------
def _train_cnn(data: _Data, model: Any, epochs: int, batch_size: int, budget: float | None, seed: int,
               device: str, fit_cnn: Callable) -> tuple[Any, dict[str, Any]]:
    started = time.perf_counter()
    net = model if epochs == 0 else fit_cnn(data.x_train, data.y_train, len(data.classes), model, epochs,
                                            batch_size, budget, seed, device)
    train_s = float("nan") if epochs == 0 else time.perf_counter() - started
    started = time.perf_counter()
    predicted = net.predict_classes(data.x_test, batch_size=256)
    predict_s = time.perf_counter() - started
    accuracy = float(np.mean(predicted == data.y_test))
    return net, _scores(accuracy, data.y_test, predicted, train_s, predict_s, _megabytes(net))


def _megabytes(model: Any) -> float:
    """Megabytes of the model's weights as saved (safetensors); 0 for what has no torch state."""
    from pydlr.models.summary import saved_weights_size

    return saved_weights_size(model) / 1e6 if hasattr(model, "state_dict") else 0.0


def _embedding_function(embedding: Any, net: Any, batch_size: int, penultimate: Callable, embed: Callable
                        ) -> tuple[Callable, float]:
    """The features function of the embedding rows and the megabytes of the network behind it."""
    if callable(embedding) and not hasattr(embedding, "prepare_input"):
        def call(images: np.ndarray) -> np.ndarray:
            out = np.asarray(embedding(images), dtype=np.float32)
            if out.ndim != 2 or len(out) != len(images) or not np.isfinite(out).all():
                raise InputError("embedding", "a function returning finite (n, features) arrays", out,
                                 where=_WHERE)
            return out

        return call, 0.0
    source = net if embedding is None else embedding
    size = _megabytes(source)
    if embedding is None:
        return (lambda images: penultimate(source, images, batch_size)), size
    return (lambda images: embed(source, images, batch_size=batch_size)), size


# --- the verdict and the figure -------------------------------------------------------------------------
def verdict(table: pd.DataFrame, margin: float = 0.02) -> str:
    """One line in plain words: does the CNN beat the best method without a network by more than ``margin``
    accuracy? Methods on the network's embedding still use the network, so they are named as such."""
    best = table.loc[table["accuracy"].idxmax()]
    deep = table[table["kind"] == "deep"]
    on_embedding = table["method"].str.contains("embedding")
    other = table[(table["kind"] != "deep") & ~on_embedding]
    if deep.empty or other.empty:
        missing = " and ".join(w for w, gone in (("the CNN", deep.empty), ("a method on pixels", other.empty))
                               if gone)  # only what the table lacks: naming a present one misleads
        return (f"Verdict: {best['method']} is the most accurate ({best['accuracy']:.3f}); add {missing} "
                "to decide between deep learning and the rest.")
    cnn = deep.loc[deep["accuracy"].idxmax()]
    alt = other.loc[other["accuracy"].idxmax()]
    gap = cnn["accuracy"] - alt["accuracy"]
    ratio = cnn["train_seconds"] / max(alt["train_seconds"], 1e-9)
    known = bool(np.isfinite(ratio))  # NaN when the CNN was trained before the call
    if gap > margin:
        cost = f", for {ratio:.1f}x its training time" if known else ""
        return (f"Verdict: deep learning pays off here: the CNN reaches {cnn['accuracy']:.3f} against "
                f"{alt['accuracy']:.3f} for the best method without a network, {alt['method']}{cost}"
                f"{_embedding_note(table, on_embedding, cnn, margin)}.")
    if gap >= -margin:
        cost = f" with {1 / max(ratio, 1e-9):.2f}x the CNN's training time" if known else ""
        return (f"Verdict: deep learning is not needed here: {alt['method']} is within {100 * margin:.0f} points "
                f"of the CNN ({alt['accuracy']:.3f} against {cnn['accuracy']:.3f}){cost}.")
    return (f"Verdict: deep learning loses here: {alt['method']} beats the CNN ({alt['accuracy']:.3f} against "
            f"{cnn['accuracy']:.3f}); more epochs or a pretrained embedding may change that.")


def _embedding_note(table: pd.DataFrame, on_embedding: pd.Series, cnn: pd.Series, margin: float) -> str:
    """When a classic model on the network's embedding matches the CNN: the network's features do the work."""
    emb = table[on_embedding & (table["kind"] != "deep")]
    if emb.empty:
        return ""
    top = emb.loc[emb["accuracy"].idxmax()]
    if top["accuracy"] < cnn["accuracy"] - margin:
        return ""
    return (f"; {top['method']} matches it ({top['accuracy']:.3f}): the network's learned features, not its "
            "classifier head, make the difference")


def project_2d(features: np.ndarray, projection: str = "pca", max_points: int = 2000, random_state: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
    """(points (m, 2), indices of the rows kept): PCA or t-SNE of at most ``max_points`` rows."""
    n = len(features)
    keep = np.arange(n)
    if n > max_points:
        keep = np.sort(np.random.default_rng(random_state).choice(n, max_points, replace=False))
    x = np.asarray(features[keep], dtype=np.float32)
    if projection == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=random_state).fit_transform(x), keep
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    # t-SNE on 50 principal components, as its authors advise for high-dimensional inputs.
    reduced = PCA(n_components=min(50, x.shape[1], len(x)), random_state=random_state).fit_transform(x)
    perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state
                ).fit_transform(reduced), keep


def _scatter_pair(xy: np.ndarray, classes: np.ndarray, clusters: np.ndarray, title: str, path: Any) -> Any:
    from pydlr.interpret.plots import _finish, _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, colour, name in ((axes[0], classes, "class"), (axes[1], clusters, "k-means cluster")):
        ax.scatter(xy[:, 0], xy[:, 1], c=colour, cmap="tab10", s=6, alpha=0.8)
        ax.set_title(f"{title}, coloured by {name}")
        ax.set_xticks([])
        ax.set_yticks([])
    return _finish(fig, path)
