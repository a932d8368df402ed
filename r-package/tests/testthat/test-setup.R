# library(pydlr) masks nothing, and pydlr_config() reports the situation in a fresh R process, with the
# Python environment present and with it hidden.

run_fresh_r <- function(lines, env = character()) {
  script <- tempfile(fileext = ".R")
  writeLines(c(sprintf(".libPaths(c(%s))", paste(deparse(.libPaths()), collapse = "")), lines), script)
  out <- system2(file.path(R.home("bin"), "Rscript"), c("--vanilla", script), stdout = TRUE, stderr = TRUE,
    env = env)
  paste(out, collapse = "\n")
}

test_that("library(pydlr) masks no function of base R or other attached packages", {
  out <- run_fresh_r(c(
    "library(pydlr)",
    "x <- conflicts(detail = TRUE)",
    "cat('CONFLICTS:', intersect(x[['package:pydlr']], unlist(x[names(x) != 'package:pydlr'])), '\\n')"
  ))
  expect_false(grepl("masked from", out, fixed = TRUE))
  expect_match(out, "CONFLICTS: $") # nothing after the label
  expect_false(exists("embed", envir = asNamespace("pydlr"), inherits = FALSE))
})

test_that("pydlr_config() in a fresh R process with the Python environment present reports versions", {
  out <- run_fresh_r(c("library(pydlr)", "print(pydlr_config())"))
  expect_match(out, "Versions +Python 3\\.[0-9]+\\.[0-9]+, pydlr [0-9.]+, torch 2\\.")
  expect_match(out, "NumPy 1\\.[0-9.]+, pyarrow [0-9.]+, reticulate [0-9.]+")
  expect_match(out, "CUDA ")
  expect_match(out, "Weights mobilenet_v2 +installed")
  expect_match(out, "Native extension +.*simd=")
  expect_match(out, "GEMM \\(sgemm_\\) from .*torch's own MKL")
})

test_that("pydlr_config() with the interpreter hidden says so, and the fix, without starting Python", {
  missing <- file.path(tempdir(), "no-such-venv", "bin", "python")
  out <- run_fresh_r(c(
    "library(pydlr)",
    "cfg <- pydlr_config()",
    "print(cfg)",
    "cat('STARTED:', reticulate::py_available(initialize = FALSE), '\\n')",
    "r <- tryCatch(dataset_mnist(), error = function(e) e)",
    "cat('CLASS:', class(r)[1], '\\nMESSAGE:', conditionMessage(r), '\\n')"
  ), env = paste0("PYDLR_PYTHON=", missing))
  expect_match(out, sprintf("Python +%s \\(environment variable PYDLR_PYTHON\\) \\[MISSING\\]", missing))
  expect_match(out, "Fix +install_pydlr\\(\\)")
  expect_match(out, "STARTED: FALSE", fixed = TRUE)
  expect_match(out, "CLASS: pydlr_setup_error", fixed = TRUE)
  expect_match(out, "does not exist. Fix: install_pydlr()", fixed = TRUE)
  expect_false(grepl("Traceback", out, fixed = TRUE))
})

test_that("an interpreter without pydlr's modules is named with the pip command that fixes it", {
  system_python <- "/usr/bin/python3" # Debian's, without torch or pydlr
  skip_if(!file.exists(system_python), "no system python3")
  s <- withr::with_envvar(c(PYDLR_PYTHON = system_python), pydlr:::.python_situation(started = FALSE))
  expect_true(s$exists)
  expect_true("torch" %in% s$missing) # pydlr itself may be found through PYTHONPATH
  expect_false(s$ok)
  expect_match(s$fix, "install_pydlr()|-m pip install")
})

test_that("install_pydlr() runs the project's set-up script", {
  root <- tempfile("checkout")
  expect_equal(install_pydlr(project = root, dry_run = TRUE),
    paste("bash", shQuote(file.path(normalizePath(root, mustWork = FALSE), "scripts", "setup.sh"))))
  expect_error(install_pydlr(project = root), class = "pydlr_input_error")
  dir.create(file.path(root, "scripts"), recursive = TRUE)
  writeLines("echo SETUP-RAN; exit 3", file.path(root, "scripts", "setup.sh"))
  expect_error(expect_output(install_pydlr(project = root), "SETUP-RAN"), "exit status 3")
})
