# The bridge's C code under R's own memory checkers (not in CI: minutes to tens of minutes):
#   Rscript scripts/bridge_memcheck.R gctorture   a garbage collection at every R allocation during the
#                                                 bridge's calls: an object the C code forgot to PROTECT
#                                                 is collected while still in use and the checks fail
#   R -d "valgrind --error-exitcode=3" --vanilla -f scripts/bridge_memcheck.R --args valgrind
#                                                 the same calls under valgrind's memcheck
# Run from the repository root after `source scripts/env.sh`, with R_LIBS / PYTHONPATH pointing at the
# build to check. Prints "bridge_memcheck: N checks passed" and exits non-zero on a failed check.
mode <- commandArgs(trailingOnly = TRUE)[1]
if (is.na(mode)) mode <- "gctorture"
suppressPackageStartupMessages(library(pydlr))
invisible(to_torch(1)) # start Python, import torch and pyarrow before the checks (not under gctorture)
malformed <- reticulate::import_from_path("malformed_arrow", path = "r-package/tests/testthat")

df <- data.frame(
  dbl = c(1.5, NA, NaN, -Inf, -0),
  int = c(1L, NA, -2147483647L, 2147483647L, 0L),
  lgl = c(TRUE, NA, FALSE, TRUE, NA),
  fct = factor(c("b", NA, "a", "c", "b"), levels = c("c", "b", "a", "unused")),
  chr = c("plain", NA, "\u00e9t\u00e9", "\u65e5\u672c\u8a9e", ""),
  date = as.Date(c("1970-01-01", NA, "2024-02-29", "1900-03-01", "2262-04-11")),
  time = as.POSIXct(c(0, NA, 1.5e9, -86400, 1), origin = "1970-01-01", tz = "UTC"),
  stringsAsFactors = FALSE
)
m <- matrix(stats::rnorm(12), 3, 4)
a <- array(1:24, c(2, 3, 4))
passed <- 0L
check <- function(ok, what) {
  if (!isTRUE(ok)) stop("bridge_memcheck: failed: ", what)
  passed <<- passed + 1L
}

run_checks <- function() {
  check(identical(from_py(as_arrow_py(df)), df), "data.frame round trip")
  check(identical(from_py(to_torch(m)), m), "matrix through torch")
  check(identical(from_py(to_torch(a)), a), "integer array through torch")
  check(identical(from_py(as_arrow_py(df$chr)), df$chr), "strings")
  check(identical(from_py(as_arrow_py(1:1000)), 1:1000), "ALTREP compact sequence")
  for (name in unlist(malformed$CASES)) {
    addr <- as.double(unlist(malformed$case(name)))
    res <- tryCatch(.Call(pydlr:::C_bridge_import, addr, NULL, FALSE), error = function(e) e)
    check(inherits(res, "error"), paste("malformed case", name))
  }
  malformed$clear()
  bad <- structure(c(1L, 5L), levels = "a", class = "factor")
  check(inherits(tryCatch(as_arrow_py(bad), error = function(e) e), "pydlr_input_error"), "bad factor")
  invisible(gc())
  check(pydlr:::.bridge_preserved(drain = TRUE)[["pending"]] == 0, "nothing left pending")
}

if (mode == "gctorture") {
  gctorture(TRUE)
  on.exit(gctorture(FALSE))
  run_checks()
  gctorture(FALSE)
} else {
  run_checks()
}
cat(sprintf("bridge_memcheck (%s): %d checks passed\n", mode, passed))
