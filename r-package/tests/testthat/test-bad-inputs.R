# Bad inputs for the R entry points whose own test files do not try one (docs/reliability.md): each gives a
# classed pydlr condition naming the argument, what was expected and what came, before any work.

input_error <- function(expr, pattern) {
  e <- expect_error(expr, class = "pydlr_input_error")
  expect_match(conditionMessage(e), pattern)
  expect_no_match(conditionMessage(e), "Traceback")
  invisible(e)
}

test_that("layer verbs refuse bad settings with a pydlr_input_error naming the argument", {
  dense <- keras_model_sequential(input_shape = c(4))
  image <- keras_model_sequential(input_shape = c(8, 8, 1))
  input_error(layer_average_pooling_2d(image, pool_size = 0), "argument `pool_size` must be a whole number >= 1")
  input_error(layer_max_pooling_2d(image, pool_size = c(2, 2, 2)), "`pool_size`.*c\\(2, 2, 2\\)")
  input_error(layer_depthwise_conv_2d(image, kernel_size = 0), "argument `kernel_size`")
  input_error(layer_batch_normalization(dense, momentum = 2), "argument `momentum` must be a number in \\[0, 1\\]")
  input_error(layer_global_max_pooling_2d(image, keepdims = "yes"), "argument `keepdims` must be TRUE or FALSE")
  input_error(layer_rescaling(dense, scale = "x"), "argument `scale` must be a number")
  expect_equal(count_params(image), 0) # nothing was added by the failed calls
})

test_that("keras3 layers and settings outside pydlr's subset give a pydlr_not_supported_error", {
  dense <- keras_model_sequential(input_shape = c(4))
  unsupported <- function(expr, pattern) {
    e <- expect_error(expr, class = "pydlr_not_supported_error")
    expect_match(conditionMessage(e), pattern)
  }
  unsupported(layer_activation_relu(dense, max_value = -1), "max_value = NULL or 6")
  unsupported(layer_conv_2d_transpose(dense, 4, 3), "layer_conv_2d\\(\\)")
  unsupported(layer_embedding(dense, 10, 4), "no embedding layer")
  unsupported(layer_gru(dense, 4), "no recurrent layers")
  unsupported(layer_flatten(dense, data_format = "channels_first"), "channels-last")
  unsupported(layer_global_average_pooling_2d(dense, data_format = "channels_first"), "channels-last")
})

test_that("model builders, optimizers, schedules and callbacks check their arguments", {
  input_error(model_sequential(input_shape = c(-1, 2)), "argument `input_shape` must be a vector of positive")
  input_error(seed_cnn(padding = "full"), "argument `padding` must be one of \"valid\", \"same\"")
  input_error(application_efficientnet_lite1(weights = "imagenet21k"), "argument `weights` must be one of")
  input_error(optimizer_adamw(weight_decay = -1), "argument `weight_decay` must be a number >= 0; received -1")
  input_error(optimizer_rmsprop(rho = 2), "argument `rho` must be a number in \\[0, 1\\]; received 2")
  input_error(learning_rate_schedule_cosine_decay(0.1, decay_steps = 0), "argument `decay_steps`")
  input_error(callback_csv_logger(NA), "argument `filename` must be a single string; received NA")
  input_error(callback_early_stopping(patience = -1), "argument `patience` must be a whole number >= 0")
  input_error(callback_lambda(on_epoch_end = "print"), "argument `on_epoch_end` must be an R function")
  input_error(pydlr_config(warn = "yes"), "argument `warn` must be TRUE or FALSE")
})

test_that("verbs taking a model refuse something else, and data of the wrong shape or with NA", {
  m <- keras_model_sequential(input_shape = c(4)) |> layer_dense(2, activation = "softmax")
  compile(m, loss = "sparse_categorical_crossentropy", optimizer = "adam", metrics = "accuracy")
  input_error(count_params("model"), "argument `object` must be a pydlr model")
  input_error(get_weights("m"), "argument `object` must be a pydlr model")
  input_error(embed_images("m", array(0, c(1, 8, 8, 1))), "argument `model` must be a pydlr model")
  input_error(application_preprocess_inputs("mobilenet", array(0, c(1, 4, 4, 3))), "argument `model`")
  input_error(compile(m, loss = 3), "argument `loss` must be a single string; received 3")
  input_error(fit(m, matrix(runif(8), 2), c(0, 1), epochs = 0), "argument `epochs` must be a whole number >= 1")
  input_error(evaluate(m, matrix(runif(8), 2), c(0, 1, 1)), "argument `y`")
  input_error(evaluate(m, matrix(NA_real_, 2, 4), c(0, 1)), "argument `x` must be free of NA")
  input_error(predict(m, matrix(0, 2, 5)), "argument `x` must be data of shape \\(None, 4\\)")
  input_error(predict(m, matrix(0, 2, 4), type = "raw"), "argument `type` must be one of \"prob\", \"class\"")
  input_error(top_losses(m, matrix(runif(8), 2), c(0, 1), k = 0), "argument `k` must be a whole number >= 1")
  input_error(report("h"), "argument `history` must be a pydlr_history")
  h <- fit(m, matrix(runif(40), 10), rep(0:1, 5), epochs = 1, verbose = 0)
  input_error(as.data.frame(h, format = "tall"), "as.data.frame\\(\\): argument `format` must be one of")
  input_error(plot(h, metrics = "nope"), "argument `metrics` must be names among loss, accuracy")
})

test_that("fit(), evaluate(), predict(), lr_find() and fit_one_cycle() report NA in x in R's words", {
  # For double data the NA is found by Python's finiteness check; R's message comes once Python refuses.
  m <- keras_model_sequential(input_shape = c(4)) |> layer_dense(2, activation = "softmax")
  compile(m, loss = "sparse_categorical_crossentropy", optimizer = "adam", metrics = "accuracy")
  x <- matrix(runif(40), 10)
  x[3, 2] <- NA
  x[7, 1] <- NaN
  y <- rep(0:1, 5)
  na_error <- function(expr, verb) {
    e <- input_error(expr, sprintf("^%s\\(\\): argument `x` must be free of NA/NaN values; received 2 NA values\\.$", verb))
    expect_identical(e$argument, "x")
  }
  na_error(fit(m, x, y, epochs = 1, verbose = 0), "fit")
  na_error(evaluate(m, x, y, verbose = 0), "evaluate")
  na_error(predict(m, x), "predict")
  na_error(predict(m, x, type = "class"), "predict")
  na_error(lr_find(m, x, y, num_it = 5L, batch_size = 2L), "lr_find")
  na_error(fit_one_cycle(m, x, y, verbose = 0), "fit_one_cycle")
  # integer data keep R's check before the bridge; Inf (no NA) gets Python's finiteness message
  xi <- matrix(1:40, 10)
  xi[2, 2] <- NA
  input_error(predict(m, xi), "^predict\\(\\): argument `x` must be free of NA/NaN values; received 1 NA values\\.$")
  x_inf <- matrix(runif(40), 10)
  x_inf[1, 1] <- Inf
  input_error(predict(m, x_inf), "argument `x` must be finite numbers \\(no NaN/NA or Inf\\); received 1 non-finite values\\.")
  # the model was not trained by the refused calls
  expect_equal(nrow(predict(m, matrix(runif(40), 10))), 10)
})

test_that("interpretation verbs name an unknown layer and a value out of range", {
  img <- keras_model_sequential(input_shape = c(8, 8, 1)) |> layer_conv_2d(2, 3, name = "c1") |>
    layer_flatten() |> layer_dense(2, activation = "softmax")
  x <- array(0, c(1, 8, 8, 1))
  input_error(get_activations(img, x, layer = "nope"), "argument `layer` must be a layer name.*c1")
  input_error(plot_activations(img, x, layer = "nope"), "`layer`.*received \"nope\"")
  input_error(plot_filters(img, layer = "nope"), "`layer`")
  input_error(plot_filter_patterns(img, "nope"), "argument `layer` must be a layer name.*received \"nope\"")
  input_error(plot_grad_cam(img, x, alpha = 2), "argument `alpha` must be a number in \\[0, 1\\]")
  input_error(plot_confusion_matrix("cm"), "argument `cm` must be a square table")
})

test_that("data verbs refuse data they cannot convert", {
  input_error(as_arrow_py(function(x) x), "`x` has R type 'closure'")
  input_error(to_torch("abc"), "`x` has R type character")
  input_error(from_py(42), "argument `obj` must be a Python object")
  input_error(example_image("dog"), "argument `name` must be one of \"chelsea\", \"coffee\", \"astronaut\"")
  input_error(mobilenet_v2_preprocess_input(array(0, c(1, 8, 8, 3)), size = 2), "argument `size`")
  input_error(efficientnet_lite_preprocess_input("x"), "argument `x` must be a numeric array")
  input_error(imagenet_decode_predictions(matrix(0, 2, 10)), "scores of shape \\(n, 1000\\)")
  input_error(onnxruntime_predict(tempfile(fileext = ".onnx"), matrix(0, 1, 4)), "an existing .onnx file")
  km <- pydlr_kmeans(matrix(runif(40), 20), 2)
  input_error(fitted(km, method = "labels"), "argument `method` must be one of \"centers\", \"classes\"")
  input_error(predict(km, matrix(0, 2, 3)), "argument `newdata` must be 2 columns")
  expect_equal(fitted(km, method = "cl"), km$cluster) # match.arg's unique prefixes still work
})

test_that("errors other test files match by their message alone are classed pydlr conditions", {
  model <- keras_model_sequential(input_shape = c(28, 28, 1))
  conv <- keras_model_sequential(input_shape = c(8, 8, 1)) |> layer_conv_2d(2, 3) |> layer_flatten() |>
    layer_dense(2, activation = "softmax")
  input_error(application_efficientnet_lite0(classes = 10), "argument `classes` must be 1000 with weights")
  input_error(application_mobilenet_v2(classes = 10), "argument `classes` must be 1000 with weights")
  input_error(callback_learning_rate_scheduler(0.1), "argument `schedule` must be an R function")
  input_error(confusion_matrix(c(0, -1), c(0, 1)), "argument `y_true` must be 0-based whole-number")
  input_error(grad_cam(conv, array(0, c(1, 8, 8, 1)), class_index = -1), "`class_index`")
  input_error(layer_activation(model, "swish"), "argument `activation` must be one of")
  input_error(layer_conv_2d(model, filters = 8, kernel_size = c(3, 3, 3)), "argument `kernel_size`")
  input_error(layer_conv_2d(model, filters = 8, kernel_size = 3, padding = "full"), "argument `padding`")
  input_error(layer_dense("not a model", units = 3), "argument `object` must be a pydlr model")
  input_error(layer_dropout(model, rate = 1.5), "argument `rate` must be a number in \\[0, 1\\]")
  input_error(load_model(file.path(tempdir(), "no-such-model")), "argument `filepath` must be the path")
  input_error(pretrained_info("resnet_9000"), "argument `name` must be one of")
  input_error(set_random_seed(-1), "argument `seed` must be a whole number >= 0")
  input_error(to_categorical(c(0, 1.5)), "argument `x` must be whole-number class labels")
  input_error(to_categorical(c(0, 5), num_classes = 3), "labels below num_classes \\(3\\)")
  for (expr in list(quote(layer_dense(model, 4, kernel_regularizer = "l2")), quote(layer_lstm(model, 4)),
    quote(optimizer_adam(weight_decay = 0.01)))) {
    expect_error(eval(expr), class = "pydlr_not_supported_error")
  }
})

test_that("metrics, preprocessing layers and a model's fields refuse bad settings", {
  m <- keras_model_sequential(input_shape = c(8, 8, 1)) |> layer_conv_2d(2, 3, name = "c1") |>
    layer_flatten() |> layer_dense(2, activation = "softmax")
  input_error(metric_accuracy(name = 3), "argument `name` must be a single string; received 3")
  input_error(metric_binary_accuracy(threshold = "x"), "argument `threshold` must be a number")
  input_error(metric_categorical_accuracy(name = ""), "argument `name` must be a single string")
  input_error(metric_f1_score(threshold = 2), "argument `threshold` must be a number in \\[0, 1\\]")
  input_error(metric_mean_absolute_error(name = 3), "argument `name`")
  input_error(metric_mean_squared_error(name = 3), "argument `name`")
  input_error(metric_recall(thresholds = 2), "argument `thresholds` must be a number in \\[0, 1\\]")
  input_error(metric_sparse_categorical_accuracy(name = 3), "argument `name`")
  input_error(metric_sparse_top_k_categorical_accuracy(k = 0), "argument `k` must be a whole number >= 1")
  input_error(metric_top_k_categorical_accuracy(k = 0), "argument `k` must be a whole number >= 1")
  input_error(layer_center_crop(m, height = 0, width = 3), "argument `height` must be a whole number >= 1")
  input_error(layer_random_contrast(m, factor = -1), "argument `factor` must be a number >= 0")
  input_error(layer_random_translation(m, height_factor = 2, width_factor = 0.1), "`height_factor`.*\\[0, 1\\)")
  input_error(unfreeze_weights(m, from = "nope"), "argument `from` must be the name of one of the model's layers")
  input_error(unfreeze_weights("m"), "argument `object` must be a pydlr model")
  input_error(m$trainable <- "yes", "argument `trainable` must be TRUE or FALSE")
  input_error(m$foo <- 1, "argument `foo` must be `trainable`")
  h <- get_layer(m, "c1")
  input_error(h$trainable <- "yes", "argument `trainable` must be TRUE or FALSE")
  expect_equal(count_params(m), 3 * 3 * 2 + 2 + 72 * 2 + 2) # nothing changed
})
