# On-the-fly data augmentation settings for fit(): R describes them, Python applies them per batch
# (one batched affine resampling per batch, in worker processes that prefetch when `workers > 0`).

#' Random image augmentation for fit()
#'
#' Describes the random transformations applied to each training batch on the fly, as the keras
#' preprocessing layers `layer_random_flip()`, `layer_random_rotation()`, ... do. Pass it to
#' [fit()] as `augment =`, with `workers =` CPU processes preparing the next batches while the model
#' trains on the current one. Each batch's random draws depend only on the seed, the epoch and the
#' step, so runs are reproducible and identical with or without workers.
#'
#' @param flip `NULL`, `"horizontal"`, `"vertical"` or `"horizontal_and_vertical"`.
#' @param rotation Largest rotation as a fraction of a full turn (keras' `RandomRotation` factor), in
#'   `[0, 0.5]`.
#' @param shift Largest translation as a fraction of the height and width (one number or two), in `[0, 1)`.
#' @param zoom Scale drawn from `[1 - zoom, 1 + zoom]`, in `[0, 1)`.
#' @param brightness,contrast keras' `RandomBrightness` / `RandomContrast` factors, in `[0, 1)`.
#' @param fill_mode How to fill pixels coming from outside the image: `"reflect"`, `"nearest"` or
#'   `"constant"`.
#' @return A `pydlr_augmentation` object.
#' @family training
#' @examples
#' aug <- augmentation(flip = "horizontal", rotation = 0.05, zoom = 0.1)
#' aug
#' @export
#' @md
augmentation <- function(flip = NULL, rotation = 0, shift = 0, zoom = 0, brightness = 0, contrast = 0,
                         fill_mode = c("reflect", "nearest", "constant")) {
  flips <- c("horizontal", "vertical", "horizontal_and_vertical")
  if (!is.null(flip) && !(is.character(flip) && length(flip) == 1L && flip %in% flips)) {
    .input_error("flip", "NULL or one of \"horizontal\", \"vertical\", \"horizontal_and_vertical\"", flip)
  }
  fraction <- function(value, name, upper = 1, n = 1L) {
    ok <- is.numeric(value) && length(value) %in% seq_len(n) && !anyNA(value) &&
      all(value >= 0) && all(value < upper)
    if (!ok) .input_error(name, sprintf("a number in [0, %g)", upper), value, call = sys.call(-1))
    as.numeric(value)
  }
  settings <- list(
    flip = flip,
    rotation = fraction(rotation, "rotation", upper = 0.5 + 1e-9),
    shift = as.list(rep_len(fraction(shift, "shift", n = 2L), 2L)),
    zoom = fraction(zoom, "zoom"),
    brightness = fraction(brightness, "brightness"),
    contrast = fraction(contrast, "contrast"),
    fill_mode = .match_choice(fill_mode, "fill_mode")
  )
  structure(settings, class = "pydlr_augmentation")
}

#' @export
print.pydlr_augmentation <- function(x, ...) {
  active <- Filter(function(v) !is.null(v) && !identical(v, 0) && !all(unlist(v) == 0), unclass(x))
  active$fill_mode <- NULL
  parts <- vapply(names(active), function(n) paste0(n, " = ", paste(unlist(active[[n]]), collapse = "/")), "")
  cat("<pydlr augmentation>", if (length(parts)) paste(parts, collapse = ", ") else "none", "\n")
  invisible(x)
}

.check_augmentation <- function(augment, x, call = sys.call(sys.parent())) {
  if (is.null(augment)) return(NULL)
  if (!inherits(augment, "pydlr_augmentation")) {
    .input_error("augment", "NULL or an augmentation(...)", augment, call = call)
  }
  if (length(dim(x)) < 3L) {
    .input_error("augment", "image data (an n x height x width [x channels] array) to augment",
      I(sprintf("data of dim c(%s)", paste(dim(x), collapse = ", "))), call = call)
  }
  unclass(augment)
}

#' Augment a data set once, beforehand
#'
#' The alternative to augmenting on the fly ([fit()]'s `augment`): returns the original images (with
#' `include_original`) followed by `copies` randomly augmented versions of each, with the labels repeated
#' alongside, to train on as ordinary arrays. Costs memory (`copies + 1` times the data) but no time per
#' epoch.
#'
#' @param x Images, `n x height x width x channels` (or `n x height x width`, one channel).
#' @param y Labels (a vector or factor, one per image), or `NULL`.
#' @param augment An [augmentation()].
#' @param copies Augmented copies of each image.
#' @param seed Seed of the random transformations.
#' @param include_original Keep the original images first.
#' @return `list(x, y)`: `x` a numeric array of `(copies + include_original) * n` images, `y` the labels
#'   repeated (a factor when `y` is one), or `NULL`.
#' @family training
#' @examples
#' if (pydlr:::.python_ready()) {
#'   x <- array(runif(4 * 8 * 8), c(4, 8, 8, 1))
#'   more <- augment_beforehand(x, y = 0:3, augmentation(flip = "horizontal"), copies = 2)
#'   dim(more$x) # 12 8 8 1: the originals, then two augmented copies
#'   more$y
#' }
#' @export
#' @md
augment_beforehand <- function(x, y = NULL, augment, copies = 1L, seed = 0L, include_original = TRUE) {
  x <- .check_data(x, "x")
  if (length(dim(x)) == 3L) dim(x) <- c(dim(x), 1L)
  if (length(dim(x)) != 4L) .input_error("x", "images, an n x height x width x channels array", x)
  augment <- .check_augmentation(augment, x)
  if (is.null(augment)) .input_error("augment", "an augmentation(...)", NULL)
  levels <- if (is.factor(y)) levels(y)
  yp <- if (!is.null(y)) .to_py(.check_targets(y, dim(x)[1]))
  res <- .py_call("api_r.training.augment_beforehand", .to_py(x), yp, augment = augment,
    copies = .check_count(copies, "copies"), seed = .check_count(seed, "seed", min = 0L),
    include_original = .check_flag(include_original, "include_original"), .convert = FALSE)
  x_out <- .bridge_from_py(reticulate::py_get_item(res, "x"))
  y_out <- if (!is.null(y)) as.vector(.bridge_from_py(reticulate::py_get_item(res, "y")))
  if (!is.null(levels)) y_out <- factor(levels[y_out + 1L], levels = levels)
  list(x = x_out, y = y_out)
}
