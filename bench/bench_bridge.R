# Benchmark: pydlr's Arrow bridge vs reticulate's conversions, side by side in one R process.
#
#   R_LIBS=<library with pydlr> Rscript bench/bench_bridge.R [--quick]
#
# Claims: R -> torch of 1e7 doubles >= 100x faster than reticulate::r_to_py on the vector, and
# O(1) (1e8 within 3x the time of 1e6); a 1e6 x 10 mixed data.frame (double, integer, factor,
# character, with NA) -> pyarrow >= 20x faster than r_to_py(data.frame) -> pandas; Python -> R of 1e7
# doubles >= 2x faster than py_to_r. Times are medians of repeated runs (the machine is shared: noisy).
# reticulate is not run at 1e8: its Python list of 1e8 floats needs ~3.2 GB and minutes.

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])),
                 "usage.R"))
print_usage_if_asked()

suppressPackageStartupMessages(library(pydlr))
quick <- "--quick" %in% commandArgs(trailingOnly = TRUE)
reps <- if (quick) 3L else 9L

np <- reticulate::import("numpy", convert = FALSE)
gc_py <- reticulate::import("gc")

# Median wall time in ms of `expr` (a function), after one warm-up call; the result is dropped at once.
time_ms <- function(fun, n = reps) {
  invisible(fun())
  times <- vapply(seq_len(n), function(i) {
    t0 <- Sys.time()
    out <- fun()
    t1 <- Sys.time()
    rm(out)
    as.numeric(t1 - t0, units = "secs") * 1000
  }, numeric(1))
  gc_py$collect()
  invisible(gc(verbose = FALSE))
  stats::median(times)
}

rows <- list()
add <- function(case, n, ours, theirs, target, ok) {
  rows[[length(rows) + 1L]] <<- data.frame(
    case = case, n = n, pydlr_ms = round(ours, 3),
    reticulate_ms = if (is.na(theirs)) NA else round(theirs, 2),
    speedup = if (is.na(theirs)) NA else round(theirs / ours, 1), target = target, met = ok
  )
}

# ---- 1. R -> torch, doubles -------------------------------------------------------------------------
sizes <- if (quick) c(1e6, 1e7) else c(1e6, 1e7, 1e8)
r_to_torch <- numeric(0)
for (n in sizes) {
  x <- stats::runif(n)
  ours <- time_ms(function() to_torch(x))
  theirs <- if (n <= 1e7) time_ms(function() reticulate::r_to_py(x), n = if (n >= 1e7) 3L else reps) else NA
  r_to_torch[as.character(n)] <- ours
  target <- if (n == 1e7) ">= 100x" else ""
  add("R vector -> torch (to_torch vs r_to_py)", format(n, scientific = TRUE), ours, theirs, target,
    if (n == 1e7) theirs / ours >= 100 else NA)
  rm(x)
  invisible(gc(verbose = FALSE))
}
if (!quick) {
  ratio <- r_to_torch[["1e+08"]] / r_to_torch[["1e+06"]]
  add("R vector -> torch: time(1e8) / time(1e6)", "1e8 / 1e6", ratio, NA, "<= 3 (O(1))", ratio <= 3)
}

# ---- 2. data.frame 1e6 x 10 mixed -> pyarrow / pandas -------------------------------------------------
n <- if (quick) 2e5 else 1e6
set.seed(1)
with_na <- function(v, p = 0.05) {
  v[sample.int(length(v), length(v) * p)] <- NA
  v
}
words <- c("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "\u00e9t\u00e9", "na\u00efve")
df <- data.frame(
  d1 = stats::rnorm(n), d2 = with_na(stats::rnorm(n)), d3 = stats::runif(n),
  i1 = sample.int(1000L, n, TRUE), i2 = with_na(sample.int(1000L, n, TRUE)), i3 = seq_len(n),
  f1 = factor(sample(words, n, TRUE)), f2 = with_na(factor(sample(letters, n, TRUE))),
  s1 = with_na(sample(words, n, TRUE)), s2 = sprintf("id-%07d", seq_len(n)),
  stringsAsFactors = FALSE
)
ours <- time_ms(function() as_arrow_py(df))
ours_pd <- time_ms(function() as_arrow_py(df)$to_pandas(), n = 3L)
theirs <- time_ms(function() reticulate::r_to_py(df), n = 3L)
add(sprintf("data.frame %s x 10 mixed -> pyarrow (vs r_to_py -> pandas)", format(n, big.mark = ",")),
  format(n, scientific = TRUE), ours, theirs, ">= 20x", theirs / ours >= 20)
add("  same, ours then $to_pandas() (for reference)", format(n, scientific = TRUE), ours_pd, theirs, "", NA)
rm(df)
invisible(gc(verbose = FALSE))

# ---- 3. Python -> R, 1e7 doubles -------------------------------------------------------------------
n <- 1e7
a <- np$random$rand(as.integer(n))
ours <- time_ms(function() from_py(a))
theirs <- time_ms(function() reticulate::py_to_r(a))
stopifnot(identical(from_py(a), as.vector(reticulate::py_to_r(a)))) # reticulate keeps a 1-d dim
add("Python -> R (from_py vs py_to_r), NumPy float64", "1e7", ours, theirs, ">= 2x", theirs / ours >= 2)

# ---- 4. Python -> R, images in C order (Fashion-MNIST's shape): the one copy also transposes ---------
imgs <- np$random$randint(0L, 255L, size = c(if (quick) 6000L else 60000L, 28L, 28L), dtype = "uint8")
ours <- time_ms(function() from_py(imgs), n = 3L)
theirs <- time_ms(function() reticulate::py_to_r(imgs), n = 3L)
stopifnot(identical(from_py(imgs), reticulate::py_to_r(imgs)))
add("Python -> R, uint8 images n x 28 x 28 (C order)", if (quick) "6e3 x 784" else "6e4 x 784", ours, theirs,
  "", NA)

table <- do.call(rbind, rows)
cat(sprintf("pydlr bridge benchmark (%s; GLIBC_TUNABLES=%s; %d cores; medians of %d runs)\n",
  format(Sys.time(), "%Y-%m-%d %H:%M"), Sys.getenv("GLIBC_TUNABLES", "(default)"),
  parallel::detectCores(), reps))
print(table, row.names = FALSE, right = FALSE)
