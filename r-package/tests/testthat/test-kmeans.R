# pydlr_kmeans(): stats::kmeans-like results computed by pydlr's torch KMeans, and compare_models().

blobs <- function(n = 150, seed = 1) {
  set.seed(seed)
  means <- rbind(c(0, 0, 0), c(8, 8, 0), c(0, 8, 8))
  truth <- rep(1:3, each = n / 3)
  x <- means[truth, ] + matrix(rnorm(n * 3), n)
  colnames(x) <- c("a", "b", "c")
  list(x = x, truth = truth)
}

test_that("pydlr_kmeans finds well-separated clusters with stats::kmeans' components", {
  d <- blobs()
  km <- pydlr_kmeans(d$x, centers = 3, n_init = 2L, seed = 1)
  expect_s3_class(km, "pydlr_kmeans")
  expect_s3_class(km, "kmeans")
  expect_type(km$cluster, "integer")
  expect_setequal(unique(km$cluster), 1:3)
  expect_equal(dim(km$centers), c(3L, 3L))
  expect_equal(colnames(km$centers), c("a", "b", "c"))
  expect_equal(sum(km$size), 150L)
  # Sums of squares agree with a direct computation in R, and with the Python inertia.
  own <- rowSums((d$x - km$centers[km$cluster, ])^2)
  expect_equal(km$withinss, as.vector(tapply(own, factor(km$cluster, levels = 1:3), sum)), tolerance = 1e-4)
  expect_equal(km$tot.withinss, km$inertia, tolerance = 1e-5)
  # float32 (the default) clusters the data rounded to single precision: its totss is theirs (~1e-7 away);
  # dtype = "float64" computes in R's doubles.
  expect_equal(km$totss, sum(scale(d$x, scale = FALSE)^2), tolerance = 1e-6)
  expect_equal(km$betweenss + km$tot.withinss, km$totss)
  km64 <- pydlr_kmeans(d$x, centers = 3, n_init = 2L, seed = 1, dtype = "float64")
  expect_equal(km64$totss, sum(scale(d$x, scale = FALSE)^2), tolerance = 1e-10)
  expect_equal(km64$tot.withinss, sum((d$x - km64$centers[km64$cluster, ])^2), tolerance = 1e-10)
  expect_error(pydlr_kmeans(d$x, centers = 3, dtype = "half"), "dtype")
  # The same partition as stats::kmeans (and the truth), up to label names.
  ref <- stats::kmeans(d$x, 3, nstart = 5)
  cmp <- compare_models(pydlr = km, stats = ref, y = d$truth)
  expect_equal(cmp$accuracy, c(1, 1))
  expect_equal(cmp$ARI, c(1, 1))
  expect_equal(km$tot.withinss, ref$tot.withinss, tolerance = 1e-4)
  expect_gte(km$seconds, 0)
})

test_that("pydlr_kmeans(batch_size =) runs mini-batch k-means with the same components", {
  d <- blobs(n = 3000)
  km <- pydlr_kmeans(d$x, centers = 3, seed = 1, batch_size = 256)
  full <- pydlr_kmeans(d$x, centers = 3, seed = 1)
  expect_s3_class(km, "pydlr_kmeans")
  expect_equal(compare_models(mini = km, y = d$truth)$accuracy, 1)
  expect_lte(km$tot.withinss, full$tot.withinss * 1.01)
  expect_equal(km$betweenss + km$tot.withinss, km$totss)
  expect_identical(predict(km, d$x), unname(km$cluster))
  expect_error(pydlr_kmeans(d$x, 3, batch_size = 0), "batch_size", class = "pydlr_input_error")
})

test_that("pydlr_kmeans(algorithm =) gives the same clusters plain and bounded, and is checked", {
  d <- blobs(n = 2100)
  plain <- pydlr_kmeans(d$x, centers = 3, seed = 3, max_iter = 4L, tol = 0, algorithm = "lloyd")
  bounded <- pydlr_kmeans(d$x, centers = 3, seed = 3, max_iter = 4L, tol = 0, algorithm = "hamerly")
  default <- pydlr_kmeans(d$x, centers = 3, seed = 3, max_iter = 4L, tol = 0)
  expect_identical(bounded$cluster, plain$cluster)
  expect_identical(default$cluster, plain$cluster)
  expect_equal(bounded$centers, plain$centers, tolerance = 1e-6)
  expect_equal(bounded$tot.withinss, plain$tot.withinss, tolerance = 1e-6)
  expect_identical(bounded$iter, plain$iter)
  expect_error(pydlr_kmeans(d$x, 3, algorithm = "elkan"), "algorithm", class = "pydlr_input_error")
  mini <- pydlr_kmeans(d$x, 3, seed = 1, batch_size = 256, algorithm = "lloyd")
  expect_s3_class(mini, "pydlr_kmeans")
})

test_that("seeds reproduce, predict/fitted agree with the fit, print and summary work", {
  d <- blobs(seed = 2)
  a <- pydlr_kmeans(d$x, 3, seed = 7)
  b <- pydlr_kmeans(d$x, 3, seed = 7)
  expect_identical(a$cluster, b$cluster)
  expect_identical(a$centers, b$centers)
  expect_identical(predict(a, d$x), unname(a$cluster))
  expect_identical(predict(a, as.data.frame(d$x[1:4, ])), unname(a$cluster[1:4]))
  expect_identical(fitted(a, "classes"), a$cluster)
  expect_equal(fitted(a), a$centers[a$cluster, ], ignore_attr = TRUE)
  expect_output(print(a), "k-means clustering \\(pydlr, cpu\\) with 3 clusters")
  s <- summary(a)
  expect_s3_class(s, "summary.pydlr_kmeans")
  expect_equal(sum(s$clusters$size), 150L)
  expect_equal(sum(s$clusters$share), 1)
  expect_gt(s$ratio, 0.9)
  expect_output(print(s), "between_SS / total_SS")
})

test_that("starting centers, data.frames and image arrays are accepted", {
  d <- blobs(seed = 3)
  start <- d$x[c(1, 51, 101), ]
  km <- pydlr_kmeans(as.data.frame(d$x), centers = start)
  expect_equal(unname(km$cluster[c(1, 51, 101)]), 1:3)
  images <- array(runif(40 * 4 * 4), c(40, 4, 4))
  km_img <- pydlr_kmeans(images, 2, seed = 1)
  expect_equal(ncol(km_img$centers), 16L)
  expect_length(km_img$cluster, 40L)
})

test_that("compare_models scores labels against the truth", {
  y <- rep(c("x", "y", "z"), each = 4)
  perm <- rep(c(3L, 1L, 2L), each = 4)
  wrong <- c(perm[1:10], 1L, 1L)
  out <- compare_models(perfect = perm, partly = list(labels = wrong, seconds = 2.5), y = y)
  expect_s3_class(out, "data.frame")
  expect_equal(names(out), c("method", "accuracy", "ARI", "NMI", "seconds"))
  expect_equal(out$method, c("perfect", "partly"))
  expect_equal(out$accuracy, c(1, 10 / 12))
  expect_equal(out$ARI[1], 1)
  expect_lt(out$ARI[2], 1)
  expect_identical(out$seconds[1], NA_real_) # NA as documented, not NaN
  expect_equal(out$seconds[2], 2.5)
  expect_error(compare_models(perm, y = y), class = "pydlr_input_error")
  expect_error(compare_models(a = perm[1:3], y = y), "12 labels", class = "pydlr_input_error")
})

test_that("bad input is an R condition of class pydlr_input_error, before any work", {
  d <- blobs()
  expect_error(pydlr_kmeans(d$x, 0), "centers", class = "pydlr_input_error")
  expect_error(pydlr_kmeans(d$x, 1000), "centers", class = "pydlr_input_error")
  expect_error(pydlr_kmeans(d$x, matrix(0, 2, 5)), "centers", class = "pydlr_input_error")
  expect_error(pydlr_kmeans(letters, 2), "numeric array", class = "pydlr_input_error")
  expect_error(pydlr_kmeans(data.frame(a = 1:3, b = letters[1:3]), 2), "`b`", class = "pydlr_input_error")
  x <- d$x
  x[2, 2] <- NA
  expect_error(pydlr_kmeans(x, 2), "pydlr_kmeans\\(\\): argument `x` must be free of NA/NaN values; received 1 NA",
               class = "pydlr_input_error")
  x[2, 2] <- -Inf
  expect_error(pydlr_kmeans(x, 2), "pydlr_kmeans\\(\\): argument `x` must be finite values \\(no Inf\\)",
               class = "pydlr_input_error")
  expect_error(pydlr_kmeans(d$x, 2, n_init = 0), "n_init", class = "pydlr_input_error")
  expect_error(pydlr_kmeans(d$x, 2, tol = -1), "tol", class = "pydlr_input_error")
  expect_error(pydlr_kmeans(d$x, 2, init = "bogus"), "argument `init` must be one of", class = "pydlr_input_error")
  km <- pydlr_kmeans(d$x, 2, seed = 1)
  expect_error(predict(km, d$x[, 1:2]), "columns pydlr_kmeans\\(\\) was given \\(a, b, c\\); received columns c missing",
               class = "pydlr_input_error")
  expect_error(predict(km, unname(d$x[, 1:2])), "3 columns", class = "pydlr_input_error")
  # A Python-side InputError (here: no CUDA device) comes back as the same R condition class.
  skip_if(reticulate::import("torch")$cuda$is_available())
  expect_error(pydlr_kmeans(d$x, 2, device = "cuda"), "device", class = "pydlr_input_error")
})

test_that("predict() matches a data.frame's columns by name, as the fit saw them", {
  x <- iris[, 1:4]
  km <- pydlr_kmeans(x, 3, seed = 1, n_init = 3)
  # Columns in another order are the same data: by position the rows went to other clusters, silently.
  expect_identical(predict(km, x[1:20, 4:1]), predict(km, x[1:20, ]))
  expect_identical(unname(predict(km, x[c(1, 51, 101), ])), unname(km$cluster[c(1, 51, 101)]))
  renamed <- setNames(x[1:5, ], c("a", names(x)[2:4]))
  expect_error(predict(km, renamed), "argument `newdata` must be data with the columns pydlr_kmeans\\(\\) was given.*Sepal.Length missing, a not among them",
               class = "pydlr_input_error")
  # Data without column names are taken as they come.
  expect_identical(predict(km, unname(as.matrix(x[1:5, ]))), unname(predict(km, x[1:5, ])))
})

test_that("more centers than distinct rows: a warning names the empty clusters", {
  # stats::kmeans() stops here; pydlr_kmeans() returned a cluster of size 0 without a word.
  x <- matrix(rep(c(0, 5), each = 10), 20, 2)
  expect_warning(km <- pydlr_kmeans(x, 3, seed = 1),
    "1 of the 3 clusters is empty: `x` has fewer distinct rows than `centers`", class = "pydlr_warning")
  expect_equal(sort(km$size), c(0L, 10L, 10L))
  expect_no_warning(pydlr_kmeans(x, 2, seed = 1))
})
