# Models: an R object wrapping the Python model. All state (layers, weights, optimizer) lives in Python,
# so verbs that change the model (layer_*, compile, fit, load weights) change it in place, as in keras3:
# `model |> compile(...)` and `model |> fit(...)` need no reassignment.

#' Create a sequential model
#'
#' `keras_model_sequential()` is keras3's name, `model_sequential()` pydlr's; they are the same function.
#' Add layers by piping the model into `layer_*()` verbs (`|>`, or `%>%` when magrittr is installed).
#' Inputs are channels-last, as in keras: images are `(samples, height, width, channels)` and
#' `input_shape` leaves out the samples axis, e.g. `c(28, 28, 1)`.
#'
#' @param input_shape Shape of one input sample without the batch axis, e.g. `c(28, 28, 1)`; or `NULL`
#'   to give it on the first layer (`input_shape =` in `...` of a `layer_*()` verb).
#' @param name Name of the model, shown by `summary()`.
#' @param ... Other keras3 arguments (`input_dtype`, `input_batch_size`, ...) are not supported and give a
#'   `pydlr_not_supported_error`.
#' @param layers A list of layers made by calling `layer_*()` verbs without a model, or models (e.g. a
#'   pretrained backbone from `application_mobilenet_v2(include_top = FALSE)`), added in order.
#' @return A `pydlr_model`.
#' @family models
#' @examples
#' if (pydlr:::.python_ready()) {
#' model <- keras_model_sequential(input_shape = c(28, 28, 1)) |>
#'   layer_conv_2d(filters = 32, kernel_size = c(3, 3), activation = "relu") |>
#'   layer_max_pooling_2d(pool_size = c(2, 2)) |>
#'   layer_flatten() |>
#'   layer_dense(units = 10, activation = "softmax")
#' summary(model)
#' }
#' @export
#' @md
keras_model_sequential <- function(input_shape = NULL, name = NULL, ..., layers = list()) {
  extra <- list(...)
  if (length(extra) > 0L) {
    .not_supported(
      sprintf("keras_model_sequential() argument `%s`", names(extra)[1]),
      "pydlr's sequential models take `input_shape`, `name` and `layers` (float32 inputs, any batch size)."
    )
  }
  input_shape <- .check_shape(input_shape, "input_shape")
  name <- .check_string(name, "name", null_ok = TRUE)
  model <- .new_model(.py_call("api_r.models.Sequential", input_shape = input_shape, name = name, .convert = FALSE))
  if (inherits(layers, c("pydlr_layer", "pydlr_model"))) layers <- list(layers)
  if (!is.list(layers)) .input_error("layers", "a list of layer_*() layers or pydlr models", layers)
  for (layer in layers) model <- .add_layer(model, layer)
  model
}

#' @rdname keras_model_sequential
#' @export
#' @md
model_sequential <- keras_model_sequential

# A model is its Python handle plus R-side state shared by every copy of the R object (an environment, so
# verbs that change it in place, like fit(), need no reassignment): the class levels of a factor `y`. The
# column names of a data.frame `x` are the Python model's (pydlr.data.columns reads later data by them).
.new_model <- function(py, levels = NULL) {
  state <- new.env(parent = emptyenv())
  state$levels <- levels
  structure(list(py = py, state = state), class = "pydlr_model")
}

#' Is this a pydlr model?
#' @param x An object.
#' @return `TRUE` or `FALSE`.
#' @family models
#' @export
#' @md
#' @examples
#' is_pydlr_model(lm(dist ~ speed, cars))
is_pydlr_model <- function(x) inherits(x, "pydlr_model")

.model_info <- function(model) .py_call("api_r.models.model_info", model$py)

#' @export
#' @md
print.pydlr_model <- function(x, ...) {
  info <- .model_info(x)
  if (isTRUE(info$built)) {
    cat(.py_call("api_r.models.summary", x$py), "\n", sep = "")
  } else {
    cat(sprintf(
      "<pydlr model \"%s\" (%s), %d layer%s, not built yet: give `input_shape`>\n",
      info$name, info$class, info$n_layers, if (info$n_layers == 1L) "" else "s"
    ))
  }
  invisible(x)
}

#' Summary of a model, as keras prints it
#'
#' Prints keras' table (layer name and type, output shape such as `(None, 26, 26, 32)`, parameter count,
#' total / trainable / non-trainable parameters) plus the memory the weights take and the size of the
#' saved file, computed by pydlr's Python core, so the numbers are the same from R and from Python.
#'
#' @param object A `pydlr_model`.
#' @param ... Unused.
#' @return Invisibly, a data.frame with one row per layer: `layer`, `type`, `output_shape`, `params`
#'   (and `trainable`, whether the layer's weights are trained).
#' @family models
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   summary(model)
#' }
summary.pydlr_model <- function(object, ...) {
  cat(.py_call("api_r.models.summary", object$py), "\n", sep = "")
  invisible(.summary_df(object))
}

.summary_df <- function(model) {
  cols <- .py_call("api_r.models.summary_table", model$py)
  data.frame(
    layer = as.character(unlist(cols$layer)),
    type = as.character(unlist(cols$type)),
    output_shape = as.character(unlist(cols$output_shape)),
    params = as.numeric(unlist(cols$params)),
    trainable = as.logical(unlist(cols$trainable)),
    stringsAsFactors = FALSE
  )
}

#' Number of parameters of a model
#'
#' @param object A `pydlr_model`.
#' @return The total number of parameters (trainable and non-trainable), a number.
#' @family models
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   count_params(model)
#' }
count_params <- function(object) {
  .check_model(object)
  as.numeric(.py_call("api_r.models.count_params", object$py))
}

#' Weights of a model as R arrays
#'
#' keras3's `get_weights()`: the weights layer by layer in Keras' layouts (a convolution kernel is
#' `kernel_height x kernel_width x in_channels x filters`, a dense kernel `inputs x units`, then the bias;
#' BatchNormalization's gamma, beta, moving mean and variance), the same arrays as Python's
#' `model.get_weights()`. Useful to check that training changed them or that a saved model reloads
#' bit-exact.
#'
#' @param object A `pydlr_model`.
#' @return An unnamed list of numeric arrays.
#' @family models
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   str(get_weights(model))
#' }
get_weights <- function(object) {
  .check_model(object)
  weights <- .py_call("api_r.models.get_weights", object$py, .convert = FALSE)
  n <- reticulate::py_len(weights)
  lapply(seq_len(n) - 1L, function(i) .bridge_from_py(reticulate::py_get_item(weights, i)))
}
