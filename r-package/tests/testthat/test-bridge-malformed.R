# The bridge's C code against data that breaks its contracts: Arrow structs from Python that violate the
# Arrow C Data Interface, and R objects with unusual representations or attributes. Every case must end
# in an R error (or a correct result), never in a crash or in garbage.

malformed <- function() {
  reticulate::import_from_path("malformed_arrow", path = testthat::test_path(), convert = TRUE)
}

import_case <- function(name) {
  m <- malformed()
  on.exit(m$clear(), add = TRUE)
  .Call(pydlr:::C_bridge_import, as.double(unlist(m$case(name))), NULL, FALSE)
}

test_that("structs that break the Arrow C Data Interface give an R error, not a crash", {
  m <- malformed()
  cases <- unlist(m$CASES)
  expect_gt(length(cases), 30)
  expected <- c(
    dictionary_index_out_of_range = "dictionary index 1000000 out of range",
    dictionary_of_doubles = "converts dictionaries of strings",
    released_array = "released", released_schema = "released"
  )
  unsupported <- grep("^format_", cases, value = TRUE)
  unsupported <- setdiff(unsupported, "format_missing")
  for (name in cases) {
    pattern <- if (name %in% names(expected)) expected[[name]] else if (name %in% unsupported) {
      "does not convert to R"
    } else {
      "is malformed Arrow data"
    }
    expect_error(import_case(name), pattern, info = name)
  }
})

test_that("the malformed-data message says what was wrong", {
  expect_error(import_case("child_shorter_than_parent"), "column `col`.*shorter than its parent")
  expect_error(import_case("string_offsets_backwards"), "string offsets that go backwards")
  expect_error(import_case("view_past_end"), "past the end of its buffer")
  expect_error(import_case("too_few_buffers"), "2 buffers for format 'u'")
})

test_that("a null address or a bad shape is refused before anything is read", {
  expect_error(.Call(pydlr:::C_bridge_import, c(0, 0), NULL, FALSE), "not a valid pointer")
  expect_error(.Call(pydlr:::C_bridge_import, c(-8, 16), NULL, FALSE), "not a valid pointer")
  expect_error(.Call(pydlr:::C_bridge_import, c(NaN, 16), NULL, FALSE), "not a valid pointer")
  x <- to_torch(0:5) # int32, through pydlr (which sets up Python before torch is imported)
  shells <- .Call(pydlr:::C_bridge_new_shells)
  on.exit(.Call(pydlr:::C_bridge_free_shells, shells[[1]]), add = TRUE)
  reticulate::import("pydlr.bridge.arrow")$export_to_c_for_r(x, shells[[2]][1], shells[[2]][2])
  expect_error(.Call(pydlr:::C_bridge_import, shells[[2]], c(-2L, -3L), TRUE), "negative or NA dimension")
  expect_error(.Call(pydlr:::C_bridge_import, shells[[2]], c(2, 3), TRUE), "integer vector")
  expect_identical(.Call(pydlr:::C_bridge_import, shells[[2]], c(2L, 3L), FALSE), matrix(0:5, 2, 3))
})

test_that("the rpy2 entry point refuses malformed structs and still releases them", {
  m <- malformed()
  on.exit(m$clear(), add = TRUE)
  addresses <- as.double(unlist(m$case("string_offsets_backwards")))
  expect_false(m$released(addresses))
  expect_error(pydlr:::.bridge_import_from_py(addresses, NULL, FALSE), "malformed")
  expect_true(m$released(addresses))
})

# ---- R objects with unusual representations -----------------------------------------------------------

test_that("ALTREP vectors (compact sequences, deferred strings) cross exactly", {
  x <- 1:1000000 # a compact integer sequence: no data until something asks for it
  t <- to_torch(x)
  expect_equal(py_r(t$double()$sum()$item()), sum(as.double(x)))
  expect_identical(from_py(t), x)
  expect_identical(from_py(as_arrow_py(x)), x)
  big <- 3e9 + 0:9 # a compact double sequence (beyond int32)
  big_seq <- (3e9):(3e9 + 9)
  expect_identical(from_py(to_torch(big_seq)), big)
  s <- as.character(1:5) # a deferred string conversion
  expect_identical(from_py(as_arrow_py(s)), c("1", "2", "3", "4", "5"))
  df <- data.frame(i = 1:5, s = as.character(1:5), stringsAsFactors = FALSE)
  expect_identical(from_py(as_arrow_py(df)), df)
})

test_that("a long vector is converted or refused with an R error", {
  # 2^31 doubles are 16 GiB; the reference machines have 24 GiB shared by several processes.
  skip_if(Sys.getenv("PYDLR_TEST_LONG_VECTORS") != "1",
    "long vectors need 8-16 GiB of free memory: set PYDLR_TEST_LONG_VECTORS=1 to run")
  x <- logical(2^31 + 1)
  x[2^31 + 1] <- TRUE
  t <- to_torch(x)
  expect_equal(py_r(t$sum()$item()), 1)
})

test_that("matrices with dimnames and S4 objects: names kept or a clear refusal", {
  m <- matrix(c(1.5, NA, 3, 4), 2, dimnames = list(c("r1", "r2"), c("a", "b")))
  expect_identical(unname(from_py(to_torch(m))), unname(m))
  b <- as_arrow_py(m)
  expect_equal(py_r(b$schema$names), c("a", "b"))
  expect_identical(from_py(b), data.frame(a = c(1.5, NA), b = c(3, 4)))
  setClass("PydlrTestBox", representation(v = "numeric"), where = environment())
  setClass("PydlrTestNum", contains = "numeric", where = environment())
  for (obj in list(methods::new("PydlrTestBox", v = 1), methods::new("PydlrTestNum", c(1, 2)))) {
    expect_error(to_torch(obj), class = "pydlr_input_error")
    expect_error(as_arrow_py(obj), class = "pydlr_input_error")
  }
  expect_equal(from_py(to_torch(methods::new("PydlrTestNum", c(1, 2))@.Data)), c(1, 2))
})

test_that("data.frames with list, matrix or data.frame columns are refused naming the column", {
  df <- data.frame(a = 1:2)
  df$l <- list(1, "x")
  expect_error(as_arrow_py(df), "column `l` is a list", class = "pydlr_input_error")
  df2 <- data.frame(a = 1:2)
  df2$m <- matrix(1:4, 2)
  expect_error(as_arrow_py(df2), "column `m` is a matrix column", class = "pydlr_input_error")
  expect_error(to_torch(df2), "column `m`", class = "pydlr_input_error")
})

test_that("a factor whose codes are outside its levels is refused, not read past its levels", {
  f <- structure(c(1L, 5L, NA), levels = c("a", "b"), class = "factor")
  expect_error(as_arrow_py(f), "code 5 at position 2 is outside its 2 levels", class = "pydlr_input_error")
  expect_error(to_torch(f), "outside its 2 levels", class = "pydlr_input_error")
  z <- structure(c(0L, 1L), levels = "a", class = "factor")
  df <- data.frame(i = 1:2)
  df$z <- z
  expect_error(as_arrow_py(df), "column `z` is a factor whose code 0", class = "pydlr_input_error")
  # the C side refuses it too when called directly
  expect_error(.Call(pydlr:::C_bridge_export, f, 0L, 0L, 3, NULL), "factor code 5 outside its 2 levels")
})

test_that("Dates and times beyond Arrow's range are refused; NA and NaN are missing values", {
  d <- structure(c(0, Inf), class = "Date")
  expect_error(as_arrow_py(d), "the Date Inf at position 2", class = "pydlr_input_error")
  p <- structure(c(0, 1e300), class = c("POSIXct", "POSIXt"), tzone = "UTC")
  expect_error(as_arrow_py(p), "outside the range Arrow can store", class = "pydlr_input_error")
  expect_error(.Call(pydlr:::C_bridge_export, d, 0L, 0L, 2, NULL), "date32 range")
  expect_error(.Call(pydlr:::C_bridge_export, p, 0L, 0L, 2, NULL), "int64 microseconds")
  ok <- structure(c(0, NA, NaN, -2147483647), class = "Date")
  back <- from_py(as_arrow_py(ok))
  expect_identical(unclass(back), c(0, NA, NA, -2147483647))
})

test_that("strings in latin1 cross as UTF-8; a factor with an NA level keeps it", {
  s <- c("caf\xe9", NA)
  Encoding(s) <- "latin1"
  back <- from_py(as_arrow_py(s))
  expect_identical(back, c("caf\u00e9", NA))
  expect_identical(Encoding(back[1]), "UTF-8")
  f <- factor(c("a", NA, "b"), exclude = NULL)
  expect_identical(levels(from_py(as_arrow_py(f))), levels(f))
  expect_identical(as.integer(from_py(as_arrow_py(f))), as.integer(f))
})
