# ONNX export: the model as a standard ONNX graph (Conv, Relu/Clip, Gemm, ... nodes) that onnxruntime and
# other runtimes read. The work is Python's pydlr.io.export_onnx, reached through api_r.onnx.

#' Export a model to ONNX
#'
#' Writes `model` in inference mode as an ONNX file: pydlr's native convolution kernels are exported as
#' standard ONNX `Conv` nodes (with `Relu`/`Clip` for ReLU/ReLU6, BatchNormalization folded into the
#' convolutions), so onnxruntime, OpenCV, TensorRT and others run it. The graph's input `"input"` takes what
#' [predict()] takes, channels-last `n x height x width x channels` (float32, any `n`); its output
#' `"output"` is what [predict()] returns. A layer without an ONNX translation is refused with an error
#' naming it.
#'
#' @param model A `pydlr_model`: a sequential or functional model, [application_mobilenet_v2()],
#'   [application_efficientnet_lite0()], a model made by [fine_tune()].
#' @param path The `.onnx` file to write (its folder must exist).
#' @param input_shape One sample's shape, `c(height, width, channels)`; default the model's input shape.
#' @param opset ONNX opset version (>= 13).
#' @return `path`, invisibly.
#' @family saving
#' @examples
#' \dontrun{
#' model <- application_mobilenet_v2()
#' export_onnx(model, "mobilenet_v2.onnx")
#' }
#' @md
#' @export
export_onnx <- function(model, path, input_shape = NULL, opset = 17L) {
  .check_model(model, "model")
  path <- .check_string(path, "path")
  if (!dir.exists(dirname(path.expand(path)))) {
    .input_error("path", "a file in an existing folder", path)
  }
  written <- .py_call("api_r.onnx.export_onnx", model$py, path.expand(path),
    input_shape = .check_shape(input_shape, "input_shape"), opset = .check_count(opset, "opset", min = 13L))
  invisible(written)
}

#' Run an exported ONNX file with onnxruntime
#'
#' For checking an [export_onnx()] file against [predict()]: onnxruntime (CPU) on `x`.
#'
#' @param path An `.onnx` file written by [export_onnx()].
#' @param x Inputs as for [predict()]: `n x height x width x channels`.
#' @return The output array (for a classifier, `n x classes`).
#' @family saving
#' @md
#' @export
onnxruntime_predict <- function(path, x) {
  path <- .check_string(path, "path")
  if (!file.exists(path)) .input_error("path", "an existing .onnx file", path)
  x <- .check_data(x, "x")
  .py_array("api_r.onnx.onnxruntime_predict", path.expand(path), .bridge_array_to_py(x))
}
