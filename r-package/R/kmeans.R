# k-means from R, computed by pydlr's torch KMeans (pydlr.cluster), with stats::kmeans-style results.

#' k-means clustering computed by pydlr (torch; CPU or GPU)
#'
#' Lloyd's algorithm with scikit-learn's greedy k-means++ seeding, computed in pydlr's Python core
#' (`pydlr.cluster.KMeans`). The data reach Python without a copy through pydlr's bridge. The result
#' has the components of [stats::kmeans()] (`cluster`, `centers`, `withinss`, ...), so code written
#' for `kmeans` objects keeps working, plus the time the fit took.
#'
#' @param x A numeric matrix (rows are observations) or a data.frame of numeric columns; an array of
#'   images (n, h, w) or (n, h, w, c) is flattened to one row per image. No `NA`.
#' @param centers The number of clusters `k`, or a k x `ncol(x)` matrix of starting centers.
#' @param n_init Number of k-means++ (or random) seedings; the best run (lowest inertia) is kept.
#' @param max_iter Maximum number of Lloyd iterations per run.
#' @param tol Convergence tolerance on the squared shift of the centers, relative to the data's mean
#'   variance (scikit-learn's rule).
#' @param init `"k-means++"` or `"random"` (ignored when `centers` is a matrix).
#' @param seed Integer seed for reproducible seedings, or `NULL`.
#' @param device `"auto"` (a CUDA GPU when present, else the CPU), `"cpu"` or `"cuda"`.
#' @param dtype `"float32"` (the default): R's doubles are converted once to single precision (a pass over
#'   the data: ~0.16 s for 60,000 x 784 on 2 cores), then every iteration reads half the bytes and runs twice
#'   as fast as in double precision; `"float64"`: computed in R's own double precision (the matrix is still
#'   copied once into row-major order).
#' @param batch_size `NULL` (Lloyd's algorithm on all rows), or a number of rows: mini-batch k-means
#'   (`pydlr.cluster.MiniBatchKMeans`, as scikit-learn's), for data too large for Lloyd's passes; then
#'   `max_iter` counts passes over the data, `tol = 0` disables the shift rule, and `cluster`,
#'   `withinss` come from one full pass with the final centers.
#' @param algorithm How Lloyd's iterations are computed (all give the same clusters, iteration by
#'   iteration): `"auto"` (the default: `"hamerly"` on the CPU, `"lloyd"` on a GPU), `"lloyd"` (every
#'   distance at every iteration) or `"hamerly"` (Hamerly's bounds: rows whose closest center cannot have
#'   changed are not read again; CPU only). Ignored with `batch_size`.
#' @return An object of class `pydlr_kmeans` (a list): `cluster` (integer, 1..k), `centers` (k x p
#'   matrix), `totss`, `withinss`, `tot.withinss`, `betweenss`, `size`, `iter`, `seconds`, `device`,
#'   and `model`, the fitted Python estimator (valid in this R session only).
#' @seealso [compare_models()], [predict.pydlr_kmeans()], [stats::kmeans()].
#' @family clustering
#' @examples
#' if (pydlr:::.python_ready()) {
#' x <- rbind(matrix(rnorm(200, 0), 100), matrix(rnorm(200, 5), 100))
#' km <- pydlr_kmeans(x, centers = 2, seed = 1)
#' km
#' summary(km)
#' predict(km, x[1:5, ])
#' }
#' @export
pydlr_kmeans <- function(x, centers, n_init = 1L, max_iter = 300L, tol = 1e-4,
                         init = c("k-means++", "random"), seed = NULL, device = "auto", batch_size = NULL,
                         dtype = c("float32", "float64"), algorithm = c("auto", "lloyd", "hamerly")) {
  # NA/NaN are found by Python's check, which reads the data in the pass that computes the rows' norms; anyNA
  # first would read it once more (35 ms of a 300 ms fit on 60,000 x 784). R's check runs only when Python
  # refuses the input, to say so in R's words.
  call <- sys.call()
  x <- .check_matrix(x, "x", check_na = FALSE)
  init <- .match_choice(init, "init")
  algorithm <- .match_choice(algorithm, "algorithm")
  centers <- .check_centers(centers, x)
  res <- .na_found_by_python(.py_call("api_r.cluster.kmeans", .bridge_array_to_py(x, "x"),
    n_clusters = if (is.matrix(centers)) nrow(centers) else centers,
    init = if (is.matrix(centers)) .bridge_array_to_py(centers, "centers") else init,
    n_init = .check_count(n_init, "n_init"), max_iter = .check_count(max_iter, "max_iter"),
    tol = .check_number(tol, "tol", lower = 0),
    random_state = .check_count(seed, "seed", min = 0L, null_ok = TRUE),
    device = .check_string(device, "device", c("auto", "cpu", "cuda")),
    batch_size = .check_count(batch_size, "batch_size", null_ok = TRUE),
    dtype = .check_string(if (identical(dtype, c("float32", "float64"))) "float32" else dtype, "dtype",
      c("float32", "float64")),
    algorithm = algorithm
  ), x, call = call, also = function(x, arg, call) {
    n_inf <- sum(is.infinite(x))
    if (n_inf) .input_error(arg, "finite values (no Inf)", I(sprintf("%d infinite values", n_inf)), call = call)
  })
  result <- .kmeans_result(res, x)
  .warn_empty_clusters(result$size, call)
  result
}

# stats::kmeans() stops on more centers than distinct rows; pydlr keeps scikit-learn's result (empty
# clusters, whose centers repeat another's) and says so, as scikit-learn does.
.warn_empty_clusters <- function(size, call) {
  empty <- sum(size == 0L)
  if (!empty) return(invisible())
  warning(warningCondition(sprintf(paste("%d of the %d clusters %s empty: `x` has fewer distinct rows than",
    "`centers` (duplicate rows?); fewer centers give a clustering without them"), empty, length(size),
    if (empty == 1L) "is" else "are"),
    class = "pydlr_warning", call = call))
}

# The stats::kmeans-like result from api_r.cluster.kmeans()'s fields (withinss and totss computed by
# Python: sum(x^2) in R took 0.37 s on 60k x 784).
.kmeans_result <- function(res, x) {
  centers <- res$centers
  dimnames(centers) <- list(seq_len(nrow(centers)), colnames(x))
  cluster <- as.integer(res$labels) + 1L
  names(cluster) <- rownames(x)
  withinss <- as.double(unlist(res$withinss))
  structure(list(
    cluster = cluster, centers = centers, totss = res$totss, withinss = withinss,
    tot.withinss = sum(withinss), betweenss = res$totss - sum(withinss),
    size = tabulate(cluster, nbins = nrow(centers)), iter = as.integer(res$n_iter), ifault = 0L,
    inertia = res$inertia, seconds = res$seconds, device = res$device, model = res$model
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
#' @examples
#' if (pydlr:::.python_ready()) {
#'   x <- rbind(matrix(rnorm(100, 0), 50), matrix(rnorm(100, 5), 50))
#'   km <- pydlr_kmeans(x, centers = 2, seed = 1)
#'   summary(km)
#' }
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
#' @param newdata Observations with the same variables as the training data; columns with names are
#'   matched by name (as [stats::predict.lm()]), so their order does not matter.
#' @param ... Unused.
#' @return An integer vector of clusters (1..k), the closest center of each row.
#' @family clustering
#' @export
#' @examples
#' if (pydlr:::.python_ready()) {
#'   x <- rbind(matrix(rnorm(100, 0), 50), matrix(rnorm(100, 5), 50))
#'   km <- pydlr_kmeans(x, centers = 2, seed = 1)
#'   predict(km, x[c(1, 100), ])
#' }
predict.pydlr_kmeans <- function(object, newdata, ...) {
  # by name, as predict.lm(): a data.frame with the columns in another order is the same data
  x <- .check_matrix(newdata, "newdata")
  columns <- .column_names(x)
  if (ncol(x) != ncol(object$centers) && (is.null(columns) || is.null(colnames(object$centers)))) {
    .input_error("newdata", sprintf("%d columns, as the training data", ncol(object$centers)),
      I(sprintf("%d columns", ncol(x))))
  }
  cluster <- as.integer(.py_call("api_r.cluster.predict", object$model, .bridge_array_to_py(x, "newdata"),
    column_names = columns, trained_column_names = colnames(object$centers))) + 1L
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
#' @examples
#' if (pydlr:::.python_ready()) {
#'   x <- rbind(matrix(rnorm(100, 0), 50), matrix(rnorm(100, 5), 50))
#'   km <- pydlr_kmeans(x, centers = 2, seed = 1)
#'   head(fitted(km, "classes"))
#' }
fitted.pydlr_kmeans <- function(object, method = c("centers", "classes"), ...) {
  method <- .match_choice(method, "method")
  if (method == "classes") return(object$cluster)
  object$centers[object$cluster, , drop = FALSE]
}

#' Compare clusterings (or classifiers) against the true classes
#'
#' Scores each method with the accuracy after the best one-to-one matching of clusters to classes
#' (Hungarian algorithm), the adjusted Rand index and the normalized mutual information (scikit-learn's),
#' computed by `pydlr.cluster.compare`. To run the methods as well, see [compare_methods()].
#'
#' @param ... Named results: `pydlr_kmeans` or `stats::kmeans` fits, vectors of labels (integer,
#'   factor or character), or lists with `labels` and `seconds`. Names become the `method` column.
#' @param y The true classes (a vector with one value per observation).
#' @return A data.frame with columns `method`, `accuracy`, `ARI`, `NMI` (normalized mutual information),
#'   `seconds` (`NA` where unknown).
#' @family clustering
#' @examples
#' if (pydlr:::.python_ready()) {
#' km <- pydlr_kmeans(iris[, 1:4], 3, seed = 1)
#' compare_models(pydlr = km, stats = kmeans(iris[, 1:4], 3), y = iris$Species)
#' }
#' @export
compare_models <- function(..., y) {
  results <- list(...)
  if (!length(results)) .input_error("...", "at least one named result", I("nothing"))
  if (is.null(names(results)) || any(!nzchar(names(results)))) {
    .input_error("...", "named results, e.g. compare_models(pydlr = km, y = y)", I("unnamed ones"))
  }
  if (missing(y) || is.null(y) || anyNA(y)) {
    .input_error("y", "the true classes without NA", if (missing(y)) I("nothing") else y)
  }
  call <- sys.call()
  entries <- lapply(names(results), function(name) .compare_entry(results[[name]], name, length(y), call))
  names(entries) <- names(results)
  columns <- .py_call("api_r.cluster.compare", entries, .label_codes(y))
  out <- data.frame(
    method = as.character(unlist(columns$method)), accuracy = as.double(unlist(columns$accuracy)),
    ARI = as.double(unlist(columns$ARI)), NMI = as.double(unlist(columns$NMI)),
    seconds = as.double(unlist(columns$seconds)),
    stringsAsFactors = FALSE
  )
  out$seconds[is.nan(out$seconds)] <- NA_real_ # Python's "unknown" (nan) as R's, printed NA as documented
  class(out) <- c("pydlr_model_comparison", class(out))
  out
}

#' Plot a comparison of models
#'
#' Accuracy (after matching clusters to classes) and adjusted Rand index per method, side by side: a
#' ggplot object when ggplot2 is installed (extend it with `+ theme_minimal()`), else a base-graphics
#' bar chart.
#'
#' @param x A result of [compare_models()].
#' @param y,... Unused.
#' @return A ggplot object, or `x` invisibly after drawing with base graphics.
#' @family clustering
#' @examples
#' if (pydlr:::.python_ready()) {
#'   km <- pydlr_kmeans(iris[, 1:4], 3, seed = 1)
#'   plot(compare_models(pydlr = km, stats = kmeans(iris[, 1:4], 3), y = iris$Species))
#' }
#' @export
plot.pydlr_model_comparison <- function(x, y, ...) {
  if (.use_ggplot()) return(.gg_comparison(x))
  scores <- rbind(accuracy = x$accuracy, ARI = x$ARI)
  colnames(scores) <- x$method
  graphics::barplot(scores, beside = TRUE, ylim = c(min(0, scores, na.rm = TRUE), 1), legend.text = TRUE,
    args.legend = list(x = "topright", bty = "n"), main = "Methods compared with the true classes")
  invisible(x)
}

# One method's labels (and seconds, when known) for pydlr.cluster.compare.
.compare_entry <- function(r, name, n, call) {
  labels <- if (inherits(r, "kmeans")) r$cluster else if (is.list(r)) r$labels else r
  if (is.null(labels) || length(labels) != n) {
    .input_error("...", sprintf("for `%s`, %d labels (one per element of y)", name, n),
      I(sprintf("%d labels", length(labels))), call = call)
  }
  entry <- list(labels = .label_codes(labels))
  if (is.list(r) && is.numeric(r$seconds)) entry$seconds <- as.double(r$seconds)
  entry
}

# Labels as integer codes (cheap to cross; names do not matter to the metrics), 1-d for the bridge.
.label_codes <- function(labels) {
  codes <- as.integer(factor(labels))
  dim(codes) <- length(codes)
  .bridge_array_to_py(codes, "y")
}

# `centers`: a number of clusters in 1..nrow(x), or a matrix of starting centers with x's columns.
.check_centers <- function(centers, x, call = sys.call(sys.parent())) {
  if (is.data.frame(centers)) centers <- as.matrix(centers)
  if (is.matrix(centers)) {
    if (!is.numeric(centers) || ncol(centers) != ncol(x) || anyNA(centers) || nrow(centers) > nrow(x)) {
      .input_error("centers", sprintf("a numeric matrix with %d columns (as x), at most %d rows, no NA",
        ncol(x), nrow(x)), centers, call = call)
    }
    storage.mode(centers) <- "double"
    return(centers)
  }
  k <- .check_count(centers, "centers", call = call)
  if (k > nrow(x)) {
    .input_error("centers", sprintf("a number of clusters between 1 and nrow(x) = %d, or a matrix", nrow(x)),
      centers, call = call)
  }
  k
}
