# The bridge: R data to Python (torch, NumPy, pyarrow) and back, through the Arrow C Data Interface
# implemented in src/ (no R arrow package needed). R validates here and writes the messages users see;
# C builds the Arrow structs; Python (pydlr.bridge) imports them with pyarrow and views them.

#' @useDynLib pydlr, .registration = TRUE
NULL

# Export modes and top-level shapes, as in src/bridge.h.
.bridge_mode <- c(arrow = 0L, tensor = 1L)
.bridge_top <- c(vector = 0L, data_frame = 1L, matrix_columns = 2L)

# ---- validation: every message names the column (or argument) and its R type ----------------------

.bridge_type <- function(x) {
  if (is.data.frame(x)) return("data.frame")
  if (is.factor(x)) return("factor")
  cls <- class(x)
  if (is.object(x)) return(sprintf("%s (class %s)", typeof(x), paste(cls, collapse = "/")))
  typeof(x)
}

.bridge_fail <- function(what, problem, advice, call) {
  pydlr_abort(sprintf("%s %s; %s", what, problem, advice), class = "pydlr_input_error", call = call)
}

.bridge_supported <- "the bridge converts double, integer, logical, factor, character, Date and POSIXct data"

# Checks one atomic column (or a whole vector/matrix/array) for `mode`; `what` is e.g. "column `a`".
.bridge_check_column <- function(x, what, mode, in_frame, call) {
  if (is.data.frame(x)) {
    .bridge_fail(what, "is a nested data.frame", "flatten it into plain columns first", call)
  }
  if (is.list(x)) {
    .bridge_fail(what, sprintf("is a list (R type '%s')", typeof(x)),
      paste0(.bridge_supported, "; unlist it or turn it into columns first"), call)
  }
  if (in_frame && !is.null(dim(x))) {
    .bridge_fail(what, sprintf("is a matrix column (%s, dim c(%s))", typeof(x), paste(dim(x), collapse = ", ")),
      "split it into plain columns first", call)
  }
  type <- typeof(x)
  if (type %in% c("complex", "raw")) {
    .bridge_fail(what, sprintf("has R type '%s', which has no Arrow or torch equivalent here", type),
      paste0(.bridge_supported, "; convert it first (e.g. Re(), Mod(), as.integer())"), call)
  }
  if (!type %in% c("double", "integer", "logical", "character")) {
    .bridge_fail(what, sprintf("has R type '%s'", type), .bridge_supported, call)
  }
  is_time <- inherits(x, c("Date", "POSIXct"))
  if (is.object(x) && !is.factor(x) && !is_time) {
    .bridge_fail(what, sprintf("has class '%s', which the bridge does not convert", paste(class(x), collapse = "/")),
      "use unclass() or as.numeric() for its numbers", call)
  }
  if (is.factor(x) && !is.character(levels(x))) {
    .bridge_fail(what, "is a factor without character levels", "rebuild it with factor()", call)
  }
  if (is.factor(x)) .bridge_check_codes(x, what, call)
  if (is_time) .bridge_check_time_range(x, what, call)
  if (mode == "tensor") .bridge_check_tensor(x, what, type, is_time, call)
  invisible(TRUE)
}

# A factor's codes must index its levels (a factor built with structure() or edited with attr<- may not).
.bridge_check_codes <- function(x, what, call) {
  codes <- unclass(x)
  bad <- which(!is.na(codes) & (codes < 1L | codes > nlevels(x)))
  if (length(bad)) {
    .bridge_fail(what, sprintf("is a factor whose code %d at position %d is outside its %d levels",
      codes[bad[1]], bad[1], nlevels(x)), "rebuild it with factor()", call)
  }
}

# Arrow stores Dates as int32 days and POSIXct as int64 microseconds: Inf and values beyond those have no
# Arrow equivalent (NA and NaN are missing values).
.bridge_check_time_range <- function(x, what, call) {
  v <- unclass(x)
  limit <- if (inherits(x, "Date")) 2147483647 else 9.2e12
  bad <- which(!is.na(v) & abs(v) > limit)
  if (length(bad)) {
    .bridge_fail(what, sprintf("has %s %s at position %d, outside the range Arrow can store (%s)",
      if (inherits(x, "Date")) "the Date" else "the POSIXct", format(v[bad[1]]), bad[1],
      if (inherits(x, "Date")) "int32 days" else "int64 microseconds"), "set such values to NA first", call)
  }
}

.bridge_check_tensor <- function(x, what, type, is_time, call) {
  if (type == "character" || is_time) {
    .bridge_fail(what, sprintf("has R type %s, which cannot become a torch tensor", .bridge_type(x)),
      "use as_arrow_py() for it, or convert it to numbers (as.numeric(), factor codes)", call)
  }
  # A double NA is a NaN in memory and crosses as it is; integers have no NA in torch.
  if (type != "double" && anyNA(x)) {
    .bridge_fail(what, sprintf("(R type %s) has NA at position %d", .bridge_type(x), which(is.na(x))[1]),
      "torch's integer tensors have no NA: use as.double() (NA becomes NaN) or remove them", call)
  }
}

.bridge_check <- function(x, mode, arg, call) {
  if (inherits(x, "python.builtin.object")) {
    .bridge_fail(sprintf("`%s`", arg), "is already a Python object", "pass R data (or use from_py())", call)
  }
  if (is.data.frame(x)) {
    n <- .row_names_info(x, 2L)
    for (j in seq_along(x)) {
      what <- sprintf("column `%s`", .bridge_or(names(x)[j], as.character(j)))
      .bridge_check_column(x[[j]], what, mode, in_frame = TRUE, call = call)
      if (length(x[[j]]) != n) {
        .bridge_fail(what, sprintf("has %d rows but the data.frame %d (a ragged data.frame)", length(x[[j]]), n),
          "give every column the same length", call)
      }
    }
    return(invisible(TRUE))
  }
  if (is.list(x)) .bridge_check_list(x, arg, call)
  if (is.null(x)) .bridge_fail(sprintf("`%s`", arg), "is NULL", "pass a vector, matrix, array or data.frame", call)
  .bridge_check_column(x, sprintf("`%s`", arg), mode, in_frame = FALSE, call = call)
}

.bridge_check_list <- function(x, arg, call) {
  lengths <- lengths(x)
  atomic <- vapply(x, is.atomic, logical(1))
  if (length(x) > 1 && all(atomic) && length(unique(lengths)) > 1) {
    .bridge_fail(sprintf("`%s`", arg),
      sprintf("is a list of %d vectors of different lengths (%s): a ragged array", length(x),
        paste(utils::head(lengths, 6), collapse = ", ")),
      "pad the vectors to one length, or pass them one at a time", call)
  }
  .bridge_fail(sprintf("`%s`", arg), sprintf("is a list (R type '%s') of length %d", typeof(x), length(x)),
    paste0(.bridge_supported, " in vectors, matrices, arrays or data.frames; use as.data.frame() ",
      "or simplify2array() first"), call)
}

# `a`, unless it is NULL or one NA/empty string.
.bridge_or <- function(a, b) if (is.null(a) || (length(a) == 1 && (is.na(a) || !nzchar(a)))) b else a

# ---- export (R -> Python) ---------------------------------------------------------------------------

# Builds the Arrow structs for x; returns list(shells, addresses, batch, dim, logical).
.bridge_export <- function(x, mode, matrix_columns = FALSE) {
  d <- dim(x)
  if (is.data.frame(x)) {
    top <- "data_frame"
    names <- names(x)
    nrow <- .row_names_info(x, 2L)
  } else if (matrix_columns && length(d) == 2L) {
    top <- "matrix_columns"
    names <- .bridge_or(colnames(x), paste0("V", seq_len(d[2])))
    nrow <- d[1]
  } else {
    top <- "vector"
    names <- NULL
    nrow <- length(x)
  }
  ex <- .Call(C_bridge_export, x, .bridge_mode[[mode]], .bridge_top[[top]], as.double(nrow), names)
  list(
    shells = ex[[1]], addresses = ex[[2]], batch = top != "vector",
    dim = if (top == "vector" && length(d) >= 1L) as.list(as.integer(d)) else NULL,
    logical = is.logical(x)
  )
}

# The R arrow package converts its own Tables through its reticulate methods (also the Arrow C Data
# Interface, zero-copy). pydlr does not depend on arrow: an arrow object exists only when arrow's
# namespace is loaded, and then its r_to_py() methods are registered.
.bridge_is_r_arrow <- function(x) {
  inherits(x, c("ArrowTabular", "Array", "ChunkedArray")) && inherits(x, "ArrowObject") &&
    isNamespaceLoaded("arrow")
}

#' An R vector, matrix, array or data.frame as a torch tensor, without a copy where the layout allows
#'
#' The tensor views R's own memory when `x` is double, or integer/logical without `NA` (the address is
#' the same as R's: no copy, constant time at any size). R keeps `x` alive while Python holds the tensor.
#' **Do not modify the tensor in place**: it would change R's vector. Use `$clone()` for a private copy.
#'
#' Conversions: doubles become float64 (`NA` becomes `NaN`), integers int32, logicals bool (a copy),
#' factors 0-based int32 codes (a copy). A numeric data.frame becomes an (n, p) tensor (a copy).
#' Character, Date and POSIXct data, integers with `NA`, lists, complex and raw vectors are refused with
#' an error naming the column and its type (see [as_arrow_py()] for tables with such columns).
#'
#' @section Dimensions and images:
#' The tensor has R's dims in R's order: `x[i, j, k]` is `t[i-1, j-1, k-1]`. R is column-major, so an R
#' array of dim `c(n, h, w, c)` is, in memory, a C-order array of shape `(c, w, h, n)`: the tensor is that
#' memory viewed with strides `(1, n, n*h, n*h*w)` (elements), shape `(n, h, w, c)`, without a copy. This
#' is keras' channels-last image layout (NHWC), pydlr's public convention; `t$permute(c(0L, 3L, 1L, 2L))`
#' is the NCHW view that torch's convolutions take (they copy such strided input internally).
#' `layout` says how a 4-d image array is ordered and always yields an NHWC tensor (still a view):
#' `"nhwc"` (the default for keras-style arrays: samples first), `"hwcn"` (height x width x channels x
#' samples, as images stacked with `abind`/`simplify2array`), `"nchw"` (torch's order).
#' `contiguous = TRUE` copies into a C-contiguous NHWC tensor, whose NCHW permutation is torch's
#' channels-last memory format (the fast path for convolutions on CPU).
#'
#' @param x A double, integer or logical vector, matrix or array, a factor, or a numeric data.frame.
#'   With the R `arrow` package installed, also an arrow Table, RecordBatch or Array.
#' @param dtype `NULL` (keep the type) or a torch dtype name such as `"float32"` (a copy).
#' @param layout `NULL`, or for a 4-d image array one of `"nhwc"`, `"hwcn"`, `"nchw"` (see above).
#' @param contiguous Copy into a C-contiguous tensor (`TRUE`), or keep the strided view (`FALSE`).
#' @return A Python `torch.Tensor` (a reticulate object).
#' @examples
#' if (pydlr:::.python_ready()) {
#' x <- matrix(as.double(1:6), 2, 3)
#' t <- to_torch(x) # shape (2, 3), the same memory as x
#' t$sum(0L)
#' imgs <- array(runif(2 * 28 * 28), c(2, 28, 28, 1)) # n x h x w x c, as keras
#' nchw <- to_torch(imgs, layout = "nhwc")$permute(c(0L, 3L, 1L, 2L))
#' }
#' @seealso [from_py()], [as_arrow_py()]
#' @export
to_torch <- function(x, dtype = NULL, layout = NULL, contiguous = FALSE) {
  call <- sys.call()
  if (!is.null(dtype) && !(is.character(dtype) && length(dtype) == 1L && !is.na(dtype))) {
    .input_error("dtype", "NULL or one torch dtype name such as \"float32\"", dtype, call = call)
  }
  layouts <- c("nhwc", "hwcn", "nchw")
  if (!is.null(layout)) {
    if (!(is.character(layout) && length(layout) == 1L && layout %in% layouts)) {
      .input_error("layout", "NULL or one of \"nhwc\", \"hwcn\", \"nchw\"", layout, call = call)
    }
    if (length(dim(x)) != 4L) .input_error("layout", "used with a 4-d image array only", I(.describe(x)), call = call)
  }
  if (!(isTRUE(contiguous) || isFALSE(contiguous))) {
    .input_error("contiguous", "TRUE or FALSE", contiguous, call = call)
  }
  if (.bridge_is_r_arrow(x)) {
    return(.py_call("bridge.arrow_to_tensor", reticulate::r_to_py(x), dtype = dtype, .convert = FALSE, .call = call))
  }
  .bridge_check(x, "tensor", "x", call)
  ex <- .bridge_export(x, "tensor")
  on.exit(.Call(C_bridge_free_shells, ex$shells), add = TRUE)
  # positional: schema, array, shape, batch, layout, dtype, contiguous, logical
  .py_call("bridge.tensor_from_r", ex$addresses[1], ex$addresses[2], ex$dim, ex$batch, layout, dtype,
    contiguous, ex$logical, .convert = FALSE, .call = call)
}

#' An R vector or data.frame as a pyarrow Array or RecordBatch
#'
#' Faithful Arrow types: doubles (`"g"`, R's memory, `NA` a null through a validity bitmap; `NaN` stays
#' a value), integers (`"i"`, R's memory), logicals (booleans, packed in bits: a copy), factors
#' (dictionary of int32 codes and the levels; ordered factors keep their order flag), character (UTF-8
#' strings, a copy), Date (`date32`), POSIXct (`timestamp[us]` with its time zone, or UTC when the
#' zone is the session's: a copy, since Arrow counts integer microseconds where R has double seconds).
#' A data.frame becomes a RecordBatch; a matrix a RecordBatch of its columns (zero-copy; they are
#' contiguous in R). For arrays of more dimensions use [to_torch()].
#'
#' @param x A vector, factor, matrix or data.frame (with the R `arrow` package installed, also an arrow
#'   Table or Array, converted by arrow itself).
#' @return A Python `pyarrow.Array` or `pyarrow.RecordBatch` (reticulate object); `$to_pandas()` gives
#'   pandas.
#' @examples
#' if (pydlr:::.python_ready()) {
#' df <- data.frame(x = c(1.5, NA), g = factor(c("a", "b")), s = c("b", NA))
#' batch <- as_arrow_py(df)
#' batch$schema
#' }
#' @seealso [from_py()], [to_torch()]
#' @export
as_arrow_py <- function(x) {
  call <- sys.call()
  if (.bridge_is_r_arrow(x)) return(reticulate::r_to_py(x))
  if (length(dim(x)) > 2L && !is.data.frame(x)) {
    .input_error("x", "a vector, matrix or data.frame (use to_torch() for arrays)", x, call = call)
  }
  .bridge_check(x, "arrow", "x", call)
  ex <- .bridge_export(x, "arrow", matrix_columns = TRUE)
  on.exit(.Call(C_bridge_free_shells, ex$shells), add = TRUE)
  .py_call("bridge.arrow_from_r", ex$addresses[1], ex$addresses[2], ex$batch, .convert = FALSE, .call = call)
}

#' A Python array or table as an R vector, array or data.frame (one copy)
#'
#' Python exports `obj` through the Arrow C Data Interface and C copies it once into a fresh R vector:
#' torch tensors (detached; moved to the CPU first if needed) and NumPy arrays become R vectors, or arrays
#' with the same dims in the same order (`obj[i, j]` is `x[i + 1, j + 1]`; a C-order array is transposed
#' during that one copy); pyarrow Arrays, ChunkedArrays, Tables and RecordBatches and pandas DataFrames
#' and Series become vectors and data.frames with `NA` for nulls, factors for dictionaries (pandas
#' categoricals), Date and POSIXct for dates and timestamps. float32 and small integers widen to R's double
#' and integer; int64 and uint32/64 become double (exact up to 2^53); an int32 equal to R's `NA` value
#' (-2^31) makes the column double.
#'
#' @param obj A Python object (reticulate), e.g. the result of a pydlr computation.
#' @return An R vector, matrix, array or data.frame.
#' @examples
#' if (pydlr:::.python_ready()) {
#' x <- matrix(as.double(1:6), 2, 3)
#' from_py(to_torch(x)$mul(2)) # a 2 x 3 matrix
#' }
#' @seealso [to_torch()], [as_arrow_py()]
#' @export
from_py <- function(obj) {
  call <- sys.call()
  if (!inherits(obj, "python.builtin.object")) {
    .input_error("obj", "a Python object (torch tensor, NumPy array, pyarrow or pandas data)", obj, call = call)
  }
  .bridge_from_py(obj, call = call)
}

# ---- internal helpers used by the rest of the package and by pydlr.r (Python through rpy2) ----------

#' A Python object to R (internal form of from_py())
#' @keywords internal
#' @noRd
.bridge_from_py <- function(obj, call = sys.call(-1L)) {
  shells <- .Call(C_bridge_new_shells)
  on.exit(.Call(C_bridge_free_shells, shells[[1]]), add = TRUE)
  # c(batch, C order, dims...) as one small R-convertible list
  info <- unlist(.py_call("bridge.export_to_c_for_r", obj, shells[[2]][1], shells[[2]][2], .call = call))
  shape <- if (length(info) > 2L) as.integer(info[-(1:2)]) else NULL
  .Call(C_bridge_import, shells[[2]], shape, info[2] == 1)
}

#' Numeric R data as a read-only NumPy view for fit()/predict() (zero-copy where the layout allows)
#'
#' A double or NA-free integer/logical vector, matrix or array becomes a NumPy array of R's dims that
#' views R's memory (F-order strides); factors become 0-based int32 codes, numeric data.frames an (n, p)
#' array (copies). R keeps `x` alive while Python holds the view.
#' @param x R data, checked by the caller.
#' @param arg The argument name for messages.
#' @keywords internal
#' @noRd
.bridge_array_to_py <- function(x, arg = "x", call = sys.call(-1L)) {
  .bridge_check(x, "tensor", arg, call)
  ex <- .bridge_export(x, "tensor")
  on.exit(.Call(C_bridge_free_shells, ex$shells), add = TRUE)
  .py_call("bridge.numpy_from_r", ex$addresses[1], ex$addresses[2], ex$dim, ex$batch, ex$logical, .convert = FALSE, .call = call)
}

#' For pydlr.r (rpy2): export x and return its addresses; Python imports them with pyarrow.
#' NA-free numbers go as plain tensors (zero-copy NumPy views); everything else as faithful Arrow.
#' @keywords internal
#' @noRd
.bridge_export_for_py <- function(x) {
  call <- sys.call()
  numeric <- (is.double(x) && !is.object(x)) ||
    ((is.integer(x) || is.logical(x)) && !is.object(x) && !anyNA(x))
  mode <- if (numeric && !is.data.frame(x)) "tensor" else "arrow"
  if (mode == "arrow" && length(dim(x)) > 2L) {
    .input_error("x", "a vector, matrix, array of numbers, or a data.frame", x, call = call)
  }
  .bridge_check(x, mode, "x", call)
  ex <- .bridge_export(x, mode, matrix_columns = mode == "arrow")
  list(shells = ex$shells, addresses = ex$addresses, batch = ex$batch,
    shape = if (is.null(ex$dim)) NULL else unlist(ex$dim), logical = ex$logical)
}

#' For pydlr.r (rpy2): import the structs Python filled at `addresses`, then release them.
#' @keywords internal
#' @noRd
.bridge_import_from_py <- function(addresses, shape, c_order) {
  on.exit(.Call(C_bridge_release_at, addresses), add = TRUE)
  .Call(C_bridge_import, addresses, if (is.null(shape)) NULL else as.integer(shape), isTRUE(c_order))
}

#' For pydlr.r (rpy2): call `fun(...)` with Python's GIL held (see src/gil.c: rpy2 releases it while R
#' runs; R code that calls Python through reticulate needs it).
#' @keywords internal
#' @noRd
.bridge_call_with_gil <- function(fun, ...) {
  .Call(C_bridge_with_gil, function() fun(...), environment())
}

# Frees the export shells (after Python moved their contents).
.bridge_free <- function(shells) invisible(.Call(C_bridge_free_shells, shells))

#' Counts of R objects kept alive for Python: `live` (queued ones included) and `pending` (released by
#' another thread, waiting for R's main thread). `drain = TRUE` releases the pending ones first.
#' @keywords internal
#' @noRd
.bridge_preserved <- function(drain = TRUE) {
  out <- .Call(C_bridge_preserved, drain)
  c(live = out[1], pending = out[2])
}

# The address of an R vector's data (for zero-copy tests).
.bridge_address <- function(x) .Call(C_bridge_data_address, x)
