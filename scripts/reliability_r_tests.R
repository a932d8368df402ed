# Lists the expected errors of the R package's tests as JSON, for scripts/reliability_table.py --suggest:
# one record per expect_error() (or expect_condition()) inside a test_that() block, with the test's file and
# description, the functions the failing expression calls, the condition class and the message pattern.
# Usage: Rscript scripts/reliability_r_tests.R r-package/tests/testthat > out.json
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[[1]] else "r-package/tests/testthat"

# The names of the functions an expression calls (the pipe is already rewritten by the parser).
called <- function(e) {
  if (!is.call(e)) return(character())
  head <- if (is.name(e[[1]])) as.character(e[[1]]) else character()
  c(head, unlist(lapply(as.list(e)[-1], called)))
}

# The test files' own helpers around expect_error(expr, class = ...): their name and the class they expect.
wrappers <- c(input_error = "pydlr_input_error", unsupported = "pydlr_not_supported_error")

text_of <- function(e) paste(trimws(deparse(e, width.cutoff = 200L)), collapse = " ")

# Every expect_error()/expect_condition() call inside `code`, with its arguments matched by name.
expectations <- function(code) {
  if (!is.call(code)) return(list())
  head <- if (is.name(code[[1]])) as.character(code[[1]]) else ""
  found <- list()
  if (head %in% c("expect_error", "expect_condition", names(wrappers))) {
    m <- match.call(function(object, regexp = NULL, class = NULL, ...) NULL, code)
    class <- if (is.character(m$class)) m$class else if (head %in% names(wrappers)) wrappers[[head]] else ""
    found <- list(list(
      input = text_of(m$object), calls = unique(called(m$object)), class = class,
      regexp = if (is.character(m$regexp)) m$regexp else ""
    ))
  }
  c(found, unlist(lapply(as.list(code)[-1], expectations), recursive = FALSE))
}

out <- list()
for (file in sort(list.files(dir, pattern = "^test-.*\\.R$", full.names = TRUE))) {
  for (e in parse(file, keep.source = FALSE)) {
    if (!is.call(e) || !identical(e[[1]], as.name("test_that")) || !is.character(e[[2]])) next
    for (x in expectations(e[[3]])) {
      out[[length(out) + 1]] <- c(list(file = file, test = e[[2]]), x)
    }
  }
}
cat(jsonlite::toJSON(out, auto_unbox = TRUE, pretty = FALSE))
