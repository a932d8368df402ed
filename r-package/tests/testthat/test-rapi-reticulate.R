# pydlr's R objects and reticulate: conversions both ways, Python exceptions as R conditions, handles from
# an earlier session, and what R returns where R and Python name the same thing.

tiny_dense <- function() {
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(3, activation = "softmax")
  model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  model
}

four_points <- function(n = 30) {
  set.seed(1)
  y <- rep(0:2, length.out = n)
  x <- matrix(rnorm(n * 4, sd = 0.1), n) + outer(y, 1:4) # classes apart
  list(x = x, y = y)
}

test_that("r_to_py() hands Python code the model itself, and Python's model is R's model", {
  model <- tiny_dense()
  py_model <- reticulate::r_to_py(model)
  expect_true(inherits(py_model, "pydlr.models.base.BaseModel"))
  main <- reticulate::py_run_string("def n_params(m):\n    return m.count_params()", convert = TRUE)
  expect_equal(main$n_params(model), count_params(model)) # an R model passed to a Python function
  d <- four_points()
  out <- reticulate::py_to_r(py_model$predict(reticulate::np_array(d$x, dtype = "float32")))
  expect_equal(out, predict(model, d$x), tolerance = 1e-6)
})

test_that("a pydlr model made by Python code arrives in R as a pydlr_model the verbs take", {
  main <- reticulate::py_run_string(paste(
    "import pydlr",
    "py_made = pydlr.Sequential([pydlr.layers.Dense(3, activation='softmax')], input_shape=(4,))",
    "py_made.compile(optimizer='adam', loss='sparse_categorical_crossentropy')",
    sep = "\n"
  ), convert = TRUE)
  model <- main$py_made
  expect_s3_class(model, "pydlr_model")
  expect_equal(count_params(model), 15)
  d <- four_points()
  h <- fit(model, d$x, d$y, epochs = 2, verbose = 0)
  expect_equal(length(h$metrics$loss), 2L)
  expect_equal(dim(predict(model, d$x)), c(30L, 3L))
})

test_that("histories convert both ways with Keras' 0-based epochs on the Python side", {
  model <- tiny_dense()
  d <- four_points()
  h <- fit(model, d$x, d$y, epochs = 3, verbose = 0)
  py_h <- reticulate::r_to_py(h)
  expect_equal(unlist(reticulate::py_to_r(py_h$epoch)), 0:2)
  expect_equal(unlist(reticulate::py_to_r(py_h$history)$loss), h$metrics$loss)
  back <- reticulate::py_to_r(py_h)
  expect_s3_class(back, "pydlr_history")
  expect_equal(back$metrics, h$metrics)
  expect_equal(back$epoch, 1:3)
})

test_that("layers, callbacks, optimizers, augmentations and k-means fits convert to their Python objects", {
  layer <- reticulate::r_to_py(layer_dense(units = 5, activation = "relu"))
  expect_true(inherits(layer, "pydlr.layers.core.Dense"))
  expect_equal(reticulate::py_to_r(layer$units), 5L)
  stop_cb <- reticulate::r_to_py(callback_early_stopping(monitor = "loss", patience = 2L))
  expect_true(inherits(stop_cb, "pydlr.train.callbacks.EarlyStopping"))
  expect_equal(reticulate::py_to_r(stop_cb$patience), 2L)
  opt <- reticulate::r_to_py(optimizer_sgd(learning_rate = 0.05, momentum = 0.9))
  expect_equal(reticulate::py_to_r(opt$momentum), 0.9)
  aug <- reticulate::r_to_py(augmentation(flip = "horizontal", zoom = 0.1))
  expect_true(inherits(aug, "pydlr.data.augment.Augment"))
  d <- four_points()
  km <- pydlr_kmeans(d$x, 3, seed = 1)
  py_km <- reticulate::r_to_py(km)
  labels <- reticulate::py_to_r(reticulate::py_get_attr(py_km, "labels_"))
  expect_equal(as.integer(labels) + 1L, unname(km$cluster))
})

test_that("a Python exception's class and notes reach the R condition, without a traceback", {
  model <- tiny_dense()
  d <- four_points()
  boom <- callback_lambda(on_epoch_end = function(epoch, logs) stop("my hook failed"))
  e <- expect_error(fit(model, d$x, d$y, epochs = 1, verbose = 0, callbacks = list(boom)), class = "pydlr_error")
  expect_match(conditionMessage(e), "my hook failed", fixed = TRUE)
  expect_match(conditionMessage(e), "raised by callback", fixed = TRUE) # the exception's note
  expect_true(any(grepl("raised by callback", e$notes, fixed = TRUE)))
  expect_false(grepl("Traceback", conditionMessage(e), fixed = TRUE))
  e <- expect_error(compile(model, optimizer = "adam", loss = "hinge_of_doom"), class = "pydlr_input_error")
  expect_equal(e$python_class, "pydlr.errors.InputError")
  expect_identical(class(e), c("pydlr_input_error", "pydlr_error", "error", "condition"))
  expect_equal(e$argument, "loss")
})

test_that("a model restored with readRDS() says to use save_model()/load_model(), as a pydlr condition", {
  model <- tiny_dense()
  path <- tempfile(fileext = ".rds")
  on.exit(unlink(path))
  saveRDS(model, path)
  restored <- readRDS(path)
  d <- four_points()
  for (verb in list(function(m) predict(m, d$x), print, count_params, summary)) {
    e <- expect_error(verb(restored), class = "pydlr_stale_object_error")
    expect_match(conditionMessage(e), "save_model(model, path)", fixed = TRUE)
    expect_match(conditionMessage(e), "load_model(path)", fixed = TRUE)
  }
  expect_false(inherits(e, "Rcpp::exception"))
})

test_that("predict(type = 'class') of a model trained on a factor returns the factor's levels", {
  model <- tiny_dense()
  d <- four_points()
  y <- factor(c("cat", "dog", "owl")[d$y + 1L], levels = c("cat", "dog", "owl"))
  fit(model, d$x, y, epochs = 2, batch_size = 10, verbose = 0, seed = 1)
  pred <- predict(model, d$x, type = "class")
  expect_s3_class(pred, "factor")
  expect_identical(levels(pred), levels(y))
  expect_identical(as.integer(pred), max.col(predict(model, d$x), "first")) # level k is class k - 1
  expect_identical(colnames(predict(model, d$x)), levels(y)) # probabilities by class, as R's classifiers
  fit(model, d$x, d$y, epochs = 1, verbose = 0) # retrained on integer labels: 0-based integers again
  expect_type(predict(model, d$x, type = "class"), "integer")
  expect_null(colnames(predict(model, d$x)))
})

test_that("a test or validation factor with other levels is read by its labels, not its codes", {
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(3, activation = "softmax")
  model |> compile(optimizer = optimizer_adam(0.05), loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  d <- four_points(60)
  y <- factor(c("cat", "dog", "owl")[d$y + 1L], levels = c("cat", "dog", "owl"))
  fit(model, d$x, y, epochs = 40, batch_size = 10, verbose = 0, seed = 1)
  whole <- evaluate(model, d$x, y)
  expect_gt(whole$accuracy, 0.9)
  # the same labels with the levels reversed, and a test subset without "cat" (factor() drops the level)
  expect_equal(evaluate(model, d$x, factor(as.character(y), levels = c("owl", "dog", "cat"))), whole)
  keep <- y != "cat"
  no_cat <- factor(as.character(y[keep]))
  expect_identical(levels(no_cat), c("dog", "owl"))
  expect_equal(evaluate(model, d$x[keep, ], no_cat), evaluate(model, d$x[keep, ], droplevels(y[keep], except = 1:3)))
  expect_gt(evaluate(model, d$x[keep, ], no_cat)$accuracy, 0.9)
  expect_error(evaluate(model, d$x, factor(ifelse(y == "cat", "emu", as.character(y)))), '"emu"',
               class = "pydlr_input_error")
  top <- top_losses(model, d$x[keep, ], no_cat, k = 40L)
  expect_false(any(top$actual == 0L)) # no cat among them: class 0 is the model's "cat"
  h <- fit(model, d$x[1:45, ], y[1:45], epochs = 1, verbose = 0, validation_data = list(d$x[keep, ], no_cat))
  expect_gt(as.data.frame(h)$val_accuracy, 0.9)
})

test_that("class_weight may name a factor's levels: the same training as its 0-based codes", {
  d <- four_points()
  y <- factor(c("cat", "dog", "owl")[d$y + 1L], levels = c("owl", "cat", "dog")) # codes: owl 0, cat 1, dog 2
  trained <- function(weights) {
    set_random_seed(3L)
    model <- tiny_dense()
    fit(model, d$x, y, epochs = 2, batch_size = 10, verbose = 0, seed = 1, class_weight = weights)
    unlist(get_weights(model))
  }
  by_name <- trained(c(cat = 1, dog = 0.5, owl = 0))
  expect_identical(by_name, trained(c("0" = 0, "1" = 1, "2" = 0.5)))
  expect_false(identical(by_name, trained(c("0" = 1, "1" = 0.5, "2" = 0)))) # the names' order is not the codes'
  e <- expect_error(trained(c(cat = 1, emu = 2)), class = "pydlr_input_error")
  expect_match(conditionMessage(e), paste0('argument `class_weight` must be non-negative weights named by class: ',
    'a class name ("owl", "cat", "dog") or its 0-based code, e.g. c("owl" = 2); received names "cat", "emu".'), fixed = TRUE)
})

test_that("get_weights() gives Keras' layouts in R as in Python", {
  model <- keras_model_sequential(input_shape = c(6, 6, 2)) |>
    layer_conv_2d(filters = 3, kernel_size = c(3, 2)) |>
    layer_flatten() |>
    layer_dense(units = 4)
  w <- get_weights(model)
  expect_equal(lapply(w, dim), list(c(3L, 2L, 2L, 3L), NULL, c(60L, 4L), NULL))
  expect_equal(lengths(w), c(36L, 3L, 240L, 4L))
  py_w <- reticulate::py_to_r(reticulate::r_to_py(model)$get_weights())
  for (i in seq_along(w)) expect_identical(as.vector(w[[i]]), as.vector(py_w[[i]]))
})

test_that("keras_model_sequential(layers = ) takes a model as a layer and names what it takes", {
  base <- keras_model_sequential(input_shape = c(6, 6, 1), name = "base") |> layer_conv_2d(2, 3)
  model <- keras_model_sequential(layers = list(base, layer_flatten(), layer_dense(units = 2)))
  expect_equal(count_params(model), 20 + 32 * 2 + 2)
  e <- expect_error(keras_model_sequential(layers = list("dense")), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "layer_*() layers or pydlr models", fixed = TRUE)
})
