# k-means from R, computed by pydlr's torch KMeans (pydlr.cluster), with stats::kmeans-style results.

#' k-means clustering computed by pydlr (torch; CPU or GPU)
#'
#' Lloyd's algorithm with scikit-learn's greedy k-means++ seeding, computed in pydlr's Python core
#' (`pydlr.cluster.KMeans`). The data reach Python without a copy through pydlr's bridge. The result
#' has the components of [stats::kmeans()] (`cluster`, `centers`, `withinss`, ...), so code written
#' for `kmeans` objects keeps working, plus the time the fit took.
#'
#' @param x A numeric matrix (rows are observations) or a data.frame of numeric columns; an array of
#'   images (n, h, w[, c]) is flattened to one row per image. No `NA`.
#' @param centers The number of clusters `k`, or a k x `ncol(x)` matrix of starting centers.
#' @param n_init Number of k-means++ (or random) seedings; the best run (lowest inertia) is kept.
#' @param max_iter Maximum number of Lloyd iterations per run.
#' @param tol Convergence tolerance on the squared shift of the centers, relative to the data's mean
#'   variance (scikit-learn's rule).
#' @param init `"k-means++"` or `"random"` (ignored when `centers` is a matrix).
#' @param seed Integer seed for reproducible seedings, or `NULL`.
#' @param device `"auto"` (a CUDA GPU when present, else the CPU), `"cpu"` or `"cuda"`.
#' @return An object of class `pydlr_kmeans` (a list): `cluster` (integer, 1..k), `centers` (k x p
#'   matrix), `totss`, `withinss`, `tot.withinss`, `betweenss`, `size`, `iter`, `seconds`, `device`,
#'   and `model`, the fitted Python estimator (valid in this R session only).
#' @seealso [compare_models()], [predict.pydlr_kmeans()], [stats::kmeans()].
#' @family clustering
#' @examples
#' \dontrun{
#' x <- rbind(matrix(rnorm(200, 0), 100), matrix(rnorm(200, 5), 100))
#' km <- pydlr_kmeans(x, centers = 2, seed = 1)
#' km
#' summary(km)
#' predict(km, x[1:5, ])
#' }
#' @export
pydlr_kmeans <- function(x, centers, n_init = 1L, max_iter = 300L, tol = 1e-4,
                         init = c("k-means++", "random"), seed = NULL, device = "auto") {
  call <- sys.call()
  x <- .kmeans_matrix(x, "x", call)
  init <- match.arg(init)
  k_or_centers <- .kmeans_centers(centers, x, call)
  .kmeans_count(n_init, "n_init", call)
  .kmeans_count(max_iter, "max_iter", call)
  if (!is.numeric(tol) || length(tol) != 1L || is.na(tol) || tol < 0) {
    .kmeans_fail("tol", "a single number >= 0", tol, call)
  }
  if (!is.null(seed)) .kmeans_count(seed, "seed", call, minimum = 0)
  if (!is.character(device) || length(device) != 1L) .kmeans_fail("device", '"auto", "cpu" or "cuda"', device, call)

  model <- .kmeans_module()$KMeans(
    n_clusters = if (is.matrix(k_or_centers)) nrow(k_or_centers) else k_or_centers,
    init = if (is.matrix(k_or_centers)) .bridge_array_to_py(k_or_centers, "centers", call) else init,
    n_init = as.integer(n_init), max_iter = as.integer(max_iter), tol = as.double(tol),
    random_state = if (is.null(seed)) NULL else as.integer(seed), device = device
  )
  x_py <- .bridge_array_to_py(x, "x", call)
  started <- proc.time()[["elapsed"]]
  .kmeans_py(model$fit(x_py), call)
  seconds <- proc.time()[["elapsed"]] - started
  .kmeans_result(model, x, seconds, totss = .kmeans_py(
    reticulate::py_to_r(.kmeans_module()$total_sum_of_squares(x_py)), call
  ))
}

# Builds the stats::kmeans-like result from the fitted Python model.
.kmeans_result <- function(model, x, seconds, totss) {
  centers <- reticulate::py_to_r(model$cluster_centers_)
  colnames(centers) <- colnames(x)
  rownames(centers) <- seq_len(nrow(centers))
  cluster <- as.integer(reticulate::py_to_r(model$labels_)) + 1L
  names(cluster) <- rownames(x)
  k <- nrow(centers)
  withinss <- as.double(reticulate::py_to_r(model$withinss_)) # computed by Python at fit time
  # totss comes from Python (torch over R's memory, multi-threaded): sum(x^2) here took 0.37 s on 60k x 784.
  structure(list(
    cluster = cluster, centers = centers, totss = totss, withinss = withinss,
    tot.withinss = sum(withinss), betweenss = totss - sum(withinss),
    size = tabulate(cluster, nbins = k), iter = as.integer(reticulate::py_to_r(model$n_iter_)),
    ifault = 0L, inertia = as.double(reticulate::py_to_r(model$inertia_)), seconds = seconds,
    device = reticulate::py_to_r(model$device_), model = model
  ), class = c("pydlr_kmeans", "kmeans"))
}

#' @export
print.pydlr_kmeans <- function(x, ...) {
  cat(sprintf(
    "k-means clustering (pydlr, %s) with %d clusters of sizes %s\n", x$device, length(x$size),
    paste(x$size, collapse = ", ")
  ))
  cat(sprintf(
    "Within-cluster sum of squares / total: %.1f %%; %d iterations; %.2f s\n",
    100 * x$tot.withinss / x$totss, x$iter, x$seconds
  ))
  cat("Cluster sizes and within-cluster sum of squares:\n")
  print(data.frame(cluster = seq_along(x$size), size = x$size, withinss = x$withinss), row.names = FALSE)
  cat("Components: cluster, centers, totss, withinss, tot.withinss, betweenss, size, iter, seconds, model\n")
  invisible(x)
}

#' Summary of a pydlr k-means fit
#'
#' @param object A `pydlr_kmeans` fit.
#' @param ... Unused.
#' @return An object of class `summary.pydlr_kmeans`: a list with `clusters` (data.frame of cluster, size,
#'   withinss, share of the within sum of squares), `k`, `n`, `p`, `tot.withinss`, `betweenss`, `totss`,
#'   `ratio` (between / total), `iter`, `seconds`, `device`.
#' @family clustering
#' @export
summary.pydlr_kmeans <- function(object, ...) {
  clusters <- data.frame(
    cluster = seq_along(object$size), size = object$size, withinss = object$withinss,
    share = object$withinss / object$tot.withinss
  )
  structure(list(
    clusters = clusters, k = length(object$size), n = length(object$cluster), p = ncol(object$centers),
    tot.withinss = object$tot.withinss, betweenss = object$betweenss, totss = object$totss,
    ratio = object$betweenss / object$totss, iter = object$iter, seconds = object$seconds,
    device = object$device
  ), class = "summary.pydlr_kmeans")
}

#' @export
print.summary.pydlr_kmeans <- function(x, ...) {
  cat(sprintf("pydlr k-means: %d observations, %d variables, %d clusters (%s)\n", x$n, x$p, x$k, x$device))
  cat(sprintf(
    "between_SS / total_SS = %.1f %%; %d iterations in %.2f s\n\n", 100 * x$ratio, x$iter, x$seconds
  ))
  print(x$clusters, row.names = FALSE, digits = 4)
  invisible(x)
}

#' Assign new observations to the clusters of a pydlr k-means fit
#'
#' @param object A `pydlr_kmeans` fit.
#' @param newdata Observations with the same variables as the training data.
#' @param ... Unused.
#' @return An integer vector of clusters (1..k), the closest center of each row.
#' @family clustering
#' @export
predict.pydlr_kmeans <- function(object, newdata, ...) {
  call <- sys.call()
  x <- .kmeans_matrix(newdata, "newdata", call)
  if (ncol(x) != ncol(object$centers)) {
    .kmeans_fail("newdata", sprintf("%d columns, as the training data", ncol(object$centers)),
      sprintf("%d columns", ncol(x)), call, describe = FALSE)
  }
  labels <- .kmeans_py(object$model$predict(.bridge_array_to_py(x, "newdata", call)), call)
  cluster <- as.integer(reticulate::py_to_r(labels)) + 1L
  names(cluster) <- rownames(x)
  cluster
}

#' Fitted values of a pydlr k-means fit
#'
#' @param object A `pydlr_kmeans` fit.
#' @param method `"centers"`: each observation's cluster center (a matrix); `"classes"`: its cluster.
#' @param ... Unused.
#' @return As [stats::fitted.kmeans()].
#' @family clustering
#' @importFrom stats fitted
#' @export
fitted.pydlr_kmeans <- function(object, method = c("centers", "classes"), ...) {
  method <- match.arg(method)
  if (method == "classes") return(object$cluster)
  object$centers[object$cluster, , drop = FALSE]
}

#' Compare clusterings (or classifiers) against the true classes
#'
#' Scores each method with the accuracy after the best one-to-one matching of clusters to classes
#' (Hungarian algorithm) and the adjusted Rand index, computed by `pydlr.cluster.compare`.
#'
#' @param ... Named results: `pydlr_kmeans` or `stats::kmeans` fits, vectors of labels (integer,
#'   factor or character), or lists with `labels` and `seconds`. Names become the `method` column.
#' @param y The true classes (a vector with one value per observation).
#' @return A data.frame with columns `method`, `accuracy`, `ARI`, `seconds` (`NA` where unknown).
#' @family clustering
#' @examples
#' \dontrun{
#' km <- pydlr_kmeans(iris[, 1:4], 3, seed = 1)
#' compare_models(pydlr = km, stats = kmeans(iris[, 1:4], 3), y = iris$Species)
#' }
#' @export
compare_models <- function(..., y) {
  call <- sys.call()
  results <- list(...)
  if (!length(results)) .kmeans_fail("...", "at least one named result", "nothing", call, describe = FALSE)
  if (is.null(names(results)) || any(!nzchar(names(results)))) {
    .kmeans_fail("...", "named results, e.g. compare_models(pydlr = km, y = y)", "unnamed ones", call,
      describe = FALSE)
  }
  if (missing(y) || is.null(y) || anyNA(y)) .kmeans_fail("y", "the true classes without NA", if (missing(y)) "nothing" else y, call)
  truth <- .kmeans_labels(y)
  entries <- lapply(names(results), function(name) {
    r <- results[[name]]
    labels <- if (inherits(r, "kmeans")) r$cluster else if (is.list(r)) r$labels else r
    seconds <- if (is.list(r) && is.numeric(r$seconds)) r$seconds else NULL
    if (is.null(labels) || length(labels) != length(y)) {
      .kmeans_fail("...", sprintf("for `%s`, %d labels (one per element of y)", name, length(y)),
        sprintf("%d labels", length(labels)), call, describe = FALSE)
    }
    entry <- list(labels = .kmeans_labels(labels))
    if (!is.null(seconds)) entry$seconds <- as.double(seconds)
    entry
  })
  names(entries) <- names(results)
  table <- .kmeans_py(.kmeans_module()$compare(entries, y_true = truth), call)
  columns <- reticulate::py_to_r(table$to_dict("list"))
  data.frame(
    method = as.character(unlist(columns$method)), accuracy = as.double(unlist(columns$accuracy)),
    ARI = as.double(unlist(columns$ARI)), seconds = as.double(unlist(columns$seconds)),
    stringsAsFactors = FALSE
  )
}

# ---- helpers -------------------------------------------------------------------------------------

# pydlr.cluster without conversion: R decides what comes back and how.
.kmeans_module <- function() {
  .pydlr_py()
  reticulate::import("pydlr.cluster", convert = FALSE, delay_load = FALSE)
}

# Labels as integer codes in a NumPy array (cheap to cross; names do not matter to the metrics).
.kmeans_labels <- function(labels) {
  reticulate::np_array(as.integer(factor(labels)), dtype = "int64")
}

.kmeans_py <- function(expr, call) tryCatch(expr, error = function(e) .signal_python_error(e, call))

.kmeans_fail <- function(argument, expected, received, call, describe = TRUE) {
  got <- if (describe) .kmeans_describe(received) else received
  pydlr_abort(sprintf("`%s` must be %s; received %s.", argument, expected, got),
    class = "pydlr_input_error", call = call, argument = argument, expected = expected
  )
}

.kmeans_describe <- function(x) {
  if (is.null(x)) return("NULL")
  d <- dim(x)
  shape <- if (is.null(d)) sprintf("length %d", length(x)) else sprintf("dim c(%s)", paste(d, collapse = ", "))
  sprintf("%s of %s", if (is.data.frame(x)) "a data.frame" else paste("a", typeof(x), "value"), shape)
}

.kmeans_count <- function(value, argument, call, minimum = 1) {
  if (!is.numeric(value) || length(value) != 1L || is.na(value) || value != round(value) || value < minimum) {
    .kmeans_fail(argument, sprintf("a single whole number >= %d", minimum), value, call)
  }
}

# A numeric matrix from a matrix, a data.frame of numeric columns, or an array of images.
.kmeans_matrix <- function(x, argument, call) {
  if (is.data.frame(x)) {
    numeric <- vapply(x, function(col) is.numeric(col) && is.null(dim(col)), TRUE)
    if (!all(numeric)) {
      .kmeans_fail(argument, "a data.frame of numeric columns",
        sprintf("non-numeric column(s) %s", paste0("`", names(x)[!numeric], "`", collapse = ", ")),
        call, describe = FALSE)
    }
    x <- as.matrix(x)
  } else if (is.array(x) && length(dim(x)) > 2L && is.numeric(x)) {
    x <- matrix(x, nrow = dim(x)[1L]) # (n, h, w, c) -> (n, h*w*c), R's column-major order
  }
  if (!is.matrix(x) || !is.numeric(x)) {
    .kmeans_fail(argument, "a numeric matrix or a data.frame of numeric columns", x, call)
  }
  if (nrow(x) == 0L || ncol(x) == 0L) .kmeans_fail(argument, "a non-empty matrix", x, call)
  if (anyNA(x)) .kmeans_fail(argument, "free of NA (remove or impute them first)", "NA values", call, describe = FALSE)
  x
}

.kmeans_centers <- function(centers, x, call) {
  if (is.data.frame(centers)) centers <- as.matrix(centers)
  if (is.matrix(centers)) {
    if (!is.numeric(centers) || ncol(centers) != ncol(x) || anyNA(centers) || nrow(centers) > nrow(x)) {
      .kmeans_fail("centers", sprintf("a numeric matrix with %d columns (as x), at most %d rows, no NA",
        ncol(x), nrow(x)), centers, call)
    }
    storage.mode(centers) <- "double"
    return(centers)
  }
  if (!is.numeric(centers) || length(centers) != 1L || is.na(centers) || centers != round(centers) ||
      centers < 1 || centers > nrow(x)) {
    .kmeans_fail("centers", sprintf("a whole number of clusters between 1 and nrow(x) = %d, or a matrix",
      nrow(x)), centers, call)
  }
  as.integer(centers)
}
