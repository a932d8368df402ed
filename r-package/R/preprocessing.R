# keras3's preprocessing and augmentation layers. The random ones are pydlr's augmentation (the code behind
# fit(augment = augmentation(...))) inside the model: random in training, the identity in predict().

# A keras factor: one number, or c(lower, upper) (a Python list: a range).
.check_factor <- function(x, arg, call = sys.call(sys.parent())) {
  ok <- is.numeric(x) && length(x) %in% c(1L, 2L) && !anyNA(x) && all(is.finite(x)) &&
    (length(x) == 1L || x[1] <= x[2]) && (length(x) == 2L || x >= 0)
  if (!ok) .input_error(arg, "a number >= 0, or c(lower, upper) with lower <= upper", x, call = call)
  if (length(x) == 2L) as.list(as.numeric(x)) else as.numeric(x)
}

.fill_args <- function(fill_mode, interpolation, fill_value, call = sys.call(sys.parent())) {
  list(fill_mode = .check_string(fill_mode, "fill_mode", c("reflect", "nearest", "constant"), call = call),
    interpolation = .check_string(interpolation, "interpolation", c("bilinear", "nearest", "bicubic"), call = call),
    fill_value = .check_number(fill_value, "fill_value", call = call))
}

#' Random image augmentation layers
#'
#' keras3's augmentation layers: random transformations of each training batch inside the model (and
#' nothing in [predict()] or [evaluate()]). They are the transformations of [augmentation()], run by the
#' model on its own device. A `seed` makes their draws reproducible; without one they follow
#' [set_random_seed()] and `fit(seed = )`.
#'
#' @inheritParams layer_conv_2d
#' @param mode `"horizontal"` (left-right), `"vertical"` or `"horizontal_and_vertical"`.
#' @param factor For rotations, a fraction of a full turn: `0.1` turns by up to 36 degrees either way,
#'   `c(lower, upper)` within that range (positive is counter-clockwise). For contrast, the factor is drawn
#'   in `[1 - lower, 1 + upper]` (one number: both).
#' @param height_factor,width_factor For zooms, the zoom range (`0.2` is -20% to +20%; positive zooms out,
#'   negative zooms in; `width_factor = NULL` keeps the aspect ratio); for translations, the shift as a
#'   fraction of the height and width (positive moves down / right). One number or `c(lower, upper)`.
#' @param fill_mode How pixels from outside the image are filled: `"reflect"`, `"nearest"` or `"constant"`.
#' @param interpolation `"bilinear"`, `"nearest"` or `"bicubic"`.
#' @param fill_value The value outside the image with `fill_mode = "constant"`.
#' @param value_range `c(low, high)` of the pixel values; the output is clipped to it.
#' @param seed `NULL` or a whole number.
#' @family layers
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   keras_model_sequential(input_shape = c(28, 28, 1)) |>
#'     layer_random_flip("horizontal") |>
#'     layer_random_rotation(0.05) |>
#'     layer_random_zoom(0.1)
#' }
layer_random_flip <- function(object = NULL, mode = "horizontal_and_vertical", seed = NULL, ...) {
  .layer(object, "RandomFlip", list(
    mode = .check_string(mode, "mode", c("horizontal", "vertical", "horizontal_and_vertical")),
    seed = .check_count(seed, "seed", min = 0L, null_ok = TRUE)
  ), list(...))
}

#' @rdname layer_random_flip
#' @export
#' @md
layer_random_rotation <- function(object = NULL, factor, fill_mode = "reflect", interpolation = "bilinear",
                                  seed = NULL, fill_value = 0, ...) {
  .layer(object, "RandomRotation", c(list(factor = .check_factor(factor, "factor")),
    .fill_args(fill_mode, interpolation, fill_value),
    list(seed = .check_count(seed, "seed", min = 0L, null_ok = TRUE))), list(...))
}

#' @rdname layer_random_flip
#' @export
#' @md
layer_random_zoom <- function(object = NULL, height_factor, width_factor = NULL, fill_mode = "reflect",
                              interpolation = "bilinear", seed = NULL, fill_value = 0, ...) {
  .layer(object, "RandomZoom", c(list(height_factor = .check_factor(height_factor, "height_factor"),
    width_factor = if (!is.null(width_factor)) .check_factor(width_factor, "width_factor")),
    .fill_args(fill_mode, interpolation, fill_value),
    list(seed = .check_count(seed, "seed", min = 0L, null_ok = TRUE))), list(...))
}

#' @rdname layer_random_flip
#' @export
#' @md
layer_random_translation <- function(object = NULL, height_factor, width_factor, fill_mode = "reflect",
                                     interpolation = "bilinear", seed = NULL, fill_value = 0, ...) {
  .layer(object, "RandomTranslation", c(list(height_factor = .check_factor(height_factor, "height_factor"),
    width_factor = .check_factor(width_factor, "width_factor")),
    .fill_args(fill_mode, interpolation, fill_value),
    list(seed = .check_count(seed, "seed", min = 0L, null_ok = TRUE))), list(...))
}

#' @rdname layer_random_flip
#' @export
#' @md
layer_random_contrast <- function(object = NULL, factor, value_range = c(0, 255), seed = NULL, ...) {
  ok <- is.numeric(value_range) && length(value_range) == 2L && !anyNA(value_range) && value_range[1] < value_range[2]
  if (!ok) .input_error("value_range", "c(low, high) with low < high", value_range)
  .layer(object, "RandomContrast", list(factor = .check_factor(factor, "factor"),
    value_range = as.list(as.numeric(value_range)), seed = .check_count(seed, "seed", min = 0L, null_ok = TRUE)),
    list(...))
}

#' Resizing and center-crop layers
#'
#' keras3's `layer_resizing()` resizes every image to `height x width` (optionally cropping or padding to
#' the target's aspect ratio first); `layer_center_crop()` keeps the central `height x width` window (an
#' image smaller than that is resized to it). Both apply in training and inference, and change the
#' model's output shape (see [summary()]).
#'
#' @inheritParams layer_conv_2d
#' @param height,width The output size in pixels.
#' @param interpolation `"bilinear"`, `"nearest"`, `"bicubic"` or `"area"`.
#' @param crop_to_aspect_ratio Crop the largest centred window with the target's aspect ratio first.
#' @param pad_to_aspect_ratio Pad (with `fill_value`) to the target's aspect ratio first.
#' @param fill_value The padding's value.
#' @param antialias Smooth when shrinking (bilinear and bicubic).
#' @family layers
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   keras_model_sequential(input_shape = c(32, 40, 3)) |>
#'     layer_resizing(48, 48, crop_to_aspect_ratio = TRUE) |>
#'     layer_center_crop(40, 40)
#' }
layer_resizing <- function(object = NULL, height, width, interpolation = "bilinear", crop_to_aspect_ratio = FALSE,
                           pad_to_aspect_ratio = FALSE, fill_value = 0, antialias = FALSE, ...) {
  .layer(object, "Resizing", list(height = .check_count(height, "height"), width = .check_count(width, "width"),
    interpolation = .check_string(interpolation, "interpolation", c("bilinear", "nearest", "bicubic", "area")),
    crop_to_aspect_ratio = .check_flag(crop_to_aspect_ratio, "crop_to_aspect_ratio"),
    pad_to_aspect_ratio = .check_flag(pad_to_aspect_ratio, "pad_to_aspect_ratio"),
    fill_value = .check_number(fill_value, "fill_value"), antialias = .check_flag(antialias, "antialias")),
    list(...))
}

#' @rdname layer_resizing
#' @export
#' @md
layer_center_crop <- function(object = NULL, height, width, ...) {
  .layer(object, "CenterCrop", list(height = .check_count(height, "height"), width = .check_count(width, "width")),
    list(...))
}
