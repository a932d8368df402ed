# Training on several processes from R: an unchanged R script under torchrun (gloo on CPU), resume of an
# interrupted run, a process that dies, torchrun's environment checked, fit(distributed = ) from a session.

skip_if_no_torchrun <- function() {
  skip_if(!nzchar(ddp_torchrun()), "torchrun is not installed beside pydlr's Python")
}

# The first test's uninterrupted run is the second's reference.
uninterrupted <- tempfile("whole")

test_that("an R script under torchrun trains 2 processes to identical weights, as well as one process", {
  skip_if_no_torchrun()
  out <- uninterrupted
  dir.create(out)
  output <- ddp_run(ddp_script(epochs = 3L, die_epoch = 2L), out)
  expect_null(attr(output, "status"))
  r0 <- readRDS(file.path(out, "rank0.rds"))
  r1 <- readRDS(file.path(out, "rank1.rds"))
  expect_identical(r0$weights, r1$weights) # different initial weights: rank 0's were broadcast
  expect_identical(r0$history, r1$history) # epoch logs averaged over both ranks
  expect_identical(r0$steps, 8L) # 256 samples / 2 processes / batch 16
  expect_lt(r0$history$loss[3], 0.7 * r0$history$loss[1])
  expect_length(grep("^Epoch 1/3", output), 1L) # only rank 0 prints
  expect_true(file.exists(file.path(out, "resume")))

  # One process, same data and global batch (2 x 16): the same accuracy within noise.
  data <- ddp_data(256L, 1L)
  test <- ddp_data(200L, 2L)
  set_random_seed(100L)
  m <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
    layer_conv_2d(filters = 4, kernel_size = 3, activation = "relu") |> layer_flatten() |>
    layer_dense(units = 4, activation = "softmax")
  m |> compile(optimizer = optimizer_adam(learning_rate = 0.01), loss = "sparse_categorical_crossentropy",
    metrics = "accuracy")
  fit(m, data$x, data$y, batch_size = 32L, epochs = 3L, seed = 1L, verbose = 0L)
  single <- evaluate(m, test$x, test$y)$accuracy
  expect_gt(r0$test$accuracy, 0.9)
  expect_gt(single, 0.9)
  expect_lt(abs(r0$test$accuracy - single), 0.08)
})

test_that("an interrupted DDP run resumes from rank 0's checkpoint to the uninterrupted run's weights", {
  skip_if_no_torchrun()
  script <- ddp_script(epochs = 3L, die_epoch = 2L)
  whole <- uninterrupted
  if (!file.exists(file.path(whole, "rank0.rds"))) {
    dir.create(whole, showWarnings = FALSE)
    ddp_run(script, whole)
  }
  cut <- tempfile("cut")
  dir.create(cut)
  first <- ddp_run(script, cut, "die") # rank 1 quits in epoch 2; torchrun stops rank 0
  expect_false(is.null(attr(first, "status")))
  expect_false(file.exists(file.path(cut, "rank0.rds")))
  expect_true(file.exists(file.path(cut, "resume"))) # epoch 1's checkpoint, whole
  again <- ddp_run(script, cut)
  expect_null(attr(again, "status"))
  expect_length(grep("^Epoch 1/3", again), 0L) # continued after epoch 1
  resumed <- readRDS(file.path(cut, "rank0.rds"))
  expect_identical(resumed$weights, readRDS(file.path(whole, "rank0.rds"))$weights)
  expect_identical(resumed$weights, readRDS(file.path(cut, "rank1.rds"))$weights)
})

test_that("when a process dies mid-epoch the others stop with a pydlr_training_error, not a hang", {
  skip_if_no_torchrun()
  out <- tempfile("die")
  dir.create(out)
  script <- tempfile(fileext = ".R")
  writeLines(c(deparse(call("<-", quote(ddp_data), ddp_data)), readLines(ddp_script(die_epoch = 1L)),
    "cat('no error\\n')"), script)
  # Launched by hand with torchrun's variables (as on a machine whose agent does not stop the others).
  wrapped <- tempfile(fileext = ".R")
  writeLines(c(
    "r <- tryCatch({ source(commandArgs(TRUE)[3]); 'no error' }, error = function(e) class(e)[1])",
    "cat('RESULT', r, '\\n')"), wrapped)
  port <- as.character(ddp_free_port())
  env <- function(rank) ddp_env(sprintf("RANK=%d", rank), sprintf("LOCAL_RANK=%d", rank), "WORLD_SIZE=2",
    "LOCAL_WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", sprintf("MASTER_PORT=%s", port), "PYDLR_DDP_TIMEOUT=30")
  system2("Rscript", c(wrapped, out, "die", script), env = env(1L), wait = FALSE, stdout = FALSE, stderr = FALSE)
  output <- suppressWarnings(system2("Rscript", c(wrapped, out, "die", script), env = env(0L),
    stdout = TRUE, stderr = TRUE, timeout = 90))
  expect_null(attr(output, "status")) # rank 0 ended by itself, before the timeout
  expect_true(any(grepl("RESULT pydlr_training_error", output, fixed = TRUE)))
})

test_that("a torchrun environment with a missing or inconsistent variable is a pydlr_input_error", {
  script <- tempfile(fileext = ".R")
  writeLines(c(
    "library(pydlr)",
    "m <- keras_model_sequential(input_shape = 4) |> layer_dense(units = 2, activation = 'softmax')",
    "m |> compile(optimizer = 'adam', loss = 'sparse_categorical_crossentropy')",
    "e <- tryCatch(fit(m, matrix(runif(40), 10), rep(0:1, 5), epochs = 1, verbose = 0), error = identity)",
    "cat(class(e)[1], e$argument, conditionMessage(e), sep = '\\n')"), script)
  run <- function(...) suppressWarnings(system2("Rscript", script, env = ddp_env(...), stdout = TRUE, stderr = TRUE,
    timeout = 60))
  missing <- run("WORLD_SIZE=2", "RANK=0", "LOCAL_RANK=0")
  expect_true("pydlr_input_error" %in% missing)
  expect_true("environment variable MASTER_ADDR" %in% missing)
  wrong <- run("WORLD_SIZE=2", "RANK=2", "LOCAL_RANK=0", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=29500")
  expect_true("environment variable RANK" %in% wrong)
  expect_true(any(grepl("an integer in 0..1 (WORLD_SIZE is 2)", wrong, fixed = TRUE)))
})

test_that("fit(distributed = list(nproc_per_node = 2)) trains in 2 processes and brings the weights back", {
  skip_if_no_torchrun()
  data <- ddp_data(256L, 1L)
  m <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
    layer_conv_2d(filters = 4, kernel_size = 3, activation = "relu") |> layer_flatten() |>
    layer_dense(units = 4, activation = "softmax")
  m |> compile(optimizer = optimizer_adam(learning_rate = 0.01), loss = "sparse_categorical_crossentropy",
    metrics = "accuracy")
  before <- evaluate(m, data$x, data$y)
  h <- fit(m, data$x, data$y, batch_size = 16L, epochs = 3L, seed = 1L, verbose = 0L,
    distributed = list(nproc_per_node = 2L), validation_data = list(data$x[1:50, , , , drop = FALSE], data$y[1:50]))
  expect_s3_class(h, "pydlr_history")
  expect_identical(as.integer(h$params$steps), 8L)
  expect_true(all(c("val_loss", "val_accuracy") %in% names(as.data.frame(h))))
  after <- evaluate(m, data$x, data$y)
  expect_lt(after$loss, before$loss)
  expect_gt(after$accuracy, 0.9)
  expect_error(fit(m, data$x, data$y, distributed = list(nproc_per_node = 2L),
    callbacks = callback_early_stopping()), class = "pydlr_input_error")
  expect_error(fit(m, data$x, data$y, distributed = list(nproc = 2L)), class = "pydlr_input_error")
})

test_that("pydlr_torchrun() prints the multi-node command", {
  cmd <- NULL
  printed <- capture.output(cmd <- pydlr_torchrun("train.R", nproc_per_node = 4, nnodes = 2,
    rdzv_endpoint = "10.0.0.1:29500", script_args = c("--epochs", "3")))
  expect_identical(cmd, paste("torchrun --nnodes=2 --nproc-per-node=4 --rdzv-backend=c10d",
    "--rdzv-endpoint=10.0.0.1:29500 --rdzv-id=pydlr --no-python Rscript train.R --epochs 3"))
  expect_identical(printed, cmd)
  expect_identical(capture.output(pydlr_torchrun("my train.R")),
    "torchrun --standalone --nproc-per-node=2 --no-python Rscript 'my train.R'")
  expect_error(pydlr_torchrun("train.R", nnodes = 2), "rdzv_endpoint.*received NULL\\.$", class = "pydlr_input_error")
  expect_error(pydlr_torchrun("train.R", nproc_per_node = 0), class = "pydlr_input_error")
})

test_that("two torchrun agents (two 'nodes' on loopback) meet through the c10d rendezvous and train as one run", {
  skip_if_no_torchrun()
  out <- tempfile("nodes")
  dir.create(out)
  full <- tempfile(fileext = ".R")
  writeLines(c(deparse(call("<-", quote(ddp_data), ddp_data)), readLines(ddp_script())), full)
  endpoint <- sprintf("127.0.0.1:%d", ddp_free_port())
  cmd <- strsplit(pydlr_torchrun(full, nproc_per_node = 1L, nnodes = 2L, rdzv_endpoint = endpoint,
    script_args = out) |> capture.output(), " ")[[1]]
  expect_identical(cmd[2:6], c("--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d",
    paste0("--rdzv-endpoint=", endpoint), "--rdzv-id=pydlr"))
  args <- cmd[-1]
  system2(ddp_torchrun(), args, env = ddp_env(), wait = FALSE, stdout = FALSE, stderr = FALSE)
  output <- suppressWarnings(system2(ddp_torchrun(), args, env = ddp_env(), stdout = TRUE, stderr = TRUE,
    timeout = 120))
  expect_null(attr(output, "status"))
  for (i in 1:50) if (length(list.files(out, "^rank[01][.]rds$")) < 2L) Sys.sleep(0.2)
  r0 <- readRDS(file.path(out, "rank0.rds"))
  r1 <- readRDS(file.path(out, "rank1.rds"))
  expect_identical(r0$weights, r1$weights)
  expect_identical(r0$steps, 8L)
  expect_gt(r0$test$accuracy, 0.9)
})
