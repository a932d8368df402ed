# Images read from a folder with one subfolder per class (pydlr.data.load_image_folder).

#' Images from a folder with one subfolder per class
#'
#' Reads every PNG/JPEG file under `directory/<class>/`, resized to `image_size`, as keras3's
#' `image_dataset_from_directory()` names and orders the classes (alphabetically), but into memory as
#' arrays ready for [fit()]. The images come in a random order by default, as in keras: in folder order
#' every class sits in one block, and `fit(validation_split = )`, which takes the last samples, would
#' validate on classes never trained on.
#'
#' @param directory A folder with one subfolder per class.
#' @param image_size `c(height, width)` every image is resized to.
#' @param color_mode `"rgb"`, `"grayscale"` or `"rgba"`.
#' @param interpolation `"bilinear"`, `"nearest"`, `"bicubic"` or `"lanczos"`.
#' @param shuffle Return the images in a random order (`FALSE`: class by class, files sorted by path).
#' @param seed A whole number for the same order every time; `NULL` draws one from R's generator, so
#'   `set.seed()` makes the order reproducible too.
#' @return A list: `x` an integer array `n x height x width x channels` with values 0-255, `y` the
#'   0-based class of each image, `class_names` the subfolder names (class `i` is `class_names[i + 1]`).
#' @family datasets
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready()) {
#'   dir <- file.path(tempdir(), "pets")
#'   for (cls in c("cats", "cups")) dir.create(file.path(dir, cls), recursive = TRUE, showWarnings = FALSE)
#'   if (requireNamespace("png", quietly = TRUE)) {
#'     png::writePNG(example_image("chelsea") / 255, file.path(dir, "cats", "chelsea.png"))
#'     png::writePNG(example_image("coffee") / 255, file.path(dir, "cups", "coffee.png"))
#'     images <- load_image_folder(dir, image_size = c(32, 32))
#'     str(images)
#'   }
#' }
load_image_folder <- function(directory, image_size = c(256, 256), color_mode = "rgb",
                              interpolation = "bilinear", shuffle = TRUE, seed = NULL) {
  directory <- .check_string(directory, "directory")
  if (!dir.exists(directory)) .input_error("directory", "an existing folder with one subfolder per class", directory)
  image_size <- .check_int_tuple(image_size, "image_size")
  color_mode <- .check_string(color_mode, "color_mode", c("rgb", "grayscale", "rgba"))
  interpolation <- .check_string(interpolation, "interpolation", c("bilinear", "nearest", "bicubic", "lanczos"))
  shuffle <- .check_flag(shuffle, "shuffle")
  seed <- .check_count(seed, "seed", min = 0L, null_ok = TRUE)
  if (is.null(seed) && shuffle) seed <- sample.int(.Machine$integer.max, 1L)
  res <- .py_call("api_r.datasets.load_image_folder", normalizePath(directory), image_size, color_mode, interpolation,
    shuffle = shuffle, seed = seed, .convert = FALSE)
  y <- .bridge_from_py(reticulate::py_get_item(res, "y"))
  dim(y) <- NULL
  list(x = .bridge_from_py(reticulate::py_get_item(res, "x")), y = y,
    class_names = reticulate::py_to_r(reticulate::py_get_item(res, "class_names")))
}
