# keras3 functions outside pydlr's subset that scripts commonly use: each fails with a classed
# `pydlr_not_supported_error` that names the feature and says what pydlr offers instead.

.unsupported_function <- function(name, offer) {
  force(name)
  force(offer)
  function(...) .not_supported(sprintf("keras3's %s()", name), offer, call = sys.call())
}

#' keras3 functions pydlr does not provide
#'
#' They exist so that a keras3 script fails with a clear message (class `pydlr_not_supported_error`)
#' naming the feature and what pydlr offers, instead of "could not find function".
#'
#' @param ... Ignored.
#' @name unsupported
#' @family utilities
#' @md
#' @examples
#' try(keras_model())
NULL

#' @rdname unsupported
#' @export
#' @md
layer_conv_1d <- .unsupported_function(
  "layer_conv_1d",
  "pydlr's convolutions are 2-d: layer_conv_2d(), layer_depthwise_conv_2d()."
)

#' @rdname unsupported
#' @export
#' @md
layer_conv_2d_transpose <- .unsupported_function(
  "layer_conv_2d_transpose",
  "pydlr offers layer_conv_2d() and layer_depthwise_conv_2d()."
)

#' @rdname unsupported
#' @export
#' @md
layer_lstm <- .unsupported_function(
  "layer_lstm",
  "pydlr has no recurrent layers; it covers convolutional networks for images."
)

#' @rdname unsupported
#' @export
#' @md
layer_gru <- .unsupported_function(
  "layer_gru",
  "pydlr has no recurrent layers; it covers convolutional networks for images."
)

#' @rdname unsupported
#' @export
#' @md
layer_embedding <- .unsupported_function(
  "layer_embedding",
  "pydlr has no embedding layer; it covers convolutional networks for images."
)
