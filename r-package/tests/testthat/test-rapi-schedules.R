# Learning-rate control from R: keras3's schedules and ReduceLROnPlateau, fastai's lr_find and fit_one_cycle.

sched_model <- function(optimizer = optimizer_sgd(learning_rate = 0.5)) {
  set_random_seed(3L)
  m <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 3, activation = "softmax")
  m |> compile(optimizer = optimizer, loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  m
}
sched_data <- local({
  set.seed(5)
  x <- matrix(rnorm(256), 64)
  list(x = x, y = (x[, 1] > 0) + (x[, 2] > 0))
})

test_that("learning_rate_schedule_*() compute keras' rates", {
  e <- learning_rate_schedule_exponential_decay(0.1, decay_steps = 10, decay_rate = 0.5)
  expect_equal(e(c(0, 10, 20, 5)), c(0.1, 0.05, 0.025, 0.1 * 0.5^0.5))
  st <- learning_rate_schedule_exponential_decay(0.1, 10, 0.5, staircase = TRUE)
  expect_equal(st(c(5, 15)), c(0.1, 0.05))
  cd <- learning_rate_schedule_cosine_decay(0.1, decay_steps = 100, alpha = 0.1)
  expect_equal(cd(c(0, 50, 100, 500)), c(0.1, 0.055, 0.01, 0.01))
  w <- learning_rate_schedule_cosine_decay(0.0, 100, warmup_target = 0.2, warmup_steps = 10)
  expect_equal(w(c(5, 10)), c(0.1, 0.2))
  p <- learning_rate_schedule_piecewise_constant_decay(c(10, 20), c(1, 0.5, 0.1))
  expect_equal(p(c(0, 10, 11, 20, 21)), c(1, 1, 0.5, 0.5, 0.1))
  expect_output(print(p), "PiecewiseConstantDecay")
  expect_error(learning_rate_schedule_piecewise_constant_decay(c(10, 20), c(1, 0.5)), class = "pydlr_input_error")
  expect_error(learning_rate_schedule_exponential_decay(-1, 10, 0.5), class = "pydlr_input_error")
})

test_that("a schedule given as the optimizer's learning_rate sets the rate of every batch in fit()", {
  # rate 0.5 for steps 0 and 1, then 1e-30: 4 steps end where 2 steps end
  schedule <- learning_rate_schedule_piecewise_constant_decay(1, c(0.5, 1e-30))
  scheduled <- sched_model(optimizer_sgd(learning_rate = schedule))
  fit(scheduled, sched_data$x, sched_data$y, batch_size = 16L, epochs = 1L, shuffle = FALSE, verbose = 0L)
  two <- sched_model()
  fit(two, sched_data$x, sched_data$y, batch_size = 16L, epochs = 1L, steps_per_epoch = 2L, shuffle = FALSE,
    verbose = 0L)
  four <- sched_model()
  fit(four, sched_data$x, sched_data$y, batch_size = 16L, epochs = 1L, shuffle = FALSE, verbose = 0L)
  expect_equal(rapi_flat_weights(scheduled), rapi_flat_weights(two), tolerance = 1e-7)
  expect_gt(max(abs(rapi_flat_weights(four) - rapi_flat_weights(two))), 1e-3)
  expect_error(optimizer_sgd(learning_rate = "fast"), class = "pydlr_input_error")
})

test_that("callback_reduce_lr_on_plateau() lowers the rate when the monitored value stalls", {
  # min_delta so large that no epoch after the first improves: the rate drops to 1e-9 x after epoch 2
  cb <- callback_reduce_lr_on_plateau(monitor = "loss", factor = 1e-9, patience = 0L, min_delta = 1e9)
  reduced <- sched_model()
  fit(reduced, sched_data$x, sched_data$y, batch_size = 16L, epochs = 4L, seed = 1L, callbacks = list(cb), verbose = 0L)
  two <- sched_model()
  fit(two, sched_data$x, sched_data$y, batch_size = 16L, epochs = 2L, seed = 1L, verbose = 0L)
  four <- sched_model()
  fit(four, sched_data$x, sched_data$y, batch_size = 16L, epochs = 4L, seed = 1L, verbose = 0L)
  expect_equal(rapi_flat_weights(reduced), rapi_flat_weights(two), tolerance = 1e-6)
  expect_gt(max(abs(rapi_flat_weights(four) - rapi_flat_weights(two))), 1e-3)
  expect_error(callback_reduce_lr_on_plateau(factor = 1), class = "pydlr_input_error")
  e <- expect_error(fit(sched_model(), sched_data$x, sched_data$y, epochs = 1L, verbose = 0L,
    callbacks = callback_reduce_lr_on_plateau(monitor = "val_nothing")), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "val_nothing")
})

test_that("lr_find() returns the curve as a data.frame, suggests a rate and leaves the model as it was", {
  m <- sched_model(optimizer_adam())
  before <- rapi_flat_weights(m)
  rates <- lr_find(m, sched_data$x, sched_data$y, num_it = 30L, batch_size = 16L)
  expect_s3_class(rates, "data.frame")
  expect_named(rates, c("lr", "loss"))
  expect_gte(nrow(rates), 6L)
  expect_lte(nrow(rates), 30L)
  expect_equal(rates$lr[1], 1e-7)
  expect_true(all(diff(rates$lr) > 0))
  s <- attr(rates, "suggestion")
  expect_true(s > min(rates$lr) && s < max(rates$lr))
  expect_identical(rapi_flat_weights(m), before)
  expect_output(print(rates), "suggested rate")
  top <- head(rates) # rows: a plain data.frame that prints them
  expect_identical(class(top), "data.frame")
  expect_equal(top$lr, rates$lr[1:6])
  expect_output(print(top), "lr +loss")
  p <- plot(rates)
  expect_s3_class(p, "ggplot")
  expect_equal(p$data$lr, rates$lr)
  marked <- p$layers[[2]]$data # the suggested rate, drawn as a point on the curve
  expect_equal(marked$lr, rates$lr[which.min(abs(log(rates$lr) - log(s)))])
  png_file <- tempfile(fileext = ".png")
  ggplot2::ggsave(png_file, p + ggplot2::theme_minimal(), width = 4, height = 3, dpi = 50)
  expect_gt(file.size(png_file), 1000)
  withr::with_options(list(pydlr.plot_engine = "base"), {
    grDevices::pdf(NULL)
    on.exit(grDevices::dev.off())
    expect_identical(plot(rates), rates)
  })
  expect_error(lr_find(m, sched_data$x, sched_data$y, num_it = 2L), class = "pydlr_input_error")
})

test_that("fit_one_cycle() trains with fit()'s arguments", {
  m <- sched_model(optimizer_adam())
  h <- fit_one_cycle(m, sched_data$x, sched_data$y, epochs = 4L, max_lr = 0.05, batch_size = 16L, seed = 1L,
    verbose = 0L, validation_split = 0.25)
  expect_s3_class(h, "pydlr_history")
  expect_identical(names(as.data.frame(h)), c("epoch", "loss", "accuracy", "val_loss", "val_accuracy"))
  expect_lt(h$metrics$loss[4], h$metrics$loss[1])
  again <- sched_model(optimizer_adam())
  h2 <- fit(again, sched_data$x, sched_data$y, epochs = 4L, batch_size = 16L, seed = 1L, verbose = 0L,
    validation_split = 0.25)
  expect_false(identical(rapi_flat_weights(m), rapi_flat_weights(again))) # the schedule changed the rates
  expect_error(fit_one_cycle(m, sched_data$x, sched_data$y, pct_start = 2), "^fit_one_cycle\\(\\): argument `pct_start`",
               class = "pydlr_input_error")
  expect_error(fit_one_cycle(m, sched_data$x, sched_data$y, bogus = 1), class = "pydlr_input_error")
})
