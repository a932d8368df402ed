# Runs the R package's testthat suite against the installed package; prints "N R-passed, N R-failed".
results <- testthat::test_dir(
  "r-package/tests/testthat", package = "pydlr", load_package = "installed",
  reporter = testthat::ProgressReporter$new(show_praise = FALSE), stop_on_failure = FALSE
)
df <- as.data.frame(results)
failed <- sum(df$failed) + sum(df$error)
cat(sprintf("%d R-passed, %d R-failed\n", sum(df$passed), failed))
quit(status = if (failed > 0) 1L else 0L)
