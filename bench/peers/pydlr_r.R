# pydlr from R: the seed CNN with library(pydlr)'s keras3 verbs, as an R user switching from keras3 writes it.
#
# Same data (Fashion-MNIST from dataset_fashion_mnist(), divided by 255, n x 28 x 28 doubles), batch 64,
# Adam 1e-3, 2 threads (OMP_NUM_THREADS from bench_peers.py). R's compile() takes a loss name only, so the
# head is Dense(10, softmax) with "sparse_categorical_crossentropy" (what keras3 R code writes) instead of
# logits + from_logits: the same model and optimum, one softmax on a 64 x 10 batch more.
# Writes the same JSON fields as bench/peers/peer_common.py.
#
#   Rscript bench/peers/pydlr_r.R --epochs 2 --out /tmp/r.json [--predict-batch 256] [--limit 3000]

suppressPackageStartupMessages(library(pydlr))

parse_args <- function(argv) {
  opts <- list(epochs = 5L, threads = 2L, interop = 2L, `predict-batch` = 256L, limit = 0L, out = NA_character_,
               `no-predict` = FALSE)
  i <- 1L
  while (i <= length(argv)) {
    key <- sub("^--", "", argv[i])
    if (!key %in% names(opts)) stop("unknown option ", argv[i])
    if (is.logical(opts[[key]])) {
      opts[[key]] <- TRUE
      i <- i + 1L
    } else {
      value <- argv[i + 1L]
      opts[[key]] <- if (is.integer(opts[[key]])) as.integer(value) else value
      i <- i + 2L
    }
  }
  if (is.na(opts$out)) stop("--out is required")
  opts
}

cpu_seconds <- function() sum(proc.time()[c("user.self", "sys.self")])

# Wall and process-CPU seconds per epoch, fed by fit()'s epoch events.
epoch_clock <- function() {
  state <- new.env(parent = emptyenv())
  state$wall <- numeric()
  state$cpu <- numeric()
  state$callback <- callback_lambda(
    on_epoch_begin = function(epoch, logs) {
      state$t0 <- Sys.time()
      state$c0 <- cpu_seconds()
    },
    on_epoch_end = function(epoch, logs) {
      state$wall <- c(state$wall, as.numeric(difftime(Sys.time(), state$t0, units = "secs")))
      state$cpu <- c(state$cpu, cpu_seconds() - state$c0)
    }
  )
  state
}

time_predict <- function(model, x, batch_size, repeats = 3L) {
  predict(model, x, batch_size = batch_size)
  times <- vapply(seq_len(repeats), function(i) {
    system.time(predict(model, x, batch_size = batch_size))[["elapsed"]]
  }, numeric(1))
  dim(x)[1] / stats::median(times)
}

opts <- parse_args(commandArgs(trailingOnly = TRUE))
data <- dataset_fashion_mnist()
x_train <- data$train$x / 255
y_train <- data$train$y
if (opts$limit > 0L) {
  x_train <- x_train[seq_len(opts$limit), , , drop = FALSE]
  y_train <- y_train[seq_len(opts$limit)]
}
x_test <- data$test$x / 255
y_test <- data$test$y

# Seed the initial weights too (fit(seed =) seeds the shuffling): the R API's set_random_seed() when it
# has one (keras3's name), else pydlr's Python function, reached directly by this benchmark only.
if (exists("set_random_seed", envir = asNamespace("pydlr"), inherits = FALSE)) {
  pydlr::set_random_seed(0L)
} else {
  reticulate::import("pydlr.utils")$set_random_seed(0L)
}
model <- keras_model_sequential(input_shape = c(28, 28, 1)) |>
  layer_conv_2d(filters = 32, kernel_size = 3, activation = "relu") |>
  layer_max_pooling_2d(pool_size = 2) |>
  layer_conv_2d(filters = 64, kernel_size = 3, activation = "relu") |>
  layer_max_pooling_2d(pool_size = 2) |>
  layer_conv_2d(filters = 64, kernel_size = 3, activation = "relu") |>
  layer_flatten() |>
  layer_dense(units = 64, activation = "relu") |>
  layer_dense(units = 10, activation = "softmax")
model |> compile(optimizer = optimizer_adam(learning_rate = 1e-3), loss = "sparse_categorical_crossentropy",
                 metrics = "accuracy")

clock <- epoch_clock()
history <- model |> fit(x_train, y_train, batch_size = 64L, epochs = opts$epochs, shuffle = TRUE, verbose = 0,
                        callbacks = list(clock$callback), seed = 0L, device = "cpu")
scores <- evaluate(model, x_test, y_test, batch_size = opts$`predict-batch`, verbose = 0)
ips <- if (opts$`no-predict`) NULL else time_predict(model, x_test, opts$`predict-batch`)

torch <- reticulate::import("torch", convert = TRUE)
result <- list(
  name = "pydlr (R)",
  epochs = opts$epochs,
  train_images = if (opts$limit > 0L) opts$limit else 60000L,
  epoch_wall_s = clock$wall,
  epoch_cpu_s = clock$cpu,
  test_acc = scores$accuracy,
  predict_images_per_s = ips,
  predict_batch = opts$`predict-batch`,
  batch_size = 64L,
  threads = list(requested = opts$threads, interop = opts$interop, torch_threads = torch$get_num_threads(),
                 torch_interop = torch$get_num_interop_threads(),
                 OMP_NUM_THREADS = Sys.getenv("OMP_NUM_THREADS")),
  glibc_tunables = Sys.getenv("GLIBC_TUNABLES"),
  omp_wait_policy = Sys.getenv("OMP_WAIT_POLICY", "(unset)"),
  versions = list(R = as.character(getRversion()), pydlr = as.character(utils::packageVersion("pydlr")),
                  reticulate = as.character(utils::packageVersion("reticulate")), torch = reticulate::py_str(torch$`__version__`)),
  executable = file.path(R.home("bin"), "Rscript"),
  notes = "R API; head Dense(10, softmax) + sparse_categorical_crossentropy"
)
writeLines(jsonlite::toJSON(result, auto_unbox = TRUE, null = "null", digits = NA, pretty = TRUE), opts$out)
cat(sprintf("pydlr (R): epochs %s s, test acc %.4f, predict %.0f img/s\n",
            paste(sprintf("%.2f", clock$wall), collapse = " "), scores$accuracy, if (is.null(ips)) NaN else ips))
