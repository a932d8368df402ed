# Seeing inside the black box from R: first-layer filters, feature maps, Grad-CAM heatmaps, the confusion
# matrix and the worst predictions, computed by pydlr.interpret (through pydlr.api_r.interpret) and drawn
# as ggplot objects (ggplots.R) when ggplot2 is installed, else with base graphics.

#' Convolution filters of a model
#'
#' The kernels of a convolution layer (by default the first one). First-layer kernels look at pixels
#' directly, so drawn as images they show what the network looks for first: edges, colours, blobs.
#' A deeper layer's kernels span many input channels (the feature maps before it) and are not images:
#' they are drawn as one grey tile per (filter, input channel), a row per filter and a column per input
#' channel, each filter's tiles on one common scale so its channels can be compared (a mean over channels
#' would let weights of opposite signs cancel out).
#'
#' @param model A `pydlr_model`.
#' @param layer A layer name (as in `summary()`) or module path (e.g. `"features.0.0"`); `NULL` for the
#'   first convolution.
#' @param grid `TRUE`: one image (values in `[0, 1]`) tiling the kernels: `height x width x 3` (or `x 1`)
#'   for kernels over colour (grey) images, each scaled on its own; `height x width x 1` with a row per
#'   filter and a column per input channel for any other number of input channels. `FALSE`: the raw
#'   kernels `filters x kh x kw x in_channels`.
#' @return A numeric array.
#' @family interpretation
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   dim(get_filters(model, grid = FALSE))
#'   plot_filters(model)
#' }
get_filters <- function(model, layer = NULL, grid = TRUE) {
  .check_model(model, "model")
  .py_array("api_r.interpret.filters", model$py, layer = .check_string(layer, "layer", null_ok = TRUE),
    grid = .check_flag(grid, "grid"))
}

#' @rdname get_filters
#' @return `plot_filters()`: a ggplot object (ggplot2 installed, see [plot.pydlr_history()]); with base
#'   graphics the grid, invisibly, after drawing it.
#' @md
#' @export
plot_filters <- function(model, layer = NULL) {
  grid <- get_filters(model, layer = layer, grid = TRUE)
  shape <- dim(get_filters(model, layer = layer, grid = FALSE))
  title <- if (is.null(layer)) "First-layer filters" else sprintf("Filters of %s", layer)
  caption <- if (!shape[4] %in% c(1L, 3L)) sprintf("rows: %d filters, columns: %d input channels", shape[1], shape[4])
  if (.use_ggplot()) return(.gg_filters(grid, title, caption))
  .draw_image(grid, main = title)
  if (!is.null(caption)) graphics::mtext(caption, side = 1, line = 0.5)
  invisible(grid)
}

#' Feature maps of a layer
#'
#' @param model A `pydlr_model`.
#' @param x Inputs as for [predict()], e.g. preprocessed images `n x height x width x channels`.
#' @param layer A layer name or module path (e.g. `"features.3"` in MobileNetV2).
#' @param preprocess `TRUE`: `x` are raw images (0-255 or `[0, 1]`, any size) put through the model's own
#'   preprocessing first (the ImageNet networks: [application_mobilenet_v2()], ...); an input error for a
#'   model without preprocessing of its own.
#' @return `get_activations()`: the layer's output for `x`, an array `n x h x w x channels` for
#'   convolutional layers.
#' @family interpretation
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   x <- array(runif(2 * 8 * 8), c(2, 8, 8, 1))
#'   dim(get_activations(model, x, layer = summary(model)$layer[1]))
#'   plot_activations(model, x, layer = summary(model)$layer[1], max_maps = 4)
#' }
get_activations <- function(model, x, layer, preprocess = FALSE) {
  .check_model(model, "model")
  x <- .check_data(x, "x")
  .py_array("api_r.interpret.activations", model$py, .bridge_array_to_py(x), .check_string(layer, "layer"),
    preprocess = .check_flag(preprocess, "preprocess"))
}

#' @rdname get_activations
#' @param max_maps At most this many feature maps are drawn.
#' @param index Which sample of `x` to show (1-based).
#' @return `plot_activations()`: a ggplot object (a facet per map; ggplot2 installed); with base graphics
#'   the sample's maps (`h x w x channels`), invisibly, after drawing them.
#' @md
#' @export
plot_activations <- function(model, x, layer, max_maps = 16L, index = 1L, preprocess = FALSE) {
  x <- .check_data(x, "x")
  index <- .check_count(index, "index")
  if (length(dim(x)) == 3L && isTRUE(preprocess)) dim(x) <- c(1L, dim(x)) # one raw photo h x w x 3
  if (index > dim(x)[1]) .input_error("index", sprintf("a sample of x (1..%d)", dim(x)[1]), index)
  one <- .take_sample(x, index)
  maps <- get_activations(model, one, layer, preprocess = preprocess)
  if (length(dim(maps)) != 4L) .input_error("layer", "a layer with a spatial output", layer)
  maps <- maps[1, , , , drop = FALSE]
  dim(maps) <- dim(maps)[-1]
  n <- min(.check_count(max_maps, "max_maps"), dim(maps)[3])
  if (.use_ggplot()) return(.gg_activations(maps[, , seq_len(n), drop = FALSE], layer))
  ncol <- ceiling(sqrt(n))
  old <- graphics::par(mfrow = c(ceiling(n / ncol), ncol), mar = c(0.2, 0.2, 1.2, 0.2))
  on.exit(graphics::par(old), add = TRUE)
  for (k in seq_len(n)) .draw_matrix(maps[, , k], main = as.character(k), col = grDevices::hcl.colors(64, "viridis"))
  invisible(maps)
}

#' Grad-CAM: where the evidence for a class lies
#'
#' Grad-CAM (Selvaraju et al. 2017) weights the feature maps of a convolutional layer by the average
#' gradient of the class score and keeps the positive part: a heatmap of the image regions that raise the
#' class, scaled to `[0, 1]` per image and resized to the input.
#'
#' @param model A `pydlr_model` ending in class scores (e.g. [application_mobilenet_v2()]).
#' @param x Preprocessed images `n x height x width x channels`.
#' @param class_index 0-based class per image (one for all, or one each); `NULL`: the predicted class.
#' @param layer A layer name or module path; `NULL`: the last layer with a spatial output.
#' @param preprocess `TRUE`: `x` are raw photos (e.g. `example_image("chelsea")`), put through the model's
#'   own preprocessing (the ImageNet networks); `plot_grad_cam()` then draws the heatmap over the original
#'   photo (the same centre crop).
#' @return `grad_cam()`: a numeric array `n x height x width`.
#' @family interpretation
#' @examples
#' if (pydlr:::.python_ready()) {
#' model <- application_mobilenet_v2()
#' x <- imagenet_preprocess_input(example_image("chelsea"))
#' plot_grad_cam(model, x, class_index = 285,
#'   image = imagenet_preprocess_input(example_image("chelsea"), normalize = FALSE))
#' }
#' @md
#' @export
grad_cam <- function(model, x, class_index = NULL, layer = NULL, preprocess = FALSE) {
  .check_model(model, "model")
  x <- .check_data(x, "x")
  preprocess <- .check_flag(preprocess, "preprocess")
  if (!is.null(class_index)) {
    ok <- is.numeric(class_index) && !anyNA(class_index) && all(class_index == round(class_index)) &&
      all(class_index >= 0) && length(class_index) %in% c(1L, dim(x)[1])
    if (!ok) .input_error("class_index", "0-based class numbers (one, or one per image)", class_index)
    class_index <- as.list(as.integer(class_index))
  }
  .py_array("api_r.interpret.grad_cam", model$py, .bridge_array_to_py(x), class_index = class_index,
    layer = .check_string(layer, "layer", null_ok = TRUE), preprocess = preprocess)
}

#' @rdname grad_cam
#' @param image What to draw under the heatmap: an image `height x width (x 3)` with values in `[0, 1]`
#'   or 0-255, or a batch of one `1 x height x width x 3` (e.g. `imagenet_preprocess_input(img, normalize =
#'   FALSE)`); default `x` rescaled.
#' @param alpha Opacity of the heatmap.
#' @param class_names Names of the model's classes (0-based class `i` is `class_names[i + 1]`) for the
#'   title; default: ImageNet's names for a model with 1000 outputs (e.g. [application_mobilenet_v2()]),
#'   else the class number.
#' @return `plot_grad_cam()`: a ggplot object (ggplot2 installed), or with base graphics the heatmap of
#'   the first image, invisibly, after drawing it over the image with a colour key; either has the
#'   attributes `class_index`, `class_name` and `probability` that say what it explains.
#' @md
#' @export
plot_grad_cam <- function(model, x, class_index = NULL, layer = NULL, image = NULL, alpha = 0.5,
                          class_names = NULL, preprocess = FALSE) {
  x <- .check_data(x, "x")
  if (.check_flag(preprocess, "preprocess")) {
    .check_model(model, "model")
    raw <- if (length(dim(x)) == 3L) array(x, c(1L, dim(x))) else .take_sample(x, 1L)
    x <- .py_array("api_r.interpret.model_input", model$py, .bridge_array_to_py(raw), TRUE)
    if (is.null(image)) image <- .py_array("api_r.interpret.original_image", .bridge_array_to_py(raw), dim(x)[2])
  }
  one <- .take_sample(x, 1L)
  heat <- grad_cam(model, one, class_index = class_index[1], layer = layer)
  heat <- matrix(heat, dim(heat)[2], dim(heat)[3])
  if (is.null(image)) image <- array(one, dim(one)[-1]) # x's image without its batch axis (grey: h x w)
  d <- dim(image)
  if (length(d) == 4L && d[1] == 1L) dim(image) <- d <- d[-1] # a batch of one, as preprocessing returns
  if (!is.numeric(image) || !length(d) %in% 2:3 || (length(d) == 3L && !d[3] %in% c(1L, 3L, 4L))) {
    .input_error("image", "an image height x width (x 3), or a batch of one 1 x height x width x 3", image)
  }
  alpha <- .check_number(alpha, "alpha", 0, 1)
  if (!is.null(class_names) && !is.character(class_names)) .input_error("class_names", "a character vector", class_names)
  explained <- .explained_class(model, one, class_index, class_names)
  title <- sprintf("Grad-CAM: %s, p = %.2f", explained$label, explained$probability)
  if (.use_ggplot()) {
    if (length(d) == 3L && d[3] == 1L) image <- matrix(image, d[1], d[2])
    p <- .gg_grad_cam(image, heat, alpha, title)
    return(structure(p, class_index = explained$index, class_name = explained$name,
      probability = explained$probability))
  }
  cols <- grDevices::adjustcolor(grDevices::hcl.colors(64, "YlOrRd", rev = TRUE), alpha.f = alpha)
  old <- graphics::par(mai = pmax(graphics::par("mai"), c(0, 0, 0, 1.1)))
  on.exit(graphics::par(old), add = TRUE)
  .draw_image(image, main = title)
  overlay <- matrix(cols[pmax(1L, ceiling(heat * 64))], nrow(heat), ncol(heat))
  graphics::rasterImage(grDevices::as.raster(overlay), 0, 0, 1, 1, interpolate = TRUE)
  .colour_key(cols, "evidence for the class (0-1)")
  invisible(structure(heat, class_index = explained$index, class_name = explained$name,
    probability = explained$probability))
}

# The class a Grad-CAM explains (given, else predicted), its probability and its name for the title.
.explained_class <- function(model, one, class_index, class_names) {
  scores <- predict(model, one)
  probs <- as.vector(scores[1, ])
  if (any(probs < 0) || abs(sum(probs) - 1) > 1e-3) probs <- exp(probs - max(probs)) / sum(exp(probs - max(probs)))
  index <- if (is.null(class_index)) which.max(probs) - 1L else as.integer(class_index[1])
  if (is.null(class_names) && length(probs) == 1000L) {
    decoded <- imagenet_decode_predictions(matrix(probs, nrow = 1L), top = 1000L)[[1]]
    class_names <- decoded$class_description[order(decoded$class_index)]
  }
  name <- if (index < length(class_names)) class_names[index + 1L] else NA_character_
  label <- if (is.na(name)) sprintf("class %d", index) else sprintf("%s (class %d)", name, index)
  list(index = index, name = name, probability = probs[index + 1L], label = label)
}

# A vertical colour key right of the image drawn in [0, 1] x [0, 1] user coordinates, from 0 (bottom) to 1 (top);
# placed in inches from the image's right edge, as the image's aspect ratio decides where that edge is.
.colour_key <- function(cols, label) {
  at_inch <- function(inches) graphics::grconvertX(graphics::grconvertX(1, "user", "inches") + inches, "inches", "user")
  x0 <- at_inch(0.2)
  x1 <- at_inch(0.4)
  graphics::rasterImage(grDevices::as.raster(matrix(rev(cols), ncol = 1L)), x0, 0, x1, 1, xpd = NA)
  graphics::rect(x0, 0, x1, 1, xpd = NA)
  graphics::text(x1, c(0, 0.5, 1), c("0", "0.5", "1"), pos = 4, cex = 0.8, xpd = NA)
  graphics::text(at_inch(0.85), 0.5, label, srt = 90, cex = 0.8, xpd = NA)
}

#' Confusion matrix
#'
#' Counts of each (actual, predicted) class pair, rows = actual, as scikit-learn and keras' tutorials.
#'
#' @param y_true Actual classes: 0-based integers or a factor.
#' @param y_pred Predicted classes (0-based integers, e.g. `predict(model, x, type = "class")`, or a
#'   factor), or a matrix of class scores (the largest per row is taken).
#' @param labels Class names for the dimnames (default: the factor levels, else `"0"`, `"1"`, ...).
#' @return A `table` with dimensions `actual` x `predicted` (use `as.data.frame()` for a long data.frame).
#' @family interpretation
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready()) {
#'   cm <- confusion_matrix(c(0, 1, 2, 2, 1), c(0, 2, 2, 2, 1), labels = c("a", "b", "c"))
#'   cm
#'   plot_confusion_matrix(cm)
#' }
confusion_matrix <- function(y_true, y_pred, labels = NULL) {
  if (is.factor(y_pred) && is.factor(y_true) && !identical(levels(y_pred), levels(y_true))) {
    # read by label as table() reads them (a class never predicted, levels in another order), on all the
    # classes either names: their codes alone would count one class as another
    classes <- union(levels(y_true), levels(y_pred))
    y_true <- factor(as.character(y_true), levels = classes)
    y_pred <- factor(as.character(y_pred), levels = classes)
  }
  if (is.null(labels) && is.factor(y_true)) labels <- levels(y_true)
  t <- .labels_0(y_true, "y_true")
  p <- if (is.matrix(y_pred) && ncol(y_pred) > 1L) max.col(.check_data(y_pred, "y_pred"), "first") - 1L else .labels_0(y_pred, "y_pred")
  if (length(t) != length(p)) .input_error("y_pred", sprintf("%d labels (as y_true)", length(t)), y_pred)
  .warn_one_based(t, p, "y_true", "y_pred")
  .warn_one_based(p, t, "y_pred", "y_true")
  k <- if (is.null(labels)) NULL else length(labels)
  cm <- .py_array("api_r.interpret.confusion_matrix", .bridge_array_to_py(t, "y_true"), .bridge_array_to_py(p, "y_pred"),
    num_classes = k)
  labels <- if (is.null(labels)) as.character(seq_len(nrow(cm)) - 1L) else as.character(labels)
  storage.mode(cm) <- "integer"
  dimnames(cm) <- list(actual = labels, predicted = labels)
  as.table(cm)
}

# 1-based classes beside 0-based ones (R's 1..10 against predict()'s 0..9) shift every class by one and add
# an empty row and column: warn, naming the fix, since the counts cannot say which side is meant.
.warn_one_based <- function(a, b, a_arg, b_arg, call = sys.call(sys.parent())) {
  if (length(a) && min(a) >= 1L && any(b == 0L) && max(a) == max(b) + 1L) {
    warning(warningCondition(sprintf(paste(
      "`%s` has no class 0 but `%s` has: classes are 0-based here (predict(type = \"class\") gives 0, 1, ...),",
      "so each of %s's classes was counted as the next one; pass %s - 1 for 1-based classes"),
      a_arg, b_arg, a_arg, a_arg), class = "pydlr_warning", call = call))
  }
}

#' @rdname confusion_matrix
#' @param cm A table from `confusion_matrix()`.
#' @param normalize Show row proportions instead of counts.
#' @return `plot_confusion_matrix()`: a ggplot object (ggplot2 installed), or with base graphics `cm`,
#'   invisibly, after drawing it. Long class names are wrapped at
#'   spaces and the margins grow to hold them whole (the text shrinks only when they would not fit the
#'   device), with the axis titles beyond them.
#' @md
#' @export
plot_confusion_matrix <- function(cm, normalize = FALSE) {
  if (!is.matrix(cm) || nrow(cm) != ncol(cm)) .input_error("cm", "a square table from confusion_matrix()", cm)
  if (.use_ggplot()) return(.gg_confusion(cm, isTRUE(normalize)))
  shown <- if (isTRUE(normalize)) cm / pmax(rowSums(cm), 1) else cm
  k <- nrow(cm)
  names <- if (is.null(rownames(cm))) as.character(seq_len(k) - 1L) else rownames(cm)
  lay <- .cm_layout(names)
  old <- graphics::par(mai = lay$mai)
  on.exit(graphics::par(old), add = TRUE)
  graphics::image(seq_len(k), seq_len(k), t(unclass(shown))[, k:1, drop = FALSE], col = grDevices::hcl.colors(32, "Blues", rev = TRUE),
    axes = FALSE, xlab = "", ylab = "", main = "Confusion matrix")
  graphics::axis(1, at = seq_len(k), labels = lay$names, las = 2, tick = FALSE, cex.axis = lay$cex)
  graphics::axis(2, at = seq_len(k), labels = rev(lay$names), las = 1, tick = FALSE, cex.axis = lay$cex)
  graphics::mtext("predicted", side = 1, line = lay$title_line)
  graphics::mtext("actual", side = 2, line = lay$title_line)
  text <- if (isTRUE(normalize)) sprintf("%.2f", shown) else as.character(cm)
  dark <- as.vector(t(unclass(shown))) > max(shown) / 2 # white text on the dark cells
  graphics::text(rep(seq_len(k), times = k), rep(k:1, each = k), labels = as.vector(t(matrix(text, k, k))),
    col = ifelse(dark, "white", "black"))
  invisible(cm)
}

# How plot_confusion_matrix() lays out the class names on the current device: names wrapped at spaces
# onto lines of 20 characters, text size `cex` (below 1 only when the widest name would take more than
# 40% of the device), margins `mai` (inches) holding the widest name plus its axis title, and the margin
# line `title_line` of the titles, beyond the names.
.cm_layout <- function(names) {
  wrapped <- vapply(names, function(n) paste(strwrap(n, 20), collapse = "\n"), "", USE.NAMES = FALSE)
  wrapped[!nzchar(wrapped)] <- names[!nzchar(wrapped)]
  widest <- max(graphics::strwidth(wrapped, units = "inches"))
  cex <- min(1, 0.4 * min(graphics::par("din")) / widest)
  line <- graphics::par("csi") # inches per margin line
  names_lines <- graphics::par("mgp")[2] + cex * widest / line # from the axis to the far end of the names
  margin <- (names_lines + 2) * line
  list(names = wrapped, cex = cex, mai = c(margin, margin, 2 * line, 0.5 * line), title_line = names_lines + 0.8)
}

#' The samples a model gets most wrong
#'
#' fastai's `top_losses()`: the samples with the largest cross-entropy, worst first. Looking at them
#' often shows mislabeled data or what the model has not learned.
#'
#' @param model A `pydlr_model` with class-probability outputs.
#' @param x,y Inputs and 0-based labels (or a factor, read by its labels on the levels the model was
#'   trained on).
#' @param k How many samples.
#' @return A data.frame: `index` (1-based row of `x`), `loss`, `actual`, `predicted`, `probability` (of
#'   the predicted class), `probability_actual` (of the actual class).
#' @family interpretation
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
#'     layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_flatten() |>
#'     layer_dense(units = 3, activation = "softmax")
#'   compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
#'   set.seed(1)
#'   x <- array(runif(60 * 8 * 8), c(60, 8, 8, 1))
#'   y <- sample(0:2, 60, replace = TRUE)
#'   history <- fit(model, x, y, epochs = 2, batch_size = 16, verbose = 0)
#'   top_losses(model, x, y, k = 3)
#' }
top_losses <- function(model, x, y, k = 9L) {
  .check_model(model, "model")
  x <- .check_data(x, "x")
  y <- .labels_0(.on_levels(y, if (is_pydlr_model(model)) model$state$levels), "y")
  if (length(y) != dim(x)[1]) .input_error("y", sprintf("one label per sample of x (%d)", dim(x)[1]), y)
  res <- .py_call("api_r.interpret.top_losses", model$py, .bridge_array_to_py(x), .bridge_array_to_py(y, "y"),
    k = .check_count(k, "k"))
  data.frame(index = as.integer(unlist(res$index)) + 1L, loss = as.numeric(unlist(res$loss)),
    actual = as.integer(unlist(res$actual)), predicted = as.integer(unlist(res$predicted)),
    probability = as.numeric(unlist(res$probability)), probability_actual = as.numeric(unlist(res$probability_actual)))
}

#' @rdname top_losses
#' @param class_names Names of the classes (0-based class `i` is `class_names[i + 1]`) for the titles;
#'   default the class numbers.
#' @param images What to draw for each sample (default `x`), e.g. the unscaled pixels: one image per row
#'   of `x`.
#' @return `plot_top_losses()`: fastai's plot, each image titled "predicted / actual" and "loss /
#'   probability of the actual class": a ggplot object (ggplot2 installed), or with base graphics the
#'   `top_losses()` data.frame, invisibly, after drawing it.
#' @md
#' @export
plot_top_losses <- function(model, x, y, k = 9L, class_names = NULL, images = NULL) {
  x <- .check_data(x, "x")
  top <- top_losses(model, x, y, k = k)
  if (is.null(images)) images <- x
  if (!is.numeric(images) || length(dim(images)) < 3L || dim(images)[1] != dim(x)[1]) {
    .input_error("images", sprintf("one image per sample of x (an array with %d rows)", dim(x)[1]), images)
  }
  if (!is.null(class_names) && !is.character(class_names)) .input_error("class_names", "a character vector", class_names)
  name <- function(i) if (!is.null(class_names) && i < length(class_names)) class_names[i + 1L] else as.character(i)
  titles <- sprintf("%s / %s\n%.2f / %.2f", vapply(top$predicted, name, ""), vapply(top$actual, name, ""),
    top$loss, top$probability_actual)
  main <- "Top losses: predicted / actual, loss / probability of the actual class"
  pictures <- lapply(top$index, function(i) {
    img <- .take_sample(images, i)
    dim(img) <- dim(img)[-1]
    img
  })
  if (.use_ggplot()) return(.gg_image_panels(pictures, titles, main))
  n <- length(pictures)
  ncol <- ceiling(sqrt(n))
  old <- graphics::par(mfrow = c(ceiling(n / ncol), ncol), mar = c(0.2, 0.2, 2.2, 0.2), oma = c(0, 0, 2, 0))
  on.exit(graphics::par(old), add = TRUE)
  for (i in seq_len(n)) .draw_image(pictures[[i]], main = titles[i])
  graphics::mtext(main, outer = TRUE, line = 0.5)
  invisible(top)
}

#' Filter patterns: the input each filter responds to most
#'
#' Chollet's view of what convolution filters detect ("Deep Learning with Python", the convnet chapter):
#' starting from noise, gradient ascent on the input raises the mean activation of one filter; the image
#' it ends at is the filter's pattern. Patterns stay within the inputs the model's preprocessing can make
#' (`[0, 1]` pixels, or ImageNet-normalized ones for [application_mobilenet_v2()]).
#'
#' @param model A `pydlr_model` taking images (pretrained ones included).
#' @param layer A layer with feature maps: a layer name (as in `summary()`) or module path (e.g.
#'   `"features.6"` in MobileNetV2).
#' @param filters 0-based filter numbers (as `class_index`); `NULL`: the first 16.
#' @param steps Gradient-ascent steps.
#' @param learning_rate Step per pixel as a share of the input's range (each step moves the image by it
#'   along the gradient scaled to unit root-mean-square); `NULL`: 0.05.
#' @param size Side of the square patterns in pixels; `NULL`: the model's input size.
#' @return `filter_patterns()`: an array `filters x height x width x channels` in the model's input space.
#' @family interpretation
#' @md
#' @export
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- pretrained_model("seed_cnn_mnist")
#'   patterns <- filter_patterns(model, summary(model)$layer[3], filters = 0:3, steps = 10)
#'   dim(patterns)
#'   plot_filter_patterns(model, summary(model)$layer[3], filters = 0:3, steps = 10)
#' }
filter_patterns <- function(model, layer, filters = NULL, steps = 30L, learning_rate = NULL, size = NULL) {
  .check_model(model, "model")
  if (!is.null(filters)) {
    ok <- is.numeric(filters) && length(filters) >= 1L && !anyNA(filters) && all(filters == round(filters)) &&
      all(filters >= 0)
    if (!ok) .input_error("filters", "0-based filter numbers (whole numbers >= 0)", filters)
    filters <- as.list(as.integer(filters))
  }
  .py_array("api_r.interpret.filter_patterns", model$py, .check_string(layer, "layer"), filters = filters,
    steps = .check_count(steps, "steps"), learning_rate = .check_number(learning_rate, "learning_rate", 0, 10, null_ok = TRUE),
    size = .check_count(size, "size", min = 8L, null_ok = TRUE))
}

#' @rdname filter_patterns
#' @return `plot_filter_patterns()`: the patterns as one grid (each tile scaled to its own range, filters
#'   left to right, top to bottom): a ggplot object (ggplot2 installed), or with base graphics the
#'   patterns, invisibly, after drawing them.
#' @md
#' @export
plot_filter_patterns <- function(model, layer, filters = NULL, steps = 30L, learning_rate = NULL, size = NULL) {
  patterns <- filter_patterns(model, layer, filters = filters, steps = steps, learning_rate = learning_rate, size = size)
  grid <- .py_array("api_r.interpret.filter_patterns_grid", model$py, .bridge_array_to_py(patterns, "patterns"))
  shown <- if (is.null(filters)) seq_len(dim(patterns)[1]) - 1L else as.integer(filters)
  title <- sprintf("Filter patterns of %s", layer)
  caption <- sprintf("filters %s (left to right, top to bottom)", paste(shown, collapse = ", "))
  if (.use_ggplot()) return(.gg_filters(grid, title, caption))
  .draw_image(grid, main = title)
  graphics::mtext(caption, side = 1, line = 0.5)
  invisible(patterns)
}

# ---- helpers ---------------------------------------------------------------------------------------

# 0-based integer labels from integers or a factor, with a 1-d dim so the bridge sends one buffer.
.labels_0 <- function(y, arg, call = sys.call(sys.parent())) {
  if (is.factor(y)) y <- as.integer(y) - 1L
  ok <- is.numeric(y) && is.null(dim(y)) || (is.array(y) && length(dim(y)) == 1L)
  if (!ok || length(y) < 1L || anyNA(y) || any(y < 0) || any(y != round(y))) {
    .input_error(arg, "0-based whole-number class labels (or a factor)", y, call = call)
  }
  y <- as.integer(y)
  dim(y) <- length(y)
  y
}

# Sample i of an array, keeping the samples axis.
.take_sample <- function(x, i) {
  idx <- c(list(x, i), rep(list(TRUE), length(dim(x)) - 1L), list(drop = FALSE))
  do.call(`[`, idx)
}

# An image (h x w grey or h x w x 3) scaled to [0, 1] and drawn upright with its aspect ratio.
.draw_image <- function(img, main = NULL) {
  img <- unclass(img)
  storage.mode(img) <- "double"
  if (length(dim(img)) == 3L && dim(img)[3] == 1L) img <- img[, , 1]
  rng <- range(img)
  img <- if (diff(rng) > 0) (img - rng[1]) / diff(rng) else img * 0
  graphics::plot.new()
  graphics::plot.window(c(0, 1), c(0, 1), asp = nrow(img) / ncol(img))
  graphics::rasterImage(grDevices::as.raster(img), 0, 0, 1, 1, interpolate = FALSE)
  if (!is.null(main)) graphics::title(main)
}

# A matrix drawn with image(), row 1 at the top.
.draw_matrix <- function(m, main = NULL, col = grDevices::hcl.colors(64, "viridis")) {
  graphics::image(t(m[nrow(m):1, , drop = FALSE]), col = col, axes = FALSE, main = main, asp = nrow(m) / ncol(m))
}

#' Plot a model's layers
#'
#' keras3's `plot()` of a model: a diagram of its layers and their connections (`plot_model()` in Keras),
#' drawn by matplotlib in Python (no Graphviz needed), shown on the current graphics device or written to
#' `to_file`.
#'
#' @param x A `pydlr_model`.
#' @param y Not used.
#' @param show_shapes,show_dtype,show_layer_names,show_layer_activations,show_trainable What each box
#'   shows besides the layer's type: output shapes, the dtype, layer names, activations, trainability.
#' @param ... Nothing else: an error names any other argument.
#' @param rankdir `"TB"` (top to bottom) or `"LR"` (left to right).
#' @param expand_nested Draw a nested model as one box.
#' @param dpi Resolution of a `.png` file.
#' @param to_file `NULL` (default): draw on the current device; or a `.png`, `.pdf` or `.svg` file to write.
#' @return `x` invisibly; with `to_file`, the file's path invisibly.
#' @family interpretation
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- keras_model_sequential(input_shape = c(28, 28, 1)) |>
#'     layer_conv_2d(filters = 32, kernel_size = c(3, 3), activation = "relu") |>
#'     layer_max_pooling_2d(pool_size = c(2, 2)) |>
#'     layer_flatten() |>
#'     layer_dense(units = 10, activation = "softmax")
#'   plot(model, show_shapes = TRUE)
#' }
plot.pydlr_model <- function(x, y, show_shapes = FALSE, show_dtype = FALSE, show_layer_names = FALSE, ...,
                             rankdir = "TB", expand_nested = FALSE, dpi = 200, show_layer_activations = FALSE,
                             show_trainable = FALSE, to_file = NULL) {
  call <- sys.call()
  .check_no_dots(list(...), "plot()", paste("plot() of a model takes show_shapes, show_dtype, show_layer_names,",
    "rankdir, expand_nested, dpi, show_layer_activations, show_trainable, to_file."))
  file <- if (is.null(to_file)) tempfile(fileext = ".png") else path.expand(.check_string(to_file, "to_file", call = call))
  .py_call("api_r.interpret.plot_model", x$py, file, show_shapes = .check_flag(show_shapes, "show_shapes", call),
    show_dtype = .check_flag(show_dtype, "show_dtype", call),
    show_layer_names = .check_flag(show_layer_names, "show_layer_names", call),
    expand_nested = .check_flag(expand_nested, "expand_nested", call),
    show_layer_activations = .check_flag(show_layer_activations, "show_layer_activations", call),
    show_trainable = .check_flag(show_trainable, "show_trainable", call),
    rankdir = toupper(.check_string(rankdir, "rankdir", c("tb", "lr"), call = call)),
    dpi = .check_count(dpi, "dpi", call = call), .call = call)
  if (!is.null(to_file)) return(invisible(file))
  on.exit(unlink(file), add = TRUE)
  op <- graphics::par(mar = c(0, 0, 0, 0))
  on.exit(graphics::par(op), add = TRUE)
  .draw_image(image_load(file))
  invisible(x)
}
