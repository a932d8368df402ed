# The training history: an S3 object with keras3's fields ($params, $metrics), a data.frame view and a
# plot of the training curves (ggplot2 when installed, base graphics otherwise).

.new_history <- function(result) {
  metrics <- lapply(result$metrics, function(v) as.numeric(unlist(v)))
  structure(
    list(params = result$params, metrics = metrics, epoch = as.integer(unlist(result$epoch))),
    class = "pydlr_history"
  )
}

#' @export
#' @md
print.pydlr_history <- function(x, ...) {
  n <- length(x$epoch)
  cat(sprintf("Training history: %d epoch%s\n", n, if (n == 1L) "" else "s"))
  if (n > 0L) {
    last <- vapply(x$metrics, function(v) v[length(v)], numeric(1))
    cat("Final epoch (plot to see history):\n")
    cat(paste0(formatC(names(last), width = max(nchar(names(last)))), ": ", signif(last, 4), collapse = "\n"), "\n")
  }
  invisible(x)
}

#' The training history as a data.frame
#'
#' @param x A `pydlr_history` returned by [fit()].
#' @param row.names,optional Unused (for the generic).
#' @param format `"wide"` (default): one row per epoch, columns `epoch`, `loss`, the metrics and their
#'   `val_` counterparts. `"long"`: keras3's layout, columns `epoch`, `value`, `metric`, `data`
#'   (`"training"` / `"validation"`).
#' @param ... Unused.
#' @return A data.frame.
#' @family training
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
#'   set.seed(1)
#'   x <- array(runif(60 * 8 * 8), c(60, 8, 8, 1))
#'   y <- sample(0:2, 60, replace = TRUE)
#'   history <- fit(model, x, y, epochs = 2, batch_size = 16, verbose = 0)
#'   head(as.data.frame(history))
#'   head(as.data.frame(history, format = "long"))
#' }
as.data.frame.pydlr_history <- function(x, row.names = NULL, optional = FALSE, ..., format = c("wide", "long")) {
  format <- .match_choice(format, "format")
  wide <- data.frame(epoch = x$epoch, x$metrics, check.names = FALSE)
  if (format == "wide") return(wide)
  names <- names(x$metrics)
  is_val <- startsWith(names, "val_")
  rows <- lapply(seq_along(names), function(i) {
    data.frame(
      epoch = x$epoch, value = x$metrics[[i]],
      metric = if (is_val[i]) substring(names[i], 5L) else names[i],
      data = if (is_val[i]) "validation" else "training", stringsAsFactors = FALSE
    )
  })
  long <- do.call(rbind, rows)
  long$metric <- factor(long$metric, levels = unique(long$metric))
  long$data <- factor(long$data, levels = c("training", "validation"))
  long
}

#' Plot training curves
#'
#' One panel per metric (loss, accuracy, ...), training and validation curves by epoch. With ggplot2
#' installed (and unless `options(pydlr.plot_engine = "base")`), a ggplot object, as keras3 returns:
#' extend it (`plot(history) + ggplot2::theme_minimal()`); it draws when printed. Otherwise base graphics,
#' drawn at once. Give `file` to write a PNG instead.
#'
#' @param x A `pydlr_history` returned by [fit()].
#' @param y Unused.
#' @param metrics Metric names to plot (default: all, without the `val_` prefix).
#' @param file Path of a PNG file to write, or `NULL` to draw on the current device.
#' @param width,height Size of the PNG in pixels.
#' @param ... Passed to [graphics::plot()].
#' @return A ggplot object, or (base graphics) `x` invisibly; the path of the PNG when `file` is given.
#' @family training
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
#'   set.seed(1)
#'   x <- array(runif(60 * 8 * 8), c(60, 8, 8, 1))
#'   y <- sample(0:2, 60, replace = TRUE)
#'   history <- fit(model, x, y, epochs = 2, batch_size = 16, verbose = 0)
#'   plot(history)
#' }
plot.pydlr_history <- function(x, y, metrics = NULL, file = NULL, width = 900, height = 450, ...) {
  names <- names(x$metrics)
  if (is.null(metrics)) metrics <- unique(sub("^val_", "", names))
  unknown <- setdiff(metrics, names)
  if (length(unknown) > 0L) {
    .input_error("metrics", sprintf("names among %s", paste(names, collapse = ", ")), unknown)
  }
  if (.use_ggplot()) {
    p <- .gg_history(x, metrics)
    if (is.null(file)) return(p)
    dir.create(dirname(file), showWarnings = FALSE, recursive = TRUE)
    ggplot2::ggsave(file, p, width = width / 100, height = height / 100, dpi = 100)
    return(invisible(file))
  }
  if (!is.null(file)) {
    dir.create(dirname(file), showWarnings = FALSE, recursive = TRUE)
    grDevices::png(file, width = width, height = height)
    on.exit(grDevices::dev.off(), add = TRUE)
  }
  old <- graphics::par(mfrow = c(1L, length(metrics)), mar = c(4, 4, 2, 1))
  on.exit(graphics::par(old), add = TRUE, after = FALSE)
  for (m in metrics) .plot_metric(x, m, ...)
  invisible(if (is.null(file)) x else file)
}

.plot_metric <- function(history, metric, ...) {
  train <- history$metrics[[metric]]
  val <- history$metrics[[paste0("val_", metric)]]
  ylim <- range(c(train, val), finite = TRUE)
  graphics::plot(history$epoch, train, type = "b", pch = 19, col = "#1f77b4", ylim = ylim,
    xlab = "epoch", ylab = metric, main = metric, xaxt = "n", ...)
  graphics::axis(1, at = history$epoch)
  if (!is.null(val)) graphics::lines(history$epoch, val, type = "b", pch = 17, col = "#ff7f0e")
  labels <- c("training", if (!is.null(val)) "validation")
  rising <- length(train) > 1L && train[length(train)] > train[1]
  graphics::legend(if (rising) "bottomright" else "topright",
    legend = labels, col = c("#1f77b4", "#ff7f0e")[seq_along(labels)],
    pch = c(19, 17)[seq_along(labels)], lty = 1, bty = "n")
}
