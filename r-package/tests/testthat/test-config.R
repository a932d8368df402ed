# The process set-up of config.R: torch binds to its own GEMM inside R, and nothing else is disturbed.

# Runs the R code `lines` in a fresh Rscript with this session's library paths and Python: its output, as one string.
fresh_r <- function(lines) {
  script <- tempfile(fileext = ".R")
  writeLines(c(
    sprintf(".libPaths(c(%s))", paste(deparse(.libPaths()), collapse = "")),
    sprintf("Sys.setenv(RETICULATE_PYTHON = %s)", deparse(reticulate::py_config()$python)),
    lines
  ), script)
  paste(system2(file.path(R.home("bin"), "Rscript"), c("--vanilla", script), stdout = TRUE, stderr = TRUE),
    collapse = "\n")
}

test_that("torch's GEMM and pydlr's native extension resolve to torch's own MKL inside R", {
  cfg <- pydlr_config(warn = FALSE)
  expect_s3_class(cfg, "pydlr_config")
  expect_match(cfg$gemm_library, "libtorch_cpu\\.so$")
  expect_true(cfg$gemm_own)
  expect_true(cfg$native_gemm_own)
  # Other OpenMP runtimes depend on what else the session imported (scikit-learn brings its own libgomp).
  expect_length(grep("OpenMP runtimes", cfg$problems, invert = TRUE, value = TRUE), 0L)
  expect_true(.pydlr_env$setup$flags_restored)
  expect_output(print(cfg), "torch's own MKL")
  expect_gt(cfg$threads$torch, 0L)
})

test_that("R's own BLAS still serves %*% and gives correct values after torch loaded", {
  pydlr_config(warn = FALSE)
  a <- matrix(c(1, 2, 3, 4, 5, 6), 2) # 2 x 3
  b <- matrix(c(7, 8, 9, 10, 11, 12), 3) # 3 x 2
  expect_equal(a %*% b, matrix(c(76, 100, 103, 136), 2))
  set.seed(1)
  x <- matrix(rnorm(200 * 50), 200)
  y <- matrix(rnorm(50 * 30), 50)
  loops <- outer(seq_len(200), seq_len(30), Vectorize(function(i, j) sum(x[i, ] * y[, j])))
  expect_equal(x %*% y, loops, tolerance = 1e-12)
  expect_equal(solve(crossprod(x), crossprod(x)), diag(50), tolerance = 1e-8)
})

test_that("Python packages imported after the set-up work (numpy, scipy, pandas, pyarrow, sklearn)", {
  pydlr_config(warn = FALSE)
  env <- reticulate::py_run_string(paste(
    "import numpy as np, scipy.linalg, pandas as pd, pyarrow as pa, sklearn.linear_model, torch",
    "rng = np.random.default_rng(0)",
    "a = rng.standard_normal((300, 300))",
    "np_ok = bool(np.allclose(a @ np.linalg.inv(a), np.eye(300), atol=1e-8))",
    "sp_ok = bool(np.allclose(scipy.linalg.solve(a, a), np.eye(300), atol=1e-8))",
    "pd_sum = float(pd.DataFrame({'x': [1.0, 2.0, 3.5]})['x'].sum())",
    "pa_sum = pa.compute.sum(pa.array([1, 2, 3])).as_py()",
    "X = rng.standard_normal((100, 3)); y = X @ np.array([1.0, -2.0, 0.5])",
    "coef = sklearn.linear_model.LinearRegression().fit(X, y).coef_.tolist()",
    "t = torch.from_numpy(a.astype(np.float32))",
    "torch_ok = bool(torch.allclose(t @ t, torch.from_numpy((a @ a).astype(np.float32)), atol=1e-3))",
    sep = "\n"
  ), local = TRUE)
  expect_true(env$np_ok)
  expect_true(env$sp_ok)
  expect_equal(env$pd_sum, 6.5)
  expect_equal(env$pa_sum, 6L)
  expect_equal(unlist(env$coef), c(1, -2, 0.5), tolerance = 1e-10)
  expect_true(env$torch_ok)
})

test_that("pydlr_config() warns when torch was imported before pydlr could prepare the process", {
  # A fresh R process, where reticulate imports torch before pydlr's first call.
  out <- fresh_r(c(
    "invisible(reticulate::import('torch'))",
    "cfg <- withCallingHandlers(pydlr::pydlr_config(), warning = function(w) {",
    "  cat('WARNING:', conditionMessage(w), '\\n'); invokeRestart('muffleWarning') })",
    "cat('GEMM_OWN:', cfg$gemm_own, ' NATIVE_OWN:', cfg$native_gemm_own, '\\n')"
  ))
  expect_match(out, "WARNING: torch is not running at full speed", fixed = TRUE)
  expect_match(out, "torch was imported before pydlr", fixed = TRUE)
  # torch itself is beyond help then, but pydlr's own extension is still bound to torch's MKL.
  expect_match(out, "GEMM_OWN: FALSE  NATIVE_OWN: TRUE", fixed = TRUE)
})

test_that("the first pydlr call warns once, with the fix, when torch was imported before it", {
  # A fresh R process: reticulate imports torch, then two pydlr calls that reach Python.
  out <- fresh_r(c(
    "invisible(reticulate::import('torch'))",
    "n <- 0L",
    "withCallingHandlers({ pydlr::set_random_seed(1); pydlr::set_random_seed(2) }, warning = function(w) {",
    "  n <<- n + 1L; cat('WARNING:', conditionMessage(w), '\\n'); invokeRestart('muffleWarning') })",
    "cat('WARNINGS:', n, '\\n')"
  ))
  expect_match(out, "WARNINGS: 1", fixed = TRUE)
  expect_match(out, "before pydlr's first call", fixed = TRUE)
  expect_match(out, "restart R and call a pydlr function", fixed = TRUE)
})

test_that("torch's CPU tensors come from pydlr's caching allocator inside R, and pydlr_config() says so", {
  skip_if(Sys.getenv("PYDLR_CPU_CACHE_MB") == "0", "the cache is switched off in this environment")
  m <- keras_model_sequential(input_shape = c(28, 28, 1)) |> layer_conv_2d(8, c(3, 3), activation = "relu") |>
    layer_flatten() |> layer_dense(3, activation = "softmax")
  x <- array(runif(64 * 784), c(64, 28, 28, 1))
  p1 <- predict(m, x)
  p2 <- predict(m, x) # the second call's blocks are the first call's
  expect_identical(p1, p2)
  cfg <- pydlr_config(warn = FALSE)
  expect_equal(cfg$cpu_cache$enabled, 1)
  expect_gt(cfg$cpu_cache$hits, 0)
  expect_type(cfg$cpu_cache$limit_bytes, "double") # 1/8 of RAM may exceed R's integers
  expect_gt(cfg$cpu_cache$limit_bytes, 0)
  expect_output(print(cfg), "CPU tensor cache +pydlr's caching allocator: .* kept of .* at most")
})

test_that("options(pydlr.cpu_cache = FALSE) keeps torch's own allocator", {
  out <- fresh_r(c(
    "options(pydlr.cpu_cache = FALSE)",
    "cfg <- pydlr::pydlr_config(warn = FALSE)",
    "cat('ENABLED:', cfg$cpu_cache$enabled, '\\n')",
    "print(cfg)"
  ))
  expect_match(out, "ENABLED: 0", fixed = TRUE)
  expect_match(out, "CPU tensor cache +torch's own")
})
