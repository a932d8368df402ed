# keras3's metric_*() objects: R descriptions of keras.metrics classes (class name + arguments) that
# compile() hands to pydlr's Python core (pydlr.metrics), where they are built and updated.

.metric <- function(class_name, ...) {
  structure(list(class_name = class_name, config = Filter(Negate(is.null), list(...))), class = "pydlr_metric")
}

#' @export
#' @md
print.pydlr_metric <- function(x, ...) {
  shown <- vapply(x$config, function(v) paste(format(unlist(v)), collapse = ", "), character(1))
  cat(sprintf("<pydlr metric %s>(%s)\n", x$class_name, paste(names(shown), shown, sep = " = ", collapse = ", ")))
  invisible(x)
}

# compile()'s `metrics`: names and metric_*() objects, as Python takes them (strings and class configs).
.py_metrics <- function(metrics, call = sys.call(sys.parent())) {
  if (is.null(metrics)) return(list())
  if (inherits(metrics, "pydlr_metric")) metrics <- list(metrics)
  if (is.character(metrics)) metrics <- as.list(metrics)
  ok <- is.list(metrics) && all(vapply(metrics, function(m) {
    inherits(m, "pydlr_metric") || (is.character(m) && length(m) == 1L && !is.na(m))
  }, logical(1)))
  if (!ok) .input_error("metrics", "metric names such as \"accuracy\" or metric_*() objects", metrics, call = call)
  lapply(unname(metrics), function(m) if (is.character(m)) m else unclass(m))
}

.metric_threshold <- function(x, arg, call = sys.call(sys.parent())) .check_number(x, arg, 0, 1, null_ok = TRUE, call = call)

#' Metrics for compile()
#'
#' keras3's metric objects, for `compile(metrics = list(...))`: the history's columns take their `name`
#' (`"auc"`, `"precision"`, ...). They are computed by pydlr's Python core (`pydlr.metrics`): AUC, precision,
#' recall and F1 over every prediction of the epoch (the exact areas, as scikit-learn's `roc_auc_score()` and
#' `average_precision_score()`), the accuracies and errors as means over samples.
#'
#' @param num_thresholds Accepted for keras3's calls; pydlr computes the exact area (keras approximates it
#'   on this many bins).
#' @param curve `"ROC"` or `"PR"` (the area under the precision-recall curve, as average precision).
#' @param summation_method Accepted for keras3's calls (`"interpolation"`, `"minoring"`, `"majoring"`).
#' @param name The metric's name in the history; keras' default when `NULL`.
#' @param thresholds For `metric_auc()`, `NULL` (exact) or numbers in `[0, 1]` to compute the area on; for
#'   `metric_precision()` / `metric_recall()`, the one threshold above which a prediction counts as positive
#'   (`NULL`: 0.5).
#' @param multi_label `FALSE`: every column is one pooled binary problem; `TRUE`: the mean of the areas of the
#'   columns.
#' @param from_logits Whether the predictions are logits (a sigmoid is applied first).
#' @param top_k With a column per class: only each row's `top_k` largest predictions can be positives.
#' @param class_id Only this column (0-based, as keras) counts.
#' @param average `"micro"`, `"macro"` or `"weighted"` (compile() needs one; `NULL` gives one value per class).
#' @param threshold For `metric_f1_score()`: `NULL` (each row's largest prediction is its class) or a
#'   number (every column above it is positive); for `metric_binary_accuracy()`, the threshold (0.5).
#' @param k How many of the largest predictions count as a hit.
#' @param ... Other keras3 arguments (`dtype`, `label_weights`, ...) are not supported.
#' @return A `pydlr_metric` for [compile()]'s `metrics`.
#' @family metrics
#' @export
#' @md
#' @examples
#' metric_auc()
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 1, activation = "sigmoid")
#'   compile(model, optimizer = "adam", loss = "binary_crossentropy",
#'     metrics = list(metric_auc(), metric_precision(), metric_recall()))
#' }
metric_auc <- function(..., num_thresholds = 200L, curve = "ROC", summation_method = "interpolation", name = NULL,
                       thresholds = NULL, multi_label = FALSE, from_logits = FALSE) {
  .check_no_dots(list(...), "metric_auc()", "see ?metric_auc.")
  if (!is.null(thresholds) && (!is.numeric(thresholds) || anyNA(thresholds) || any(thresholds < 0 | thresholds > 1))) {
    .input_error("thresholds", "NULL or numbers in [0, 1]", thresholds)
  }
  .metric("AUC", num_thresholds = .check_count(num_thresholds, "num_thresholds", min = 2L),
    curve = toupper(.check_string(curve, "curve", c("roc", "pr"))),
    summation_method = .check_string(summation_method, "summation_method", c("interpolation", "minoring", "majoring")),
    name = .check_string(name, "name", null_ok = TRUE), thresholds = if (!is.null(thresholds)) as.list(thresholds),
    multi_label = .check_flag(multi_label, "multi_label"), from_logits = .check_flag(from_logits, "from_logits"))
}

#' @rdname metric_auc
#' @export
#' @md
metric_precision <- function(..., thresholds = NULL, top_k = NULL, class_id = NULL, name = NULL) {
  .check_no_dots(list(...), "metric_precision()", "see ?metric_precision.")
  .metric("Precision", thresholds = .metric_threshold(thresholds, "thresholds"),
    top_k = .check_count(top_k, "top_k", null_ok = TRUE), class_id = .check_count(class_id, "class_id", min = 0L, null_ok = TRUE),
    name = .check_string(name, "name", null_ok = TRUE))
}

#' @rdname metric_auc
#' @export
#' @md
metric_recall <- function(..., thresholds = NULL, top_k = NULL, class_id = NULL, name = NULL) {
  .check_no_dots(list(...), "metric_recall()", "see ?metric_recall.")
  .metric("Recall", thresholds = .metric_threshold(thresholds, "thresholds"),
    top_k = .check_count(top_k, "top_k", null_ok = TRUE), class_id = .check_count(class_id, "class_id", min = 0L, null_ok = TRUE),
    name = .check_string(name, "name", null_ok = TRUE))
}

#' @rdname metric_auc
#' @export
#' @md
metric_f1_score <- function(..., average = NULL, threshold = NULL, name = "f1_score") {
  .check_no_dots(list(...), "metric_f1_score()", "see ?metric_f1_score.")
  .metric("F1Score", average = .check_string(average, "average", c("micro", "macro", "weighted"), null_ok = TRUE),
    threshold = .metric_threshold(threshold, "threshold"), name = .check_string(name, "name"))
}

#' @rdname metric_auc
#' @export
#' @md
metric_binary_accuracy <- function(..., threshold = 0.5, name = "binary_accuracy") {
  .check_no_dots(list(...), "metric_binary_accuracy()", "see ?metric_binary_accuracy.")
  .metric("BinaryAccuracy", threshold = .check_number(threshold, "threshold"), name = .check_string(name, "name"))
}

#' @rdname metric_auc
#' @export
#' @md
metric_accuracy <- function(..., name = "accuracy") {
  .check_no_dots(list(...), "metric_accuracy()", "see ?metric_accuracy.")
  .metric("Accuracy", name = .check_string(name, "name"))
}

#' @rdname metric_auc
#' @export
#' @md
metric_categorical_accuracy <- function(..., name = "categorical_accuracy") {
  .check_no_dots(list(...), "metric_categorical_accuracy()", "see ?metric_categorical_accuracy.")
  .metric("CategoricalAccuracy", name = .check_string(name, "name"))
}

#' @rdname metric_auc
#' @export
#' @md
metric_sparse_categorical_accuracy <- function(..., name = "sparse_categorical_accuracy") {
  .check_no_dots(list(...), "metric_sparse_categorical_accuracy()", "see ?metric_sparse_categorical_accuracy.")
  .metric("SparseCategoricalAccuracy", name = .check_string(name, "name"))
}

#' @rdname metric_auc
#' @export
#' @md
metric_top_k_categorical_accuracy <- function(..., k = 5L, name = "top_k_categorical_accuracy") {
  .check_no_dots(list(...), "metric_top_k_categorical_accuracy()", "see ?metric_top_k_categorical_accuracy.")
  .metric("TopKCategoricalAccuracy", k = .check_count(k, "k"), name = .check_string(name, "name"))
}

#' @rdname metric_auc
#' @export
#' @md
metric_sparse_top_k_categorical_accuracy <- function(..., k = 5L, name = "sparse_top_k_categorical_accuracy") {
  .check_no_dots(list(...), "metric_sparse_top_k_categorical_accuracy()", "see ?metric_sparse_top_k_categorical_accuracy.")
  .metric("SparseTopKCategoricalAccuracy", k = .check_count(k, "k"), name = .check_string(name, "name"))
}

#' @rdname metric_auc
#' @export
#' @md
metric_mean_squared_error <- function(..., name = "mean_squared_error") {
  .check_no_dots(list(...), "metric_mean_squared_error()", "see ?metric_mean_squared_error.")
  .metric("MeanSquaredError", name = .check_string(name, "name"))
}

#' @rdname metric_auc
#' @export
#' @md
metric_mean_absolute_error <- function(..., name = "mean_absolute_error") {
  .check_no_dots(list(...), "metric_mean_absolute_error()", "see ?metric_mean_absolute_error.")
  .metric("MeanAbsoluteError", name = .check_string(name, "name"))
}
