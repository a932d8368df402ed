# The plots are ggplot objects users extend (ggplot2 installed), with the layers that show the data, and
# they render to PNG. The base-graphics fallback is tested where each plot's details are (test-interpret.R,
# test-everyday-fixes.R).

render_png <- function(p) {
  file <- withr::local_tempfile(fileext = ".png", .local_envir = parent.frame())
  ggplot2::ggsave(file, p, width = 4, height = 4, dpi = 72)
  img <- png::readPNG(file)
  expect_gt(stats::sd(as.vector(img)), 0) # not blank
  dim(img)
}

geoms <- function(p) vapply(p$layers, function(l) class(l$geom)[1], "")

plot_model <- function() {
  set.seed(3)
  model <- keras_model_sequential(input_shape = c(12, 12, 1)) |>
    layer_conv_2d(filters = 6, kernel_size = 3, activation = "relu", name = "conv") |>
    layer_flatten() |>
    layer_dense(units = 2, activation = "softmax")
  compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  x <- array(runif(40 * 144), c(40, 12, 12, 1))
  y <- rep(0:1, 20)
  history <- fit(model, x, y, epochs = 3, batch_size = 10, validation_split = 0.25, verbose = 0)
  list(model = model, x = x, y = y, history = history)
}

test_that("plot(history) is a ggplot with a curve and points per metric, training and validation", {
  skip_if_not_installed("ggplot2")
  skip_if_not_installed("png")
  m <- plot_model()
  p <- plot(m$history)
  expect_s3_class(p, "ggplot")
  expect_equal(geoms(p), c("GeomLine", "GeomPoint"))
  expect_setequal(levels(droplevels(p$data$metric)), c("loss", "accuracy"))
  expect_equal(nrow(p$data), 3L * 4L) # 3 epochs x (loss, accuracy) x (training, validation)
  expect_setequal(as.character(p$data$data), c("training", "validation"))
  extended <- p + ggplot2::theme_minimal()
  expect_s3_class(extended, "ggplot")
  expect_equal(render_png(extended)[1:2], c(288L, 288L))
  only_loss <- plot(m$history, metrics = "loss")
  expect_equal(nrow(only_loss$data), 6L)
})

test_that("plot_filters(), plot_activations(), plot_grad_cam() and plot_confusion_matrix() are ggplots", {
  skip_if_not_installed("ggplot2")
  skip_if_not_installed("png")
  m <- plot_model()
  filters <- plot_filters(m$model)
  expect_s3_class(filters, "ggplot")
  expect_equal(geoms(filters), "GeomRaster")
  grid <- get_filters(m$model)
  expect_equal(nrow(filters$data), prod(dim(grid)[1:2])) # one row per pixel of the grid
  render_png(filters + ggplot2::theme_minimal())

  acts <- plot_activations(m$model, m$x, layer = "conv", max_maps = 4)
  expect_s3_class(acts, "ggplot")
  expect_equal(geoms(acts), "GeomRaster")
  expect_equal(nlevels(acts$data$map), 4L)
  expect_equal(nrow(acts$data), 10L * 10L * 4L)
  render_png(acts)

  cam <- plot_grad_cam(m$model, m$x[1, , , , drop = FALSE], class_index = 1, class_names = c("a", "b"))
  expect_s3_class(cam, "ggplot")
  expect_equal(geoms(cam), c("GeomRasterAnn", "GeomRaster"))
  expect_equal(attr(cam, "class_name"), "b")
  heat <- grad_cam(m$model, m$x[1, , , , drop = FALSE], class_index = 1)
  expect_equal(cam$data$heat, as.vector(heat[1, , ])) # the heatmap, pixel for pixel
  expect_true(all(cam$data$heat >= 0 & cam$data$heat <= 1))
  expect_match(cam$labels$title, "Grad-CAM: b (class 1)", fixed = TRUE)
  render_png(cam)

  cm <- confusion_matrix(m$y, predict(m$model, m$x, type = "class"), labels = c("left", "right"))
  pcm <- plot_confusion_matrix(cm)
  expect_s3_class(pcm, "ggplot")
  expect_equal(geoms(pcm), c("GeomTile", "GeomText"))
  expect_equal(sum(pcm$data$count), 40L)
  expect_equal(pcm$data$count[pcm$data$actual == "left" & pcm$data$predicted == "right"], cm["left", "right"])
  render_png(pcm + ggplot2::theme_minimal())
  expect_equal(sum(plot_confusion_matrix(cm, normalize = TRUE)$data$value), 2) # two rows of shares
})

test_that("plot(compare_models(...)) is a ggplot of accuracy and ARI per method", {
  skip_if_not_installed("ggplot2")
  skip_if_not_installed("png")
  km <- pydlr_kmeans(iris[, 1:4], 3, seed = 1)
  cmp <- compare_models(pydlr = km, truth = as.integer(iris$Species), y = iris$Species)
  expect_s3_class(cmp, "data.frame")
  p <- plot(cmp)
  expect_s3_class(p, "ggplot")
  expect_equal(geoms(p), c("GeomCol", "GeomText"))
  expect_equal(p$data$value[p$data$method == "truth"], c(1, 1))
  render_png(p + ggplot2::theme_minimal())
})

test_that("without ggplot2 the plots fall back to base graphics", {
  withr::local_options(pydlr.plot_engine = "base")
  m <- plot_model()
  file <- withr::local_tempfile(fileext = ".png")
  grDevices::png(file)
  drawn <- plot(m$history)
  grDevices::dev.off()
  expect_s3_class(drawn, "pydlr_history")
  expect_gt(file.size(file), 1000)
  withr::local_options(pydlr.plot_engine = "lattice")
  expect_error(plot(m$history), "pydlr.plot_engine")
})

test_that("plot(model) draws the layers on the device or writes to_file, as keras3's plot() of a model", {
  skip_if_not_installed("png")
  m <- plot_model()$model
  file <- withr::local_tempfile(fileext = ".png")
  grDevices::png(file, width = 300, height = 500)
  expect_identical(plot(m, show_shapes = TRUE), m)
  grDevices::dev.off()
  img <- png::readPNG(file)
  expect_gt(stats::sd(as.vector(img)), 0) # not blank
  out <- withr::local_tempfile(fileext = ".svg")
  expect_identical(plot(m, show_layer_names = TRUE, to_file = out), out)
  expect_match(paste(readLines(out, warn = FALSE), collapse = ""), "conv") # the layer's name is in the picture
  e <- expect_error(plot(m, to_file = "model.dot"), class = "pydlr_input_error")
  expect_match(conditionMessage(e), "argument `to_file` must be a file name ending in .png, .pdf or .svg", fixed = TRUE)
  expect_error(plot(m, to_file = file.path(tempdir(), "no-such-folder", "m.png")),
               "argument `to_file` must be a file in an existing folder", class = "pydlr_input_error")
  expect_error(plot(m, show_shapes = "yes"), "argument `show_shapes` must be TRUE or FALSE", class = "pydlr_input_error")
  expect_error(plot(m, colour = "red"), "`colour` of plot() is not supported", fixed = TRUE, class = "pydlr_error")
})
