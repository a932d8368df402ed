# The live training view, as keras3's view_metrics: a self-contained HTML page (inline SVG, no script, no
# network) rewritten after every epoch with the loss and metric curves, which reloads itself while
# training runs. It is shown in RStudio's Viewer or a browser only in an interactive session, never in
# scripts or knitr. report() writes the same page, static, for a finished run.

# Whether fit() keeps a page: TRUE always (shown only when interactive), "auto" in an interactive session
# outside knitr with more than one epoch, FALSE never.
.view_metrics_wanted <- function(view_metrics, epochs) {
  if (isFALSE(view_metrics)) return(FALSE)
  if (isTRUE(view_metrics)) return(TRUE)
  .can_show_viewer() && epochs > 1L
}

.can_show_viewer <- function() interactive() && !isTRUE(getOption("knitr.in.progress"))

# A callback_lambda() that rewrites the page after each epoch, and its path. The folder is
# options(pydlr.view_metrics_dir) or a temporary one.
.metrics_viewer <- function(epochs, initial_epoch) {
  dir <- getOption("pydlr.view_metrics_dir", tempfile("pydlr-metrics-"))
  dir.create(dir, showWarnings = FALSE, recursive = TRUE)
  path <- file.path(dir, "index.html")
  state <- new.env(parent = emptyenv())
  state$metrics <- list()
  state$shown <- FALSE
  on_epoch_end <- function(epoch, logs) {
    for (name in names(logs)) state$metrics[[name]] <- c(state$metrics[[name]], as.numeric(logs[[name]]))
    writeLines(.metrics_page(state$metrics, first_epoch = initial_epoch, epochs = epochs, running = TRUE), path)
    if (!state$shown && .can_show_viewer()) {
      .show_page(path)
      state$shown <- TRUE
    }
  }
  finish <- function() {
    if (length(state$metrics)) {
      writeLines(.metrics_page(state$metrics, first_epoch = initial_epoch, epochs = epochs, running = FALSE), path)
    }
  }
  list(callback = callback_lambda(on_epoch_end = on_epoch_end), path = path, finish = finish)
}

# RStudio's Viewer when there is one, else the browser.
.show_page <- function(path) {
  viewer <- getOption("viewer")
  if (is.function(viewer)) viewer(path) else utils::browseURL(path)
}

#' A static HTML report of a finished training run
#'
#' The training curves (the page `fit(view_metrics = TRUE)` shows live), the model's summary, its
#' first-layer filters (for a convolutional model) and, when `x` and `y` are given, the confusion matrix
#' on them. Self-contained: one HTML file with inline SVG.
#'
#' @param history A `pydlr_history` from [fit()].
#' @param model The trained `pydlr_model` (for its summary and predictions), or `NULL`.
#' @param x,y Data to show the confusion matrix on (e.g. the test set), or `NULL`.
#' @param file Where to write the page.
#' @return The path of the page, invisibly.
#' @family training
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = "softmax")
#'   compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
#'   x <- matrix(runif(80), 20)
#'   y <- rep(0:1, 10)
#'   history <- fit(model, x, y, epochs = 2, verbose = 0)
#'   report(history, model, x, y, file = tempfile(fileext = ".html"))
#' }
#' @export
#' @md
report <- function(history, model = NULL, x = NULL, y = NULL, file = "pydlr-report.html") {
  if (!inherits(history, "pydlr_history")) .input_error("history", "a pydlr_history from fit()", history)
  if (!is.null(model)) .check_model(model, "model")
  file <- .check_string(file, "file")
  extra <- character()
  if (!is.null(model)) {
    table <- utils::capture.output(summary(model))
    extra <- c(extra, "<h2>Model</h2>", paste0("<pre>", .html_escape(paste(table, collapse = "\n")), "</pre>"))
    grid <- tryCatch(get_filters(model), pydlr_error = function(e) NULL) # NULL: no convolution
    if (!is.null(grid)) extra <- c(extra, "<h2>First-layer filters</h2>", .image_svg(grid, scale = 8))
    if (!is.null(x) && !is.null(y)) {
      cm <- confusion_matrix(y, predict(model, x, type = "class"))
      extra <- c(extra, "<h2>Confusion matrix</h2>", .cm_html(cm))
    }
  }
  writeLines(.metrics_page(history$metrics, first_epoch = min(history$epoch) - 1L, epochs = max(history$epoch),
    running = FALSE, extra = extra), file)
  invisible(file)
}

.html_escape <- function(s) gsub(">", "&gt;", gsub("<", "&lt;", gsub("&", "&amp;", s, fixed = TRUE), fixed = TRUE), fixed = TRUE)

.cm_html <- function(cm) {
  rows <- vapply(seq_len(nrow(cm)), function(i) {
    paste0("<tr><th>", .html_escape(rownames(cm)[i]), "</th>", paste0("<td>", cm[i, ], "</td>", collapse = ""), "</tr>")
  }, "")
  paste0("<table class='cm'><tr><th>actual / predicted</th>",
    paste0("<th>", .html_escape(colnames(cm)), "</th>", collapse = ""), "</tr>", paste(rows, collapse = ""), "</table>")
}

# The page: one SVG panel per metric, training (blue) and validation (orange) by epoch, the x axis spanning
# all planned epochs so the curves grow to the right. While `running`, the page reloads itself every 2 s.
.metrics_page <- function(metrics, first_epoch, epochs, running, extra = character()) {
  bases <- unique(sub("^val_", "", names(metrics)))
  panels <- vapply(bases, function(m) .metric_svg(m, metrics[[m]], metrics[[paste0("val_", m)]], first_epoch, epochs), "")
  done <- length(metrics[[1]])
  c("<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
    if (running) "<meta http-equiv='refresh' content='2'>",
    "<title>pydlr training</title>",
    "<style>body{font-family:sans-serif;margin:16px} svg{display:block;margin-bottom:8px}",
    "table.cm td,table.cm th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>",
    sprintf("<h1>Training: epoch %d of %d%s</h1>", first_epoch + done, epochs, if (running) " (running)" else ""),
    panels, extra, "</body></html>")
}

# Marker colours: the test reads them back from a screenshot; lines are lighter tints of them.
.view_colours <- c(training = "#0050c8", validation = "#e05000", training_line = "#8fb4e8", validation_line = "#f0b090")

.metric_svg <- function(name, train, val, first_epoch, epochs) {
  w <- 560
  h <- 220
  left <- 60
  right <- 20
  top <- 30
  bottom <- 35
  values <- c(train, val)
  rng <- range(values, finite = TRUE)
  if (diff(rng) == 0) rng <- rng + c(-0.5, 0.5) * max(abs(rng[1]), 1) * 0.1
  px <- function(e) left + (e - first_epoch - 0.5) / (epochs - first_epoch) * (w - left - right)
  py <- function(v) top + (rng[2] - v) / diff(rng) * (h - top - bottom)
  curve <- function(v, colour, line) {
    if (!length(v)) return(character())
    x <- px(first_epoch + seq_along(v))
    y <- py(v)
    c(sprintf("<polyline fill='none' stroke='%s' stroke-width='2' points='%s'/>", line,
      paste(sprintf("%.1f,%.1f", x, y), collapse = " ")),
      sprintf("<circle cx='%.1f' cy='%.1f' r='6' fill='%s'/>", x, y, colour))
  }
  ticks <- pretty(rng, 4)
  ticks <- ticks[ticks >= rng[1] & ticks <= rng[2]]
  paste(c(
    sprintf("<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d'>", w, h),
    sprintf("<text x='%d' y='18' font-size='14' font-weight='bold'>%s</text>", left, .html_escape(name)),
    sprintf("<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#999'/>", left, top, w - left - right, h - top - bottom),
    sprintf("<text x='%d' y='%.1f' font-size='11' text-anchor='end'>%s</text>", left - 4, py(ticks) + 4, format(ticks)),
    sprintf("<text x='%.1f' y='%d' font-size='11' text-anchor='middle'>%d</text>", px(seq(first_epoch + 1, epochs)), h - bottom + 14,
      seq(first_epoch + 1, epochs)),
    sprintf("<text x='%d' y='%d' font-size='11' text-anchor='middle'>epoch</text>", (w + left) %/% 2, h - 4),
    curve(train, .view_colours[["training"]], .view_colours[["training_line"]]),
    curve(val, .view_colours[["validation"]], .view_colours[["validation_line"]]),
    # The legend in the lines' tints: the markers' colours mark data points only.
    sprintf("<text x='%d' y='18' font-size='12' fill='%s'>&#9644; training</text>", w - 190, .view_colours[["training_line"]]),
    if (length(val)) sprintf("<text x='%d' y='18' font-size='12' fill='%s'>&#9644; validation</text>", w - 100, .view_colours[["validation_line"]]),
    "</svg>"
  ), collapse = "\n")
}

# An image (h x w x 1 or 3, values in [0, 1], as get_filters() returns) as an SVG of `scale`-pixel squares.
.image_svg <- function(img, scale) {
  d <- dim(img)
  channel <- function(k) as.vector(img[, , min(k, d[3])])
  fill <- grDevices::rgb(channel(1), channel(2), channel(3))
  rows <- rep(seq_len(d[1]), times = d[2]) - 1L
  cols <- rep(seq_len(d[2]), each = d[1]) - 1L
  paste(c(sprintf("<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d'>", d[2] * scale, d[1] * scale),
    sprintf("<rect x='%d' y='%d' width='%d' height='%d' fill='%s'/>", cols * scale, rows * scale, scale, scale, fill),
    "</svg>"), collapse = "\n")
}
