# Resident memory of an R session over many predict() calls on a small pydlr model (docs/reliability.md).
#   Rscript bench/bench_predict_memory.R [calls]   (default 10,000; prints the RSS every 1,000 calls)
# The machine's load does not change memory figures much, but other processes' memory does not count here:
# this reads the session's own VmRSS from /proc/self/status.
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])),
                 "usage.R"))
print_usage_if_asked()
library(pydlr)
calls <- as.integer(commandArgs(trailingOnly = TRUE)[1])
if (is.na(calls)) calls <- 10000L
rss_mb <- function() {
  as.numeric(gsub("[^0-9]", "", grep("^VmRSS:", readLines("/proc/self/status"), value = TRUE))) / 1024
}
m <- keras_model_sequential(input_shape = c(8)) |> layer_dense(16, activation = "relu") |>
  layer_dense(3, activation = "softmax")
x <- matrix(runif(32 * 8), 32)
for (i in 1:200) p <- predict(m, x)
invisible(gc())
start <- rss_mb()
cat(sprintf("calls,rss_mb\n0,%.1f\n", start))
t0 <- Sys.time()
for (i in seq_len(calls)) {
  p <- predict(m, x)
  if (i %% 1000L == 0L) {
    invisible(gc())
    cat(sprintf("%d,%.1f\n", i, rss_mb()))
  }
}
cat(sprintf("# %d calls in %.1f s; RSS growth %.1f MB from %.1f MB\n", calls,
  as.numeric(difftime(Sys.time(), t0, units = "secs")), rss_mb() - start, start))
