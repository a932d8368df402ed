# The seed's worked example, exactly, from R: the Keras CNN, its summary, "same" padding, and training by
# mini-batches with steps_per_epoch x batch_size images per epoch (100 x 20 = 2000) while CPU workers
# augment the next batches on the fly. Run: Rscript examples/seed_example.R (after scripts/setup.sh).

suppressPackageStartupMessages(library(pydlr))

model <- model_sequential(input_shape = c(28, 28, 1)) |>
  layer_conv_2d(filters = 32, kernel_size = c(3, 3), activation = "relu") |>
  layer_max_pooling_2d(pool_size = c(2, 2)) |>
  layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") |>
  layer_max_pooling_2d(pool_size = c(2, 2)) |>
  layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu")
rows <- summary(model) # (26,26,32) 320 . (13,13,32) 0 . (11,11,64) 18,496 . (5,5,64) 0 . (3,3,64) 36,928
stopifnot(sum(rows$params) == 55744)

same <- model_sequential(input_shape = c(28, 28, 1)) |>
  layer_conv_2d(filters = 32, kernel_size = c(3, 3), activation = "relu", padding = "same")
cat("\nWith padding = \"same\" the first layer keeps 28x28:", summary(same)$output_shape[1], "\n\n")

model <- model |>
  layer_flatten() |>
  layer_dense(units = 64, activation = "relu") |>
  layer_dense(units = 10, activation = "softmax")
model |> compile(optimizer = "rmsprop", loss = "sparse_categorical_crossentropy", metrics = "accuracy")

fashion <- dataset_fashion_mnist()
x <- fashion$train$x[1:2000, , ] / 255
y <- fashion$train$y[1:2000]
cat("An epoch = steps_per_epoch x batch_size = 100 x 20 = 2000 images, one update per batch;\n")
cat("2 CPU workers augment the next batches (flips, shifts, zoom) while the model trains.\n")
history <- model |> fit(x, y, epochs = 3, batch_size = 20, steps_per_epoch = 100, seed = 1,
  augment = augmentation(flip = "horizontal", shift = 0.1, zoom = 0.1), workers = 2,
  validation_data = list(fashion$test$x[1:1000, , ] / 255, fashion$test$y[1:1000]))
print(as.data.frame(history), digits = 3, row.names = FALSE)
