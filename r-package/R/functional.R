# keras3's functional API: layer_input() makes a symbolic tensor, layer_*() verbs called on a tensor return
# the next tensor, keras_model(inputs, outputs) makes the model. The graph lives in Python (pydlr.Model);
# R holds tensors as handles of class `pydlr_tensor`.

#' Input of a functional model
#'
#' keras3's `layer_input()`: a symbolic tensor standing for a batch of inputs of one sample's `shape`
#' (channels-last, without the batch axis). Call `layer_*()` verbs on it (the tensor as their first
#' argument) to build a graph, then [keras_model()] to make the model.
#'
#' @param shape One sample's shape, e.g. `c(28, 28, 1)`.
#' @param batch_size Fixed batch size, or `NULL` (any).
#' @param dtype,sparse,batch_shape,tensor,optional Other keras3 arguments: only their defaults (pydlr's
#'   inputs are dense float32 with any batch size).
#' @param name Name of the input layer.
#' @return A `pydlr_tensor`.
#' @family functional
#' @examples
#' \dontrun{
#' inputs <- layer_input(shape = c(28, 28, 1))
#' x <- inputs |> layer_conv_2d(filters = 8, kernel_size = 3, padding = "same", activation = "relu")
#' y <- x |> layer_conv_2d(filters = 8, kernel_size = 3, padding = "same")
#' outputs <- layer_add(list(x, y)) |> layer_re_lu() |> layer_flatten() |>
#'   layer_dense(units = 10, activation = "softmax")
#' model <- keras_model(inputs, outputs)
#' }
#' @export
#' @md
layer_input <- function(shape = NULL, batch_size = NULL, dtype = NULL, sparse = NULL, batch_shape = NULL,
                        name = NULL, tensor = NULL, optional = FALSE) {
  offer <- "pydlr's inputs are dense float32 tensors; give `shape` (and optionally `batch_size`, `name`)."
  .check_unsupported(sparse, "sparse", offer)
  .check_unsupported(batch_shape, "batch_shape", offer)
  .check_unsupported(tensor, "tensor", offer)
  if (!isFALSE(optional)) .check_unsupported(optional, "optional", offer)
  if (!is.null(dtype) && !identical(dtype, "float32")) .check_unsupported(dtype, "dtype", offer)
  if (is.null(shape)) .input_error("shape", "one sample's shape, e.g. c(28, 28, 1)", shape)
  py <- .py_call("api_r.functional.Input", .check_shape(shape, "shape"),
    name = .check_string(name, "name", null_ok = TRUE),
    batch_size = .check_count(batch_size, "batch_size", null_ok = TRUE), .convert = FALSE
  )
  .new_tensor(py)
}

#' Make a functional model from its inputs and outputs
#'
#' keras3's `keras_model()`: the model whose graph leads from `inputs` (tensors of [layer_input()]) to
#' `outputs` (tensors returned by `layer_*()` verbs called on them). Branches, residual connections
#' ([layer_add()]) and merges ([layer_concatenate()]) are allowed. The result is a `pydlr_model` like a
#' sequential one: [compile()], [fit()], [summary()], [save_model()] work the same.
#'
#' @param inputs A tensor from [layer_input()], or a list of them.
#' @param outputs A tensor computed from `inputs`, or a list of them.
#' @param name Name of the model.
#' @param ... Other keras3 arguments (`trainable`) are not supported.
#' @return A `pydlr_model`.
#' @family functional
#' @family models
#' @examples
#' if (pydlr:::.python_ready()) {
#'   inputs <- layer_input(shape = c(8, 8, 1))
#'   a <- inputs |> layer_conv_2d(filters = 4, kernel_size = 3, padding = "same", activation = "relu")
#'   b <- a |> layer_conv_2d(filters = 4, kernel_size = 3, padding = "same")
#'   outputs <- layer_add(list(a, b)) |> layer_re_lu() |> layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   model <- keras_model(inputs, outputs)
#'   summary(model)
#'   compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
#'   set.seed(1)
#'   x <- array(runif(60 * 8 * 8), c(60, 8, 8, 1))
#'   y <- sample(0:2, 60, replace = TRUE)
#'   history <- fit(model, x, y, epochs = 2, batch_size = 16, verbose = 0)
#'   dim(predict(model, x))
#' }
#' @export
#' @md
keras_model <- function(inputs, outputs, name = NULL, ...) {
  .check_no_dots(list(...), "keras_model()", "pydlr's keras_model() takes inputs, outputs and name.")
  ins <- .check_tensors(inputs, "inputs")
  outs <- .check_tensors(outputs, "outputs")
  py <- .py_call("api_r.functional.Model", ins, outs, name = .check_string(name, "name", null_ok = TRUE),
    .convert = FALSE)
  .new_model(py)
}

#' Add or concatenate tensors
#'
#' `layer_add()` sums tensors of the same shape (a residual connection); `layer_concatenate()` joins them
#' along `axis` (by default the channels). keras3's calling forms: `layer_add(list(a, b))` returns the
#' output tensor; `layer_add()` without inputs returns the layer, to be called later with `inputs`.
#'
#' @param inputs A list of two or more tensors (from [layer_input()] or `layer_*()` calls).
#' @param axis The axis to concatenate along, keras' convention: `-1` (default) the channels, `1` the
#'   height of images, ...
#' @param ... `name` (a string).
#' @return A `pydlr_tensor`, or a layer when `inputs` is missing.
#' @family functional
#' @family layers
#' @examples
#' if (pydlr:::.python_ready()) {
#'   inputs <- layer_input(shape = c(8, 8, 3))
#'   left <- inputs |> layer_conv_2d(filters = 4, kernel_size = 1)
#'   right <- inputs |> layer_conv_2d(filters = 6, kernel_size = 3, padding = "same")
#'   joined <- layer_concatenate(list(left, right)) # (None, 8, 8, 10)
#'   summed <- layer_add(list(left, inputs |> layer_conv_2d(filters = 4, kernel_size = 1)))
#'   joined
#'   summed
#' }
#' @export
#' @md
layer_add <- function(inputs = NULL, ...) {
  .merge_layer(inputs, "Add", list(), list(...))
}

#' @rdname layer_add
#' @export
#' @md
layer_concatenate <- function(inputs = NULL, ..., axis = -1L) {
  axis <- .check_number(axis, "axis")
  if (axis == 0 || axis != round(axis)) .input_error("axis", "a non-zero whole number (not the batch axis)", axis)
  .merge_layer(inputs, "Concatenate", list(axis = as.integer(axis)), list(...))
}

#' ReLU activation layer
#'
#' `max(x, 0)`, or `min(max(x, 0), 6)` with `max_value = 6` (ReLU6). `layer_activation_relu()` is keras3's
#' name, `layer_re_lu()` the snake case of Keras' `ReLU` class; they are the same function.
#'
#' @inheritParams layer_conv_2d
#' @param max_value `NULL` (no upper bound) or `6`.
#' @param negative_slope,threshold Only `0` (keras' defaults); use `layer_activation(activation =
#'   "leaky_relu")` for a leaky ReLU.
#' @family layers
#' @family functional
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = 3) |>
#'     layer_re_lu(max_value = 6) # ReLU6
#'   summary(model)
#' }
#' @export
#' @md
layer_re_lu <- function(object = NULL, max_value = NULL, negative_slope = 0, threshold = 0, ...) {
  offer <- "pydlr's ReLU takes max_value = NULL or 6; use layer_activation(activation = \"leaky_relu\")."
  if (!identical(as.numeric(negative_slope), 0)) .not_supported("layer_re_lu(negative_slope = )", offer)
  if (!identical(as.numeric(threshold), 0)) .not_supported("layer_re_lu(threshold = )", offer)
  max_value <- .check_number(max_value, "max_value", null_ok = TRUE)
  if (!is.null(max_value) && max_value != 6) .not_supported(sprintf("layer_re_lu(max_value = %s)", max_value), offer)
  .layer(object, "ReLU", list(max_value = max_value), list(...))
}

#' @rdname layer_re_lu
#' @export
#' @md
layer_activation_relu <- function(object = NULL, max_value = NULL, negative_slope = 0, threshold = 0, ...) {
  layer_re_lu(object, max_value = max_value, negative_slope = negative_slope, threshold = threshold, ...)
}

#' @export
#' @md
print.pydlr_tensor <- function(x, ...) {
  info <- .py_call("api_r.functional.tensor_info", x$py)
  dims <- vapply(info$shape, function(d) if (is.null(d)) "None" else as.character(d), character(1))
  cat(sprintf("<pydlr tensor shape=(%s) from layer \"%s\">\n", paste(dims, collapse = ", "), info$layer))
  invisible(x)
}

.new_tensor <- function(py) structure(list(py = py), class = "pydlr_tensor")

.is_tensor <- function(x) {
  inherits(x, "pydlr_tensor") ||
    (is.list(x) && !is.object(x) && length(x) > 0L && all(vapply(x, inherits, logical(1), "pydlr_tensor")))
}

# One tensor's handle, or a Python list of handles for a list of tensors.
.check_tensors <- function(x, arg, call = sys.call(sys.parent())) {
  if (!.is_tensor(x)) {
    .input_error(arg, "a tensor from layer_input() or a layer_*() call on one, or a list of them", x, call = call)
  }
  if (inherits(x, "pydlr_tensor")) return(x$py)
  lapply(x, function(t) t$py)
}

# A layer_*() verb called on a tensor (or list of tensors): build the layer and call it, in Python.
.call_layer <- function(spec, inputs, call = sys.call(sys.parent())) {
  py <- .py_call("api_r.functional.call_layer", spec$type, Filter(Negate(is.null), spec$config),
    .check_tensors(inputs, "inputs", call = call), .convert = FALSE, .call = call)
  .new_tensor(py)
}

# Add/Concatenate take a list of tensors; without one they are layers to be called later.
.merge_layer <- function(inputs, type, args, dots, call = sys.call(sys.parent())) {
  spec <- structure(list(type = type, config = c(args, .layer_dots(dots, type, call))), class = "pydlr_layer")
  if (is.null(inputs)) return(spec)
  if (!.is_tensor(inputs) || inherits(inputs, "pydlr_tensor") || length(inputs) < 2L) {
    .input_error("inputs", "a list of two or more tensors", inputs, call = call)
  }
  .call_layer(spec, inputs, call)
}
