# keras3's functional API from R: layer_input(), layer_*() called on tensors, keras_model(), merges.

test_that("layers called on tensors build a graph whose outputs are the expected functions of the inputs", {
  inputs <- layer_input(shape = 3)
  expect_s3_class(inputs, "pydlr_tensor")
  expect_output(print(inputs), "shape=\\(None, 3\\)")
  r <- inputs |> layer_re_lu()
  s <- layer_add(list(inputs, r))
  outputs <- layer_concatenate(list(s, inputs))
  model <- keras_model(inputs, outputs, name = "merges")
  expect_s3_class(model, "pydlr_model")
  x <- matrix(c(-2, -0.5, 0, 1, 3, 2.5), nrow = 2)
  expect_equal(predict(model, x), cbind(x + pmax(x, 0), x), tolerance = 1e-6)
  table <- summary(model) |> capture.output() |> invisible()
  df <- pydlr:::.summary_df(model)
  expect_identical(df$type, c("InputLayer", "ReLU", "Add", "Concatenate"))
  expect_identical(df$output_shape[4], "(None, 6)")
})

test_that("a residual CNN built with keras_model() trains, and saves and loads with the same predictions", {
  data <- ddp_data(256L, 1L)
  inputs <- layer_input(shape = c(8, 8, 1))
  a <- inputs |> layer_conv_2d(filters = 4, kernel_size = 3, padding = "same", activation = "relu")
  b <- a |> layer_conv_2d(filters = 4, kernel_size = 3, padding = "same")
  outputs <- layer_add(list(a, b)) |> layer_re_lu(max_value = 6) |> layer_flatten() |>
    layer_dense(units = 4, activation = "softmax")
  set_random_seed(1L)
  model <- keras_model(inputs, outputs)
  expect_identical(count_params(model), 40 + 148 + 256 * 4 + 4)
  model |> compile(optimizer = optimizer_adam(learning_rate = 0.01), loss = "sparse_categorical_crossentropy",
    metrics = "accuracy")
  h <- fit(model, data$x, data$y, epochs = 3L, batch_size = 32L, seed = 1L, verbose = 0L)
  expect_lt(h$metrics$loss[3], h$metrics$loss[1])
  expect_gt(evaluate(model, data$x, data$y)$accuracy, 0.9)
  path <- tempfile()
  save_model(model, path)
  again <- load_model(path)
  expect_identical(predict(again, data$x[1:5, , , , drop = FALSE]), predict(model, data$x[1:5, , , , drop = FALSE]))
})

test_that("ReLU6 clamps at 6, and merge layers without inputs are layers to call later", {
  inputs <- layer_input(shape = 2)
  model <- keras_model(inputs, layer_re_lu(inputs, max_value = 6))
  expect_equal(predict(model, matrix(c(-1, 3, 9, 6.5), 2)), matrix(c(0, 3, 6, 6), 2))
  expect_equal(predict(keras_model(inputs, layer_activation_relu(inputs)), matrix(c(-1, 3, 9, 6.5), 2)),
    matrix(c(0, 3, 9, 6.5), 2))
  expect_s3_class(layer_add(), "pydlr_layer")
  expect_s3_class(layer_concatenate(axis = 1), "pydlr_layer")
  expect_s3_class(layer_dense(units = 2), "pydlr_layer")
})

test_that("bad functional graphs give R conditions naming the argument", {
  inputs <- layer_input(shape = c(4, 4, 1))
  a <- inputs |> layer_conv_2d(filters = 2, kernel_size = 3)
  expect_error(keras_model(3, a), class = "pydlr_input_error")
  expect_error(keras_model(inputs, "x"), class = "pydlr_input_error")
  expect_error(layer_add(list(inputs)), class = "pydlr_input_error")
  e <- expect_error(layer_add(list(inputs, a)), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "same shape")
  expect_error(layer_concatenate(list(inputs, a), axis = 0), class = "pydlr_input_error")
  expect_error(layer_re_lu(inputs, negative_slope = 0.1), class = "pydlr_not_supported_error")
  expect_error(layer_input(shape = c(4, 4), sparse = TRUE), class = "pydlr_not_supported_error")
  expect_error(layer_input(), class = "pydlr_input_error")
})
