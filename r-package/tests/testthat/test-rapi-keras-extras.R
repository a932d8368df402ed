# keras3's metric_*(), preprocessing layers, callback_tensorboard(), get_layer(), model$layers and
# freeze_weights() / unfreeze_weights(), with values checked against R's own computations.

binary_data <- function(n = 200L) {
  set.seed(1)
  x <- matrix(rnorm(n * 4), n, 4)
  y <- as.numeric(x[, 1] + 0.5 * rnorm(n) > 0)
  list(x = x, y = y)
}

# The exact ROC area (Mann-Whitney), and precision / recall at 0.5, computed in R.
r_auc <- function(y, p) {
  r <- rank(p)
  n1 <- sum(y == 1)
  n0 <- sum(y == 0)
  (sum(r[y == 1]) - n1 * (n1 + 1) / 2) / (n1 * n0)
}

test_that("metric_*() objects in compile() give keras' history names and R's values", {
  d <- binary_data()
  set_random_seed(1)
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 1, activation = "sigmoid")
  compile(model, optimizer = optimizer_adam(learning_rate = 0.05), loss = "binary_crossentropy",
    metrics = list("accuracy", metric_auc(), metric_precision(), metric_recall(),
      metric_f1_score(average = "macro", threshold = 0.5), metric_binary_accuracy(threshold = 0.3)))
  history <- fit(model, d$x, d$y, epochs = 3, batch_size = 32, verbose = 0, validation_split = 0.2)
  expect_true(all(c("auc", "precision", "recall", "f1_score", "binary_accuracy", "val_auc") %in% names(history$metrics)))
  res <- evaluate(model, d$x, d$y)
  p <- as.vector(predict(model, d$x))
  pred <- p > 0.5
  expect_equal(res$auc, r_auc(d$y, p), tolerance = 1e-5)
  expect_equal(res$precision, sum(pred & d$y == 1) / sum(pred), tolerance = 1e-5)
  expect_equal(res$recall, sum(pred & d$y == 1) / sum(d$y == 1), tolerance = 1e-5)
  expect_equal(res$binary_accuracy, mean((p > 0.3) == (d$y == 1)), tolerance = 1e-6)
  expect_gt(res$auc, 0.8)
})

test_that("metric arguments are checked in R's words", {
  expect_error(metric_auc(curve = "XY"), class = "pydlr_input_error")
  expect_error(metric_precision(thresholds = 2), "thresholds", class = "pydlr_input_error")
  expect_error(metric_auc(dtype = "float16"), class = "pydlr_not_supported_error")
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = "softmax")
  expect_error(compile(model, loss = "sparse_categorical_crossentropy", metrics = list(metric_f1_score())),
    "average", class = "pydlr_input_error")
  expect_error(compile(model, loss = "sparse_categorical_crossentropy", metrics = list(42)),
    class = "pydlr_input_error")
})

test_that("augmentation layers are random in training only; resizing and cropping change the shape", {
  model <- keras_model_sequential(input_shape = c(8, 10, 1)) |>
    layer_random_flip("horizontal", seed = 1) |>
    layer_random_rotation(0.1, seed = 2) |>
    layer_random_zoom(c(-0.2, 0.2), seed = 3) |>
    layer_random_translation(0.1, 0.1, fill_mode = "constant", seed = 4) |>
    layer_random_contrast(0.2, value_range = c(0, 1), seed = 5) |>
    layer_resizing(12, 12) |>
    layer_center_crop(10, 10)
  table <- summary(model)
  expect_equal(table$output_shape[6:7], c("(None, 12, 12, 1)", "(None, 10, 10, 1)"))
  x <- array(runif(3 * 8 * 10), c(3, 8, 10, 1))
  out <- predict(model, x)
  expect_equal(dim(out), c(3L, 10L, 10L, 1L))
  expect_equal(predict(model, x), out)  # inference: no randomness
  crop <- keras_model_sequential(input_shape = c(8, 10, 1)) |> layer_center_crop(4, 6)
  expect_equal(predict(crop, x), x[, 3:6, 3:8, , drop = FALSE], tolerance = 1e-6)
  expect_error(layer_random_rotation(factor = "a lot"), "factor", class = "pydlr_input_error")
  expect_error(layer_random_flip(mode = "diagonal"), "mode", class = "pydlr_input_error")
  expect_error(layer_random_zoom(height_factor = c(0.3, 0.1)), "c\\(lower, upper\\)", class = "pydlr_input_error")
  expect_error(layer_resizing(height = 0, width = 4), "height", class = "pydlr_input_error")
})

test_that("a model with augmentation layers trains with fit()", {
  set.seed(2)
  y <- rep(0:1, 32)
  x <- array((y - 0.5) + 0.3 * rnorm(64 * 64), c(64, 8, 8, 1))
  set_random_seed(2)
  model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
    layer_random_flip("horizontal") |>
    layer_random_rotation(0.02) |>
    layer_flatten() |>
    layer_dense(units = 2, activation = "softmax")
  compile(model, optimizer = optimizer_adam(learning_rate = 0.01), loss = "sparse_categorical_crossentropy",
    metrics = "accuracy")
  history <- fit(model, x, y, epochs = 5, batch_size = 16, verbose = 0, seed = 0)
  expect_gt(tail(history$metrics$accuracy, 1), 0.9)
})

test_that("callback_tensorboard() writes event files with the epoch losses", {
  d <- binary_data(64)
  logs <- file.path(tempfile("tb"))
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 1, activation = "sigmoid")
  compile(model, optimizer = "adam", loss = "binary_crossentropy")
  history <- fit(model, d$x, d$y, epochs = 2, verbose = 0, validation_split = 0.25,
    callbacks = list(callback_tensorboard(logs, histogram_freq = 1)))
  expect_length(list.files(file.path(logs, "train"), pattern = "^events"), 1L)
  expect_length(list.files(file.path(logs, "validation"), pattern = "^events"), 1L)
  expect_error(callback_tensorboard(logs, update_freq = "sometimes"), "update_freq", class = "pydlr_input_error")
  expect_error(callback_tensorboard(logs, write_images = TRUE), class = "pydlr_not_supported_error")
})

test_that("get_layer(), model$layers and freeze_weights() follow keras3", {
  model <- keras_model_sequential(input_shape = 4) |>
    layer_dense(units = 8, name = "a") |>
    layer_dense(units = 4, name = "b") |>
    layer_dense(units = 2, name = "c")
  expect_equal(vapply(model$layers, function(l) l$name, ""), c("a", "b", "c"))
  expect_equal(get_layer(model, "b")$params, 36)
  expect_equal(get_layer(model, index = 3)$name, "c")
  trainable <- function() vapply(model$layers, function(l) l$trainable, TRUE)
  freeze_weights(model)
  expect_equal(trainable(), c(FALSE, FALSE, FALSE))
  expect_equal(summary(model)$trainable, c(FALSE, FALSE, FALSE))
  unfreeze_weights(model, from = "b")
  expect_equal(trainable(), c(FALSE, TRUE, TRUE))
  freeze_weights(model, to = 2)
  expect_equal(trainable(), c(FALSE, FALSE, TRUE))
  freeze_weights(model, from = -1)
  expect_equal(trainable(), c(TRUE, TRUE, FALSE))
  model$layers[[1]]$trainable <- FALSE
  expect_equal(trainable(), c(FALSE, TRUE, FALSE))
  model$trainable <- TRUE
  expect_equal(trainable(), c(TRUE, TRUE, TRUE))
  expect_error(get_layer(model, "nope"), "name", class = "pydlr_input_error")
  err <- tryCatch(get_layer(model, "nope"), error = identity)
  expect_equal(deparse(conditionCall(err)[[1]]), "get_layer") # the user's call, not the package's inner one
  expect_error(freeze_weights(model, from = 0), "from", class = "pydlr_input_error")
  expect_error(get_layer(model), class = "pydlr_input_error")
})
