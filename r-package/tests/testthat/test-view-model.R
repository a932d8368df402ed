# The live page from R (its server in a child Python process), filter patterns, top losses with their
# images, the model's own preprocessing in the static views, and the bad input of each as R conditions.

mnist <- local({
  model <- NULL
  function() {
    if (is.null(model)) model <<- pretrained_model("seed_cnn_mnist")
    model
  }
})

# The layer names, in order (summary() prints its table; the test only needs the names).
mnist_layers <- function() {
  utils::capture.output(table <- summary(mnist()))
  table$layer
}

mnist_test <- function(n) {
  d <- dataset_mnist()$test
  list(x = array(d$x[seq_len(n), , ] / 255, c(n, 28, 28, 1)), y = d$y[seq_len(n)])
}

pid_alive <- function(pid) isTRUE(tools::pskill(pid, 0L))

post_json <- function(url, body) {
  path <- tempfile(fileext = ".json")
  on.exit(unlink(path))
  writeLines(body, path)
  out <- system2("curl", c("-s", "-X", "POST", "-H", shQuote("Content-Type: application/json"),
    "--data-binary", paste0("@", path), paste0(url, "run")), stdout = TRUE)
  jsonlite::fromJSON(paste(out, collapse = ""))
}

test_that("view_model serves the page from a child process that close() ends", {
  skip_if(!nzchar(Sys.which("curl")), "no curl")
  d <- mnist_test(6)
  view <- view_model(mnist(), data = d$x, open = FALSE)
  on.exit(close(view), add = TRUE)
  expect_s3_class(view, "pydlr_model_view")
  expect_match(view$url, "^http://127\\.0\\.0\\.1:[0-9]+/$")
  pid <- view$state$pid
  expect_true(pid_alive(pid))
  info <- jsonlite::fromJSON(paste(readLines(paste0(view$url, "info"), warn = FALSE), collapse = ""))
  expect_equal(info$input_shape, c(28L, 28L, 1L))
  expect_length(info$thumbnails, 6L)
  expect_equal(info$layers$name, mnist_layers()[c(1, 3, 5, 7, 8)])
  picked <- post_json(view$url, '{"index": 3}')
  expect_equal(picked$predicted, predict(mnist(), d$x[4, , , , drop = FALSE], type = "class")[[1]])
  expect_match(post_json(view$url, '{"index": 3, "class_index": 12}')$error, "class_index")
  expect_output(print(view), "serving")
  expect_true(close(view))
  expect_false(close(view))
  Sys.sleep(0.2)
  expect_false(pid_alive(pid))
  expect_output(print(view), "closed")
})

test_that("view_model's bad input are R conditions before any process starts", {
  dense <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = "softmax")
  expect_error(view_model(dense, open = FALSE), class = "pydlr_input_error", regexp = "image model")
  expect_error(view_model(mnist(), data = array(0, c(2, 32, 32, 1)), open = FALSE),
    class = "pydlr_input_error", regexp = "28, 28, 1")
  expect_error(view_model(mnist(), open = "yes"), class = "pydlr_input_error", regexp = "open")
  expect_error(view_model("model"), class = "pydlr_input_error", regexp = "model")
})

test_that("filter patterns activate their own filter more than noise and the other patterns do", {
  layer <- mnist_layers()[3]
  filters <- c(0, 1, 2, 3, 5)
  patterns <- filter_patterns(mnist(), layer, filters = filters)
  expect_equal(dim(patterns), c(5L, 28L, 28L, 1L))
  expect_true(min(patterns) >= 0 && max(patterns) <= 1)
  means <- function(x) apply(get_activations(mnist(), x, layer), c(1, 4), mean)[, filters + 1L]
  own <- means(patterns)
  set.seed(1)
  noise <- means(array(stats::runif(16 * 28 * 28), c(16, 28, 28, 1)))
  for (i in seq_along(filters)) {
    expect_gt(own[i, i], max(noise[, i]))
    expect_gt(own[i, i], max(own[-i, i]))
  }
  withr::local_options(pydlr.plot_engine = "base")
  pdf(NULL)
  on.exit(grDevices::dev.off(), add = TRUE)
  expect_equal(dim(plot_filter_patterns(mnist(), layer, filters = 0:1, steps = 2)), c(2L, 28L, 28L, 1L))
})

test_that("filter_patterns' bad input are R conditions naming the argument", {
  expect_error(filter_patterns(mnist(), "conv9"), class = "pydlr_input_error", regexp = "conv2d_[0-9]+, max_pooling2d")
  expect_error(filter_patterns(mnist(), mnist_layers()[3], filters = 64), class = "pydlr_input_error",
    regexp = "0\\.\\.63")
  expect_error(filter_patterns(mnist(), mnist_layers()[3], filters = -1), class = "pydlr_input_error",
    regexp = "filters")
  expect_error(filter_patterns(mnist(), mnist_layers()[7]), class = "pydlr_input_error", regexp = "feature maps")
  expect_error(filter_patterns(mnist(), mnist_layers()[3], size = 2), class = "pydlr_input_error", regexp = "size")
  err <- tryCatch(filter_patterns(mnist(), "conv9"), error = identity)
  expect_false(grepl("Traceback", conditionMessage(err)))
})

test_that("top losses come with their images, classes and probabilities", {
  d <- mnist_test(200)
  top <- top_losses(mnist(), d$x, d$y, k = 4)
  probs <- predict(mnist(), d$x[top$index, , , , drop = FALSE])
  expect_equal(top$probability_actual, probs[cbind(1:4, top$actual + 1L)], tolerance = 1e-5)
  withr::local_options(pydlr.plot_engine = "base")
  pdf(NULL)
  on.exit(grDevices::dev.off(), add = TRUE)
  expect_identical(plot_top_losses(mnist(), d$x, d$y, k = 4), top)
  expect_error(plot_top_losses(mnist(), d$x, d$y, images = d$x[1:3, , , , drop = FALSE]), class = "pydlr_input_error",
    regexp = "images")
  skip_if_not_installed("ggplot2")
  withr::local_options(pydlr.plot_engine = "ggplot2")
  p <- plot_top_losses(mnist(), d$x, d$y, k = 4, class_names = as.character(0:9))
  expect_s3_class(p, "ggplot")
  expect_equal(nlevels(p$data$panel), 4L)
})

test_that("static views apply a pretrained model's own preprocessing; other models refuse it", {
  model <- application_mobilenet_v2()
  cat <- example_image("chelsea")
  x <- application_preprocess_inputs(model, cat)
  expect_equal(get_activations(model, cat, "features.2", preprocess = TRUE), get_activations(model, x, "features.2"),
    tolerance = 1e-4)
  withr::local_options(pydlr.plot_engine = "base")
  pdf(NULL)
  on.exit(grDevices::dev.off(), add = TRUE)
  heat <- plot_grad_cam(model, cat, preprocess = TRUE)
  expect_true(attr(heat, "class_index") %in% c(281L, 282L, 285L))
  expect_equal(dim(heat), c(224L, 224L))
  expect_error(get_activations(mnist(), array(0, c(1, 28, 28, 1)), mnist_layers()[1], preprocess = TRUE),
    class = "pydlr_input_error", regexp = "preprocess")
  expect_error(grad_cam(mnist(), array(0, c(1, 28, 28, 1)), class_index = 10), class = "pydlr_input_error",
    regexp = "0\\.\\.9")
  expect_error(get_activations(mnist(), array(0, c(1, 32, 32, 1)), mnist_layers()[1]),
    class = "pydlr_input_error", regexp = "28, 28, 1")
})
