# Your own images: keras3's image_dataset_from_directory() and the same from a data.frame of files. R checks
# the arguments in R's words; Python lists the files, and decodes, resizes and augments them in worker
# processes while the model trains (nothing is read into R). All calls go through .images_call().

# Every call goes through here (the package's one door, .py_call(), to pydlr.api_r.images).
.images_call <- function(fun, ..., .convert = TRUE, .call = sys.call(-1L)) {
  .py_call(paste0("api_r.images.", fun), ..., .convert = .convert, .call = .call)
}

#' Image datasets streamed from a folder or a table of files
#'
#' keras3's `image_dataset_from_directory()`: `directory` holds one subfolder per class (`labels =
#' "inferred"`; classes in alphanumeric order, or in the order of `class_names`), with `.png`, `.jpg`,
#' `.jpeg`, `.bmp` or `.gif` images of any size and colour mode. Nothing is read into R: when the dataset is
#' used ([fit()], [evaluate()], [predict()]), worker processes decode, resize and augment the next batches while
#' the model trains on the current one, so memory stays bounded whatever the number of files.
#' `image_dataset_from_dataframe()` takes the files from a data.frame instead: a column of paths (relative
#' to `directory` when given) and a column of labels, whose classes are ordered as [factor()] orders them: a
#' factor's levels, numbers numerically (`2` before `10`), text alphabetically.
#'
#' Images come as `batch_size x height x width x channels` with values 0-255 (as keras), labels as
#' `label_mode` says: `"int"` class indices 0, 1, ... (for `"sparse_categorical_crossentropy"`),
#' `"categorical"` one-hot rows, `"binary"` 0/1 (exactly two classes), `NULL` no labels.
#'
#' @param directory A folder (for `image_dataset_from_dataframe()`, `NULL` or the folder the paths are
#'   relative to).
#' @param labels `"inferred"` (from the subfolders), `NULL` (no labels), or an integer vector with one label
#'   per image file, in sorted path order: 0-based class indices, as keras' (a warning says so when none
#'   is 0).
#' @param label_mode `"int"`, `"categorical"`, `"binary"` or `NULL`.
#' @param class_names The subfolder names in the order that gives the labels 0, 1, ... (`NULL`:
#'   alphanumeric order). For a data.frame, the labels in the order wanted.
#' @param color_mode `"rgb"`, `"grayscale"` or `"rgba"`: images are converted to it.
#' @param batch_size Images per batch.
#' @param image_size `c(height, width)`: every image is resized to it.
#' @param shuffle Shuffle the files (again at every pass).
#' @param seed A whole number for the shuffle and the split (required with `validation_split`).
#' @param validation_split `NULL` or the fraction of files kept for validation (the last ones after one
#'   shuffle with `seed`).
#' @param subset With `validation_split`: `"training"`, `"validation"`, or `"both"` (a list of the two).
#' @param interpolation `"bilinear"`, `"nearest"`, `"bicubic"`, `"area"`, `"lanczos3"` or `"lanczos5"`.
#' @param follow_links Follow symbolic links to subfolders.
#' @param crop_to_aspect_ratio Resize the largest centred crop with the target aspect ratio instead of
#'   squashing the image.
#' @param pad_to_aspect_ratio Fit the whole image inside the target size and pad it with zeros instead of
#'   squashing it (not together with `crop_to_aspect_ratio`).
#' @param data_format `NULL` or `"channels_last"` (images are channels-last, as keras' default).
#' @param verbose Print the number of files and classes found.
#' @param workers Decoding processes (`NULL`: none on two cores or fewer, where training keeps both busy, else
#'   one per two cores, at most four; `0`: decode in this process).
#' @param prefetch Batches prepared ahead (`"auto"`: twice the workers).
#' @param cache `FALSE`, `TRUE` (keep decoded images in memory after the first pass) or a file path (keep
#'   them in a memory-mapped file, for data larger than memory; later passes and later sessions read it, as
#'   tf.data's cache file, and it is rebuilt when the files or the decoding settings change).
#' @param on_bad_file `"error"` (stop, naming the unreadable file) or `"skip"` (leave it out with a warning;
#'   the dataset counts them; [predict()] gives it a row of `NA`, so rows still follow `$file_paths`).
#' @param ... Unused (an error names any argument given here).
#' @return A `pydlr_image_dataset` (or, for `subset = "both"`, `list(training, validation)`): `print()`
#'   shows the class names and counts, `length()` the batches in one pass, `$class_names` the classes,
#'   `$file_paths` the files (absolute paths: a later [setwd()] does not lose them) in the order of the
#'   rows [predict()] returns for the dataset, and `$labels`
#'   their 0-based classes (`NULL` without labels), e.g. for
#'   `confusion_matrix(ds$labels, predict(model, ds, type = "class"))`.
#' @family datasets
#' @examples
#' if (pydlr:::.python_ready() && requireNamespace("png", quietly = TRUE)) {
#'   # a folder of PNGs in class subfolders, written from Fashion-MNIST (your photos work the same way)
#'   fm <- dataset_fashion_mnist()$test
#'   dir <- file.path(tempdir(), "fashion-png")
#'   for (i in which(fm$y %in% 0:2)[1:60]) {
#'     class <- c("t_shirt", "trouser", "pullover")[fm$y[i] + 1]
#'     dir.create(file.path(dir, class), recursive = TRUE, showWarnings = FALSE)
#'     png::writePNG(fm$x[i, , ] / 255, file.path(dir, class, sprintf("%04d.png", i)))
#'   }
#'   c(train_ds, val_ds) %<-% image_dataset_from_directory(dir, image_size = c(28, 28),
#'     color_mode = "grayscale", batch_size = 16, validation_split = 0.25, subset = "both", seed = 1)
#'   train_ds
#'   length(train_ds)
#'   model <- keras_model_sequential(input_shape = c(28, 28, 1)) |>
#'     layer_rescaling(1 / 255) |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
#'   history <- fit(model, train_ds, epochs = 10, validation_data = val_ds, verbose = 0)
#'   table(predicted = predict(model, val_ds, type = "class"),
#'         actual = val_ds$class_names[val_ds$labels + 1])
#' }
#' @export
#' @md
image_dataset_from_directory <- function(directory, labels = "inferred", label_mode = "int", class_names = NULL,
                                         color_mode = "rgb", batch_size = 32L, image_size = c(256L, 256L),
                                         shuffle = TRUE, seed = NULL, validation_split = NULL, subset = NULL,
                                         interpolation = "bilinear", follow_links = FALSE,
                                         crop_to_aspect_ratio = FALSE, pad_to_aspect_ratio = FALSE,
                                         data_format = NULL, verbose = TRUE, ..., workers = NULL,
                                         prefetch = "auto", cache = FALSE, on_bad_file = "error") {
  call <- sys.call()
  .check_no_dots(list(...), "image_dataset_from_directory()", "Its arguments are listed in ?image_dataset_from_directory.")
  directory <- .check_path(directory, "directory")
  if (!dir.exists(directory)) {
    .input_error("directory", sprintf("an existing folder (\"%s\" does not exist)", directory), directory)
  }
  if (!(identical(labels, "inferred") || is.null(labels) ||
        (is.numeric(labels) && !anyNA(labels) && all(labels >= 0) && all(labels == round(labels))))) {
    .input_error("labels", "\"inferred\", NULL, or whole numbers >= 0 (one per image file)", labels)
  }
  if (is.numeric(labels)) .warn_no_class_zero(labels, "labels", "image", call = sys.call())
  if (is.numeric(labels)) labels <- as.list(as.integer(labels))
  args <- .image_dataset_args(label_mode, class_names, color_mode, batch_size, image_size, shuffle, seed,
                              validation_split, subset, interpolation, crop_to_aspect_ratio, verbose, workers,
                              prefetch, cache, on_bad_file, call)
  args$pad_to_aspect_ratio <- .check_flag(pad_to_aspect_ratio, "pad_to_aspect_ratio", call = call)
  args$data_format <- .check_string(data_format, "data_format", "channels_last", null_ok = TRUE, call = call)
  args$follow_links <- .check_flag(follow_links, "follow_links")
  handles <- do.call(.images_call, c(list("from_directory", directory, labels = labels), args,
                                     list(.convert = FALSE, .call = call)), quote = TRUE)
  .image_datasets(handles, subset)
}

#' @rdname image_dataset_from_directory
#' @param dataframe A data.frame with a column of image paths and a column of labels.
#' @param x_col,y_col The names of those columns (`y_col = NULL`: no labels).
#' @export
#' @md
image_dataset_from_dataframe <- function(dataframe, directory = NULL, x_col = "filename", y_col = "class",
                                         label_mode = "int", class_names = NULL, color_mode = "rgb",
                                         batch_size = 32L, image_size = c(256L, 256L), shuffle = TRUE,
                                         seed = NULL, validation_split = NULL, subset = NULL,
                                         interpolation = "bilinear", crop_to_aspect_ratio = FALSE,
                                         pad_to_aspect_ratio = FALSE, data_format = NULL, verbose = TRUE, ...,
                                         workers = NULL, prefetch = "auto", cache = FALSE,
                                         on_bad_file = "error") {
  call <- sys.call()
  .check_no_dots(list(...), "image_dataset_from_dataframe()", "Its arguments are listed in ?image_dataset_from_dataframe.")
  if (!is.data.frame(dataframe) || nrow(dataframe) == 0L) {
    .input_error("dataframe", "a data.frame with at least one row", dataframe)
  }
  x_col <- .check_string(x_col, "x_col")
  if (!x_col %in% names(dataframe)) {
    .input_error("x_col", sprintf("a column of `dataframe` (%s)", paste(names(dataframe), collapse = ", ")), x_col)
  }
  paths <- as.character(dataframe[[x_col]])
  if (anyNA(paths)) .input_error(x_col, "a path in every row (no NA)", I(sprintf("%d NA", sum(is.na(paths)))))
  paths <- path.expand(paths)
  if (!is.null(directory)) {
    directory <- .check_path(directory, "directory")
    if (!dir.exists(directory)) .input_error("directory", "an existing folder or NULL", directory)
    paths <- file.path(directory, paths)
  }
  labels <- NULL
  if (!is.null(y_col) && !is.null(label_mode)) {
    y_col <- .check_string(y_col, "y_col")
    if (!y_col %in% names(dataframe)) {
      .input_error("y_col", sprintf("a column of `dataframe` (%s) or NULL", paste(names(dataframe), collapse = ", ")),
                   y_col)
    }
    if (identical(y_col, x_col)) .input_error("y_col", sprintf("a column other than x_col (\"%s\")", x_col), y_col)
    y <- dataframe[[y_col]]
    if (anyNA(y)) .input_error(y_col, "a label in every row (no NA)", I(sprintf("%d NA", sum(is.na(y)))))
    # factor() order when no class_names: the levels, or numbers numerically (as text "10" sorts before "2")
    if (is.factor(y) && is.null(class_names)) class_names <- levels(droplevels(y))
    if (is.numeric(y) && is.null(class_names)) class_names <- as.character(sort(unique(y)))
    labels <- as.list(as.character(y))
  }
  args <- .image_dataset_args(label_mode, class_names, color_mode, batch_size, image_size, shuffle, seed,
                              validation_split, subset, interpolation, crop_to_aspect_ratio, verbose, workers,
                              prefetch, cache, on_bad_file, call)
  args$pad_to_aspect_ratio <- .check_flag(pad_to_aspect_ratio, "pad_to_aspect_ratio", call = call)
  args$data_format <- .check_string(data_format, "data_format", "channels_last", null_ok = TRUE, call = call)
  args$x_col <- x_col
  if (!is.null(labels)) args$y_col <- y_col
  handles <- do.call(.images_call, c(list("from_dataframe", as.list(paths), labels), args,
                                     list(.convert = FALSE, .call = call)), quote = TRUE)
  .image_datasets(handles, subset)
}

# The arguments both constructors share, checked and converted to what Python takes (one long list of
# one-line checks: split, it would only pass the same arguments along twice).
.image_dataset_args <- function(label_mode, class_names, color_mode, batch_size, image_size, shuffle, seed,
                                validation_split, subset, interpolation, crop_to_aspect_ratio, verbose,
                                workers, prefetch, cache, on_bad_file, call) {
  if (!is.null(label_mode)) {
    label_mode <- .check_string(label_mode, "label_mode", c("int", "categorical", "binary"), call = call)
  }
  if (!is.null(class_names) && !(is.character(class_names) && length(class_names) >= 1L && !anyNA(class_names))) {
    .input_error("class_names", "NULL or a character vector of class names", class_names, call = call)
  }
  size <- image_size
  if (!(is.numeric(size) && length(size) == 2L && !anyNA(size) && all(size >= 1) && all(size == round(size)))) {
    .input_error("image_size", "c(height, width): two whole numbers >= 1", image_size, call = call)
  }
  if (!is.null(validation_split)) validation_split <- .check_number(validation_split, "validation_split", 0, 1, call = call)
  if (!is.null(validation_split) && (validation_split <= 0 || validation_split >= 1)) {
    .input_error("validation_split", "NULL or a fraction strictly between 0 and 1", validation_split, call = call)
  }
  if (!is.null(subset)) subset <- .check_string(subset, "subset", c("training", "validation", "both"), call = call)
  if (is.null(subset) != is.null(validation_split)) {
    .input_error(if (is.null(subset)) "subset" else "validation_split",
                 sprintf("given together with `%s` (both or neither)", if (is.null(subset)) "validation_split" else "subset"),
                 if (is.null(subset)) subset else validation_split, call = call)
  }
  shuffle <- .check_flag(shuffle, "shuffle", call = call)
  seed <- .check_count(seed, "seed", min = 0L, null_ok = TRUE, call = call)
  if (!is.null(validation_split) && shuffle && is.null(seed)) {
    .input_error("seed", "a whole number when `validation_split` is used with `shuffle = TRUE` (so the two subsets do not overlap)",
                 seed, call = call)
  }
  if (!(identical(prefetch, "auto") || (is.numeric(prefetch) && length(prefetch) == 1L && !is.na(prefetch) &&
                                        prefetch >= 1 && prefetch == round(prefetch)))) {
    .input_error("prefetch", "\"auto\" or a whole number of batches >= 1", prefetch, call = call)
  }
  if (!(isTRUE(cache) || isFALSE(cache) || (is.character(cache) && length(cache) == 1L && !is.na(cache)))) {
    .input_error("cache", "FALSE, TRUE or a file path", cache, call = call)
  }
  list(
    label_mode = label_mode,
    class_names = if (is.null(class_names)) NULL else as.list(class_names),
    color_mode = .check_string(color_mode, "color_mode", c("rgb", "grayscale", "rgba"), call = call),
    batch_size = .check_count(batch_size, "batch_size", call = call),
    image_size = as.list(as.integer(size)),
    shuffle = shuffle, seed = seed, validation_split = validation_split, subset = subset,
    interpolation = .check_string(interpolation, "interpolation",
                                  c("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5"), call = call),
    crop_to_aspect_ratio = .check_flag(crop_to_aspect_ratio, "crop_to_aspect_ratio", call = call),
    verbose = .check_flag(verbose, "verbose", call = call),
    workers = .check_count(workers, "workers", min = 0L, null_ok = TRUE, call = call),
    prefetch = if (identical(prefetch, "auto")) "auto" else as.integer(prefetch),
    cache = cache,
    on_bad_file = .check_string(on_bad_file, "on_bad_file", c("error", "skip"), call = call)
  )
}

# Python dataset handles as pydlr_image_dataset objects (a list of two for subset = "both").
.image_datasets <- function(handles, subset) {
  n <- reticulate::py_len(handles)
  made <- lapply(seq_len(n) - 1L, function(i) .new_image_dataset(reticulate::py_get_item(handles, i)))
  if (identical(subset, "both")) stats::setNames(made, c("training", "validation")) else made[[1]]
}

.new_image_dataset <- function(py) {
  info <- .images_call("info", py)
  structure(list(py = py, class_names = unlist(info$class_names), info = info), class = "pydlr_image_dataset")
}

#' @export
length.pydlr_image_dataset <- function(x) as.integer(x$info$batches)

# `$file_paths` and `$labels` are read from Python when asked for (a folder may hold 200,000 files).
#' @export
`$.pydlr_image_dataset` <- function(x, name) {
  if (name %in% c("file_paths", "labels")) {
    files <- .images_call("files", .subset2(x, "py"))
    return(if (is.null(files[[name]])) NULL else as.vector(unlist(files[[name]])))
  }
  .subset2(x, name)
}

#' @export
print.pydlr_image_dataset <- function(x, ...) {
  info <- .images_call("info", x$py) # fresh: skipped files are counted as the dataset is read
  shape <- paste(unlist(info$image_shape), collapse = " x ")
  cat(sprintf("<pydlr image dataset> %s %s, %d %s of %d, images %s, label_mode %s\n",
              format(info$num_files, big.mark = ","), if (info$num_files == 1L) "file" else "files",
              info$batches, if (info$batches == 1L) "batch" else "batches", info$batch_size, shape,
              if (is.null(info$label_mode)) "NULL" else sprintf("\"%s\"", info$label_mode)))
  if (length(info$class_names)) {
    counts <- stats::setNames(unlist(info$counts), unlist(info$class_names))
    print(counts)
  }
  if (info$ignored > 0) cat(sprintf("(%d non-image file(s) ignored)\n", info$ignored))
  bad <- unique(unlist(info$bad_files)) # a file is skipped again at every pass: count files, not skips
  if (length(bad)) cat(sprintf("(%d unreadable file(s) skipped)\n", length(bad)))
  invisible(x)
}

# An R warning for the unreadable files skipped since `before` of them had been counted (the API leaves
# out Python's warning per file, which would print beside it in Python's words).
.warn_skipped <- function(dataset, before, call = sys.call(-1L)) {
  bad <- unlist(.images_call("info", dataset$py)$bad_files)
  if (length(bad) > before) {
    new <- bad[(before + 1L):length(bad)]
    warning(warningCondition(sprintf("skipped %d unreadable image file(s) (on_bad_file = \"skip\"): %s",
      length(new), paste(utils::head(new, 5), collapse = ", ")), class = "pydlr_warning", call = call))
  }
  invisible(bad)
}

#' The first batch of an image dataset, as R arrays
#'
#' For a look at what the model will see: `images` is `batch_size x height x width x channels` (values
#' 0-255), `labels` the batch's labels as the dataset's `label_mode` gives them (0-based class indices for
#' `"int"`).
#' @param dataset A `pydlr_image_dataset`.
#' @return `list(images, labels)` (`labels` is `NULL` without labels).
#' @family datasets
#' @examples
#' # drawn from the folder of image_dataset_from_directory()'s example:
#' # example(image_dataset_from_directory, package = "pydlr"); str(image_dataset_batch(train_ds))
#' @export
#' @md
image_dataset_batch <- function(dataset) {
  if (!inherits(dataset, "pydlr_image_dataset")) {
    .input_error("dataset", "a pydlr image dataset (from image_dataset_from_directory())", dataset)
  }
  skipped <- length(.images_call("info", dataset$py)$bad_files)
  res <- .images_call("first_batch", dataset$py, .convert = FALSE)
  .warn_skipped(dataset, skipped)
  get <- function(key) .bridge_from_py(reticulate::py_get_item(res, key))
  labels <- if (reticulate::py_to_r(res$`__contains__`("labels"))) get("labels") else NULL
  if (!is.null(labels) && length(dim(labels)) == 1L) dim(labels) <- NULL
  list(images = get("images"), labels = labels)
}

# fit(), evaluate() and predict() on an image dataset: the labels and the batch size come with the dataset;
# validation_data is a dataset too. Called by the methods in fit.R when `x` is a pydlr_image_dataset.
# .fit_image_dataset is fit.pydlr_model's argument list checked one line each, hence its length.
.fit_image_dataset <- function(object, x, y = NULL, batch_size = NULL, epochs = 10L, verbose = "auto",
                               callbacks = NULL, validation_split = 0, validation_data = NULL, shuffle = TRUE,
                               class_weight = NULL, initial_epoch = 1L, steps_per_epoch = NULL, seed = NULL,
                               resume = NULL, device = "auto", augment = NULL, workers = 0L,
                               view_metrics = FALSE, validation_steps = NULL, validation_freq = 1L,
                               distributed = NULL, ..., call = sys.call(-1L)) {
  array_only <- list(...)[intersect(names(list(...)), c("sample_weight", "validation_batch_size", "precision", "nan_check"))]
  for (arg in names(array_only)) {
    .input_error(arg, paste0("left out when x is an image dataset (fit() takes it with arrays)",
      if (arg == "sample_weight") "; weigh the classes with class_weight" else ""), array_only[[arg]], call = call)
  }
  .check_no_dots(list(...), "fit()", "pydlr's fit() arguments are listed in ?fit.", call = call)
  if (!is.null(y)) .input_error("y", "NULL when x is an image dataset (its labels are used)", y, call = call)
  if (!is.null(batch_size)) {
    .input_error("batch_size", "NULL when x is an image dataset (set it in image_dataset_from_directory())",
                 batch_size, call = call)
  }
  if (!identical(validation_split, 0)) {
    .input_error("validation_split", "0 when x is an image dataset (use validation_split and subset in image_dataset_from_directory())",
                 validation_split, call = call)
  }
  if (!is.null(validation_data) && !inherits(validation_data, "pydlr_image_dataset")) {
    .input_error("validation_data", "an image dataset when x is one (image_dataset_from_directory(..., subset = \"validation\"))",
                 validation_data, call = call)
  }
  if (!is.null(augment) && !inherits(augment, "pydlr_augmentation")) {
    .input_error("augment", "NULL or an augmentation(...)", augment, call = call)
  }
  freq <- validation_freq
  ok_freq <- is.numeric(freq) && length(freq) >= 1L && !anyNA(freq) && all(freq >= 1) && all(freq == round(freq))
  if (!ok_freq) .input_error("validation_freq", "a whole number >= 1, or a vector of epochs", freq, call = call)
  epochs <- .check_count(epochs, "epochs", call = call)
  initial_epoch <- .check_count(initial_epoch, "initial_epoch", call = call)
  if (initial_epoch > epochs) .input_error("initial_epoch", sprintf("at most epochs (%d)", epochs), initial_epoch, call = call)
  skipped <- length(.images_call("info", x$py)$bad_files)
  args <- list(
    epochs = epochs,
    steps_per_epoch = .check_count(steps_per_epoch, "steps_per_epoch", null_ok = TRUE, call = call),
    validation_data = if (is.null(validation_data)) NULL else validation_data$py,
    validation_steps = .check_count(validation_steps, "validation_steps", null_ok = TRUE, call = call),
    validation_freq = if (length(freq) == 1L) as.integer(freq) else as.list(as.integer(freq)),
    shuffle = .check_flag(shuffle, "shuffle", call = call),
    class_weight = .check_class_weight(class_weight, x$class_names, call = call),
    initial_epoch = initial_epoch - 1L,
    callbacks = .py_callbacks(callbacks, call = call),
    verbose = .check_verbose(verbose, call = call),
    seed = .check_count(seed, "seed", min = 0L, null_ok = TRUE, call = call),
    resume = .check_path(resume, "resume", null_ok = TRUE, call = call),
    device = .check_string(device, "device", call = call),
    print_fn = .r_callable(.console_print),
    dynamic_progress = .dynamic_progress(),
    augment = if (is.null(augment)) NULL else unclass(augment),
    # each process rebuilds the dataset from its files and reads its own shard of them
    distributed = .check_distributed(distributed, callbacks, call = call)
  )
  result <- do.call(.images_call, c(list("fit", object$py, x$py), args, list(.call = call)), quote = TRUE)
  object$state$levels <- if (length(x$class_names)) x$class_names # what predict(type = "class") returns
  .warn_skipped(x, skipped, call = call)
  invisible(.new_history(result))
}

.evaluate_image_dataset <- function(object, x, y = NULL, call = sys.call(-1L)) {
  if (!is.null(y)) .input_error("y", "NULL when x is an image dataset (its labels are used)", y, call = call)
  skipped <- length(.images_call("info", x$py)$bad_files)
  result <- lapply(.images_call("evaluate", object$py, x$py, .call = call), as.numeric)
  .warn_skipped(x, skipped, call = call)
  result
}

# Outputs in the dataset's file order (NA rows for files skipped as unreadable); classes as a factor of the class names the model was trained on
# (output k is the training set's class k, whatever folders this dataset has), else the dataset's.
.predict_image_dataset <- function(object, x, type, call = sys.call(-1L)) {
  fun <- if (type == "class") "predict_classes" else "predict"
  skipped <- length(.images_call("info", x$py)$bad_files)
  out <- .bridge_from_py(.images_call(fun, object$py, x$py, .convert = FALSE, .call = call), call = call)
  .warn_skipped(x, skipped, call = call)
  levels <- object$state$levels
  if (is.null(levels) && length(x$class_names)) levels <- x$class_names
  if (type == "class") .as_classes(out, levels) else .with_class_columns(out, levels)
}
