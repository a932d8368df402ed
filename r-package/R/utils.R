# keras3 utilities used by most scripts: one-hot encoding and row-major reshaping.

#' Convert class labels to a one-hot matrix
#'
#' @param x Integer class labels `0, 1, ..., num_classes - 1` (a vector, a factor or a one-column array).
#' @param num_classes Number of classes; default `max(x) + 1`.
#' @return A numeric matrix with one row per label and `num_classes` columns, 1 in column `x[i] + 1`.
#' @family utilities
#' @examples
#' to_categorical(c(0, 2, 1), 3)
#' @export
#' @md
to_categorical <- function(x, num_classes = NULL) {
  if (is.factor(x)) x <- as.integer(x) - 1L
  if (!is.null(dim(x)) && !(length(dim(x)) == 1L || (length(dim(x)) == 2L && dim(x)[2] == 1L))) {
    .input_error("x", "a vector of class labels", x)
  }
  x <- as.vector(x)
  ok <- is.numeric(x) && !anyNA(x) && all(x == round(x)) && all(x >= 0)
  if (!ok) .input_error("x", "whole-number class labels >= 0 without NA", x)
  if (is.null(num_classes)) num_classes <- if (length(x) > 0L) max(x) + 1 else 0
  num_classes <- .check_count(num_classes, "num_classes", min = 0L)
  if (length(x) > 0L && max(x) >= num_classes) {
    .input_error("x", sprintf("labels below num_classes (%d)", num_classes), I(sprintf("a label %s", format(max(x)))))
  }
  out <- matrix(0, nrow = length(x), ncol = num_classes)
  out[cbind(seq_along(x), as.integer(x) + 1L)] <- 1
  out
}

#' Reshape an array in row-major (C) order, as keras does
#'
#' R's `dim<-` fills column-major; NumPy and keras fill row-major. `array_reshape()` gives keras'
#' result, so `array_reshape(x, c(nrow(x), 784))` flattens each 28 x 28 image row by row, as in keras
#' scripts.
#'
#' @param x An array, matrix or vector.
#' @param dim The new dimensions; one of them may be `-1` (inferred).
#' @param order `"C"` (row-major, default) or `"F"` (column-major, R's own order).
#' @return An array with dimensions `dim`.
#' @family utilities
#' @examples
#' array_reshape(1:6, c(2, 3)) # rows 1 2 3 / 4 5 6
#' @export
#' @md
array_reshape <- function(x, dim, order = c("C", "F")) {
  order <- .match_choice(order, "order")
  if (!is.numeric(x) && !is.logical(x)) .input_error("x", "a numeric array", x)
  dim <- .reshape_dim(dim, length(x))
  if (order == "F") {
    base::dim(x) <- dim
    return(x)
  }
  # Row-major: read x in row-major order (its dims reversed, column-major) and fill reversed dims.
  d <- base::dim(x)
  if (!is.null(d) && length(d) > 1L) x <- aperm(x, rev(seq_along(d)))
  out <- array(as.vector(x), dim = rev(dim))
  if (length(dim) > 1L) out <- aperm(out, rev(seq_along(dim)))
  out
}

.reshape_dim <- function(dim, n, call = sys.call(sys.parent())) {
  ok <- is.numeric(dim) && length(dim) >= 1L && !anyNA(dim) && all(dim == round(dim)) &&
    all(dim >= 1 | dim == -1) && sum(dim == -1) <= 1L
  if (!ok) .input_error("dim", "whole numbers >= 1, at most one of them -1", dim, call = call)
  dim <- as.integer(dim)
  if (any(dim == -1L)) {
    known <- prod(dim[dim != -1L])
    if (known == 0 || n %% known != 0) {
      .input_error("dim", sprintf("dimensions that divide %d elements", n), dim, call = call)
    }
    dim[dim == -1L] <- as.integer(n %/% known)
  }
  if (prod(as.numeric(dim)) != n) {
    .input_error("dim", sprintf("dimensions whose product is length(x) = %d", n), dim, call = call)
  }
  dim
}

#' Make runs reproducible
#'
#' Seeds R's generator and those of pydlr's Python core (Python, NumPy, torch), as keras3's
#' `set_random_seed()`: weight initialisation and, when `fit()` gets no `seed`, its shuffling and dropout
#' become reproducible.
#'
#' @param seed A whole number >= 0.
#' @return `NULL`, invisibly.
#' @family utilities
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready()) {
#'   set_random_seed(42)
#'   runif(1)
#' }
set_random_seed <- function(seed) {
  seed <- .check_count(seed, "seed", min = 0L)
  set.seed(seed)
  .py_call("api_r.config.set_random_seed", seed)
  invisible(NULL)
}
