# Progress as R users see it: one line per epoch in a knitted document (no \r, no bar redrawn per batch).

test_that("a knitted chunk that trains 3 epochs shows exactly 3 progress lines", {
  skip_if_not_installed("knitr")
  dir <- withr::local_tempdir()
  rmd <- file.path(dir, "progress.Rmd")
  writeLines(c(
    "```{r}",
    "library(pydlr)",
    "set.seed(1)",
    "x <- array(runif(64 * 8 * 8), c(64, 8, 8, 1))",
    "y <- rep(0:1, 32)",
    "model <- keras_model_sequential(input_shape = c(8, 8, 1)) |>",
    "  layer_flatten() |>",
    "  layer_dense(units = 2, activation = \"softmax\")",
    "compile(model, optimizer = \"adam\", loss = \"sparse_categorical_crossentropy\", metrics = \"accuracy\")",
    "history <- fit(model, x, y, epochs = 3, batch_size = 8)",
    "```"
  ), rmd)
  md <- file.path(dir, "progress.md")
  # A fresh R process, as knitr runs in RStudio's Knit button or rmarkdown::render().
  script <- file.path(dir, "knit.R")
  writeLines(c(
    sprintf(".libPaths(c(%s))", paste(deparse(.libPaths()), collapse = "")),
    sprintf("knitr::knit(%s, output = %s, quiet = TRUE)", deparse(rmd), deparse(md))
  ), script)
  system2(file.path(R.home("bin"), "Rscript"), c("--vanilla", script), stdout = TRUE, stderr = TRUE)
  out <- readLines(md)
  progress <- grep("Epoch [0-9]+/3", out, value = TRUE)
  expect_length(progress, 3L)
  expect_match(progress, "^## Epoch [1-3]/3 - 8/8 \\[=+\\] - .* - loss: [0-9.]+ - accuracy: [0-9.]+")
  expect_false(any(grepl("\r", out, fixed = TRUE)))
})

test_that("Ctrl-C (SIGINT) stops fit() with an R interrupt; the session and the trained model live on", {
  skip_on_os("windows")
  dir <- withr::local_tempdir()
  script <- file.path(dir, "interrupt.R")
  log <- file.path(dir, "log.txt")
  writeLines(c(
    sprintf(".libPaths(c(%s))", paste(deparse(.libPaths()), collapse = "")),
    "library(pydlr)",
    "set.seed(1)",
    "x <- matrix(runif(4000), 1000); y <- as.integer(x[, 1] > 0.5)",
    "model <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = 'softmax')",
    "compile(model, optimizer = 'adam', loss = 'sparse_categorical_crossentropy')",
    "w0 <- get_weights(model)[[1]]",
    "cat('TRAINING\\n')",
    "r <- tryCatch(fit(model, x, y, epochs = 100000, batch_size = 10, verbose = 0), interrupt = function(e) 'INTERRUPTED')",
    "cat('RESULT:', r, '\\n')",
    "cat('CHANGED:', !isTRUE(all.equal(w0, get_weights(model)[[1]])), '\\n')",
    "cat('FINITE:', all(is.finite(predict(model, x[1:5, ]))), '\\n')",
    "h <- fit(model, x, y, epochs = 1, verbose = 0)",
    "cat('CONTINUES:', length(h$metrics$loss), '\\n')"
  ), script)
  pid <- as.integer(system(sprintf("%s --vanilla %s > %s 2>&1 & echo $!",
    shQuote(file.path(R.home("bin"), "Rscript")), shQuote(script), shQuote(log)), intern = TRUE))
  on.exit(tools::pskill(pid, tools::SIGKILL), add = TRUE)
  started <- FALSE
  for (i in 1:120) { # wait for training to start (Python's start-up included)
    if (file.exists(log) && any(grepl("TRAINING", readLines(log, warn = FALSE)))) { started <- TRUE; break }
    Sys.sleep(0.5)
  }
  expect_true(started)
  Sys.sleep(5) # well into training (the machine may be busy)
  tools::pskill(pid, tools::SIGINT)
  for (i in 1:120) {
    if (any(grepl("CONTINUES", readLines(log, warn = FALSE)))) break
    Sys.sleep(0.5)
  }
  out <- paste(readLines(log, warn = FALSE), collapse = "\n")
  expect_match(out, "RESULT: INTERRUPTED", fixed = TRUE)
  expect_match(out, "CHANGED: TRUE", fixed = TRUE)
  expect_match(out, "FINITE: TRUE", fixed = TRUE)
  expect_match(out, "CONTINUES: 1", fixed = TRUE)
})
