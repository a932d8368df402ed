# docs/CONTRACT.md's name table: every function the R package exports sits beside its Python name.

test_that("every R export has a row in the R/Python name table", {
  contract <- testthat::test_path("..", "..", "..", "docs", "CONTRACT.md")
  skip_if_not(file.exists(contract), "run from the source tree")
  rows <- grep("^\\| `", readLines(contract), value = TRUE)
  r_column <- sub("^\\| ([^|]*)\\|.*", "\\1", rows)
  named <- function(name) any(grepl(paste0("`", name, "("), r_column, fixed = TRUE) |
    grepl(paste0("`", name, "`"), r_column, fixed = TRUE))
  exports <- sort(getNamespaceExports("pydlr"))
  expect_identical(exports[!vapply(exports, named, logical(1))], character())
  expect_gte(length(rows), 50L)
})
