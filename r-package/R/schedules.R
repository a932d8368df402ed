# Learning-rate schedules with keras3's names: learning_rate_schedule_*() give a schedule (an R function of
# the step that keras3 scripts can call) to pass as an optimizer's `learning_rate`; the Python optimizer sets
# the rate before every step from its step count. callback_reduce_lr_on_plateau() is keras3's callback.

.lr_schedule <- function(class_name, config, call = sys.call(-1L)) {
  py <- .py_call("api_r.training.lr_schedule", class_name, Filter(Negate(is.null), config), .convert = FALSE,
    .call = call)
  schedule <- function(step) {
    step <- .check_int_vector(step, "step")
    as.numeric(unlist(.py_call("api_r.training.lr_schedule_values", py, as.list(step))))
  }
  structure(schedule, class = c("pydlr_lr_schedule", "function"), class_name = class_name, config = config,
    py = py)
}

.check_int_vector <- function(x, arg, call = sys.call(sys.parent())) {
  ok <- is.numeric(x) && length(x) >= 1L && !anyNA(x) && all(x == round(x)) && all(x >= 0)
  if (!ok) .input_error(arg, "whole numbers >= 0", x, call = call)
  as.integer(x)
}

#' Learning-rate schedules
#'
#' keras3's schedules: give one as an optimizer's `learning_rate`, e.g.
#' `optimizer_sgd(learning_rate = learning_rate_schedule_exponential_decay(0.1, 100, 0.5))`, and the
#' optimizer sets the rate before every step from the number of updates it has made (`step`, from 0,
#' counted over every `fit()` of the model and kept by `save_model()` and `fit(resume = )`, as keras'
#' `optimizer$iterations`). A schedule is also an R function: `schedule(0:10)` gives its rates.
#'
#' * `exponential_decay`: `initial_learning_rate * decay_rate ^ (step / decay_steps)` (the exponent
#'   rounded down with `staircase = TRUE`).
#' * `cosine_decay`: after an optional linear warm-up from `initial_learning_rate` to `warmup_target`
#'   over `warmup_steps`, a cosine from the peak down to `alpha` times the peak over `decay_steps`.
#' * `piecewise_constant_decay`: `values[i]` while `step <= boundaries[i]`, the last value after.
#'
#' @param initial_learning_rate The rate at step 0.
#' @param decay_steps Steps of one decay period (exponential) or of the whole decay (cosine).
#' @param decay_rate Factor per `decay_steps`.
#' @param staircase Decay in steps rather than continuously.
#' @param alpha Floor of the cosine decay, a fraction of the peak rate.
#' @param warmup_target,warmup_steps Peak rate reached linearly after `warmup_steps` (`NULL`: no warm-up).
#' @param boundaries,values Increasing step boundaries, and one more value than boundaries.
#' @param name Ignored (keras3's name of the schedule).
#' @return A `pydlr_lr_schedule`: a function of the step returning the rate.
#' @family training
#' @examples
#' if (pydlr:::.python_ready()) {
#'   schedule <- learning_rate_schedule_exponential_decay(0.01, decay_steps = 10, decay_rate = 0.5)
#'   schedule(c(0, 10, 20)) # 0.01 0.005 0.0025
#'   learning_rate_schedule_piecewise_constant_decay(boundaries = c(10, 20), values = c(0.1, 0.01, 0.001))(15)
#'   model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = "softmax")
#'   compile(model, optimizer = optimizer_sgd(learning_rate = schedule), loss = "sparse_categorical_crossentropy")
#'   history <- fit(model, matrix(runif(80), 20), rep(0:1, 10), epochs = 2, batch_size = 5, verbose = 0)
#' }
#' @export
#' @md
learning_rate_schedule_exponential_decay <- function(initial_learning_rate, decay_steps, decay_rate,
                                                     staircase = FALSE, name = "ExponentialDecay") {
  .lr_schedule("ExponentialDecay", list(
    initial_learning_rate = .check_number(initial_learning_rate, "initial_learning_rate", 0),
    decay_steps = .check_count(decay_steps, "decay_steps"),
    decay_rate = .check_number(decay_rate, "decay_rate", 0),
    staircase = .check_flag(staircase, "staircase")
  ))
}

#' @rdname learning_rate_schedule_exponential_decay
#' @export
#' @md
learning_rate_schedule_cosine_decay <- function(initial_learning_rate, decay_steps, alpha = 0,
                                                name = "CosineDecay", warmup_target = NULL, warmup_steps = 0L) {
  .lr_schedule("CosineDecay", list(
    initial_learning_rate = .check_number(initial_learning_rate, "initial_learning_rate", 0),
    decay_steps = .check_count(decay_steps, "decay_steps"),
    alpha = .check_number(alpha, "alpha", 0, 1),
    warmup_target = .check_number(warmup_target, "warmup_target", 0, null_ok = TRUE),
    warmup_steps = .check_count(warmup_steps, "warmup_steps", min = 0L)
  ))
}

#' @rdname learning_rate_schedule_exponential_decay
#' @export
#' @md
learning_rate_schedule_piecewise_constant_decay <- function(boundaries, values, name = "PiecewiseConstant") {
  boundaries <- .check_int_vector(boundaries, "boundaries")
  if (!is.numeric(values) || length(values) != length(boundaries) + 1L || anyNA(values) || any(values <= 0)) {
    .input_error("values", sprintf("%d positive rates (one more than boundaries)", length(boundaries) + 1L), values)
  }
  .lr_schedule("PiecewiseConstantDecay", list(boundaries = as.list(boundaries), values = as.list(as.numeric(values))))
}

#' @export
#' @md
print.pydlr_lr_schedule <- function(x, ...) {
  config <- Filter(Negate(is.null), attr(x, "config"))
  shown <- vapply(config, function(v) paste(format(unlist(v)), collapse = ", "), character(1))
  cat(sprintf("<pydlr learning-rate schedule %s>(%s)\n", attr(x, "class_name"),
    paste(names(shown), shown, sep = " = ", collapse = "; ")))
  invisible(x)
}

#' Reduce the learning rate when a metric has stopped improving
#'
#' keras3's callback: when `monitor` has not improved by `min_delta` for `patience` epochs, the rate is
#' multiplied by `factor` (never below `min_lr`), then `cooldown` epochs pass before counting again.
#'
#' @inheritParams callback_early_stopping
#' @param factor Factor the rate is multiplied by, in `(0, 1)`.
#' @param cooldown Epochs to wait after a reduction.
#' @param min_lr Lower bound of the rate.
#' @param ... Unused.
#' @return A `pydlr_callback` for [fit()]'s `callbacks`.
#' @family callbacks
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = "softmax")
#'   compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy")
#'   set.seed(1)
#'   history <- fit(model, matrix(runif(200), 50), rep(0:1, 25), epochs = 4, validation_split = 0.2,
#'                  callbacks = list(callback_reduce_lr_on_plateau(patience = 1, factor = 0.5)), verbose = 0)
#'   as.data.frame(history)
#' }
#' @export
#' @md
callback_reduce_lr_on_plateau <- function(monitor = "val_loss", factor = 0.1, patience = 10L, verbose = 0L,
                                          mode = "auto", min_delta = 1e-4, cooldown = 0L, min_lr = 0, ...) {
  .check_no_dots(list(...), "callback_reduce_lr_on_plateau()", "see ?callback_reduce_lr_on_plateau.")
  factor <- .check_number(factor, "factor", 0, 1)
  if (factor <= 0 || factor >= 1) .input_error("factor", "a number in (0, 1)", factor)
  .callback("ReduceLROnPlateau",
    monitor = .check_string(monitor, "monitor"),
    factor = factor,
    patience = .check_count(patience, "patience", min = 0L),
    verbose = .check_count(verbose, "verbose", min = 0L),
    mode = .check_string(mode, "mode", c("auto", "min", "max")),
    min_delta = .check_number(min_delta, "min_delta", 0),
    cooldown = .check_count(cooldown, "cooldown", min = 0L),
    min_lr = .check_number(min_lr, "min_lr", 0)
  )
}

# An optimizer's learning_rate: a positive number, or a learning_rate_schedule_*().
.check_learning_rate <- function(x, call = sys.call(sys.parent())) {
  if (inherits(x, "pydlr_lr_schedule")) return(x)
  ok <- is.numeric(x) && length(x) == 1L && !is.na(x) && x > 0
  if (!ok) .input_error("learning_rate", "a positive number or a learning_rate_schedule_*()", x, call = call)
  as.numeric(x)
}
