# The Arrow bridge: zero-copy views, bit-exact round trips, images, the reverse direction, bad input.

test_that("to_torch views R's memory: same address for vectors, matrices, arrays", {
  x <- c(1.5, NA, -Inf, NaN, 0)
  t <- to_torch(x)
  expect_equal(py_data_ptr(t), pydlr:::.bridge_address(x))
  expect_equal(py_r(t$dtype$`__str__`()), "torch.float64")
  m <- matrix(as.double(1:12), 3, 4)
  tm <- to_torch(m)
  expect_equal(py_data_ptr(tm), pydlr:::.bridge_address(m))
  expect_equal(py_shape(tm), c(3, 4))
  expect_equal(py_strides(tm), c(1, 3)) # column-major: F-order strides, no copy
  expect_equal(py_r(tm[2L][3L]$item()), m[3, 4])
  i <- matrix(1:6, 2, 3)
  ti <- to_torch(i)
  expect_equal(py_data_ptr(ti), pydlr:::.bridge_address(i))
  expect_equal(py_r(ti$dtype$`__str__`()), "torch.int32")
  a <- array(as.double(1:24), c(2, 3, 4))
  expect_equal(py_data_ptr(to_torch(a)), pydlr:::.bridge_address(a))
  # the NumPy view used by fit()/predict() is the same memory
  v <- pydlr:::.bridge_array_to_py(m)
  expect_equal(py_data_ptr(v), pydlr:::.bridge_address(m))
  expect_false(py_r(v$flags$writeable))
})

test_that("as_arrow_py buffers are R's memory for doubles and integers, with NA as nulls", {
  x <- c(1, NA, 3, NaN)
  arr <- as_arrow_py(x)
  expect_equal(py_number(arr$buffers()[1L]$address), pydlr:::.bridge_address(x))
  expect_equal(py_r(arr$null_count), 1L) # NA is a null, NaN a value
  expect_equal(unlist(py_r(arr$is_null()$to_pylist())), c(FALSE, TRUE, FALSE, FALSE))
  i <- c(5L, NA, 7L)
  ai <- as_arrow_py(i)
  expect_equal(py_number(ai$buffers()[1L]$address), pydlr:::.bridge_address(i))
  # a matrix is a record batch of its columns, each a view into the matrix
  m <- matrix(as.double(1:6), 3, 2, dimnames = list(NULL, c("a", "b")))
  b <- as_arrow_py(m)
  expect_equal(py_r(b$schema$names), c("a", "b"))
  expect_equal(py_number(b$column(1L)$buffers()[1L]$address), pydlr:::.bridge_address(m) + 3 * 8)
})

test_that("R -> Arrow -> R round trips are bit-exact: NA positions, levels, UTF-8, dates, times", {
  df <- data.frame(
    dbl = c(1.5, NA, NaN, -Inf, .Machine$double.xmin, -0),
    int = c(1L, NA, -2147483647L, 2147483647L, 0L, NA),
    lgl = c(TRUE, NA, FALSE, TRUE, NA, FALSE),
    fct = factor(c("b", NA, "a", "c", "b", "\u00e9"), levels = c("c", "b", "a", "\u00e9", "unused")),
    ord = factor(c("lo", "hi", NA, "mid", "lo", "hi"), levels = c("lo", "mid", "hi"), ordered = TRUE),
    chr = c("plain", NA, "\u00e9t\u00e9 na\u00efve", "\u65e5\u672c\u8a9e", "\U0001F600", ""),
    date = as.Date(c("1970-01-01", NA, "2024-02-29", "1900-03-01", "2262-04-11", "2000-01-01")),
    time = as.POSIXct(c(0, NA, 1.5e9, -86400.25, 1234567890.123456, 1), origin = "1970-01-01", tz = "UTC"),
    zone = as.POSIXct(c(0, 1, 2, 3, NA, 5), origin = "1970-01-01", tz = "America/New_York"),
    stringsAsFactors = FALSE
  )
  # POSIXct crosses as integer microseconds: exact for times on the microsecond grid
  df$time <- as.POSIXct(round(as.numeric(df$time) * 1e6) / 1e6, origin = "1970-01-01", tz = "UTC")
  batch <- as_arrow_py(df)
  expect_equal(py_r(batch$num_rows), 6L)
  types <- vapply(0:8, function(j) py_r(batch$schema$field(j)$type$`__str__`()), "")
  expect_equal(types, c("double", "int32", "bool", "dictionary<values=string, indices=int32, ordered=0>",
    "dictionary<values=string, indices=int32, ordered=1>", "string", "date32[day]", "timestamp[us, tz=UTC]",
    "timestamp[us, tz=America/New_York]"))
  back <- from_py(batch)
  expect_identical(back, df) # identical() tells NA from NaN and compares levels, classes, tzone
  expect_identical(is.na(back$chr), is.na(df$chr))
  expect_identical(Encoding(back$chr[3]), "UTF-8")
  # single vectors too, and the local time zone "" goes as UTC (same instants)
  local <- as.POSIXct(c(0, 60), origin = "1970-01-01")
  attr(local, "tzone") <- ""
  expect_identical(unclass(from_py(as_arrow_py(local))), structure(c(0, 60), tzone = "UTC"))
  expect_identical(from_py(as_arrow_py(df$fct)), df$fct)
})

test_that("from_py(to_torch(x)) is bit-exact, NA payload included", {
  x <- c(1.5, NA, NaN, Inf, -0, 1e-310)
  expect_identical(from_py(to_torch(x)), x)
  m <- matrix(stats::rnorm(20), 4, 5)
  expect_identical(from_py(to_torch(m)), m)
  a <- array(1:60, c(3, 4, 5))
  expect_identical(from_py(to_torch(a)), a)
  l <- c(TRUE, FALSE, TRUE)
  tl <- to_torch(l)
  expect_equal(py_r(tl$dtype$`__str__`()), "torch.bool")
  expect_identical(from_py(tl), l)
  f <- factor(c("b", "a", "b"))
  expect_identical(from_py(to_torch(f)), c(1L, 0L, 1L)) # 0-based codes
  expect_identical(from_py(to_torch(data.frame(a = c(1, 2), b = c(3L, 4L)))), matrix(c(1, 2, 3, 4), 2, 2))
  m32 <- from_py(to_torch(m, dtype = "float32"))
  expect_identical(dim(m32), dim(m))
  expect_equal(m32, m, tolerance = 1e-6)
})

test_that("image arrays: pixel positions in NHWC and after the transposition to NCHW", {
  n <- 2L; h <- 3L; w <- 4L; ch <- 2L
  x <- array(as.double(seq_len(n * h * w * ch)), c(n, h, w, ch)) # distinct values: positions are checkable
  t <- to_torch(x)
  expect_equal(py_data_ptr(t), pydlr:::.bridge_address(x)) # the NHWC view is the R array itself
  expect_equal(py_shape(t), c(n, h, w, ch))
  expect_equal(py_strides(t), c(1, n, n * h, n * h * w))
  nchw <- t$permute(c(0L, 3L, 1L, 2L))
  positions <- rbind(c(1, 1, 1, 1), c(2, 3, 4, 2), c(1, 2, 3, 2), c(2, 1, 4, 1), c(2, 3, 1, 1))
  for (k in seq_len(nrow(positions))) {
    p <- positions[k, ]
    expected <- x[p[1], p[2], p[3], p[4]]
    expect_equal(py_r(t[p[1] - 1L][p[2] - 1L][p[3] - 1L][p[4] - 1L]$item()), expected)
    expect_equal(py_r(nchw[p[1] - 1L][p[4] - 1L][p[2] - 1L][p[3] - 1L]$item()), expected)
  }
  # h x w x c x n arrays (stacked images) come out NHWC too, still a view
  y <- aperm(x, c(2, 3, 4, 1))
  ty <- to_torch(y, layout = "hwcn")
  expect_equal(py_shape(ty), c(n, h, w, ch))
  expect_equal(py_data_ptr(ty), pydlr:::.bridge_address(y))
  expect_true(py_r(ty$equal(t)))
  # n x c x h x w as well
  z <- aperm(x, c(1, 4, 2, 3))
  expect_true(py_r(to_torch(z, layout = "nchw")$equal(t)))
  # contiguous = TRUE: an NHWC-contiguous copy whose NCHW permutation is channels-last
  tc <- to_torch(x, contiguous = TRUE, dtype = "float32")
  expect_true(py_r(tc$is_contiguous()))
  torch <- reticulate::import("torch", convert = FALSE)
  expect_true(py_r(tc$permute(c(0L, 3L, 1L, 2L))$is_contiguous(memory_format = torch$channels_last)))
  expect_equal(py_r(tc[1L][2L][3L][1L]$item()), x[2, 3, 4, 2])
})

test_that("from_py: NumPy and torch arrays keep their dims in R's order, one copy, C or F order", {
  np <- reticulate::import("numpy", convert = FALSE)
  torch <- reticulate::import("torch", convert = FALSE)
  a <- np$arange(24L)$reshape(c(2L, 3L, 4L)) # C order
  r <- from_py(a)
  expect_identical(dim(r), c(2L, 3L, 4L))
  expect_identical(r[2, 3, 4], 23) # NumPy's int64: R double
  expect_identical(r[1, 2, 3], 6) # a[0, 1, 2] = 1 * 4 + 2
  f <- from_py(np$asfortranarray(a))
  expect_identical(f, r)
  m <- from_py(np$arange(6)$reshape(c(2L, 3L)))
  expect_identical(m, matrix(c(0, 3, 1, 4, 2, 5), 2, 3))
  tt <- torch$arange(12L, dtype = torch$float32)$reshape(c(3L, 4L))$t() # non-contiguous
  expect_identical(from_py(tt), matrix(as.double(0:11), 4, 3)) # tt[i, j] = 4 * j + i
  expect_identical(from_py(np$array(c(1L, 2L), dtype = "int64")), c(1, 2))
  expect_identical(from_py(np$array(c(1L, 200L), dtype = "uint8")), c(1L, 200L))
  expect_identical(from_py(np$array(c(TRUE, FALSE))), c(TRUE, FALSE))
  expect_identical(from_py(np$array(c(0.5, 0.25), dtype = "float32")), c(0.5, 0.25))
  # float32 widened to double in every layout: C-order 2-d (blocked past 64 x 64) and 3-d, F-order, with nulls
  big <- np$arange(130L * 70L, dtype = "float32")$reshape(c(130L, 70L))
  expect_identical(from_py(big), matrix(as.double(0:(130 * 70 - 1)), 130, 70, byrow = TRUE))
  a32 <- np$arange(24L, dtype = "float32")$reshape(c(2L, 3L, 4L))
  expect_identical(from_py(a32), r)
  expect_identical(from_py(np$asfortranarray(a32)), r)
  pa <- reticulate::import("pyarrow", convert = FALSE)
  expect_identical(from_py(pa$array(list(1.5, NULL, -2), type = pa$float32())), c(1.5, NA, -2))
  expect_identical(from_py(np$array(list("a", "\u00e9"))), c("a", "\u00e9"))
  expect_identical(from_py(np$float64(2.5)), 2.5)
})

test_that("from_py: pandas and pyarrow tables become data.frames with factors and NA", {
  pd <- reticulate::import("pandas", convert = FALSE)
  pa <- reticulate::import("pyarrow", convert = FALSE)
  reticulate::py_run_string(paste(
    "import pandas as pd, numpy as np",
    "bridge_pdf = pd.DataFrame({'x': [1.5, np.nan, 3.0], 'g': pd.Categorical(['a', None, 'b']),",
    "  's': ['u', None, '\u00e9'], 'i': [1, 2, 3], 'd': pd.to_datetime(['2020-01-01', None, '2021-06-30'])})",
    sep = "\n"
  ))
  df <- from_py(reticulate::py$bridge_pdf)
  expect_identical(names(df), c("x", "g", "s", "i", "d"))
  expect_identical(df$x, c(1.5, NA, 3))
  expect_identical(df$g, factor(c("a", NA, "b")))
  expect_identical(df$s, c("u", NA, "\u00e9"))
  expect_identical(df$i, c(1, 2, 3)) # pandas' int64: R double
  expect_s3_class(df$d, "POSIXct")
  expect_identical(as.numeric(df$d), c(1577836800, NA, 1625011200))
  tbl <- reticulate::py_eval(paste0("__import__('pyarrow').concat_tables([__import__('pyarrow').table({'v': ",
    "__import__('pyarrow').array([1, 2], 'int32')}), __import__('pyarrow').table({'v': ",
    "__import__('pyarrow').array([3, None], 'int32')})])"), convert = FALSE)
  expect_identical(from_py(tbl), data.frame(v = c(1L, 2L, 3L, NA))) # two chunks
  sliced <- reticulate::py_eval("__import__('pyarrow').array([10, None, 30, 40], 'int16').slice(1, 3)",
    convert = FALSE)
  expect_identical(from_py(sliced), c(NA, 30L, 40L)) # offsets and validity of a slice
})

test_that("bad input: an R error naming the column and its type; the session goes on", {
  expect_bridge_error <- function(expr, pattern) {
    err <- tryCatch(expr, error = function(e) e)
    expect_s3_class(err, "pydlr_input_error")
    expect_match(conditionMessage(err), pattern)
  }
  expect_bridge_error(to_torch(list(1, 2)), "`x` is a list .*R type 'list'")
  expect_bridge_error(to_torch(list(1:3, 1:2)), "ragged array")
  expect_bridge_error(to_torch(complex(real = 1:2, imaginary = 1)), "`x` has R type 'complex'")
  expect_bridge_error(as_arrow_py(as.raw(1:3)), "`x` has R type 'raw'")
  nested <- data.frame(a = 1:2)
  nested$inner <- data.frame(b = 1:2)
  expect_bridge_error(as_arrow_py(nested), "column `inner` is a nested data.frame")
  listcol <- data.frame(a = 1:2)
  listcol$l <- list(1, "x")
  expect_bridge_error(as_arrow_py(listcol), "column `l` is a list")
  withcplx <- data.frame(a = 1:2, z = complex(real = 1:2, imaginary = 0))
  expect_bridge_error(as_arrow_py(withcplx), "column `z` has R type 'complex'")
  ragged <- structure(list(a = 1:3, b = 1:2), class = "data.frame", row.names = c(NA, -3L))
  expect_bridge_error(as_arrow_py(ragged), "column `b` has 2 rows .*ragged")
  matcol <- data.frame(a = 1:2)
  matcol$m <- matrix(1:4, 2)
  expect_bridge_error(as_arrow_py(matcol), "column `m` is a matrix column \\(integer, dim c\\(2, 2\\)\\)")
  expect_bridge_error(to_torch(c("a", "b")), "`x` has R type character, which cannot become a torch tensor")
  expect_bridge_error(to_torch(c(1L, NA)), "`x` \\(R type integer\\) has NA at position 2")
  expect_bridge_error(to_torch(data.frame(d = as.Date("2020-01-01"))), "column `d` has R type double \\(class Date\\)")
  expect_bridge_error(as_arrow_py(structure(1:2, class = "difftime", units = "secs")), "class 'difftime'")
  expect_bridge_error(from_py(1:3), "argument `obj` must be a Python object")
  expect_bridge_error(from_py(reticulate::r_to_py(list(1, 2))), "torch tensor, NumPy array")
  pa <- reticulate::import("pyarrow", convert = FALSE)
  expect_bridge_error(from_py(pa$array(list(list(1L, 2L), list(3L)))), "`obj` of Arrow type list<item: int64>")
  bad_table <- reticulate::py_eval("__import__('pyarrow').table({'ok': [1], 'bad': [[1, 2]]})", convert = FALSE)
  expect_bridge_error(from_py(bad_table), "column `bad` of Arrow type list")
  np <- reticulate::import("numpy", convert = FALSE)
  expect_bridge_error(from_py(np$array(list(1+2i))), "real-valued")
  # nothing leaked and the session still works
  expect_identical(from_py(to_torch(c(1, 2))), c(1, 2))
})

test_that("the bridge's C code survives gctorture() on small inputs", {
  # gctorture() runs R's GC at every allocation: on the C entry points (export, import, release), whose
  # R objects must all be protected. reticulate's own R code under torture would take minutes, so the
  # Python steps in between run normally.
  df <- data.frame(x = c(1.5, NA), f = factor(c("a", NA)), s = c("\u00e9", NA), d = as.Date(c("2020-01-01", NA)),
    p = as.POSIXct(c(1, NA), origin = "1970-01-01", tz = "UTC"), l = c(TRUE, NA))
  m <- matrix(as.double(1:6), 2)
  pydlr:::.pydlr_py()
  py <- reticulate::import("pydlr.bridge", convert = FALSE)
  gctorture(TRUE)
  ex_m <- pydlr:::.bridge_export(m, "tensor")
  ex_df <- pydlr:::.bridge_export(df, "arrow")
  gctorture(FALSE)
  t <- py$tensor_from_r(ex_m$addresses[1], ex_m$addresses[2], shape = ex_m$dim)
  b <- py$arrow_from_r(ex_df$addresses[1], ex_df$addresses[2], batch = TRUE)
  shells <- lapply(list(t, b), function(obj) {
    sh <- .Call(pydlr:::C_bridge_new_shells)
    list(sh = sh, info = py_r(py$export_to_c(obj, sh[[2]][1], sh[[2]][2])))
  })
  gctorture(TRUE)
  back_m <- .Call(pydlr:::C_bridge_import, shells[[1]]$sh[[2]], as.integer(unlist(shells[[1]]$info$shape)), FALSE)
  back_df <- .Call(pydlr:::C_bridge_import, shells[[2]]$sh[[2]], NULL, FALSE)
  for (s in shells) .Call(pydlr:::C_bridge_free_shells, s$sh[[1]])
  .Call(pydlr:::C_bridge_free_shells, ex_m$shells)
  .Call(pydlr:::C_bridge_free_shells, ex_df$shells)
  gctorture(FALSE)
  expect_identical(back_m, m)
  expect_identical(back_df, df)
  rm(t, b, shells)
  expect_equal(bridge_live(), 0)
})

test_that("arrow Tables from the R arrow package are accepted when it is installed", {
  skip_if_not_installed("arrow") # optional: not installed on pydlr's reference machines
  tbl <- arrow::arrow_table(a = c(1.5, 2.5), b = c(3L, 4L))
  batch <- as_arrow_py(tbl)
  expect_equal(py_r(batch$num_rows), 2L)
  expect_identical(from_py(batch), data.frame(a = c(1.5, 2.5), b = c(3L, 4L)))
  expect_identical(from_py(to_torch(tbl)), matrix(c(1.5, 2.5, 3, 4), 2, 2))
})

test_that("R's value semantics hold: modifying x after to_torch() copies x, the tensor keeps its data", {
  x <- c(1, 2, 3)
  t <- to_torch(x)
  before <- pydlr:::.bridge_address(x)
  x[1] <- 100 # the bridge holds a reference, so R copies instead of writing into the shared memory
  expect_false(pydlr:::.bridge_address(x) == before)
  expect_equal(unlist(py_r(t$tolist())), c(1, 2, 3))
  expect_equal(py_data_ptr(t), before)
})
