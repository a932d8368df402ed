#!/usr/bin/env Rscript
# R vs Python: the same work timed in one run from R (through pydlr, in the R process pydlr prepared) and
# from Python (a subprocess of the same venv), rep by rep in alternating blocks so background load hits
# both alike. Prints a table of R/Python median-time ratios; the target is <= 1.05 for every row.
#
#   source scripts/env.sh && Rscript bench/r_vs_python.R [--quick] [--rounds N] [--only mm,dense,...]
#
# Rows: torch.mm 1024^2; Dense(64) forward+backward on (64, 576); the seed CNN's conv layers forward+backward
# on a batch of 64; one Fashion-MNIST epoch of the seed CNN + dense head through fit() (batch 64, Adam);
# predict() on the 10,000 test images; pydlr KMeans (k = 10, k-means++, seed 0) on 60,000 x 784; lr_find()
# (100 batches) and fit_one_cycle() (one epoch) of the seed CNN; predict() and evaluate() at batch 256 on the
# 10,000 test images; image_dataset_from_directory() + fit() over a folder of 6,400 PNGs.
# R runs each workload through reticulate (bench/r_vs_python_work.py, the same code the Python side runs,
# timed per rep in the same way), so a ratio above 1 is the price of the process: BLAS binding, OpenMP
# runtime, threads, allocator. The fixed cost of one reticulate call is printed apart. Started as above, R runs
# torch on torch's own libgomp (scripts/env.sh's Rscript preloads it; the Python worker inherits the preload,
# the file torch loads there anyway); the header says which runtime R had. PYDLR_R_TORCH_OPENMP=0 measures R
# on the system libgomp it links.
# Indented rows time the R package's own verbs (fit(), pydlr_kmeans()) on R's double data, data crossing
# included, against the same calls in Python on float64 data (what R's numeric arrays are).
# --quick: 6,400 training images, 10,000 k-means rows, fewer reps (a smoke run, not the claim).

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])),
                 "usage.R"))
print_usage_if_asked()

args <- commandArgs(trailingOnly = TRUE)
quick <- "--quick" %in% args
opt_value <- function(flag, default) {
  i <- match(flag, args)
  if (is.na(i) || i == length(args)) default else args[[i + 1L]]
}
rounds <- as.integer(opt_value("--rounds", if (quick) 1L else 2L))
set.seed(1)
only <- strsplit(opt_value("--only", ""), ",")[[1]]

script_dir <- local({
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg[1]))) else "bench"
})

suppressPackageStartupMessages(library(pydlr))
invisible(pydlr:::.pydlr_py()) # pydlr's process set-up happens here, before anything imports torch
cfg <- pydlr_config(warn = TRUE)
work <- reticulate::import_from_path("r_vs_python_work", path = script_dir, convert = FALSE)
python <- reticulate::py_config()$python

# ---- the Python worker: a subprocess of the same venv, one command line in, one JSON line out ----------
worker <- processx::process$new(python, c(file.path(script_dir, "r_vs_python_work.py"), "--worker"),
  stdin = "|", stdout = "|", stderr = "2>&1", wd = dirname(script_dir)
)
read_reply <- function(timeout_s = 3600) {
  deadline <- Sys.time() + timeout_s
  repeat {
    worker$poll_io(1000)
    lines <- worker$read_output_lines(n = 1L)
    if (length(lines) && startsWith(lines, "{") || length(lines) && startsWith(lines, "[")) {
      return(jsonlite::fromJSON(lines))
    }
    if (length(lines)) message("python worker: ", lines)
    if (!worker$is_alive()) stop("the Python worker stopped")
    if (Sys.time() > deadline) stop("the Python worker did not answer")
  }
}
py_info <- read_reply()
py_times <- function(name, reps) {
  worker$write_input(sprintf("%s %d %d\n", name, reps, as.integer(quick)))
  read_reply()
}
on.exit(try(worker$kill(), silent = TRUE))

# ---- the R side ----------------------------------------------------------------------------------------
elapsed <- function(f) {
  start <- proc.time()[["elapsed"]]
  f()
  proc.time()[["elapsed"]] - start
}
# Per-rep times of torch work inside this R process, measured around each rep as on the Python side; the
# cost of one reticulate call from R (reported apart below) is not in them.
r_times <- function(name, reps) {
  as.double(reticulate::py_to_r(work$time_reps(name, as.integer(reps), quick)))
}
call_overhead_us <- function(n = 2000L) {
  noop <- reticulate::py_eval("lambda: None")
  1e6 * elapsed(function() for (i in seq_len(n)) noop()) / n
}

# pydlr_kmeans() from R: the R API, with the data crossing through the bridge (prepared once, untimed).
kmeans_api <- local({
  x <- NULL
  function(reps) {
    if (is.null(x)) {
      ds <- dataset_fashion_mnist()
      images <- ds$train$x
      n <- if (quick) 10000L else dim(images)[1]
      x <<- matrix(as.double(images[seq_len(n), , ]), nrow = n)
    }
    vapply(seq_len(reps), function(i) elapsed(function() pydlr_kmeans(x, 10, seed = 0)), 0)
  }
})

# fit() from R: the R verbs (model_sequential() |> layers, compile(), fit()) on R's double arrays, against
# the same model and data types through Python's fit() (r_vs_python_work._fit_f64).
fit_api <- local({
  data <- NULL
  function(reps) {
    if (is.null(data)) {
      ds <- dataset_fashion_mnist()
      n <- if (quick) 6400L else dim(ds$train$x)[1]
      data <<- list(x = ds$train$x[seq_len(n), , , drop = FALSE] / 255, y = ds$train$y[seq_len(n)])
    }
    vapply(seq_len(reps), function(i) {
      elapsed(function() {
        set_random_seed(0)
        model <- model_sequential(input_shape = c(28, 28, 1)) |>
          layer_conv_2d(filters = 32, kernel_size = c(3, 3), activation = "relu") |>
          layer_max_pooling_2d(pool_size = c(2, 2)) |>
          layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") |>
          layer_max_pooling_2d(pool_size = c(2, 2)) |>
          layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") |>
          layer_flatten() |>
          layer_dense(units = 64, activation = "relu") |>
          layer_dense(units = 10, activation = "softmax")
        model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
        model |> fit(data$x, data$y, epochs = 1, batch_size = 64, seed = 0, verbose = 0, device = "cpu")
      })
    }, 0)
  }
})

# lr_find() and fit_one_cycle() from R (the verbs exposed to R last), against the same calls in Python.
softmax_seed_cnn <- function() {
  set_random_seed(0)
  model <- seed_cnn()
  model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  model
}
verb_api <- function(verb) {
  data <- NULL
  function(reps) {
    if (is.null(data)) {
      ds <- dataset_fashion_mnist()
      n <- if (quick) 6400L else dim(ds$train$x)[1]
      data <<- list(x = ds$train$x[seq_len(n), , , drop = FALSE] / 255, y = ds$train$y[seq_len(n)])
    }
    vapply(seq_len(reps), function(i) elapsed(function() verb(softmax_seed_cnn(), data$x, data$y)), 0)
  }
}
lr_find_api <- verb_api(function(model, x, y) lr_find(model, x, y, num_it = 100L, batch_size = 64L))
one_cycle_api <- verb_api(function(model, x, y) {
  fit_one_cycle(model, x, y, epochs = 1L, max_lr = 3e-3, batch_size = 64L, verbose = 0L, seed = 0L, device = "cpu")
})

# predict() and evaluate() from R at batch 256 on the 10,000 test images (R's doubles, crossing included).
test_api <- function(verb) {
  state <- NULL
  function(reps) {
    if (is.null(state)) {
      ds <- dataset_fashion_mnist()
      state <<- list(model = softmax_seed_cnn(), x = ds$test$x / 255, y = ds$test$y)
    }
    vapply(seq_len(reps), function(i) elapsed(function() verb(state$model, state$x, state$y)), 0)
  }
}
# image_dataset_from_directory() + fit() from R: a folder of PNGs streamed with the default workers (none on 2 cores).
image_folder_api <- local({
  folder <- NULL
  function(reps) {
    if (is.null(folder)) folder <<- reticulate::py_to_r(work$image_folder(quick))
    vapply(seq_len(reps), function(i) {
      elapsed(function() {
        ds <- image_dataset_from_directory(folder, color_mode = "grayscale", image_size = c(28, 28),
                                           batch_size = 64, seed = 1, verbose = FALSE)
        fit(softmax_seed_cnn(), ds, epochs = 1, verbose = 0, seed = 0)
      })
    }, 0)
  }
})
predict_api <- test_api(function(model, x, y) predict(model, x, batch_size = 256L))
evaluate_api <- test_api(function(model, x, y) evaluate(model, x, y, batch_size = 256L, verbose = 0L))

rows <- list(
  list(name = "mm", label = "torch.mm 1024x1024", reps = 10L, warmup = 2L),
  list(name = "dense", label = "Dense(64) fwd+bwd, batch 64", reps = 30L, warmup = 5L),
  list(name = "conv", label = "seed conv layers fwd+bwd, batch 64", reps = 5L, warmup = 2L),
  list(name = "fit", label = if (quick) "fit(): 6,400 images, 1 epoch" else "fit(): Fashion-MNIST 1 epoch",
    reps = 1L, warmup = 0L),
  list(name = "predict", label = "predict(): 10,000 images", reps = if (quick) 1L else 2L,
    warmup = if (quick) 0L else 1L),
  list(name = "kmeans", label = if (quick) "KMeans 10,000 x 784" else "KMeans 60,000 x 784",
    reps = 1L, warmup = 0L),
  list(name = "fit_api", label = "  fit() (R verbs) vs Python fit(), f64", py = "fit_f64", reps = 1L,
    warmup = 0L),
  list(name = "kmeans_api", label = "  pydlr_kmeans() (R API) vs KMeans, f64", py = "kmeans_f64", reps = 1L,
    warmup = 0L),
  list(name = "lr_find_api", label = "  lr_find() 100 batches vs Python, f64", py = "lr_find_f64", reps = 1L,
    warmup = 0L),
  list(name = "one_cycle_api", label = "  fit_one_cycle() 1 epoch vs Python, f64", py = "one_cycle_f64",
    reps = 1L, warmup = 0L),
  list(name = "predict_api", label = "  predict() batch 256 vs Python, f64", py = "predict_f64",
    reps = if (quick) 2L else 5L, warmup = 1L),
  list(name = "evaluate_api", label = "  evaluate() batch 256 vs Python, f64", py = "evaluate_f64",
    reps = if (quick) 2L else 5L, warmup = 1L),
  list(name = "image_folder_api", label = if (quick) "  image folder + fit(), 1,280 PNGs" else
    "  image folder + fit(), 6,400 PNGs", py = "image_folder_f", reps = if (quick) 1L else 2L, warmup = 1L)
)
if (length(only) && nzchar(only[1])) rows <- Filter(function(r) r$name %in% only, rows)

cat(sprintf(
  "R vs Python, same machine, same venv (%s)\nGEMM bound to: %s\nset-up: %s\nOpenMP runtime in R: %s\nthreads: torch %d in R, %d in Python; OMP_WAIT_POLICY=%s; GOMP_SPINCOUNT=%s; GLIBC_TUNABLES=%s\n",
  python, cfg$gemm_library, cfg$mechanism,
  paste(c(cfg$openmp_loaded, if (pydlr:::.openmp_torch_own(cfg)) "(torch's own, preloaded)"), collapse = " "),
  cfg$threads$torch, py_info$threads,
  Sys.getenv("OMP_WAIT_POLICY", "(unset)"), Sys.getenv("GOMP_SPINCOUNT", "(unset)"), Sys.getenv("GLIBC_TUNABLES", "(unset: glibc defaults)")
))
cat(sprintf(paste0(
  "%d x reps per row, R and Python alternating rep by rep in random order; R/Py = ratio of medians,\n",
  "paired = median of the per-pair ratios\n"), rounds))
cat(sprintf("one reticulate call from R to Python costs %.0f us (not in the rows but the R API one)\n\n",
  call_overhead_us()))
header <- sprintf("%-38s %12s %12s %8s %8s", "workload", "R (ms)", "Python (ms)", "R/Py", "paired")
cat(header, "\n", strrep("-", nchar(header)), "\n", sep = "")
results <- list()
for (row in rows) {
  py_name <- if (is.null(row$py)) row$name else row$py
  api_rows <- list(kmeans_api = kmeans_api, fit_api = fit_api, lr_find_api = lr_find_api,
    one_cycle_api = one_cycle_api, predict_api = predict_api, evaluate_api = evaluate_api,
    image_folder_api = image_folder_api)
  run_r <- if (row$name %in% names(api_rows)) api_rows[[row$name]] else function(reps) r_times(row$name, reps)
  if (row$warmup > 0L) {
    run_r(row$warmup)
    py_times(py_name, row$warmup)
  } else {
    if (!row$name %in% names(api_rows)) work$runner(row$name, quick)
    py_times(py_name, 0L)
  }
  # Rep by rep, R and Python in random order: each pair sees nearly the same background load.
  tr <- tp <- numeric()
  for (i in seq_len(rounds * row$reps)) {
    if (runif(1) < 0.5) {
      tr <- c(tr, run_r(1L))
      tp <- c(tp, py_times(py_name, 1L))
    } else {
      tp <- c(tp, py_times(py_name, 1L))
      tr <- c(tr, run_r(1L))
    }
  }
  paired <- median(tr / tp)
  ratio <- median(tr) / median(tp)
  results[[row$name]] <- data.frame(
    workload = row$label, r_ms = 1e3 * median(tr), py_ms = 1e3 * median(tp), ratio = ratio, paired = paired
  )
  cat(sprintf("%-38s %12.2f %12.2f %8.3f %8.3f%s\n", row$label, 1e3 * median(tr), 1e3 * median(tp), ratio,
    paired, if (ratio > 1.05) "  > 1.05" else ""))
}
worker$write_input("quit\n")
table <- do.call(rbind, results)
cat(sprintf("\nrows within 1.05x: %d of %d\n", sum(table$ratio <= 1.05), nrow(table)))
invisible(table)
