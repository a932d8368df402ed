# Save and load models: architecture as JSON + weights as safetensors (never pickle), the same files as
# Python's pydlr.io.save_model / load_model, so models move between R and Python.

# keras' HDF5 names (.h5, .weights.h5, .hdf5): pydlr writes and reads safetensors only, and safetensors under an
# .h5 name would mislead every tool that trusts the suffix, so the name is refused with the line to write instead.
.check_not_hdf5 <- function(filepath, instead, call = sys.call(sys.parent())) {
  ext <- tolower(tools::file_ext(filepath))
  if (!ext %in% c("h5", "hdf5")) return(invisible(filepath))
  fixed <- sub("\\.[^.]+$", ".safetensors", basename(filepath))
  .input_error("filepath", sprintf(
    "a safetensors file name (or a directory): pydlr writes and reads safetensors, never HDF5 (.h5); use \"%s\" and write %s",
    fixed, sprintf(instead, fixed)), filepath, call = call)
}

#' Save a model
#'
#' Writes the architecture (JSON), the weights and, with `include_optimizer`, the optimizer state
#' (safetensors; never pickle), so that [load_model()] in R, or `pydlr.load_model()` in Python, restores the
#' model exactly, with the classes it was trained on (the factor levels of `y`, or an image dataset's class
#' names), so that [predict()] with `type = "class"` names them after [load_model()]. The format depends on
#' `filepath`'s extension:
#' * `.pydlr`, `.keras` or `.safetensors`: one file (the architecture is stored in its metadata);
#' * anything else (e.g. `"my_model"`): a folder holding `config.json`, `model.safetensors` and, with the
#'   optimizer, `optimizer.safetensors` and `optimizer.json`.
#'
#' A model kept with `saveRDS()` or in a saved workspace cannot be used in a later R session (its weights
#' live in Python): save it with `save_model()` and restore it with `load_model()`.
#'
#' @param model A `pydlr_model`.
#' @param filepath Where to write: a file path ending in `.pydlr` (one file), or a folder path (see above).
#'   keras' HDF5 names (`"m.h5"`) are refused: pydlr writes safetensors.
#' @param overwrite Replace an existing model at `filepath`.
#' @param include_optimizer Also save the optimizer state, to continue training after loading.
#' @param ... Other keras3 arguments (`zipped`) are not supported.
#' @return `filepath` (the file, or the folder, written), invisibly.
#' @family models
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   save_model(model, file.path(tempdir(), "model.safetensors"), overwrite = TRUE)
#' }
save_model <- function(model, filepath, overwrite = FALSE, include_optimizer = TRUE, ...) {
  .check_model(model, "model")
  .check_no_dots(list(...), "save_model()", "pydlr's save_model() takes model, filepath, overwrite, include_optimizer.")
  filepath <- .check_string(filepath, "filepath")
  .check_not_hdf5(filepath, "save_model(model, \"%s\")")
  overwrite <- .check_flag(overwrite, "overwrite")
  if (file.exists(filepath) && !overwrite) {
    .input_error("filepath", "a path that does not exist yet (or overwrite = TRUE)", filepath)
  }
  if (!dir.exists(dirname(filepath))) .input_error("filepath", "a path in an existing directory", filepath)
  .py_call("api_r.saving.save_model", model$py, normalizePath(filepath, mustWork = FALSE),
    include_optimizer = .check_flag(include_optimizer, "include_optimizer"))
  invisible(filepath)
}

#' Load a model
#'
#' Loads a model saved by [save_model()] in R or by `pydlr.io.save_model()` in Python.
#'
#' @param filepath Path of the saved model.
#' @param custom_objects,compile,safe_mode keras3 arguments: only the defaults are supported (pydlr never
#'   unpickles, so loading is always safe; the optimizer state is restored when it was saved).
#' @return A `pydlr_model`.
#' @family models
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   path <- file.path(tempdir(), "model.safetensors")
#'   save_model(model, path, overwrite = TRUE)
#'   same <- load_model(path)
#'   all.equal(get_weights(same), get_weights(model))
#' }
load_model <- function(filepath, custom_objects = NULL, compile = TRUE, safe_mode = TRUE) {
  filepath <- .check_string(filepath, "filepath")
  .check_not_hdf5(filepath, "load_model(\"%s\")")
  .check_unsupported(custom_objects, "custom_objects", "pydlr models are built from pydlr's own layers.")
  if (!file.exists(filepath)) .input_error("filepath", "the path of a saved model", filepath)
  compile <- .check_flag(compile, "compile")
  .check_flag(safe_mode, "safe_mode")
  py <- .py_call("api_r.saving.load_model", normalizePath(filepath), compile = compile, .convert = FALSE)
  # the classes it was trained on (a factor's levels), for predict(type = "class") and evaluate()'s checks
  .new_model(py, levels = unlist(.py_call("api_r.saving.class_names", py)))
}

#' Save and load only the weights of a model
#'
#' `save_model_weights()` writes the model's weights (torch's key names and layouts) to one safetensors
#' file; `load_model_weights()` copies such a file, or one written by `callback_model_checkpoint(
#' save_weights_only = TRUE)` or by Python's `pydlr.io.save_weights()`, into a model of the same
#' architecture, in place.
#'
#' @param model A `pydlr_model`.
#' @param filepath Path of the weights file (e.g. `"model.weights.safetensors"`).
#' @param overwrite Replace an existing file.
#' @return `filepath` (save) or the model (load), invisibly.
#' @family models
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   path <- file.path(tempdir(), "weights.safetensors")
#'   save_model_weights(model, path, overwrite = TRUE)
#'   load_model_weights(model, path)
#' }
save_model_weights <- function(model, filepath, overwrite = FALSE) {
  .check_model(model, "model")
  filepath <- .check_string(filepath, "filepath")
  .check_not_hdf5(filepath, "save_model_weights(model, \"%s\")")
  if (file.exists(filepath) && !.check_flag(overwrite, "overwrite")) {
    .input_error("filepath", "a path that does not exist yet (or overwrite = TRUE)", filepath)
  }
  if (!dir.exists(dirname(filepath))) .input_error("filepath", "a path in an existing directory", filepath)
  .py_call("api_r.saving.save_weights", model$py, normalizePath(filepath, mustWork = FALSE))
  invisible(filepath)
}

#' @rdname save_model_weights
#' @export
#' @md
load_model_weights <- function(model, filepath) {
  .check_model(model, "model")
  filepath <- .check_string(filepath, "filepath")
  .check_not_hdf5(filepath, "load_model_weights(model, \"%s\")")
  if (!file.exists(filepath)) .input_error("filepath", "the path of a saved weights file", filepath)
  .py_call("api_r.saving.load_weights", model$py, normalizePath(filepath), .convert = FALSE)
  invisible(model)
}
