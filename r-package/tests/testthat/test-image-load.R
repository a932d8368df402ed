# image_load() / image_to_array(): one image file as an array (keras3's names).

test_that("image_load() gives the pixels written, in the colour mode asked, at the size asked", {
  skip_if_not_installed("png")
  grey <- matrix(as.integer(round(seq(0, 255, length.out = 6 * 8))), 6, 8)
  path <- tempfile(fileext = ".png")
  png::writePNG(grey / 255, path)
  img <- image_load(path, color_mode = "grayscale")
  expect_identical(dim(img), c(6L, 8L, 1L))
  expect_equal(img[, , 1], grey)
  rgb <- image_load(path) # keras' default colour mode: three equal channels from a grey file
  expect_identical(dim(rgb), c(6L, 8L, 3L))
  expect_equal(rgb[, , 2], grey)
  expect_identical(dim(image_load(path, target_size = c(3, 4), color_mode = "grayscale")), c(3L, 4L, 1L))
  x <- image_to_array(img)
  expect_true(is.double(x))
  expect_equal(x, array(as.double(grey), c(6, 8, 1)))
  expect_identical(dim(image_to_array(grey)), c(6L, 8L, 1L))
  expect_true(is.integer(image_to_array(img, dtype = "int32")))
})

test_that("image_load() reads a dataset's file as the dataset does", {
  skip_if_not_installed("png")
  dir <- file.path(tempdir(), "pydlr-image-load")
  fm <- dataset_fashion_mnist()$test
  for (i in 1:4) {
    dir.create(file.path(dir, c("a", "b")[1 + i %% 2]), recursive = TRUE, showWarnings = FALSE)
    png::writePNG(fm$x[i, , ] / 255, file.path(dir, c("a", "b")[1 + i %% 2], sprintf("%d.png", i)))
  }
  ds <- image_dataset_from_directory(dir, image_size = c(14, 14), color_mode = "grayscale", batch_size = 4,
                                     shuffle = FALSE, interpolation = "bilinear", verbose = FALSE)
  b <- image_dataset_batch(ds)
  img <- image_load(ds$file_paths[1], color_mode = "grayscale", target_size = c(14, 14),
                    interpolation = "bilinear")
  expect_equal(image_to_array(img), array(b$images[1, , , ], c(14, 14, 1)))
})

test_that("bad arguments are R conditions naming the argument", {
  expect_error(image_load(file.path(tempdir(), "no-such.png")), "`path` must be the path of an existing image file",
               class = "pydlr_input_error")
  expect_error(image_load(tempdir()), "`path`", class = "pydlr_input_error")
  not_image <- tempfile(fileext = ".png")
  writeLines("not an image", not_image)
  expect_error(image_load(not_image), "image_load(): argument `path` must be an image file", fixed = TRUE)
  skip_if_not_installed("png")
  path <- tempfile(fileext = ".png")
  png::writePNG(matrix(0.5, 4, 4), path)
  expect_error(image_load(path, target_size = c(0, 4)), "`target_size`", class = "pydlr_input_error")
  expect_error(image_load(path, color_mode = "cmyk"), "`color_mode`", class = "pydlr_input_error")
  expect_error(image_to_array(1:3), "`img` must be an image array", class = "pydlr_input_error")
  expect_error(image_to_array(matrix(0.5, 2, 2), dtype = "int32"), "whole-number", class = "pydlr_input_error")
})
