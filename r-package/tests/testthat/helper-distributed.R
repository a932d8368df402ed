# Distributed tests run R scripts under torchrun (and by hand with torchrun's variables), each process a
# fresh Rscript that loads this same installed package and Python.

ddp_torchrun <- function() {
  python <- pydlr_python_path()
  if (is.null(python)) return("")
  path <- file.path(dirname(python), "torchrun")
  if (file.exists(path)) path else ""
}

# The environment children need to find this package and pydlr's Python: R's library paths, PYTHONPATH.
ddp_env <- function(...) {
  c(sprintf("R_LIBS=%s", paste(.libPaths(), collapse = .Platform$path.sep)),
    sprintf("PYTHONPATH=%s", Sys.getenv("PYTHONPATH")), "OMP_NUM_THREADS=1", ...)
}

# The training script: 4 quadrant classes of 8 x 8 images, trained with seed 1; each rank saves its weights
# and history under `out` (first script argument). `RANK`-dependent initial weights check that DDP
# broadcasts rank 0's. The second argument "die" makes rank 1 quit in epoch `die_epoch`, batch 3.
ddp_script <- function(epochs = 3L, die_epoch = 2L) {
  path <- tempfile(fileext = ".R")
  writeLines(sprintf('
library(pydlr)
args <- commandArgs(TRUE); out <- args[1]; die <- length(args) > 1 && args[2] == "die"
rank <- as.integer(Sys.getenv("RANK", "0"))
data <- ddp_data(256L, 1L)
set_random_seed(100L + rank)
m <- keras_model_sequential(input_shape = c(8, 8, 1)) |>
  layer_conv_2d(filters = 4, kernel_size = 3, activation = "relu") |> layer_flatten() |>
  layer_dense(units = 4, activation = "softmax")
m |> compile(optimizer = optimizer_adam(learning_rate = 0.01), loss = "sparse_categorical_crossentropy",
  metrics = "accuracy")
cbs <- list(callback_lambda(on_batch_end = function(batch, logs) {
  if (die && rank == 1L && batch == 3L && epoch_now == %dL) quit(status = 7L)
}), callback_lambda(on_epoch_begin = function(epoch, logs) epoch_now <<- epoch + 1L))
epoch_now <- 0L
h <- fit(m, data$x, data$y, batch_size = 16L, epochs = %dL, seed = 1L, verbose = 2L, callbacks = cbs,
  resume = file.path(out, "resume"))
saveRDS(list(weights = get_weights(m), history = as.data.frame(h), steps = h$params$steps,
  test = evaluate(m, ddp_data(200L, 2L)$x, ddp_data(200L, 2L)$y)), file.path(out, sprintf("rank%%d.rds", rank)))
', die_epoch, epochs), path)
  path
}

# The same data in the test process and in the scripts (the function is sent along with the script).
ddp_data <- function(n, seed) {
  had <- exists(".Random.seed", envir = globalenv())
  old <- if (had) get(".Random.seed", envir = globalenv())
  on.exit(if (had) assign(".Random.seed", old, envir = globalenv()) else rm(".Random.seed", envir = globalenv()))
  set.seed(seed)
  x <- array(stats::runif(n * 64, 0, 0.5), c(n, 8, 8, 1))
  y <- sample(0:3, n, replace = TRUE)
  for (i in seq_len(n)) {
    r <- y[i] %/% 2L
    q <- y[i] %% 2L
    x[i, r * 4 + 1:4, q * 4 + 1:4, 1] <- x[i, r * 4 + 1:4, q * 4 + 1:4, 1] + 0.5
  }
  list(x = x, y = y)
}

# Runs the script under torchrun with 2 processes; returns the combined output (status as attribute).
ddp_run <- function(script, out, ..., timeout = 120) {
  full <- tempfile(fileext = ".R")
  writeLines(c(deparse(call("<-", quote(ddp_data), ddp_data)), readLines(script)), full)
  output <- suppressWarnings(system2(ddp_torchrun(),
    c("--standalone", "--nproc-per-node=2", "--no-python", "Rscript", full, out, ...),
    stdout = TRUE, stderr = TRUE, env = ddp_env(), timeout = timeout))
  output
}

# A TCP port free on the loopback interface now (the OS picks it): a port drawn at random may be taken, and
# a rendezvous on it then waits until the test's timeout.
ddp_free_port <- function() as.integer(reticulate::py_to_r(pydlr:::.py_function("train.distributed.free_port")()))
