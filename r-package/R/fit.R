# fit(), evaluate(), predict(): R checks the data and arguments, the bridge hands the arrays to Python
# without element-wise conversion, Python trains; R prints progress and formats the results.

#' Train a model
#'
#' Trains the model in place for `epochs` epochs (keras3 semantics: `model |> fit(...)` needs no
#' reassignment) and returns the history. One update per mini-batch; an epoch is `steps_per_epoch`
#' batches, by default `ceiling(n / batch_size)` (the last batch partial); with `steps_per_epoch *
#' batch_size > n` the data cycle.
#'
#' Data cross to Python through pydlr's bridge (zero-copy views of R's memory where the layout allows).
#' `x` is samples first, channels-last, as in keras: images `n x height x width x channels`. A grey image
#' array `n x h x w` is accepted by a model with input shape `c(h, w, 1)` (one channel).
#'
#' @param object A compiled `pydlr_model`.
#' @param x Inputs: a numeric array or matrix (or a data.frame of numeric columns), samples first.
#' @param y Targets: integer class labels `0, 1, ...` (a vector or factor; for
#'   `"sparse_categorical_crossentropy"`), a one-hot matrix (for `"categorical_crossentropy"`), or numbers.
#' @param batch_size Samples per update (default 32).
#' @param epochs Number of epochs to train.
#' @param verbose `0` silent, `1` a progress bar (updated in place in an interactive console, RStudio or
#'   a terminal), `2` one line per epoch; `"auto"` (default) is `1` in an interactive session or a
#'   terminal and `2` otherwise (knitr, output to a file or a CI log). The option
#'   `pydlr.dynamic_progress = TRUE/FALSE` overrides the guess.
#' @param callbacks A list of `callback_*()` objects.
#' @param validation_split Fraction of the training data (taken from the end, before shuffling, as
#'   keras does) held out for validation.
#' @param validation_data `list(x_val, y_val)`, used instead of `validation_split`.
#' @param shuffle Shuffle the training data each epoch.
#' @param class_weight A named numeric vector or list mapping class labels (`"0"`, `"1"`, ...) to weights.
#' @param initial_epoch Epoch to start at, 1-based as in keras3 for R (useful to continue a run).
#' @param steps_per_epoch Batches per epoch (`NULL`: one pass over the data).
#' @param seed A whole number: makes the run reproducible (bit-identical weights on CPU).
#' @param resume Path of a resume checkpoint: written atomically after every epoch, and when it exists at
#'   the start, training continues from it (weights, optimizer, epoch, random state), so an interrupted
#'   run finishes with the same weights as an uninterrupted one with the same `seed`.
#' @param device `"auto"` (CUDA when present), `"cpu"` or `"cuda"`.
#' @param augment `NULL`, or an [augmentation()]: random flips, rotations, shifts, zooms, brightness and
#'   contrast applied on the fly to each training batch (image data only).
#' @param workers Augmentation worker processes that prepare the next batches while the model trains on
#'   the current one (`0`: augment in this process).
#' @param view_metrics Accepted for keras (R) scripts and ignored: pydlr opens no viewer; `plot(history)`
#'   draws the curves.
#' @param ... Other keras3 arguments (`sample_weight`, `validation_freq`, ...) are not supported.
#' @return A `pydlr_history` (see [as.data.frame.pydlr_history()] and [plot.pydlr_history()]), invisibly
#'   as in keras3 (the model itself was trained in place).
#' @family training
#' @export
#' @md
fit <- function(object, ...) UseMethod("fit")

#' @rdname fit
#' @export
#' @md
fit.pydlr_model <- function(object, x = NULL, y = NULL, batch_size = NULL, epochs = 10L, verbose = "auto",
                            callbacks = NULL, validation_split = 0, validation_data = NULL, shuffle = TRUE,
                            class_weight = NULL, initial_epoch = 1L, steps_per_epoch = NULL, seed = NULL,
                            resume = NULL, device = "auto", augment = NULL, workers = 0L,
                            view_metrics = FALSE, ...) {
  .check_no_dots(list(...), "fit()", "pydlr's fit() arguments are listed in ?fit.")
  if (!(isTRUE(view_metrics) || isFALSE(view_metrics) || identical(view_metrics, "auto"))) {
    .input_error("view_metrics", "TRUE, FALSE or \"auto\" (ignored by pydlr)", view_metrics)
  }
  if (is.null(x)) .input_error("x", "a numeric array of training inputs", x)
  x <- .check_data(x, "x")
  y <- if (is.null(y)) NULL else .check_targets(y, dim(x)[1])
  epochs <- .check_count(epochs, "epochs")
  initial_epoch <- .check_count(initial_epoch, "initial_epoch")
  if (initial_epoch > epochs) .input_error("initial_epoch", sprintf("at most epochs (%d)", epochs), initial_epoch)
  verbose <- .check_verbose(verbose)
  args <- list(
    batch_size = .check_count(batch_size, "batch_size", null_ok = TRUE),
    epochs = epochs,
    steps_per_epoch = .check_count(steps_per_epoch, "steps_per_epoch", null_ok = TRUE),
    validation_split = .check_number(validation_split, "validation_split", 0, 1),
    validation_data = .check_validation_data(validation_data),
    shuffle = .check_flag(shuffle, "shuffle"),
    class_weight = .check_class_weight(class_weight),
    initial_epoch = initial_epoch - 1L,
    callbacks = .py_callbacks(callbacks),
    verbose = verbose,
    seed = .check_count(seed, "seed", min = 0L, null_ok = TRUE),
    resume = .check_string(resume, "resume", null_ok = TRUE),
    device = .check_string(device, "device", c("auto", "cpu", "cuda")),
    print_fn = .r_callable(.console_print),
    dynamic = .dynamic_progress(),
    augment = .check_augmentation(augment, x),
    workers = .check_count(workers, "workers", min = 0L)
  )
  if (args$validation_split >= 1) .input_error("validation_split", "a fraction in [0, 1)", validation_split)
  px <- .to_py(x)
  py <- if (is.null(y)) NULL else .to_py(y)
  result <- do.call(.api_call, c(list("fit", object$py, px, py), args, list(.call = sys.call())), quote = TRUE)
  invisible(.new_history(result))
}

# In-place progress (a line rewritten with \r) in an interactive console, RStudio, or Rscript writing
# to a terminal; one line per epoch under knitr and when output goes to a file or a CI log. The option
# `pydlr.dynamic_progress` overrides the guess.
.dynamic_progress <- function() {
  guess <- (interactive() || isatty(stdout())) && !isTRUE(getOption("knitr.in.progress"))
  getOption("pydlr.dynamic_progress", guess)
}

.check_verbose <- function(verbose, call = sys.call(sys.parent())) {
  if (identical(verbose, "auto")) return(if (.dynamic_progress()) 1L else 2L)
  if (isTRUE(verbose)) return(1L)
  if (isFALSE(verbose)) return(0L)
  ok <- is.numeric(verbose) && length(verbose) == 1L && verbose %in% 0:2
  if (!ok) .input_error("verbose", "0, 1, 2 or \"auto\"", verbose, call = call)
  as.integer(verbose)
}

.check_validation_data <- function(data, call = sys.call(sys.parent())) {
  if (is.null(data)) return(NULL)
  if (!is.list(data) || length(data) != 2L) {
    .input_error("validation_data", "list(x_val, y_val)", data, call = call)
  }
  xv <- .check_data(data[[1]], "validation_data[[1]]", call = call)
  yv <- .check_targets(data[[2]], dim(xv)[1], "validation_data[[2]]", call = call)
  list(.to_py(xv), .to_py(yv))
}

.check_class_weight <- function(class_weight, call = sys.call(sys.parent())) {
  if (is.null(class_weight)) return(NULL)
  w <- unlist(class_weight)
  ok <- is.numeric(w) && !is.null(names(w)) && all(nzchar(names(w))) && !anyNA(w) && all(w >= 0) &&
    !anyNA(suppressWarnings(as.integer(names(w))))
  if (!ok) {
    .input_error("class_weight", "non-negative weights named by class label, e.g. c(\"0\" = 1, \"1\" = 2)",
      class_weight, call = call)
  }
  as.list(w)
}

# Data go to Python through the bridge owner's helper (zero-copy where the layout allows).
.to_py <- function(x) .bridge_array_to_py(x)

# Progress is printed by pydlr's progress bar through this R function, so it goes to the R console
# (RStudio included), updating one line in place when `dynamic`, one line per epoch otherwise.
.console_print <- function(text, end = "\n") {
  cat(text, end, sep = "")
  utils::flush.console()
  invisible(NULL)
}

#' Evaluate a model
#'
#' @inheritParams fit
#' @param x,y Test inputs and targets, as for [fit()].
#' @return A named list: `$loss` and one element per metric (e.g. `$accuracy`).
#' @family training
#' @export
#' @md
evaluate <- function(object, ...) UseMethod("evaluate")

#' @rdname evaluate
#' @export
#' @md
evaluate.pydlr_model <- function(object, x = NULL, y = NULL, batch_size = NULL, verbose = "auto", ...) {
  .check_no_dots(list(...), "evaluate()", "pydlr's evaluate() takes x, y, batch_size, verbose.")
  if (is.null(x)) .input_error("x", "a numeric array of test inputs", x)
  x <- .check_data(x, "x")
  y <- .check_targets(y, dim(x)[1])
  .check_verbose(verbose)
  batch_size <- .check_count(batch_size, "batch_size", null_ok = TRUE)
  result <- .api_call("evaluate", object$py, .to_py(x), .to_py(y), batch_size = batch_size)
  lapply(result, as.numeric)
}

#' Predict with a model
#'
#' @param object A `pydlr_model`.
#' @param x Inputs, as for [fit()].
#' @param batch_size Samples per forward pass (default 32).
#' @param type `"prob"` (default): the model's outputs, a matrix with one row per sample (class
#'   probabilities for a softmax head); `"class"`: the index of the largest output per sample, 0-based as
#'   keras' class labels (so it compares directly with `dataset_*()$test$y`).
#' @param ... Unused.
#' @return A numeric matrix (`type = "prob"`) or an integer vector (`type = "class"`).
#' @family training
#' @importFrom stats predict
#' @export
#' @md
predict.pydlr_model <- function(object, x, batch_size = NULL, type = c("prob", "class"), ...) {
  type <- match.arg(type)
  x <- .check_data(x, "x")
  batch_size <- .check_count(batch_size, "batch_size", null_ok = TRUE)
  out <- .api_call("predict", object$py, .to_py(x), batch_size = batch_size, classes = type == "class",
    .convert = FALSE)
  out <- .bridge_from_py(out)
  if (type == "class") {
    out <- as.integer(out)
  } else if (is.null(dim(out))) {
    dim(out) <- c(length(out), 1L)
  }
  out
}
