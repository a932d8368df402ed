# A model's layers from R: keras3's model$layers, get_layer(), freeze_weights(), unfreeze_weights().
# A layer is a `pydlr_layer_handle`: its Python layer plus a snapshot of its name, class and counts.

.layer_handle <- function(py) {
  info <- .py_call("api_r.layer_access.layer_info", py)
  structure(list(py = py, name = info$name, class = info$class, trainable = info$trainable,
    params = info$params), class = "pydlr_layer_handle")
}

#' @export
#' @md
print.pydlr_layer_handle <- function(x, ...) {
  info <- .py_call("api_r.layer_access.layer_info", x$py)
  cat(sprintf("<pydlr layer \"%s\" (%s), %s parameters, trainable: %s>\n", info$name, info$class,
    format(info$params, big.mark = ","), info$trainable))
  invisible(x)
}

#' @export
`$.pydlr_model` <- function(x, name) {
  if (identical(name, "layers")) {
    n <- .py_call("api_r.layer_access.count_layers", .subset2(x, "py"))
    return(lapply(seq_len(n), function(i) {
      .layer_handle(.py_call("api_r.layer_access.get_layer", .subset2(x, "py"), index = i - 1L, .convert = FALSE))
    }))
  }
  if (identical(name, "trainable")) return(.py_call("api_r.layer_access.layer_info", .subset2(x, "py"))$trainable)
  .subset2(x, name)
}

#' @export
`$<-.pydlr_model` <- function(x, name, value) {
  # `model$layers[[i]]$trainable <- FALSE` assigns the list back: the change was made in Python already
  if (identical(name, "layers")) return(x)
  if (identical(name, "trainable")) {
    .py_call("api_r.layer_access.set_trainable", .subset2(x, "py"), .check_flag(value, "trainable"), whole = TRUE)
    return(x)
  }
  if (name %in% c("py", "state")) return(NextMethod())
  .input_error(name, "`trainable` (a pydlr model is changed by verbs, e.g. freeze_weights())",
    I(sprintf("an assignment to `$%s`", name)))
}

#' @export
`$.pydlr_layer_handle` <- function(x, name) {
  if (name %in% c("trainable", "params", "name")) {
    return(.py_call("api_r.layer_access.layer_info", .subset2(x, "py"))[[name]])
  }
  .subset2(x, name)
}

#' @export
`$<-.pydlr_layer_handle` <- function(x, name, value) {
  if (!identical(name, "trainable")) {
    .input_error(name, "`trainable` (the one field of a layer R sets)", I(sprintf("an assignment to `$%s`", name)))
  }
  .py_call("api_r.layer_access.set_layer_trainable", .subset2(x, "py"), .check_flag(value, "trainable"))
  x
}

#' Get a layer of a model
#'
#' keras3's `get_layer()`: a layer by name or by position (1-based; negative counts from the end is not
#' supported here). `model$layers` lists them all. A layer's `$trainable` can be read and set
#' (`model$layers[[1]]$trainable <- FALSE`); [freeze_weights()] sets many at once.
#'
#' @param object A `pydlr_model`.
#' @param name A layer name (see [summary()]).
#' @param index A layer position, from 1.
#' @return A `pydlr_layer_handle` (fields `name`, `class`, `trainable`, `params`).
#' @family models
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 3, name = "hidden")
#'   get_layer(model, "hidden")
#' }
get_layer <- function(object, name = NULL, index = NULL) {
  .check_model(object)
  name <- .check_string(name, "name", null_ok = TRUE)
  index <- .check_count(index, "index", null_ok = TRUE)
  if (is.null(name) == is.null(index)) .input_error("name", "a layer name, or `index` (one of the two)", name)
  n <- .py_call("api_r.layer_access.count_layers", object$py)
  if (!is.null(index) && index > n) .input_error("index", sprintf("a layer position from 1 to %d", n), index)
  # Forced here, not inside .layer_handle(): an error then names this call, not the package's inner one.
  layer <- .py_call("api_r.layer_access.get_layer", object$py, name = name,
    index = if (!is.null(index)) index - 1L, .convert = FALSE)
  .layer_handle(layer)
}

#' Freeze and unfreeze weights
#'
#' keras3's `freeze_weights()` / `unfreeze_weights()`: without `from` and `to`, the whole model stops (or
#' starts) training. With them, the model becomes trainable and the layers from `from` to `to` (inclusive;
#' names, or positions from 1, negative from the end) are frozen (or unfrozen) while the others get the
#' opposite. Call [compile()] again before fitting, as in keras.
#'
#' @param object A `pydlr_model`.
#' @param from,to The first and last layer of the range: a name or a position.
#' @return The model, invisibly (changed in place).
#' @family models
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 8) |> layer_dense(units = 2)
#'   freeze_weights(model, to = 1)
#'   summary(model)
#' }
freeze_weights <- function(object, from = NULL, to = NULL) .set_trainable(object, FALSE, from, to)

#' @rdname freeze_weights
#' @export
#' @md
unfreeze_weights <- function(object, from = NULL, to = NULL) .set_trainable(object, TRUE, from, to)

.set_trainable <- function(object, trainable, from, to, call = sys.call(sys.parent())) {
  .check_model(object, call = call)
  ref <- function(x, arg) {
    if (is.null(x)) return(NULL)
    if (is.character(x) && length(x) == 1L && !is.na(x)) return(x)
    ok <- is.numeric(x) && length(x) == 1L && !is.na(x) && x == round(x) && x != 0
    if (!ok) .input_error(arg, "a layer name or a position (1, 2, ... or -1 for the last)", x, call = call)
    if (x > 0) as.integer(x) - 1L else as.integer(x)
  }
  .py_call("api_r.layer_access.set_trainable", object$py, trainable, from_ = ref(from, "from"), to = ref(to, "to"),
    whole = is.null(from) && is.null(to), .convert = FALSE, .call = call)
  invisible(object)
}
