"""``pydlr.r``: call R on pydlr data from Python through rpy2, with the bridge's Arrow path.

Data never cross element by element: :func:`to_r` exports NumPy/torch/pyarrow/pandas data through the
Arrow C Data Interface into structs that the R package's C code copies once into R vectors (a C-order
matrix is transposed during that copy); :func:`from_r` gets R's structs back and views them with NumPy
(R's own memory for numbers: zero-copy, read-only) or pyarrow (data.frames, strings, factors, dates).

R starts inside this process the first time a function here needs it, with the R package pydlr loaded.
R code run through :func:`r` and :func:`call` may call pydlr back through reticulate (same process, same
interpreter): it runs with Python's GIL held, which rpy2 alone does not do (see r-package/src/gil.c).
rpy2 registers an ``atexit`` hook that ends R; when R has called back into Python (reticulate, e.g. a
pydlr computation from R) that hook aborts the interpreter at exit, so it is unregistered: R ends with
the process.

R errors come back as rpy2's ``RRuntimeError`` carrying R's message, printed once (by Python's traceback,
not by R's console as well). R lists come back as dicts (named) or lists, element by element.

Example
-------
>>> import numpy as np, pydlr.r
>>> x = np.random.default_rng(0).normal(size=(100, 2))
>>> fit = pydlr.r.kmeans(x, 3, seed=1)
>>> fit["labels"][:5], fit["inertia"]
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from pydlr.bridge.arrow import export_to_c, import_from_c
from pydlr.bridge.cabi import ArrowArray, ArrowSchema, release_if_held
from pydlr.bridge.views import as_numpy
from pydlr.errors import InputError

_WHERE = "pydlr.r"
_state: dict[str, Any] = {}


def robjects() -> Any:
    """rpy2's ``robjects``, with R started and the R package pydlr loaded (once per process)."""
    if "ro" not in _state:
        import rpy2.rinterface_lib.embedded as embedded
        import rpy2.robjects as ro

        # See the module docstring: rpy2's endr at exit aborts once R has called back into Python.
        atexit.unregister(embedded.endr)
        atexit.register(_park_reticulate_poller)
        # rpy2 hooks a warning about a reticulate segfault onto reticulate's load; reticulate 1.25 fixed it
        # (rstudio/reticulate#1188), so with a fixed reticulate the hook only printed noise at every start.
        ro.r(_DROP_RETICULATE_WARNING)
        ro.r("suppressPackageStartupMessages(library(pydlr))")
        _state["ro"] = ro
        _state["export"] = ro.r("pydlr:::.bridge_export_for_py")
        _state["import"] = ro.r("pydlr:::.bridge_import_from_py")
        _state["free"] = ro.r("pydlr:::.bridge_free")
        _state["with_gil"] = ro.r(_GUARDED_CALL)
    return _state["ro"]


_DROP_RETICULATE_WARNING = """
local({
  if (utils::packageVersion("reticulate") >= "1.25") {
    event <- packageEvent("reticulate", "onLoad")
    hooks <- Filter(function(h) !any(grepl("only fixed recently", deparse(h), fixed = TRUE)), getHook(event))
    setHook(event, NULL, "replace")
    for (h in hooks) setHook(event, h)
  }
})
"""

# fun(...) with Python's GIL held (see src/gil.c), R errors caught in R: uncaught, R printed each error on
# its console before rpy2 raised it again (every message twice). Returns list(TRUE, value) or
# list(FALSE, message, call).
_GUARDED_CALL = """
function(fun, ...) {
  pydlr:::.bridge_call_with_gil(function() tryCatch(list(TRUE, fun(...)), error = function(e) {
    call <- conditionCall(e)
    shown <- !is.null(call) && !identical(call, quote(fun(...)))  # fun(...): the wrapper, not the user's call
    list(FALSE, conditionMessage(e), if (shown) paste(deparse(call), collapse = " ") else "")
  }))
}
"""


def _run(fun: Any, *args: Any, **kwargs: Any) -> Any:
    """``fun(*args, **kwargs)`` in R (GIL held, namespace kept); an R error raises rpy2's RRuntimeError."""
    robjects()
    with _main_namespace_kept():
        res = _state["with_gil"](fun, *args, **kwargs)
    if not bool(res[0][0]):
        from rpy2.rinterface_lib.embedded import RRuntimeError

        message, where = str(res[1][0]), str(res[2][0])
        raise RRuntimeError(f"Error in {where} : {message}" if where else f"Error: {message}")
    return res[1]


@contextlib.contextmanager
def _main_namespace_kept() -> Iterator[None]:
    """Keep the user's ``__main__`` as it was while R runs.

    When R first attaches reticulate to this interpreter (R code calling Python), reticulate 1.28 defines
    ``class R`` in ``__main__``, then deletes ``__main__.R`` (a user's global ``R`` is gone) and adds an ``r``
    object for its own REPL unless ``r`` exists. The user's ``R`` is put back and reticulate's ``r`` removed.
    """
    main = vars(sys.modules["__main__"])
    saved_R, had_r = main.get("R", _MISSING), "r" in main
    try:
        yield
    finally:
        if saved_R is not _MISSING and main.get("R", _MISSING) is not saved_R:
            main["R"] = saved_R
        injected = main.get("r")
        if not had_r and type(injected).__name__ == "R" and type(injected).__module__ == "__main__":
            del main["r"]


_MISSING = object()


# Park signal for reticulate's event-loop thread (see _park_reticulate_poller): a real-time signal no library here
# uses.
_PARK_SIGNAL = signal.SIGRTMIN + 7
_SLEEP_SYSCALLS = {"35", "230"}  # nanosleep, clock_nanosleep (x86-64)


def _park_reticulate_poller() -> None:
    """Stop reticulate's event-loop thread from touching Python after the interpreter is gone (at exit).

    When R's reticulate attaches to this (already running) Python, it starts a thread that every 250 ms calls
    ``Py_AddPendingCall`` while Python keeps running its callbacks (reticulate 1.28, src/event_loop.cpp). Nothing
    stops that thread; once ``Py_FinalizeEx`` has deleted the interpreter, its next call dereferences a null
    interpreter and the process ends in SIGSEGV instead of its exit status (1 run in 10 of
    tests/test_bridge_mixed.py). At exit this parks every thread of the process sleeping in ``nanosleep`` (that
    thread spends all but microseconds of each period there; torch's OpenMP workers, BLAS and allocator threads
    wait on futexes) in a signal handler that is libc's ``pause`` with every signal blocked: it never returns
    and the process exits around it. Linux only; a no-op elsewhere or when nothing sleeps.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        tids = [t for t in os.listdir("/proc/self/task") if int(t) != threading.get_native_id()]
        sleeping = []
        for tid in tids:
            try:
                with open(f"/proc/self/task/{tid}/syscall") as f:
                    if f.read().split(" ", 1)[0] in _SLEEP_SYSCALLS:
                        sleeping.append(int(tid))
            except OSError:
                continue
        if not sleeping:
            return
        # struct sigaction (glibc, x86-64): handler, 128-byte mask, int flags (+ padding), restorer.
        buf = (ctypes.c_ubyte * 152)()
        ctypes.memmove(buf, ctypes.byref(ctypes.c_void_p(ctypes.cast(libc.pause, ctypes.c_void_p).value)), 8)
        ctypes.memset(ctypes.addressof(buf) + 8, 0xFF, 128)  # sa_mask: block everything while parked
        if libc.sigaction(int(_PARK_SIGNAL), buf, None) != 0:
            return
        for tid in sleeping:
            libc.syscall(234, os.getpid(), tid, int(_PARK_SIGNAL))  # tgkill
    except Exception:  # best effort at exit: never turn a clean exit into a traceback
        return


def to_r(obj: Any) -> Any:
    """A Python object as an R object (rpy2), through one copy.

    Parameters
    ----------
    obj
        A NumPy array, torch tensor, pyarrow Array/Table/RecordBatch or pandas DataFrame/Series.
        N-d arrays keep their dims in the same order (``obj[i, j]`` is R's ``x[i + 1, j + 1]``).

    Returns
    -------
    rpy2.robjects object
        An R vector, matrix/array or data.frame.
    """
    ro = robjects()
    schema, array = ArrowSchema(), ArrowArray()
    info = export_to_c(obj, ctypes.addressof(schema), ctypes.addressof(array))
    addresses = ro.FloatVector([float(ctypes.addressof(schema)), float(ctypes.addressof(array))])
    shape = ro.NULL if info["shape"] is None else ro.IntVector(info["shape"])
    try:
        return _run(_state["import"], addresses, shape, info["order"] == "C")
    finally:
        release_if_held(schema, array)  # R released them (on.exit) unless it never ran


def from_r(robj: Any, as_: str = "auto") -> Any:
    """An R object (rpy2) as Python data: a view of R's memory where the layout allows.

    Parameters
    ----------
    robj
        An R vector, matrix, array, data.frame or list (an rpy2 object).
    as_
        "auto": NumPy for numbers and logicals (a read-only view of R's memory with R's dims, F-order
        strides; integers/logicals with NA become float64 with NaN, a copy), pyarrow for everything else
        (a RecordBatch for a data.frame); "numpy", "arrow", "pandas" or "torch" to choose.

    Returns
    -------
    numpy.ndarray, pyarrow.Array/RecordBatch, pandas object, torch.Tensor, or for an R list a dict (all
    elements named) or a list, converted element by element as reticulate does: a length-1 vector without
    dims becomes a Python scalar, NULL None, an R function an `RFunction`, other R objects (environments,
    formulas, S4) stay rpy2 objects. R's NULL itself gives None.
    """
    if as_ not in ("auto", "numpy", "arrow", "pandas", "torch"):
        raise InputError("as_", "one of 'auto', 'numpy', 'arrow', 'pandas', 'torch'", as_, where=_WHERE)
    robjects()
    kind = _r_kind(robj)
    if kind == "null":
        return None
    if kind == "list":
        return _list_from_r(robj, as_)
    res = _run(_state["export"], robj)
    try:
        addresses = list(res.rx2("addresses"))
        batch = bool(res.rx2("batch")[0])
        data = import_from_c(addresses[0], addresses[1], batch=batch)
    finally:
        _run(_state["free"], res.rx2("shells"))
    shape = _r_shape(res.rx2("shape"))
    logical = bool(res.rx2("logical")[0])
    if as_ == "arrow" or (as_ == "auto" and not _is_numeric(data)):
        return data
    if as_ == "pandas":
        return data.to_pandas()
    if as_ == "torch":
        from pydlr.bridge.views import as_tensor

        return as_tensor(data, shape=shape, logical=logical)
    out = as_numpy(data, shape)
    return out != 0 if logical and out.dtype != np.float64 else out


def _r_kind(robj: Any) -> str:
    """"null", "list" (an R list that is not a data.frame), "data" (what the bridge exports), "function" or
    "other" (environments, formulas, S4 objects, ...)."""
    from rpy2.rinterface import RTYPES

    kind = getattr(robj, "typeof", None)
    if kind == RTYPES.NILSXP:
        return "null"
    if kind == RTYPES.VECSXP:
        return "data" if "data.frame" in tuple(robj.rclass) else "list"
    if kind in (RTYPES.REALSXP, RTYPES.INTSXP, RTYPES.LGLSXP, RTYPES.STRSXP, RTYPES.CPLXSXP, RTYPES.RAWSXP):
        return "data"
    if kind in (RTYPES.CLOSXP, RTYPES.BUILTINSXP, RTYPES.SPECIALSXP):
        return "function"
    return "other"


def _list_from_r(robj: Any, as_: str) -> dict[str, Any] | list[Any]:
    """An R list as a dict when every element has a distinct name, else as a list (see `from_r`)."""
    items = [_element_from_r(robj[i], as_) for i in range(len(robj))]
    names = [] if _r_kind(robj.names) == "null" else [str(n) for n in robj.names]
    if names and all(names) and len(set(names)) == len(names):
        return dict(zip(names, items, strict=True))
    return items


def _element_from_r(robj: Any, as_: str) -> Any:
    kind = _r_kind(robj)
    if kind == "function":
        return RFunction(robj)
    if kind == "other":
        return robj
    value = from_r(robj, as_)
    if kind == "data" and len(robj) == 1 and "dim" not in tuple(robj.list_attrs()) and as_ == "auto":
        if isinstance(value, np.ndarray):
            return value.reshape(-1)[0].item()
        if hasattr(value, "to_pylist"):
            return value.to_pylist()[0]
    return value


def _r_shape(shape: Any) -> Sequence[int] | None:
    if shape is None or shape is _state["ro"].NULL or len(shape) == 0:
        return None
    return [int(d) for d in shape]


def _is_numeric(data: Any) -> bool:
    import pyarrow as pa

    if isinstance(data, pa.RecordBatch):
        return False
    t = data.type
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


class RFunction:
    """An R function that runs with Python's GIL held, so it may call pydlr (or any Python) back through
    reticulate: rpy2 releases the GIL while R runs, and reticulate 1.28 expects to hold it."""

    def __init__(self, fun: Any):
        self.fun = fun

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _run(self.fun, *args, **kwargs)


# R code as the body of a function of no arguments, defined in R's global environment.
_AS_FUNCTION = 'function(code) eval(parse(text = paste0("function() {\\n", code, "\\n}")), globalenv())'


def r(code: str) -> Any:
    """Evaluate R code (with Python's GIL held); an R function comes back as an :class:`RFunction`, any
    other value as the rpy2 object (use :func:`from_r` for its data)."""
    ro = robjects()
    if not isinstance(code, str):
        raise InputError("code", "a string of R code", code, where=_WHERE)
    value = _run(_run(ro.r(_AS_FUNCTION), code))
    return RFunction(value) if isinstance(value, ro.Function) else value


def call(fun: str, *args: Any, **kwargs: Any) -> Any:
    """Call an R function by name on Python data: arguments go through :func:`to_r` (NumPy, torch,
    pyarrow, pandas) or rpy2's own conversion (scalars, strings), the result through :func:`from_r`
    (an R list, e.g. ``call("kmeans", x, centers=3)``, comes back as a dict)."""
    ro = robjects()
    if isinstance(fun, str):
        f = _run(ro.r("function(name) eval(parse(text = name), globalenv())"), fun)
    else:
        f = fun.fun if isinstance(fun, RFunction) else fun
    convert = _to_r_arg
    result = _run(f, *[convert(a) for a in args], **{k: convert(v) for k, v in kwargs.items()})
    return _element_from_r(result, "auto") if _r_kind(result) != "data" else from_r(result)


def _to_r_arg(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        ro = robjects()
        if value is None:
            return ro.NULL
        return {bool: ro.BoolVector, int: ro.IntVector, float: ro.FloatVector, str: ro.StrVector}[
            type(value)]([value])
    return to_r(value)


_KMEANS = """
function(x, k, nstart, iter_max, algorithm, seed) {
  if (!is.null(seed)) set.seed(seed)
  seconds <- system.time(
    fit <- stats::kmeans(x, k, iter.max = iter_max, nstart = nstart, algorithm = algorithm)
  )[["elapsed"]]
  list(cluster = fit$cluster, centers = fit$centers, inertia = fit$tot.withinss, n_iter = fit$iter,
       seconds = seconds, ifault = if (is.null(fit$ifault)) 0L else fit$ifault)
}
"""


def kmeans(x: Any, n_clusters: int, *, n_init: int = 1, max_iter: int = 100,
           algorithm: str = "Hartigan-Wong", seed: int | None = None) -> dict[str, Any]:
    """R's ``stats::kmeans`` on a NumPy matrix (the matrix crosses through the Arrow path, one copy).

    Parameters
    ----------
    x
        An (n, p) array of numbers (converted to float64).
    n_clusters
        R's ``centers``: the number of clusters k, or a (k, p) array of starting centers (then ``n_init``
        is ignored, as R does).
    n_init, max_iter, algorithm
        R's ``nstart``, ``iter.max`` and ``algorithm`` ("Hartigan-Wong", "Lloyd", "Forgy", "MacQueen").
    seed
        ``set.seed()`` before the run, for R's random starts.

    Returns
    -------
    dict
        ``labels`` (0-based int64, scikit-learn's convention), ``cluster_centers`` (k, p),
        ``inertia`` (R's tot.withinss), ``n_iter``, ``seconds`` (R's elapsed time for kmeans() alone),
        ``ifault`` (R's warning code; 0 when fine).
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError("x", "a 2-d (n, p) array", arr, where=_WHERE)
    if isinstance(n_clusters, np.ndarray):
        start = np.asarray(n_clusters, dtype=np.float64)
        if start.ndim != 2 or start.shape[1] != arr.shape[1] or not 1 <= start.shape[0] <= arr.shape[0]:
            raise InputError("n_clusters", f"a (k, {arr.shape[1]}) array of starting centers", start, where=_WHERE)
        centers = to_r(start)
    elif not isinstance(n_clusters, (int, np.integer)) or not 1 <= n_clusters <= arr.shape[0]:
        raise InputError("n_clusters", f"an integer between 1 and {arr.shape[0]}", n_clusters, where=_WHERE)
    else:
        centers = int(n_clusters)
    algorithms = ("Hartigan-Wong", "Lloyd", "Forgy", "MacQueen")
    if algorithm not in algorithms:
        raise InputError("algorithm", "one of " + ", ".join(algorithms), algorithm, where=_WHERE)
    ro = robjects()
    if "kmeans" not in _state:
        _state["kmeans"] = ro.r(_KMEANS)
    fit = _run(_state["kmeans"], to_r(arr), centers, int(n_init), int(max_iter), algorithm,
               ro.NULL if seed is None else int(seed))
    return {
        "labels": np.asarray(from_r(fit.rx2("cluster")), dtype=np.int64) - 1,
        "cluster_centers": np.array(from_r(fit.rx2("centers"))),
        "inertia": float(fit.rx2("inertia")[0]),
        "n_iter": int(fit.rx2("n_iter")[0]),
        "seconds": float(fit.rx2("seconds")[0]),
        "ifault": int(fit.rx2("ifault")[0]),
    }


def live_count(drain: bool = True) -> int:
    """R objects the bridge keeps alive for Python (0 once Python dropped every view)."""
    ro = robjects()
    return int(ro.r("pydlr:::.bridge_preserved")(drain)[0])


def data_address(robj: Any) -> int:
    """The address of an R vector's data (to prove zero-copy views)."""
    ro = robjects()
    return int(ro.r("pydlr:::.bridge_address")(robj)[0])


__all__ = ["RFunction", "call", "data_address", "from_r", "kmeans", "live_count", "r", "robjects", "to_r"]
