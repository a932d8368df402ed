# Image datasets from folders and data.frames of files (image_dataset_from_directory()).

image_folder <- local({
  made <- NULL
  function() {
    if (is.null(made)) {
      made <<- file.path(tempdir(), "pydlr-image-folder")
      python <- readLines(system.file("python-path", package = "pydlr"))[1]
      script <- file.path(Sys.getenv("PYDLR_ROOT", getwd()), "scripts", "make_image_folder.py")
      if (!file.exists(script)) script <- normalizePath(file.path("..", "..", "..", "scripts", "make_image_folder.py"))
      status <- system2(python, c(script, made, "--limit", "120"), stdout = FALSE)
      stopifnot(status == 0)
    }
    made
  }
})

test_that("a folder becomes a dataset with class names, counts and batches", {
  dir <- image_folder()
  ds <- image_dataset_from_directory(dir, image_size = c(28, 28), color_mode = "grayscale",
                                     batch_size = 32, seed = 1, verbose = FALSE)
  expect_s3_class(ds, "pydlr_image_dataset")
  expect_equal(length(ds), 4L) # ceiling(120 / 32)
  expect_equal(ds$class_names[1:2], c("0_t_shirt_top", "1_trouser"))
  expect_output(print(ds), "120 files, 4 batches of 32")
  expect_output(print(ds), "0_t_shirt_top")
  one_batch <- image_dataset_from_directory(dir, image_size = c(28, 28), color_mode = "grayscale",
                                            batch_size = 200, verbose = FALSE)
  expect_output(print(one_batch), "120 files, 1 batch of 200,", fixed = TRUE)
  b <- image_dataset_batch(ds)
  expect_equal(dim(b$images), c(32L, 28L, 28L, 1L))
  expect_true(all(b$labels %in% 0:9) && max(b$images) <= 255 && max(b$images) > 100)
})

test_that("subset = 'both' splits without overlap; label modes shape the labels", {
  dir <- image_folder()
  sets <- image_dataset_from_directory(dir, image_size = c(16, 16), validation_split = 0.25, subset = "both",
                                       seed = 3, label_mode = "categorical", batch_size = 10, verbose = FALSE)
  expect_named(sets, c("training", "validation"))
  expect_equal(c(length(sets$training), length(sets$validation)), c(9L, 3L))
  b <- image_dataset_batch(sets$validation)
  expect_equal(dim(b$labels), c(10L, 10L))
  expect_equal(rowSums(b$labels), rep(1, 10))
  expect_equal(dim(b$images), c(10L, 16L, 16L, 3L))
})

test_that("a data.frame of files uses its factor levels as classes", {
  dir <- image_folder()
  files <- list.files(dir, recursive = TRUE)
  kind <- factor(ifelse(as.integer(substr(files, 1, 1)) %% 2 == 1, "odd", "even"), levels = c("odd", "even"))
  df <- data.frame(path = files, kind = kind)
  ds <- image_dataset_from_dataframe(df, directory = dir, x_col = "path", y_col = "kind", image_size = c(8, 8),
                                     batch_size = 120, shuffle = FALSE, verbose = FALSE)
  expect_equal(ds$class_names, c("odd", "even"))
  b <- image_dataset_batch(ds)
  expect_equal(b$labels, as.integer(kind) - 1L)
  expect_error(image_dataset_from_dataframe(df, x_col = "nope"), class = "pydlr_input_error")
  missing <- df
  missing$path[3] <- "no-such.png" # the error names the user's column, not an internal one
  expect_error(image_dataset_from_dataframe(missing, directory = dir, x_col = "path", y_col = "kind"),
               "`path` must be paths of existing files.*no-such.png", class = "pydlr_input_error")
  expect_error(image_dataset_from_dataframe(df, directory = dir, x_col = "path", y_col = "kind",
                                            class_names = c("odd", "other")),
               "found in column \"kind\"", class = "pydlr_input_error")
  expect_error(image_dataset_from_dataframe(df, x_col = "path", y_col = "path"), "y_col", class = "pydlr_input_error")
  df$size <- rep(c(2, 10, 9), length.out = nrow(df)) # numbers in factor()'s order, not their text's
  ds <- image_dataset_from_dataframe(df, directory = dir, x_col = "path", y_col = "size", image_size = c(8, 8),
                                     batch_size = 120, shuffle = FALSE, verbose = FALSE)
  expect_equal(ds$class_names, c("2", "9", "10"))
  expect_equal(image_dataset_batch(ds)$labels, as.integer(factor(df$size)) - 1L)
})

test_that("a dataset made from relative paths still reads its files after setwd()", {
  dir <- image_folder()
  old <- setwd(dirname(dir))
  on.exit(setwd(old))
  ds <- image_dataset_from_directory(basename(dir), image_size = c(8, 8), batch_size = 120, shuffle = FALSE,
                                     verbose = FALSE)
  files <- data.frame(f = list.files(basename(dir), recursive = TRUE), stringsAsFactors = FALSE)
  files$kind <- substr(files$f, 1, 1)
  table <- image_dataset_from_dataframe(files, directory = basename(dir), x_col = "f", y_col = "kind",
                                        image_size = c(8, 8), batch_size = 120, shuffle = FALSE, verbose = FALSE)
  setwd(tempdir())
  dir.create("elsewhere", showWarnings = FALSE)
  setwd("elsewhere")
  expect_equal(dim(image_dataset_batch(ds)$images), c(120L, 8L, 8L, 3L))
  expect_equal(dim(image_dataset_batch(table)$images), c(120L, 8L, 8L, 3L))
  expect_true(all(file.exists(ds$file_paths)))
})

test_that("labels given one per file are 0-based: 1-based ones get a warning naming the fix", {
  dir <- image_folder()
  n <- length(list.files(dir, recursive = TRUE))
  k <- rep(1:2, length.out = n)
  expect_warning(ds <- image_dataset_from_directory(dir, labels = k, image_size = c(8, 8), verbose = FALSE),
                 "labels - 1", class = "pydlr_warning")
  expect_equal(length(ds$class_names), 3L) # class 0 without an image, as keras makes it
  expect_no_warning(ds <- image_dataset_from_directory(dir, labels = k - 1L, image_size = c(8, 8), verbose = FALSE))
  expect_equal(ds$class_names, c("0", "1"))
})

test_that("bad folders and arguments are R conditions naming the argument", {
  dir <- image_folder()
  expect_error(image_dataset_from_directory(file.path(tempdir(), "no-such-folder")),
               "does not exist", class = "pydlr_input_error")
  empty <- file.path(tempdir(), "pydlr-empty-folder")
  dir.create(empty, showWarnings = FALSE)
  expect_error(image_dataset_from_directory(empty, verbose = FALSE), "empty", class = "pydlr_input_error")
  expect_error(image_dataset_from_directory(dir, label_mode = "sparse"), "label_mode", class = "pydlr_input_error")
  expect_error(image_dataset_from_directory(dir, image_size = 28), "image_size", class = "pydlr_input_error")
  expect_error(image_dataset_from_directory(dir, validation_split = 0.2, subset = "training"),
               "seed", class = "pydlr_input_error")
  expect_error(image_dataset_from_directory(dir, label_mode = "binary", verbose = FALSE),
               "binary", class = "pydlr_input_error")
  err <- tryCatch(image_dataset_from_directory(dir, color_mode = "cmyk"), error = identity)
  expect_false(grepl("Traceback", conditionMessage(err)))
  expect_match(conditionMessage(err), "^image_dataset_from_directory\\(\\): argument `color_mode`")
})

test_that("a skipped unreadable image gives one R warning per call, none from Python", {
  dir <- file.path(tempdir(), "pydlr-skipped-once")
  for (k in c("a", "b")) dir.create(file.path(dir, k), recursive = TRUE, showWarnings = FALSE)
  src <- list.files(image_folder(), full.names = TRUE, recursive = TRUE)[1:2]
  file.copy(src, file.path(dir, c("a", "b"), "ok.png"))
  writeLines("not an image", file.path(dir, "b", "broken.png"))
  ds <- image_dataset_from_directory(dir, image_size = c(8, 8), batch_size = 3, verbose = FALSE,
                                     on_bad_file = "skip", shuffle = FALSE)
  model <- keras_model_sequential(input_shape = c(8, 8, 3)) |> layer_flatten() |>
    layer_dense(units = 2, activation = "softmax")
  compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy")
  calls <- list(fit = function() fit(model, ds, epochs = 1, verbose = 0), evaluate = function() evaluate(model, ds),
                predict = function() predict(model, ds), batch = function() image_dataset_batch(ds))
  for (name in names(calls)) {
    caught <- list()
    python <- reticulate::py_capture_output(withCallingHandlers(calls[[name]](), warning = function(w) {
      caught[[length(caught) + 1L]] <<- w
      invokeRestart("muffleWarning")
    }))
    expect_length(caught, 1L)
    expect_s3_class(caught[[1]], "pydlr_warning")
    expect_match(conditionMessage(caught[[1]]), 'skipped 1 unreadable image file(s) (on_bad_file = "skip"): ',
                 fixed = TRUE)
    expect_identical(python, "", info = name)
  }
})

test_that("an unreadable image stops reading with its name, or is skipped with a warning", {
  dir <- file.path(tempdir(), "pydlr-bad-image")
  dir.create(file.path(dir, "a"), recursive = TRUE, showWarnings = FALSE)
  dir.create(file.path(dir, "b"), showWarnings = FALSE)
  src <- list.files(image_folder(), full.names = TRUE, recursive = TRUE)[1:2]
  file.copy(src[1], file.path(dir, "a", "ok.png"))
  file.copy(src[2], file.path(dir, "b", "ok.png"))
  writeLines("not an image", file.path(dir, "b", "broken.png"))
  ds <- image_dataset_from_directory(dir, image_size = c(8, 8), batch_size = 3, verbose = FALSE)
  expect_error(image_dataset_batch(ds), "broken.png", class = "pydlr_training_error")
  # the advice as an R call takes it, once
  err <- tryCatch(image_dataset_batch(ds), pydlr_training_error = function(e) conditionMessage(e))
  expect_match(err, 'on_bad_file = "skip"', fixed = TRUE)
  expect_length(gregexpr("on_bad_file", err, fixed = TRUE)[[1]], 1L)
  skip_ds <- image_dataset_from_directory(dir, image_size = c(8, 8), batch_size = 3, verbose = FALSE,
                                          on_bad_file = "skip")
  expect_warning(b <- image_dataset_batch(skip_ds), "broken.png")
  expect_equal(dim(b$images)[1], 2L)
  expect_output(print(skip_ds), "1 unreadable file")
  # predict() keeps one row per file of $file_paths: NA for the skipped one, not the next file's outputs
  model <- keras_model_sequential(input_shape = c(8, 8, 3)) |> layer_flatten() |>
    layer_dense(units = 2, activation = "softmax")
  compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy")
  expect_warning(p <- predict(model, skip_ds), "broken.png")
  broken <- basename(skip_ds$file_paths) == "broken.png" # the files were shuffled once
  expect_equal(sum(broken), 1L)
  expect_equal(is.na(p[, 1]), broken)
  expect_warning(cls <- predict(model, skip_ds, type = "class"), "broken.png")
  expect_equal(is.na(cls), broken)
  expect_output(print(skip_ds), "(1 unreadable file(s) skipped)", fixed = TRUE) # three passes, one file
})

test_that("fit(), evaluate() and predict() take image datasets", {
  dir <- image_folder()
  sets <- image_dataset_from_directory(dir, image_size = c(28, 28), color_mode = "grayscale", batch_size = 20,
                                       validation_split = 0.25, subset = "both", seed = 5, verbose = FALSE)
  model <- rapi_seed_cnn(head = TRUE)
  model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  history <- model |> fit(sets$training, epochs = 2, steps_per_epoch = 10, validation_data = sets$validation,
                          validation_steps = 1, validation_freq = 2, verbose = 0, seed = 1,
                          augment = augmentation(flip = "horizontal"))
  h <- as.data.frame(history)
  expect_equal(nrow(h), 2L)
  expect_equal(is.na(h$val_loss), c(TRUE, FALSE)) # validation_freq = 2: only the second epoch
  ev <- evaluate(model, sets$validation)
  expect_named(ev, c("loss", "accuracy"))
  cls <- predict(model, sets$validation, type = "class")
  expect_length(cls, 30L)
  expect_s3_class(cls, "factor")
  expect_equal(levels(cls), sets$validation$class_names)
  expect_equal(dim(predict(model, sets$validation)), c(30L, 10L))
  expect_identical(colnames(predict(model, sets$validation)), sets$validation$class_names)
  e <- expect_error(fit(model, sets$training, sample_weight = rep(1, 90), verbose = 0), class = "pydlr_input_error")
  expect_match(conditionMessage(e), paste("argument `sample_weight` must be left out when x is an image dataset",
    "(fit() takes it with arrays); weigh the classes with class_weight"), fixed = TRUE)
  # $labels line up with predict()'s rows (the file order of $file_paths), whatever the shuffle
  expect_length(sets$validation$file_paths, 30L)
  expect_true(all(file.exists(sets$validation$file_paths)))
  expect_equal(sets$validation$labels, match(basename(dirname(sets$validation$file_paths)),
                                             sets$validation$class_names) - 1L)
  expect_equal(mean(as.integer(cls) - 1L == sets$validation$labels), ev$accuracy, tolerance = 1e-6)
  cm <- confusion_matrix(sets$validation$labels, cls, labels = sets$validation$class_names)
  expect_equal(sum(diag(cm)) / 30, ev$accuracy, tolerance = 1e-6)
  expect_error(fit(model, sets$training, batch_size = 8, verbose = 0), "batch_size", class = "pydlr_input_error")
  other <- image_dataset_from_directory(dir, image_size = c(32, 32), color_mode = "grayscale", verbose = FALSE)
  expect_error(fit(model, other, verbose = 0), "image_size", class = "pydlr_input_error")
})

test_that("a test folder lacking a training class is refused by evaluate(); predict() names the training classes", {
  dir <- image_folder()
  part <- file.path(tempdir(), "pydlr-image-folder-part")
  dir.create(part, showWarnings = FALSE)
  for (cls in c("0_t_shirt_top", "2_pullover")) file.symlink(file.path(dir, cls), file.path(part, cls))
  grey <- function(d) image_dataset_from_directory(d, image_size = c(28, 28), color_mode = "grayscale",
                                                   follow_links = TRUE, shuffle = FALSE, verbose = FALSE)
  model <- rapi_seed_cnn(head = TRUE)
  model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  fit(model, grey(dir), epochs = 1, steps_per_epoch = 2, verbose = 0)
  test <- grey(part) # its labels 0 and 1 would mean t-shirt and trouser to the model
  expect_error(evaluate(model, test), "only in training: .*1_trouser", class = "pydlr_input_error")
  cls <- predict(model, test, type = "class")
  expect_equal(levels(cls), grey(dir)$class_names)
  expect_equal(as.character(cls), grey(dir)$class_names[predict(model, test) |> max.col(ties.method = "first")])
})

test_that("fit(distributed = ) takes an image dataset: each process reads its own shard of the files", {
  skip_if(!nzchar(ddp_torchrun()), "torchrun is not installed beside pydlr's Python")
  sets <- image_dataset_from_directory(image_folder(), image_size = c(28, 28), color_mode = "grayscale",
                                       batch_size = 10, validation_split = 0.5, subset = "both", seed = 5,
                                       verbose = FALSE)
  model <- keras_model_sequential(input_shape = c(28, 28, 1)) |> layer_rescaling(scale = 1 / 255) |>
    layer_flatten() |> layer_dense(units = 10, activation = "softmax")
  model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  before <- get_weights(model)[[1]]
  h <- fit(model, sets$training, epochs = 2, verbose = 0, seed = 1, validation_data = sets$validation,
           distributed = list(nproc_per_node = 2L))
  expect_identical(as.integer(h$params$steps), 3L) # 60 files / 2 processes / batch 10 (one process: 6)
  expect_true(all(c("loss", "val_loss") %in% names(as.data.frame(h))))
  expect_false(identical(get_weights(model)[[1]], before)) # the trained weights came back
  expect_error(fit(model, sets$training, distributed = list(nproc = 2L)), "distributed",
               class = "pydlr_input_error")
})

test_that("pad_to_aspect_ratio and data_format are keras3's", {
  dir <- image_folder()
  ds <- image_dataset_from_directory(dir, image_size = c(8, 16), pad_to_aspect_ratio = TRUE,
                                     data_format = "channels_last", verbose = FALSE, batch_size = 4)
  b <- image_dataset_batch(ds)
  expect_equal(dim(b$images), c(4L, 8L, 16L, 3L))
  expect_equal(max(b$images[, , 1:4, ]), 0) # square images padded left and right
  expect_error(image_dataset_from_directory(dir, data_format = "channels_first"), "data_format",
               class = "pydlr_input_error")
})

test_that("a dataset whose label_mode does not fit the loss is refused in R's words", {
  ds <- image_dataset_from_directory(image_folder(), image_size = c(28, 28), color_mode = "grayscale",
                                     label_mode = "categorical", verbose = FALSE)
  model <- keras_model_sequential(input_shape = c(28, 28, 1)) |> layer_flatten() |>
    layer_dense(units = 10, activation = "softmax")
  compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy")
  e <- expect_error(fit(model, ds, epochs = 1, verbose = 0), class = "pydlr_input_error")
  expect_match(conditionMessage(e), paste0('^fit\\(\\): argument `x` must be a dataset with label_mode = "int" ',
    'for this loss \\(match the loss: .*\\); received a dataset made with label_mode = "categorical"\\.$'))
})
