# Deep learning or not? compare_methods() and compare_kmeans(): R's side of pydlr.compare.compare_methods and
# pydlr.cluster.compare_kmeans (Python computes; R checks arguments, runs stats::kmeans itself, formats).

#' Deep learning or not? k-means, classic classifiers and a CNN on the same images
#'
#' Runs, on one labelled image set, k-means on the raw pixels and on embeddings, logistic regression and
#' a random forest (scikit-learn's) on the pixels and on the embeddings, and a CNN (the seed CNN by
#' default), and scores each on held-out images. Supervised methods learn from the training images; k-means
#' learns without labels and its clusters are matched one-to-one to the classes (Hungarian method) for its
#' accuracy. Computed by `pydlr.compare.compare_methods`.
#'
#' @param x Images: an array (n, height, width) or (n, height, width, channels); pixels 0-255 in an
#'   integer array are scaled to 0-1. No `NA`, `NaN` or `Inf`.
#' @param y The classes of `x`: a factor, character or numeric vector, one per image.
#' @param x_test,y_test Held-out images and their classes; without them a stratified `test_size` share of
#'   `x` is held out.
#' @param methods A subset of `"kmeans_pixels"`, `"kmeans_embedding"`, `"logistic_pixels"`,
#'   `"logistic_embedding"`, `"forest_pixels"`, `"forest_embedding"`, `"cnn"` (default: all).
#' @param model A `pydlr_model` to train for the CNN row (default: the seed CNN with one output per class;
#'   an uncompiled model is compiled with Adam and cross-entropy on logits).
#' @param embedding Where the embedding rows' features come from: `NULL`, the CNN trained here (the input
#'   of its last layer), or a `pydlr_model` (e.g. a pretrained one), whose features `embed_images()` gives.
#' @param epochs,batch_size The CNN's training; `epochs = 0` uses the given `model` as it is (trained
#'   before: its `train_seconds` is `NA`).
#' @param time_budget Seconds each method may spend training (`NULL`: no limit); each method keeps what it
#'   reached when the budget is spent.
#' @param n_clusters k for k-means (default: the number of classes).
#' @param test_size Share of `x` held out when `x_test` is not given.
#' @param seed Seed of the split, k-means, the forest and the CNN.
#' @param device `"cpu"`, `"cuda"` or `"auto"`: where k-means and the CNN compute.
#' @param n_estimators Trees of the random forest.
#' @return A data.frame of class `pydlr_comparison` with columns `method`, `kind` (`"unsupervised"`,
#'   `"supervised"`, `"deep"`), `accuracy`, `ARI`, `NMI`, `train_seconds`, `predict_seconds`, `size_mb`, and
#'   attribute `verdict` (one line in plain words, printed after the table). [plot()] draws the test images'
#'   embeddings in 2-D, coloured by class and by k-means cluster.
#' @family clustering
#' @seealso [compare_kmeans()], [pydlr_kmeans()], [compare_models()].
#' @examples
#' if (pydlr:::.python_ready()) {
#'   mnist <- dataset_mnist()
#'   res <- compare_methods(mnist$train$x[1:400, , ], mnist$train$y[1:400], epochs = 1,
#'     methods = c("kmeans_pixels", "logistic_pixels", "cnn"))
#'   res
#'   plot(res, features = "pixels")
#' }
#' @export
compare_methods <- function(x, y, x_test = NULL, y_test = NULL, methods = NULL, model = NULL, embedding = NULL,
                            epochs = 1L, batch_size = 64L, time_budget = NULL, n_clusters = NULL,
                            test_size = 0.25, seed = 1L, device = "cpu", n_estimators = 100L) {
  x <- .check_images(x, "x")
  codes <- .check_classes(y, dim(x)[1L], "y", "x", y_test)
  if (is.null(x_test) != is.null(y_test)) {
    .input_error(if (is.null(y_test)) "y_test" else "x_test",
      "given together with x_test and y_test", I("only one of them"))
  }
  if (!is.null(x_test)) {
    x_test <- .check_images(x_test, "x_test")
    if (!identical(dim(x_test)[-1L], dim(x)[-1L])) {
      .input_error("x_test", sprintf("images of dim %s, as x", paste(dim(x)[-1L], collapse = " x ")), x_test)
    }
    .check_classes(y_test, dim(x_test)[1L], "y_test", "x_test")
  }
  if (!is.null(time_budget)) .check_number(time_budget, "time_budget", lower = .Machine$double.eps)
  if (!is.null(methods) && (!is.character(methods) || !length(methods))) {
    .input_error("methods", "a character vector of method names", methods)
  }
  if (!is.null(model) && !is_pydlr_model(model)) .input_error("model", "NULL or a pydlr model", model)
  if (!is.null(embedding) && !is_pydlr_model(embedding)) .input_error("embedding", "NULL or a pydlr model", embedding)
  res <- .py_call("api_r.cluster.compare_methods", .bridge_array_to_py(x, "x"), codes$train,
    if (!is.null(x_test)) .bridge_array_to_py(x_test, "x_test"), codes$test,
    model = if (!is.null(model)) model$py, embedding = if (!is.null(embedding)) embedding$py,
    methods = if (!is.null(methods)) as.list(methods),
    epochs = .check_count(epochs, "epochs", min = 0L), batch_size = .check_count(batch_size, "batch_size"),
    time_budget = time_budget, n_clusters = .check_count(n_clusters, "n_clusters", null_ok = TRUE),
    test_size = .check_number(test_size, "test_size", lower = 0, upper = 1),
    random_state = .check_count(seed, "seed", min = 0L), device = .check_string(device, "device",
      c("auto", "cpu", "cuda")), n_estimators = .check_count(n_estimators, "n_estimators"),
    .convert = FALSE
  )
  table <- reticulate::py_to_r(reticulate::py_get_item(res, "table"))
  out <- data.frame(lapply(table, function(col) unlist(col)), stringsAsFactors = FALSE)
  out$train_seconds[is.nan(out$train_seconds)] <- NA_real_
  structure(out, class = c("pydlr_comparison", "data.frame"),
    verdict = reticulate::py_to_r(reticulate::py_get_item(res, "verdict")),
    result = reticulate::py_get_item(res, "result"), levels = codes$levels)
}

# Images for compare_methods: a numeric array (n, h, w[, c]), finite, non-empty.
.check_images <- function(x, arg, call = sys.call(sys.parent())) {
  if (!is.numeric(x) || is.object(x) || !length(dim(x)) %in% c(3L, 4L)) {
    .input_error(arg, "a numeric array of images (n, height, width[, channels])", x, call = call)
  }
  if (any(dim(x) == 0L)) .input_error(arg, "a non-empty array of images", x, call = call)
  bad <- !is.finite(x)
  if (any(bad)) {
    rows <- which(apply(bad, 1L, any))
    .input_error(arg, "finite pixel values (no NA, NaN or Inf)",
      I(sprintf("%d image(s) with NA, NaN or Inf, the first x[%d, , ]", length(rows), rows[1L])), call = call)
  }
  x
}

# Classes as 1-d integer arrays for the bridge; the test classes coded with the training classes' levels.
.check_classes <- function(y, n, arg, x_arg, y_test = NULL, call = sys.call(sys.parent())) {
  if (is.null(y) || !is.null(dim(y)) && length(dim(y)) > 1L || is.list(y)) {
    .input_error(arg, sprintf("a vector of classes, one per image of %s", x_arg), y, call = call)
  }
  if (length(y) != n) {
    .input_error(arg, sprintf("%d classes (one per image of %s)", n, x_arg), I(sprintf("%d", length(y))),
      call = call)
  }
  if (anyNA(y)) .input_error(arg, "classes without NA", I(sprintf("%d NA", sum(is.na(y)))), call = call)
  levels <- levels(factor(c(as.character(y), as.character(y_test))))
  code <- function(v) {
    out <- match(as.character(v), levels) - 1L
    dim(out) <- length(out)
    .bridge_array_to_py(out, arg)
  }
  list(train = code(y), test = if (!is.null(y_test)) code(y_test), levels = levels)
}

#' @export
print.pydlr_comparison <- function(x, digits = 3, ...) {
  print(as.data.frame(unclass(x), stringsAsFactors = FALSE)[names(x)], digits = digits, row.names = FALSE)
  cat(attr(x, "verdict"), "\n", sep = "")
  invisible(x)
}

#' Plot a method comparison: the test images' embeddings in 2-D
#'
#' @param x A `pydlr_comparison` from [compare_methods()].
#' @param features `"embedding"` (needs an embedding row or the CNN) or `"pixels"`.
#' @param projection `"pca"` or `"tsne"` (scikit-learn's t-SNE; slower).
#' @param max_points At most this many test images (a fixed random subset).
#' @param ... Unused.
#' @return A ggplot2 object (two facets: coloured by class and by k-means cluster) when ggplot2 is
#'   installed, else the data.frame of points, invisibly, after drawing them with base graphics.
#' @family clustering
#' @export
plot.pydlr_comparison <- function(x, features = c("embedding", "pixels"), projection = c("pca", "tsne"),
                                  max_points = 2000L, ...) {
  features <- .match_choice(features, "features")
  projection <- .match_choice(projection, "projection")
  p <- .py_call("api_r.cluster.projection", attr(x, "result"), features, projection,
    .check_count(max_points, "max_points", min = 10L))
  lv <- attr(x, "levels")
  cls <- factor(lv[unlist(p$class) + 1L], levels = lv)
  cl <- if (is.null(p$cluster)) rep(NA_integer_, length(cls)) else unlist(p$cluster) + 1L
  # one legend for both panels: its entries say which panel they belong to ("class 3", "cluster 3": a
  # cluster's number is no class), classes in their levels' order, clusters by number (not 1, 10, 2)
  k <- if (all(is.na(cl))) 0L else max(cl, na.rm = TRUE)
  groups <- c(paste("class", lv), paste("cluster", seq_len(k)))
  points <- rbind(
    data.frame(x = unlist(p$x), y = unlist(p$y), group = factor(paste("class", cls), groups), colour = "by class"),
    data.frame(x = unlist(p$x), y = unlist(p$y), group = factor(ifelse(is.na(cl), NA, paste("cluster", cl)), groups),
               colour = "by k-means cluster")
  )
  title <- sprintf("Test images, %s (%s)", features, if (projection == "pca") "PCA" else "t-SNE")
  if (requireNamespace("ggplot2", quietly = TRUE)) {
    return(ggplot2::ggplot(points, ggplot2::aes(x = x, y = y, colour = group)) +
      ggplot2::geom_point(size = 0.8, alpha = 0.8) + ggplot2::facet_wrap(~colour) +
      ggplot2::labs(title = title, x = NULL, y = NULL, colour = NULL))
  }
  old <- graphics::par(mfrow = c(1L, 2L))
  on.exit(graphics::par(old))
  for (panel in c("by class", "by k-means cluster")) {
    d <- points[points$colour == panel, ]
    graphics::plot(d$x, d$y, col = as.integer(droplevels(d$group)), pch = 20, cex = 0.5, xlab = "", ylab = "",
      main = paste(title, panel, sep = "\n"))
  }
  invisible(points)
}

#' k-means by pydlr, scikit-learn and R's stats::kmeans on the same data and starting centers
#'
#' Draws `n_init` sets of starting centers once (scikit-learn's k-means++ or random rows); pydlr's KMeans,
#' scikit-learn's KMeans (Lloyd) and [stats::kmeans()] (Hartigan-Wong and Lloyd, run by this R session)
#' each start from every set and keep their best run. The drawing is not timed.
#'
#' @param x A numeric matrix or data.frame of numeric columns (one row per observation); no `NA`/`Inf`.
#' @param k Number of clusters, between 1 and the number of distinct rows.
#' @param y Optional true classes: adds the `ARI` and `NMI` columns (scikit-learn's).
#' @param init `"k-means++"` or `"random"`.
#' @param n_init Number of starting sets.
#' @param max_iter Iteration limit of every method (`iter.max` for R).
#' @param seed Seed of the starting centers.
#' @param methods A subset of `"pydlr"`, `"scikit-learn"`, `"R Hartigan-Wong"`, `"R Lloyd"`.
#' @param device pydlr's device.
#' @return A data.frame with `method`, `seconds`, `iterations` (of the kept run), `inertia` (total
#'   within-cluster sum of squares), `ARI`, `NMI` (`NA` without `y`).
#' @family clustering
#' @examples
#' if (pydlr:::.python_ready()) {
#'   compare_kmeans(as.matrix(iris[, 1:4]), 3, y = iris$Species)
#' }
#' @export
compare_kmeans <- function(x, k, y = NULL, init = c("k-means++", "random"), n_init = 1L, max_iter = 100L,
                           seed = 1L, methods = c("pydlr", "scikit-learn", "R Hartigan-Wong", "R Lloyd"),
                           device = "cpu") {
  x <- .check_matrix(x, "x")
  if (any(!is.finite(x))) .input_error("x", "finite values (no Inf)", I(sprintf("%d Inf", sum(!is.finite(x)))))
  storage.mode(x) <- "double"
  init <- .match_choice(init, "init")
  methods <- .match_choice(methods, "methods", several_ok = TRUE)
  k <- .check_count(k, "k")
  distinct <- nrow(unique(x))
  if (k > distinct) .input_error("k", sprintf("at most the number of distinct rows of x (%d)", distinct), k)
  if (!is.null(y) && (length(y) != nrow(x) || anyNA(y))) {
    .input_error("y", sprintf("%d classes without NA (one per row of x)", nrow(x)), y)
  }
  n_init <- .check_count(n_init, "n_init")
  max_iter <- .check_count(max_iter, "max_iter")
  px <- .bridge_array_to_py(x, "x")
  starts <- .py_call("api_r.cluster.kmeans_starts", px, k, init, n_init, .check_count(seed, "seed", min = 0L),
    .convert = FALSE)
  codes <- if (!is.null(y)) .label_codes(y)
  py_methods <- intersect(methods, c("pydlr", "scikit-learn"))
  rows <- list()
  if (length(py_methods)) {
    cols <- .py_call("api_r.cluster.compare_kmeans", px, k, codes, methods = as.list(py_methods), init = starts,
      max_iter = max_iter, device = .check_string(device, "device", c("auto", "cpu", "cuda")))
    rows[[1L]] <- data.frame(lapply(cols, function(col) unlist(col)), stringsAsFactors = FALSE)
  }
  r_starts <- lapply(seq_len(n_init) - 1L, function(i) .bridge_from_py(reticulate::py_get_item(starts, i)))
  for (m in setdiff(methods, py_methods)) rows[[length(rows) + 1L]] <- .stats_kmeans_row(x, r_starts, m, max_iter, codes)
  out <- do.call(rbind, rows)
  out <- out[match(methods, out$method), ]
  out$ARI[is.nan(out$ARI)] <- NA_real_
  out$NMI[is.nan(out$NMI)] <- NA_real_
  rownames(out) <- NULL
  out
}

# stats::kmeans from each starting set (R's own timing); the lowest tot.withinss is kept.
.stats_kmeans_row <- function(x, starts, method, max_iter, codes) {
  algorithm <- sub("^R ", "", method)
  seconds <- 0
  best <- NULL
  for (s in starts) {
    seconds <- seconds + system.time(
      fit <- suppressWarnings(stats::kmeans(x, s, iter.max = max_iter, algorithm = algorithm))
    )[["elapsed"]]
    if (is.null(best) || fit$tot.withinss < best$tot.withinss) best <- fit
  }
  scores <- if (is.null(codes)) list(ARI = NA_real_, NMI = NA_real_) else {
    labels <- best$cluster
    dim(labels) <- length(labels)
    .py_call("api_r.cluster.scores", codes, .bridge_array_to_py(labels, "labels"))
  }
  data.frame(method = method, seconds = seconds, iterations = as.integer(best$iter), inertia = best$tot.withinss,
    ARI = as.double(scores$ARI), NMI = as.double(scores$NMI), stringsAsFactors = FALSE)
}

utils::globalVariables("group") # a column of plot.pydlr_comparison's data, named in ggplot2::aes()
