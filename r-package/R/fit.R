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
#' @param x Inputs: a numeric array or matrix (or a data.frame of numeric columns, which [predict()] and
#'   [evaluate()] then match by name: the same columns in another order are reordered, other names
#'   refused), samples first; or an
#'   image dataset from [image_dataset_from_directory()] (then `y` and `batch_size` stay `NULL`: labels and
#'   batch size come with the dataset, `validation_data` is a dataset too).
#' @param y Targets: integer class labels `0, 1, ...` (a vector or factor; for
#'   `"sparse_categorical_crossentropy"`), a one-hot matrix (for `"categorical_crossentropy"`), or numbers.
#' @param batch_size Samples per update; `NULL` (default): the engine's default, 32, as Keras.
#' @param epochs Number of epochs to train (keras3 for R's default, 10).
#' @param verbose `0` silent, `1` a progress bar, `2` one line per epoch; `"auto"` (default) is the
#'   engine's choice, `1`, as Keras. The bar is updated in place in an interactive console, RStudio or a
#'   terminal, and printed once per epoch otherwise (knitr, output to a file or a CI log); the option
#'   `pydlr.dynamic_progress = TRUE/FALSE` overrides that guess.
#' @param callbacks A list of `callback_*()` objects.
#' @param validation_split Fraction of the training data (taken from the end, before shuffling, as
#'   keras does) held out for validation.
#' @param validation_data `list(x_val, y_val)`, used instead of `validation_split`. `y_val` is checked
#'   as `y` is: a factor `y_val` is read by its labels on the levels of the factor `y` (its own levels may
#'   differ, e.g. lack a class); with whole-number `y`, a factor `y_val` of numbers is refused unless its
#'   levels are `"0", "1", ...` (its codes would be other classes).
#' @param shuffle Shuffle the training data each epoch.
#' @param class_weight A named numeric vector or list mapping classes to weights: named by the 0-based
#'   labels (`"0"`, `"1"`, ...), or by the classes' names when `y` is a factor (its levels, e.g.
#'   `c(cat = 1, dog = 3)`) or `x` an image dataset (its class folders).
#' @param initial_epoch Epoch to start at, 1-based as in keras3 for R (useful to continue a run).
#' @param steps_per_epoch Batches per epoch (`NULL`: one pass over the data).
#' @param seed A whole number: makes the run reproducible (bit-identical weights on CPU).
#' @param resume Path of a resume checkpoint: written atomically after every epoch, and when it exists at
#'   the start, training continues from it (weights, optimizer, epoch, random state), so an interrupted
#'   run finishes with the same weights as an uninterrupted one with the same `seed`.
#' @param device `"auto"` (CUDA when present), `"cpu"`, `"cuda"` or a given GPU, `"cuda:1"`. Under
#'   torchrun each process takes the GPU of its local rank.
#' @param augment `NULL`, or an [augmentation()]: random flips, rotations, shifts, zooms, brightness and
#'   contrast applied on the fly to each training batch (image data only).
#' @param workers Augmentation worker processes that prepare the next batches while the model trains on
#'   the current one (`0`: augment in this process).
#' @param sample_weight A numeric vector, one weight per sample of `x`, multiplying each sample's loss
#'   (with `class_weight`, both apply).
#' @param validation_batch_size Samples per batch for the validation data (`NULL`: `batch_size`).
#' @param precision `"auto"` (bfloat16 or float16 mixed precision on CUDA, float32 on the CPU),
#'   `"float32"`, `"bfloat16"` (mixed precision, also on CPUs: where the CPU has AMX, e.g. Intel Xeon Sapphire
#'   Rapids and later, 3x3 convolutions with 32k channels run pydlr's bf16 kernels; small dense layers and other
#'   convolutions stay float32, which is faster there) or `"float16"` (CUDA only).
#' @param nan_check Stop with a `pydlr_training_error` as soon as the loss is NaN or infinite.
#' @param distributed `NULL`, `TRUE`, or a list such as `list(nproc_per_node = 2)`: train with that many
#'   processes on this machine (torch DDP, launched by torchrun from this session; the trained weights come
#'   back into `object`; with an image dataset each process reads its own shard of the files). Callbacks
#'   cannot be sent to those processes. To train on several machines, run
#'   the script itself under torchrun: see [pydlr_torchrun()]; there `fit()` needs no argument, it notices
#'   torchrun by itself.
#' @param view_metrics The live training view, as keras3's: a self-contained HTML page with the loss
#'   and metric curves, rewritten after every epoch and shown in RStudio's Viewer or a browser.
#'   `"auto"` (default; `options(pydlr.view_metrics)` changes it): in an interactive session outside knitr
#'   when `epochs > 1`; `TRUE`: the page is always written (and shown when interactive; never in scripts
#'   or knitr); `FALSE`: off. The page's path is `history$metrics_page`; [report()] writes the same page,
#'   static, for a finished run.
#' @param ... With an image dataset, `validation_steps` (validation batches per epoch) and `validation_freq`
#'   (validate every n-th epoch, or at the epochs listed). Other keras3 arguments are not supported.
#' @return A `pydlr_history` (see [as.data.frame.pydlr_history()] and [plot.pydlr_history()]), invisibly
#'   as in keras3 (the model itself was trained in place).
#' @section Several processes and machines: under `torchrun --no-python --nproc-per-node N Rscript
#'   train.R`, every process runs the script; `fit()` joins the process group (gloo on CPUs, nccl on GPUs),
#'   trains on its shard of each epoch with gradients averaged over all processes, and only rank 0 prints
#'   progress and writes checkpoints (`resume`, [callback_model_checkpoint()]). `batch_size` is per
#'   process. See `docs/scaling-out.md`.
#' @family training
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
#'   set.seed(1)
#'   x <- array(runif(60 * 8 * 8), c(60, 8, 8, 1))
#'   y <- sample(0:2, 60, replace = TRUE)
#'   history <- fit(model, x, y, epochs = 3, batch_size = 16, validation_split = 0.2, verbose = 2)
#'   history
#' }
fit <- function(object, ...) UseMethod("fit")

#' @rdname fit
#' @export
#' @md
fit.pydlr_model <- function(object, x = NULL, y = NULL, batch_size = NULL, epochs = 10L, verbose = "auto",
                            callbacks = NULL, validation_split = 0, validation_data = NULL, shuffle = TRUE,
                            class_weight = NULL, initial_epoch = 1L, steps_per_epoch = NULL, seed = NULL,
                            resume = NULL, device = "auto", augment = NULL, workers = 0L,
                            sample_weight = NULL, validation_batch_size = NULL, precision = "auto",
                            nan_check = TRUE, distributed = NULL,
                            view_metrics = getOption("pydlr.view_metrics", "auto"), ...) {
  if (inherits(x, "pydlr_image_dataset")) {
    # the array-only arguments, when given, reach the dataset route's check (not supported there)
    extra <- Filter(Negate(is.null), list(sample_weight = sample_weight,
      validation_batch_size = validation_batch_size, distributed = distributed,
      precision = if (!identical(precision, "auto")) precision, nan_check = if (!isTRUE(nan_check)) nan_check))
    return(do.call(.fit_image_dataset, c(list(object, x, y, batch_size, epochs, verbose, callbacks,
      validation_split, validation_data, shuffle, class_weight, initial_epoch, steps_per_epoch, seed, resume,
      device, augment, workers, view_metrics), list(...), extra, list(call = sys.call())), quote = TRUE))
  }
  .check_no_dots(list(...), "fit()", "pydlr's fit() arguments are listed in ?fit.")
  if (!(isTRUE(view_metrics) || isFALSE(view_metrics) || identical(view_metrics, "auto"))) {
    .input_error("view_metrics", "TRUE, FALSE or \"auto\"", view_metrics)
  }
  view <- if (is.null(distributed) && .view_metrics_wanted(view_metrics, epochs)) {
    .metrics_viewer(epochs, as.integer(initial_epoch) - 1L)
  }
  if (!is.null(view)) {
    callbacks <- c(.as_callback_list(callbacks), list(view$callback))
    on.exit(view$finish(), add = TRUE) # the page stops reloading, also after an error or an interrupt
  }
  args <- .fit_args(object, x, y, batch_size = batch_size, epochs = epochs, verbose = verbose,
    callbacks = callbacks, validation_split = validation_split, validation_data = validation_data,
    shuffle = shuffle, class_weight = class_weight, initial_epoch = initial_epoch,
    steps_per_epoch = steps_per_epoch, seed = seed, resume = resume, device = device, augment = augment,
    workers = workers, sample_weight = sample_weight, validation_batch_size = validation_batch_size,
    precision = precision, nan_check = nan_check, distributed = distributed)
  history <- .fit_run(object, "api_r.training.fit", args, call = sys.call())
  if (!is.null(view)) history$metrics_page <- view$path
  invisible(history)
}

# fit()'s arguments checked and converted as the engine takes them (types here, in R's words; meaning, ranges
# and defaults are the engine's, in Python). Shared by fit() and fit_one_cycle(), which hold the defaults.
.fit_args <- function(object, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                      shuffle, class_weight, initial_epoch, steps_per_epoch, seed, resume, device, augment,
                      workers, sample_weight, validation_batch_size, precision, nan_check, distributed,
                      call = sys.call(sys.parent())) {
  .check_model(object, call = call)
  if (is.null(x)) .input_error("x", "a numeric array of training inputs", x, call = call)
  x <- .check_data_for_python(x, "x", call = call)
  levels <- if (is.factor(y)) levels(y)
  y <- if (!is.null(y)) .check_class_targets(object, y, x, levels, call = call)
  epochs <- .check_count(epochs, "epochs", call = call)
  if (.check_count(initial_epoch, "initial_epoch", call = call) > epochs) { # 1-based in R: the engine's is 0-based
    .input_error("initial_epoch", sprintf("at most epochs (%d)", epochs), initial_epoch, call = call)
  }
  list(levels = levels, data = x, x = .to_py(x), y = if (!is.null(y)) .to_py(y), kwargs = list(
    column_names = .column_names(x), # a data.frame's: the core reads later data's columns by these names
    validation_column_names = if (is.list(validation_data)) .column_names(validation_data[[1]]),
    batch_size = .check_count(batch_size, "batch_size", null_ok = TRUE, call = call),
    epochs = epochs,
    verbose = .check_verbose(verbose, call = call),
    callbacks = .py_callbacks(callbacks, call = call),
    validation_split = .check_number(validation_split, "validation_split", lower = 0, upper = 1, upper_open = TRUE,
      expected = "a fraction in [0, 1)", call = call),
    validation_data = .check_validation_data(validation_data, levels, object, call = call),
    shuffle = .check_flag(shuffle, "shuffle", call = call),
    class_weight = .check_class_weight(class_weight, levels, y, call = call),
    initial_epoch = as.integer(initial_epoch) - 1L, # keras3 for R counts from 1
    steps_per_epoch = .check_count(steps_per_epoch, "steps_per_epoch", null_ok = TRUE, call = call),
    seed = .check_count(seed, "seed", min = 0L, null_ok = TRUE, call = call),
    device = .check_string(device, "device", call = call),
    resume = .check_path(resume, "resume", null_ok = TRUE, call = call),
    augment = .check_augmentation(augment, x, call = call),
    workers = .check_count(workers, "workers", min = 0L, call = call),
    sample_weight = .check_sample_weight(sample_weight, dim(x)[1], call = call),
    validation_batch_size = .check_count(validation_batch_size, "validation_batch_size", null_ok = TRUE, call = call),
    precision = .check_string(precision, "precision", c("auto", "float32", "bfloat16", "float16"), call = call),
    nan_check = .check_flag(nan_check, "nan_check", call = call),
    distributed = .check_distributed(distributed, callbacks, call = call),
    print_fn = .r_callable(.console_print),
    dynamic_progress = .dynamic_progress()
  ))
}

# Runs a training function of the API with checked arguments; the model keeps the factor's levels.
.fit_run <- function(object, fun, args, extra = list(), call = sys.call(sys.parent())) {
  # the levels name the classes from the start of training, so checkpoints written during it keep them
  kwargs <- Filter(Negate(is.null), c(args$kwargs, extra, list(class_names = args$levels)))
  result <- .na_found_by_python(
    do.call(.py_call, c(list(fun, object$py, args$x, args$y), kwargs, list(.call = call)), quote = TRUE),
    args$data, call = call)
  object$state$levels <- args$levels
  .signal_python_warnings(result$warnings, call)
  invisible(.new_history(result))
}

.as_callback_list <- function(callbacks) if (inherits(callbacks, "pydlr_callback")) list(callbacks) else callbacks

.check_sample_weight <- function(w, n, call = sys.call(sys.parent())) {
  if (is.null(w)) return(NULL)
  ok <- is.numeric(w) && length(w) == n && !anyNA(w) && all(w >= 0)
  if (!ok) {
    # the right length can still hold the fault: say which (the value's description alone would not)
    got <- if (!is.numeric(w) || length(w) != n) w else if (anyNA(w)) I(sprintf("%d NA", sum(is.na(w))))
           else I(sprintf("%d negative weight(s), the first %g", sum(w < 0), w[w < 0][1]))
    .input_error("sample_weight", sprintf("%d non-negative weights, one per sample of x", n), got, call = call)
  }
  w <- as.numeric(w)
  dim(w) <- length(w)
  .to_py(w)
}

# `distributed`: NULL/FALSE (this process), TRUE (2 processes) or list(nproc_per_node = n).
.check_distributed <- function(distributed, callbacks, call = sys.call(sys.parent())) {
  if (is.null(distributed) || isFALSE(distributed)) return(NULL)
  if (isTRUE(distributed)) distributed <- list(nproc_per_node = 2L)
  ok <- is.list(distributed) && length(distributed) == 1L && identical(names(distributed), "nproc_per_node")
  if (!ok) .input_error("distributed", "NULL, TRUE or list(nproc_per_node = n)", distributed, call = call)
  if (length(.as_callback_list(callbacks)) > 0L) {
    .input_error("callbacks", paste("none with `distributed` (the processes cannot run this session's callbacks;",
      "use resume = for checkpoints, or run the script under torchrun, see ?pydlr_torchrun)"), callbacks, call = call)
  }
  list(nproc_per_node = .check_count(distributed$nproc_per_node, "distributed$nproc_per_node", call = call))
}

# In-place progress (a line rewritten with \r) in an interactive console, RStudio, or Rscript writing
# to a terminal; one line per epoch under knitr and when output goes to a file or a CI log. The option
# `pydlr.dynamic_progress` overrides the guess.
.dynamic_progress <- function() {
  guess <- (interactive() || isatty(stdout())) && !isTRUE(getOption("knitr.in.progress"))
  getOption("pydlr.dynamic_progress", guess)
}

# verbose as the engine takes it: "auto" (the engine decides), or 0, 1, 2 (TRUE/FALSE as 1/0).
.check_verbose <- function(verbose, call = sys.call(sys.parent())) {
  if (identical(verbose, "auto")) return(verbose)
  if (isTRUE(verbose) || isFALSE(verbose)) return(as.integer(verbose))
  ok <- is.numeric(verbose) && length(verbose) == 1L && verbose %in% 0:2
  if (!ok) .input_error("verbose", "0, 1, 2 or \"auto\"", verbose, call = call)
  as.integer(verbose)
}

.check_validation_data <- function(data, levels = NULL, object = NULL, call = sys.call(sys.parent())) {
  if (is.null(data)) return(NULL)
  if (!is.list(data) || length(data) != 2L) {
    .input_error("validation_data", "list(x_val, y_val)", data, call = call)
  }
  xv <- .check_data(data[[1]], "validation_data[[1]]", call = call)
  yv <- .check_class_targets(object, data[[2]], xv, levels, "validation_data[[2]]", call = call)
  list(.to_py(xv), .to_py(yv))
}

.check_class_weight <- function(class_weight, levels = NULL, y = NULL, call = sys.call(sys.parent())) {
  if (is.null(class_weight)) return(NULL)
  w <- unlist(class_weight)
  # named by the classes' names (a factor's levels, a dataset's class folders): as their 0-based codes
  if (!is.null(levels) && is.numeric(w) && !is.null(names(w)) && all(names(w) %in% levels)) {
    names(w) <- match(names(w), levels) - 1L
  }
  named <- !is.null(names(w)) && all(nzchar(names(w))) && !anyNA(suppressWarnings(as.integer(names(w))))
  if (!(is.numeric(w) && named && !anyNA(w) && all(w >= 0))) {
    by <- if (is.null(levels)) 'class label, e.g. c("0" = 1, "1" = 2)' else sprintf(
      'class: a class name (%s%s) or its 0-based code, e.g. c("%s" = 2)',
      paste0('"', utils::head(levels, 5), '"', collapse = ", "), if (length(levels) > 5L) ", ..." else "", levels[1])
    got <- if (is.numeric(w) && !named && !is.null(names(w))) {
      I(sprintf("names %s", paste0('"', utils::head(names(w), 5), '"', collapse = ", ")))
    } else class_weight
    .input_error("class_weight", paste("non-negative weights named by", by), got, call = call)
  }
  .check_class_keys(as.integer(names(w)), .class_count(levels, y), call = call)
  reticulate::py_dict(as.list(as.integer(names(w))), as.list(unname(as.numeric(w)))) # int keys, as Keras
}

# The number of classes of checked targets `y` (a factor's or a dataset's `levels`, a one-hot matrix's
# columns, else the largest label + 1); NULL when `y` holds no classes known here.
.class_count <- function(levels, y) {
  if (!is.null(levels)) return(length(levels))
  if (is.null(y) || !is.numeric(y) || length(y) == 0L) return(NULL)
  if (length(dim(y)) > 1L && dim(y)[2] > 1L) dim(y)[2] else max(y) + 1L
}

# class_weight's 0-based keys within the classes: keras refuses others too, and 1-based names (1..10 for
# ten classes) would silently weigh each class with its neighbour's weight.
.check_class_keys <- function(keys, n, call = sys.call(sys.parent())) {
  if (is.null(n)) return(invisible())
  bad <- keys[keys < 0L | keys >= n]
  if (length(bad)) {
    .input_error("class_weight", sprintf(
      "weights named by the 0-based class labels 0 to %d (for 1-based names, subtract 1)", n - 1L),
      I(sprintf("names %s", paste(utils::head(bad, 5), collapse = ", "))), call = call)
  }
}

# Data go to Python through the bridge (zero-copy where the layout allows).
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
#' @param x,y Test inputs and targets, as for [fit()]. After training on a factor, a factor `y` is read by
#'   its labels on the training factor's levels (a test factor may lack a class or order them otherwise);
#'   a label the model was not trained on is an error. Plain numbers are 0-based class codes; after
#'   training on a factor whose levels are numbers ("1", "2", ...) they are refused as ambiguous: pass a
#'   factor. Characters are read by name, as a factor.
#' @param verbose keras3's argument, checked and accepted so that keras3 scripts run: `evaluate()` prints
#'   no progress.
#' @return A named list: `$loss` and one element per metric (e.g. `$accuracy`).
#' @family training
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
#'   set.seed(1)
#'   x <- array(runif(60 * 8 * 8), c(60, 8, 8, 1))
#'   y <- sample(0:2, 60, replace = TRUE)
#'   history <- fit(model, x, y, epochs = 2, batch_size = 16, verbose = 0)
#'   evaluate(model, x, y, verbose = 0)
#' }
evaluate <- function(object, ...) UseMethod("evaluate")

#' @rdname evaluate
#' @export
#' @md
evaluate.pydlr_model <- function(object, x = NULL, y = NULL, batch_size = NULL, verbose = "auto", ...) {
  if (inherits(x, "pydlr_image_dataset")) return(.evaluate_image_dataset(object, x, y, call = sys.call()))
  .check_no_dots(list(...), "evaluate()", "pydlr's evaluate() takes x, y, batch_size, verbose.")
  if (is.null(x)) .input_error("x", "a numeric array of test inputs", x)
  x <- .check_data_for_python(x, "x")
  y <- .check_class_targets(object, y, x, object$state$levels) # a factor means the model's classes
  .check_verbose(verbose)
  batch_size <- .check_count(batch_size, "batch_size", null_ok = TRUE)
  result <- .na_found_by_python(
    .py_call("api_r.training.evaluate", object$py, .to_py(x), .to_py(y), batch_size = batch_size,
      column_names = .column_names(x)), x)
  .signal_python_warnings(result$warnings)
  lapply(result$metrics, as.numeric)
}

#' Predict with a model
#'
#' @param object A `pydlr_model`.
#' @param x Inputs, as for [fit()]. A `pydlr_warning` says when images are on another scale than the
#'   training data (e.g. pixels 0-255 for a model trained on `x / 255`): the predictions would be for
#'   other inputs than meant.
#' @param batch_size Samples per forward pass; `NULL`: the engine's default, 32.
#' @param type `"prob"` (default): the model's outputs, a matrix with one row per sample (class
#'   probabilities for a softmax head); `"class"`: the predicted class per sample (the largest output, or
#'   output > 0.5 for one sigmoid unit). When the model was last trained by [fit()] or [fine_tune()] on a
#'   factor `y` (or on an image dataset), the classes are that factor's levels (the dataset's class names)
#'   as a factor, as R's classifiers return; otherwise they are 0-based integers as keras' class labels (so
#'   they compare directly with `dataset_*()$test$y`).
#' @param verbose keras3's argument, checked and accepted so that keras3 scripts run: `predict()` prints no
#'   progress.
#' @param ... Nothing else: an error names any other argument (`device`, `steps`, ...) instead of dropping
#'   it.
#' @return A numeric matrix (`type = "prob"`; its columns named by the classes when the model was last
#'   trained on a factor or an image dataset), or a factor or an integer vector (`type = "class"`).
#' @family training
#' @importFrom stats predict
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
#'   set.seed(1)
#'   x <- array(runif(60 * 8 * 8), c(60, 8, 8, 1))
#'   y <- sample(0:2, 60, replace = TRUE)
#'   history <- fit(model, x, y, epochs = 2, batch_size = 16, verbose = 0)
#'   head(predict(model, x))
#'   head(predict(model, x, type = "class"))
#' }
predict.pydlr_model <- function(object, x, batch_size = NULL, type = c("prob", "class"), verbose = "auto", ...) {
  .check_no_dots(list(...), "predict()", "pydlr's predict() takes x, batch_size, type, verbose.")
  .check_verbose(verbose)
  type <- .match_choice(type, "type")
  if (inherits(x, "pydlr_image_dataset")) return(.predict_image_dataset(object, x, type, call = sys.call()))
  x <- .check_data_for_python(x, "x")
  batch_size <- .check_count(batch_size, "batch_size", null_ok = TRUE)
  fun <- if (type == "class") "api_r.training.predict_classes" else "api_r.training.predict"
  result <- .na_found_by_python(.py_call(fun, object$py, .to_py(x), batch_size = batch_size,
    column_names = .column_names(x), .convert = FALSE), x)
  .signal_python_warnings(reticulate::py_to_r(reticulate::py_get_item(result, "warnings")))
  out <- .bridge_from_py(reticulate::py_get_item(result, "out"), call = sys.call())
  if (type == "class") return(.as_classes(out, object$state$levels))
  if (is.null(dim(out))) dim(out) <- c(length(out), 1L)
  .with_class_columns(out, object$state$levels)
}

# Class probabilities with the classes as column names when the model learnt a factor's levels (or an image
# dataset's class names), as R's classifiers return them (nnet, randomForest): out[, "cat"].
.with_class_columns <- function(out, levels) {
  if (!is.null(levels) && length(dim(out)) == 2L && ncol(out) == length(levels)) colnames(out) <- levels
  out
}

# Predicted 0-based classes as R returns them: the factor's levels when the model was trained on a factor.
.as_classes <- function(classes, levels) {
  classes <- as.integer(classes)
  classes[classes < 0L] <- NA_integer_ # no output for that row (an image file skipped as unreadable)
  if (is.null(levels)) return(classes)
  factor(levels[classes + 1L], levels = levels)
}
