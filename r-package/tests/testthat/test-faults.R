# Faults seen from R: Python that cannot start, memory running out in fit, memory held by many predict()
# calls, and two R processes training at once (docs/reliability.md, "Faults and security").

fresh_rscript <- function(lines, env = character(), wait = TRUE, stdout = TRUE) {
  script <- tempfile(fileext = ".R")
  writeLines(c(sprintf(".libPaths(c(%s))", paste(deparse(.libPaths()), collapse = "")), lines), script)
  system2(file.path(R.home("bin"), "Rscript"), c("--vanilla", script), stdout = stdout, stderr = stdout,
    env = env, wait = wait)
}

test_that("library(pydlr) with RETICULATE_PYTHON pointing nowhere says why and how to fix it", {
  out <- paste(fresh_rscript(c(
    "library(pydlr)",
    "r <- tryCatch(dataset_mnist(), error = function(e) e)",
    "cat('CLASS:', class(r)[1], '\\nMESSAGE:', conditionMessage(r), '\\n')"
  ), env = "RETICULATE_PYTHON=/nowhere/bin/python"), collapse = "\n")
  expect_match(out, "CLASS: pydlr_setup_error", fixed = TRUE)
  expect_match(out, "the interpreter /nowhere/bin/python does not exist. Fix: install_pydlr()", fixed = TRUE)
  expect_match(out, "Sys.setenv(PYDLR_PYTHON = ", fixed = TRUE) # the fix in R syntax
  expect_false(grepl("Traceback", out, fixed = TRUE))
})

test_that("running out of memory in fit() or predict() is an error suggesting a smaller batch_size", {
  m <- keras_model_sequential(input_shape = c(4)) |> layer_dense(3, activation = "softmax")
  compile(m, loss = "sparse_categorical_crossentropy", optimizer = "adam")
  x <- matrix(runif(64 * 4), 64)
  y <- rep(0:2, length.out = 64)
  reticulate::py_run_string(paste(
    "def pydlr_no_memory(*args, **kwargs):",
    "    raise RuntimeError(\"DefaultCPUAllocator: can't allocate memory: you tried to allocate 1099511627776 bytes.\")",
    sep = "\n"))
  main <- reticulate::import_main(convert = FALSE)
  layer <- reticulate::r_to_py(m)$layers[0L]
  reticulate::py_set_attr(layer, "forward", main$pydlr_no_memory)
  e <- expect_error(fit(m, x, y, batch_size = 32, epochs = 1, verbose = 0), class = "pydlr_training_error")
  expect_match(conditionMessage(e), "ran out of memory at epoch 1, batch 1: use a smaller batch_size (this fit used 32; try 16)",
    fixed = TRUE)
  expect_no_match(conditionMessage(e), "Traceback")
  e <- expect_error(predict(m, x, batch_size = 32), class = "pydlr_error")
  expect_match(conditionMessage(e), "use a smaller batch_size (this call used 32; try 16)", fixed = TRUE)
  reticulate::py_del_attr(layer, "forward")
  h <- fit(m, x, y, batch_size = 32, epochs = 1, verbose = 0) # the model is usable again
  expect_length(h$metrics$loss, 1)
})

test_that("800 predict() calls keep resident memory bounded", {
  rss_mb <- function() {
    line <- grep("^VmRSS:", readLines("/proc/self/status"), value = TRUE)
    as.numeric(gsub("[^0-9]", "", line)) / 1024
  }
  skip_if_not(file.exists("/proc/self/status"), "no /proc")
  m <- keras_model_sequential(input_shape = c(256)) |> layer_dense(16, activation = "relu") |>
    layer_dense(3, activation = "softmax")
  x <- matrix(runif(32 * 256), 32) # one batch of 64 KB per call
  # warm-up: the allocator's pools and reticulate's caches grow over a session's first calls
  for (i in 1:300) p <- predict(m, x)
  gc()
  start <- rss_mb()
  for (i in 1:800) p <- predict(m, x)
  gc()
  growth <- rss_mb() - start
  expect_equal(dim(p), c(32L, 3L))
  # keeping each call's input or its converted copy (64 KB) would add 51 MB
  expect_lt(growth, 20)
})

test_that("two R processes train at the same time with separate caches without interfering", {
  dirs <- file.path(tempfile("pydlr-proc-"), c("a", "b"))
  for (d in dirs) dir.create(d, recursive = TRUE)
  worker <- function(dir) c(
    "library(pydlr)",
    "set_random_seed(3)",
    "x <- matrix(seq(-1, 1, length.out = 400), 100); y <- as.integer(x[, 1] > 0)",
    "m <- keras_model_sequential(input_shape = c(4)) |> layer_dense(8, activation = 'relu') |> layer_dense(2, activation = 'softmax')",
    "compile(m, loss = 'sparse_categorical_crossentropy', optimizer = 'adam')",
    sprintf("h <- fit(m, x, y, epochs = 3, batch_size = 10, verbose = 0, resume = file.path('%s', 'run.ckpt'))", dir),
    sprintf("save_model(m, file.path('%s', 'model.keras'))", dir),
    sprintf("writeLines(format(h$metrics$loss, digits = 17), file.path('%s', 'loss.txt'))", dir)
  )
  for (d in dirs) fresh_rscript(worker(d), env = paste0("PYDLR_CACHE=", d), wait = FALSE, stdout = FALSE)
  deadline <- Sys.time() + 240
  done <- function() all(file.exists(file.path(dirs, "loss.txt")))
  while (!done() && Sys.time() < deadline) Sys.sleep(0.5)
  expect_true(done())
  losses <- lapply(dirs, function(d) readLines(file.path(d, "loss.txt")))
  expect_length(losses[[1]], 3)
  expect_identical(losses[[1]], losses[[2]]) # same seed, same data: neither run disturbed the other
  for (d in dirs) expect_setequal(list.files(d, all.files = TRUE, no.. = TRUE), c("loss.txt", "model.keras", "run.ckpt"))
  expect_equal(get_weights(load_model(file.path(dirs[1], "model.keras"))),
    get_weights(load_model(file.path(dirs[2], "model.keras"))))
})
