# fastai's learning-rate finder and one-cycle training, computed by pydlr.train (lr_find, fit_one_cycle).

#' Find a good learning rate
#'
#' fastai's learning-rate range test: trains `num_it` batches with a rate growing exponentially from
#' `start_lr` to `end_lr`, records the (smoothed) loss, and suggests the rate where the loss falls fastest.
#' The model's weights and optimizer state are restored afterwards. `plot()` draws the loss against the
#' rate (log scale) with the suggestion marked.
#'
#' @param object A compiled `pydlr_model`.
#' @param x,y Training data, as for [fit()].
#' @param start_lr,end_lr The range of rates tried.
#' @param num_it Number of batches (at least 5).
#' @param batch_size Samples per batch.
#' @param stop_div Stop early once the loss exceeds 4 times its minimum.
#' @param seed Seed of the batches drawn.
#' @param ... Unused.
#' @return A data.frame of class `pydlr_lr_find` with columns `lr` and `loss` (one row per batch), and
#'   attributes `suggestion` (the suggested rate) and `min_lr` (the rate at the minimum loss, divided by 10).
#' @family training
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy")
#'   set.seed(1)
#'   x <- array(runif(60 * 8 * 8), c(60, 8, 8, 1))
#'   y <- sample(0:2, 60, replace = TRUE)
#'   rates <- lr_find(model, x, y, num_it = 30, batch_size = 16)
#'   rates # the summary line; as.data.frame(rates) for the rows
#'   attr(rates, "suggestion")
#'   plot(rates)
#'   history <- fit_one_cycle(model, x, y, epochs = 2, max_lr = attr(rates, "suggestion"), verbose = 0)
#' }
#' @export
#' @md
lr_find <- function(object, x, y, start_lr = 1e-7, end_lr = 10, num_it = 100L, batch_size = 32L,
                    stop_div = TRUE, seed = 0L, ...) {
  .check_no_dots(list(...), "lr_find()", "see ?lr_find for its arguments.")
  .check_model(object)
  x <- .check_data_for_python(x, "x")
  y <- .check_class_targets(object, y, x, if (is.factor(y)) levels(y))
  res <- .na_found_by_python(.py_call("api_r.training.lr_find", object$py, .to_py(x), .to_py(y),
    start_lr = .check_number(start_lr, "start_lr", 0), end_lr = .check_number(end_lr, "end_lr", 0),
    num_it = .check_count(num_it, "num_it", min = 5L), batch_size = .check_count(batch_size, "batch_size"),
    stop_div = .check_flag(stop_div, "stop_div"), seed = .check_count(seed, "seed", min = 0L, null_ok = TRUE)), x)
  structure(
    data.frame(lr = as.numeric(unlist(res$lr)), loss = as.numeric(unlist(res$loss))),
    suggestion = as.numeric(res$suggestion), min_lr = as.numeric(res$min_lr),
    class = c("pydlr_lr_find", "data.frame")
  )
}

# Rows or columns taken out of the curve (head(rates), rates[1:10, ]) are a plain data.frame: its print
# shows them, where the curve's one-line summary would describe the whole search and its suggestion.
#' @export
`[.pydlr_lr_find` <- function(x, ...) {
  out <- NextMethod()
  if (!is.data.frame(out)) return(out)
  attr(out, "suggestion") <- NULL
  attr(out, "min_lr") <- NULL
  class(out) <- "data.frame"
  out
}

#' @export
#' @md
print.pydlr_lr_find <- function(x, ...) {
  cat(sprintf("<pydlr lr_find> %d rates from %.2g to %.2g; suggested rate %.3g (min_lr %.3g)\n",
    nrow(x), min(x$lr), max(x$lr), attr(x, "suggestion"), attr(x, "min_lr")))
  invisible(x)
}

#' Plot the learning-rate finder's curve
#'
#' The loss against the learning rate on a log scale, with the suggested rate marked.
#'
#' @param x A result of [lr_find()].
#' @param ... Passed to [graphics::plot()] (base graphics only).
#' @return A ggplot object when ggplot2 is installed (extend it with `+ theme_minimal()`, save it with
#'   `ggplot2::ggsave()`); otherwise the curve is drawn with base graphics and `x` is returned invisibly.
#' @family training
#' @examples
#' # drawn by lr_find()'s example: example(lr_find, package = "pydlr")
#' @export
#' @md
plot.pydlr_lr_find <- function(x, ...) {
  df <- as.data.frame(unclass(x)[c("lr", "loss")])
  if (.use_ggplot()) return(.gg_lr_find(df, attr(x, "suggestion")))
  graphics::plot(df$lr, df$loss, type = "l", log = "x", xlab = "learning rate (log scale)",
    ylab = "loss (smoothed)", ...)
  s <- attr(x, "suggestion")
  if (is.finite(s)) {
    i <- which.min(abs(log(df$lr) - log(s)))
    graphics::points(df$lr[i], df$loss[i], col = "red", pch = 19)
    graphics::legend("topleft", legend = sprintf("suggestion %.2e", s), col = "red", pch = 19, bty = "n")
  }
  invisible(x)
}

#' Train with the one-cycle learning-rate policy
#'
#' fastai's `fit_one_cycle()`: the rate rises (cosine) from `max_lr / 25` to `max_lr` over the first
#' `pct_start` of the batches, then anneals (cosine) to `max_lr / 1e5`; the rate is set before every
#' batch. Otherwise as [fit()].
#'
#' @inheritParams fit
#' @param epochs Number of epochs.
#' @param max_lr The peak learning rate (e.g. [lr_find()]'s suggestion).
#' @param pct_start Fraction of the batches spent warming up, in `(0, 1)`.
#' @param ... [fit()]'s other arguments (`batch_size`, `validation_data`, `seed`, `callbacks`, ...).
#' @return A `pydlr_history`, invisibly.
#' @family training
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
#'   set.seed(1)
#'   x <- array(runif(60 * 8 * 8), c(60, 8, 8, 1))
#'   y <- sample(0:2, 60, replace = TRUE)
#'   history <- fit_one_cycle(model, x, y, epochs = 3, max_lr = 0.01, batch_size = 16, verbose = 0)
#'   as.data.frame(history)
#' }
#' @export
#' @md
fit_one_cycle <- function(object, x = NULL, y = NULL, epochs = 1L, max_lr = 1e-3, pct_start = 0.25, ...) {
  defaults <- list(batch_size = NULL, verbose = "auto", callbacks = NULL, validation_split = 0,
    validation_data = NULL, shuffle = TRUE, class_weight = NULL, initial_epoch = 1L, steps_per_epoch = NULL,
    seed = NULL, resume = NULL, device = "auto", augment = NULL, workers = 0L, sample_weight = NULL,
    validation_batch_size = NULL, precision = "auto", nan_check = TRUE, distributed = NULL)
  dots <- list(...)
  unknown <- setdiff(names(dots), names(defaults))
  if (length(dots) && (is.null(names(dots)) || any(!nzchar(names(dots))) || length(unknown))) {
    .input_error("...", "fit()'s named arguments (see ?fit)", I(paste(c(unknown, "unnamed")[1], "argument")))
  }
  if (!is.null(dots$distributed)) .input_error("distributed", "NULL with fit_one_cycle()", dots$distributed)
  opts <- utils::modifyList(defaults, dots, keep.null = TRUE)
  args <- do.call(.fit_args, c(list(object = object, x = x, y = y, epochs = epochs), opts, list(call = sys.call())))
  max_lr <- .check_number(max_lr, "max_lr", 0)
  pct_start <- .check_number(pct_start, "pct_start", 0, 1)
  .fit_run(object, "api_r.training.fit_one_cycle", args,
    extra = list(max_lr = max_lr, pct_start = pct_start), call = sys.call())
}
