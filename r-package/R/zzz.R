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

#' pydlr's Python module, imported on first use after the process is prepared for torch
#'
#' The one entry point to Python for every R file of the package: the first call starts Python (through
#' reticulate), prepares the dynamic loader so that torch binds to its own BLAS/GEMM kernels rather than
#' the BLAS R has already loaded (see [pydlr_config()] and `docs/r-speed.md`), imports torch, applies the
#' thread settings, then imports `pydlr`. Later calls return the cached module at no cost.
#'
#' @param module `NULL` for the `pydlr` package itself, or the name of a submodule (e.g. `"cluster"`,
#'   `"api_r"`), returned as `pydlr.<module>`.
#' @return A reticulate Python module.
#' @keywords internal
.pydlr_py <- function(module = NULL) {
  if (is.null(.pydlr_env$py)) {
    .pydlr_prepare_python()
    .pydlr_env$py <- reticulate::import("pydlr", delay_load = FALSE)
  }
  if (is.null(module)) return(.pydlr_env$py)
  stopifnot(is.character(module), length(module) == 1L)
  cached <- .pydlr_env$submodules[[module]]
  if (!is.null(cached)) return(cached)
  sub <- reticulate::import(paste0("pydlr.", module), delay_load = FALSE)
  .pydlr_env$submodules[[module]] <- sub
  sub
}

.onLoad <- function(libname, pkgname) {
  python <- pydlr_python_path()
  # Only claim Python when the user has not chosen one and reticulate has not started yet.
  if (!is.null(python) && !nzchar(Sys.getenv("RETICULATE_PYTHON")) &&
      !reticulate::py_available(initialize = FALSE)) {
    Sys.setenv(RETICULATE_PYTHON = python)
  }
  .pydlr_env$submodules <- list()
  invisible()
}
