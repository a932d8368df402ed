test_that("the seed CNN's summary gives keras' shapes and parameter counts from R", {
  model <- rapi_seed_cnn()
  out <- capture.output(df <- summary(model))
  expect_s3_class(df, "data.frame")
  expect_named(df, c("layer", "type", "output_shape", "params", "trainable"))
  expect_equal(df$output_shape, c(
    "(None, 26, 26, 32)", "(None, 13, 13, 32)", "(None, 11, 11, 64)", "(None, 5, 5, 64)", "(None, 3, 3, 64)"
  ))
  expect_equal(df$params, c(320, 0, 18496, 0, 36928))
  expect_equal(df$type, c("Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D"))
  expect_equal(count_params(model), 55744)
  text <- paste(out, collapse = "\n")
  expect_match(text, "Total params: 55,744", fixed = TRUE)
  expect_match(text, "(None, 26, 26, 32)", fixed = TRUE)
})

test_that("with Flatten + Dense(64) + Dense(10) the total is 93,322; padding 'same' keeps 28 x 28", {
  expect_equal(count_params(rapi_seed_cnn(head = TRUE)), 93322)
  capture.output(df <- summary(rapi_seed_cnn(padding = "same")))
  expect_equal(df$output_shape[1], "(None, 28, 28, 32)")
})

test_that("R and Python report the same summary for the same architecture", {
  py <- reticulate::import("pydlr.models", convert = FALSE)
  reference <- reticulate::py_to_r(py$seed_cnn(padding = "valid", head = TRUE)$summary_table())
  capture.output(df <- summary(rapi_seed_cnn(head = TRUE)))
  expect_equal(df$params, vapply(reference, function(r) as.numeric(r$params), numeric(1)))
  expect_equal(df$output_shape, vapply(reference, function(r) r$output_shape, character(1)))
})

test_that("model_sequential() is keras_model_sequential(); layers can be given as a list", {
  expect_identical(model_sequential, keras_model_sequential)
  model <- keras_model_sequential(layers = list(
    layer_flatten(input_shape = c(4, 4)),
    layer_dense(units = 3, activation = "softmax")
  ))
  expect_equal(count_params(model), 16 * 3 + 3)
})

test_that("every layer verb builds the layer keras would, with keras' parameter counts", {
  model <- keras_model_sequential(input_shape = c(16, 16, 3)) |>
    layer_rescaling(scale = 1 / 255) |>
    layer_conv_2d(filters = 8, kernel_size = 3, padding = "same", use_bias = FALSE) |>
    layer_batch_normalization() |>
    layer_activation("relu6") |>
    layer_depthwise_conv_2d(kernel_size = c(3, 3), strides = 2, padding = "same") |>
    layer_average_pooling_2d(pool_size = 2) |>
    layer_dropout(rate = 0.25) |>
    layer_global_average_pooling_2d() |>
    layer_dense(units = 4, activation = "softmax")
  other <- keras_model_sequential(input_shape = c(6, 6, 2)) |> layer_global_max_pooling_2d()
  capture.output(gmp <- summary(other))
  expect_equal(gmp$output_shape, "(None, 2)")
  capture.output(df <- summary(model))
  expect_equal(df$type, c("Rescaling", "Conv2D", "BatchNormalization", "Activation", "DepthwiseConv2D",
    "AveragePooling2D", "Dropout", "GlobalAveragePooling2D", "Dense"))
  expect_equal(df$params, c(0, 3 * 3 * 3 * 8, 4 * 8, 0, 3 * 3 * 8 + 8, 0, 0, 0, 8 * 4 + 4))
  expect_equal(df$output_shape[c(5, 6, 8)], c("(None, 8, 8, 8)", "(None, 4, 4, 8)", "(None, 8)"))
})

test_that("layer_separable_conv_2d has keras' parameter count, shapes and weights", {
  model <- keras_model_sequential(input_shape = c(10, 10, 32)) |>
    layer_separable_conv_2d(filters = 64, kernel_size = 3, padding = "same") |>
    layer_separable_conv_2d(filters = 8, kernel_size = c(3, 3), strides = 2, depth_multiplier = 2,
                            use_bias = FALSE)
  capture.output(df <- summary(model))
  expect_equal(df$type, c("SeparableConv2D", "SeparableConv2D"))
  expect_equal(df$params, c(3 * 3 * 32 + 32 * 64 + 64, 3 * 3 * 64 * 2 + 128 * 8))
  expect_equal(df$output_shape, c("(None, 10, 10, 64)", "(None, 4, 4, 8)"))
  weights <- get_weights(model)
  expect_length(weights, 5)
  expect_equal(lapply(weights[c(1, 2, 4, 5)], dim),
               list(c(3L, 3L, 32L, 1L), c(1L, 1L, 32L, 64L), c(3L, 3L, 64L, 2L), c(1L, 1L, 128L, 8L)))
  expect_length(weights[[3]], 64)
  expect_error(layer_separable_conv_2d(filters = 4, kernel_size = 3, pointwise_regularizer = "l2"),
               class = "pydlr_not_supported_error")
})

test_that("both pipes work: |> and magrittr's %>%", {
  skip_if_not_installed("magrittr")
  a <- keras_model_sequential(input_shape = c(28, 28, 1)) %>% layer_flatten() %>% layer_dense(10)
  b <- keras_model_sequential(input_shape = c(28, 28, 1)) |> layer_flatten() |> layer_dense(10)
  expect_equal(count_params(a), count_params(b))
  expect_equal(count_params(a), 7850)
})

test_that("print shows the summary of a built model and a one-line note for an unbuilt one", {
  expect_output(print(rapi_seed_cnn()), "Total params: 55,744", fixed = TRUE)
  expect_output(print(keras_model_sequential()), "not built yet")
})
