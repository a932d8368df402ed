test_that("dataset_mnist() has keras3's layout: integer n x 28 x 28 arrays and integer labels", {
  d <- dataset_mnist()
  expect_named(d, c("train", "test"))
  expect_named(d$train, c("x", "y"))
  expect_type(d$train$x, "integer")
  expect_equal(dim(d$train$x), c(4000L, 28L, 28L))
  expect_equal(dim(d$test$x), c(1000L, 28L, 28L))
  expect_type(d$train$y, "integer")
  expect_null(dim(d$train$y))
  expect_length(d$test$y, 1000L)
  expect_setequal(unique(d$train$y), 0:9)
  expect_equal(range(d$train$x), c(0L, 255L))
})

test_that("datasets match Python's arrays element for element (x[i, , ] is image i)", {
  d <- dataset_mnist()
  data <- reticulate::import("pydlr.data", convert = FALSE)
  py <- data$load_mnist()
  np <- reticulate::import("numpy", convert = FALSE)
  img <- reticulate::py_to_r(np$asarray(py[0][0][5L], dtype = "int32")) # Python's x_train[5]
  expect_identical(d$train$x[6, , ], img)
  expect_identical(d$train$y, as.integer(reticulate::py_to_r(py[0][1])))
})

test_that("zeallot's %<-% unpacks datasets as in keras3 scripts", {
  skip_if_not_installed("zeallot")
  c(c(x_train, y_train), c(x_test, y_test)) %<-% dataset_mnist()
  expect_equal(dim(x_train), c(4000L, 28L, 28L))
  expect_length(y_test, 1000L)
})

test_that("dataset_fashion_mnist() gives the full 60,000 / 10,000 images", {
  d <- dataset_fashion_mnist()
  expect_equal(dim(d$train$x), c(60000L, 28L, 28L))
  expect_equal(dim(d$test$x), c(10000L, 28L, 28L))
  expect_equal(as.vector(table(d$test$y)), rep(1000L, 10))
})
