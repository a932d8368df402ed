# keras3's image_load() / image_to_array(): one image file as an array, for predicting on a photo of your own.
# R holds the pixels themselves rather than a Python image object, so image_load() already gives an array
# (integers 0-255, as example_image()) and image_to_array() makes it the double array keras3's gives.

#' Load one image file
#'
#' keras3's `image_load()`: the image in `path` (PNG, JPEG, BMP, GIF, ...) converted to `color_mode` and,
#' when `target_size` is given, resized to it, by the decoder, colour modes and resampling filters of
#' [image_dataset_from_directory()]. Use it to predict on one photo of your own with a model trained on a
#' folder: give it the model's input size and colour mode, and add the batch axis.
#'
#' @param path An image file.
#' @param color_mode `"rgb"`, `"grayscale"` or `"rgba"`.
#' @param target_size `NULL` (the image's own size) or `c(height, width)`.
#' @param interpolation The resampling filter for `target_size`: `"nearest"` (keras' default here),
#'   `"bilinear"`, `"bicubic"`, `"area"`, `"lanczos3"` or `"lanczos5"`.
#' @param keep_aspect_ratio Resize the largest centred crop with the target aspect ratio instead of squashing
#'   the image.
#' @return An integer array `height x width x channels` with values 0-255 (1 channel for `"grayscale"`,
#'   3 for `"rgb"`, 4 for `"rgba"`); `plot(as.raster(img / 255))` shows an RGB one.
#' @seealso [image_to_array()], [image_dataset_from_directory()].
#' @family datasets
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready() && requireNamespace("png", quietly = TRUE)) {
#'   path <- tempfile(fileext = ".png")
#'   png::writePNG(example_image("coffee") / 255, path)
#'   img <- image_load(path, target_size = c(96, 96))
#'   dim(img)
#'   x <- image_to_array(img)
#'   x <- array(x, c(1, dim(x))) # the batch axis: one image
#'   dim(x)
#' }
image_load <- function(path, color_mode = c("rgb", "grayscale", "rgba"), target_size = NULL,
                       interpolation = "nearest", keep_aspect_ratio = FALSE) {
  call <- sys.call()
  if (!(is.character(path) && length(path) == 1L && !is.na(path) && file.exists(path) && !dir.exists(path))) {
    .input_error("path", "the path of an existing image file", path, call = call)
  }
  color_mode <- .match_choice(color_mode, "color_mode", call = call)
  target_size <- .check_int_tuple(target_size, "target_size", null_ok = TRUE, call = call)
  interpolation <- .check_string(interpolation, "interpolation",
    c("nearest", "bilinear", "bicubic", "area", "lanczos3", "lanczos5"), call = call)
  keep_aspect_ratio <- .check_flag(keep_aspect_ratio, "keep_aspect_ratio", call = call)
  .py_array("api_r.datasets.image_load", normalizePath(path.expand(path)), color_mode = color_mode,
    target_size = target_size, interpolation = interpolation, keep_aspect_ratio = keep_aspect_ratio, .call = call)
}

#' An image as an array
#'
#' keras3's `image_to_array()`: an image from [image_load()] (or any `height x width` or
#' `height x width x channels` array of pixel values) as a double array `height x width x channels`, a grey
#' image given its channel axis. Values are kept (0-255 from [image_load()]).
#'
#' @param img An image array.
#' @param data_format `NULL` or `"channels_last"` (pydlr is channels-last).
#' @param dtype `NULL`, `"float32"` or `"float64"` (R stores both as doubles), or `"int32"` for integers.
#' @return A numeric array `height x width x channels`.
#' @seealso [image_load()].
#' @family datasets
#' @md
#' @export
#' @examples
#' img <- array(0:15, c(4, 4))
#' dim(image_to_array(img))
image_to_array <- function(img, data_format = NULL, dtype = NULL) {
  call <- sys.call()
  data_format <- .check_string(data_format, "data_format", "channels_last", null_ok = TRUE, call = call)
  dtype <- .check_string(dtype, "dtype", c("float32", "float64", "int32"), null_ok = TRUE, call = call)
  d <- dim(img)
  if (!(is.numeric(img) && length(d) %in% 2:3)) {
    .input_error("img", "an image array (height x width, or height x width x channels, from image_load())",
      img, call = call)
  }
  out <- if (identical(dtype, "int32")) {
    if (any(img != round(img), na.rm = TRUE)) {
      .input_error("img", "whole-number pixel values for dtype = \"int32\"", "fractional values", call = call)
    }
    as.integer(img)
  } else {
    as.double(img)
  }
  array(out, if (length(d) == 2L) c(d, 1L) else d)
}
