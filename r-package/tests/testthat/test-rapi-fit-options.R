# fit()'s arguments beyond keras3's basics, the architectures of the core, and augment_beforehand().

opt_model <- function(lr = 1e-10, loss = "sparse_categorical_crossentropy", units = 3L, activation = "softmax") {
  set_random_seed(4L)
  m <- keras_model_sequential(input_shape = 4) |> layer_dense(units = units, activation = activation)
  m |> compile(optimizer = optimizer_sgd(learning_rate = lr), loss = loss)
  m
}
opt_data <- local({
  set.seed(6)
  x <- matrix(rnorm(200), 50)
  list(x = x, y = (x[, 1] > 0) + (x[, 2] > 0))
})

test_that("sample_weight multiplies each sample's loss", {
  one <- fit(opt_model(), opt_data$x, opt_data$y, epochs = 1L, seed = 1L, verbose = 0L, sample_weight = rep(1, 50))
  two <- fit(opt_model(), opt_data$x, opt_data$y, epochs = 1L, seed = 1L, verbose = 0L, sample_weight = rep(2, 50))
  expect_equal(two$metrics$loss, 2 * one$metrics$loss, tolerance = 1e-5)
  none <- fit(opt_model(), opt_data$x, opt_data$y, epochs = 1L, seed = 1L, verbose = 0L,
    sample_weight = rep(0, 50))
  expect_equal(none$metrics$loss, 0)
  expect_error(fit(opt_model(), opt_data$x, opt_data$y, sample_weight = rep(1, 3)), class = "pydlr_input_error")
  expect_error(fit(opt_model(), opt_data$x, opt_data$y, sample_weight = c(NA, rep(1, 49))),
               "received 1 NA", class = "pydlr_input_error")
  expect_error(fit(opt_model(), opt_data$x, opt_data$y, sample_weight = c(1, -2, rep(1, 48))),
               "received 1 negative weight\\(s\\), the first -2", class = "pydlr_input_error")
})

test_that("validation_batch_size does not change validation results; bad values are refused", {
  v <- function(size) {
    fit(opt_model(), opt_data$x, opt_data$y, epochs = 1L, seed = 1L, verbose = 0L, validation_split = 0.4,
      validation_batch_size = size)$metrics$val_loss
  }
  expect_equal(v(3L), v(20L), tolerance = 1e-6)
  expect_error(v(0L), class = "pydlr_input_error")
})

test_that("precision: bfloat16 trains on the CPU, float16 there and unknown names are R conditions", {
  m32 <- opt_model(lr = 0.1)
  h32 <- fit(m32, opt_data$x, opt_data$y, epochs = 2L, seed = 1L, verbose = 0L, precision = "float32")
  m16 <- opt_model(lr = 0.1)
  h16 <- fit(m16, opt_data$x, opt_data$y, epochs = 2L, seed = 1L, verbose = 0L, precision = "bfloat16")
  expect_true(all(is.finite(h16$metrics$loss)))
  # A Dense product this small (50 x 4 x 3) runs float32 under CPU bf16 autocast, where bf16's GEMM is slower:
  # the same losses as float32, bit for bit
  expect_identical(h16$metrics$loss, h32$metrics$loss)
  e <- expect_error(fit(opt_model(), opt_data$x, opt_data$y, precision = "float16", device = "cpu"),
    class = "pydlr_input_error")
  expect_identical(e$argument, "precision")
  expect_error(fit(opt_model(), opt_data$x, opt_data$y, precision = "int8"), class = "pydlr_input_error")
})

test_that("nan_check stops a diverging fit with a pydlr_training_error; nan_check = FALSE lets it run", {
  diverging <- function() opt_model(lr = 1e30, loss = "mse", units = 1L, activation = NULL)
  expect_error(fit(diverging(), opt_data$x * 1e10, opt_data$y, epochs = 2L, verbose = 0L),
    class = "pydlr_training_error")
  h <- fit(diverging(), opt_data$x * 1e10, opt_data$y, epochs = 2L, verbose = 0L, nan_check = FALSE)
  expect_false(all(is.finite(h$metrics$loss)))
})

test_that("a device that does not exist is a pydlr_input_error naming `device`", {
  for (device in c("cuda:7", "tpu", "cuda:1x")) {
    e <- expect_error(fit(opt_model(), opt_data$x, opt_data$y, epochs = 1L, verbose = 0L, device = device),
      class = "pydlr_input_error")
    expect_identical(e$argument, "device")
  }
})

test_that("augment_beforehand() returns the originals and augmented copies with the labels alongside", {
  x <- array(stats::runif(5 * 6 * 6), c(5, 6, 6, 1))
  y <- factor(c("a", "b", "a", "c", "b"))
  out <- augment_beforehand(x, y, augmentation(flip = "horizontal"), copies = 2L, seed = 1L)
  expect_identical(dim(out$x), c(15L, 6L, 6L, 1L))
  expect_equal(out$x[1:5, , , , drop = FALSE], x, tolerance = 1e-7)
  expect_identical(out$y, factor(rep(as.character(y), 3), levels = levels(y)))
  mirrored <- x[, , 6:1, , drop = FALSE]
  for (i in 6:15) {
    j <- (i - 1L) %% 5L + 1L
    same <- isTRUE(all.equal(out$x[i, , , 1], x[j, , , 1], tolerance = 1e-6))
    flipped <- isTRUE(all.equal(out$x[i, , , 1], mirrored[j, , , 1], tolerance = 1e-6))
    expect_true(same || flipped)
  }
  expect_null(augment_beforehand(x, NULL, augmentation(flip = "horizontal"))$y)
  expect_error(augment_beforehand(x, y, NULL), class = "pydlr_input_error")
  expect_error(augment_beforehand(matrix(1, 2, 2), NULL, augmentation()), class = "pydlr_input_error")
})

test_that("the core's architectures: ResNet-18 (torchvision's layout) and the seed CNN", {
  r18 <- application_resnet18(input_shape = c(32, 32, 3), classes = 5L)
  # torchvision's 11,689,512 with a 5-class head, plus BatchNormalization's moving statistics (keras counts them)
  expect_identical(count_params(r18), 11689512 - 513 * 1000 + 513 * 5 + 2 * 4800)
  p <- predict(r18, array(stats::runif(2 * 32 * 32 * 3), c(2, 32, 32, 3)))
  expect_identical(dim(p), c(2L, 5L))
  expect_equal(rowSums(p), c(1, 1), tolerance = 1e-5)
  expect_error(application_resnet18(weights = "imagenet"), class = "pydlr_not_supported_error")
  expect_error(application_resnet18(input_shape = c(32, 32, 1)), class = "pydlr_input_error")
  cnn <- seed_cnn()
  expect_identical(count_params(cnn), 93322)
  expect_equal(rowSums(predict(cnn, array(0.5, c(3, 28, 28, 1)))), rep(1, 3), tolerance = 1e-5)
  expect_identical(count_params(seed_cnn(head = FALSE)), 55744)
})

test_that("paths with ~ name the home folder, as in R, for checkpoints, logs, resume and image folders", {
  home <- path.expand("~")
  skip_if(home == "~" || !dir.exists(home) || file.access(home, 2) != 0, "no writable home folder")
  tag <- basename(tempfile("pydlr-tilde-"))
  on.exit(unlink(file.path(home, paste0(tag, c(".pydlr", ".csv", "-resume.pydlr", "-images")))[1:4],
                 recursive = TRUE), add = TRUE)
  work <- tempfile("cwd-")
  dir.create(work)
  old <- setwd(work)
  on.exit(setwd(old), add = TRUE)
  d <- rapi_mnist(40, 10)
  model <- rapi_tiny_cnn()
  model |> fit(d$x_train, d$y_train, epochs = 1, verbose = 0, resume = sprintf("~/%s-resume.pydlr", tag),
               callbacks = list(callback_model_checkpoint(sprintf("~/%s.pydlr", tag), monitor = "loss"),
                                callback_csv_logger(sprintf("~/%s.csv", tag))))
  expect_true(all(file.exists(file.path(home, paste0(tag, c(".pydlr", ".csv", "-resume.pydlr"))))))
  expect_false(file.exists(file.path(work, "~"))) # no folder literally named "~" in the working directory
  images <- file.path(home, paste0(tag, "-images"))
  for (k in 0:1) {
    dir.create(file.path(images, k), recursive = TRUE)
    png::writePNG(matrix(as.numeric(k), 4, 4), file.path(images, k, "a.png"))
  }
  ds <- image_dataset_from_directory(sprintf("~/%s-images", tag), image_size = c(4, 4), color_mode = "grayscale",
                                     verbose = FALSE)
  expect_identical(ds$class_names, c("0", "1"))
  files <- data.frame(filename = sprintf("~/%s-images/%d/a.png", tag, 0:1), class = c("a", "b"))
  expect_identical(length(image_dataset_from_dataframe(files, image_size = c(4, 4), verbose = FALSE)$labels), 2L)
})

test_that("class_weight names outside the classes are refused: 1-based names would shift every weight", {
  d <- rapi_mnist(40, 10)
  model <- rapi_tiny_cnn()
  before <- get_weights(model)
  e <- expect_error(model |> fit(d$x_train, d$y_train, epochs = 1, verbose = 0,
                                 class_weight = setNames(as.list(1:10), 1:10)), class = "pydlr_input_error")
  expect_match(conditionMessage(e), paste0("argument `class_weight` must be weights named by the 0-based class ",
    "labels 0 to 9 (for 1-based names, subtract 1); received names 10."), fixed = TRUE)
  expect_identical(get_weights(model), before)
  y <- factor(c("cat", "dog")[d$y_train %% 2 + 1])
  two <- keras_model_sequential(input_shape = c(28, 28, 1)) |> layer_flatten() |>
    layer_dense(units = 2, activation = "softmax")
  two |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy")
  expect_error(two |> fit(d$x_train, y, epochs = 1, verbose = 0, class_weight = c("1" = 1, "2" = 3)),
               "labels 0 to 1", class = "pydlr_input_error")
  expect_silent(two |> fit(d$x_train, y, epochs = 1, verbose = 0, class_weight = c(cat = 1, dog = 3)))
})
