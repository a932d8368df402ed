# The keras3 script in examples/ runs unchanged on pydlr (on a small subset, to stay fast).

keras3_script <- function() {
  candidates <- c(
    file.path("..", "..", "..", "examples", "keras3_script.R"), # from r-package/tests/testthat
    file.path(Sys.getenv("PYDLR_ROOT", "."), "examples", "keras3_script.R")
  )
  found <- candidates[file.exists(candidates)]
  if (length(found) == 0L) stop("examples/keras3_script.R not found from ", getwd())
  normalizePath(found[1])
}

test_that("keras3's MNIST convnet script runs on pydlr: summary as keras prints it, trained in place", {
  skip_if_not_installed("zeallot")
  withr::local_envvar(PYDLR_EXAMPLE_N = "4000", PYDLR_EXAMPLE_N_TEST = "2000", PYDLR_EXAMPLE_EPOCHS = "2")
  withr::local_options(pydlr.dynamic_progress = FALSE) # one line per epoch, as in a log
  set_random_seed(1) # keras3 scripts call fit() without a seed; keras3's set_random_seed() fixes the run
  env <- new.env()
  out <- capture.output(source(keras3_script(), local = env, echo = FALSE))
  text <- paste(out, collapse = "\n")
  # keras3 prints this table for the model (keras.io's "Simple MNIST convnet"): same shapes and counts
  expect_match(text, "x_train shape: 4000 28 28 1", fixed = TRUE)
  for (row in c("(None, 26, 26, 32)", "(None, 13, 13, 32)", "(None, 11, 11, 64)", "(None, 5, 5, 64)",
                "(None, 1600)", "(None, 10)", "18,496", "16,010")) {
    expect_match(text, row, fixed = TRUE)
  }
  expect_match(text, "Total params: 34,826 (136.04 KB)", fixed = TRUE)
  expect_match(text, "Trainable params: 34,826 (136.04 KB)", fixed = TRUE)
  expect_match(text, "Non-trainable params: 0 (0.00 B)", fixed = TRUE)
  # fit() printed one line per epoch (non-interactive) and trained the model in place
  expect_length(grep("^Epoch [12]/2", out), 2L)
  expect_named(env$score, c("loss", "accuracy"))
  expect_gt(env$score$accuracy, 0.65) # 4,000 images, 2 epochs (58 updates); the full run reaches ~0.9
  expect_match(text, "Test accuracy:", fixed = TRUE)
  expect_match(text, "2000 test samples", fixed = TRUE)
})
