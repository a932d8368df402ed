# The live training view: a self-contained page rewritten after each epoch; headless Chromium's screenshot
# after two epochs shows two points on each curve. report() writes the page for a finished run.

chromium <- function() {
  found <- Sys.which(c("chromium", "chromium-browser", "google-chrome"))
  found[nzchar(found)][1]
}

# Number of connected blobs of pixels close to `colour` (hex) in an RGB(A) image array.
count_blobs <- function(img, colour, tol = 0.12) {
  target <- grDevices::col2rgb(colour)[, 1] / 255
  mask <- abs(img[, , 1] - target[1]) < tol & abs(img[, , 2] - target[2]) < tol & abs(img[, , 3] - target[3]) < tol
  seen <- matrix(FALSE, nrow(mask), ncol(mask))
  blobs <- 0L
  for (start in which(mask)) {
    if (seen[start]) next
    blobs <- blobs + 1L
    stack <- start
    seen[start] <- TRUE
    while (length(stack)) {
      p <- stack[length(stack)]
      stack <- stack[-length(stack)]
      r <- (p - 1L) %% nrow(mask) + 1L
      c <- (p - 1L) %/% nrow(mask) + 1L
      for (d in list(c(-1L, 0L), c(1L, 0L), c(0L, -1L), c(0L, 1L))) {
        rr <- r + d[1]
        cc <- c + d[2]
        if (rr < 1L || cc < 1L || rr > nrow(mask) || cc > ncol(mask)) next
        q <- (cc - 1L) * nrow(mask) + rr
        if (mask[q] && !seen[q]) {
          seen[q] <- TRUE
          stack <- c(stack, q)
        }
      }
    }
  }
  blobs
}

small_run <- function(epochs, view_metrics, dir = withr::local_tempdir(.local_envir = parent.frame())) {
  withr::local_options(pydlr.view_metrics_dir = dir)
  set.seed(1)
  x <- matrix(runif(200), 50)
  y <- as.integer(x[, 1] > 0.5)
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = "softmax")
  compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  history <- fit(model, x, y, epochs = epochs, validation_split = 0.2, verbose = 0, view_metrics = view_metrics)
  list(history = history, model = model, x = x, y = y, dir = dir)
}

test_that("after two epochs the page shows two points on each curve (headless Chromium screenshot)", {
  skip_if_not_installed("png")
  browser <- chromium()
  skip_if(is.na(browser), "no Chromium")
  run <- small_run(epochs = 2, view_metrics = TRUE)
  page <- run$history$metrics_page
  expect_equal(page, file.path(run$dir, "index.html"))
  html <- readLines(page)
  expect_false(any(grepl("http://|https://", html[!grepl("xmlns=", html)]))) # no network
  expect_false(any(grepl("http-equiv='refresh'", html, fixed = TRUE))) # finished: no more reloading
  shot <- file.path(run$dir, "shot.png")
  system2(browser, c("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
    paste0("--screenshot=", shot), "--window-size=700,600", paste0("file://", page)), stdout = FALSE, stderr = FALSE)
  img <- png::readPNG(shot)
  # Two panels (loss, accuracy), each with a training and a validation curve of two points.
  expect_equal(count_blobs(img, pydlr:::.view_colours[["training"]]), 4L)
  expect_equal(count_blobs(img, pydlr:::.view_colours[["validation"]]), 4L)
})

test_that("the page is rewritten after every epoch, reloading itself while training runs", {
  dir <- withr::local_tempdir()
  pages <- character()
  spy <- callback_lambda(on_epoch_end = function(epoch, logs) {
    page <- file.path(dir, "index.html")
    if (file.exists(page)) pages <<- c(pages, paste(readLines(page), collapse = "\n"))
  })
  withr::local_options(pydlr.view_metrics_dir = dir)
  x <- matrix(runif(80), 20)
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = "softmax")
  compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy")
  fit(model, x, rep(0:1, 10), epochs = 3, verbose = 0, view_metrics = TRUE, callbacks = list(spy))
  # the spy runs before the view's own callback: it sees the page of the previous epoch
  expect_length(pages, 2L)
  expect_match(pages[2], "Training: epoch 2 of 3 (running)", fixed = TRUE)
  expect_match(pages[2], "http-equiv='refresh'", fixed = TRUE)
  expect_equal(lengths(regmatches(pages, gregexpr("<circle", pages))), c(1L, 2L))
  final <- paste(readLines(file.path(dir, "index.html")), collapse = "\n")
  expect_match(final, "Training: epoch 3 of 3</h1>", fixed = TRUE)
})

test_that("view_metrics = FALSE, and \"auto\" outside an interactive session, write no page", {
  expect_null(small_run(epochs = 2, view_metrics = FALSE)$history$metrics_page)
  run <- small_run(epochs = 2, view_metrics = "auto")
  expect_null(run$history$metrics_page)
  expect_length(list.files(run$dir), 0L)
  expect_error(small_run(epochs = 1, view_metrics = "yes"), class = "pydlr_input_error")
})

test_that("report() writes a static page with the curves, the summary and the confusion matrix", {
  run <- small_run(epochs = 2, view_metrics = FALSE)
  file <- withr::local_tempfile(fileext = ".html")
  expect_equal(report(run$history, run$model, run$x, run$y, file = file), file)
  html <- paste(readLines(file), collapse = "\n")
  expect_match(html, "Trainable params: 10 ", fixed = TRUE)
  expect_match(html, "<h2>Confusion matrix</h2>", fixed = TRUE)
  expect_equal(lengths(regmatches(html, gregexpr("<circle", html))), 8L) # 2 epochs x 4 curves
  expect_false(grepl("http-equiv='refresh'", html, fixed = TRUE))
  cm <- confusion_matrix(run$y, predict(run$model, run$x, type = "class"))
  expect_match(html, sprintf("<td>%d</td>", cm[1, 1]), fixed = TRUE)
})

test_that("report() of a convolutional model shows its first-layer filters", {
  model <- keras_model_sequential(input_shape = c(6, 6, 1)) |>
    layer_conv_2d(filters = 2, kernel_size = 3) |>
    layer_flatten() |>
    layer_dense(units = 2, activation = "softmax")
  compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy")
  x <- array(runif(8 * 36), c(8, 6, 6, 1))
  history <- fit(model, x, rep(0:1, 4), epochs = 1, verbose = 0, view_metrics = FALSE)
  file <- withr::local_tempfile(fileext = ".html")
  report(history, model, file = file)
  html <- paste(readLines(file), collapse = "\n")
  expect_match(html, "<h2>First-layer filters</h2>", fixed = TRUE)
  grid <- get_filters(model)
  expect_equal(lengths(regmatches(html, gregexpr("<rect x='[0-9]+' y='[0-9]+' width='8'", html))), prod(dim(grid)[1:2]))
})
