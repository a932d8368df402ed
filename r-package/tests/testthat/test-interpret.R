# Looking inside models from R: filters, feature maps, Grad-CAM on a small CNN trained to spot a square,
# the confusion matrix, top losses, and the base-graphics plots.

square_images <- function(n, seed, quadrant = NULL) {
  set.seed(seed)
  x <- array(stats::rnorm(n * 16 * 16, sd = 0.1), c(n, 16, 16, 1))
  y <- if (is.null(quadrant)) rep(c(0L, 1L), length.out = n) else rep(1L, n)
  for (i in which(y == 1L)) {
    q <- if (is.null(quadrant)) sample(0:3, 1) else quadrant
    r0 <- 8 * (q %/% 2) + sample(0:4, 1)
    c0 <- 8 * (q %% 2) + sample(0:4, 1)
    x[i, r0 + 1:4, c0 + 1:4, 1] <- x[i, r0 + 1:4, c0 + 1:4, 1] + 1
  }
  list(x = x, y = y)
}

small_cnn <- function() {
  keras_model_sequential(input_shape = c(16, 16, 1)) |>
    layer_conv_2d(filters = 8, kernel_size = 3, padding = "same", activation = "relu", name = "conv_a") |>
    layer_conv_2d(filters = 8, kernel_size = 3, padding = "same", activation = "relu", name = "conv_b") |>
    layer_global_average_pooling_2d() |>
    layer_dense(units = 2, activation = "softmax")
}

trained <- local({
  model <- NULL
  function() {
    if (is.null(model)) {
      model <<- small_cnn()
      d <- square_images(256, seed = 1)
      model |> compile(optimizer = optimizer_adam(learning_rate = 0.01), loss = "sparse_categorical_crossentropy",
        metrics = "accuracy")
      model |> fit(d$x, d$y, epochs = 6, batch_size = 16, verbose = 0, seed = 0)
    }
    model
  }
})

quadrant_mass <- function(h, q) {
  rows <- 8 * (q %/% 2) + 1:8
  cols <- 8 * (q %% 2) + 1:8
  sum(h[rows, cols]) / sum(h)
}

test_that("get_filters() returns the first convolution's kernels, raw or as a grid", {
  model <- small_cnn()
  raw <- get_filters(model, grid = FALSE)
  expect_equal(dim(raw), c(8L, 3L, 3L, 1L))
  w <- get_weights(model)[[1]] # Keras layout: kh x kw x in x out
  expect_equal(raw, aperm(w, c(4, 1, 2, 3)), tolerance = 1e-7, ignore_attr = TRUE)
  grid <- get_filters(model)
  expect_equal(dim(grid), c(11L, 11L, 1L)) # 3 x 3 tiles of 3 x 3 kernels, 1-pixel gaps
  expect_equal(range(grid), c(0, 1))
  expect_equal(dim(get_filters(model, "conv_b", grid = FALSE)), c(8L, 3L, 3L, 8L))
  expect_error(get_filters(model, "nope"), class = "pydlr_input_error")
})

test_that("get_activations() gives a layer's feature maps", {
  model <- small_cnn()
  x <- square_images(3, seed = 2)$x
  maps <- get_activations(model, x, "conv_a")
  expect_equal(dim(maps), c(3L, 16L, 16L, 8L))
  expect_gte(min(maps), 0) # after ReLU
  expect_equal(dim(get_activations(model, x, "conv_b")), c(3L, 16L, 16L, 8L))
})

test_that("grad_cam() puts the class evidence in the quadrant that holds the square", {
  model <- trained()
  v <- square_images(64, seed = 7)
  expect_gte(mean(predict(model, v$x, type = "class") == v$y), 0.9)
  for (q in 0:3) {
    d <- square_images(6, seed = 10 + q, quadrant = q)
    heat <- grad_cam(model, d$x, class_index = 1, layer = "conv_b")
    expect_equal(dim(heat), c(6L, 16L, 16L))
    masses <- vapply(1:6, function(i) quadrant_mass(heat[i, , ], q), numeric(1))
    expect_gt(stats::median(masses), 0.75) # chance: 0.25
  }
  expect_error(grad_cam(model, d$x, class_index = 7), "argument `class_index` must be an integer in 0..1 \\(one, or one per image\\); received 7\\.",
               class = "pydlr_input_error") # the value, not "an integer vector of length 1"
  expect_error(grad_cam(model, d$x, class_index = -1), "class_index")
})

test_that("confusion_matrix() counts actual x predicted pairs as table()", {
  set.seed(3)
  truth <- sample(0:2, 50, replace = TRUE)
  pred <- sample(0:2, 50, replace = TRUE)
  cm <- confusion_matrix(truth, pred)
  expect_s3_class(cm, "table")
  expect_equal(names(dimnames(cm)), c("actual", "predicted"))
  expect_equal(unclass(cm), unclass(table(actual = truth, predicted = pred)), ignore_attr = TRUE)
  scores <- diag(3)[pred + 1, ]
  expect_equal(confusion_matrix(truth, scores), cm)
  f <- confusion_matrix(factor(c("cat", "dog", "dog")), factor(c("cat", "cat", "dog")))
  expect_equal(dimnames(f)$actual, c("cat", "dog"))
  expect_equal(as.vector(f), c(1L, 1L, 0L, 1L))
  expect_error(confusion_matrix(c(0, 1), c(0, 1, 1)), class = "pydlr_input_error")
  expect_error(confusion_matrix(c(0, -1), c(0, 1)), "y_true")
})

test_that("top_losses() lists the worst predictions first, with their cross-entropy", {
  model <- trained()
  d <- square_images(20, seed = 4)
  d$y[1:2] <- 1L - d$y[1:2] # two deliberately wrong labels
  top <- top_losses(model, d$x, d$y, k = 3)
  expect_named(top, c("index", "loss", "actual", "predicted", "probability", "probability_actual"))
  expect_equal(top$loss, -log(top$probability_actual), tolerance = 1e-6)
  expect_true(all(c(1L, 2L) %in% top$index[1:2]))
  expect_true(all(diff(top$loss) <= 0))
  probs <- predict(model, d$x)
  expect_equal(top$loss, -log(probs[cbind(top$index, d$y[top$index] + 1L)]), tolerance = 1e-5)
})

test_that("the plot functions draw with base graphics", {
  withr::local_options(pydlr.plot_engine = "base")
  model <- trained()
  d <- square_images(4, seed = 5, quadrant = 3)
  files <- character()
  draw <- function(name, expr) {
    path <- tempfile(name, fileext = ".png")
    grDevices::png(path)
    on.exit(grDevices::dev.off())
    force(expr)
    files[[name]] <<- path
  }
  draw("filters", expect_equal(dim(plot_filters(model)), c(11L, 11L, 1L)))
  draw("activations", expect_equal(dim(plot_activations(model, d$x, "conv_b", max_maps = 4)), c(16L, 16L, 8L)))
  draw("cam", expect_equal(dim(plot_grad_cam(model, d$x, class_index = 1)), c(16L, 16L)))
  draw("cm", plot_confusion_matrix(confusion_matrix(c(0, 1, 1), c(0, 1, 0))))
  for (f in files) expect_gt(file.size(f), 1000)
})

test_that("confusion_matrix() reads two factors by their labels, as table() does", {
  truth <- factor(c("a", "b", "c", "b"))
  never_c <- factor(c("a", "a", "a", "b")) # "c" never predicted: its levels are a, b
  cm <- confusion_matrix(truth, never_c)
  expect_identical(dimnames(cm), list(actual = c("a", "b", "c"), predicted = c("a", "b", "c")))
  expect_identical(as.vector(cm), as.vector(table(truth, factor(never_c, levels = levels(truth)))))
  reordered <- factor(c("b", "a", "a", "b"), levels = c("b", "a"))
  expect_identical(as.vector(confusion_matrix(truth, reordered)),
                   as.vector(table(truth, factor(as.character(reordered), levels = levels(truth)))))
})
