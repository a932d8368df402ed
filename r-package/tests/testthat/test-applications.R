# EfficientNet-Lite (real ImageNet weights, offline) and ONNX export from R: top-1 on scikit-image's photos,
# keras3's argument rules as R conditions, and onnxruntime's outputs against predict().

app_cache <- withr::local_tempdir(.local_envir = globalenv())
pydlr:::.pydlr_py()
app_environ <- reticulate::import("os", convert = FALSE)$environ
app_old_cache <- reticulate::py_to_r(app_environ$get("PYDLR_CACHE"))
reticulate::py_set_item(app_environ, "PYDLR_CACHE", app_cache)

app_photos <- function(model) {
  cat <- application_preprocess_inputs(model, example_image("chelsea"))
  coffee <- application_preprocess_inputs(model, example_image("coffee"))
  both <- array(0, c(2L, dim(cat)[-1]))
  both[1, , , ] <- cat[1, , , ]
  both[2, , , ] <- coffee[1, , , ]
  both
}

test_that("application_efficientnet_lite0/1/2() name the cat and the espresso", {
  sizes <- c(224L, 240L, 260L)
  ctors <- list(application_efficientnet_lite0, application_efficientnet_lite1, application_efficientnet_lite2)
  for (i in 1:3) {
    model <- ctors[[i]]()
    x <- app_photos(model)
    expect_equal(dim(x), c(2L, sizes[i], sizes[i], 3L))
    top <- imagenet_decode_predictions(predict(model, x), top = 1)
    expect_true(top[[1]]$class_index %in% c(281L, 282L, 285L), info = sprintf("lite%d", i - 1))
    expect_true(top[[2]]$class_index %in% c(967L, 968L), info = sprintf("lite%d", i - 1))
  }
  expect_equal(pretrained_info("efficientnet_lite1")$params, 5416680L)
  scaled <- efficientnet_lite_preprocess_input(example_image("coffee"), size = 240)
  expect_equal(scaled, app_photos(application_efficientnet_lite1(include_top = FALSE))[2, , , , drop = FALSE],
    tolerance = 1e-6)
})

test_that("application_*() refuse keras3's invalid combinations as R conditions", {
  expect_error(application_efficientnet_lite0(classes = 10), class = "pydlr_input_error")
  expect_error(application_efficientnet_lite0(classes = 10), "include_top = FALSE and fine_tune()", fixed = TRUE)
  expect_error(application_efficientnet_lite2(weights = "imagenet21k"), class = "pydlr_input_error")
  random <- application_efficientnet_lite0(weights = NULL, classes = 3, input_shape = c(32, 32, 3))
  expect_equal(dim(predict(random, array(0.1, c(2L, 32L, 32L, 3L)))), c(2L, 3L))
  expect_error(predict(random, array(0.1, c(2L, 32L, 32L, 1L))), class = "pydlr_input_error")
  features <- application_efficientnet_lite0(include_top = FALSE, pooling = "avg")
  expect_equal(dim(predict(features, app_photos(features))), c(2L, 1280L))
})

test_that("export_onnx() writes files onnxruntime runs like predict()", {
  model <- application_efficientnet_lite0()
  x <- app_photos(model)
  path <- withr::local_tempfile(fileext = ".onnx")
  expect_equal(export_onnx(model, path), path)
  expect_lt(max(abs(onnxruntime_predict(path, x) - predict(model, x))), 1e-4)
  seed <- keras_model_sequential(input_shape = c(28, 28, 1)) |>
    layer_conv_2d(filters = 32, kernel_size = c(3, 3), activation = "relu") |>
    layer_max_pooling_2d(pool_size = c(2, 2)) |>
    layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") |>
    layer_max_pooling_2d(pool_size = c(2, 2)) |>
    layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") |>
    layer_flatten() |> layer_dense(10, activation = "softmax")
  digits <- array(runif(3 * 28 * 28), c(3L, 28L, 28L, 1L))
  seed_path <- withr::local_tempfile(fileext = ".onnx")
  export_onnx(seed, seed_path)
  expect_lt(max(abs(onnxruntime_predict(seed_path, digits) - predict(seed, digits))), 1e-4)
  expect_error(export_onnx(model, file.path(tempdir(), "no", "such", "dir.onnx")), class = "pydlr_input_error")
  expect_error(export_onnx("model", path), class = "pydlr_input_error")
  # Images without their channel axis reached onnxruntime, whose InvalidArgument came through raw.
  expect_error(onnxruntime_predict(seed_path, digits[, , , 1]),
    "onnxruntime_predict\\(\\): argument `x` must be an array of shape \\(N, 28, 28, 1\\), as the exported model takes; received a double array of dim c\\(3, 28, 28\\)",
    class = "pydlr_input_error")
})

test_that("fine_tune() takes load_image_folder()-shaped data and replaces an EfficientNet's top", {
  lfw <- dataset_lfw_subset()
  keep <- c(1:16, 101:116)
  x <- efficientnet_lite_preprocess_input(lfw$x[keep, , ], size = 32)
  data <- list(x = x, y = lfw$y[keep], class_names = c("face", "other"))
  net <- application_efficientnet_lite0(input_shape = c(32, 32, 3))
  model <- fine_tune(net, data, epochs = 1, freeze_epochs = 1, batch_size = 8)
  expect_equal(attr(model, "fine_tune_history")$phase, c("frozen", "unfrozen"))
  pred <- predict(model, x, type = "class")
  expect_identical(levels(pred), c("face", "other"))
  expect_equal(dim(predict(model, x)), c(32L, 2L))
})

test_that("fine_tune() takes an image dataset from a folder: labels, batches and class names come with it", {
  skip_if_not_installed("png")
  root <- withr::local_tempdir()
  lfw <- dataset_lfw_subset()
  for (cls in c("face", "other")) {
    dir.create(file.path(root, cls))
    for (i in if (cls == "face") 1:8 else 101:108) png::writePNG(lfw$x[i, , ], file.path(root, cls, sprintf("%d.png", i)))
  }
  ds <- image_dataset_from_directory(root, image_size = c(32, 32), batch_size = 8, seed = 1, color_mode = "rgb")
  model <- fine_tune(application_mobilenet_v2(input_shape = c(32, 32, 3)), ds, epochs = 1, freeze_epochs = 1)
  expect_equal(attr(model, "fine_tune_history")$phase, c("frozen", "unfrozen"))
  expect_identical(levels(predict(model, array(0, c(2L, 32L, 32L, 3L)), type = "class")), c("face", "other"))
  expect_error(fine_tune(application_mobilenet_v2(input_shape = c(32, 32, 3)), ds, y = 1:16), class = "pydlr_input_error")
})

test_that("pretrained_model() gives pydlr's own trained seed CNNs with their recorded accuracy", {
  mnist <- dataset_mnist()
  model <- pretrained_model("seed_cnn_mnist")
  info <- pretrained_info("seed_cnn_mnist")
  expect_equal(info$params, 93322L)
  expect_equal(count_params(model), 93322)
  expect_lt(info$disk_mb, 0.4)
  probs <- predict(model, mnist$test$x / 255)
  expect_equal(mean(max.col(probs) - 1L == mnist$test$y), info$test_accuracy, tolerance = 1e-4)
  expect_gt(info$test_accuracy, 0.9)
  expect_gt(pretrained_info("seed_cnn_fashion_mnist")$test_accuracy, 0.88)
  expect_error(pretrained_model("seed_cnn_cifar"), class = "pydlr_input_error")
})

# Restore the cache setting for later test files.
if (is.null(app_old_cache)) app_environ$pop("PYDLR_CACHE") else reticulate::py_set_item(app_environ, "PYDLR_CACHE", app_old_cache)
