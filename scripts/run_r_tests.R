# Runs the R package's testthat suite against the installed package; prints "N R-passed, N R-failed".
#   Rscript scripts/run_r_tests.R [--results out.json] [test files...]
# --results writes one record per test (file, test, failed, skipped) for scripts/reliability_table.py;
# named files run only those, otherwise the whole folder.
args <- commandArgs(trailingOnly = TRUE)
results_path <- NULL
if (length(args) >= 2 && args[[1]] == "--results") {
  results_path <- args[[2]]
  args <- args[-(1:2)]
}
reporter <- testthat::ProgressReporter$new(show_praise = FALSE)
results <- if (length(args)) {
  do.call(rbind, lapply(args, function(f) as.data.frame(testthat::test_file(
    f, package = "pydlr", load_package = "installed", reporter = reporter, stop_on_failure = FALSE
  ))))
} else {
  as.data.frame(testthat::test_dir(
    "r-package/tests/testthat", package = "pydlr", load_package = "installed",
    reporter = reporter, stop_on_failure = FALSE
  ))
}
df <- results
if (!is.null(results_path)) {
  rows <- lapply(seq_len(nrow(df)), function(i) list(
    file = df$file[[i]], test = df$test[[i]], failed = df$failed[[i]] > 0 || isTRUE(df$error[[i]]),
    skipped = isTRUE(df$skipped[[i]])
  ))
  writeLines(jsonlite::toJSON(rows, auto_unbox = TRUE), results_path)
}
failed <- sum(df$failed) + sum(df$error)
cat(sprintf("%d R-passed, %d R-failed\n", sum(df$passed), failed))
quit(status = if (failed > 0) 1L else 0L)
