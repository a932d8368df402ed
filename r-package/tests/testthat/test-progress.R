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
