# pydlr's main job (README command 1, run by scripts/main.sh), from R only:
#   1. Fashion-MNIST (Debian's dataset-fashion-mnist) as R arrays,
#   2. the seed CNN built with Keras-style verbs, its summary,
#   3. a short CPU training run (default: 2 epochs on all 60,000 training images), its history as a
#      data.frame and the test accuracy,
#   4. k-means on the same 10,000 test images (pydlr_kmeans(): pydlr's torch k-means),
#   5. a two-row comparison (CNN vs k-means: accuracy after matching labels to classes, adjusted Rand
#      index, seconds), and a PNG of the training curves in out/,
#   6. "Deep learning or not?": compare_methods() puts k-means (pixels, CNN embedding), logistic regression
#      on the CNN embedding and a random forest on pixels (2 s budget each, 5,000 training images) beside
#      the CNN trained above, with a one-line verdict (about 6 s of CPU time; --compare=0 skips it).
#
# Options: --epochs=N (2), --n-train=N (60000; a subset keeps a slow machine's run short), --out=DIR (out),
#          --seed=N (1), --compare=0/1 (1).
# On an idle 2-core machine the run takes about a minute; on a shared one it takes longer.

suppressPackageStartupMessages(library(pydlr))

option <- function(name, default) {
  args <- commandArgs(trailingOnly = TRUE)
  hit <- grep(sprintf("^--%s=", name), args, value = TRUE)
  if (length(hit) == 0L) return(default)
  value <- sub(sprintf("^--%s=", name), "", hit[length(hit)])
  if (is.numeric(default)) as.numeric(value) else value
}
epochs <- option("epochs", 2)
n_train <- option("n-train", 60000)
out_dir <- option("out", "out")
seed <- option("seed", 1)
run_compare <- option("compare", 1) != 0

started <- Sys.time()
elapsed <- function(since) as.numeric(difftime(Sys.time(), since, units = "secs"))
section <- function(title) cat(sprintf("\n== %s\n", title))

# ---- 1. data -----------------------------------------------------------------------------------
section("Fashion-MNIST as R arrays (Debian's dataset-fashion-mnist, no download)")
fashion <- dataset_fashion_mnist()
n_train <- min(n_train, dim(fashion$train$x)[1])
x_train <- fashion$train$x[seq_len(n_train), , , drop = FALSE] / 255
y_train <- fashion$train$y[seq_len(n_train)]
x_test <- fashion$test$x / 255
y_test <- fashion$test$y
cat(sprintf("train: %s array of dim %s; test: %s; labels 0-9\n", typeof(x_train),
  paste(dim(x_train), collapse = " x "), paste(dim(x_test), collapse = " x ")))

# ---- 2. the seed CNN ----------------------------------------------------------------------------
section("The seed CNN, built with Keras-style verbs, then a Dense(64) + Dense(10) head")
set_random_seed(seed) # reproducible initial weights; fit(seed = ) fixes shuffling
model <- model_sequential(input_shape = c(28, 28, 1)) |>
  layer_conv_2d(filters = 32, kernel_size = c(3, 3), activation = "relu") |>
  layer_max_pooling_2d(pool_size = c(2, 2)) |>
  layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") |>
  layer_max_pooling_2d(pool_size = c(2, 2)) |>
  layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu")
cat("The convolutional base, as in the Keras example (total 55,744):\n")
summary(model)
model <- model |>
  layer_flatten() |>
  layer_dense(units = 64, activation = "relu") |>
  layer_dense(units = 10, activation = "softmax")
cat("\nWith the classifier head (total 93,322):\n")
summary(model)

# ---- 3. training on the CPU ---------------------------------------------------------------------
section(sprintf("Training on the CPU: %d epochs on %d images, batch 64, Adam, seed %d",
  as.integer(epochs), as.integer(n_train), as.integer(seed)))
model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
t_cnn <- Sys.time()
history <- model |> fit(x_train, y_train, epochs = epochs, batch_size = 64,
  validation_data = list(x_test, y_test), seed = seed, device = "cpu")
predicted <- predict(model, x_test, type = "class")
cnn_seconds <- elapsed(t_cnn)
section("History")
print(as.data.frame(history), digits = 4, row.names = FALSE)
score <- evaluate(model, x_test, y_test)
cat(sprintf("\nTest accuracy of the CNN: %.4f (loss %.4f)\n", score$accuracy, score$loss))

# ---- 4. k-means on the same test images -------------------------------------------------------------
section("k-means on the 10,000 test images (784 pixels each, k = 10): pydlr_kmeans(), torch, k-means++")
km <- pydlr_kmeans(x_test, centers = 10, seed = seed, device = "cpu")
cat(sprintf("%d clusters of sizes %s; %d iterations; %.1f s\n", length(km$size),
  paste(km$size, collapse = ", "), km$iter, km$seconds))

# ---- 5. comparison --------------------------------------------------------------------------------
# Accuracy after matching: each cluster (or predicted class) is matched one-to-one to a class so that
# the agreement is largest (Hungarian matching); for the CNN this is its plain accuracy in practice.
section("CNN vs k-means on the same test images")
comparison <- compare_models(
  CNN = list(labels = predicted, seconds = cnn_seconds),
  `k-means` = km,
  y = y_test
)
print(comparison, digits = 4, row.names = FALSE)
cat(sprintf(paste0("(CNN: %d epochs on %d images; seconds = training + predicting the test set. ",
  "k-means: seconds = clustering the test set.)\n"), as.integer(epochs), as.integer(n_train)))

# ---- 6. deep learning or not? ---------------------------------------------------------------------------
if (run_compare) {
  section("Deep learning or not? compare_methods() beside the CNN trained above (test images)")
  n_cmp <- min(5000L, as.integer(n_train))
  methods <- compare_methods(x_train[seq_len(n_cmp), , , drop = FALSE], y_train[seq_len(n_cmp)], x_test, y_test,
    model = model, epochs = 0, time_budget = 2, n_estimators = 50, seed = seed,
    methods = c("kmeans_pixels", "kmeans_embedding", "logistic_embedding", "forest_pixels", "cnn"))
  print(methods)
  cat(sprintf("(classic methods and k-means fitted on %d training images; the CNN as trained in section 3)\n",
    n_cmp))
}

# ---- the training curve ---------------------------------------------------------------------------
png_file <- file.path(out_dir, "training_curve.png")
plot(history, file = png_file)
cat(sprintf("\nWrote %s\nTotal time %.1f s\n", png_file, elapsed(started)))
