compiled_cnn <- function(...) {
  model <- rapi_seed_cnn(head = TRUE)
  model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy", ...)
  model
}

test_that("compile() and fit() work in place: the model trains without reassignment", {
  d <- rapi_mnist(200, 50)
  model <- rapi_tiny_cnn()
  before <- rapi_flat_weights(model)
  model |> fit(d$x_train, d$y_train, epochs = 1, batch_size = 50, verbose = 0, seed = 1)
  after <- rapi_flat_weights(model)
  expect_equal(length(after), count_params(model))
  expect_false(identical(before, after))
  expect_gt(mean(abs(after - before)), 0)
})

test_that("fit on a small MNIST subset reaches an accuracy floor; evaluate and predict agree", {
  d <- rapi_mnist(1000, 500)
  model <- compiled_cnn()
  history <- model |> fit(d$x_train, d$y_train, epochs = 3, batch_size = 32, validation_split = 0.2,
    verbose = 0, seed = 42)
  expect_s3_class(history, "pydlr_history")
  df <- as.data.frame(history)
  expect_named(df, c("epoch", "loss", "accuracy", "val_loss", "val_accuracy"))
  expect_equal(df$epoch, 1:3)
  expect_lt(df$loss[3], df$loss[1])
  long <- as.data.frame(history, format = "long")
  expect_named(long, c("epoch", "value", "metric", "data"))
  expect_equal(nrow(long), 12L)
  expect_setequal(levels(long$data), c("training", "validation"))

  score <- evaluate(model, d$x_test, d$y_test)
  expect_type(score, "list")
  expect_named(score, c("loss", "accuracy"))
  expect_gt(score$accuracy, 0.80)

  probs <- predict(model, d$x_test)
  expect_true(is.matrix(probs))
  expect_equal(dim(probs), c(500L, 10L))
  expect_equal(rowSums(probs), rep(1, 500), tolerance = 1e-5)
  classes <- predict(model, d$x_test, type = "class")
  expect_type(classes, "integer")
  expect_equal(classes, max.col(probs, ties.method = "first") - 1L)
  expect_equal(mean(classes == d$y_test), score$accuracy, tolerance = 1e-6)
  expect_equal(predict(model, d$x_test[1:5, , ], verbose = 0), probs[1:5, ], tolerance = 1e-6) # keras3's verbose = 0
  # an argument predict() does not have is an error, not silently dropped
  expect_error(predict(model, d$x_test, device = "cpu"), "`device`", class = "pydlr_error")
  expect_error(predict(model, d$x_test, verbose = "quiet"), "verbose", class = "pydlr_input_error")
  expect_error(predict(model, d$x_test[1, , ]), "x[i, , , drop = FALSE] (x[i, , , , drop = FALSE] for", fixed = TRUE) # one image
  expect_equal(dim(predict(model, d$x_test[1, , , drop = FALSE])), c(1L, 10L))
})

test_that("a last layer without activation under a probability loss is an R warning that says the fix", {
  set.seed(2)
  x <- matrix(runif(80), 20)
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2)
  model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy")
  expect_warning(fit(model, x, rep(0:1, 10), epochs = 1, verbose = 0), 'give it a "softmax" activation',
                 class = "pydlr_warning")
  fine <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = "softmax")
  fine |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy")
  expect_no_warning(fit(fine, x, rep(0:1, 10), epochs = 1, verbose = 0))
})

test_that("one-hot targets with categorical_crossentropy and 4-d input work as in keras", {
  d <- rapi_mnist(200, 50)
  x <- array_reshape(d$x_train, c(200, 28, 28, 1))
  model <- rapi_tiny_cnn(loss = "categorical_crossentropy", optimizer = optimizer_rmsprop(learning_rate = 0.001))
  h <- model |> fit(x, to_categorical(d$y_train, 10), epochs = 1, batch_size = 64, verbose = 0,
    validation_data = list(d$x_test, to_categorical(d$y_test, 10)))
  expect_true(all(c("loss", "accuracy", "val_loss", "val_accuracy") %in% names(as.data.frame(h))))
})

test_that("fit(seed = ) is reproducible: two runs from the same weights end bit-identical", {
  d <- rapi_mnist(200, 10)
  path <- tempfile(fileext = ".pydlr")
  on.exit(unlink(path, recursive = TRUE))
  save_model(rapi_tiny_cnn(), path)
  run <- function() {
    model <- load_model(path)
    model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
    model |> fit(d$x_train, d$y_train, epochs = 1, batch_size = 32, verbose = 0, seed = 7)
    rapi_flat_weights(model)
  }
  expect_identical(run(), run())
})

test_that("verbose = 2 prints one line per epoch; verbose = 0 prints nothing", {
  d <- rapi_mnist(100, 10)
  model <- rapi_tiny_cnn()
  out <- capture.output(model |> fit(d$x_train, d$y_train, epochs = 2, batch_size = 50, verbose = 2))
  out <- out[nzchar(out)]
  expect_length(grep("^Epoch [12]/2", out), 2L)
  expect_match(out[length(out)], "loss: [0-9.]+ - accuracy: [0-9.]+")
  expect_length(capture.output(model |> fit(d$x_train, d$y_train, epochs = 1, verbose = 0)), 0L)
})

test_that("callbacks: R functions run per epoch, early stopping stops, CSV logger and checkpoint write", {
  d <- rapi_mnist(200, 10)
  model <- rapi_tiny_cnn()
  seen <- list()
  lambda <- callback_lambda(on_epoch_end = function(epoch, logs) seen[[length(seen) + 1]] <<- list(epoch, logs))
  csv <- tempfile(fileext = ".csv")
  ckpt <- tempfile(fileext = ".pydlr")
  on.exit(unlink(c(csv, ckpt), recursive = TRUE))
  h <- model |> fit(d$x_train, d$y_train, epochs = 3, batch_size = 50, verbose = 0, callbacks = list(
    lambda, callback_csv_logger(csv), callback_model_checkpoint(ckpt, monitor = "loss")
  ))
  expect_length(seen, 3L)
  expect_equal(vapply(seen, function(s) as.integer(s[[1]]), integer(1)), 0:2) # keras' 0-based epochs
  expect_equal(seen[[3]][[2]]$loss, as.data.frame(h)$loss[3], tolerance = 1e-6)
  logged <- utils::read.csv(csv)
  expect_equal(nrow(logged), 3L)
  expect_true(all(c("epoch", "loss", "accuracy") %in% names(logged)))
  expect_true(file.exists(ckpt))
  expect_identical(rapi_flat_weights(load_model(ckpt)), rapi_flat_weights(model)) # the last epoch's model

  stopper <- callback_early_stopping(monitor = "loss", min_delta = 100, patience = 0)
  h2 <- model |> fit(d$x_train, d$y_train, epochs = 5, verbose = 0, callbacks = list(stopper))
  expect_lt(length(h2$epoch), 5L)
})

test_that("an error inside an R callback stops fit with an R error and leaves the session usable", {
  d <- rapi_mnist(100, 10)
  model <- rapi_tiny_cnn()
  bad <- callback_lambda(on_epoch_end = function(epoch, logs) stop("my callback failed"))
  e <- expect_error(model |> fit(d$x_train, d$y_train, epochs = 2, verbose = 0, callbacks = list(bad)),
    class = "pydlr_error")
  expect_match(conditionMessage(e), "my callback failed")
  expect_no_match(conditionMessage(e), "Traceback")
  expect_s3_class(model |> fit(d$x_train, d$y_train, epochs = 1, verbose = 0), "pydlr_history")
})

test_that("plot() of a history draws the curves and writes a PNG", {
  skip_if_not_installed("png")
  d <- rapi_mnist(100, 10)
  model <- rapi_tiny_cnn()
  h <- model |> fit(d$x_train, d$y_train, epochs = 2, validation_split = 0.2, verbose = 0)
  file <- tempfile(fileext = ".png")
  on.exit(unlink(file))
  expect_equal(plot(h, file = file), file)
  img <- png::readPNG(file)
  expect_equal(dim(img)[1:2], c(450L, 900L))
  expect_gt(stats::sd(as.vector(img)), 0) # not a blank image
  expect_output(print(h), "Training history: 2 epochs")
})

test_that("verbose = 1 in a console updates the progress line in place (\\r), ending each epoch", {
  d <- rapi_mnist(200, 10)
  model <- rapi_tiny_cnn()
  withr::local_options(pydlr.dynamic_progress = TRUE)
  out <- paste(capture.output(model |> fit(d$x_train, d$y_train, epochs = 2, batch_size = 10, verbose = 1)),
    collapse = "\n")
  expect_match(out, "\r", fixed = TRUE)
  expect_match(out, "Epoch 2/2")
  expect_match(out, "20/20")
})

test_that("steps_per_epoch, class_weight and an uncompiled model behave as documented", {
  d <- rapi_mnist(200, 10)
  model <- rapi_tiny_cnn()
  h <- model |> fit(d$x_train, d$y_train, epochs = 1, batch_size = 20, steps_per_epoch = 3, verbose = 0,
    class_weight = stats::setNames(as.list(c(2, rep(1, 9))), 0:9))
  expect_equal(h$params$steps, 3)
  expect_error(fit(model, d$x_train, d$y_train, class_weight = c(1, 2), verbose = 0), "`class_weight`")
  raw <- keras_model_sequential(input_shape = c(28, 28, 1)) |> layer_flatten() |> layer_dense(10)
  e <- expect_error(fit(raw, d$x_train, d$y_train, verbose = 0), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "compile")
  expect_error(fit(model, d$x_train, d$y_train + 20L, verbose = 0), class = "pydlr_input_error")
})

test_that("fit(resume = ) continues an interrupted run to the same weights as an uninterrupted one", {
  d <- rapi_mnist(200, 10)
  start <- tempfile(fileext = ".pydlr")
  ckpt_a <- tempfile(fileext = ".ckpt")
  ckpt_b <- tempfile(fileext = ".ckpt")
  on.exit(unlink(c(start, ckpt_a, ckpt_b), recursive = TRUE))
  save_model(rapi_tiny_cnn(), start)
  fresh <- function() {
    model <- load_model(start)
    model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
    model
  }
  straight <- fresh()
  straight |> fit(d$x_train, d$y_train, epochs = 3, batch_size = 32, seed = 11, resume = ckpt_a, verbose = 0)
  first <- fresh()
  first |> fit(d$x_train, d$y_train, epochs = 1, batch_size = 32, seed = 11, resume = ckpt_b, verbose = 0)
  second <- fresh() # a new session's model, continued from the checkpoint
  h <- second |> fit(d$x_train, d$y_train, epochs = 3, batch_size = 32, seed = 11, resume = ckpt_b, verbose = 0)
  expect_identical(rapi_flat_weights(second), rapi_flat_weights(straight))
})

test_that("callback_learning_rate_scheduler() calls an R schedule(epoch, lr) each epoch", {
  d <- rapi_mnist(100, 10)
  model <- rapi_tiny_cnn()
  seen <- list()
  schedule <- function(epoch, lr) {
    seen[[length(seen) + 1]] <<- c(epoch, lr)
    if (epoch == 0) 0.01 else lr / 10
  }
  model |> fit(d$x_train, d$y_train, epochs = 3, verbose = 0,
    callbacks = list(callback_learning_rate_scheduler(schedule)))
  seen <- do.call(rbind, seen)
  expect_equal(seen[, 1], c(0, 1, 2))
  expect_equal(seen[, 2], c(0.001, 0.01, 0.001), tolerance = 1e-9) # adam's default, then the schedule's
  expect_error(callback_learning_rate_scheduler(0.1), "`schedule`")
})

test_that("a data.frame's columns are matched by name, as fit() saw them", {
  set.seed(3)
  df <- data.frame(a = rnorm(60), b = rnorm(60), c = rnorm(60))
  y <- as.integer(df$a > 0)
  model <- keras_model_sequential(input_shape = 3) |> layer_dense(units = 2, activation = "softmax")
  model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  h <- model |> fit(df, y, epochs = 2, verbose = 0, seed = 1, validation_data = list(df[, 3:1], y))
  # the validation columns were read by name too: their loss is the training columns' loss
  expect_equal(tail(h$metrics$val_loss, 1), evaluate(model, df, y)$loss, tolerance = 1e-5)
  expect_error(fit(model, df, y, epochs = 1, verbose = 0, validation_data = list(setNames(df, c("a", "b", "d")), y)),
    "argument `validation_data\\[\\[1\\]\\]` must be data with the columns fit\\(\\) was given.*c missing, d not among them",
    class = "pydlr_input_error")
  # the same columns in another order give the same results (reordered by name, as predict.lm() does)
  expect_identical(predict(model, df[, c("c", "a", "b")]), predict(model, df))
  expect_identical(evaluate(model, df[, 3:1], y), evaluate(model, df, y))
  e <- expect_error(predict(model, data.frame(x = 1, y = 2, z = 3)), class = "pydlr_input_error")
  expect_match(conditionMessage(e), paste0('predict(): argument `x` must be data with the columns fit() was given ',
    '(a, b, c); received columns a, b, c missing, x, y, z not among them.'), fixed = TRUE)
  expect_error(evaluate(model, setNames(df, c("a", "b", "d")), y), "c missing, d not among them",
               class = "pydlr_input_error")
  expect_identical(dim(predict(model, as.matrix(unname(df)))), c(60L, 2L)) # no names: taken as they come
  path <- tempfile(fileext = ".pydlr")
  save_model(model, path)
  loaded <- load_model(path) # the names are saved with the model
  expect_identical(predict(loaded, df[, c("c", "a", "b")]), predict(model, df))
  expect_error(predict(loaded, data.frame(x = 1, y = 2, z = 3)), "c missing", class = "pydlr_input_error")
})

test_that("predict() and evaluate() warn when x is on another scale than the training data", {
  d <- rapi_mnist(60, 20)
  model <- rapi_tiny_cnn()
  model |> fit(d$x_train, d$y_train, epochs = 1, verbose = 0, seed = 1)
  raw <- d$x_test * 255 # test pixels left at 0-255 for a model trained on x / 255
  w <- expect_warning(predict(model, raw), class = "pydlr_warning")
  expect_match(conditionMessage(w), "^`x` reaches 255 but the training data reached 1: scale it as the training data")
  expect_warning(predict(model, raw, type = "class"), "reaches 255", class = "pydlr_warning")
  expect_identical(suppressWarnings(predict(model, raw, type = "class")), max.col(suppressWarnings(predict(model, raw)), ties.method = "first") - 1L)
  expect_warning(evaluate(model, raw, d$y_test), "reaches 255", class = "pydlr_warning")
  expect_warning(fit(model, d$x_train, d$y_train, validation_data = list(raw, d$y_test), epochs = 1, verbose = 0),
                 "`validation_data[[1]]` reaches 255 but the training data reached 1", fixed = TRUE)
  expect_silent(predict(model, d$x_test))
  expect_silent(predict(model, d$x_test[1, , , drop = FALSE] * 0.5)) # a darker image is not another scale
  path <- tempfile(fileext = ".pydlr")
  save_model(model, path)
  expect_warning(predict(load_model(path), raw), "reaches 255", class = "pydlr_warning") # kept in the file
  # trained on 0-255, predicted on [0, 1]
  model |> fit(d$x_train * 255, d$y_train, epochs = 1, verbose = 0, seed = 1)
  expect_warning(predict(model, d$x_test), "reaches 1 but the training data reached 255", class = "pydlr_warning")
})

test_that("tables are not checked for scale: a new row may exceed the training range", {
  set.seed(2)
  x <- matrix(runif(80), 20)
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = "softmax")
  model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy")
  model |> fit(x, rep(0:1, 10), epochs = 1, verbose = 0)
  expect_silent(predict(model, x * 100))
})
