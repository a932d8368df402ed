# Package load: find the project's Python environment by itself, from any directory.

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

.onLoad <- function(libname, pkgname) {
  python <- pydlr_python_path()
  # Only claim Python when the user has not chosen one and reticulate has not started yet.
  if (!is.null(python) && !nzchar(Sys.getenv("RETICULATE_PYTHON")) &&
      !reticulate::py_available(initialize = FALSE)) {
    Sys.setenv(RETICULATE_PYTHON = python)
  }
  invisible()
}

#' The imported Python module `pydlr`, after the one-time Python set-up
#'
#' Every R function that reaches Python goes through here (or `.pydlr_api()`), so the set-up that must
#' happen before torch is first imported (see config.R) happens exactly once, in one place.
#' @keywords internal
.pydlr_py <- function() {
  if (is.null(.pydlr_env$py)) {
    .pydlr_env$py <- reticulate::import("pydlr", delay_load = FALSE)
  }
  .pydlr_env$py
}
