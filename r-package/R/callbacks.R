# Callbacks: R objects describing keras callbacks by their Keras class name; fit() turns them into
# pydlr's Python callbacks (pydlr.train.<class name>).

.callback <- function(kind, ...) {
  structure(list(kind = kind, config = Filter(Negate(is.null), list(...))), class = "pydlr_callback")
}

.py_callbacks <- function(callbacks, call = sys.call(sys.parent())) {
  if (is.null(callbacks)) return(list())
  callbacks <- .as_callback_list(callbacks)
  ok <- is.list(callbacks) && all(vapply(callbacks, inherits, logical(1), "pydlr_callback"))
  if (!ok) .input_error("callbacks", "a list of callback_*() objects", callbacks, call = call)
  lapply(callbacks, function(cb) {
    config <- lapply(cb$config, function(v) if (is.function(v)) .r_callable(v) else v)
    .py_call("api_r.training.callback", cb$kind, config, .convert = FALSE, .call = call)
  })
}

#' @export
#' @md
print.pydlr_callback <- function(x, ...) {
  shown <- vapply(x$config, function(v) if (is.function(v)) "<function>" else paste(format(v), collapse = ", "),
    character(1))
  cat(sprintf("<pydlr callback %s>(%s)\n", x$kind, paste(names(shown), shown, sep = " = ", collapse = ", ")))
  invisible(x)
}

#' Stop training when a monitored quantity stops improving
#'
#' @param monitor Quantity to monitor, e.g. `"val_loss"`, `"val_accuracy"`, `"loss"`.
#' @param min_delta Smallest change that counts as an improvement.
#' @param patience Epochs without improvement before training stops.
#' @param verbose `0` or `1`: print a message when stopping.
#' @param mode `"auto"`, `"min"` or `"max"`: the direction of improvement (`"auto"` guesses from the name).
#' @param baseline Value the monitored quantity must beat, or `NULL`.
#' @param restore_best_weights Restore the weights of the best epoch when training stops.
#' @param start_from_epoch Epochs to wait before starting to monitor.
#' @return A `pydlr_callback` for [fit()]'s `callbacks`.
#' @family callbacks
#' @export
#' @md
#' @examples
#' stop_early <- callback_early_stopping(monitor = "val_loss", patience = 2)
#' stop_early
callback_early_stopping <- function(monitor = "val_loss", min_delta = 0, patience = 0L, verbose = 0L,
                                    mode = "auto", baseline = NULL, restore_best_weights = FALSE,
                                    start_from_epoch = 0L) {
  .callback("EarlyStopping",
    monitor = .check_string(monitor, "monitor"),
    min_delta = .check_number(min_delta, "min_delta", 0),
    patience = .check_count(patience, "patience", min = 0L),
    verbose = .check_count(verbose, "verbose", min = 0L),
    mode = .check_string(mode, "mode", c("auto", "min", "max")),
    baseline = .check_number(baseline, "baseline", null_ok = TRUE),
    restore_best_weights = .check_flag(restore_best_weights, "restore_best_weights"),
    start_from_epoch = .check_count(start_from_epoch, "start_from_epoch", min = 0L)
  )
}

#' Save the model during training
#'
#' Writes the model after every epoch, or only when the monitored quantity improves, atomically (a crash
#' leaves the previous file intact): pydlr's format (JSON architecture + safetensors weights + optimizer
#' state), which [load_model()] reads; with `save_weights_only = TRUE`, only the weights, which
#' [load_model_weights()] reads. (To continue an interrupted run, use `fit(resume = path)`.)
#'
#' @inheritParams callback_early_stopping
#' @param filepath Path to write; may contain keras' placeholders such as `"model-{epoch:02d}.pydlr"` or
#'   `"ckpt_{epoch:02d}_{val_loss:.3f}.weights.safetensors"` (the epoch, 1-based, and any logged value).
#'   Missing folders are created; an unwritable path fails when `fit()` starts. keras' HDF5 names
#'   (`".weights.h5"`) are refused: pydlr writes safetensors.
#' @param save_best_only Keep only the best model according to `monitor`.
#' @param save_weights_only Save only the weights.
#' @param save_freq Only `"epoch"` is supported.
#' @param initial_value_threshold Not supported: must be `NULL`.
#' @family callbacks
#' @export
#' @md
#' @examples
#' best <- callback_model_checkpoint(file.path(tempdir(), "best.safetensors"), save_best_only = TRUE)
#' best
callback_model_checkpoint <- function(filepath, monitor = "val_loss", verbose = 0L, save_best_only = FALSE,
                                      save_weights_only = FALSE, mode = "auto", save_freq = "epoch",
                                      initial_value_threshold = NULL) {
  if (!identical(save_freq, "epoch")) {
    .not_supported(
      sprintf("save_freq = %s", format(save_freq)),
      "pydlr checkpoints once per epoch (save_freq = \"epoch\")."
    )
  }
  .check_unsupported(initial_value_threshold, "initial_value_threshold",
    "use save_best_only = TRUE; the first epoch's value is the first threshold.")
  .check_not_hdf5(.check_string(filepath, "filepath"), "callback_model_checkpoint(\"%s\")")
  .callback("ModelCheckpoint",
    filepath = .check_path(filepath, "filepath"),
    monitor = .check_string(monitor, "monitor"),
    verbose = .check_count(verbose, "verbose", min = 0L),
    save_best_only = .check_flag(save_best_only, "save_best_only"),
    save_weights_only = .check_flag(save_weights_only, "save_weights_only"),
    mode = .check_string(mode, "mode", c("auto", "min", "max")),
    save_freq = "epoch"
  )
}

#' Stream epoch results to a CSV file
#'
#' @param filename Path of the CSV file.
#' @param separator Field separator.
#' @param append Append to an existing file instead of overwriting it.
#' @family callbacks
#' @export
#' @md
#' @examples
#' log <- callback_csv_logger(tempfile(fileext = ".csv"))
#' log
callback_csv_logger <- function(filename, separator = ",", append = FALSE) {
  filename <- .check_path(filename, "filename")
  if (!dir.exists(dirname(filename))) .input_error("filename", "a path in an existing directory", filename)
  .callback("CSVLogger",
    filename = filename,
    separator = .check_string(separator, "separator"),
    append = .check_flag(append, "append")
  )
}

#' Callbacks written as R functions
#'
#' Each hook is an R function called by the training loop: `on_epoch_begin(epoch, logs)`,
#' `on_epoch_end(epoch, logs)`, `on_batch_begin(batch, logs)`, `on_batch_end(batch, logs)`,
#' `on_train_begin(logs)`, `on_train_end(logs)`. As in keras, `epoch` and `batch` are 0-based and `logs`
#' is a named list of the current values (`loss`, `accuracy`, `val_loss`, ...). Per-batch hooks run in R
#' for every batch, which costs time; prefer epoch hooks.
#'
#' @param on_epoch_begin,on_epoch_end,on_batch_begin,on_batch_end,on_train_begin,on_train_end R functions
#'   or `NULL`.
#' @param on_train_batch_begin,on_train_batch_end keras3's other names of `on_batch_begin`/`on_batch_end`.
#' @family callbacks
#' @examples
#' if (pydlr:::.python_ready()) {
#' losses <- numeric()
#' cb <- callback_lambda(on_epoch_end = function(epoch, logs) losses[epoch + 1] <<- logs$loss)
#' }
#' @export
#' @md
callback_lambda <- function(on_epoch_begin = NULL, on_epoch_end = NULL, on_batch_begin = NULL,
                            on_batch_end = NULL, on_train_begin = NULL, on_train_end = NULL,
                            on_train_batch_begin = NULL, on_train_batch_end = NULL) {
  if (is.null(on_batch_begin)) on_batch_begin <- on_train_batch_begin
  if (is.null(on_batch_end)) on_batch_end <- on_train_batch_end
  hooks <- list(
    on_epoch_begin = on_epoch_begin, on_epoch_end = on_epoch_end, on_batch_begin = on_batch_begin,
    on_batch_end = on_batch_end, on_train_begin = on_train_begin, on_train_end = on_train_end
  )
  for (name in names(hooks)) {
    if (!is.null(hooks[[name]]) && !is.function(hooks[[name]])) {
      .input_error(name, "an R function or NULL", hooks[[name]])
    }
  }
  do.call(.callback, c(list("LambdaCallback"), hooks))
}

#' Change the learning rate at the start of each epoch
#'
#' @param schedule An R function `function(epoch, lr)` returning the new learning rate; `epoch` is
#'   0-based as in keras, `lr` the current rate.
#' @param verbose `0` or `1`: print the rate set at each epoch.
#' @family callbacks
#' @examples
#' if (pydlr:::.python_ready()) {
#' halve <- callback_learning_rate_scheduler(function(epoch, lr) if (epoch > 0) lr / 2 else lr)
#' }
#' @export
#' @md
callback_learning_rate_scheduler <- function(schedule, verbose = 0L) {
  if (!is.function(schedule)) .input_error("schedule", "an R function(epoch, lr) returning a rate", schedule)
  .callback("LearningRateScheduler", schedule = schedule, verbose = .check_count(verbose, "verbose", min = 0L))
}

#' Write TensorBoard logs during training
#'
#' keras3's TensorBoard callback, written with torch's `SummaryWriter`: `log_dir/train` and
#' `log_dir/validation` receive `epoch_loss`, `epoch_<metric>` and `epoch_learning_rate` each epoch,
#' `batch_<metric>` every `update_freq` batches, weight histograms every `histogram_freq` epochs and the
#' model's graph. View them with `tensorboard --logdir <log_dir>`.
#'
#' @param log_dir The folder of the event files.
#' @param histogram_freq Every how many epochs to write weight histograms (`0`: never).
#' @param write_graph Write the model's graph.
#' @param update_freq `"epoch"`, `"batch"`, or every how many training batches to write batch values.
#' @param ... Other keras3 arguments (`write_images`, `profile_batch`, `embeddings_freq`, ...) are not
#'   supported.
#' @return A `pydlr_callback` for [fit()]'s `callbacks`.
#' @family callbacks
#' @export
#' @md
#' @examples
#' callback_tensorboard(file.path(tempdir(), "logs"), histogram_freq = 1)
callback_tensorboard <- function(log_dir = "logs", histogram_freq = 0L, write_graph = TRUE, update_freq = "epoch", ...) {
  .check_no_dots(list(...), "callback_tensorboard()", "pydlr writes scalars, weight histograms and the graph.")
  if (!(is.character(update_freq) && length(update_freq) == 1L && update_freq %in% c("epoch", "batch"))) {
    update_freq <- tryCatch(.check_count(update_freq, "update_freq"), pydlr_input_error = function(e) {
      .input_error("update_freq", "\"epoch\", \"batch\" or a whole number >= 1", update_freq, call = sys.call(-4))
    })
  }
  .callback("TensorBoard",
    log_dir = .check_path(log_dir, "log_dir"),
    histogram_freq = .check_count(histogram_freq, "histogram_freq", min = 0L),
    write_graph = .check_flag(write_graph, "write_graph"),
    update_freq = update_freq
  )
}
