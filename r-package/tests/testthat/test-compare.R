# compare_methods() and compare_kmeans(): the R side of pydlr.cluster's comparisons.

fashion_small <- function() {
  f <- tryCatch(dataset_fashion_mnist(), error = function(e) NULL)
  if (is.null(f)) testthat::skip("Fashion-MNIST is not installed (Debian: dataset-fashion-mnist)")
  list(x = f$train$x[1:1500, , ], y = f$train$y[1:1500], x_test = f$test$x[1:300, , ], y_test = f$test$y[1:300])
}

test_that("compare_methods returns the table, a verdict and a plot; the CNN beats k-means on pixels", {
  d <- fashion_small()
  res <- compare_methods(d$x, d$y, d$x_test, d$y_test, methods = c("kmeans_pixels", "kmeans_embedding", "cnn"),
    epochs = 1, batch_size = 8, seed = 0)
  expect_s3_class(res, "pydlr_comparison")
  expect_s3_class(res, "data.frame")
  expect_equal(names(res), c("method", "kind", "accuracy", "ARI", "NMI", "train_seconds", "predict_seconds",
    "size_mb"))
  expect_equal(res$method, c("k-means (pixels)", "k-means (embedding)", "CNN"))
  expect_true(all(res$accuracy >= 0 & res$accuracy <= 1 & res$NMI >= 0 & res$NMI <= 1))
  expect_true(all(res$train_seconds > 0 & res$size_mb > 0))
  expect_gt(res$accuracy[res$method == "CNN"], res$accuracy[res$method == "k-means (pixels)"])
  printed <- capture.output(print(res))
  expect_match(printed[length(printed)], "^Verdict: ")
  expect_error(plot(res, projection = "umap"), "argument `projection` must be one of \"pca\", \"tsne\"",
    class = "pydlr_input_error")
  expect_error(plot(res, max_points = 5), "argument `max_points`", class = "pydlr_input_error")
  p <- plot(res, max_points = 200)
  if (requireNamespace("ggplot2", quietly = TRUE)) {
    expect_s3_class(p, "ggplot")
    expect_equal(nrow(p$data), 400L) # 200 points in each of the two panels
    expect_setequal(unique(p$data$colour), c("by class", "by k-means cluster"))
    # one legend, its entries named by panel: classes in level order, clusters by number (not 1, 10, 2)
    expect_identical(levels(p$data$group)[1:2], paste("class", levels(factor(d$y))[1:2]))
    clusters <- grep("^cluster", levels(p$data$group), value = TRUE)
    expect_identical(clusters, paste("cluster", seq_along(clusters)))
    expect_true(all(startsWith(as.character(p$data$group[p$data$colour == "by class"]), "class ")))
  }
})

test_that("compare_methods refuses bad input in R's words before any work", {
  x <- array(runif(20 * 4 * 4), c(20, 4, 4))
  y <- rep(0:1, 10)
  bad <- x
  bad[3, 2, 2] <- NA
  expect_error(compare_methods(bad, y), "x\\[3, , \\]", class = "pydlr_input_error")
  bad[3, 2, 2] <- Inf
  expect_error(compare_methods(bad, y), "NaN or Inf", class = "pydlr_input_error")
  expect_error(compare_methods(array(letters, c(2, 13, 1)), 1:2), "`x`", class = "pydlr_input_error")
  expect_error(compare_methods(x[0, , , drop = FALSE], integer()), "`x`", class = "pydlr_input_error")
  expect_error(compare_methods(x, y[-1]), "20 classes", class = "pydlr_input_error")
  expect_error(compare_methods(x, y, time_budget = 0), "`time_budget`", class = "pydlr_input_error")
  expect_error(compare_methods(x, y, time_budget = -2), "`time_budget`", class = "pydlr_input_error")
  expect_error(compare_methods(x, y, n_clusters = 0), "`n_clusters`", class = "pydlr_input_error")
  expect_error(compare_methods(x, y, n_clusters = 50, methods = "kmeans_pixels"), "`n_clusters`",
    class = "pydlr_input_error")
  expect_error(compare_methods(x, y, x_test = x), "y_test", class = "pydlr_input_error")
  expect_error(compare_methods(x, y, methods = "svm"), "`methods`", class = "pydlr_input_error")
})

test_that("compare_kmeans runs pydlr, scikit-learn and stats::kmeans from the same centers", {
  x <- as.matrix(iris[, 1:4])
  out <- compare_kmeans(x, 3, y = iris$Species, seed = 2)
  expect_equal(names(out), c("method", "seconds", "iterations", "inertia", "ARI", "NMI"))
  expect_equal(out$method, c("pydlr", "scikit-learn", "R Hartigan-Wong", "R Lloyd"))
  lloyd <- out[out$method != "R Hartigan-Wong", ]
  expect_equal(lloyd$inertia, rep(lloyd$inertia[2], 3), tolerance = 1e-4)
  expect_equal(length(unique(lloyd$iterations)), 1L)
  expect_true(all(out$ARI > 0.5 & out$NMI > 0.5))
  plain <- compare_kmeans(x, 3, methods = c("R Lloyd", "pydlr"))
  expect_equal(plain$method, c("R Lloyd", "pydlr"))
  expect_true(all(is.na(plain$ARI)))
})

test_that("compare_kmeans refuses bad input", {
  x <- matrix(c(0, 1, 5, 0, 1, 5), 3)
  expect_error(compare_kmeans(rbind(x, NA), 2), "`x`", class = "pydlr_input_error")
  expect_error(compare_kmeans(rbind(x, Inf), 2), "`x`", class = "pydlr_input_error")
  expect_error(compare_kmeans(data.frame(a = 1:3, b = letters[1:3]), 2), "non-numeric", class = "pydlr_input_error")
  expect_error(compare_kmeans(x, 0), "`k`", class = "pydlr_input_error")
  expect_error(compare_kmeans(rbind(x, x), 4), "distinct", class = "pydlr_input_error")
  expect_error(compare_kmeans(x, 2, y = 1:2), "`y`", class = "pydlr_input_error")
  expect_error(compare_kmeans(x[0, , drop = FALSE], 1), "`x`", class = "pydlr_input_error")
})

test_that("compare_methods takes a pydlr model as the embedding, and plot() draws t-SNE", {
  set.seed(1)
  x <- array(runif(120 * 8 * 8), c(120, 8, 8))
  y <- rep(0:2, 40)
  x[y == 1, 1:4, ] <- x[y == 1, 1:4, ] + 2
  base <- model_sequential(input_shape = c(8, 8, 1)) |>
    layer_conv_2d(filters = 4, kernel_size = c(3, 3), activation = "relu") |>
    layer_flatten()
  res <- compare_methods(x, y, embedding = base, methods = c("kmeans_embedding", "logistic_embedding"))
  expect_equal(res$method, c("k-means (embedding)", "logistic regression (embedding)"))
  expect_gt(res$accuracy[2], 0.5) # class 1 is shifted: far above chance (1/3)
  expect_match(attr(res, "verdict"), "add the CNN")
  expect_error(compare_methods(x, y, embedding = "mobilenet"), "`embedding`", class = "pydlr_input_error")
  if (requireNamespace("ggplot2", quietly = TRUE)) {
    expect_s3_class(plot(res, projection = "tsne", max_points = 30), "ggplot")
  }
})
