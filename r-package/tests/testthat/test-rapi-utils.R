# pydlr's process set-up first: this file imports pydlr's Python modules directly below.
pydlr:::.pydlr_py()

test_that("to_categorical() one-hot encodes 0-based labels as keras does", {
  y <- c(0L, 2L, 1L, 2L)
  m <- to_categorical(y)
  expect_equal(dim(m), c(4L, 3L))
  expect_equal(m, rbind(c(1, 0, 0), c(0, 0, 1), c(0, 1, 0), c(0, 0, 1)))
  expect_equal(dim(to_categorical(y, num_classes = 10)), c(4L, 10L))
  expect_equal(unname(apply(to_categorical(y, 5), 1, which.max)) - 1L, y)
  expect_equal(to_categorical(factor(c("a", "b"))), rbind(c(1, 0), c(0, 1)))
})

test_that("to_categorical() matches pydlr.utils.to_categorical in Python", {
  y <- c(3L, 0L, 9L, 1L)
  py <- reticulate::import("pydlr.utils")
  expected <- py$to_categorical(reticulate::np_array(y), 10L)
  expect_equal(to_categorical(y, 10), unname(expected))
})

test_that("to_categorical() rejects labels it cannot encode, naming the argument", {
  expect_error(to_categorical(c(0, -1)), class = "pydlr_input_error")
  expect_error(to_categorical(c(0, 1.5)), "`x`")
  expect_error(to_categorical(c(0, 5), num_classes = 3), "num_classes")
})

test_that("array_reshape() fills row-major (C order) as numpy/keras, and F order as R", {
  expect_equal(array_reshape(1:6, c(2, 3)), matrix(c(1, 2, 3, 4, 5, 6), 2, byrow = TRUE))
  x <- array(1:24, c(2, 3, 4))
  flat <- array_reshape(x, c(2, 12))
  # keras flattens each sample row by row: element [i, j, k] goes to column (j - 1) * 4 + k
  for (j in 1:3) for (k in 1:4) expect_equal(flat[, (j - 1) * 4 + k], x[, j, k])
  back <- array_reshape(flat, c(2, 3, 4))
  expect_identical(as.vector(back), as.vector(x))
  expect_equal(dim(array_reshape(x, c(-1, 4))), c(6L, 4L))
  expect_equal(array_reshape(x, c(4, 6), order = "F"), array(1:24, c(4, 6)))
  expect_error(array_reshape(x, c(5, 5)), class = "pydlr_input_error")
})

test_that("array_reshape() matches numpy's reshape", {
  np <- reticulate::import("numpy", convert = FALSE)
  x <- array(as.numeric(1:60), c(3, 4, 5))
  expected <- reticulate::py_to_r(np$reshape(reticulate::np_array(x, order = "C"), c(3L, 20L)))
  expect_equal(array_reshape(x, c(3, 20)), expected)
})

test_that("set_random_seed() makes weight initialisation reproducible", {
  set_random_seed(5)
  a <- rapi_flat_weights(rapi_tiny_cnn())
  set_random_seed(5)
  b <- rapi_flat_weights(rapi_tiny_cnn())
  expect_identical(a, b)
  expect_false(identical(a, rapi_flat_weights(rapi_tiny_cnn())))
  expect_error(set_random_seed(-1), "`seed`")
})
