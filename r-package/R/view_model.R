# The live page of an image model (Python's pydlr.interpret.view_model). Inside R the page's server runs
# in a child Python process (pydlr.api_r.live): reticulate keeps the lock Python threads need while R
# waits at its prompt, so a server thread in R's own Python would not answer. The child ends on close(),
# when the handle is garbage-collected, and with the R session at the latest (its input pipe closes).

#' Watch a network think: the live page of an image model
#'
#' An interactive page served from this computer (127.0.0.1, a free port; nothing is fetched from the
#' network): draw a digit on the canvas (for small grey models such as the seed CNN on MNIST), pick one of
#' `data`'s images or upload an image, and see each convolution's feature maps, the dense layers'
#' activations, the top classes with their probabilities, and the Grad-CAM heatmap of a chosen class,
#' updated as you draw. Pretrained ImageNet models apply their own preprocessing to uploads. The page
#' opens in RStudio's Viewer (or a browser) in an interactive session, never in scripts or knitr unless
#' `open = TRUE`.
#'
#' @param model A trained image classifier (`pydlr_model` with input `height x width x 1` or `x 3`).
#' @param data Images as the model takes them (`n x height x width x channels`, e.g. the test set
#'   scaled as in training) to pick from on the page (the first 48), or `NULL`. Their range (e.g. 0-1
#'   or 0-255) is also the scale given to drawings and uploads.
#' @param open Show the page (RStudio's Viewer, else the browser); `NULL`: only in an interactive session
#'   outside knitr.
#' @param max_maps Feature maps shown per convolution; `NULL`: all up to 64 (16 for networks with more
#'   than 12 convolutions, which show 12 of them).
#' @return A `pydlr_model_view`: `$url`; `close()` it to stop the server (it also stops when the handle is
#'   garbage-collected or R ends).
#' @family interpretation
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready() && interactive()) {
#'   view <- view_model(pretrained_model("seed_cnn_mnist"))
#'   view$url
#'   close(view)
#' }
view_model <- function(model, data = NULL, open = NULL, max_maps = NULL) {
  .check_model(model, "model")
  if (!is.null(data)) data <- .bridge_array_to_py(.check_data(data, "data"))
  if (!is.null(open)) open <- .check_flag(open, "open")
  started <- .py_call("api_r.live.start", model$py, data, max_maps = .check_count(max_maps, "max_maps", null_ok = TRUE))
  state <- new.env(parent = emptyenv())
  state$pid <- as.integer(started$pid)
  reg.finalizer(state, .close_view, onexit = TRUE)
  view <- structure(list(url = started$url, state = state), class = "pydlr_model_view")
  if (if (is.null(open)) .can_show_viewer() else open) .show_page(view$url)
  view
}

.close_view <- function(state) {
  if (is.null(state$pid)) return(invisible(FALSE))
  pid <- state$pid
  state$pid <- NULL
  invisible(tryCatch(isTRUE(.py_call("api_r.live.close", pid)), error = function(e) FALSE))
}

#' @rdname view_model
#' @param con A `pydlr_model_view`.
#' @param ... Unused.
#' @return `close()`: `TRUE` when the server was running, invisibly.
#' @md
#' @export
close.pydlr_model_view <- function(con, ...) .close_view(con$state)

#' @export
print.pydlr_model_view <- function(x, ...) {
  running <- !is.null(x$state$pid) && isTRUE(.py_call("api_r.live.running", x$state$pid))
  cat(sprintf("<pydlr model view> %s (%s)\n", x$url, if (running) "serving; close() stops it" else "closed"))
  invisible(x)
}
