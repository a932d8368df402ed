# Package load: find the project's Python environment by itself, from any directory. Python itself starts
# lazily: the first call that needs it goes through .pydlr_py(), which prepares the process (see config.R)
# before torch is imported.

.pydlr_env <- new.env(parent = emptyenv())

#' Path of the Python interpreter pydlr uses
#'
#' Order: the `PYDLR_PYTHON` environment variable, then the `pydlr.python` option, then the
#' interpreter recorded by the project's set-up when it installed this package.
#' @return A path, or `NULL` when none is known.
#' @keywords internal
#' @noRd
pydlr_python_path <- function() {
  env <- Sys.getenv("PYDLR_PYTHON", "")
  if (nzchar(env)) return(env)
  opt <- getOption("pydlr.python")
  if (!is.null(opt)) return(opt)
  recorded <- system.file("python-path", package = "pydlr")
  if (nzchar(recorded)) {
    path <- trimws(readLines(recorded, n = 1L, warn = FALSE))
    if (nzchar(path) && file.exists(path)) return(path)
  }
  NULL
}

#' Start pydlr's Python once, after the process is prepared for torch
#'
#' The first call starts Python (through reticulate), prepares the dynamic loader so that torch binds to
#' its own BLAS/GEMM kernels rather than the BLAS R has already loaded (see [pydlr_config()] and
#' `docs/r-speed.md`), imports torch, applies the thread settings, then imports `pydlr`. Later calls cost
#' nothing. R files do not call Python through it: they use `.py_call()` (python.R), which calls it first.
#'
#' @return The set-up record of `.pydlr_prepare_python()`, invisibly.
#' @keywords internal
#' @noRd
.pydlr_py <- function() {
  if (is.null(.pydlr_env$started)) {
    situation <- .python_situation()
    if (!situation$ok && !situation$started) {
      pydlr_abort(paste0("pydlr's Python is not set up: ", .situation_problems(situation),
        "\nSee pydlr_config() for the full report."), class = "pydlr_setup_error", call = NULL)
    }
    .pydlr_prepare_python()
    reticulate::import("pydlr", convert = FALSE, delay_load = FALSE)
    .use_cpu_cache()
    .pydlr_env$started <- TRUE
  }
  invisible(.pydlr_env$setup)
}

.onLoad <- function(libname, pkgname) {
  python <- pydlr_python_path()
  # Only claim Python when the user has not chosen one and reticulate has not started yet.
  if (!is.null(python) && !nzchar(Sys.getenv("RETICULATE_PYTHON")) &&
      !reticulate::py_available(initialize = FALSE)) {
    Sys.setenv(RETICULATE_PYTHON = python)
  }
  .pydlr_env$funs <- list()
  invisible()
}
