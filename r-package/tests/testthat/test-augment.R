test_that("augmentation() validates its settings before any work", {
  expect_error(augmentation(flip = "diagonal"), class = "pydlr_input_error")
  expect_error(augmentation(rotation = -0.1), "rotation", class = "pydlr_input_error")
  expect_error(augmentation(zoom = 1), "zoom", class = "pydlr_input_error")
  aug <- augmentation(flip = "horizontal", zoom = 0.1, shift = c(0.1, 0.05))
  expect_s3_class(aug, "pydlr_augmentation")
  expect_equal(unlist(aug$shift), c(0.1, 0.05))
  expect_output(print(aug), "flip = horizontal")
})

test_that("fit() augments on the fly in worker processes, as the seed's steps_per_epoch x batch_size", {
  set.seed(1)
  n <- 200L
  y <- rep(0:1, length.out = n)
  x <- array(runif(n * 12 * 12, 0, 0.2), dim = c(n, 12, 12, 1))
  x[y == 1, 3:10, 3:10, 1] <- x[y == 1, 3:10, 3:10, 1] + 0.8 # class 1: a bright square
  model <- model_sequential(input_shape = c(12, 12, 1)) |>
    layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
    layer_global_average_pooling_2d() |>
    layer_dense(units = 2, activation = "softmax")
  model |> compile(optimizer = optimizer_adam(learning_rate = 0.05),
    loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  history <- model |> fit(x, y, epochs = 3, batch_size = 20, steps_per_epoch = 10, seed = 3,
    verbose = 0, augment = augmentation(flip = "horizontal", shift = 0.05), workers = 1)
  df <- as.data.frame(history)
  expect_equal(nrow(df), 3L)
  expect_equal(history$params$steps, 10L)
  expect_gt(evaluate(model, x, y)$accuracy, 0.8)
  expect_error(fit(model, x, y, augment = list(flip = "horizontal")), "augment",
    class = "pydlr_input_error")
  expect_error(fit(model, matrix(0, 4, 4), y[1:4], augment = augmentation(zoom = 0.1)), "augment",
    class = "pydlr_input_error")
})
