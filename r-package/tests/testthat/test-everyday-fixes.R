# Regression tests for defects a new user meets in the first hour (one block per defect).

test_that("keras' HDF5 names are refused with the safetensors name to write instead", {
  model <- keras_model_sequential(input_shape = 3) |> layer_dense(units = 2)
  dir <- withr::local_tempdir()
  err <- expect_error(save_model(model, file.path(dir, "m.h5")), class = "pydlr_input_error")
  expect_match(conditionMessage(err), "never HDF5", fixed = TRUE)
  expect_match(conditionMessage(err), "save_model(model, \"m.safetensors\")", fixed = TRUE)
  err <- expect_error(save_model_weights(model, file.path(dir, "w.weights.h5")), class = "pydlr_input_error")
  expect_match(conditionMessage(err), "save_model_weights(model, \"w.weights.safetensors\")", fixed = TRUE)
  expect_length(list.files(dir, all.files = TRUE, no.. = TRUE), 0)
  expect_error(load_model(file.path(dir, "m.h5")), "load_model\\(\"m.safetensors\"\\)", class = "pydlr_input_error")
  expect_error(load_model_weights(model, file.path(dir, "w.weights.h5")), "never HDF5", class = "pydlr_input_error")
})

test_that("fine_tune(seed = 0) gives the same run twice in one session", {
  set.seed(1)
  x <- array(runif(16 * 32 * 32 * 3, -1, 1), c(16L, 32L, 32L, 3L))
  y <- rep(0:1, 8)
  run <- function() {
    base <- application_mobilenet_v2(include_top = FALSE, input_shape = c(32, 32, 3))
    model <- fine_tune(base, list(x, y), epochs = 1, freeze_epochs = 1, batch_size = 8, seed = 0)
    list(history = attr(model, "fine_tune_history"), probs = predict(model, x))
  }
  first <- run()
  second <- run()
  expect_identical(first$history$loss, second$history$loss)
  expect_identical(first$probs, second$probs)
})

test_that("plot_filters() draws a deeper convolution (more than 3 input channels)", {
  withr::local_options(pydlr.plot_engine = "base") # the base-graphics fallback
  model <- keras_model_sequential(input_shape = c(12, 12, 1)) |>
    layer_conv_2d(filters = 6, kernel_size = 3, name = "first") |>
    layer_conv_2d(filters = 4, kernel_size = 3, name = "second")
  raw <- get_filters(model, layer = "second", grid = FALSE)
  expect_equal(dim(raw), c(4L, 3L, 3L, 6L))
  grid <- get_filters(model, layer = "second")
  expect_equal(dim(grid), c(4L * 4L - 1L, 6L * 4L - 1L, 1L)) # a row per filter, a column per channel
  k <- raw[3, , , ] # filter 3, tile of channel 5, on filter 3's common scale
  expect_equal(grid[9:11, 17:19, 1], (k[, , 5] - min(k)) / (max(k) - min(k)), tolerance = 1e-6)
  file <- withr::local_tempfile(fileext = ".png")
  grDevices::png(file)
  drawn <- plot_filters(model, layer = "second")
  grDevices::dev.off()
  expect_identical(drawn, grid)
  expect_gt(file.size(file), 1000)
})

test_that("the ?grad_cam example runs as written", {
  file <- withr::local_tempfile(fileext = ".png")
  grDevices::png(file)
  on.exit(grDevices::dev.off(), add = TRUE)
  expect_no_error(utils::example("grad_cam", package = "pydlr", run.dontrun = TRUE, echo = FALSE,
    lib.loc = dirname(find.package("pydlr"))))
})

test_that("callback_model_checkpoint() formats keras' log placeholders and refuses .weights.h5", {
  dir <- withr::local_tempdir()
  set.seed(2)
  x <- matrix(runif(64 * 4), 64, 4)
  y <- as.integer(x[, 1] > 0.5)
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = "softmax")
  compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy")
  cb <- callback_model_checkpoint(file.path(dir, "ckpt_{epoch:02d}_{val_loss:.3f}.weights.safetensors"),
    save_weights_only = TRUE)
  history <- fit(model, x, y, epochs = 2, validation_split = 0.25, verbose = 0, callbacks = list(cb))
  val_loss <- as.data.frame(history)$val_loss
  expect_setequal(list.files(dir), sprintf("ckpt_%02d_%.3f.weights.safetensors", 1:2, val_loss))
  err <- expect_error(callback_model_checkpoint(file.path(dir, "ckpt_{epoch:02d}.weights.h5")),
    class = "pydlr_input_error")
  expect_match(conditionMessage(err), "callback_model_checkpoint(\"ckpt_{epoch:02d}.weights.safetensors\")", fixed = TRUE)
})

# Every string drawn on the current device (its display list must be enabled).
drawn_text <- function() {
  entries <- grDevices::recordPlot()[[1]]
  unname(unlist(lapply(entries, function(e) Filter(is.character, unlist(e[[2]], recursive = TRUE)))))
}

test_that("plot_confusion_matrix() keeps long class names whole, with the axis titles beyond them", {
  withr::local_options(pydlr.plot_engine = "base") # the base-graphics fallback
  names <- c("a rather long class name that goes on and on", "short", "another fairly long class name here")
  cm <- confusion_matrix(factor(c(1, 2, 3, 1, 2), labels = names), c(0L, 1L, 2L, 2L, 1L))
  file <- withr::local_tempfile(fileext = ".png")
  grDevices::png(file, width = 600, height = 600)
  grDevices::dev.control("enable")
  lay <- pydlr:::.cm_layout(names)
  expect_equal(gsub("\n", " ", lay$names), names) # wrapped at spaces, nothing cut
  widest <- max(graphics::strwidth(lay$names, units = "inches", cex = lay$cex))
  line <- graphics::par("csi")
  names_end <- graphics::par("mgp")[2] + widest / line # margin lines the names take
  expect_gt(lay$title_line, names_end + 0.5) # the axis titles start beyond the names
  expect_gt(lay$mai[1] / line, lay$title_line + 1) # and the margins hold the titles
  expect_gt(lay$mai[2] / line, lay$title_line + 1)
  expect_lt(sum(lay$mai[c(2, 4)]), graphics::par("din")[1] * 0.7) # the matrix keeps room
  plot_confusion_matrix(cm)
  expect_true(all(c(lay$names, "predicted", "actual") %in% drawn_text()))
  grDevices::dev.off()
})

test_that("plot_grad_cam() names the class in its title and draws a colour key", {
  withr::local_options(pydlr.plot_engine = "base") # the base-graphics fallback
  model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
    layer_conv_2d(filters = 2, kernel_size = 3, name = "gc_conv") |>
    layer_flatten() |>
    layer_dense(units = 2, activation = "softmax")
  x <- array(runif(64), c(1L, 8L, 8L, 1L))
  file <- withr::local_tempfile(fileext = ".png")
  grDevices::png(file)
  grDevices::dev.control("enable")
  heat <- plot_grad_cam(model, x, class_index = 1, class_names = c("cat", "dog"))
  text <- drawn_text()
  grDevices::dev.off()
  p <- predict(model, x)[1, 2]
  expect_equal(attr(heat, "class_name"), "dog")
  expect_equal(attr(heat, "probability"), p, tolerance = 1e-6)
  expect_true(sprintf("Grad-CAM: dog (class 1), p = %.2f", p) %in% text)
  expect_true("evidence for the class (0-1)" %in% text)
  # grey images without their channel axis (n x 8 x 8), as fit() takes them: x's own image is drawn
  grDevices::png(file)
  grey <- plot_grad_cam(model, array(x, c(1L, 8L, 8L)), class_index = 1)
  grDevices::dev.off()
  expect_equal(unclass(grey), unclass(heat), ignore_attr = TRUE)
})

test_that("load_image_folder() returns the images shuffled (seeded), not class by class", {
  dir <- withr::local_tempdir()
  for (k in 0:2) {
    dir.create(file.path(dir, c("a", "b", "c")[k + 1]))
    for (i in 0:7) {
      grDevices::png(file.path(dir, c("a", "b", "c")[k + 1], sprintf("%d.png", i)), width = 4, height = 4)
      graphics::par(mar = c(0, 0, 0, 0), bg = grDevices::grey((10 + 110 * k + i) / 255))
      graphics::plot.new()
      grDevices::dev.off()
    }
  }
  d <- load_image_folder(dir, image_size = c(4, 4), color_mode = "grayscale", seed = 3)
  expect_equal(d$class_names, c("a", "b", "c"))
  expect_equal(dim(d$x), c(24L, 4L, 4L, 1L))
  expect_equal(sort(d$y), rep(0:2, each = 8))
  expect_false(identical(d$y, sort(d$y)))
  expect_gt(length(unique(tail(d$y, 6))), 1L) # a 25% validation split holds more than one class
  expect_equal(d$x[, 2, 2, 1] %/% 110L, d$y) # images stay with their labels
  expect_identical(load_image_folder(dir, image_size = c(4, 4), color_mode = "grayscale", seed = 3), d)
  set.seed(11)
  first <- load_image_folder(dir, image_size = c(4, 4), color_mode = "grayscale")$y
  set.seed(11)
  expect_identical(load_image_folder(dir, image_size = c(4, 4), color_mode = "grayscale")$y, first)
  expect_identical(load_image_folder(dir, image_size = c(4, 4), shuffle = FALSE)$y, rep(0:2, each = 8))
  expect_error(load_image_folder(dir, seed = -1), class = "pydlr_input_error")
})

test_that("confusion_matrix() warns when one side is 1-based and the other 0-based", {
  truth <- rep(1:10, each = 3) # R's habit
  pred <- truth - 1L # predict(type = "class")'s 0-based classes, all right
  expect_warning(cm <- confusion_matrix(truth, pred), "`y_true` has no class 0 but `y_pred` has", class = "pydlr_warning")
  expect_equal(sum(diag(cm)), 0) # what the warning is about: every count shifted by one
  expect_warning(confusion_matrix(pred, truth), "pass y_pred - 1", class = "pydlr_warning")
  expect_no_warning(cm <- confusion_matrix(truth - 1L, pred))
  expect_equal(sum(diag(cm)), 30)
})
