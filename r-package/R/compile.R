# compile(): configure the model for training, in place (keras3 semantics).

#' Configure a model for training
#'
#' Sets the optimizer, the loss and the metrics, in place: `model |> compile(...)` needs no reassignment
#' (the model is returned invisibly so pipes go on).
#'
#' @param object A `pydlr_model`.
#' @param optimizer A name (`"adam"`, `"adamw"`, `"rmsprop"`, `"sgd"`) or an `optimizer_*()` object.
#' @param loss A loss name: `"categorical_crossentropy"` (one-hot targets, see [to_categorical()]),
#'   `"sparse_categorical_crossentropy"` (integer class labels 0, 1, ...), `"binary_crossentropy"`,
#'   `"mse"` / `"mean_squared_error"`.
#' @param metrics Metric names, e.g. `"accuracy"` (a character vector), or a list of names and
#'   `metric_*()` objects such as [metric_auc()], [metric_precision()], [metric_f1_score()].
#' @param ... Other keras3 arguments (`loss_weights`, `run_eagerly`, `jit_compile`, ...) are not supported
#'   and give a `pydlr_not_supported_error`.
#' @return The model, invisibly.
#' @family training
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   compile(model, optimizer = optimizer_adam(learning_rate = 1e-3),
#'     loss = "sparse_categorical_crossentropy", metrics = "accuracy")
#' }
compile <- function(object, ...) UseMethod("compile")

#' @rdname compile
#' @export
#' @md
compile.pydlr_model <- function(object, optimizer = "rmsprop", loss = NULL, metrics = NULL, ...) {
  .check_no_dots(list(...), "compile()", "pydlr's compile() takes optimizer, loss and metrics.")
  if (is.function(loss)) {
    .not_supported("An R function as `loss`", "use a loss name such as \"categorical_crossentropy\".")
  }
  loss <- .check_string(loss, "loss")
  if (inherits(optimizer, "pydlr_optimizer")) {
    optimizer <- unclass(optimizer)
    if (inherits(optimizer$args$learning_rate, "pydlr_lr_schedule")) { # the Python schedule object itself
      optimizer$args$learning_rate <- attr(optimizer$args$learning_rate, "py")
    }
  } else {
    optimizer <- .check_string(optimizer, "optimizer")
  }
  .py_call("api_r.training.compile", object$py,
    optimizer = optimizer, loss = loss, metrics = .py_metrics(metrics), .convert = FALSE
  )
  invisible(object)
}

.check_no_dots <- function(dots, where, offer, call = sys.call(sys.parent()),
                           known = names(formals(sys.function(sys.parent())))) {
  if (length(dots) == 0L) return(invisible(NULL))
  nm <- names(dots)
  near <- if (!is.null(nm) && nzchar(nm[1])) .near_name(nm[1], setdiff(known, "..."))
  if (length(near)) { # a misspelt argument (batchsize, epoch_s): not a keras feature pydlr lacks
    pydlr_abort(sprintf("%s has no argument `%s`; did you mean `%s`?", where, nm[1], near), call = call,
      class = "pydlr_input_error", argument = nm[1], expected = near)
  }
  label <- if (is.null(nm) || !nzchar(nm[1])) "an unnamed argument" else sprintf("argument `%s`", nm[1])
  .not_supported(sprintf("The keras %s of %s", label, where), offer, call = call)
}

# The name among `known` that `name` misspells (the same but for case, dots and underscores, or within two
# edits of a name of four letters or more), or NULL.
.near_name <- function(name, known) {
  plain <- function(s) gsub("[._]", "", tolower(s))
  same <- known[plain(known) == plain(name)]
  if (length(same)) return(same[1])
  d <- utils::adist(name, known)[1, ]
  if (length(d) && min(d) <= 2L && nchar(name) >= 4L) known[which.min(d)] else NULL
}

#' Optimizers
#'
#' Optimizer specifications for [compile()], with keras' argument names and defaults; pydlr's Python core
#' builds the torch optimizer from them. `optimizer_sgd(momentum = )` is SGD with momentum.
#'
#' @param learning_rate Learning rate: a number, or a `learning_rate_schedule_*()` (the rate then follows the
#'   schedule, updated before every batch).
#' @param beta_1,beta_2 Exponential decay rates of Adam's moment estimates.
#' @param epsilon Small constant for numerical stability.
#' @param amsgrad Use the AMSGrad variant.
#' @param weight_decay Weight decay: AdamW (keras' default 0.004) and SGD; `NULL` (none) for Adam and
#'   RMSprop, which point to `optimizer_adamw()` otherwise.
#' @param ... Other keras3 arguments (`clipnorm`, `ema_momentum`, ...) are not supported.
#' @return An object of class `pydlr_optimizer`.
#' @family training
#' @export
#' @md
#' @examples
#' optimizer_adam(learning_rate = 1e-3)
#' optimizer_sgd(learning_rate = 0.01, momentum = 0.9)
optimizer_adam <- function(learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-07,
                           amsgrad = FALSE, weight_decay = NULL, ...) {
  .check_no_dots(list(...), "optimizer_adam()", "pydlr's Adam takes learning_rate, beta_1, beta_2, epsilon, amsgrad.")
  .check_unsupported(weight_decay, "weight_decay", "use optimizer_adamw(weight_decay = ) for decoupled weight decay.")
  .optimizer("adam", learning_rate = .check_learning_rate(learning_rate),
    beta_1 = .check_number(beta_1, "beta_1", 0, 1), beta_2 = .check_number(beta_2, "beta_2", 0, 1),
    epsilon = .check_number(epsilon, "epsilon", 0), amsgrad = .check_flag(amsgrad, "amsgrad"))
}

#' @rdname optimizer_adam
#' @export
#' @md
optimizer_adamw <- function(learning_rate = 0.001, weight_decay = 0.004, beta_1 = 0.9, beta_2 = 0.999,
                            epsilon = 1e-07, amsgrad = FALSE, ...) {
  .check_no_dots(list(...), "optimizer_adamw()",
    "pydlr's AdamW takes learning_rate, weight_decay, beta_1, beta_2, epsilon, amsgrad.")
  .optimizer("adamw", learning_rate = .check_learning_rate(learning_rate),
    weight_decay = .check_number(weight_decay, "weight_decay", 0),
    beta_1 = .check_number(beta_1, "beta_1", 0, 1), beta_2 = .check_number(beta_2, "beta_2", 0, 1),
    epsilon = .check_number(epsilon, "epsilon", 0), amsgrad = .check_flag(amsgrad, "amsgrad"))
}

#' @rdname optimizer_adam
#' @param rho Discounting factor of RMSprop's moving average of squared gradients.
#' @param momentum Momentum.
#' @param centered Centered RMSprop.
#' @export
#' @md
optimizer_rmsprop <- function(learning_rate = 0.001, rho = 0.9, momentum = 0, epsilon = 1e-07,
                              centered = FALSE, weight_decay = NULL, ...) {
  .check_no_dots(list(...), "optimizer_rmsprop()",
    "pydlr's RMSprop takes learning_rate, rho, momentum, epsilon, centered.")
  .check_unsupported(weight_decay, "weight_decay",
    "use optimizer_adamw(weight_decay = ) or optimizer_sgd(weight_decay = ).")
  .optimizer("rmsprop", learning_rate = .check_learning_rate(learning_rate),
    rho = .check_number(rho, "rho", 0, 1), momentum = .check_number(momentum, "momentum", 0),
    epsilon = .check_number(epsilon, "epsilon", 0), centered = .check_flag(centered, "centered"))
}

#' @rdname optimizer_adam
#' @param nesterov Use Nesterov momentum.
#' @export
#' @md
optimizer_sgd <- function(learning_rate = 0.01, momentum = 0, nesterov = FALSE, weight_decay = NULL, ...) {
  .check_no_dots(list(...), "optimizer_sgd()", "pydlr's SGD takes learning_rate, momentum, nesterov, weight_decay.")
  .optimizer("sgd", learning_rate = .check_learning_rate(learning_rate),
    momentum = .check_number(momentum, "momentum", 0), nesterov = .check_flag(nesterov, "nesterov"),
    weight_decay = .check_number(weight_decay, "weight_decay", 0, null_ok = TRUE))
}

.optimizer <- function(name, ...) {
  structure(list(name = name, args = Filter(Negate(is.null), list(...))), class = "pydlr_optimizer")
}

#' @export
#' @md
print.pydlr_optimizer <- function(x, ...) {
  args <- vapply(x$args, function(v) if (is.function(v)) "<schedule>" else format(v), character(1))
  cat(sprintf("<pydlr optimizer %s>(%s)\n", x$name, paste(names(args), args, sep = " = ", collapse = ", ")))
  invisible(x)
}
