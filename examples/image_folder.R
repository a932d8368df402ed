# Your own images: train the seed CNN from a folder of PNG files, with keras3's names.
#
#   python scripts/make_image_folder.py /tmp/fashion-png --limit 6000   # once: PNGs in class folders
#   Rscript examples/image_folder.R [/tmp/fashion-png]
#
# The folder is streamed: worker processes decode, resize and augment the next batches while the model trains.
library(pydlr)

args <- commandArgs(trailingOnly = TRUE)
folder <- if (length(args)) args[[1]] else "/tmp/fashion-png"
c(train_ds, val_ds) %<-% image_dataset_from_directory(folder, validation_split = 0.2, subset = "both", seed = 1,
                                                      image_size = c(28, 28), color_mode = "grayscale",
                                                      batch_size = 20)
train_ds
length(train_ds)

model <- keras_model_sequential(input_shape = c(28, 28, 1)) |>
  layer_rescaling(1 / 255) |>
  layer_conv_2d(filters = 32, kernel_size = c(3, 3), activation = "relu") |>
  layer_max_pooling_2d(pool_size = c(2, 2)) |>
  layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") |>
  layer_max_pooling_2d(pool_size = c(2, 2)) |>
  layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") |>
  layer_flatten() |>
  layer_dense(units = 64, activation = "relu") |>
  layer_dense(units = 10, activation = "softmax")
model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
history <- model |> fit(train_ds, epochs = 3, steps_per_epoch = 100, validation_data = val_ds,
                        validation_steps = 20, augment = augmentation(flip = "horizontal", zoom = 0.1), seed = 1)
as.data.frame(history)
evaluate(model, val_ds)
# predict()'s rows follow val_ds$file_paths, whose 0-based classes are val_ds$labels
table(predicted = predict(model, val_ds, type = "class"), actual = val_ds$class_names[val_ds$labels + 1])

# one photo of your own: image_load() decodes it as the dataset does; add the batch axis, then predict
img <- image_load(val_ds$file_paths[1], color_mode = "grayscale", target_size = c(28, 28))
x <- image_to_array(img)
predict(model, array(x, c(1, dim(x))), type = "class")
