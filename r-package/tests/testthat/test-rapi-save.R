test_that("save_model()/load_model() round trip is bit-exact (weights and predictions)", {
  d <- rapi_mnist(100, 20)
  model <- rapi_seed_cnn(head = TRUE)
  model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  model |> fit(d$x_train, d$y_train, epochs = 1, verbose = 0, seed = 3)
  path <- tempfile(fileext = ".pydlr")
  on.exit(unlink(path, recursive = TRUE))
  expect_equal(save_model(model, path), path)
  loaded <- load_model(path)
  expect_s3_class(loaded, "pydlr_model")
  expect_identical(get_weights(loaded), get_weights(model))
  expect_identical(predict(loaded, d$x_test), predict(model, d$x_test))
  expect_equal(count_params(loaded), 93322)
  # keras3's default: no silent overwrite
  expect_error(save_model(model, path), class = "pydlr_input_error")
  expect_silent(save_model(model, path, overwrite = TRUE))
})

test_that("a model saved by Python loads in R, and one saved by R loads in Python", {
  models <- reticulate::import("pydlr.models", convert = FALSE)
  io <- reticulate::import("pydlr.io", convert = FALSE)
  py_weights <- function(py) lapply(reticulate::py_to_r(py$get_weights()), as.vector)
  py_path <- tempfile(fileext = ".pydlr")
  r_path <- tempfile(fileext = ".pydlr")
  on.exit(unlink(c(py_path, r_path), recursive = TRUE))

  py_model <- models$seed_cnn(padding = "valid", head = TRUE)
  io$save_model(py_model, py_path)
  in_r <- load_model(py_path)
  expect_identical(lapply(get_weights(in_r), as.vector), py_weights(py_model))

  model <- rapi_seed_cnn(head = TRUE)
  save_model(model, r_path)
  expect_identical(py_weights(io$load_model(r_path)), lapply(get_weights(model), as.vector))
})

test_that("load_model() of a missing path names the argument", {
  expect_error(load_model(file.path(tempdir(), "no-such-model")), class = "pydlr_input_error")
  expect_error(load_model(file.path(tempdir(), "no-such-model")), "`filepath`")
})

test_that("save_model_weights()/load_model_weights() copy weights into a fresh model, bit-exact", {
  d <- rapi_mnist(50, 20)
  trained <- rapi_tiny_cnn()
  trained |> fit(d$x_train, d$y_train, epochs = 1, verbose = 0)
  path <- tempfile(fileext = ".safetensors")
  on.exit(unlink(path))
  save_model_weights(trained, path)
  fresh <- rapi_tiny_cnn()
  expect_false(identical(get_weights(fresh), get_weights(trained)))
  load_model_weights(fresh, path)
  expect_identical(get_weights(fresh), get_weights(trained))
  other <- keras_model_sequential(input_shape = c(28, 28, 1)) |> layer_flatten() |> layer_dense(3)
  expect_error(load_model_weights(other, path), class = "pydlr_error")
})

test_that("the factor levels a model was trained on survive save_model()/load_model()", {
  d <- rapi_mnist(60, 20)
  digits <- c("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
  y <- factor(digits[d$y_train + 1L], levels = digits)
  model <- rapi_tiny_cnn()
  model |> fit(d$x_train, y, epochs = 1, verbose = 0, seed = 1)
  path <- tempfile(fileext = ".safetensors")
  on.exit(unlink(path))
  save_model(model, path)
  loaded <- load_model(path)
  classes <- predict(loaded, d$x_test, type = "class")
  expect_identical(levels(classes), digits)
  expect_identical(classes, predict(model, d$x_test, type = "class"))
  # a test factor is read on the training levels, so a label the model never saw is refused
  expect_error(evaluate(loaded, d$x_test, factor(rep("ten", 20))), "labels not among them")
})

test_that("a checkpoint written during fit() on a factor keeps its levels", {
  d <- rapi_mnist(60, 20)
  digits <- c("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
  y <- factor(digits[d$y_train + 1L], levels = digits)
  model <- rapi_tiny_cnn()
  path <- tempfile(fileext = ".pydlr")
  on.exit(unlink(path))
  model |> fit(d$x_train, y, epochs = 1, verbose = 0, seed = 1,
               callbacks = list(callback_model_checkpoint(path, monitor = "loss")))
  loaded <- load_model(path)
  classes <- predict(loaded, d$x_test, type = "class")
  expect_identical(levels(classes), digits)
  expect_identical(classes, predict(model, d$x_test, type = "class"))
  # refitting on 0-based integers: the checkpoint no longer claims the old levels
  model |> fit(d$x_train, d$y_train, epochs = 1, verbose = 0, seed = 1,
               callbacks = list(callback_model_checkpoint(path, monitor = "loss")))
  expect_null(levels(predict(load_model(path), d$x_test, type = "class")))
})
