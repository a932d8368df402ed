# The bridge's C code under R's own memory checkers (not in CI: minutes to tens of minutes):
#   Rscript scripts/bridge_memcheck.R gctorture   a garbage collection at every R allocation inside the
#                                                 bridge's C code: an object it forgot to PROTECT is
#                                                 collected while still in use and the checks fail
#   PYTHONMALLOC=malloc R -d "valgrind --num-callers=20" --vanilla -f scripts/bridge_memcheck.R --args valgrind
#                                                 the same calls under valgrind's memcheck (its report lists
#                                                 CPython's and the loader's usual false positives too:
#                                                 look for frames in pydlr.so)
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
# gctorture only around the C code: with it on every R allocation collects, far too slow for the Python
# side (reticulate allocates at every call), which does not touch R's heap from C.
torture <- mode == "gctorture"
in_c <- function(expr) {
  if (torture) {
    gctorture(TRUE)
    on.exit(gctorture(FALSE))
  }
  expr
}
arrow <- reticulate::import("pydlr.bridge.arrow", convert = FALSE)

# R -> C export -> pyarrow -> C import -> R, the C steps tortured.
round_trip <- function(x, mode = "arrow") {
  ex <- in_c(pydlr:::.bridge_export(x, mode, matrix_columns = FALSE))
  on.exit(.Call(pydlr:::C_bridge_free_shells, ex$shells), add = TRUE)
  py <- arrow$import_from_c(ex$addresses[1], ex$addresses[2], batch = ex$batch)
  shells <- .Call(pydlr:::C_bridge_new_shells)
  on.exit(.Call(pydlr:::C_bridge_free_shells, shells[[1]]), add = TRUE)
  info <- unlist(reticulate::py_to_r(arrow$export_to_c_for_r(py, shells[[2]][1], shells[[2]][2])))
  in_c(.Call(pydlr:::C_bridge_import, shells[[2]], if (length(info) > 2) as.integer(info[-(1:2)]) else NULL,
    info[2] == 1))
}

run_checks <- function() {
  check(identical(round_trip(df), df), "data.frame round trip")
  for (j in seq_along(df)) check(identical(round_trip(df[[j]]), df[[j]]), paste("column", names(df)[j]))
  check(identical(round_trip(as.vector(m), "tensor"), as.vector(m)), "doubles as a tensor")
  check(identical(round_trip(1:1000), 1:1000), "ALTREP compact sequence")
  check(identical(round_trip(character(0)), character(0)), "zero length")
  for (name in unlist(malformed$CASES)) {
    addr <- as.double(unlist(malformed$case(name)))
    res <- in_c(tryCatch(.Call(pydlr:::C_bridge_import, addr, NULL, FALSE), error = function(e) e))
    check(inherits(res, "error"), paste("malformed case", name))
  }
  malformed$clear()
  bad <- structure(c(1L, 5L), levels = "a", class = "factor")
  res <- in_c(tryCatch(.Call(pydlr:::C_bridge_export, bad, 0L, 0L, 2, NULL), error = function(e) e))
  check(inherits(res, "error"), "bad factor")
  # the user-level verbs once, not tortured
  check(identical(from_py(as_arrow_py(df)), df), "as_arrow_py / from_py")
  check(identical(from_py(to_torch(a)), a), "to_torch / from_py")
  invisible(gc())
  check(pydlr:::.bridge_preserved(drain = TRUE)[["pending"]] == 0, "nothing left pending")
}

run_checks()
cat(sprintf("bridge_memcheck (%s): %d checks passed\n", mode, passed))
