test_that("bad layer arguments give classed R errors naming the argument, before Python", {
  model <- keras_model_sequential(input_shape = c(28, 28, 1))
  e <- expect_error(model |> layer_conv_2d(filters = -3, kernel_size = 3), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "argument `filters` must be a whole number >= 1; received -3", fixed = TRUE)
  expect_equal(e$argument, "filters")
  expect_s3_class(e, "pydlr_error")
  expect_error(model |> layer_conv_2d(filters = 8, kernel_size = c(3, 3, 3)), "`kernel_size`")
  expect_error(model |> layer_conv_2d(filters = 8, kernel_size = 3, padding = "full"), "`padding`")
  expect_error(model |> layer_dense(units = "ten"), class = "pydlr_input_error")
  expect_error(model |> layer_activation("swish"), "`activation`")
  expect_error(model |> layer_dropout(rate = 1.5), "`rate`")
  expect_error(layer_dense("not a model", units = 3), "`object`")
  expect_equal(count_params(model), 0) # nothing was added by the failed calls
})

test_that("errors raised by Python come back as R conditions without a Python traceback", {
  model <- keras_model_sequential(input_shape = c(5, 5, 1))
  e <- expect_error(model |> layer_conv_2d(filters = 4, kernel_size = 7), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "kernel_size")
  expect_match(conditionMessage(e), "(None, 5, 5, 1)", fixed = TRUE)
  expect_no_match(conditionMessage(e), "Traceback")
  expect_equal(e$argument, "kernel_size")
  # the session (and the model) stay usable
  model |> layer_conv_2d(filters = 4, kernel_size = 3)
  expect_equal(count_params(model), 3 * 3 * 4 + 4)
})

test_that("a character matrix as x is refused naming `x`, and the session goes on", {
  model <- keras_model_sequential(input_shape = c(2)) |> layer_dense(units = 2, activation = "softmax")
  model |> compile(loss = "sparse_categorical_crossentropy", optimizer = "adam", metrics = "accuracy")
  x <- matrix(c("a", "b", "c", "d"), 2)
  e <- expect_error(fit(model, x, c(0, 1), verbose = 0), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "argument `x` must be a numeric array")
  expect_match(conditionMessage(e), "character matrix")
  expect_error(fit(model, matrix(c(1, NA, 3, 4), 2), c(0, 1), verbose = 0), "NA")
  expect_error(fit(model, matrix(1:4, 2), c(0, 1, 1), verbose = 0), "`y`")
  expect_error(fit(model, matrix(1:4, 2), c(0, 1), batch_size = 0, verbose = 0), "`batch_size`")
  expect_error(fit(model, matrix(1:4, 2), c(0, 1), epochs = -1, verbose = 0), "`epochs`")
  h <- fit(model, matrix(c(0, 1, 1, 0), 2), c(0, 1), epochs = 1, verbose = 0)
  expect_s3_class(h, "pydlr_history")
})

test_that("keras features outside pydlr's subset give a pydlr_not_supported_error saying what exists", {
  model <- keras_model_sequential(input_shape = c(8, 8, 1))
  e <- expect_error(model |> layer_conv_2d(8, 3, data_format = "channels_first"),
    class = "pydlr_not_supported_error")
  expect_match(conditionMessage(e), "channels-last")
  expect_error(model |> layer_dense(4, kernel_regularizer = "l2"), "optimizer_adamw")
  expect_error(layer_conv_1d(model, 4), class = "pydlr_not_supported_error")
  expect_error(layer_lstm(model, 4), "recurrent")
  expect_error(compile(model, loss = function(y, p) 0), class = "pydlr_not_supported_error")
  expect_error(optimizer_adam(weight_decay = 0.01), "optimizer_adamw")
  expect_error(fit(model, array(0, c(2, 8, 8, 1)), c(0, 1), validation_freq = 2),
    class = "pydlr_not_supported_error")
})

test_that("an unknown loss name is refused by Python and re-signalled in R", {
  model <- keras_model_sequential(input_shape = c(2)) |> layer_dense(units = 2)
  e <- expect_error(compile(model, loss = "hinge_of_doom", optimizer = "adam"), class = "pydlr_error")
  expect_match(conditionMessage(e), "hinge_of_doom")
  expect_no_match(conditionMessage(e), "Traceback")
})

test_that("TRUE/FALSE labels for a softmax over 3+ classes are refused in R's words before training", {
  x <- array(runif(16 * 4), c(16, 4))
  y <- rep(c(TRUE, FALSE), 8)
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 3, activation = "softmax")
  model |> compile(loss = "sparse_categorical_crossentropy", optimizer = "adam")
  before <- get_weights(model)
  e <- expect_error(model |> fit(x, y, epochs = 1, verbose = 0), class = "pydlr_input_error")
  expect_match(conditionMessage(e), paste0(
    "fit(): argument `y` must be class indices 0 to 2 (whole numbers or a factor) for a model whose last ",
    "layer is a 3-unit softmax; for two classes end the model with layer_dense(units = 1, activation = ",
    "\"sigmoid\") and loss = \"binary_crossentropy\"; received a logical vector (TRUE/FALSE)."), fixed = TRUE)
  expect_identical(get_weights(model), before)
  expect_error(evaluate(model, x, y), "3-unit softmax")
  expect_error(lr_find(model, x, y), "3-unit softmax")
  # two classes: TRUE/FALSE are the labels 1/0 of a sigmoid unit
  binary <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 1, activation = "sigmoid")
  binary |> compile(loss = "binary_crossentropy", optimizer = "adam")
  expect_silent(binary |> fit(x, y, epochs = 1, verbose = 0))
})

test_that("errors from Python quote values and name the function as R's own messages do", {
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 3, activation = "softmax")
  model |> compile(loss = "sparse_categorical_crossentropy", optimizer = "adam")
  x <- array(runif(8 * 4), c(8, 4))
  e <- expect_error(model |> fit(x, rep(0:1, 4), epochs = 1, verbose = 0, device = "tpu"),
                    class = "pydlr_input_error")
  expect_match(conditionMessage(e), paste0(
    "fit(): argument `device` must be \"auto\", \"cpu\" or \"cuda[:i]\"; received \"tpu\"."), fixed = TRUE)
  expect_no_match(conditionMessage(e), "'", fixed = TRUE)
})

test_that("validation labels go through the checks of y: TRUE/FALSE and factors", {
  x <- array(runif(16 * 4), c(16, 4))
  y <- rep(0:2, length.out = 16)
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 3, activation = "softmax")
  model |> compile(loss = "sparse_categorical_crossentropy", optimizer = "adam")
  before <- get_weights(model)
  e <- expect_error(model |> fit(x, y, validation_data = list(x, rep(c(TRUE, FALSE), 8)), epochs = 1,
                                 verbose = 0), class = "pydlr_input_error")
  expect_match(conditionMessage(e), paste0("fit(): argument `validation_data[[2]]` must be class indices 0 to 2",
    " (whole numbers or a factor) for a model whose last layer is a 3-unit softmax"), fixed = TRUE)
  expect_identical(get_weights(model), before)
  # 0-based labels in y and a factor of them in validation: its codes would shift a set that lacks class 0
  e <- expect_error(model |> fit(x, y, validation_data = list(x[y > 0, ], factor(y[y > 0])), epochs = 1,
                                 verbose = 0), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "argument `validation_data[[2]]` must be", fixed = TRUE)
  expect_match(conditionMessage(e), "as.integer(as.character(", fixed = TRUE)
  expect_identical(get_weights(model), before)
  # the list's elements counted as R counts them
  e <- expect_error(model |> fit(x, y, validation_data = list(x[, 1:2], y), epochs = 1, verbose = 0),
                    class = "pydlr_input_error")
  expect_match(conditionMessage(e), "^fit\\(\\): argument `validation_data\\[\\[1\\]\\]` must be")
  e <- expect_error(model |> fit(x, y, validation_data = list(x, y + 1), epochs = 1, verbose = 0),
                    class = "pydlr_input_error")
  expect_match(conditionMessage(e), "argument `validation_data[[2]]` must be", fixed = TRUE)
  # validation_split: a fraction, whatever came
  for (bad in list("0.2", 20, 1, -0.1)) {
    e <- expect_error(model |> fit(x, y, validation_split = bad, epochs = 1, verbose = 0), class = "pydlr_input_error")
    expect_match(conditionMessage(e), "fit(): argument `validation_split` must be a fraction in [0, 1); received ",
                 fixed = TRUE)
    expect_match(conditionMessage(e), if (is.character(bad)) '"0.2"' else sprintf("received %s (double)", format(bad)),
                 fixed = TRUE)
  }
  expect_identical(get_weights(model), before)
})

test_that("images with their samples along the last axis are named as x's fault, with the aperm() that fixes it", {
  model <- keras_model_sequential(input_shape = c(6, 6, 1)) |> layer_flatten() |> layer_dense(units = 2, activation = "softmax")
  model |> compile(loss = "sparse_categorical_crossentropy", optimizer = "adam")
  x <- array(runif(6 * 6 * 20), c(6, 6, 20)) # 20 images, samples last (as image stacks from other tools come)
  e <- expect_error(fit(model, x, rep(0:1, 10), epochs = 1, verbose = 0), class = "pydlr_input_error")
  expect_identical(conditionMessage(e), paste0("fit(): argument `x` must be an array with its samples along the ",
    "first axis, one per target of y (20): x's axis 3 has 20, so put it first with aperm(x, c(3, 1, 2)); received ",
    "an array of dim c(6, 6, 20)."))
  expect_s3_class(fit(model, aperm(x, c(3, 1, 2)), rep(0:1, 10), epochs = 1, verbose = 0), "pydlr_history")
})

test_that("numbers after a fit on a factor of numbers are refused: codes or labels?", {
  set.seed(3)
  x <- array(runif(30 * 4), c(30, 4))
  y <- factor(rep(1:3, 10)) # levels "1", "2", "3": the numbers 1..3 would be read as codes 1, 2 and (3?)
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 3, activation = "softmax")
  model |> compile(loss = "sparse_categorical_crossentropy", optimizer = "adam", metrics = "accuracy")
  model |> fit(x, y, epochs = 1, verbose = 0)
  e <- expect_error(evaluate(model, x[1:20, ], rep(1:2, 10), verbose = 0), class = "pydlr_input_error")
  expect_match(conditionMessage(e), paste0('evaluate(): argument `y` must be a factor of the classes the model ',
    'was trained on ("1", "2", "3"): the model learnt a factor whose levels are numbers, so plain numbers here ',
    'could be 0-based class codes or those labels; pass factor(y, levels = c("1", "2", "3")); received numbers ',
    '(1, 2).'), fixed = TRUE)
  e <- expect_error(model |> fit(x, y, validation_data = list(x, as.integer(y)), epochs = 1, verbose = 0),
                    class = "pydlr_input_error")
  expect_match(conditionMessage(e), "argument `validation_data[[2]]` must be a factor", fixed = TRUE)
  expect_match(conditionMessage(e), "pass factor(validation_data[[2]], levels", fixed = TRUE)
  by_factor <- evaluate(model, x[1:20, ], factor(rep(1:2, 10)), verbose = 0)
  # characters are read by name as a factor is
  expect_identical(evaluate(model, x[1:20, ], as.character(rep(1:2, 10)), verbose = 0), by_factor)
  # levels "0", "1", "2": codes and labels agree, numbers stay welcome
  model |> fit(x, factor(rep(0:2, 10)), epochs = 1, verbose = 0)
  expect_identical(evaluate(model, x, rep(0:2, 10), verbose = 0), evaluate(model, x, factor(rep(0:2, 10)), verbose = 0))
  # names that are not numbers: plain numbers are keras' 0-based codes, as before
  model |> fit(x, factor(rep(c("a", "b", "c"), 10)), epochs = 1, verbose = 0)
  expect_identical(evaluate(model, x, rep(0:2, 10), verbose = 0), evaluate(model, x, factor(rep(c("a", "b", "c"), 10)), verbose = 0))
})

test_that("errors from Python name the R functions users call and describe what came in R's words", {
  x <- array(runif(16 * 4), c(16, 4))
  y <- rep(0:2, length.out = 16)
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 3, activation = "softmax")
  model |> compile(loss = "sparse_categorical_crossentropy", optimizer = "adam", metrics = "accuracy")
  e <- expect_error(model |> fit(x, y, epochs = 1, verbose = 0,
                                 callbacks = list(callback_early_stopping(monitor = "acc"))),
                    class = "pydlr_input_error")
  expect_match(conditionMessage(e), paste0('^callback_early_stopping\\(\\): argument `monitor` must be one of the ',
    'logged values c\\("accuracy", "loss"\\); received "acc"\\.\n\\(raised by callback_early_stopping\\(\\) '))
  # keras3's default monitor, "val_loss", without validation data: refused before the first epoch
  before <- get_weights(model)
  e <- expect_error(model |> fit(x, y, epochs = 2, verbose = 0, callbacks = list(callback_early_stopping())),
                    class = "pydlr_input_error")
  expect_match(conditionMessage(e), paste0('^callback_early_stopping\\(\\): argument `monitor` must be a value ',
    'the fit logs: without validation data \\(validation_data or validation_split\\) only training values ',
    'such as "loss"; received "val_loss"\\.'))
  expect_identical(get_weights(model), before)
  e <- expect_error(model |> fit(x, to_categorical(y), epochs = 1, verbose = 0), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "received a double matrix of dim c(16, 3).", fixed = TRUE)
  e <- expect_error(model |> fit(x, y + 1, epochs = 1, verbose = 0), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "received labels in 1..3.", fixed = TRUE)
  expect_no_match(conditionMessage(e), "'", fixed = TRUE)
})

test_that("advice from Python is given as R calls: compile() first, one sample as a batch of one", {
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = "softmax")
  e <- expect_error(fit(model, matrix(0, 4, 4), 0:3, verbose = 0), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "(call compile(model, optimizer = ..., loss = ...) first)", fixed = TRUE)
  grey <- keras_model_sequential(input_shape = c(6, 6, 1)) |> layer_flatten() |> layer_dense(units = 2)
  e <- expect_error(predict(grey, matrix(0, 6, 6)), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "a batch of one: x[i, , , drop = FALSE] (x[i, , , , drop = FALSE] for data with a channel axis) or array(x, c(1, dim(x))); received",
               fixed = TRUE)
  expect_no_match(conditionMessage(e), "Python")
  e <- expect_error(keras_model_sequential(input_shape = c(6, 6)) |> layer_conv_2d(2, 3, name = "c1"),
                    class = "pydlr_input_error")
  expect_match(conditionMessage(e), '^layer_conv_2d\\(\\): layer "c1": ')
})

test_that("errors name R's arguments and positions, and describe models by name", {
  model <- keras_model_sequential(input_shape = c(6, 6, 1), name = "net") |> layer_flatten() |>
    layer_dense(units = 2, activation = "softmax")
  e <- expect_error(get_layer(model, index = 3), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "^get_layer\\(\\): argument `index` must be a layer position from 1 to 2; received 3")
  path <- tempfile(fileext = ".safetensors")
  on.exit(unlink(path))
  save_model_weights(model, path)
  e <- expect_error(load_model(path), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "load_model(): argument `filepath` must be a pydlr model file (use load_model_weights()",
               fixed = TRUE)
  e <- expect_error(view_model(model, open = FALSE), class = "pydlr_input_error")
  expect_match(conditionMessage(e), paste0('^view_model\\(\\): argument `model` must be a model with convolutional ',
                                           'feature maps; received the model "net"\\.$'))
})

test_that("a misspelt argument is named with the one meant, not as a keras feature pydlr lacks", {
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = "softmax")
  model |> compile(loss = "sparse_categorical_crossentropy", optimizer = "adam")
  x <- matrix(runif(16), 4)
  e <- expect_error(fit(model, x, 0:3, batchsize = 2, verbose = 0), class = "pydlr_input_error")
  expect_identical(conditionMessage(e), "fit() has no argument `batchsize`; did you mean `batch_size`?")
  expect_error(predict(model, x, batch.size = 2), "did you mean `batch_size`", class = "pydlr_input_error")
  expect_error(evaluate(model, x, c(0, 1, 1, 0), verbse = 0), "did you mean `verbose`", class = "pydlr_input_error")
  # a keras3 argument pydlr does not take is still said to be one
  expect_error(fit(model, x, 0:3, use_multiprocessing = TRUE, verbose = 0), class = "pydlr_not_supported_error")
})

test_that("a learning-rate schedule returning no number, and images too small for compare_methods()'s CNN", {
  x <- matrix(runif(16), 4)
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = "softmax")
  model |> compile(loss = "sparse_categorical_crossentropy", optimizer = "adam")
  e <- expect_error(fit(model, x, c(0, 1, 1, 0), epochs = 1, verbose = 0,
                        callbacks = list(callback_learning_rate_scheduler(function(epoch, lr) "fast"))),
                    class = "pydlr_input_error")
  expect_match(conditionMessage(e), paste0('^callback_learning_rate_scheduler\\(\\): argument `schedule` must be ',
                                           'an R function returning the learning rate, one number; received "fast"'))
  e <- expect_error(compare_methods(array(runif(40 * 64), c(40, 8, 8)), rep(0:1, 20)), class = "pydlr_input_error")
  expect_match(conditionMessage(e), paste0("^compare_methods\\(\\): argument `x` must be images of at least ",
                                           "18 x 18 pixels .*; received images of 8 x 8 pixels\\.$"))
  expect_match(conditionMessage(expect_error(confusion_matrix(0:9, 0:8), class = "pydlr_input_error")),
               "received an integer vector of length 9", fixed = TRUE)
})

test_that("compile()'s errors offer what R can pass, not Python objects", {
  m <- keras_model_sequential(input_shape = 3) |> layer_dense(2, activation = "softmax")
  e <- expect_error(compile(m, optimizer = "adam", loss = "sparse_categorial_crossentropy"),
                    class = "pydlr_input_error")
  expect_match(conditionMessage(e), '"sparse_categorical_crossentropy"); received "sparse_categorial_crossentropy".',
               fixed = TRUE)
  expect_no_match(conditionMessage(e), "torch|pydlr\\.train")
  e <- expect_error(compile(m, optimizer = "adamm", loss = "mse"), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "or an optimizer_*() object such as optimizer_adam(learning_rate = 0.001)",
               fixed = TRUE)
  expect_no_match(conditionMessage(e), "torch|pydlr\\.optimizers")
})
