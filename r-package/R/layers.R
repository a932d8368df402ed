# Layer verbs with keras3's names, argument names and defaults. Each takes the model first, converts R
# types explicitly at the border (integers, shapes), checks values in R, and adds the layer in place,
# returning the model so verbs chain with |>. Called without a model, a verb returns the layer itself, to
# be given to keras_model_sequential(layers = ).

.activations <- c("linear", "relu", "relu6", "sigmoid", "tanh", "softmax", "leaky_relu", "gelu")
.paddings <- c("valid", "same")

# A layer specification (Keras class name + Keras arguments), added to `object` unless it is missing;
# called on `object` when it is a tensor of the functional API (functional.R), returning the output tensor.
.layer <- function(object, type, args, dots, call = sys.call(sys.parent())) {
  spec <- structure(list(type = type, config = c(args, .layer_dots(dots, type, call))), class = "pydlr_layer")
  if (is.null(object)) return(spec)
  if (.is_tensor(object)) return(.call_layer(spec, object, call))
  .check_model(object, call = call)
  .add_layer(object, spec, call)
}

# Adds a layer_*() specification, or a model (e.g. a pretrained backbone) as one layer, to `model`.
.add_layer <- function(model, spec, call = sys.call(sys.parent())) {
  layer <- if (inherits(spec, "pydlr_model")) {
    spec$py
  } else if (inherits(spec, "pydlr_layer")) {
    .py_call("api_r.models.layer", spec$type, Filter(Negate(is.null), spec$config), .convert = FALSE, .call = call)
  } else {
    .input_error("layers", "layer_*() layers or pydlr models (e.g. application_mobilenet_v2(include_top = FALSE))",
      spec, call = call)
  }
  .py_call("api_r.models.add", model$py, layer, .convert = FALSE, .call = call)
  invisible(model)
}

# keras3 passes name, input_shape, trainable, dtype through `...`; pydlr supports name and input_shape.
.layer_dots <- function(dots, type, call) {
  known <- c("name", "input_shape")
  unknown <- setdiff(names(dots), known)
  if (length(dots) > 0L && (is.null(names(dots)) || any(!nzchar(names(dots))))) {
    .input_error("...", "named arguments (name, input_shape)", I("an unnamed argument"), call = call)
  }
  if (length(unknown) > 0L) {
    .not_supported(
      sprintf("The keras layer argument `%s` (in %s)", unknown[1], type),
      "pydlr layers take `name` and, on the first layer, `input_shape`; all weights are float32 and trainable.",
      call = call
    )
  }
  list(
    name = .check_string(dots$name, "name", null_ok = TRUE, call = call),
    input_shape = .check_shape(dots$input_shape, "input_shape", call = call)
  )
}

.check_activation <- function(x, call = sys.call(sys.parent())) {
  if (is.null(x)) return(NULL)
  if (is.function(x)) {
    .not_supported("An R function as `activation`", sprintf(
      "pydlr runs activations in its Python core; use one of %s.", paste0("\"", .activations, "\"", collapse = ", ")
    ), call = call)
  }
  .check_string(x, "activation", .activations, call = call)
}

.check_padding <- function(x, call = sys.call(sys.parent())) .check_string(x, "padding", .paddings, call = call)

.check_data_format <- function(x, call = sys.call(sys.parent())) {
  if (!is.null(x) && !identical(x, "channels_last")) {
    .not_supported(sprintf("data_format = \"%s\"", x), paste(
      "pydlr's layers are channels-last (samples, height, width, channels), as keras' default;",
      "reorder channels-first arrays with aperm(x, c(1, 3, 4, 2))."
    ), call = call)
  }
  invisible(NULL)
}

.no_regularizers <- function(kernel_regularizer, bias_regularizer, activity_regularizer,
                             kernel_constraint, bias_constraint, call = sys.call(sys.parent())) {
  offer <- "For weight decay use optimizer_adamw(weight_decay = ) in compile()."
  .check_unsupported(kernel_regularizer, "kernel_regularizer", offer, call = call)
  .check_unsupported(bias_regularizer, "bias_regularizer", offer, call = call)
  .check_unsupported(activity_regularizer, "activity_regularizer", offer, call = call)
  .check_unsupported(kernel_constraint, "kernel_constraint", "pydlr has no weight constraints.", call = call)
  .check_unsupported(bias_constraint, "bias_constraint", "pydlr has no weight constraints.", call = call)
}

#' 2D convolution layer
#'
#' Convolves the input images with `filters` kernels of size `kernel_size` (pydlr's native operator),
#' adds a bias and applies `activation`. Channels-last: the input is `(samples, height, width, channels)`,
#' the output `(samples, new_height, new_width, filters)`.
#'
#' @param object The model to add the layer to, or a tensor of the functional API ([layer_input()]) to call
#'   the layer on (the output tensor is returned). When missing, the layer is returned, to be passed to
#'   `keras_model_sequential(layers = )`.
#' @param filters Number of output filters (a whole number >= 1).
#' @param kernel_size Height and width of the kernel: one whole number or two.
#' @param strides Strides of the convolution along height and width: one whole number or two.
#' @param padding `"valid"` (no padding) or `"same"` (output as large as the input, for stride 1).
#' @param data_format Only `NULL` or `"channels_last"`.
#' @param dilation_rate Dilation rate: one whole number or two.
#' @param groups Number of groups the input channels are split into (filters must divide evenly).
#' @param activation `NULL` (linear) or one of `"linear"`, `"relu"`, `"relu6"`, `"sigmoid"`, `"tanh"`,
#'   `"softmax"`, `"leaky_relu"`, `"gelu"`.
#' @param use_bias Whether the layer has a bias vector.
#' @param kernel_initializer,bias_initializer Initializer names, as in keras (`"glorot_uniform"`,
#'   `"he_normal"`, `"zeros"`, ...).
#' @param kernel_regularizer,bias_regularizer,activity_regularizer,kernel_constraint,bias_constraint Not
#'   supported: must be `NULL` (use `optimizer_adamw(weight_decay = )` for weight decay).
#' @param ... `name` (a string) and, on the first layer of a model without input shape, `input_shape`.
#' @return The model, changed in place (invisibly usable in a pipe); the output tensor when `object` is a
#'   tensor; or the layer when `object` is missing.
#' @family layers
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   # "valid" padding shrinks 28 x 28 to 26 x 26; "same" keeps 28 x 28
#'   keras_model_sequential(input_shape = c(28, 28, 1)) |>
#'     layer_conv_2d(filters = 32, kernel_size = c(3, 3), activation = "relu", padding = "same") |>
#'     summary()
#' }
layer_conv_2d <- function(object = NULL, filters, kernel_size, strides = c(1L, 1L), padding = "valid",
                          data_format = NULL, dilation_rate = c(1L, 1L), groups = 1L, activation = NULL,
                          use_bias = TRUE, kernel_initializer = "glorot_uniform", bias_initializer = "zeros",
                          kernel_regularizer = NULL, bias_regularizer = NULL, activity_regularizer = NULL,
                          kernel_constraint = NULL, bias_constraint = NULL, ...) {
  .check_data_format(data_format)
  .no_regularizers(kernel_regularizer, bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint)
  .layer(object, "Conv2D", list(
    filters = .check_count(filters, "filters"),
    kernel_size = .check_int_tuple(kernel_size, "kernel_size"),
    strides = .check_int_tuple(strides, "strides"),
    padding = .check_padding(padding),
    dilation_rate = .check_int_tuple(dilation_rate, "dilation_rate"),
    groups = .check_count(groups, "groups"),
    activation = .check_activation(activation),
    use_bias = .check_flag(use_bias, "use_bias"),
    kernel_initializer = .check_string(kernel_initializer, "kernel_initializer"),
    bias_initializer = .check_string(bias_initializer, "bias_initializer")
  ), list(...))
}

#' 2D depthwise convolution layer
#'
#' Convolves each input channel with its own `depth_multiplier` kernels (as in MobileNet).
#'
#' @inheritParams layer_conv_2d
#' @param depth_multiplier Number of output channels per input channel.
#' @param depthwise_initializer,bias_initializer Initializer names of the depthwise kernel and the bias.
#' @param depthwise_regularizer,bias_regularizer,activity_regularizer,depthwise_constraint,bias_constraint
#'   Not supported: must be `NULL`.
#' @family layers
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   keras_model_sequential(input_shape = c(8, 8, 3)) |> layer_depthwise_conv_2d(kernel_size = c(3, 3))
#' }
layer_depthwise_conv_2d <- function(object = NULL, kernel_size, strides = c(1L, 1L), padding = "valid",
                                    depth_multiplier = 1L, data_format = NULL, dilation_rate = c(1L, 1L),
                                    activation = NULL, use_bias = TRUE,
                                    depthwise_initializer = "glorot_uniform", bias_initializer = "zeros",
                                    depthwise_regularizer = NULL, bias_regularizer = NULL,
                                    activity_regularizer = NULL, depthwise_constraint = NULL,
                                    bias_constraint = NULL, ...) {
  .check_data_format(data_format)
  .no_regularizers(depthwise_regularizer, bias_regularizer, activity_regularizer, depthwise_constraint, bias_constraint)
  .layer(object, "DepthwiseConv2D", list(
    kernel_size = .check_int_tuple(kernel_size, "kernel_size"),
    strides = .check_int_tuple(strides, "strides"),
    padding = .check_padding(padding),
    depth_multiplier = .check_count(depth_multiplier, "depth_multiplier"),
    dilation_rate = .check_int_tuple(dilation_rate, "dilation_rate"),
    activation = .check_activation(activation),
    use_bias = .check_flag(use_bias, "use_bias"),
    depthwise_initializer = .check_string(depthwise_initializer, "depthwise_initializer"),
    bias_initializer = .check_string(bias_initializer, "bias_initializer")
  ), list(...))
}

#' 2D depthwise-separable convolution layer
#'
#' A depthwise convolution (`depth_multiplier` kernels per input channel) followed by a 1 x 1 convolution to
#' `filters` channels, as keras3's `layer_separable_conv_2d()`: far fewer weights than [layer_conv_2d()]
#' (`kh * kw * channels * depth_multiplier + channels * depth_multiplier * filters + filters`).
#'
#' @inheritParams layer_conv_2d
#' @param depth_multiplier Kernels per input channel in the depthwise step.
#' @param depthwise_initializer,pointwise_initializer,bias_initializer Initializer names of the two kernels
#'   and the bias.
#' @param depthwise_regularizer,pointwise_regularizer,bias_regularizer,activity_regularizer,depthwise_constraint,pointwise_constraint,bias_constraint
#'   Not supported: must be `NULL`.
#' @family layers
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   keras_model_sequential(input_shape = c(8, 8, 3)) |> layer_separable_conv_2d(filters = 16, kernel_size = 3)
#' }
layer_separable_conv_2d <- function(object = NULL, filters, kernel_size, strides = c(1L, 1L), padding = "valid",
                                    data_format = NULL, dilation_rate = c(1L, 1L), depth_multiplier = 1L,
                                    activation = NULL, use_bias = TRUE,
                                    depthwise_initializer = "glorot_uniform",
                                    pointwise_initializer = "glorot_uniform", bias_initializer = "zeros",
                                    depthwise_regularizer = NULL, pointwise_regularizer = NULL,
                                    bias_regularizer = NULL, activity_regularizer = NULL,
                                    depthwise_constraint = NULL, pointwise_constraint = NULL,
                                    bias_constraint = NULL, ...) {
  .check_data_format(data_format)
  decay <- "For weight decay use optimizer_adamw(weight_decay = ) in compile()."
  for (arg in c("depthwise_regularizer", "pointwise_regularizer", "bias_regularizer", "activity_regularizer")) {
    .check_unsupported(get(arg), arg, decay)
  }
  for (arg in c("depthwise_constraint", "pointwise_constraint", "bias_constraint")) {
    .check_unsupported(get(arg), arg, "pydlr has no weight constraints.")
  }
  .layer(object, "SeparableConv2D", list(
    filters = .check_count(filters, "filters"),
    kernel_size = .check_int_tuple(kernel_size, "kernel_size"),
    strides = .check_int_tuple(strides, "strides"),
    padding = .check_padding(padding),
    dilation_rate = .check_int_tuple(dilation_rate, "dilation_rate"),
    depth_multiplier = .check_count(depth_multiplier, "depth_multiplier"),
    activation = .check_activation(activation),
    use_bias = .check_flag(use_bias, "use_bias"),
    depthwise_initializer = .check_string(depthwise_initializer, "depthwise_initializer"),
    pointwise_initializer = .check_string(pointwise_initializer, "pointwise_initializer"),
    bias_initializer = .check_string(bias_initializer, "bias_initializer")
  ), list(...))
}

#' 2D max and average pooling layers
#'
#' Keep the maximum (or the mean) of each `pool_size` window.
#'
#' @inheritParams layer_conv_2d
#' @param pool_size Window size: one whole number or two.
#' @param strides Step between windows: one whole number or two; `NULL` means `pool_size` (keras).
#' @family layers
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   keras_model_sequential(input_shape = c(28, 28, 1)) |>
#'     layer_conv_2d(filters = 8, kernel_size = c(3, 3)) |>
#'     layer_max_pooling_2d(pool_size = c(2, 2)) |>
#'     summary()
#' }
layer_max_pooling_2d <- function(object = NULL, pool_size = c(2L, 2L), strides = NULL, padding = "valid",
                                 data_format = NULL, ...) {
  .check_data_format(data_format)
  .layer(object, "MaxPooling2D", .pool_args(pool_size, strides, padding), list(...))
}

#' @rdname layer_max_pooling_2d
#' @export
#' @md
layer_average_pooling_2d <- function(object = NULL, pool_size = c(2L, 2L), strides = NULL, padding = "valid",
                                     data_format = NULL, ...) {
  .check_data_format(data_format)
  .layer(object, "AveragePooling2D", .pool_args(pool_size, strides, padding), list(...))
}

.pool_args <- function(pool_size, strides, padding, call = sys.call(sys.parent())) {
  list(
    pool_size = .check_int_tuple(pool_size, "pool_size", call = call),
    strides = .check_int_tuple(strides, "strides", null_ok = TRUE, call = call),
    padding = .check_padding(padding, call = call)
  )
}

#' Global average and max pooling layers
#'
#' Average (or take the maximum of) each channel over height and width: `(samples, h, w, c)` becomes
#' `(samples, c)`.
#'
#' @inheritParams layer_conv_2d
#' @param keepdims Keep the spatial axes with length 1: `(samples, 1, 1, c)`.
#' @family layers
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   keras_model_sequential(input_shape = c(8, 8, 3)) |> layer_global_average_pooling_2d()
#' }
layer_global_average_pooling_2d <- function(object = NULL, data_format = NULL, keepdims = FALSE, ...) {
  .check_data_format(data_format)
  .layer(object, "GlobalAveragePooling2D", list(keepdims = .check_flag(keepdims, "keepdims")), list(...))
}

#' @rdname layer_global_average_pooling_2d
#' @export
#' @md
layer_global_max_pooling_2d <- function(object = NULL, data_format = NULL, keepdims = FALSE, ...) {
  .check_data_format(data_format)
  .layer(object, "GlobalMaxPooling2D", list(keepdims = .check_flag(keepdims, "keepdims")), list(...))
}

#' Flatten layer
#'
#' Flattens each sample to a vector, in keras' (height, width, channels) order, so weights match keras'.
#'
#' @inheritParams layer_conv_2d
#' @family layers
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   keras_model_sequential(input_shape = c(8, 8, 1)) |> layer_flatten() |> summary()
#' }
layer_flatten <- function(object = NULL, data_format = NULL, ...) {
  .check_data_format(data_format)
  .layer(object, "Flatten", list(), list(...))
}

#' Densely connected layer
#'
#' `output = activation(input %*% kernel + bias)`.
#'
#' @inheritParams layer_conv_2d
#' @param units Number of output units (a whole number >= 1).
#' @family layers
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   keras_model_sequential(input_shape = 4) |> layer_dense(units = 3, activation = "softmax")
#' }
layer_dense <- function(object = NULL, units, activation = NULL, use_bias = TRUE,
                        kernel_initializer = "glorot_uniform", bias_initializer = "zeros",
                        kernel_regularizer = NULL, bias_regularizer = NULL, activity_regularizer = NULL,
                        kernel_constraint = NULL, bias_constraint = NULL, ...) {
  .no_regularizers(kernel_regularizer, bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint)
  .layer(object, "Dense", list(
    units = .check_count(units, "units"),
    activation = .check_activation(activation),
    use_bias = .check_flag(use_bias, "use_bias"),
    kernel_initializer = .check_string(kernel_initializer, "kernel_initializer"),
    bias_initializer = .check_string(bias_initializer, "bias_initializer")
  ), list(...))
}

#' Dropout layer
#'
#' During training, sets a fraction `rate` of the inputs to 0 and scales the rest by `1 / (1 - rate)`;
#' does nothing at prediction time.
#'
#' @inheritParams layer_conv_2d
#' @param rate Fraction of the inputs to drop, in `[0, 1)`.
#' @param noise_shape Not supported: must be `NULL`.
#' @param seed Not supported per layer: must be `NULL` (use `fit(seed = )`, which seeds dropout too).
#' @family layers
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   keras_model_sequential(input_shape = 4) |> layer_dense(units = 8) |> layer_dropout(rate = 0.5)
#' }
layer_dropout <- function(object = NULL, rate, noise_shape = NULL, seed = NULL, ...) {
  .check_unsupported(noise_shape, "noise_shape", "pydlr's dropout drops elements independently.")
  .check_unsupported(seed, "seed", "fit(seed = ) seeds every random choice of training, dropout included.")
  rate <- .check_number(rate, "rate", lower = 0, upper = 1)
  if (rate >= 1) .input_error("rate", "a number in [0, 1)", rate)
  .layer(object, "Dropout", list(rate = rate), list(...))
}

#' Batch normalization layer
#'
#' Normalizes each channel with the batch statistics during training and moving averages at prediction.
#'
#' @inheritParams layer_conv_2d
#' @param axis The channel axis: only `-1` (channels-last) is supported.
#' @param momentum Momentum of the moving averages (keras' convention: `0.99` keeps 99% of the old value).
#' @param epsilon Small number added to the variance.
#' @param center,scale Whether to learn the offset `beta` and the scale `gamma`.
#' @family layers
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3)) |>
#'     layer_batch_normalization()
#' }
layer_batch_normalization <- function(object = NULL, axis = -1L, momentum = 0.99, epsilon = 0.001,
                                      center = TRUE, scale = TRUE, ...) {
  if (!identical(as.integer(axis), -1L)) {
    .not_supported(sprintf("axis = %s", format(axis)), "pydlr normalizes the channel axis (axis = -1, channels-last).")
  }
  .layer(object, "BatchNormalization", list(
    axis = -1L,
    momentum = .check_number(momentum, "momentum", 0, 1),
    epsilon = .check_number(epsilon, "epsilon", 0),
    center = .check_flag(center, "center"),
    scale = .check_flag(scale, "scale")
  ), list(...))
}

#' Activation layer
#'
#' @inheritParams layer_conv_2d
#' @param activation One of `"linear"`, `"relu"`, `"relu6"`, `"sigmoid"`, `"tanh"`, `"softmax"`,
#'   `"leaky_relu"`, `"gelu"`.
#' @family layers
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   keras_model_sequential(input_shape = 4) |> layer_dense(units = 8) |> layer_activation("relu")
#' }
layer_activation <- function(object = NULL, activation, ...) {
  activation <- .check_activation(activation)
  if (is.null(activation)) .input_error("activation", "an activation name", NULL)
  .layer(object, "Activation", list(activation = activation), list(...))
}

#' Rescaling layer
#'
#' `output = input * scale + offset`, e.g. `scale = 1/255` to bring pixels to `[0, 1]` inside the model.
#'
#' @inheritParams layer_conv_2d
#' @param scale,offset Numbers.
#' @family layers
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   keras_model_sequential(input_shape = c(8, 8, 1)) |> layer_rescaling(scale = 1 / 255)
#' }
layer_rescaling <- function(object = NULL, scale, offset = 0, ...) {
  .layer(object, "Rescaling", list(
    scale = .check_number(scale, "scale"),
    offset = .check_number(offset, "offset")
  ), list(...))
}

#' @export
#' @md
print.pydlr_layer <- function(x, ...) {
  config <- Filter(Negate(is.null), x$config)
  shown <- vapply(config, function(v) paste(format(unlist(v)), collapse = ", "), character(1))
  cat(sprintf("<pydlr layer %s>(%s)\n", x$type, paste(names(shown), shown, sep = " = ", collapse = ", ")))
  invisible(x)
}
