# The engine's everyday defects, as a keras3 user meets them from R: the optimizer's rate set from a
# callback, compile() atomic, a loss that does not fit the model's outputs, validation_split on data
# sorted by class.

quadrants <- function(n_per_class = 40L) {
  set.seed(1)
  y <- rep(0:3, each = n_per_class)  # sorted by class, as a folder reader returns them
  x <- array(runif(length(y) * 8 * 8, 0, 0.5), c(length(y), 8, 8, 1))
  for (i in seq_along(y)) {
    r <- y[i] %/% 2
    q <- y[i] %% 2
    x[i, (r * 4 + 1):(r * 4 + 4), (q * 4 + 1):(q * 4 + 4), 1] <- x[i, (r * 4 + 1):(r * 4 + 4), (q * 4 + 1):(q * 4 + 4), 1] + 0.5
  }
  list(x = x, y = y)
}

# model$py holds Python objects unconverted: read values through py_to_r()
py_value <- function(x) reticulate::py_to_r(x)

dense_model <- function(units = 4L, activation = "softmax") {
  keras_model_sequential(input_shape = c(8, 8, 1)) |>
    layer_flatten() |>
    layer_dense(units = units, activation = activation)
}

test_that("the optimizer exists after compile() and a callback setting its learning_rate stops the updates", {
  d <- quadrants()
  model <- dense_model()
  model |> compile(optimizer = "sgd", loss = "sparse_categorical_crossentropy")
  expect_false(is.null(py_value(model$py$optimizer)))
  expect_equal(py_value(model$py$optimizer$learning_rate), 0.01)
  before <- rapi_flat_weights(model)
  zero_rate <- callback_lambda(on_train_begin = function(logs) model$py$optimizer$learning_rate <- 0)
  model |> fit(d$x, d$y, epochs = 2, batch_size = 16, verbose = 0, callbacks = list(zero_rate))
  expect_equal(py_value(model$py$optimizer$learning_rate), 0)
  expect_identical(rapi_flat_weights(model), before)
})

test_that("a failed compile() changes nothing", {
  model <- dense_model()
  model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  config <- py_value(model$py$get_compile_config())
  expect_error(model |> compile(optimizer = "adma", loss = "mse"), class = "pydlr_input_error",
    regexp = "optimizer")
  expect_error(model |> compile(optimizer = "sgd", loss = "mse", metrics = "acuracy"),
    class = "pydlr_input_error")
  expect_identical(py_value(model$py$get_compile_config()), config)
  expect_equal(config$loss$name, "sparse_categorical_crossentropy")
})

test_that("mse with class labels against 10 outputs fails at fit start, naming the loss to use", {
  d <- quadrants(3L)  # 12 samples
  model <- dense_model(10L)
  model |> compile(optimizer = "adam", loss = "mse")
  before <- rapi_flat_weights(model)
  err <- expect_error(model |> fit(d$x, d$y, epochs = 1, verbose = 0), class = "pydlr_input_error")
  expect_match(conditionMessage(err), "sparse_categorical_crossentropy")
  expect_no_match(conditionMessage(err), "must match the size")
  expect_identical(rapi_flat_weights(model), before)
})

test_that("binary_crossentropy on a 10-unit softmax fails at compile()", {
  model <- dense_model(10L)
  expect_error(model |> compile(optimizer = "adam", loss = "binary_crossentropy"),
    class = "pydlr_input_error", regexp = "10-unit softmax")
  expect_null(py_value(model$py$get_compile_config()))
})

test_that("validation_split on data sorted by class warns with the fix", {
  d <- quadrants()
  model <- dense_model()
  model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  expect_warning(model |> fit(d$x, d$y, epochs = 1, verbose = 0, validation_split = 0.25),
    "never occur.*[Ss]huffle", class = "pydlr_warning")
})
