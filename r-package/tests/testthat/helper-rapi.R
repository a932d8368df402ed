# Shared by the R-API tests: the seed CNN (the seed's 55,744-parameter network) and a small MNIST subset.

rapi_seed_cnn <- function(padding = "valid", head = FALSE, input_shape = c(28, 28, 1)) {
  model <- keras_model_sequential(input_shape = input_shape) |>
    layer_conv_2d(filters = 32, kernel_size = c(3, 3), activation = "relu", padding = padding) |>
    layer_max_pooling_2d(pool_size = c(2, 2)) |>
    layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") |>
    layer_max_pooling_2d(pool_size = c(2, 2)) |>
    layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu")
  if (head) {
    model |>
      layer_flatten() |>
      layer_dense(units = 64, activation = "relu") |>
      layer_dense(units = 10, activation = "softmax")
  }
  model
}

# The 5,000-digit offline MNIST, loaded once per test run; pixels scaled to [0, 1].
rapi_mnist <- local({
  cache <- NULL
  function(n_train = 1000L, n_test = 500L) {
    if (is.null(cache)) cache <<- dataset_mnist()
    list(
      x_train = cache$train$x[seq_len(n_train), , , drop = FALSE] / 255,
      y_train = cache$train$y[seq_len(n_train)],
      x_test = cache$test$x[seq_len(n_test), , , drop = FALSE] / 255,
      y_test = cache$test$y[seq_len(n_test)]
    )
  }
})

rapi_flat_weights <- function(model) unlist(lapply(get_weights(model), as.vector), use.names = FALSE)

# A small CNN for tests of mechanics (fast on 2 shared cores); the seed CNN is kept for the numbers.
rapi_tiny_cnn <- function(loss = "sparse_categorical_crossentropy", optimizer = "adam") {
  model <- keras_model_sequential(input_shape = c(28, 28, 1)) |>
    layer_conv_2d(filters = 4, kernel_size = 3, strides = 2, activation = "relu") |>
    layer_max_pooling_2d(pool_size = 2) |>
    layer_flatten() |>
    layer_dense(units = 10, activation = "softmax")
  model |> compile(optimizer = optimizer, loss = loss, metrics = "accuracy")
  model
}
