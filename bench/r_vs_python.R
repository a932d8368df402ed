#!/usr/bin/env Rscript
# R vs Python: the same work timed from R (through pydlr, in an R process pydlr prepared) and from Python
# (the same venv), rep by rep in random order so background load hits both alike. Prints a table of
# R/Python ratios; the target is <= 1.05 for every row.
#
#   source scripts/env.sh && Rscript bench/r_vs_python.R [--quick] [--processes N] [--rounds N] [--only a,b]
#
# Rows: torch.mm 1024^2; Dense(64) forward+backward on (64, 576); the seed CNN's conv layers forward+backward
# (batch 64); a Fashion-MNIST epoch of the seed CNN + dense head through fit() (batch 64, Adam); predict() on
# the 10,000 test images; KMeans (k = 10, k-means++) on 60,000 x 784. These run bench/r_vs_python_work.py's
# code on both sides (through reticulate in R), so a ratio above 1 is the price of the process. Indented rows
# time the R package's own verbs on R's double data, crossing included (fit() and fit_one_cycle() on 20,000
# images, pydlr_kmeans(), lr_find() 100 batches, predict()/evaluate() at batch 256, an image folder of 6,400
# PNGs + fit()) against the same calls in Python on float64 data, with where each side's median rep went:
# x's conversion to float32 ("convert"), the training loop ("loop"), the rest (R's checks and hand-over,
# model building, the result's way back), from stage clocks both processes run.
# "paired" is the median of the per-rep ratios R/Python, with a distribution-free 95% interval (order
# statistics): a row resolves 1.05 when its interval lies on one side of it.
# Process pairs: each side runs in a fresh worker (R: this script with --r-worker; Python:
# r_vs_python_work.py --worker), on --processes pairs one after the other (default 3). Two identical Python
# processes differ by up to 5% on the same training loop (0.986-1.054 over five fresh pairs, 2026-12-06), so
# one pair cannot resolve 1.05: the rows pool all pairs' reps and print each pair's own paired ratio.
# scripts/env.sh's Rscript runs torch on torch's own libgomp (PYDLR_R_TORCH_OPENMP=0: the system's); the
# header says which runtime R had and the cost of one reticulate call.
# --quick: 6,400 training images, 10,000 k-means rows, fewer reps, one pair (a smoke run, not the claim).
# --rounds N: rounds of each row's reps per pair (default 2). --only a,b: these rows (mm, dense, conv, fit,
# predict, kmeans, fit_api, kmeans_api, lr_find_api, one_cycle_api, predict_api, evaluate_api,
# image_folder_api).

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
processes <- as.integer(opt_value("--processes", if (quick) 1L else 3L))
set.seed(1)
only <- strsplit(opt_value("--only", ""), ",")[[1]]
r_worker <- "--r-worker" %in% args

script_dir <- local({
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg[1]))) else "bench"
})

# ---- a worker process: one command line in ("<row> <reps>"), one JSON line out --------------------------
start_worker <- function(command, args) {
  processx::process$new(command, args, stdin = "|", stdout = "|", stderr = "2>&1", wd = dirname(script_dir))
}
read_reply <- function(worker, who, timeout_s = 3600) {
  deadline <- Sys.time() + timeout_s
  repeat {
    worker$poll_io(1000)
    lines <- worker$read_output_lines(n = 1L)
    if (length(lines) && (startsWith(lines, "{") || startsWith(lines, "["))) return(jsonlite::fromJSON(lines))
    if (length(lines)) message(who, " worker: ", lines)
    if (!worker$is_alive()) stop("the ", who, " worker stopped")
    if (Sys.time() > deadline) stop("the ", who, " worker did not answer")
  }
}
ask <- function(worker, who, name, reps) {
  worker$write_input(sprintf("%s %d %d\n", name, reps, as.integer(quick)))
  read_reply(worker, who)
}

if (r_worker) {
suppressPackageStartupMessages(library(pydlr))
invisible(pydlr:::.pydlr_py()) # pydlr's process set-up happens here, before anything imports torch
cfg <- pydlr_config(warn = TRUE)
work <- reticulate::import_from_path("r_vs_python_work", path = script_dir, convert = FALSE)

# ---- the R side ----------------------------------------------------------------------------------------
elapsed <- function(f) {
  start <- Sys.time()
  f()
  as.double(Sys.time() - start, units = "secs")
}
# Per-rep times of torch work inside this R process, measured around each rep as on the Python side; the
# cost of one reticulate call from R (reported apart below) is not in them.
r_times <- function(name, reps) {
  reticulate::py_to_r(work$time_reps(name, as.integer(reps), quick))
}
# The R-API rows: seconds of each rep and the stage clocks' share of it (this process's wrapped pydlr).
timed_reps <- function(reps, rep) {
  out <- list(total = numeric(), convert = numeric(), loop = numeric())
  for (i in seq_len(reps)) {
    work$stage_clock()
    out$total <- c(out$total, elapsed(rep))
    clock <- reticulate::py_to_r(work$stage_clock())
    out$convert <- c(out$convert, clock$convert)
    out$loop <- c(out$loop, clock$loop)
  }
  out
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
    timed_reps(reps, function() pydlr_kmeans(x, 10, seed = 0))
  }
})

# The whole-epoch rows' data as an R user has it: doubles, x / 255 (r_vs_python_work.EPOCH_ROWS images).
epoch_data <- function(rows = if (quick) 6400L else reticulate::py_to_r(work$EPOCH_ROWS)) {
  ds <- dataset_fashion_mnist()
  list(x = ds$train$x[seq_len(rows), , , drop = FALSE] / 255, y = ds$train$y[seq_len(rows)])
}

# fit() from R: the R verbs (model_sequential() |> layers, compile(), fit()) on R's double arrays, against
# the same model and data types through Python's fit() (r_vs_python_work._fit_f64).
fit_api <- local({
  data <- NULL
  function(reps) {
    if (is.null(data)) {
      data <<- epoch_data()
    }
    timed_reps(reps, function() {
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
  }
})

# lr_find() and fit_one_cycle() from R (the verbs exposed to R last), against the same calls in Python.
softmax_seed_cnn <- function() {
  set_random_seed(0)
  model <- seed_cnn()
  model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  model
}
verb_api <- function(verb, rows = NULL) {
  data <- NULL
  function(reps) {
    if (is.null(data)) {
      ds <- dataset_fashion_mnist()
      data <<- if (is.null(rows)) epoch_data() else epoch_data(rows)
    }
    timed_reps(reps, function() verb(softmax_seed_cnn(), data$x, data$y))
  }
}
# lr_find draws its 100 batches from the whole training set, as before
lr_find_api <- verb_api(function(model, x, y) lr_find(model, x, y, num_it = 100L, batch_size = 64L),
  rows = if (quick) 6400L else 60000L)
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
    timed_reps(reps, function() verb(state$model, state$x, state$y))
  }
}
# image_dataset_from_directory() + fit() from R: a folder of PNGs streamed with the default workers (none on 2 cores).
image_folder_api <- local({
  folder <- NULL
  function(reps) {
    if (is.null(folder)) folder <<- reticulate::py_to_r(work$image_folder(quick))
    timed_reps(reps, function() {
      ds <- image_dataset_from_directory(folder, color_mode = "grayscale", image_size = c(28, 28),
                                         batch_size = 64, seed = 1, verbose = FALSE)
      fit(softmax_seed_cnn(), ds, epochs = 1, verbose = 0, seed = 0)
    })
  }
})
predict_api <- test_api(function(model, x, y) predict(model, x, batch_size = 256L))
evaluate_api <- test_api(function(model, x, y) evaluate(model, x, y, batch_size = 256L, verbose = 0L))

api_rows <- list(kmeans_api = kmeans_api, fit_api = fit_api, lr_find_api = lr_find_api,
  one_cycle_api = one_cycle_api, predict_api = predict_api, evaluate_api = evaluate_api,
  image_folder_api = image_folder_api)
cat(jsonlite::toJSON(list(ready = TRUE, python = reticulate::py_config()$python, gemm = cfg$gemm_library,
  mechanism = cfg$mechanism, openmp = paste(c(cfg$openmp_loaded,
    if (pydlr:::.openmp_torch_own(cfg)) "(torch's own, preloaded)"), collapse = " "),
  threads = cfg$threads$torch, call_us = call_overhead_us()), auto_unbox = TRUE), "\n", sep = "")
input <- file("stdin", "r")
repeat {
  line <- readLines(input, n = 1L)
  if (!length(line) || startsWith(line, "quit")) break
  parts <- strsplit(line, " ")[[1]]
  name <- parts[1]
  reps <- as.integer(parts[2])
  # 0 reps: the row's data prepared only (time_reps and the API rows build it before their first rep)
  times <- if (name %in% names(api_rows)) api_rows[[name]](reps) else r_times(name, reps)
  cat(jsonlite::toJSON(lapply(times, as.double), digits = NA), "\n", sep = "")
}
quit(save = "no")
}

# ---- the driver: fresh R and Python workers, pair after pair ------------------------------------------
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
  list(name = "fit_api", label = if (quick) "  fit() (R verbs) vs Python, f64" else "  fit() 20,000 images vs Python, f64", py = "fit_f64",
    reps = if (quick) 1L else 5L, warmup = 1L),
  list(name = "kmeans_api", label = "  pydlr_kmeans() (R API) vs KMeans, f64", py = "kmeans_f64", reps = 1L,
    warmup = 0L),
  list(name = "lr_find_api", label = "  lr_find() 100 batches vs Python, f64", py = "lr_find_f64",
    reps = if (quick) 1L else 3L, warmup = 1L),
  list(name = "one_cycle_api", label = if (quick) "  fit_one_cycle() vs Python, f64" else "  fit_one_cycle() 20,000 vs Python", py = "one_cycle_f64",
    reps = if (quick) 1L else 5L, warmup = 1L),
  list(name = "predict_api", label = "  predict() batch 256 vs Python, f64", py = "predict_f64",
    reps = if (quick) 2L else 5L, warmup = 1L),
  list(name = "evaluate_api", label = "  evaluate() batch 256 vs Python, f64", py = "evaluate_f64",
    reps = if (quick) 2L else 5L, warmup = 1L),
  list(name = "image_folder_api", label = if (quick) "  image folder + fit(), 1,280 PNGs" else
    "  image folder + fit(), 6,400 PNGs", py = "image_folder_f", reps = if (quick) 1L else 2L, warmup = 1L)
)
if (length(only) && nzchar(only[1])) rows <- Filter(function(r) r$name %in% only, rows)

# A 95% interval for the median of the pairs' ratios from their order statistics (the sign test's): no
# assumption on the ratios' distribution, so one disturbed pair widens it without moving it. NA below 6 pairs.
median_interval <- function(ratios) {
  n <- length(ratios)
  k <- qbinom(0.025, n, 0.5)
  if (k >= 1 && pbinom(k - 1, n, 0.5) > 0.025) k <- k - 1
  if (k < 1) return(c(NA_real_, NA_real_))
  sort(ratios)[c(k, n - k + 1)]
}
verdict <- function(ci) {
  if (anyNA(ci)) "" else if (ci[1] > 1.05) "  > 1.05 (resolved)" else if (ci[2] <= 1.05) "" else
    "  unresolved at 1.05"
}
as_times <- function(x) if (is.list(x)) x else list(total = as.double(x))
append_times <- function(acc, x) {
  x <- as_times(x)
  for (k in names(x)) acc[[k]] <- c(acc[[k]], as.double(x[[k]]))
  acc
}
# Where each side's median rep went, from the stage clocks (ms): convert / loop / the rest.
split_line <- function(tr, tp) {
  part <- function(t) {
    med <- function(k) if (length(t[[k]])) 1e3 * median(t[[k]]) else 0
    sprintf("convert %.1f, loop %.1f, rest %.1f", med("convert"), med("loop"),
      1e3 * median(t$total - t$convert - t$loop))
  }
  sprintf("%-38s R: %s | Python: %s\n", "      split (median ms)", part(tr), part(tp))
}
# One process pair: a fresh R worker and a fresh Python worker, every row's reps alternated between them.
measure_pair <- function(pair) {
  r <- start_worker(file.path(R.home("bin"), "Rscript"),
    c(file.path(script_dir, "r_vs_python.R"), "--r-worker", if (quick) "--quick"))
  on.exit(try(r$kill(), silent = TRUE))
  r_info <- read_reply(r, "R")
  py <- start_worker(r_info$python, c(file.path(script_dir, "r_vs_python_work.py"), "--worker"))
  on.exit(try(py$kill(), silent = TRUE), add = TRUE)
  py_info <- read_reply(py, "Python")
  if (pair == 1L) {
    cat(sprintf(paste0("R vs Python, same machine, same venv (%s)\nGEMM bound to: %s\nset-up: %s\n",
      "OpenMP runtime in R: %s\nthreads: torch %d in R, %d in Python; OMP_WAIT_POLICY=%s; GOMP_SPINCOUNT=%s; ",
      "GLIBC_TUNABLES=%s\n"), r_info$python, r_info$gemm, r_info$mechanism, r_info$openmp, r_info$threads,
      py_info$threads, Sys.getenv("OMP_WAIT_POLICY", "(unset)"), Sys.getenv("GOMP_SPINCOUNT", "(unset)"),
      Sys.getenv("GLIBC_TUNABLES", "(unset: glibc defaults)")))
    cat(sprintf(paste0("%d process pair(s) one after the other, %d x reps per row each, R and Python alternating ",
      "rep by rep in random order;\nR/Py = ratio of medians, paired = median of the per-rep ratios, 95%% CI = a ",
      "distribution-free interval for it\n(order statistics; within processes: the pairs' spread is printed apart)\n"),
      processes, rounds))
    cat(sprintf("one reticulate call from R to Python costs %.0f us (not in the rows but the R API one)\n",
      r_info$call_us))
    cat(sprintf("load average at start: %s\n\n", paste(scan("/proc/loadavg", what = "", n = 3, quiet = TRUE),
      collapse = " ")))
  }
  out <- list()
  for (row in rows) {
    py_name <- if (is.null(row$py)) row$name else row$py
    ask(r, "R", row$name, row$warmup) # warm-up reps; 0: the data prepared only
    ask(py, "Python", py_name, row$warmup)
    # Rep by rep, R and Python in random order: each pair sees nearly the same background load.
    tr <- tp <- list()
    for (i in seq_len(rounds * row$reps)) {
      if (runif(1) < 0.5) {
        tr <- append_times(tr, ask(r, "R", row$name, 1L))
        tp <- append_times(tp, ask(py, "Python", py_name, 1L))
      } else {
        tp <- append_times(tp, ask(py, "Python", py_name, 1L))
        tr <- append_times(tr, ask(r, "R", row$name, 1L))
      }
    }
    out[[row$name]] <- list(r = tr, py = tp)
  }
  r$write_input("quit\n")
  py$write_input("quit\n")
  out
}
pairs <- lapply(seq_len(processes), function(pair) {
  if (processes > 1L) message(sprintf("process pair %d of %d", pair, processes))
  measure_pair(pair)
})

header <- sprintf("%-38s %10s %11s %7s %7s %15s", "workload", "R (ms)", "Python (ms)", "R/Py", "paired",
  "paired 95% CI")
cat(header, "\n", strrep("-", nchar(header)), "\n", sep = "")
results <- list()
for (row in rows) {
  pooled <- function(side) Reduce(function(acc, p) append_times(acc, p[[row$name]][[side]]), pairs, list())
  tr <- pooled("r")
  tp <- pooled("py")
  ratios <- tr$total / tp$total
  paired <- median(ratios)
  ci <- median_interval(ratios)
  ratio <- median(tr$total) / median(tp$total)
  by_pair <- vapply(pairs, function(p) median(p[[row$name]]$r$total / p[[row$name]]$py$total), 0)
  results[[row$name]] <- data.frame(workload = row$label, r_ms = 1e3 * median(tr$total),
    py_ms = 1e3 * median(tp$total), ratio = ratio, paired = paired, ci_low = ci[1], ci_high = ci[2],
    pairs = length(ratios), pair_low = min(by_pair), pair_high = max(by_pair))
  cat(sprintf("%-38s %10.2f %11.2f %7.3f %7.3f %15s%s\n", row$label, 1e3 * median(tr$total),
    1e3 * median(tp$total), ratio, paired,
    if (anyNA(ci)) sprintf("(%d rep pairs)", length(ratios)) else sprintf("%.3f-%.3f", ci[1], ci[2]),
    verdict(ci)))
  if (processes > 1L) {
    cat(sprintf("%-38s %s\n", "      by process pair (paired)", paste(sprintf("%.3f", by_pair), collapse = " ")))
  }
  if (!is.null(row$py)) cat(split_line(tr, tp))
}
table <- do.call(rbind, results)
cat(sprintf("\nrows within 1.05x: %d of %d by the ratio of medians, %d by the paired ratio; %d resolved above 1.05\n",
  sum(table$ratio <= 1.05), nrow(table), sum(table$paired <= 1.05), sum(table$ci_low > 1.05, na.rm = TRUE)))
invisible(table)
