# reticulate's conversion methods for pydlr's R objects, so reticulate users mix them with their own Python
# code: r_to_py() hands Python the object it stands for (the model, the fitted KMeans, a Keras History, a
# layer, a callback, an optimizer spec, an Augment); py_to_r() turns pydlr models and histories made in
# Python into the R objects pydlr's verbs take.

#' Convert pydlr objects between R and Python (reticulate)
#'
#' With these methods, reticulate converts pydlr's R objects when they are passed to Python and pydlr's
#' Python objects when they come back, so pydlr mixes with your own Python code:
#' `reticulate::r_to_py(model)` is the Python model (`pydlr.Sequential`, ...), a Python function called
#' through reticulate receives it as such, and a pydlr model or `History` returned by Python code arrives
#' in R as a `pydlr_model` / `pydlr_history` that `summary()`, `fit()`, `predict()` take.
#'
#' | R object (class) | Python object |
#' |---|---|
#' | `pydlr_model` | the model (`pydlr.Sequential`, `pydlr.Model`, `pydlr.pretrained.MobileNetV2`, ...) |
#' | `pydlr_history` | `pydlr.train.History` (0-based `epoch`, as Keras) |
#' | `pydlr_kmeans` | the fitted `pydlr.cluster.KMeans` (R to Python only) |
#' | `pydlr_layer` | a new layer, e.g. `pydlr.layers.Dense` (R to Python only) |
#' | `pydlr_callback` | a new callback, e.g. `pydlr.train.EarlyStopping` (R to Python only) |
#' | `pydlr_optimizer` | an optimizer spec, e.g. `pydlr.train.optimizers.Adam` (R to Python only) |
#' | `pydlr_augmentation` | `pydlr.data.Augment` (R to Python only) |
#'
#' @param x An object.
#' @param convert Ignored: the Python object is returned without conversion (`r_to_py()`'s default), as
#'   pydlr keeps its own handles; pydlr models and histories it returns convert through `py_to_r()`.
#' @return `r_to_py()`: a Python object; `py_to_r()`: a `pydlr_model` or `pydlr_history`.
#' @name pydlr-reticulate
#' @family models
#' @examples
#' if (pydlr:::.python_ready()) {
#' model <- keras_model_sequential(input_shape = 4) |> layer_dense(2)
#' py_model <- reticulate::r_to_py(model)
#' py_model$count_params() # Python's method
#' main <- reticulate::py_run_string("import pydlr\nm = pydlr.Sequential([pydlr.layers.Dense(3)], input_shape=(2,))")
#' summary(main$m) # a pydlr_model in R
#' }
#' @md
NULL

#' @rdname pydlr-reticulate
#' @importFrom reticulate r_to_py py_to_r
#' @export
r_to_py.pydlr_model <- function(x, convert = FALSE) x$py

#' @rdname pydlr-reticulate
#' @export
r_to_py.pydlr_kmeans <- function(x, convert = FALSE) x$model

#' @rdname pydlr-reticulate
#' @export
r_to_py.pydlr_history <- function(x, convert = FALSE) {
  h <- .py_call("api_r.training.history_from_r", x$metrics, as.list(x$epoch), x$params, .convert = FALSE)
  h
}

#' @rdname pydlr-reticulate
#' @export
r_to_py.pydlr_layer <- function(x, convert = FALSE) {
  layer <- .py_call("api_r.models.layer", x$type, Filter(Negate(is.null), x$config), .convert = FALSE)
  layer
}

#' @rdname pydlr-reticulate
#' @export
r_to_py.pydlr_callback <- function(x, convert = FALSE) .py_callbacks(list(x))[[1]]

#' @rdname pydlr-reticulate
#' @export
r_to_py.pydlr_optimizer <- function(x, convert = FALSE) {
  .py_call("api_r.training.optimizer", unclass(x), .convert = FALSE)
}

#' @rdname pydlr-reticulate
#' @export
r_to_py.pydlr_augmentation <- function(x, convert = FALSE) {
  .py_call("api_r.training.augment", unclass(x), .convert = FALSE)
}

#' @rdname pydlr-reticulate
#' @export
py_to_r.pydlr.models.base.BaseModel <- function(x) .new_model(x)

#' @rdname pydlr-reticulate
#' @export
py_to_r.pydlr.train.history.History <- function(x) {
  .new_history(.py_call("api_r.training.history_to_r", x))
}
